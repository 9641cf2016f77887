import IngotFormats
import IngotNumerics

/// A tensor of a Hugging Face folder as a model sees it: stored floats, or a quantized weight (FP8 with its scales,
/// MLX, compressed-tensors) that decodes row by row.
public struct FolderTensor: @unchecked Sendable {
    public enum Storage {
        /// F32, F16 or BF16 data, in GGML's names for those types.
        case float(GGMLType, UnsafeRawPointer, byteCount: Int)
        /// A quantized weight decoded row by row.
        case decoded(any RowDecoder)
    }

    public let name: String
    /// Outermost-first.
    public let shape: [Int]
    public let storage: Storage
    /// The shard holding the data.
    public let file: String
    /// Drops the tensor's pages from memory once read (streaming through a model larger than RAM).
    public let release: () -> Void
}

/// The tensors of a folder with quantized weights paired with their scales. MLX (config.json `quantization` with
/// `mode`, `bits` and `group_size`, per-module overrides keyed by module path): `X.weight` (U32 packed codes) with
/// `X.scales` (and `X.biases` for affine). compressed-tensors (`quantization_config.quant_method`
/// `compressed-tensors`): `X.weight_packed` (I32 integers, or U8 NVFP4) with `X.weight_scale`, `X.weight_shape`,
/// `X.weight_zero_point`, `X.weight_global_scale` as the format has them. FP8: `X.weight` (F8_E4M3 or F8_E5M2) and
/// `X.weight_scale_inv` (DeepSeek-V3/R1: one F32 scale per 128x128 block, edge blocks padded) or `X.weight_scale`
/// (one scale per tensor, per output channel, or per block). Scales, and the activation scales of static FP8
/// checkpoints (`X.input_scale`), are consumed by the pairing. The block size is config.json's
/// `quantization_config.weight_block_size` where stated, else 128 x 128.
public enum FolderTensors {
    public static func read(_ d: HFModelDirectory) throws -> [FolderTensor] {
        var block = (128, 128)
        if let b = d.config?["quantization_config"]?["weight_block_size"]?.arrayValue, b.count == 2,
           let r = b[0].intValue, let c = b[1].intValue, r > 0, c > 0, r <= 1 << 16, c <= 1 << 16 {
            block = (r, c)
        }
        var byName: [String: (SafetensorsFile, SafetensorsTensor)] = [:]
        for shard in d.shards { for t in shard.tensors { byName[t.name] = (shard, t) } }
        let mlx = d.config?["quantization"]
        let compressed = d.config?["quantization_config"]?["quant_method"]?.stringValue == "compressed-tensors"
            ? d.config?["quantization_config"] : nil
        var out: [FolderTensor] = []
        for shard in d.shards {
            // Each shard's tensors by name, as the safetensors package lists them.
            for t in shard.tensors.sorted(by: { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }) {
                if mlx != nil, let suffix = [".scales", ".biases"].first(where: t.name.hasSuffix) {
                    let weight = String(t.name.dropLast(suffix.count)) + ".weight"
                    if byName[weight] == nil {
                        throw ModelError(.missingTensor, field: "tensor '\(t.name)'", "belongs to '\(weight)', which the folder lacks", path: shard.path)
                    }
                    continue
                }
                if compressed != nil, let suffix = [".weight_shape", ".weight_zero_point", ".weight_global_scale"].first(where: t.name.hasSuffix) {
                    let packed = String(t.name.dropLast(suffix.count)) + ".weight_packed"
                    if byName[packed] == nil {
                        throw ModelError(.missingTensor, field: "tensor '\(t.name)'", "belongs to '\(packed)', which the folder lacks", path: shard.path)
                    }
                    continue
                }
                if let suffix = [".weight_scale_inv", ".weight_scale", ".input_scale"].first(where: t.name.hasSuffix) {
                    let stem = String(t.name.dropLast(suffix.count))
                    let weight = suffix == ".input_scale" ? nil : stem + ".weight"
                    if let weight, byName[weight] == nil && byName[stem + ".weight_packed"] == nil {
                        throw ModelError(.missingTensor, field: "tensor '\(t.name)'", "is a scale for '\(weight)', which the folder lacks",
                                         path: shard.path)
                    }
                    continue
                }
                let data = shard.data(for: t)
                let base = data.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!  // constant, never dereferenced (no bytes)
                let release = { shard.file.release(offset: shard.dataOffset + t.begin, count: t.byteCount) }
                let name: String, decoder: any RowDecoder
                switch t.dtype {
                case .f32, .f16, .bf16:
                    out.append(FolderTensor(name: t.name, shape: t.shape, storage: .float(FolderTensors.ggmlType(t.dtype), base, byteCount: data.count),
                                            file: shard.path, release: release))
                    continue
                case .f8_e4m3, .f8_e5m2:
                    (name, decoder) = (t.name, try scaled(t, base, byName: byName, block: block, path: shard.path))
                case .i32 where compressed != nil && t.name.hasSuffix(".weight_packed"):
                    (name, decoder) = (String(t.name.dropLast("_packed".count)),
                                       try FolderTensors.packed(t, base, byName: byName, config: compressed!, path: shard.path))
                case .u8 where compressed != nil && t.name.hasSuffix(".weight_packed"):
                    (name, decoder) = (String(t.name.dropLast("_packed".count)), try FolderTensors.nvfp4(t, base, byName: byName, path: shard.path))
                case .u32 where mlx != nil:
                    (name, decoder) = (t.name, try FolderTensors.mlx(t, base, byName: byName, quantization: mlx!, path: shard.path))
                default:
                    throw ModelError(.unsupportedTensorType, field: "tensor '\(t.name)'",
                                     "dtype \(t.dtype) is not read yet (F32, F16, BF16; F8_E4M3/F8_E5M2 with scales; MLX's U32 and "
                                     + "compressed-tensors' I32/U8 packed weights where config.json describes them are)",
                                     path: shard.path)
                }
                out.append(FolderTensor(name: name, shape: [decoder.rows, decoder.cols], storage: .decoded(decoder), file: shard.path,
                                        release: release))
            }
        }
        return out
    }

