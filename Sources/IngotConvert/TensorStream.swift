import IngotFormats
import IngotModel
import IngotNumerics

/// One input tensor as both formats describe it: its type in GGML's vocabulary (safetensors F32/F16/BF16 are GGML's
/// F32/F16/BF16), dims fastest-first, and its bytes in the memory map.
struct SourceTensor {
    var name: String
    var type: GGMLType
    /// Fastest-first (GGUF order).
    var dims: [Int]
    var data: UnsafeRawPointer
    var byteCount: Int
    /// Where the tensor's entry is in its file's header, when the format records it.
    var entryOffset: Int?
    var file: String
    /// Set for a quantized weight (FP8, MLX, compressed-tensors): rows are decoded with its scales (`type` is then
    /// F32, what they decode to).
    var decoder: (any RowDecoder)? = nil
    /// Drops the tensor's pages from memory once converted, so that peak memory does not grow with the model.
    var release: () -> Void = {}

    /// Outermost-first (Hugging Face order).
    var shape: [Int] { dims.reversed() }
    /// Rows: every dimension but the fastest one (1 for a vector of one row... of `dims[0]` values).
    var rows: Int { dims.dropFirst().reduce(1, *) }
    var rowBytes: Int { rows == 0 ? 0 : byteCount / rows }

    static func all(_ g: GGUFFile) -> [SourceTensor] {
        g.tensors.map { t in
            let data = g.data(for: t)
            // A tensor of zero bytes has no address; give it any pointer, nothing is read.
            let base = data.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!  // constant, never dereferenced
            return SourceTensor(name: t.name, type: t.type, dims: t.dimensions, data: base, byteCount: t.byteCount,
                                entryOffset: t.infoOffset, file: g.path,
                                release: { g.file.release(offset: g.dataOffset + t.offset, count: t.byteCount) })
        }
    }

    /// Every tensor of a folder's shards (FP8 weights paired with their scales, which are not tensors of their own).
    static func all(_ d: HFModelDirectory) throws -> [SourceTensor] {
        try FolderTensors.read(d).map { t in
            let dims = t.shape.isEmpty ? [1] : Array(t.shape.reversed())
            switch t.storage {
            case .float(let type, let data, let bytes):
                return SourceTensor(name: t.name, type: type, dims: dims, data: data, byteCount: bytes, entryOffset: nil, file: t.file,
                                    release: t.release)
            case .decoded(let f):
                return SourceTensor(name: t.name, type: .f32, dims: dims, data: f.data, byteCount: f.rows * f.cols * 4,
                                    entryOffset: nil, file: t.file, decoder: f, release: t.release)
            }
        }
    }
}

/// One output tensor: its name, stored type, dims (fastest first) and the parts whose converted bytes it is made of,
/// in order (one part, or one per expert for a stacked tensor).
struct PlannedTensor {
    var name: String
    var type: GGMLType
    var dims: [Int]
    var parts: [Part]
    /// Set where the tensor is one of the stored tensors of a quantized weight (its codes, scales, biases, ...).
    var quantized: QuantizedPart? = nil

    /// The safetensors dtype it is written in.
    var safetensorsDType: SafetensorsDType {
        guard let q = quantized else { return type.safetensorsDType }
        switch (q.scheme, q.role) {
        case (.fp8, .codes): return .f8_e4m3
        case (.fp8, _): return .f32
        case (.mlx, .codes): return .u32
        case (.mlx(let m), _): return m.mode == .affine ? q.arithmetic.safetensorsDType : .u8
        case (.compressedTensors(let p), .codes): return p.isInteger ? .i32 : p.name == .NVFP4A16 ? .u8 : .f8_e4m3
        case (.compressedTensors(let p), .scales): return p.name == .NVFP4A16 ? .f8_e4m3 : q.arithmetic.safetensorsDType
        case (.compressedTensors, .globalScale): return .f32
        case (.compressedTensors, .zeroPoints): return .i32
        case (.compressedTensors, _): return .i64
        }
    }
}

