// Element-wise conversions and the hot 32-value block formats, each in two forms with the same signature:
// `ReferenceKernels` (one value at a time, the specification) and `SIMDKernels` (eight or sixteen lanes with
// Swift SIMD types: SSE2 on baseline x86-64, AVX2/AVX-512 when built for such a CPU, NEON on arm64). The SIMD
// forms compute the same operations in the same order per value, so results are bit-identical; blocks with
// non-finite inputs, whose reference result depends on the order of comparisons, go to the reference.

enum ReferenceKernels {
    static func floatsToHalves(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        let out = dst.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { out[i] = floatToHalf(src[i]) }
    }

    static func halvesToFloats(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    }

    static func floatsToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        let out = dst.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { out[i] = floatToBFloat16(src[i]) }
    }

    static func bf16sToFloats(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = bfloat16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    }
}

enum SIMDKernels {
    typealias F8 = SIMD8<Float>
    typealias U8 = SIMD8<UInt32>
    typealias I8 = SIMD8<Int32>

    @inline(__always)
    static func bits(_ v: F8) -> U8 { unsafeBitCast(v, to: U8.self) }
    @inline(__always)
    static func floats(_ v: U8) -> F8 { unsafeBitCast(v, to: F8.self) }

    /// `floatToHalf` on eight lanes: the same scale-and-add rounding, with selects in place of branches.
    @inline(__always)
    static func halfBits(_ f: F8) -> U8 {
        let w = bits(f)
        var base = (floats(w & 0x7FFF_FFFF) * 0x1.0p+112) * 0x1.0p-110
        let shl1 = w &+ w
        let sign = w & 0x8000_0000
        // Unsigned comparisons are made signed on values shifted below 2^31 (SSE2 compares signed lanes only).
        var bias = I8(truncatingIfNeeded: (shl1 & 0xFF00_0000) &>> 1)
        bias = bias.replacing(with: I8(repeating: 0x3880_0000), where: bias .< I8(repeating: 0x3880_0000))
        base = floats(U8(truncatingIfNeeded: bias) &+ 0x0780_0000) + base
        let b = bits(base)
        let isNaN = I8(truncatingIfNeeded: w & 0x7FFF_FFFF) .> I8(repeating: 0x7F80_0000)
        let nonsign = (((b &>> 13) & 0x7C00) &+ (b & 0x0FFF)).replacing(with: U8(repeating: 0x7E00), where: isNaN)
        return (sign &>> 16) | nonsign
    }

