#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Reference quantizers for the 32-value block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4).
//
// Each function quantizes `blocks` consecutive blocks from `x` into `y`, following ggml-quants.c's reference
// quantizers (`quantize_row_*_ref`, and `quantize_iq4_nl` as llama-quantize calls it) operation for operation,
// so that the bytes are identical. Byte layouts are given at each function as `offset: field`.

enum LegacyQuants {
    static let kvaluesIQ4NL: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    /// E2M1 values doubled, shared by MXFP4 and NVFP4.
    static let kvaluesMXFP4: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

    /// Q8_0, 34 bytes: 0 d:f16, 2 qs:int8[32]. d = amax/127, q = round(x/d).
    static func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 34
            var amax: Float = 0
            for j in 0..<32 { let v = abs(xb[j]); amax = amax > v ? amax : v }  // C's MAX, NaN included
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(yb, 0, d)
            for j in 0..<32 {
                let q = truncatingInt32((xb[j] * id).rounded(.toNearestOrAwayFromZero))
                yb.storeBytes(of: UInt8(truncatingIfNeeded: q), toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }

    /// Q4_0, 18 bytes: 0 d:f16, 2 qs:u8[16] (value j in the low nibble of byte j, value j+16 in the high nibble).
    /// d = -max/8 where max is the value of largest magnitude; q = min(15, trunc(x/d + 8.5)).
    static func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 18
            var amax: Float = 0, mx: Float = 0
            for j in 0..<32 where amax < abs(xb[j]) { amax = abs(xb[j]); mx = xb[j] }
            let d = mx / -8
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(yb, 0, d)
            for j in 0..<16 {
                let q0 = clampLow(truncatingInt32(xb[j] * id + 8.5), 15)
                let q1 = clampLow(truncatingInt32(xb[j + 16] * id + 8.5), 15)
                yb.storeBytes(of: q0 | (q1 << 4), toByteOffset: 2 + j, as: UInt8.self)
            }
        }
    }

    /// Q4_1, 20 bytes: 0 d:f16, 2 m:f16, 4 qs:u8[16]. d = (max-min)/15, q = min(15, trunc((x-min)/d + 0.5)).
    static func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 20
            var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                if xb[j] < lo { lo = xb[j] }
                if xb[j] > hi { hi = xb[j] }
            }
            let d = (hi - lo) / 15
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(yb, 0, d)
            storeHalf(yb, 2, lo)
            for j in 0..<16 {
                let q0 = clampLow(truncatingInt32((xb[j] - lo) * id + 0.5), 15)
                let q1 = clampLow(truncatingInt32((xb[j + 16] - lo) * id + 0.5), 15)
                yb.storeBytes(of: q0 | (q1 << 4), toByteOffset: 4 + j, as: UInt8.self)
            }
        }
    }

    /// Q5_0, 22 bytes: 0 d:f16, 2 qh:u32 (bit j = fifth bit of value j), 6 qs:u8[16]. d = -max/16.
    static func quantizeQ5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 22
            var amax: Float = 0, mx: Float = 0
            for j in 0..<32 where amax < abs(xb[j]) { amax = abs(xb[j]); mx = xb[j] }
            let d = mx / -16
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(yb, 0, d)
            var qh: UInt32 = 0
            for j in 0..<16 {
                let q0 = clampLow(truncatingInt32(xb[j] * id + 16.5), 31)
                let q1 = clampLow(truncatingInt32(xb[j + 16] * id + 16.5), 31)
                yb.storeBytes(of: (q0 & 0x0F) | ((q1 & 0x0F) << 4), toByteOffset: 6 + j, as: UInt8.self)
                qh |= UInt32((q0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((q1 & 0x10) >> 4) << UInt32(j + 16)
            }
            yb.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
        }
    }

    /// Q5_1, 24 bytes: 0 d:f16, 2 m:f16, 4 qh:u32, 8 qs:u8[16]. d = (max-min)/31, q = trunc((x-min)/d + 0.5).
    static func quantizeQ5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 24
            var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                if xb[j] < lo { lo = xb[j] }
                if xb[j] > hi { hi = xb[j] }
            }
            let d = (hi - lo) / 31
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(yb, 0, d)
            storeHalf(yb, 2, lo)
            var qh: UInt32 = 0
            for j in 0..<16 {
                let q0 = UInt8(truncatingIfNeeded: truncatingInt32((xb[j] - lo) * id + 0.5))
                let q1 = UInt8(truncatingIfNeeded: truncatingInt32((xb[j + 16] - lo) * id + 0.5))
                yb.storeBytes(of: (q0 & 0x0F) | ((q1 & 0x0F) << 4), toByteOffset: 8 + j, as: UInt8.self)
                qh |= UInt32((q0 & 0x10) >> 4) << UInt32(j)
                qh |= UInt32((q1 & 0x10) >> 4) << UInt32(j + 16)
            }
            yb.storeBytes(of: qh.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    /// MXFP4, 17 bytes: 0 e:E8M0, 1 qs:u8[16] of E2M1 codes. e = floor(log2(amax)) - 2 + 127; each value takes the
    /// nearest code (first on ties) of kvalues * 2^(e-128).
    static func quantizeMXFP4(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        for i in 0..<blocks {
            let xb = x + i * 32, yb = y + i * 17
            var amax: Float = 0
            for j in 0..<32 where amax < abs(xb[j]) { amax = abs(xb[j]) }
            let e: UInt8 = amax > 0
                ? UInt8(truncatingIfNeeded: truncatingInt32(log2f(amax).rounded(.down) - 2 + 127)) : 0
            let d = e8m0ToFloatHalf(e)
            yb.storeBytes(of: e, toByteOffset: 0, as: UInt8.self)
            for j in 0..<16 {
                let q0 = bestIndexMXFP4(xb[j], d), q1 = bestIndexMXFP4(xb[j + 16], d)
                yb.storeBytes(of: q0 | (q1 << 4), toByteOffset: 1 + j, as: UInt8.self)
            }
        }
    }

    @inline(__always)
    static func bestIndexMXFP4(_ x: Float, _ e: Float) -> UInt8 {
        var best = 0
        var bestErr = abs(Float(kvaluesMXFP4[0]) * e - x)
        for i in 1..<16 {
            let err = abs(Float(kvaluesMXFP4[i]) * e - x)
            if err < bestErr { best = i; bestErr = err }
        }
        return UInt8(best)
    }

    /// IQ4_NL, 18 bytes: 0 d:f16, 2 qs:u8[16] of indices into `kvaluesIQ4NL` (low nibble value j, high j+16).
    static func quantizeIQ4_NL(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int) {
        var scratch = IQ4Scratch()
        for i in 0..<blocks {
            IQ4.quantizeSuperBlock(size: 32, x + i * 32, y + i * 18, scratch: &scratch)
        }
    }

    /// `MIN(limit, (int8_t)v)` stored to a byte, as the C reference does.
    @inline(__always)
    static func clampLow(_ v: Int32, _ limit: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: min(limit, Int(Int8(truncatingIfNeeded: v))))
    }
}