/// A weight quantization scheme for Hugging Face folders: one float weight becomes several stored tensors.
public enum WeightScheme: Equatable, Sendable {
    /// FP8 E4M3 codes and F32 scales (`weight_scale`, or DeepSeek's `weight_scale_inv` for 128 x 128 blocks).
    case fp8(FP8Quantization.Strategy)
    /// MLX: packed uint32 `weight` and `scales` (affine: with `biases`, both in the weight's float type; the
    /// microscaling modes: one uint8 scale code per group).
    case mlx(MLXQuantization)
    /// compressed-tensors, as vLLM reads it: `pack-quantized` integers (`weight_packed`, `weight_scale`,
    /// `weight_shape`, asymmetric `weight_zero_point`), `float-quantized` FP8 (`weight`, `weight_scale`) or
    /// `nvfp4-pack-quantized` (`weight_packed`, `weight_scale`, `weight_global_scale`).
    case compressedTensors(CompressedTensorsPreset)
}

/// llm-compressor's preset schemes that quantize weights only, or weights with dynamic activations (the presets
/// with static activation scales need calibration). Integer presets group `groupSize` columns (nil: one scale
/// per output channel).
public struct CompressedTensorsPreset: Hashable, Sendable {
    public enum Name: String, Sendable, CaseIterable {
        case W4A16, W4A16_ASYM, W8A16, FP8_DYNAMIC, FP8_BLOCK, NVFP4A16
    }
    public let name: Name
    public let groupSize: Int?

    /// llm-compressor's groups: 128 columns for the integer presets.
    public init?(_ name: Name, groupSize: Int? = 128) {
        if name == .FP8_DYNAMIC || name == .FP8_BLOCK {
            guard groupSize == nil || groupSize == 128 else { return nil }
            self.groupSize = nil
        } else if name == .NVFP4A16 {
            guard groupSize == nil || groupSize == 128 || groupSize == 16 else { return nil }
            self.groupSize = 16
        } else {
            guard groupSize.map({ $0 > 0 && $0 % 8 == 0 && $0 <= 1 << 16 }) ?? true else { return nil }
            self.groupSize = groupSize
        }
        self.name = name
    }

    public var isInteger: Bool { name == .W4A16 || name == .W4A16_ASYM || name == .W8A16 }
    public var bits: Int { name == .W4A16 || name == .W4A16_ASYM ? 4 : 8 }
    public var symmetric: Bool { name != .W4A16_ASYM }
    public var format: String { isInteger ? "pack-quantized" : name == .NVFP4A16 ? "nvfp4-pack-quantized" : "float-quantized" }
}

/// A weight that a calibrated method quantizes in place of its scheme's round to nearest.
public struct CalibratedWeight: Sendable, Equatable {
    /// As written (`model.layers.3.mlp.down_proj.weight`) and as the forward pass names it (`blk.3.ffn_down.weight`).
    public var name: String, modelName: String
    public var rows: Int, cols: Int
    public var rule: IntegerGrid.Rule
    /// Columns per group (the row's width for one scale per row).
    public var groupSize: Int
    /// Row r of the written weight is row `rowOrder[r]` of the model's (q and k between GGUF's rotary layout and
    /// Hugging Face's); nil: the same order.
    public var rowOrder: [Int]?
}

/// Quantizes the integer-scheme weights of a folder by a calibrated method (GPTQ, AWQ) instead of round to nearest.
/// `prepare` learns every weight it will be asked for before the first is written, and answers how the input's
/// tensors are to be rescaled before anything is written (AWQ's smoothing, by the input's tensor names; none for
/// GPTQ); `quantize` is then asked for each weight once, in the order the writer writes them, for its codes and grid
/// in the written row order (nil: round to nearest, of the rescaled weight).
public protocol CalibratedQuantizer: AnyObject, Sendable {
    func prepare(_ weights: [CalibratedWeight]) throws -> [String: ChannelScaling]
    func quantize(_ name: String) throws -> (codes: [Int32], grid: IntegerGrid)?
}

