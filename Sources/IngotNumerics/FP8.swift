import IngotFormats

/// FP8 values as checkpoints store them (OCP FP8, as `ml_dtypes` and PyTorch define them):
///
/// - E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities, NaN only at S.1111.111; max 448.
/// - E5M2: sign, 5 exponent bits (bias 15), 2 mantissa bits; IEEE-like, the top byte of a binary16.
///
/// Each code converts to exactly one Float, so decoding is a 256-entry table lookup.
public enum FP8 {
    public enum Format: Sendable { case e4m3fn, e5m2 }

    /// Every E4M3FN code's value.
    public static let e4m3fnTable: [Float] = (0..<256).map { code in
        let sign: Float = code & 0x80 != 0 ? -1 : 1
        let exponent = (code >> 3) & 0xF, mantissa = code & 7
        if exponent == 0xF && mantissa == 7 { return .nan }
        if exponent == 0 { return sign * Float(mantissa) * 0x1p-9 }  // subnormal: m/8 · 2^-6
        return sign * (1 + Float(mantissa) / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }

    /// Every E5M2 code's value (the code shifted into the top byte of a binary16).
    public static let e5m2Table: [Float] = (0..<256).map { halfToFloat(UInt16($0) << 8) }

    public static func table(_ f: Format) -> [Float] { f == .e4m3fn ? e4m3fnTable : e5m2Table }

    /// The largest finite value: 448 (E4M3FN), 57344 (E5M2).
    public static func maxFinite(_ f: Format) -> Float { f == .e4m3fn ? 448 : 57344 }

    /// The code of `x`: rounded to the nearest FP8 value, ties to even, as `ml_dtypes` and PyTorch round. Values
    /// beyond the largest finite one, infinities included, saturate to it with their sign (what the quantizers of
    /// vLLM, llm-compressor and DeepSeek do by clamping before the cast; a bare cast in `ml_dtypes` gives NaN for
    /// E4M3FN and infinity for E5M2 instead). NaN gives the format's NaN (0x7F, 0x7E).
    @inline(__always)
    public static func encode(_ x: Float, _ f: Format) -> UInt8 {
        let mantissaBits: UInt32 = f == .e4m3fn ? 3 : 2
        let bias: UInt32 = f == .e4m3fn ? 7 : 15
        let minNormalExponent = 1 - Int(bias)
        let maxCode: UInt32 = f == .e4m3fn ? 0x7E : 0x7B
        let bits = x.bitPattern
        let sign = UInt8((bits >> 24) & 0x80)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude > 0x7F80_0000 { return f == .e4m3fn ? 0x7F : 0x7E }
        let a = Float(bitPattern: magnitude)
        if a >= maxFinite(f) { return sign | UInt8(maxCode) }
        // Below the smallest normal, 2^(1 - bias): binary32 exponent field under 128 - bias.
        if magnitude < (128 - bias) << 23 {
            // Subnormal (or zero): a multiple of 2^(minNormalExponent - mantissaBits), rounded to even. A result of
            // 2^mantissaBits is the smallest normal's code, which follows on naturally.
            let units = (a * Float(sign: .plus, exponent: Int(mantissaBits) - minNormalExponent, significand: 1))
                .rounded(.toNearestOrEven)
            return sign | UInt8(units)
        }
        // Normal: drop the low mantissa bits of the binary32 pattern with round-half-to-even, then rebias the exponent.
        let shift = 23 - mantissaBits
        let rounded = (magnitude + ((1 << (shift - 1)) - 1) + ((magnitude >> shift) & 1)) >> shift
        let code = rounded - ((127 - bias) << mantissaBits)
        return sign | UInt8(Swift.min(code, maxCode))
    }

    /// Codes of `count` values of `x` divided by `scale` (in Float, as the reference quantizers divide), into `out`.
    public static func encode(_ x: UnsafePointer<Float>, count: Int, dividedBy scale: Float, _ f: Format, into out: UnsafeMutablePointer<UInt8>) {
        for i in 0..<count { out[i] = encode(x[i] / scale, f) }
    }
}

/// How the scales of an FP8 weight of `rows` x `cols` are laid out (`w = fp8(q) · scale`; DeepSeek names its block
/// scales `weight_scale_inv`, a multiplication despite the name):
public enum FP8ScaleLayout: Equatable, Sendable {
    /// One scale for the tensor.
    case tensor
    /// One scale per output row (per channel).
    case channel
    /// One scale per block of `rows` x `cols` values; edge blocks are partial (the checkpoint padded them).
    case blocks(rows: Int, cols: Int)
}

/// A quantized weight matrix stored beside its scales (FP8, MLX, compressed-tensors): it decodes one row of floats
/// at a time, so that converters stream it and models decode it once at load.
public protocol RowDecoder: Sendable {
    var rows: Int { get }
    var cols: Int { get }
    /// The stored bytes (for releasing their pages once decoded).
    var data: UnsafeRawPointer { get }
    func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>)
    /// How the weight is stored, in its ecosystem's words (`mlx affine 4-bit, group 64`, `fp8 e4m3, 128x128 blocks`).
    var scheme: String { get }
}