struct IQ4Scratch {
    var L = [UInt8](repeating: 0, count: 256)
    var weight = [Float](repeating: 0, count: 32)
    var scales = [Float](repeating: 0, count: 8)
}

/// The non-linear 4-bit quantizer shared by IQ4_NL (one 32-value block) and IQ4_XS (a 256-value super-block of
/// eight 32-value blocks with 6-bit block scales), as `quantize_row_iq4_nl_impl` with ntry = 7 and no weights.
enum IQ4 {
    @inline(__always)
    static func bestIndex(_ x: Float) -> Int {
        let val = LegacyQuants.kvaluesIQ4NL
        if x <= Float(val[0]) { return 0 }
        if x >= Float(val[15]) { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < Float(val[mav]) { mu = mav } else { ml = mav }
        }
        return x - Float(val[mu - 1]) < Float(val[mu]) - x ? mu - 1 : mu
    }

    /// `kvaluesIQ4NL[bestIndex(a)]` for sixteen arguments at once (finite ones; a NaN gives the first level, where
    /// `bestIndex` gives the last: callers only sum such a level with the NaN). The level index is the number of
    /// levels k ≥ 1 the argument reaches: a ≥ v[k], or a ≥ v[k-1] without the rounding test `bestIndex` applies
    /// between v[k-1] and v[k] choosing the lower one; adding each reached step to v[0] gives the level exactly.
    /// `bestIndex(id · x[j])` for j in 0..<n (a multiple of 16) into `L`, sixteen at a time, by the same count.
    @inline(__always)
    static func levelIndices(_ x: UnsafePointer<Float>, times id: Float, _ n: Int, into L: UnsafeMutablePointer<UInt8>) {
        let v = LegacyQuants.kvaluesIQ4NL
        for c in stride(from: 0, to: n, by: 16) {
            var a = SIMD16<Float>()
            for i in 0..<16 { a[i] = id * x[c + i] }
            var count = SIMD16<Int32>()
            for k in 1..<16 {
                let lo = Float(v[k - 1]), hi = Float(v[k])
                let reached = (a .>= hi) .| ((a .>= lo) .& .!((a - lo) .< (hi - a)))
                count.replace(with: count &+ 1, where: reached)
            }
            count.replace(with: 15, where: a .!= a)  // bestIndex's binary search ends at the top for a NaN
            for i in 0..<16 { L[c + i] = UInt8(truncatingIfNeeded: count[i]) }
        }
    }

    @inline(__always)
    static func levelValues(_ a: SIMD16<Float>) -> SIMD16<Float> {
        let v = LegacyQuants.kvaluesIQ4NL
        var q = SIMD16<Float>(repeating: Float(v[0]))
        for k in 1..<16 {
            let lo = Float(v[k - 1]), hi = Float(v[k])
            let reached = (a .>= hi) .| ((a .>= lo) .& .!((a - lo) .< (hi - a)))
            q.replace(with: q + (hi - lo), where: reached)
        }
        return q
    }