/// One stored tensor of a quantized weight. All of them are computed from the weight's floats, which `parts` of the
/// codes tensor (the weight's own name) produce.
struct QuantizedPart {
    enum Role { case codes, scales, biases, zeroPoints, shape, globalScale }
    var role: Role
    var scheme: WeightScheme
    /// The weight's name (the codes tensor's).
    var weight: String
    var rows: Int, cols: Int
    /// The weight's stored float type.
    var floatType: GGMLType

    /// The float type the weight is quantized in and its float scales (and biases) are stored in: its own type, F16
    /// where that is none of F16, BF16, F32.
    var arithmetic: GGMLType { [.f16, .bf16, .f32].contains(floatType) ? floatType : .f16 }
}

enum Part {
    /// Rows `rows` of a source tensor. `permute` reorders the rows of each of `heads` heads between Hugging Face's
    /// rotary layout and llama.cpp's: to GGUF, output row (h, 2i + j) is input row (h, j·d/2 + i); from GGUF the
    /// inverse (`LlamaModel.permute` in llama.cpp's converter, and its undoing).
    case rows(SourceTensor, Range<Int>, permute: (heads: Int, toGGUF: Bool)?)
    /// Rows `rows` of a source tensor, transposed: its columns become the output's rows (latent attention's `k_b`,
    /// stored per head transposed in GGUF).
    case transposed(SourceTensor, Range<Int>)
    /// Values computed by the converter (`rope_freqs`).
    case values([Float])
}

/// Buffers reused from tensor to tensor: the permuted source rows, their float values, the encoded output.
struct ConversionScratch {
    var gathered: [UInt8] = []
    var floats: [Float] = []
    var transposed: [Float] = []
    var encoded: [UInt8] = []
    var quant = QuantScratch()
    /// Rescalings of source tensors by their names (AWQ's smoothing), applied to their values as they are produced.
    var scaling: [String: ChannelScaling] = [:]
    /// Set when a value produced since the last `takeNonFinite()` was NaN or infinite (written as it is: a
    /// conversion changes the layout, not the values; the caller warns).
    private var sawNonFinite = false
    /// Rows converted at a time: about 16 MiB of floats.
    static let slabFloats = 4 << 20