/// An FP8 weight with its scales: decodes rows of floats.
public struct ScaledFP8: RowDecoder, @unchecked Sendable {
    public let format: FP8.Format
    public let data: UnsafeRawPointer
    public let rows: Int, cols: Int
    /// The scales as Floats (F32, BF16 and F16 scale tensors are widened when the weight is opened).
    public let scales: [Float]
    public let layout: FP8ScaleLayout
    /// The type each product is rounded to: the scales' type where it is F16 or BF16 (compressed-tensors multiplies
    /// in it); F32 keeps the product exact in Float (DeepSeek's `weight_dequant`).
    public let arithmetic: GGMLType

    public init(format: FP8.Format, data: UnsafeRawPointer, rows: Int, cols: Int, scales: [Float], layout: FP8ScaleLayout,
                arithmetic: GGMLType = .f32) {
        self.format = format
        self.data = data
        self.rows = rows
        self.cols = cols
        self.scales = scales
        self.layout = layout
        self.arithmetic = arithmetic
    }

    /// The scale layout implied by a scale tensor of `count` values and shape `shape` for a `rows` x `cols` weight
    /// (block size `block`, default 128 x 128), or nil when the shapes cannot go together.
    public static func layout(scaleShape shape: [Int], rows: Int, cols: Int, block: (Int, Int) = (128, 128)) -> FP8ScaleLayout? {
        let count = shape.reduce(1, *)
        if count == 1 { return .tensor }
        if count == rows && (shape.count == 1 || (shape.count == 2 && shape[1] == 1)) { return .channel }
        let br = (rows + block.0 - 1) / block.0, bc = (cols + block.1 - 1) / block.1
        if shape == [br, bc] { return .blocks(rows: block.0, cols: block.1) }
        return nil
    }

    public var scheme: String {
        let f = format == .e4m3fn ? "fp8 e4m3" : "fp8 e5m2"
        switch layout {
        case .tensor: return f + ", one scale"
        case .channel: return f + ", a scale per row"
        case .blocks(let r, let c): return f + ", \(r)x\(c) blocks"
        }
    }

    /// Decodes row `r` into `out` (cols floats): fp8 · scale in Float, as DeepSeek's `weight_dequant` computes it,
    /// rounded to `arithmetic` (compressed-tensors' dequantizer multiplies in the scales' type).
    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let table = FP8.table(format)
        let src = data.assumingMemoryBound(to: UInt8.self) + r * cols
        table.withUnsafeBufferPointer { t in
            switch layout {
            case .tensor:
                let s = scales[0]
                for c in 0..<cols { out[c] = t[Int(src[c])] * s }
            case .channel:
                let s = scales[r]
                for c in 0..<cols { out[c] = t[Int(src[c])] * s }
            case .blocks(let br, let bc):
                let blocksPerRow = (cols + bc - 1) / bc
                let base = (r / br) * blocksPerRow
                var c = 0
                while c < cols {
                    let s = scales[base + c / bc], end = min(cols, c + bc)
                    for j in c..<end { out[j] = t[Int(src[j])] * s }
                    c = end
                }
            }
        }
        if arithmetic != .f32 { for c in 0..<cols { out[c] = arithmetic.roundTrip(out[c]) } }
    }
}

