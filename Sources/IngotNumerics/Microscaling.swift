import IngotFormats

/// E2M1 (FP4): sign, 2 exponent bits (bias 1), 1 mantissa bit; 16 codes, no infinities or NaN. Magnitudes
/// 0, 0.5, 1, 1.5, 2, 3, 4, 6; code | 8 is the negative.
public enum E2M1 {
    public static let table: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    public static let maxFinite: Float = 6

    /// The code of `x` as `ml_dtypes.float4_e2m1fn` rounds: nearest, ties to even, the sign kept (small negatives
    /// give -0); beyond ±6, infinities included, saturates to ±6 (ml_dtypes does too). NaN has no code: 0 here.
    public static func encode(_ x: Float) -> UInt8 {
        guard !x.isNaN else { return 0 }
        let sign: UInt8 = x.sign == .minus ? 8 : 0
        let a = abs(x)
        // A value at a midpoint goes to the even code of its two neighbours (0, 1.0, 2.0, 4.0).
        let k: UInt8 = a <= 0.25 ? 0 : a < 0.75 ? 1 : a <= 1.25 ? 2 : a < 1.75 ? 3 : a <= 2.5 ? 4 : a < 3.5 ? 5 : a <= 5 ? 6 : 7
        return sign | k
    }

    /// Midpoints between neighbouring magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
    static let midpoints: [Float] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5]

    /// The code MLX's CPU quantizer gives `x`: the first entry of the table above at the least distance
    /// |x - entry|. MLX computes the distances in the weight's float type, but a value and its two nearest table
    /// entries are within a factor of two of each other (or the entry is 0), so those differences are exact in any
    /// float type and the choice is the exact one. A tie goes to the smaller magnitude (0.25 -> 0, 0.75 -> 0.5,
    /// 2.5 -> 2), a value between -0.25 and 0 gives +0 (code 0, listed before -0), and NaN or an infinity gives
    /// code 0.
    public static func encodeMLX(_ x: Float) -> UInt8 {
        guard x.isFinite else { return 0 }
        let a = abs(x)
        var k = 0
        while k < 7 && a > midpoints[k] { k += 1 }
        return k == 0 ? 0 : UInt8(k) | (x < 0 ? 8 : 0)
    }
}

/// E8M0: an unsigned power of two, 2^(code - 127), codes 0...254; 255 is NaN (OCP microscaling scales,
/// `ml_dtypes.float8_e8m0fnu`).
public enum E8M0 {
    public static func decode(_ code: UInt8) -> Float { e8m0ToFloat(code) }

    /// The code of `x` as `ml_dtypes.float8_e8m0fnu` rounds: the nearest power of two, a value halfway between
    /// two (1.5 · 2^e) going up. Below 2^-126 (binary32's subnormals) ml_dtypes gives 2^-126 to anything above
    /// 2^-127 and 2^-127 (code 0) to the rest, and so does this. Zero, negatives, NaN, infinities and values that
    /// round past 2^127 have no code: ml_dtypes gives NaN (255) for them, and so does this.
    public static func encode(_ x: Float) -> UInt8 {
        guard x.isFinite, x > 0 else { return 255 }
        if x < 0x1p-126 { return x > 0x1p-127 ? 1 : 0 }
        let e = x.exponent, up = x.significand >= 1.5
        let code = Int(e) + (up ? 1 : 0) + 127
        if code > 254 { return 255 }
        return UInt8(Swift.max(code, 0))
    }

    /// The smallest e with 2^e >= x, for finite x > 0, exactly (`ceil(log2(x))`), as MLX's mxfp4 and mxfp8 scales
    /// are chosen so that no value of a group exceeds the largest element value.
    public static func ceilExponent(_ x: Float) -> Int {
        let e = Int(x.exponent)
        return x.significand == 1 ? e : e + 1
    }
}

/// How MLX quantizes a weight (`mlx.core.quantize`'s `mode`, `bits`, `group_size`): affine (bits 2, 3, 4, 5, 6, 8;
/// groups of 32, 64, 128; scale and bias per group in the weight's float type) or one of the microscaling float
/// modes: mxfp4 (E2M1 values, E8M0 scale per 32), mxfp8 (E4M3 values, E8M0 scale per 32), nvfp4 (E2M1 values, E4M3
/// scale per 16).
public struct MLXQuantization: Hashable, Sendable, CustomStringConvertible {
    public enum Mode: String, Sendable, CaseIterable { case affine, mxfp4, mxfp8, nvfp4 }

    public let mode: Mode
    public let bits: Int
    public let groupSize: Int

