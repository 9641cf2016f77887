import IngotFormats
import IngotNumerics

/// The file `ingot fit` writes, which sets the forms a tensor may take.
public enum FitFormat: String, Sendable, CaseIterable {
    /// One GGUF file; a tensor takes a GGUF type.
    case gguf
    /// A Hugging Face folder as mlx-lm reads it; a tensor takes an MLX quantization or stays in float, each listed in
    /// `config.json`'s `quantization` by module path.
    case mlx
    /// A Hugging Face folder as vLLM reads it (`pack-quantized`); a linear layer takes an integer form of
    /// llm-compressor's W4A16, W4A16_ASYM or W8A16, or stays in float (`ignore`); a config group per form.
    case compressedTensors = "compressed-tensors"
}

/// One form a tensor may take in the written model.
public enum FitType: Hashable, Sendable, CustomStringConvertible {
    /// A GGUF type (the tensor's own: it stays as stored).
    case gguf(GGMLType)
    /// An MLX quantization: affine (bits, group) or a microscaling mode.
    case mlx(MLXQuantization)
    /// A compressed-tensors integer form, as llm-compressor's W4A16 (symmetric), W4A16_ASYM and W8A16 store it: `bits`
    /// per value, a scale (and, asymmetric, a zero point) per group of `group` columns (nil: per output channel).
    case integer(bits: Int, group: Int?, symmetric: Bool)
    /// In the folder's float type (the weight's own F16, BF16 or F32).
    case float

    /// The group sizes compressed-tensors forms take here (nil: one scale per output channel).
    public static let integerGroups: [Int?] = [32, 64, 128, nil]

    /// The name a plan and `--types` use: the GGUF type's name (`Q4_K`), the override syntax of `quantize --scheme mlx
    /// --tensor-type` (`affine-4-64`, `mxfp4`, `mxfp8`, `nvfp4`), or `float`.
    public var name: String {
        switch self {
        case .gguf(let t): t.name
        case .mlx(let q): q.mode == .affine ? "affine-\(q.bits)-\(q.groupSize)" : q.mode.rawValue
        case .integer(let bits, let group, let symmetric):
            "W\(bits)A16\(symmetric ? "" : "_ASYM")-" + (group.map { "g\($0)" } ?? "channel")
        case .float: "float"
        }
    }

    public var description: String { name }

    /// The form `name` stands for in `format`; nil where the format has none of that name.
    public static func named(_ name: String, format: FitFormat) -> FitType? {
        switch format {
        case .gguf:
            return GGMLType.named(name).map { .gguf($0) }
        case .mlx:
            if name == "float" { return .float }
            let parts = name.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard let mode = MLXQuantization.Mode(rawValue: parts[0]) else { return nil }
            if mode != .affine { return parts.count == 1 ? MLXQuantization(mode: mode).map { .mlx($0) } : nil }
            guard parts.count == 3, let bits = Int(parts[1]), let group = Int(parts[2]),
                  let q = MLXQuantization(mode: .affine, bits: bits, groupSize: group) else { return nil }
            return .mlx(q)
        case .compressedTensors:
            if name == "float" { return .float }
            return all(.compressedTensors).first { $0.name == name }
        }
    }

    /// Every form of `format` Ingot writes and fit may choose (for GGUF: the types Ingot quantizes to).
    public static func all(_ format: FitFormat) -> [FitType] {
        switch format {
        case .gguf:
            return BlockCodec.quantizable.map { .gguf($0) }
        case .mlx:
            var forms: [FitType] = []
            for bits in MLXAffine.supportedBits {
                for group in MLXAffine.supportedGroups { forms.append(.mlx(MLXQuantization(mode: .affine, bits: bits, groupSize: group)!)) }
            }
            return forms + [.mxfp4, .mxfp8, .nvfp4].map { .mlx(MLXQuantization(mode: $0)!) }
        case .compressedTensors:
            return [(4, true), (4, false), (8, true)].flatMap { bits, symmetric in
                integerGroups.map { FitType.integer(bits: bits, group: $0, symmetric: symmetric) }
            }
        }
    }

    /// Columns of a row that one unit of the form covers (a row must hold whole ones): the GGUF type's block, the
    /// MLX group.
    public var rowUnit: Int {
        switch self {
        case .gguf(let t): t.blockSize
        case .mlx(let q): q.groupSize
        case .integer(_, let group, _): group ?? 1
        case .float: 1
        }
    }

    /// Bits per weight of the form, its scales included (MLX affine scales and biases in a 16-bit float type).
    public var bitsPerWeight: Double {
        switch self {
        case .gguf(let t): t.bitsPerWeight
        case .mlx(let q): Double(q.bits) + Double(q.hasBiases ? 32 : 8) / Double(q.groupSize)
        case .integer(let bits, let group, let symmetric): Double(bits) + Double(16 + (symmetric ? 0 : bits)) / Double(group ?? 4096)
        case .float: 16
        }
    }