    /// Quantizes `size` (32 or 256) values. For 32: writes d at 0 and qs at 2. For 256 (IQ4_XS, 136 bytes):
    /// 0 d:f16, 2 scales_h:u16 (2 high bits per block), 4 scales_l:u8[4] (low nibbles), 8 qs:u8[128].
    /// With an importance matrix (`importance`: one weight per value, aligned with `x`) each value's weight is
    /// importance · √(σ² + x²), σ² = 2·mean(x²) over the `size` values; otherwise x².
    static func quantizeSuperBlock(size: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                   scratch s: inout IQ4Scratch, importance: UnsafePointer<Float>? = nil) {
        let ntry = 7
        let values = LegacyQuants.kvaluesIQ4NL
        let v0 = Float(values[0])
        let nb = size / 32
        let qsOffset = size == 32 ? 2 : 8
        for j in 0..<(size / 2) { y.storeBytes(of: 0, toByteOffset: qsOffset + j, as: UInt8.self) }
        storeHalf(y, 0, 0)
        var sigma2: Float = 0
        if importance != nil {
            for j in 0..<size { sigma2 += x[j] * x[j] }
            sigma2 *= 2 / Float(size)
        }
        var maxScale: Float = 0, amaxScale: Float = 0
        for ib in 0..<nb {
            let xb = x + ib * 32
            if let qw = importance.map({ $0 + ib * 32 }) {
                for j in 0..<32 { s.weight[j] = qw[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            } else {
                for j in 0..<32 { s.weight[j] = xb[j] * xb[j] }
            }
            var amax: Float = 0, mx: Float = 0
            for j in 0..<32 {
                let ax = abs(xb[j])
                if ax > amax { amax = ax; mx = xb[j] }
            }
            if amax < 1e-15 { s.scales[ib] = 0; continue }
            var d = -mx / v0
            var id = 1 / d
            var sumqx: Float = 0, sumq2: Float = 0
            s.L.withUnsafeMutableBufferPointer { levelIndices(xb, times: id, 32, into: $0.baseAddress! + ib * 32) }
            for j in 0..<32 {
                let q = Float(values[Int(s.L[ib * 32 + j])]), w = s.weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0
            var best = d * sumqx
            // The 2·ntry + 1 candidate scales side by side, one per lane; each lane sums its block in order.
            var ids = SIMD16<Float>()
            for t in 0...(2 * ntry) { ids[t] = Float(t - ntry + Int(values[0])) / mx }
            var sqx = SIMD16<Float>(), sq2 = SIMD16<Float>()
            s.weight.withUnsafeBufferPointer { w in
                for j in 0..<32 {
                    let q = levelValues(ids * xb[j])
                    sqx += w[j] * q * xb[j]
                    sq2 += w[j] * q * q
                }
            }
            for t in 0...(2 * ntry) where sq2[t] > 0 && sqx[t] * sqx[t] > best * sq2[t] {
                d = sqx[t] / sq2[t]
                best = d * sqx[t]
            }
            s.scales[ib] = d
            if abs(d) > amaxScale { amaxScale = abs(d); maxScale = d }
        }
        if nb > 1 {
            var scalesH: UInt16 = 0
            let d = -maxScale / 32
            storeHalf(y, 0, d)
            let id: Float = d != 0 ? 1 / d : 0
            for ib in 0..<nb {
                var l = Int(nearestInt(id * s.scales[ib]))
                l = max(-32, min(31, l))
                let dl = d * Float(l)
                let idl: Float = dl != 0 ? 1 / dl : 0
                s.L.withUnsafeMutableBufferPointer { levelIndices(x + ib * 32, times: idl, 32, into: $0.baseAddress! + ib * 32) }
                l += 32
                let lLow = UInt8(l & 0xF), lHigh = UInt16(l >> 4)
                if ib % 2 == 0 {
                    y.storeBytes(of: lLow, toByteOffset: 4 + ib / 2, as: UInt8.self)
                } else {
                    let prev = y.load(fromByteOffset: 4 + ib / 2, as: UInt8.self)
                    y.storeBytes(of: prev | (lLow << 4), toByteOffset: 4 + ib / 2, as: UInt8.self)
                }
                scalesH |= lHigh << UInt16(2 * (ib % 8))
            }
            y.storeBytes(of: scalesH.littleEndian, toByteOffset: 2, as: UInt16.self)
        } else {
            storeHalf(y, 0, s.scales[0])
            let id: Float = s.scales[0] != 0 ? 1 / s.scales[0] : 0
            s.L.withUnsafeMutableBufferPointer { levelIndices(x, times: id, size, into: $0.baseAddress!) }
        }
        for i in 0..<(size / 32) {
            for j in 0..<16 {
                y.storeBytes(of: s.L[32 * i + j] | (s.L[32 * i + 16 + j] << 4), toByteOffset: qsOffset + 16 * i + j,
                             as: UInt8.self)
            }
        }
    }
}