    static func floatsToHalves(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        let out = dst.assumingMemoryBound(to: UInt16.self)
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(src + i).loadUnaligned(as: F8.self)
            let h = SIMD8<UInt16>(truncatingIfNeeded: halfBits(v))
            UnsafeMutableRawPointer(out + i).storeBytes(of: h, as: SIMD8<UInt16>.self)
            i += 8
        }
        while i < count { out[i] = floatToHalf(src[i]); i += 1 }
    }

    @inline(__always)
    static func floatsFromHalf(_ h: SIMD8<UInt16>) -> F8 {
        let w = U8(truncatingIfNeeded: h) &<< 16
        let sign = w & 0x8000_0000
        let twoW = w &+ w
        let normalized = floats((twoW &>> 4) &+ (0xE0 << 23)) * 0x1.0p-112
        let denormalized = floats((twoW &>> 17) | (126 << 23)) - 0.5
        let isNormal = I8(truncatingIfNeeded: twoW &>> 1) .>= I8(repeating: 1 << 26)
        let magnitude = bits(denormalized).replacing(with: bits(normalized), where: isNormal)
        return floats(sign | magnitude)
    }

    static func halvesToFloats(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: floatsFromHalf(h), as: F8.self)
            i += 8
        }
        while i < count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
    }

    static func floatsToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int) {
        let out = dst.assumingMemoryBound(to: UInt16.self)
        var i = 0
        while i + 8 <= count {
            let w = bits(UnsafeRawPointer(src + i).loadUnaligned(as: F8.self))
            var r = (w &+ (0x7FFF &+ ((w &>> 16) & 1))) &>> 16
            r.replace(with: (w &>> 16) | 64, where: I8(truncatingIfNeeded: w & 0x7FFF_FFFF) .> I8(repeating: 0x7F80_0000))
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD8<UInt16>(truncatingIfNeeded: r), as: SIMD8<UInt16>.self)
            i += 8
        }
        while i < count { out[i] = floatToBFloat16(src[i]); i += 1 }
    }

    static let magic = F8(repeating: 12582912)  // 1.5 * 2^23

    /// `copysign(1, v)` per lane.
    @inline(__always)
    static func unitWithSign(_ v: F8) -> F8 { floats(bits(F8(repeating: 1)) | (bits(v) & 0x8000_0000)) }

    /// Truncation toward zero of values below 2^22 in magnitude, in float: round to nearest with the 1.5 * 2^23
    /// trick, then step back toward zero where that rounded away. Exact, and only adds, compares and selects.
    @inline(__always)
    static func truncated(_ v: F8) -> F8 {
        let r = (v + magic) - magic
        return r.replacing(with: r - unitWithSign(v), where: abs8(r) .> abs8(v))
    }

    /// The integer value of an integral float below 2^22 in magnitude (its bits after adding 1.5 * 2^23).
    @inline(__always)
    static func integers(_ integral: F8) -> I8 {
        I8(truncatingIfNeeded: bits(integral + magic)) &- 0x4B40_0000
    }

    /// `roundf` per lane (half away from zero) for values below 2^22: truncate, then step away from zero when the
    /// dropped fraction is at least one half. Every step is exact.
    @inline(__always)
    static func roundAway(_ v: F8) -> I8 {
        let t = truncated(v)
        let frac = v - t
        let r = t.replacing(with: t + unitWithSign(v), where: abs8(frac) .>= 0.5)
        return integers(r)
    }

    /// Whether any lane of a 32-value block is NaN (the reference's running maximum then depends on position).
    @inline(__always)
    static func hasNaN(_ a: F8, _ b: F8, _ c: F8, _ d: F8) -> Bool {
        any((a .!= a) .| (b .!= b) .| (c .!= c) .| (d .!= d))
    }

    /// Lane-wise maximum of non-NaN values.
    @inline(__always)
    static func vmax(_ a: F8, _ b: F8) -> F8 { a.replacing(with: b, where: b .> a) }

    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = UnsafeRawPointer(x + i * 32), yb = y + i * 34
            let v0 = xb.loadUnaligned(as: F8.self), v1 = xb.loadUnaligned(fromByteOffset: 32, as: F8.self)
            let v2 = xb.loadUnaligned(fromByteOffset: 64, as: F8.self), v3 = xb.loadUnaligned(fromByteOffset: 96, as: F8.self)
            let m = vmax(vmax(abs8(v0), abs8(v1)), vmax(abs8(v2), abs8(v3)))
            let amax = m.max()
            guard amax.isFinite, !hasNaN(v0, v1, v2, v3) else { LegacyQuants.quantizeQ8_0(x + i * 32, yb, blocks: 1); continue }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { LegacyQuants.quantizeQ8_0(x + i * 32, yb, blocks: 1); continue }
            storeHalf(yb, 0, d)
            (yb + 2).storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: roundAway(v0 * id)), as: SIMD8<Int8>.self)
            (yb + 10).storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: roundAway(v1 * id)), as: SIMD8<Int8>.self)
            (yb + 18).storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: roundAway(v2 * id)), as: SIMD8<Int8>.self)
            (yb + 26).storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: roundAway(v3 * id)), as: SIMD8<Int8>.self)
        }
    }

    @inline(__always)
    static func abs8(_ v: F8) -> F8 { floats(bits(v) & 0x7FFF_FFFF) }

    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 18
            // The value of largest magnitude, first one on ties, as the reference scans.
            let raw = UnsafeRawPointer(xb)
            let v0 = raw.loadUnaligned(as: F8.self), v1 = raw.loadUnaligned(fromByteOffset: 32, as: F8.self)
            let v2 = raw.loadUnaligned(fromByteOffset: 64, as: F8.self), v3 = raw.loadUnaligned(fromByteOffset: 96, as: F8.self)
            let amax = vmax(vmax(abs8(v0), abs8(v1)), vmax(abs8(v2), abs8(v3))).max()
            guard amax.isFinite, !hasNaN(v0, v1, v2, v3) else { LegacyQuants.quantizeQ4_0(xb, yb, blocks: 1); continue }
            let mx = firstWithMagnitude(amax, xb)
            let d = mx / -8
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { LegacyQuants.quantizeQ4_0(xb, yb, blocks: 1); continue }
            storeHalf(yb, 0, d)
            let lo0 = integers(truncated(v0 * id + 8.5)), lo1 = integers(truncated(v1 * id + 8.5))
            let hi0 = integers(truncated(v2 * id + 8.5)), hi1 = integers(truncated(v3 * id + 8.5))
            let fifteen = I8(repeating: 15)
            @inline(__always) func cap(_ v: I8) -> I8 { v.replacing(with: fifteen, where: v .> fifteen) }
            let a = SIMD16<Int32>(lowHalf: cap(lo0), highHalf: cap(lo1))
            let b = SIMD16<Int32>(lowHalf: cap(hi0), highHalf: cap(hi1))
            let packed = SIMD16<UInt8>(truncatingIfNeeded: a | (b &<< 4))
            (yb + 2).storeBytes(of: packed, as: SIMD16<UInt8>.self)
        }
    }

    /// Loads the 32 values of a block as four lanes-of-eight vectors.
    @inline(__always)
    static func load32(_ x: UnsafePointer<Float>) -> (F8, F8, F8, F8) {
        let r = UnsafeRawPointer(x)
        return (r.loadUnaligned(as: F8.self), r.loadUnaligned(fromByteOffset: 32, as: F8.self),
                r.loadUnaligned(fromByteOffset: 64, as: F8.self), r.loadUnaligned(fromByteOffset: 96, as: F8.self))
    }

    /// Stores 16 nibble pairs (low nibble from `a`, value j; high from `b`, value j + 16) at `y`, and returns
    /// the fifth bits as Q5's qh word (bit j from a, bit j + 16 from b).
    @inline(__always)
    static func storeNibbles(_ a0: I8, _ a1: I8, _ b0: I8, _ b1: I8, _ y: UnsafeMutableRawPointer) -> UInt32 {
        let a = SIMD16<Int32>(lowHalf: a0, highHalf: a1), b = SIMD16<Int32>(lowHalf: b0, highHalf: b1)
        y.storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: (a & 0xF) | ((b & 0xF) &<< 4)), as: SIMD16<UInt8>.self)
        let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let low = (((a &>> 4) & 1) &<< lanes).wrappedSum(), high = (((b &>> 4) & 1) &<< lanes).wrappedSum()
        return UInt32(truncatingIfNeeded: low) | UInt32(truncatingIfNeeded: high) << 16
    }

    @inline(__always)
    static func capped(_ v: I8, _ limit: Int32) -> I8 { v.replacing(with: I8(repeating: limit), where: v .> I8(repeating: limit)) }

    /// Q5_0: as Q4_0 with d = -max/16 and 5-bit levels min(31, trunc(x/d + 16.5)).
    static func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 22
            let (v0, v1, v2, v3) = load32(xb)
            let amax = vmax(vmax(abs8(v0), abs8(v1)), vmax(abs8(v2), abs8(v3))).max()
            guard amax.isFinite, !hasNaN(v0, v1, v2, v3) else { LegacyQuants.quantizeQ5_0(xb, yb, blocks: 1); continue }
            let mx = firstWithMagnitude(amax, xb)
            let d = mx / -16
            let id: Float = d != 0 ? 1 / d : 0
            guard id.isFinite else { LegacyQuants.quantizeQ5_0(xb, yb, blocks: 1); continue }
            storeHalf(yb, 0, d)
            let q = { (v: F8) in capped(integers(truncated(v * id + 16.5)), 31) }
            let qh = storeNibbles(q(v0), q(v1), q(v2), q(v3), yb + 6)
            yb.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }

    /// The first of a block's 32 values whose magnitude is `amax` (the reference keeps the first on ties). A block of
    /// zeros keeps the reference's starting +0, whatever the sign of its zeros: its scale is then +0 / -8 = -0.
    @inline(__always)
    static func firstWithMagnitude(_ amax: Float, _ xb: UnsafePointer<Float>) -> Float {
        guard amax > 0 else { return 0 }
        for j in 0..<32 where abs(xb[j]) == amax { return xb[j] }
        return 0
    }

    /// Minimum and maximum of a block as the reference scans them (NaN never replaces either). Where either is a zero,
    /// its sign is that of the block's first zero, as in the reference's scan (a later zero is not smaller or larger);
    /// the lanes' reduction would pick any of them.
    @inline(__always)
    static func minMax(_ v0: F8, _ v1: F8, _ v2: F8, _ v3: F8, _ xb: UnsafePointer<Float>) -> (Float, Float) {
        var lo = F8(repeating: .greatestFiniteMagnitude), hi = F8(repeating: -.greatestFiniteMagnitude)
        @inline(__always) func take(_ v: F8) {
            lo.replace(with: v, where: v .< lo)
            hi.replace(with: v, where: v .> hi)
        }
        take(v0); take(v1); take(v2); take(v3)
        var (a, b) = (lo.min(), hi.max())
        if a == 0 || b == 0, let zero = (0..<32).first(where: { xb[$0] == 0 }).map({ xb[$0] }) {
            if a == 0 { a = zero }
            if b == 0 { b = zero }
        }
        return (a, b)
    }

    /// Q4_1 (nmax 15, levels capped at 15) and Q5_1 (nmax 31, uncapped, fifth bits in qh).
    @inline(__always)
    static func quantizeMinMax(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int, five: Bool) {
        let size = five ? 24 : 20
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * size
            let (v0, v1, v2, v3) = load32(xb)
            let (lo, hi) = minMax(v0, v1, v2, v3, xb)
            let d = (hi - lo) / (five ? 31 : 15)
            let id: Float = d != 0 ? 1 / d : 0
            guard lo.isFinite, hi.isFinite, d.isFinite, id.isFinite, !hasNaN(v0, v1, v2, v3) else {
                five ? LegacyQuants.quantizeQ5_1(xb, yb, blocks: 1) : LegacyQuants.quantizeQ4_1(xb, yb, blocks: 1)
                continue
            }
            storeHalf(yb, 0, d)
            storeHalf(yb, 2, lo)
            let q = { (v: F8) -> I8 in
                let l = integers(truncated((v - lo) * id + 0.5))
                return five ? l : capped(l, 15)
            }
            let qh = storeNibbles(q(v0), q(v1), q(v2), q(v3), yb + (five ? 8 : 4))
            if five { yb.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self) }
        }
    }

    typealias F16v = SIMD16<Float>

    /// 16 bytes at `p` as floats after `(byte >> shift) & mask`.
    @inline(__always)
    static func levels(_ p: UnsafeRawPointer, _ shift: UInt8, _ mask: UInt8) -> SIMD16<Int32> {
        SIMD16<Int32>(truncatingIfNeeded: (p.loadUnaligned(as: SIMD16<UInt8>.self) &>> shift) & mask)
    }

    /// Exact Int32 -> Float for |v| < 2^22, through the bits of 1.5 * 2^23 + v (the generic SIMD conversion
    /// initializer is not lowered to a vector instruction).
    @inline(__always)
    static func floats16(_ v: SIMD16<Int32>) -> F16v {
        unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: v &+ 0x4B40_0000), to: F16v.self) - 12582912
    }

    @inline(__always)
    static func floats8(_ v: I8) -> F8 { floats(U8(truncatingIfNeeded: v &+ 0x4B40_0000)) - 12582912 }

    @inline(__always)
    static func store16(_ v: F16v, _ o: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(o).storeBytes(of: v, as: F16v.self)
    }

    /// Q4_K: per 32-value group, d·sc·q − dmin·m (the same two products and difference as the reference).
    static func dequantizeQ4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 144, o = y + i * 256
            let d = loadHalf(b, 0), dmin = loadHalf(b, 2)
            for j in 0..<8 {
                let (sc, m) = KQuants.scaleMinK4(j, b + 4)
                let dl = F16v(repeating: d * Float(sc)), ml = F16v(repeating: dmin * Float(m))
                let base = 16 + 32 * (j / 2), shift = UInt8(4 * (j % 2))
                for h in 0..<2 {
                    let q = floats16(levels(b + base + 16 * h, shift, 0xF))
                    store16(dl * q - ml, o + 32 * j + 16 * h)
                }
            }
        }
    }

    static func dequantizeQ5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 176, o = y + i * 256
            let d = loadHalf(b, 0), dmin = loadHalf(b, 2)
            for j in 0..<8 {
                let (sc, m) = KQuants.scaleMinK4(j, b + 4)
                let dl = F16v(repeating: d * Float(sc)), ml = F16v(repeating: dmin * Float(m))
                let base = 48 + 32 * (j / 2), shift = UInt8(4 * (j % 2))
                for h in 0..<2 {
                    let low = levels(b + base + 16 * h, shift, 0xF)
                    let high = levels(b + 16 + 16 * h, UInt8(j), 1) &<< 4
                    store16(dl * floats16(low | high) - ml, o + 32 * j + 16 * h)
                }
            }
        }
    }

    static func dequantizeQ6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 210, o = y + i * 256
            let d = loadHalf(b, 208)
            for h in 0..<2 {
                for k in 0..<4 {
                    for half in 0..<2 {
                        let l = 16 * half
                        let low = levels(b + 64 * h + l + 32 * (k % 2), k >= 2 ? 4 : 0, 0xF)
                        let high = levels(b + 128 + 32 * h + l, UInt8(2 * k), 3) &<< 4
                        let v = 128 * h + 32 * k + l
                        let sc = Float(b.load(fromByteOffset: 192 + v / 16, as: Int8.self))
                        store16(F16v(repeating: d * sc) * floats16((low | high) &- 32), o + v)
                    }
                }
            }
        }
    }

    static func dequantizeQ4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 20, o = y + i * 32
            let d = F16v(repeating: loadHalf(b, 0)), m = F16v(repeating: loadHalf(b, 2))
            store16(d * floats16(levels(b + 4, 0, 0xF)) + m, o)
            store16(d * floats16(levels(b + 4, 4, 0xF)) + m, o + 16)
        }
    }

    /// The fifth bits of values j (`upper` false) or j + 16 (true) from Q5's qh word, shifted into bit 4.
    @inline(__always)
    static func fifthBits(_ qh: UInt32, upper: Bool) -> SIMD16<Int32> {
        let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) &+ (upper ? 16 : 0)
        return SIMD16<Int32>(truncatingIfNeeded: ((SIMD16<UInt32>(repeating: qh) &>> lanes) & 1) &<< 4)
    }

    static func dequantizeQ5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 22, o = y + i * 32
            let d = F16v(repeating: loadHalf(b, 0))
            let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            store16(d * floats16((levels(b + 6, 0, 0xF) | fifthBits(qh, upper: false)) &- 16), o)
            store16(d * floats16((levels(b + 6, 4, 0xF) | fifthBits(qh, upper: true)) &- 16), o + 16)
        }
    }

    static func dequantizeQ5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 24, o = y + i * 32
            let d = F16v(repeating: loadHalf(b, 0)), m = F16v(repeating: loadHalf(b, 2))
            let qh = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            store16(d * floats16(levels(b + 8, 0, 0xF) | fifthBits(qh, upper: false)) + m, o)
            store16(d * floats16(levels(b + 8, 4, 0xF) | fifthBits(qh, upper: true)) + m, o + 16)
        }
    }

    static func dequantizeQ3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 110, o = y + i * 256
            let d = loadHalf(b, 108)
            for g in 0..<16 {
                let low = b.load(fromByteOffset: 96 + g % 8, as: UInt8.self) >> UInt8(4 * (g / 8))
                let high = b.load(fromByteOffset: 104 + g % 4, as: UInt8.self) >> UInt8(2 * (g / 4))
                let dl = F16v(repeating: d * Float(Int((low & 0xF) | ((high & 3) << 4)) - 32))
                let q = levels(b + 32 + 32 * (g / 8) + 16 * (g % 2), UInt8(2 * ((g / 2) % 4)), 3)
                let h = levels(b + 16 * (g % 2), UInt8(4 * (g / 8) + (g / 2) % 4), 1)
                // q - 4 where the high bit is clear: q - 4 + 4h.
                store16(dl * floats16(q &- 4 &+ (h &<< 2)), o + 16 * g)
            }
        }
    }

    static func dequantizeQ2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 84, o = y + i * 256
            let d = loadHalf(b, 80), dmin = loadHalf(b, 82)
            for g in 0..<16 {
                let sc = b.load(fromByteOffset: g, as: UInt8.self)
                let dl = F16v(repeating: d * Float(sc & 0xF)), ml = F16v(repeating: dmin * Float(sc >> 4))
                let base = 16 + 32 * (g / 8) + 16 * (g % 2)
                store16(dl * floats16(levels(b + base, UInt8(2 * ((g / 2) % 4)), 3)) - ml, o + 16 * g)
            }
        }
    }

    static func dequantizeQ8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 34
            let d = F8(repeating: loadHalf(b, 0))
            for k in 0..<4 {
                let q = b.loadUnaligned(fromByteOffset: 2 + 8 * k, as: SIMD8<Int8>.self)
                let v = floats8(I8(truncatingIfNeeded: q)) * d
                UnsafeMutableRawPointer(y + i * 32 + 8 * k).storeBytes(of: v, as: F8.self)
            }
        }
    }

    static func dequantizeQ4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, blocks: Int) {
        for i in 0..<blocks {
            let b = x + i * 18
            let d = SIMD16<Float>(repeating: loadHalf(b, 0))
            let q = b.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int32>(truncatingIfNeeded: q & 0xF) &- 8
            let hi = SIMD16<Int32>(truncatingIfNeeded: q &>> 4) &- 8
            UnsafeMutableRawPointer(y + i * 32).storeBytes(of: d * floats16(lo), as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(y + i * 32 + 16).storeBytes(of: d * floats16(hi), as: SIMD16<Float>.self)
        }
    }
}
