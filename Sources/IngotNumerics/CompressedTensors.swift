import IngotFormats

/// Integer weight quantization as compressed-tensors computes it (`calculate_qparams` on the weight's min and max,
/// then `quantize`), every step in the weight's float type T (each result rounded to it, as PyTorch computes F16
/// and BF16 on the CPU), per group of `groupSize` columns of a row or per row (channel):
///
///     lo = min(min w, 0), hi = max(max w, 0);  qmin = -2^(b-1), qmax = 2^(b-1) - 1
///     symmetric:  scale = max(|lo|, |hi|) / ((2^b - 1) / 2);  zero point 0
///     asymmetric: scale = (hi - lo) / (2^b - 1);  zp = round(clamp(qmin - lo / scale, qmin, qmax))
///     a scale of 0 becomes T's machine epsilon
///     q = round(clamp(w / scale + zp, qmin, qmax)), round half to even
///
/// and back, `(q - zp) · scale` in T. Stored (`pack-quantized`): q + 2^(b-1) as a dense little-endian bit stream
/// per row (element i at bits i·b ..< (i+1)·b, 32 elements filling b int32 words), `ceil(cols · b / 32)` int32
/// words per row; asymmetric zero points packed the same way down each column of the [rows, groups] matrix.
public enum CompressedTensorsInt {
    public struct Result {
        public var codes: [Int8]
        /// Rounded to T already: rows × groups.
        public var scales: [Float]
        public var zeroPoints: [Int8]
    }

