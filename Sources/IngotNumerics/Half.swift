// Scalar conversions between binary32 and the 16-bit float formats stored in model files.
//
// The F16 conversion rounds to nearest-even and maps every NaN to the canonical quiet NaN 0x7E00 (sign kept),
// which is what ggml's portable conversion does; a hardware conversion would keep NaN payloads instead.

/// IEEE binary16 bits to binary32. Exact for every input, subnormals included.
@inlinable @inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let w = UInt32(h) << 16
    let sign = w & 0x8000_0000
    let twoW = w &+ w
    // Normal numbers: move exponent and mantissa into place, then rebias by multiplying with 2^-112.
    let normalized = Float(bitPattern: (twoW >> 4) &+ (0xE0 << 23)) * 0x1.0p-112
    // Subnormals: build 0.5 + m * 2^-24 ... and subtract the 0.5 bias (exact).
    let denormalized = Float(bitPattern: (twoW >> 17) | (126 << 23)) - 0.5
    let magnitude = twoW < (1 << 27) ? denormalized.bitPattern : normalized.bitPattern
    return Float(bitPattern: sign | magnitude)
}

/// binary32 to IEEE binary16 bits, round to nearest-even, overflow to infinity, NaN to 0x7E00.
@inlinable @inline(__always)
public func floatToHalf(_ f: Float) -> UInt16 {
    // Scaling by 2^112 then 2^-110 leaves small values to be rounded by the addition below and pushes values
    // beyond the half range to infinity.
    var base = (abs(f) * 0x1.0p+112) * 0x1.0p-110
    let w = f.bitPattern
    let shl1 = w &+ w
    let sign = w & 0x8000_0000
    var bias = shl1 & 0xFF00_0000
    if bias < 0x7100_0000 { bias = 0x7100_0000 }
    base = Float(bitPattern: (bias >> 1) &+ 0x0780_0000) + base
    let bits = base.bitPattern
    let exponentBits = (bits >> 13) & 0x0000_7C00
    let mantissaBits = bits & 0x0000_0FFF
    let nonsign = exponentBits &+ mantissaBits
    return UInt16(truncatingIfNeeded: (sign >> 16) | (shl1 > 0xFF00_0000 ? 0x7E00 : nonsign))
}

/// bfloat16 bits to binary32 (exact).
@inlinable @inline(__always)
public func bfloat16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// binary32 to bfloat16 bits: round to nearest-even; a NaN keeps its top bits and is forced quiet.
@inlinable @inline(__always)
public func floatToBFloat16(_ f: Float) -> UInt16 {
    let i = f.bitPattern
    if i & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (i >> 16) | 64) }
    return UInt16(truncatingIfNeeded: (i &+ (0x7FFF &+ ((i >> 16) & 1))) >> 16)
}

/// E8M0 scale byte to half its value, as used by MXFP4 whose E2M1 values are stored doubled.
@inline(__always)
func e8m0ToFloatHalf(_ x: UInt8) -> Float {
    let bits: UInt32 = x < 2 ? (0x0020_0000 << UInt32(x)) : (UInt32(x) - 1) << 23
    return Float(bitPattern: bits)
}

/// E8M0 scale byte to its value 2^(x-127); 0xFF is NaN.
@inline(__always)
func e8m0ToFloat(_ x: UInt8) -> Float {
    if x == 0xFF { return .nan }
    let bits: UInt32 = x == 0 ? 0x0040_0000 : UInt32(x) << 23
    return Float(bitPattern: bits)
}

// MARK: - C conversion semantics
//
// The reference quantizers convert float to small integers the way C does on x86-64: a truncating conversion to
// int32 (which yields INT32_MIN for NaN and out-of-range values) and then a store of the low byte. These helpers
// do the same without trapping, so that no input can crash a quantizer.

/// Truncating float to int32 conversion with the x86-64 result for NaN and overflow (INT32_MIN).
@inline(__always)
func truncatingInt32(_ f: Float) -> Int32 {
    if f.isNaN || f >= 2147483648.0 || f < -2147483648.0 { return Int32.min }
    return Int32(f)
}

/// ggml's `nearest_int`: round half away from zero through the 1.5 * 2^23 trick (exact for |f| < 2^22).
@inline(__always)
func nearestInt(_ f: Float) -> Int32 {
    let v = f + 12582912.0
    return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) &- 0x0040_0000
}

@inline(__always) func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always) func storeHalf(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: Float) {
    p.storeBytes(of: floatToHalf(value), toByteOffset: offset, as: UInt16.self)
}