    /// nil where MLX has no such combination.
    public init?(mode: Mode, bits: Int? = nil, groupSize: Int? = nil) {
        let (b, g) = MLXQuantization.defaults(mode)
        let bits = bits ?? b, groupSize = groupSize ?? g
        switch mode {
        case .affine: guard MLXAffine.supportedBits.contains(bits), MLXAffine.supportedGroups.contains(groupSize) else { return nil }
        case .mxfp4, .mxfp8, .nvfp4: guard bits == b, groupSize == g else { return nil }
        }
        (self.mode, self.bits, self.groupSize) = (mode, bits, groupSize)
    }

    /// mlx-lm's defaults: affine 4-bit groups of 64, mxfp4 4/32, mxfp8 8/32, nvfp4 4/16.
    public static func defaults(_ mode: Mode) -> (bits: Int, groupSize: Int) {
        switch mode {
        case .affine: (4, 64)
        case .mxfp4: (4, 32)
        case .mxfp8: (8, 32)
        case .nvfp4: (4, 16)
        }
    }

    /// What the mode accepts, for error messages.
    public static func accepted(_ mode: Mode) -> String {
        switch mode {
        case .affine: "bits 2, 3, 4, 5, 6 or 8 with group size 32, 64 or 128"
        case .mxfp4: "bits 4 with group size 32"
        case .mxfp8: "bits 8 with group size 32"
        case .nvfp4: "bits 4 with group size 16"
        }
    }

    /// Affine stores a bias per group beside the scale.
    public var hasBiases: Bool { mode == .affine }

    public var description: String { mode == .affine ? "affine \(bits)-bit, group \(groupSize)" : "\(mode.rawValue) (group \(groupSize))" }
}

/// MLX's microscaling float modes as `mlx.core.quantize` computes them on the CPU, where each step is an MLX array
/// operation in the weight's float type (F16, BF16 or F32; each result rounded to it):
///
///     amax = max |w| over the group;  s = amax / (6 for FP4, 448 for FP8)
///     mxfp4, mxfp8: e = ceil(log2 s) exactly (0 when s is 0); the scale code is e + 127 (E8M0); w / 2^e is encoded
///     nvfp4: the scale code is s as E4M3 (saturating), d its value; w / d is encoded (every code 0 when d is 0)
///     values: E2M1 by E2M1.encodeMLX (FP4), or E4M3FN, round to nearest even, saturating (FP8)
///
/// FP4 codes pack two to a byte, the first in the low nibble (eight to a little-endian uint32); FP8 codes one to a
/// byte. One scale byte per group. Where s is under 2^-127 (a group of values under 6 · 2^-127) MLX's exponent wraps
/// past uint8 to a code that decodes 2^128 times too large; Ingot clamps e to -127 instead.
public enum MLXMicroscaling {
    public static func elementBits(_ mode: MLXQuantization.Mode) -> Int { mode == .mxfp8 ? 8 : 4 }
    static func maxElement(_ mode: MLXQuantization.Mode) -> Float { mode == .mxfp8 ? 448 : 6 }

    /// Codes (rows · cols · bits / 8 bytes) and scale codes (one per group) of `rows` x `cols` values (cols a
    /// multiple of the group size; each value one of `arithmetic`'s, as MLX holds the weight), computed in
    /// `arithmetic`.
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, mode: MLXQuantization.Mode,
                                arithmetic: GGMLType, threads: Int = 1) -> (packed: [UInt8], scales: [UInt8]) {
        precondition(mode != .affine)
        let group = MLXQuantization.defaults(mode).groupSize
        let groups = rows * cols / group
        let groupBytes = group * elementBits(mode) / 8
        var packed = [UInt8](repeating: 0, count: groups * groupBytes)
        var scales = [UInt8](repeating: 0, count: groups)
        packed.withUnsafeMutableBufferPointer { p in scales.withUnsafeMutableBufferPointer { s in
            let ws = UnsafeSendable(w), ps = UnsafeSendable(UnsafePointer(p.baseAddress!)), ss = UnsafeSendable(UnsafePointer(s.baseAddress!))
            let workers = max(1, min(threads, groups / 256))
            try? parallelFor(0..<workers, threads: workers) { k, _ in
                let g0 = groups * k / workers, g1 = groups * (k + 1) / workers
                let out = UnsafeMutablePointer(mutating: ps.pointer), sc = UnsafeMutablePointer(mutating: ss.pointer)
                for g in g0..<g1 {
                    sc[g] = quantizeGroup(ws.pointer + g * group, count: group, mode: mode, arithmetic: arithmetic,
                                          into: out + g * groupBytes)
                }
            }
        } }
        return (packed, scales)
    }

    /// One group: its codes into `out`, its scale code returned.
    static func quantizeGroup(_ x: UnsafePointer<Float>, count: Int, mode: MLXQuantization.Mode, arithmetic t: GGMLType,
                              into out: UnsafeMutablePointer<UInt8>) -> UInt8 {
        var amax: Float = 0
        for j in 0..<count { amax = Swift.max(amax, abs(x[j])) }
        let s = t.roundTrip(amax / maxElement(mode))
        let scaleCode: UInt8, divisor: Float
        if mode == .nvfp4 {
            scaleCode = FP8.encode(s, .e4m3fn)
            divisor = FP8.e4m3fnTable[Int(scaleCode)]
        } else {
            let e = s == 0 ? 0 : Swift.max(E8M0.ceilExponent(s), -127)
            scaleCode = UInt8(e + 127)
            divisor = t.roundTrip(Float(sign: .plus, exponent: e, significand: 1))
        }
        if divisor == 0 {
            for j in 0..<(count * elementBits(mode) / 8) { out[j] = 0 }
            return scaleCode
        }
        if mode == .mxfp8 {
            for j in 0..<count { out[j] = FP8.encode(t.roundTrip(x[j] / divisor), .e4m3fn) }
        } else {
            for j in stride(from: 0, to: count, by: 2) {
                let lo = E2M1.encodeMLX(t.roundTrip(x[j] / divisor))
                let hi = E2M1.encodeMLX(t.roundTrip(x[j + 1] / divisor))
                out[j / 2] = lo | hi << 4
            }
        }
        return scaleCode
    }

    /// The value of scale code `c`: E4M3 for nvfp4, E8M0 (2^(c - 127)) otherwise.
    public static func scaleValue(_ c: UInt8, mode: MLXQuantization.Mode) -> Float {
        mode == .nvfp4 ? FP8.e4m3fnTable[Int(c)] : E8M0.decode(c)
    }
}