    /// `groupSize` nil: one scale per row.
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, bits: Int, groupSize: Int?, symmetric: Bool,
                                arithmetic t: GGMLType) -> Result {
        let g = groupSize ?? cols, groups = cols / g
        var r = Result(codes: [Int8](repeating: 0, count: rows * cols), scales: [Float](repeating: 0, count: rows * groups),
                       zeroPoints: [Int8](repeating: 0, count: rows * groups))
        for row in 0..<rows {
            for k in 0..<groups {
                let x = w + row * cols + k * g
                let (scale, zp) = parameters(x, count: g, bits: bits, symmetric: symmetric, arithmetic: t)
                r.scales[row * groups + k] = scale
                r.zeroPoints[row * groups + k] = Int8(zp)
                for j in 0..<g {
                    r.codes[row * cols + k * g + j] = Int8(code(x[j], scale: scale, zeroPoint: zp, bits: bits, symmetric: symmetric, arithmetic: t))
                }
            }
        }
        return r
    }

    /// One group's scale (rounded to T) and zero point (0 when symmetric), from its minimum and maximum.
    public static func parameters(_ x: UnsafePointer<Float>, count g: Int, bits: Int, symmetric: Bool,
                                  arithmetic t: GGMLType) -> (scale: Float, zeroPoint: Float) {
        let qmin = -Float(1 << (bits - 1)), qmax = Float((1 << (bits - 1)) - 1)
        let range = Float((1 << bits) - 1)
        var lo: Float = 0, hi: Float = 0
        for j in 0..<g { lo = Swift.min(lo, x[j]); hi = Swift.max(hi, x[j]) }
        var scale: Float, zp: Float = 0
        if symmetric {
            scale = t.roundTrip(Swift.max(abs(lo), abs(hi)) / t.roundTrip(range / 2))
        } else {
            scale = t.roundTrip(t.roundTrip(hi - lo) / range)
        }
        if scale == 0 { scale = t.machineEpsilon }
        if !symmetric {
            zp = Swift.min(Swift.max(t.roundTrip(qmin - t.roundTrip(lo / scale)), qmin), qmax).rounded(.toNearestOrEven)
        }
        return (scale, zp)
    }

    /// The code of `x` in a group of this scale and zero point: round(clamp(x / scale + zp, qmin, qmax)), in T.
    @inline(__always)
    public static func code(_ x: Float, scale: Float, zeroPoint zp: Float, bits: Int, symmetric: Bool, arithmetic t: GGMLType) -> Int32 {
        let qmin = -Float(1 << (bits - 1)), qmax = Float((1 << (bits - 1)) - 1)
        var v = t.roundTrip(x / scale)
        if !symmetric { v = t.roundTrip(v + zp) }
        return Int32(Swift.min(Swift.max(v, qmin), qmax).rounded(.toNearestOrEven))
    }

    /// What a code stands for, as compressed-tensors dequantizes it: (q - zp) · scale in T.
    @inline(__always)
    public static func value(_ q: Int32, scale: Float, zeroPoint zp: Float, arithmetic t: GGMLType) -> Float {
        t.roundTrip((Float(q) - zp) * scale)
    }

    /// Int32 words per packed row of `count` values.
    public static func wordsPerRow(_ count: Int, bits: Int) -> Int { (count * bits + 31) / 32 }

    /// `rows` rows of `cols` signed codes packed row by row (little-endian int32 words).
    public static func pack(_ codes: [Int8], rows: Int, cols: Int, bits: Int) -> [UInt8] {
        let words = wordsPerRow(cols, bits: bits)
        var out = [UInt8](repeating: 0, count: rows * words * 4)
        let offset = 1 << (bits - 1), mask = (1 << bits) - 1
        for r in 0..<rows {
            for c in 0..<cols {
                let v = UInt64((Int(codes[r * cols + c]) + offset) & mask)
                let bit = c * bits
                let word = UInt64(v) << UInt64(bit % 8)
                // Little-endian words make the row one little-endian bit stream: OR the value in byte by byte.
                var b = r * words * 4 + bit / 8, rest = word
                while rest != 0 { out[b] |= UInt8(truncatingIfNeeded: rest); rest >>= 8; b += 1 }
            }
        }
        return out
    }

    /// Zero points (rows × groups) packed down each column: [ceil(rows · b / 32), groups] int32 words.
    public static func packColumns(_ codes: [Int8], rows: Int, groups: Int, bits: Int) -> [UInt8] {
        var transposed = [Int8](repeating: 0, count: codes.count)
        for r in 0..<rows { for g in 0..<groups { transposed[g * rows + r] = codes[r * groups + g] } }
        let packed = pack(transposed, rows: groups, cols: rows, bits: bits)   // [groups, words]
        let words = wordsPerRow(rows, bits: bits)
        var out = [UInt8](repeating: 0, count: packed.count)
        for g in 0..<groups { for w in 0..<words { for k in 0..<4 { out[(w * groups + g) * 4 + k] = packed[(g * words + w) * 4 + k] } } }
        return out
    }

    /// Value `index` of a packed row (the signed code).
    @inline(__always)
    public static func unpack(_ row: UnsafePointer<UInt8>, _ index: Int, bits: Int) -> Int {
        let bit = index * bits
        var v = 0
        var b = bit / 8, shift = -(bit % 8)
        while shift < bits {
            v |= shift >= 0 ? Int(row[b]) << shift : Int(row[b]) >> -shift
            b += 1
            shift += 8
        }
        return (v & ((1 << bits) - 1)) - (1 << (bits - 1))
    }
}

/// A compressed-tensors `pack-quantized` weight as stored: decodes rows, `(q - zp) · scale` rounded to the scale's
/// float type, as compressed-tensors' dequantizer computes it.
public struct PackedIntMatrix: RowDecoder, @unchecked Sendable {
    public let data: UnsafeRawPointer
    public let rows: Int, cols: Int
    public let bits: Int, groupSize: Int
    public let scales: [Float]
    /// Per group, rows × groups (empty: symmetric).
    public let zeroPoints: [Int8]
    public let arithmetic: GGMLType

    public init(data: UnsafeRawPointer, rows: Int, cols: Int, bits: Int, groupSize: Int, scales: [Float], zeroPoints: [Int8], arithmetic: GGMLType) {
        (self.data, self.rows, self.cols, self.bits, self.groupSize) = (data, rows, cols, bits, groupSize)
        (self.scales, self.zeroPoints, self.arithmetic) = (scales, zeroPoints, arithmetic)
    }