/// FP8 quantization of a weight matrix: one scale per tensor, per output row or per 128 x 128 block (edge blocks
/// partial), code = the E4M3FN code of w / scale (round to nearest even, saturating). Dequantized,
/// w ≈ fp8(code) · scale. Two conventions (`Arithmetic`) for the scale and the quotients:
///
/// - DeepSeek's: scale = max(amax / 448, 1e-12) and w / scale in Float.
/// - compressed-tensors' (`float-quantized`): scale = amax / 448 and w / scale in the weight's float type T, each
///   rounded to it; a scale of 0 becomes T's machine epsilon.
public enum FP8Quantization {
    public enum Strategy: String, Sendable, CaseIterable { case tensor, channel, block }

    public enum Arithmetic: Sendable, Equatable {
        case deepSeek
        case compressedTensors(GGMLType)

        @inline(__always)
        func scale(_ amax: Float) -> Float {
            switch self {
            case .deepSeek: return Swift.max(amax / 448, 1e-12)
            case .compressedTensors(let t):
                let s = t.roundTrip(amax / 448)
                return s == 0 ? t.machineEpsilon : s
            }
        }

        /// Codes of `count` values of `x` divided by `scale`, into `out`.
        @inline(__always)
        func encode(_ x: UnsafePointer<Float>, count: Int, dividedBy scale: Float, into out: UnsafeMutablePointer<UInt8>) {
            switch self {
            case .deepSeek: FP8.encode(x, count: count, dividedBy: scale, .e4m3fn, into: out)
            case .compressedTensors(let t): for i in 0..<count { out[i] = FP8.encode(t.roundTrip(x[i] / scale), .e4m3fn) }
            }
        }
    }

    /// Codes (rows × cols) and scales (1, rows, or ceil(rows/128) × ceil(cols/128) values) of `w`. Rows (and
    /// bands of 128 rows) are spread over `threads` workers; the result does not depend on the split.
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, strategy: Strategy, arithmetic: Arithmetic = .deepSeek,
                                block: Int = 128, threads: Int = 1) -> (codes: [UInt8], scales: [Float]) {
        var codes = [UInt8](repeating: 0, count: rows * cols)
        // Bands of rows sharing scales: one for the tensor, a row per channel, 128 rows per block band.
        let band = strategy == .block ? block : 1
        let bands = strategy == .tensor ? 1 : (rows + band - 1) / band
        let bc = (cols + block - 1) / block
        var scales = [Float](repeating: 0, count: strategy == .tensor ? 1 : strategy == .channel ? rows : bands * bc)
        var tensorScale: Float = 1
        if strategy == .tensor {
            var amax: Float = 0
            for i in 0..<(rows * cols) { amax = Swift.max(amax, abs(w[i])) }
            tensorScale = arithmetic.scale(amax)
            scales[0] = tensorScale
        }
        codes.withUnsafeMutableBufferPointer { c in scales.withUnsafeMutableBufferPointer { s in
            let cs = UnsafeSendable(UnsafePointer(c.baseAddress!)), ss = UnsafeSendable(UnsafePointer(s.baseAddress!)), ws = UnsafeSendable(w)
            let units = strategy == .tensor ? rows : bands
            let workers = max(1, min(threads, units / 16))
            let ts = tensorScale
            try? parallelFor(0..<workers, threads: workers) { k, _ in
                let out = UnsafeMutablePointer(mutating: cs.pointer), sc = UnsafeMutablePointer(mutating: ss.pointer), w = ws.pointer
                for u in (units * k / workers)..<(units * (k + 1) / workers) {
                    switch strategy {
                    case .tensor:
                        arithmetic.encode(w + u * cols, count: cols, dividedBy: ts, into: out + u * cols)
                    case .channel:
                        var amax: Float = 0
                        for j in 0..<cols { amax = Swift.max(amax, abs(w[u * cols + j])) }
                        sc[u] = arithmetic.scale(amax)
                        arithmetic.encode(w + u * cols, count: cols, dividedBy: sc[u], into: out + u * cols)
                    case .block:
                        let r0 = u * block, r1 = Swift.min(rows, r0 + block)
                        for bj in 0..<bc {
                            let c0 = bj * block, c1 = Swift.min(cols, c0 + block)
                            var amax: Float = 0
                            for r in r0..<r1 { for j in c0..<c1 { amax = Swift.max(amax, abs(w[r * cols + j])) } }
                            let s = arithmetic.scale(amax)
                            sc[u * bc + bj] = s
                            for r in r0..<r1 { arithmetic.encode(w + r * cols + c0, count: c1 - c0, dividedBy: s, into: out + r * cols + c0) }
                        }
                    }
                }
            }
        } }
        return (codes, scales)
    }
}