/// A weight stored as small float codes, E2M1 two to a byte (the first in the low nibble) or E4M3 one to a byte,
/// with one scale per group of each row: MLX's microscaling modes and compressed-tensors' NVFP4. Each value is
/// code · scale in Float, rounded to `arithmetic` (compressed-tensors dequantizes NVFP4 in BF16).
public struct MicroscaledMatrix: RowDecoder, @unchecked Sendable {
    public enum Element: Sendable { case e2m1, e4m3 }

    public let data: UnsafeRawPointer
    public let rows: Int, cols: Int
    public let element: Element
    public let groupSize: Int
    /// Per group, row-major, as Floats.
    public let scales: [Float]
    public let arithmetic: GGMLType
    public let scheme: String

    public init(data: UnsafeRawPointer, rows: Int, cols: Int, element: Element, groupSize: Int, scales: [Float],
                arithmetic: GGMLType = .f32, scheme: String) {
        (self.data, self.rows, self.cols, self.element, self.groupSize) = (data, rows, cols, element, groupSize)
        (self.scales, self.arithmetic, self.scheme) = (scales, arithmetic, scheme)
    }

    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let groups = cols / groupSize
        let bytes = data.assumingMemoryBound(to: UInt8.self)
        switch element {
        case .e4m3:
            let src = bytes + r * cols
            FP8.e4m3fnTable.withUnsafeBufferPointer { t in
                for g in 0..<groups {
                    let s = scales[r * groups + g]
                    for c in (g * groupSize)..<((g + 1) * groupSize) { out[c] = t[Int(src[c])] * s }
                }
            }
        case .e2m1:
            let src = bytes + r * cols / 2
            E2M1.table.withUnsafeBufferPointer { t in
                for g in 0..<groups {
                    let s = scales[r * groups + g]
                    for c in stride(from: g * groupSize, to: (g + 1) * groupSize, by: 2) {
                        let b = src[c / 2]
                        out[c] = t[Int(b & 15)] * s
                        out[c + 1] = t[Int(b >> 4)] * s
                    }
                }
            }
        }
        if arithmetic != .f32 { for c in 0..<cols { out[c] = arithmetic.roundTrip(out[c]) } }
    }
}

extension MLXMicroscaling {
    /// An MLX weight in one of the microscaling modes as stored: codes and a scale code per group of each row.
    public static func matrix(data: UnsafeRawPointer, rows: Int, cols: Int, mode: MLXQuantization.Mode,
                              scaleCodes: UnsafePointer<UInt8>) -> MicroscaledMatrix {
        let group = MLXQuantization.defaults(mode).groupSize
        return MicroscaledMatrix(data: data, rows: rows, cols: cols, element: mode == .mxfp8 ? .e4m3 : .e2m1, groupSize: group,
                                 scales: (0..<(rows * cols / group)).map { scaleValue(scaleCodes[$0], mode: mode) },
                                 scheme: "mlx \(mode.rawValue)")
    }
}