    public var scheme: String {
        "int\(bits) \(zeroPoints.isEmpty ? "symmetric" : "asymmetric"), \(groupSize == cols ? "per channel" : "group \(groupSize)") (pack-quantized)"
    }

    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let words = CompressedTensorsInt.wordsPerRow(cols, bits: bits), groups = cols / groupSize
        let row = data.assumingMemoryBound(to: UInt8.self) + r * words * 4
        for c in 0..<cols {
            let g = r * groups + c / groupSize
            let q = CompressedTensorsInt.unpack(row, c, bits: bits) - (zeroPoints.isEmpty ? 0 : Int(zeroPoints[g]))
            out[c] = arithmetic.roundTrip(Float(q) * scales[g])
        }
    }
}

/// NVFP4 weights as compressed-tensors computes them (`nvfp4-pack-quantized`, llm-compressor's NVFP4A16): E2M1
/// values in groups of 16 with an E4M3 scale each, under one F32 global scale per tensor:
///
///     global = 448 · 6 / max(amax of the tensor, T's smallest normal), in T as PyTorch computes a number over a
///              tensor (the reciprocal, then the product, each rounded to T); 1 where that overflows T
///     per group: s = amax / 6 in T; code = E4M3 of global · s (in F32; 0.125, E4M3's epsilon, where it is 0)
///     values: E2M1 of w / (e4m3(code) / global) in F32, round to nearest even (clamped to ±6); a value that rounds
///     to zero keeps its sign unless it is zero itself
///
/// Codes pack two to a byte, the first in the low nibble. Back: e2m1 · (e4m3(code) / global), in F32, rounded to
/// BF16 (compressed-tensors unpacks FP4 to BF16 and dequantizes in it).
public enum CompressedTensorsNVFP4 {
    public static let group = 16

    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, arithmetic t: GGMLType)
        -> (packed: [UInt8], scales: [UInt8], global: Float) {
        var amax: Float = 0
        for i in 0..<(rows * cols) { amax = Swift.max(amax, abs(w[i])) }
        let tiny: Float = t == .f16 ? 0x1p-14 : Float.leastNormalMagnitude
        // PyTorch divides a number by a tensor as the tensor's reciprocal times the number, each rounded to T.
        var global = t.roundTrip(t.roundTrip(1 / Swift.max(amax, tiny)) * 2688)
        if !global.isFinite { global = 1 }
        let groups = rows * cols / group
        var packed = [UInt8](repeating: 0, count: rows * cols / 2), scales = [UInt8](repeating: 0, count: groups)
        for g in 0..<groups {
            let x = w + g * group
            var m: Float = 0
            for j in 0..<group { m = Swift.max(m, abs(x[j])) }
            let local = t.roundTrip(m / 6)
            var code = FP8.encode(global * local, .e4m3fn)
            if code == 0 { code = FP8.encode(0.125, .e4m3fn) }
            scales[g] = code
            let q = FP8.e4m3fnTable[Int(code)] / global
            for j in stride(from: 0, to: group, by: 2) {
                packed[(g * group + j) / 2] = encode(x[j] / q) | encode(x[j + 1] / q) << 4
            }
        }
        return (packed, scales, global)
    }

    /// compressed-tensors' FP4 cast: E2M1 to nearest even, the sign of a nonzero value kept (so a small negative
    /// gives -0), zero itself (either sign) +0.
    @inline(__always)
    static func encode(_ v: Float) -> UInt8 { v == 0 ? 0 : E2M1.encode(Swift.min(Swift.max(v, -6), 6)) }
}

extension CompressedTensorsNVFP4 {
    /// A compressed-tensors NVFP4 weight as stored, decoded as its dequantizer does: e2m1 · (e4m3(code) / global)
    /// in Float, rounded to BF16.
    public static func matrix(data: UnsafeRawPointer, rows: Int, cols: Int, scaleCodes: UnsafePointer<UInt8>, global: Float) -> MicroscaledMatrix {
        MicroscaledMatrix(data: data, rows: rows, cols: cols, element: .e2m1, groupSize: group,
                          scales: (0..<(rows * cols / group)).map { FP8.e4m3fnTable[Int(scaleCodes[$0])] / global },
                          arithmetic: .bf16, scheme: "nvfp4, group 16 (nvfp4-pack-quantized)")
    }
}