    /// Converts `part` to `type` and hands the bytes to `sink`, one slab of rows at a time.
    mutating func produce(_ part: Part, as type: GGMLType, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch part {
        case .values(let v):
            try encode(v, count: v.count, as: type, sink: sink)
        case .transposed(let s, let range):
            let cols = s.dims.first ?? 1, n = range.count, count = n * cols
            guard count > 0, range.upperBound <= s.rows else { return }
            if floats.count < count { floats = [Float](repeating: 0, count: count) }
            if transposed.count < count { transposed = [Float](repeating: 0, count: count) }
            floats.withUnsafeMutableBufferPointer { f in
                if let d = s.decoder {
                    for i in 0..<n { d.decodeRow(range.lowerBound + i, into: f.baseAddress! + i * cols) }
                } else {
                    BlockCodec.dequantize(s.type, s.data + range.lowerBound * s.rowBytes, count: count, into: f.baseAddress!)
                }
            }
            for r in 0..<n { for c in 0..<cols { transposed[c * n + r] = floats[r * cols + c] } }
            try encode(transposed, count: count, as: type, sink: sink)
        case .rows(let s, let range, let permute):
            let rowElements = s.dims.first ?? 1
            // A tensor with a zero dimension has no bytes to write.
            guard rowElements > 0, s.rowBytes > 0 || s.decoder != nil, !range.isEmpty else { return }
            let slabRows = max(1, ConversionScratch.slabFloats / max(1, rowElements))
            let rowsPerHead = permute.map { s.rows / $0.heads } ?? 0
            let scale = scaling[s.name]
            if let scale, !scale.fits(rows: s.rows, cols: rowElements) {
                throw ModelError(.shapeMismatch, field: "tensor '\(s.name)'",
                                 "a rescaling of other widths than its \(s.rows) rows of \(rowElements) values", path: s.file)
            }
            var r = range.lowerBound
            while r < range.upperBound, let f = s.decoder {
                // A quantized weight: each output row decoded from its source row with that row's scales.
                let n = min(slabRows, range.upperBound - r), count = n * rowElements
                if floats.count < count { floats = [Float](repeating: 0, count: count) }
                floats.withUnsafeMutableBufferPointer { out in
                    for i in 0..<n {
                        let src = permute.map { ConversionScratch.sourceRow(r + i, rowsPerHead: rowsPerHead, toGGUF: $0.toGGUF) } ?? (r + i)
                        f.decodeRow(src, into: out.baseAddress! + i * rowElements)
                        scale?.apply(out.baseAddress! + i * rowElements, firstRow: src, count: 1, cols: rowElements)
                    }
                }
                try encode(floats, count: count, as: type, sink: sink)
                r += n
            }
            while r < range.upperBound {
                let n = min(slabRows, range.upperBound - r)
                let bytes = n * s.rowBytes
                if gathered.count < bytes { gathered = [UInt8](repeating: 0, count: bytes) }
                gathered.withUnsafeMutableBytes { g in
                    for i in 0..<n {
                        let src = permute.map { ConversionScratch.sourceRow(r + i, rowsPerHead: rowsPerHead, toGGUF: $0.toGGUF) } ?? (r + i)
                        (g.baseAddress! + i * s.rowBytes).copyMemory(from: s.data + src * s.rowBytes, byteCount: s.rowBytes)
                    }
                }
                if s.type == type && scale == nil {
                    if !sawNonFinite, gathered.withUnsafeBytes({
                        NonFinite.firstRow(s.type, UnsafeRawBufferPointer(rebasing: $0[0..<bytes]), rows: n, columns: rowElements)
                    }) != nil {
                        sawNonFinite = true
                    }
                    try gathered.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
                } else {
                    let count = n * rowElements
                    if floats.count < count { floats = [Float](repeating: 0, count: count) }
                    gathered.withUnsafeBytes { g in floats.withUnsafeMutableBufferPointer { f in
                        BlockCodec.dequantize(s.type, g.baseAddress!, count: count, into: f.baseAddress!)
                        if let scale {
                            for i in 0..<n {
                                let src = permute.map { ConversionScratch.sourceRow(r + i, rowsPerHead: rowsPerHead, toGGUF: $0.toGGUF) } ?? (r + i)
                                scale.apply(f.baseAddress! + i * rowElements, firstRow: src, count: 1, cols: rowElements)
                            }
                        }
                    } }
                    try encode(floats, count: count, as: type, sink: sink)
                }
                r += n
            }
            s.release()
        }
    }

    /// The input row that output row `r` takes. Within a head of d rows, GGUF row 2i + j is Hugging Face row
    /// j·d/2 + i.
    static func sourceRow(_ r: Int, rowsPerHead d: Int, toGGUF: Bool) -> Int {
        let head = r / d, within = r % d, half = d / 2
        if toGGUF {
            return head * d + (within % 2) * half + within / 2
        } else {
            return head * d + (within % half) * 2 + within / half
        }
    }

    /// Whether a NaN or an infinity went through since the last call.
    mutating func takeNonFinite() -> Bool {
        defer { sawNonFinite = false }
        return sawNonFinite
    }

    mutating func encode(_ values: [Float], count: Int, as type: GGMLType, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard count > 0 else { return }
        if !sawNonFinite, values.withUnsafeBufferPointer({ NonFinite.first(in: UnsafeBufferPointer(rebasing: $0.prefix(count))) }) != nil {
            sawNonFinite = true
        }
        let bytes = type.byteCount(elements: count) ?? count * 4
        if encoded.count < bytes { encoded = [UInt8](repeating: 0, count: bytes) }
        values.withUnsafeBufferPointer { v in encoded.withUnsafeMutableBytes { e in
            BlockCodec.quantize(type, v.baseAddress!, count: count, into: e.baseAddress!, scratch: &quant)
        } }
        try encoded.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
    }
}