    /// An MLX weight: mode, bits and group size from config.json's `quantization` (or its entry for this module,
    /// whose missing members come from the top level, as mlx-lm reads them), the logical column count from the
    /// scales, every shape checked.
    static func mlx(_ t: SafetensorsTensor, _ data: UnsafeRawPointer, byName: [String: (SafetensorsFile, SafetensorsTensor)],
                    quantization q: JSONValue, path: String) throws -> any RowDecoder {
        let stem = t.name.hasSuffix(".weight") ? String(t.name.dropLast(".weight".count)) : t.name
        let entry = q[stem]?.objectValue != nil ? q[stem]! : q
        func member(_ key: String) -> JSONValue? { entry[key] ?? q[key] }
        let modeName = member("mode")?.stringValue ?? "affine"
        guard let mode = MLXQuantization.Mode(rawValue: modeName),
              let m = MLXQuantization(mode: mode, bits: member("bits")?.intValue ?? -1, groupSize: member("group_size")?.intValue ?? -1) else {
            throw ModelError(.unsupportedTensorType, field: "config.json quantization",
                             "MLX quantization of '\(stem)' (mode '\(modeName)', bits \(member("bits")?.intValue.map(String.init) ?? "none"), group size \(member("group_size")?.intValue.map(String.init) ?? "none")) is not one MLX has: affine takes \(MLXQuantization.accepted(.affine)); mxfp4, mxfp8 and nvfp4 their own",
                             path: path)
        }
        guard let (ss, s) = byName[stem + ".scales"] else {
            throw ModelError(.missingTensor, field: "tensor '\(t.name)'", "an MLX weight needs '\(stem).scales'", path: path)
        }
        let biases = byName[stem + ".biases"]
        if m.hasBiases != (biases != nil) {
            throw ModelError(.missingTensor, field: "tensor '\(t.name)'",
                             m.hasBiases ? "an MLX affine weight needs '\(stem).biases'" : "an MLX \(m.mode.rawValue) weight has no biases, but '\(stem).biases' is there",
                             path: path)
        }
        let scaleTypes: [SafetensorsDType] = m.hasBiases ? [.f32, .f16, .bf16] : [.u8]
        guard t.shape.count == 2, s.shape.count == 2, s.shape[0] == t.shape[0], s.shape[1] > 0, biases.map({ $0.1.shape == s.shape }) ?? true,
              t.shape[1] * 32 == s.shape[1] * m.groupSize * m.bits, scaleTypes.contains(s.dtype), biases.map({ $0.1.dtype == s.dtype }) ?? true else {
            throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'",
                             "packed \(t.shape) with \(s.dtype) scales \(s.shape)\(biases.map { " and biases \($0.1.shape)" } ?? "") do not make MLX \(m) groups",
                             path: path)
        }
        let rows = t.shape[0], cols = s.shape[1] * m.groupSize, n = s.shape.reduce(1, *)
        if !m.hasBiases {
            let codes = ss.data(for: s)
            guard let base = codes.baseAddress, codes.count == n else {
                throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'", "holds \(codes.count) bytes for \(n) scales", path: path)
            }
            let decoder = MLXMicroscaling.matrix(data: data, rows: rows, cols: cols, mode: m.mode, scaleCodes: base.assumingMemoryBound(to: UInt8.self))
            if let bad = decoder.scales.firstIndex(where: { !$0.isFinite }) {
                throw ModelError(.invalidValue, field: "tensor '\(s.name)'", offset: ss.dataOffset + s.begin + bad,
                                 "scale \(bad) is code \(codes[bad]), which is NaN", path: path)
            }
            return decoder
        }
        let (bs, b) = biases!
        let scales = try floatScales(ss, s), offsets = try floatScales(bs, b)
        return MLXAffineMatrix(data: data, rows: rows, cols: cols, bits: m.bits, groupSize: m.groupSize, scales: scales, biases: offsets)
    }

    /// A compressed-tensors `pack-quantized` weight: bits and symmetry from the config group whose weights are
    /// integers, the shape from `weight_shape`, the groups from the scales, every shape checked.
    static func packed(_ t: SafetensorsTensor, _ data: UnsafeRawPointer, byName: [String: (SafetensorsFile, SafetensorsTensor)],
                       config: JSONValue, path: String) throws -> PackedIntMatrix {
        let stem = String(t.name.dropLast(".weight_packed".count))
        let groups = (config["config_groups"]?.objectValue?.members.map(\.value) ?? []).filter { $0["weights"]?["type"]?.stringValue == "int" }
        // The group that targets this module, as compressed-tensors matches them: by its exact name first, then by a
        // `re:` pattern, then by its class (`Linear`).
        func targets(_ g: JSONValue) -> [String] { g["targets"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let group = groups.first { targets($0).contains(stem) }
            ?? groups.first { targets($0).contains { $0.hasPrefix("re:") && (try? Regex(String($0.dropFirst(3))))
                .map { stem.wholeMatch(of: $0) != nil || stem.firstMatch(of: $0) != nil } == true } }
            ?? groups.first { targets($0).contains("Linear") } ?? groups.first
        guard let args = group?["weights"], let bits = args["num_bits"]?.intValue, (1...8).contains(bits) else {
            throw ModelError(.unsupportedTensorType, field: "config.json quantization_config",
                             "'\(t.name)' is pack-quantized, but no config group has integer weights of 1 to 8 bits", path: path)
        }
        let symmetric = args["symmetric"]?.boolValue ?? true
        guard let (ss, s) = byName[stem + ".weight_scale"], let (hs, h) = byName[stem + ".weight_shape"] else {
            throw ModelError(.missingTensor, field: "tensor '\(t.name)'", "a packed weight needs '\(stem).weight_scale' and '\(stem).weight_shape'", path: path)
        }
        let shapeBytes = hs.data(for: h)
        guard h.dtype == .i64 || h.dtype == .i32, h.shape == [2], let sb = shapeBytes.baseAddress else {
            throw ModelError(.shapeMismatch, field: "tensor '\(h.name)'", "must hold the two dimensions of the weight (I64 or I32)", path: path)
        }
        let dims = (0..<2).map { i in h.dtype == .i64 ? Int(sb.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self).littleEndian)
                                                      : Int(sb.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self).littleEndian) }
        let rows = dims[0], cols = dims[1]
        guard rows > 0, cols > 0, rows <= 1 << 24, cols <= 1 << 24, t.shape == [rows, CompressedTensorsInt.wordsPerRow(cols, bits: bits)],
              s.shape.count == 2, s.shape[0] == rows, s.shape[1] > 0, cols % s.shape[1] == 0, [.f32, .f16, .bf16].contains(s.dtype) else {
            throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'",
                             "packed \(t.shape) with \(s.dtype) scales \(s.shape) do not make a \(bits)-bit weight of \(dims)", path: path)
        }
        let scales = try floatScales(ss, s)
        var zeroPoints: [Int8] = []
        if !symmetric {
            let words = CompressedTensorsInt.wordsPerRow(rows, bits: bits), groups = s.shape[1]
            guard let (zs, z) = byName[stem + ".weight_zero_point"], z.dtype == .i32, z.shape == [words, groups],
                  let zb = zs.data(for: z).baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                throw ModelError(.missingTensor, field: "tensor '\(t.name)'",
                                 "an asymmetric packed weight needs '\(stem).weight_zero_point' (I32, [\(words), \(groups)])", path: path)
            }
            // Packed down each column: gather each group's column of words into a row, then unpack it.
            zeroPoints = [Int8](repeating: 0, count: rows * groups)
            var column = [UInt8](repeating: 0, count: words * 4)
            for g in 0..<groups {
                for w in 0..<words { for k in 0..<4 { column[w * 4 + k] = zb[(w * groups + g) * 4 + k] } }
                column.withUnsafeBufferPointer { c in
                    for r in 0..<rows { zeroPoints[r * groups + g] = Int8(CompressedTensorsInt.unpack(c.baseAddress!, r, bits: bits)) }
                }
            }
        }
        return PackedIntMatrix(data: data, rows: rows, cols: cols, bits: bits, groupSize: cols / s.shape[1], scales: scales,
                               zeroPoints: zeroPoints, arithmetic: FolderTensors.ggmlType(s.dtype))
    }

    /// A compressed-tensors `nvfp4-pack-quantized` weight: U8 codes (two per byte), an F8_E4M3 scale per 16
    /// values and an F32 global scale.
    static func nvfp4(_ t: SafetensorsTensor, _ data: UnsafeRawPointer, byName: [String: (SafetensorsFile, SafetensorsTensor)],
                      path: String) throws -> MicroscaledMatrix {
        let stem = String(t.name.dropLast(".weight_packed".count))
        guard let (ss, s) = byName[stem + ".weight_scale"], let (gs, g) = byName[stem + ".weight_global_scale"] else {
            throw ModelError(.missingTensor, field: "tensor '\(t.name)'",
                             "an NVFP4 weight needs '\(stem).weight_scale' and '\(stem).weight_global_scale'", path: path)
        }
        guard t.shape.count == 2, t.shape[0] > 0, t.shape[1] > 0, (2 * t.shape[1]) % CompressedTensorsNVFP4.group == 0,
              s.dtype == .f8_e4m3, s.shape == [t.shape[0], 2 * t.shape[1] / CompressedTensorsNVFP4.group],
              g.dtype == .f32, g.shape.reduce(1, *) == 1, let sb = ss.data(for: s).baseAddress, let gb = gs.data(for: g).baseAddress else {
            throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'",
                             "packed \(t.shape) with \(s.dtype) scales \(s.shape) and a \(g.dtype) global scale \(g.shape) do not make NVFP4 groups of 16",
                             path: path)
        }
        let global = Float(bitPattern: UInt32(littleEndian: gb.loadUnaligned(as: UInt32.self)))
        guard global.isFinite, global > 0 else {
            throw ModelError(.invalidValue, field: "tensor '\(g.name)'", "the global scale is \(global); it must be finite and positive", path: path)
        }
        let m = CompressedTensorsNVFP4.matrix(data: data, rows: t.shape[0], cols: 2 * t.shape[1], scaleCodes: sb.assumingMemoryBound(to: UInt8.self),
                                             global: global)
        if let bad = m.scales.firstIndex(where: { !$0.isFinite }) {
            throw ModelError(.invalidValue, field: "tensor '\(s.name)'", offset: ss.dataOffset + s.begin + bad, "scale \(bad) is NaN", path: path)
        }
        return m
    }

    /// The values of a tensor of float scales (F32, F16 or BF16), each checked finite.
    static func floatScales(_ shard: SafetensorsFile, _ s: SafetensorsTensor) throws -> [Float] {
        guard [.f32, .bf16, .f16].contains(s.dtype) else {
            throw ModelError(.unsupportedTensorType, field: "tensor '\(s.name)'", "scales must be F32, BF16 or F16, not \(s.dtype)",
                             path: shard.path)
        }
        let n = s.shape.reduce(1, *)
        var v = [Float](repeating: 0, count: n)
        if let base = shard.data(for: s).baseAddress, n > 0 {
            v.withUnsafeMutableBufferPointer { BlockCodec.dequantize(FolderTensors.ggmlType(s.dtype), base, count: n, into: $0.baseAddress!) }
        }
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw ModelError(.invalidValue, field: "tensor '\(s.name)'", offset: shard.dataOffset + s.begin + (s.dtype.byteCount(elements: bad) ?? 0),
                             "value \(bad) is \(v[bad]); scales must be finite", path: shard.path)
        }
        return v
    }

    /// GGML's name for a float dtype (F32, F16; BF16 otherwise: callers pass only these three).
    static func ggmlType(_ d: SafetensorsDType) -> GGMLType { d == .f32 ? .f32 : d == .f16 ? .f16 : .bf16 }

    static func scaled(_ t: SafetensorsTensor, _ data: UnsafeRawPointer, byName: [String: (SafetensorsFile, SafetensorsTensor)],
                       block: (Int, Int), path: String) throws -> ScaledFP8 {
        guard t.shape.count == 2 else {
            throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'", "an FP8 weight must be a matrix, not \(t.shape)", path: path)
        }
        let stem = t.name.hasSuffix(".weight") ? String(t.name.dropLast(".weight".count)) : t.name
        guard let (shard, s) = byName[stem + ".weight_scale_inv"] ?? byName[stem + ".weight_scale"] else {
            throw ModelError(.missingTensor, field: "tensor '\(t.name)'",
                             "an \(t.dtype) weight needs its scales ('\(stem).weight_scale_inv' or '\(stem).weight_scale'); the folder has neither",
                             path: path)
        }
        let rows = t.shape[0], cols = t.shape[1]
        guard let layout = ScaledFP8.layout(scaleShape: s.shape, rows: rows, cols: cols, block: block) else {
            throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'",
                             "scales of shape \(s.shape) fit neither the tensor, its \(rows) rows nor its \(block.0)x\(block.1) blocks of \(t.shape)",
                             path: shard.path)
        }
        let n = s.shape.reduce(1, *)
        guard n > 0, rows > 0, cols > 0 else {
            throw ModelError(.shapeMismatch, field: "tensor '\(t.name)'", "an FP8 weight of shape \(t.shape) with scales \(s.shape) holds no values",
                             path: path)
        }
        return ScaledFP8(format: t.dtype == .f8_e4m3 ? .e4m3fn : .e5m2, data: data, rows: rows, cols: cols,
                         scales: try floatScales(shard, s), layout: layout, arithmetic: FolderTensors.ggmlType(s.dtype))
    }
}