    /// Whether the form needs an importance matrix to quantize (llama.cpp's codebook types at their lowest widths).
    public var needsImportance: Bool {
        if case .gguf(let t) = self { return BlockCodec.importanceOnlyTypes.contains(t) }
        return false
    }

    /// The bytes of tensor data a `rows` x `columns` matrix takes in this form, its scales and biases included, where
    /// float weights are stored as `floatType` (F16, BF16 or F32).
    public func dataBytes(rows: Int, columns: Int, floatType: GGMLType) -> Int {
        switch self {
        case .gguf(let t):
            return rows * (columns / t.blockSize) * t.bytesPerBlock
        case .mlx(let q):
            let groups = rows * (columns / q.groupSize)
            let codes = rows * columns * q.bits / 8
            // Affine: scale and bias per group in the weight's float type; the microscaling modes: one byte per group.
            return codes + (q.hasBiases ? 2 * groups * floatType.bytesPerBlock : groups)
        case .integer(let bits, let group, let symmetric):
            // weight_packed (int32 words per row), weight_scale (rows × groups, float), weight_shape (2 int64), and
            // asymmetric weight_zero_point (packed down each group's column of rows).
            let groups = group.map { columns / $0 } ?? 1
            let packed = rows * CompressedTensorsInt.wordsPerRow(columns, bits: bits) * 4
            let zeroPoints = symmetric ? 0 : groups * CompressedTensorsInt.wordsPerRow(rows, bits: bits) * 4
            return packed + rows * groups * floatType.bytesPerBlock + 16 + zeroPoints
        case .float:
            return rows * columns * floatType.bytesPerBlock
        }
    }

    /// `values` (rows x columns) in this form, as the forward pass takes them (`DecoderModel.replaceWeight`): a GGUF
    /// type's own bytes, quantized as `ingot quantize` does (under `importance`, a row of weights per matrix of
    /// `rowsPerMatrix` rows); an MLX form's values as mlx-lm dequantizes them (F32: the codes times the stored scales,
    /// plus the stored biases, as `ingot quantize --scheme mlx` writes them with `floatType` scales).
    public func passForm(_ values: [Float], rows: Int, columns: Int, importance: [Float]?, rowsPerMatrix: Int, floatType: GGMLType,
                         threads: Int) throws -> (type: GGMLType, bytes: [UInt8]) {
        switch self {
        case .gguf(let t):
            return (t, try SensitivityMeter.quantize(values, rows: rows, columns: columns, type: t, importance: importance,
                                                     rowsPerMatrix: rowsPerMatrix, threads: threads))
        case .float:
            var out = [Float](repeating: 0, count: values.count)
            for i in values.indices { out[i] = floatType.roundTrip(values[i]) }
            return (.f32, out.withUnsafeBytes { Array($0) })
        case .integer(let bits, let group, let symmetric):
            // What compressed-tensors' dequantizer computes from the stored codes, scales and zero points.
            var out = [Float](repeating: 0, count: values.count)
            let g = group ?? columns, groups = columns / g
            values.withUnsafeBufferPointer { v in
                let r = CompressedTensorsInt.quantize(v.baseAddress!, rows: rows, cols: columns, bits: bits, groupSize: group,
                                                      symmetric: symmetric, arithmetic: floatType)
                for i in 0..<values.count {
                    let k = i / columns * groups + i % columns / g
                    out[i] = CompressedTensorsInt.value(Int32(r.codes[i]), scale: r.scales[k], zeroPoint: Float(r.zeroPoints[k]), arithmetic: floatType)
                }
            }
            return (.f32, out.withUnsafeBytes { Array($0) })
        case .mlx(let q):
            var out = [Float](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { v in
                out.withUnsafeMutableBufferPointer { o in
                    func decode(_ d: some RowDecoder) { for r in 0..<rows { d.decodeRow(r, into: o.baseAddress! + r * columns) } }
                    if q.mode == .affine {
                        let (packed, scales, biases) = MLXAffine.quantize(v.baseAddress!, rows: rows, cols: columns, bits: q.bits,
                                                                          groupSize: q.groupSize, storedAs: floatType, threads: threads)
                        packed.withUnsafeBytes {
                            decode(MLXAffineMatrix(data: $0.baseAddress!, rows: rows, cols: columns, bits: q.bits, groupSize: q.groupSize,
                                                   scales: scales, biases: biases))
                        }
                    } else {
                        let (packed, codes) = MLXMicroscaling.quantize(v.baseAddress!, rows: rows, cols: columns, mode: q.mode,
                                                                        arithmetic: floatType, threads: threads)
                        packed.withUnsafeBytes { p in
                            codes.withUnsafeBufferPointer {
                                decode(MLXMicroscaling.matrix(data: p.baseAddress!, rows: rows, cols: columns, mode: q.mode, scaleCodes: $0.baseAddress!))
                            }
                        }
                    }
                }
            }
            return (.f32, out.withUnsafeBytes { Array($0) })
        }
    }
}
