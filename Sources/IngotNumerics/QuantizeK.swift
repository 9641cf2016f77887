// Reference quantizers for the 256-value super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), written from
// ggml-quants.c's `quantize_row_q*_K_ref` (what llama-quantize runs without an importance matrix). Float
// expressions keep the reference's evaluation order and its integer/float promotions so the bytes are identical.

/// Work arrays for one super-block, allocated once per thread.
struct KScratch {
    var L = [UInt8](repeating: 0, count: 256)
    var Li = [Int8](repeating: 0, count: 256)
    var Laux = [UInt8](repeating: 0, count: 32)
    var weights = [Float](repeating: 0, count: 32)
    var scales = [Float](repeating: 0, count: 16)
    var mins = [Float](repeating: 0, count: 16)
}

enum KQuants {
    static let groupMaxEps: Float = 1e-15

    /// `make_qx_quants` with rmse_type 1: signed levels in [-nmax, nmax-1] stored + nmax, the scale refined by
    /// least squares weighted by `weights` (an importance matrix's), or by x² when there are none.
    static func makeQXQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
                             weights: UnsafePointer<Float>? = nil) -> Float {
        var mx: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; mx = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = Float(-nmax) / mx
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            var l = Int(nearestInt(iscale * x[i]))
            l = max(-nmax, min(nmax - 1, l))
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = weights?[i] ?? x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for s in -9...9 where s != 0 {
            iscale = -(fnmax + 0.1 * Float(s)) / mx
            sumlx = 0; suml2 = 0
            for i in 0..<n {
                var l = Int(nearestInt(iscale * x[i]))
                l = max(-nmax, min(nmax - 1, l))
                let w = weights?[i] ?? x[i] * x[i]
                sumlx += w * x[i] * Float(l)
                suml2 += w * Float(l) * Float(l)
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0..<n {
                    let l = Int(nearestInt(iscale * x[i]))
                    L[i] = Int8(truncatingIfNeeded: nmax + max(-nmax, min(nmax - 1, l)))
                }
                scale = sumlx / suml2; best = scale * sumlx
            }
        }
        return scale
    }

    /// `make_q3_quants` with do_rmse: signed levels refined by coordinate descent, returned + nmax.
    static func makeQ3Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
        var mx: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; mx = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let iscale = Float(-nmax) / mx
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            var l = Int(nearestInt(iscale * x[i]))
            l = max(-nmax, min(nmax - 1, l))
            L[i] = Int8(truncatingIfNeeded: l)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                let li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                if slx > 0 {
                    var sl2 = suml2 - w * li * li
                    var newL = Int(nearestInt(x[i] * sl2 / slx))
                    newL = max(-nmax, min(nmax - 1, newL))
                    if newL != Int(L[i]) {
                        slx += w * x[i] * Float(newL)
                        sl2 += w * Float(newL) * Float(newL)
                        if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = Int8(truncatingIfNeeded: newL); sumlx = slx; suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { L[i] = L[i] &+ Int8(truncatingIfNeeded: nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// `make_qkx2_quants`: unsigned levels in [0, nmax] with a scale and a (negated) minimum, searched over
    /// nstep+1 candidate scales; error measured with `weights`, absolute when `useMAD`.
    static func makeQKX2Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                               _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                               _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> Float {
        var lo = x[0], hi = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if lo > 0 { lo = 0 }
        if hi == lo {
            for i in 0..<n { L[i] = 0 }
            theMin = -lo
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / (hi - lo)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = Int(nearestInt(iscale * (x[i] - lo)))
            L[i] = UInt8(truncatingIfNeeded: max(0, min(nmax, l)))
            var diff = scale * Float(L[i]) + lo - x[i]
            diff = useMAD ? abs(diff) : diff * diff
            bestError += weights[i] * diff
        }
        if nstep < 1 { theMin = -lo; return scale }
        for s in 0...nstep {
            iscale = (rmin + rdelta * Float(s) + fnmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                var l = Int(nearestInt(iscale * (x[i] - lo)))
                l = max(0, min(nmax, l))
                Laux[i] = UInt8(truncatingIfNeeded: l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            if D > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / D
                var thisMin = (sumL2 * sumX - sumL * sumXL) / D
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var curError: Float = 0
                for i in 0..<n {
                    var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                    diff = useMAD ? abs(diff) : diff * diff
                    curError += weights[i] * diff
                }
                if curError < bestError {
                    for i in 0..<n { L[i] = Laux[i] }
                    bestError = curError
                    scale = thisScale
                    lo = thisMin
                }
            }
        }
        theMin = -lo
        return scale
    }

    /// 6-bit scale and min of block j from the 12-byte packed `scales` of Q4_K/Q5_K.
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (UInt8, UInt8) {
        @inline(__always) func b(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (b(j) & 63, b(j + 4) & 63) }
        return ((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4))
    }

    /// Q2_K, 84 bytes: 0 scales:u8[16] (low nibble scale, high nibble min), 16 qs:u8[64], 80 d:f16, 82 dmin:f16.
    static func quantizeQ2_K(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout KScratch) {
        s.L.withUnsafeMutableBufferPointer { Lb in
        s.Laux.withUnsafeMutableBufferPointer { Lauxb in
        s.weights.withUnsafeMutableBufferPointer { Wb in
            let L = Lb.baseAddress!, Laux = Lauxb.baseAddress!, weights = Wb.baseAddress!
            var scales = [Float](repeating: 0, count: 16), mins = [Float](repeating: 0, count: 16)
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 84
                var maxScale: Float = 0, maxMin: Float = 0
                for j in 0..<16 {
                    for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
                    var m: Float = 0
                    scales[j] = makeQKX2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &m, Laux, -0.5, 0.1, 15, true)
                    mins[j] = m
                    if scales[j] > maxScale { maxScale = scales[j] }
                    if mins[j] > maxMin { maxMin = mins[j] }
                }
                packQ2KScales({ scales[$0] }, { mins[$0] }, maxScale: maxScale, maxMin: maxMin, into: y)
                requantizeQ2K(x, y, L)
            }
        }}}
    }

    /// The Q2_K levels of 256 values against the block's stored (f16) d and dmin and its 4-bit scales and mins,
    /// packed at offset 16.
    @inline(__always)
    static func requantizeQ2K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<UInt8>) {
        let dAll = loadHalf(y, 80), mAll = loadHalf(y, 82)
        for j in 0..<16 {
            let sc = y.load(fromByteOffset: j, as: UInt8.self)
            let d = dAll * Float(sc & 0xF)
            if d == 0 { continue }
            let dm = mAll * Float(sc >> 4)
            for ii in 0..<16 {
                let l = Int(nearestInt((x[16 * j + ii] + dm) / d))
                L[16 * j + ii] = UInt8(max(0, min(3, l)))
            }
        }
        packQ2K(L, y)
    }

    /// The Q2_K header: sixteen 4-bit scales and mins against d = maxScale/15 and dmin = maxMin/15
    /// (bytes 0-15, then 80 and 82).
    @inline(__always)
    static func packQ2KScales(_ scale: (Int) -> Float, _ min: (Int) -> Float, maxScale: Float, maxMin: Float,
                              into y: UnsafeMutableRawPointer) {
        let q4scale: Float = 15
        if maxScale > 0 {
            let iscale = q4scale / maxScale
            for j in 0..<16 {
                y.storeBytes(of: UInt8(truncatingIfNeeded: nearestInt(iscale * scale(j))), toByteOffset: j, as: UInt8.self)
            }
            storeHalf(y, 80, maxScale / q4scale)
        } else {
            for j in 0..<16 { y.storeBytes(of: 0, toByteOffset: j, as: UInt8.self) }
            storeHalf(y, 80, 0)
        }
        if maxMin > 0 {
            let iscale = q4scale / maxMin
            for j in 0..<16 {
                let l = nearestInt(iscale * min(j))
                let prev = y.load(fromByteOffset: j, as: UInt8.self)
                y.storeBytes(of: prev | UInt8(truncatingIfNeeded: l << 4), toByteOffset: j, as: UInt8.self)
            }
            storeHalf(y, 82, maxMin / q4scale)
        } else {
            storeHalf(y, 82, 0)
        }
    }

    /// Q2_K quants: levels j, j+32, j+64, j+96 of each 128-value half in one byte, at offset 16.
    @inline(__always)
    static func packQ2K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0..<32 {
                let v = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
                y.storeBytes(of: v, toByteOffset: 16 + j / 4 + l, as: UInt8.self)
            }
        }
    }

    /// Q6_K quants from levels 0..63: low nibbles in ql (offset 0), high two bits in qh (offset 128).
    @inline(__always)
    static func packQ6K(_ L: UnsafePointer<Int8>, _ y: UnsafeMutableRawPointer) {
        for (k, j) in stride(from: 0, to: 256, by: 128).enumerated() {
            for l in 0..<32 {
                let a = UInt8(bitPattern: L[j + l]), b = UInt8(bitPattern: L[j + l + 32])
                let c = UInt8(bitPattern: L[j + l + 64]), e = UInt8(bitPattern: L[j + l + 96])
                y.storeBytes(of: (a & 0xF) | ((c & 0xF) << 4), toByteOffset: 64 * k + l, as: UInt8.self)
                y.storeBytes(of: (b & 0xF) | ((e & 0xF) << 4), toByteOffset: 64 * k + l + 32, as: UInt8.self)
                let h = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6)
                y.storeBytes(of: h, toByteOffset: 128 + 32 * k + l, as: UInt8.self)
            }
        }
    }

    /// Q3_K, 110 bytes: 0 hmask:u8[32], 32 qs:u8[64], 96 scales:u8[12] (16 6-bit signed scales), 108 d:f16.
    static func quantizeQ3_K(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout KScratch) {
        s.Li.withUnsafeMutableBufferPointer { Lb in
            let L = Lb.baseAddress!
            var scales = [Float](repeating: 0, count: 16)
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 110
                var maxScale: Float = 0, amax: Float = 0
                for j in 0..<16 {
                    scales[j] = makeQ3Quants(16, 4, x + 16 * j, L + 16 * j)
                    let sc = abs(scales[j])
                    if sc > amax { amax = sc; maxScale = scales[j] }
                }
                let sb = (y + 96).bindMemory(to: UInt8.self, capacity: 12)  // the 12 scale bytes, built in place
                sb.initialize(repeating: 0, count: 12)
                if maxScale != 0 {
                    let iscale = -32 / maxScale
                    for j in 0..<16 {
                        var l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
                        l = Int8(truncatingIfNeeded: Int(max(-32, min(31, l))) + 32)
                        if j < 8 { sb[j] = UInt8(bitPattern: l) & 0xF } else { sb[j - 8] |= (UInt8(bitPattern: l) & 0xF) << 4 }
                        l >>= 4
                        sb[j % 4 + 8] |= UInt8(truncatingIfNeeded: Int(l) << (2 * (j / 4)))
                    }
                    storeHalf(y, 108, 1 / iscale)
                } else {
                    storeHalf(y, 108, 0)
                }
                requantizeQ3K(x, y, L)
            }
        }
    }

    /// The Q3_K levels of 256 values against the block's stored d and 6-bit scales (bytes 96-107), written as the
    /// high-bit mask at 0 and two-bit quants at 32.
    static func requantizeQ3K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ L: UnsafeMutablePointer<Int8>) {
        let sb = (y + 96).bindMemory(to: UInt8.self, capacity: 12)
        let dAll = loadHalf(y, 108)
        for j in 0..<16 {
            var sc = Int(j < 8 ? sb[j] & 0xF : sb[j - 8] >> 4)
            sc = Int(Int8(truncatingIfNeeded: (sc | ((Int(sb[8 + j % 4]) >> (2 * (j / 4))) & 3) << 4) - 32))
            let d = dAll * Float(sc)
            if d == 0 { continue }
            for ii in 0..<16 {
                let l = Int(nearestInt(x[16 * j + ii] / d))
                L[16 * j + ii] = Int8(max(-4, min(3, l)) + 4)
            }
        }
        packQ3K(L, y)
    }

    /// Q3_K quants from levels 0...7 (consumed: `L` is left holding their low two bits): the third bit in the
    /// high-bit mask at 0 (one bit per value, 32 values per bit plane), the low two bits at 32.
    @inline(__always)
    static func packQ3K(_ L: UnsafeMutablePointer<Int8>, _ y: UnsafeMutableRawPointer) {
        for j in 0..<32 { y.storeBytes(of: 0, toByteOffset: j, as: UInt8.self) }
        var m = 0
        var hm: UInt8 = 1
        for j in 0..<256 {
            if L[j] > 3 {
                let prev = y.load(fromByteOffset: m, as: UInt8.self)
                y.storeBytes(of: prev | hm, toByteOffset: m, as: UInt8.self)
                L[j] -= 4
            }
            m += 1
            if m == 32 { m = 0; hm = hm &<< 1 }
        }
        for j in stride(from: 0, to: 256, by: 128) {
            for l in 0..<32 {
                let v = UInt8(bitPattern: L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6))
                y.storeBytes(of: v, toByteOffset: 32 + j / 4 + l, as: UInt8.self)
            }
        }
    }

    /// Shared scale search of Q4_K (nmax 15) and Q5_K (nmax 31): per 32-value block a scale and min from
    /// make_qkx2_quants, then both quantized to 6 bits against the super-block d and dmin; the 12 scale bytes
    /// are written at offset 4; returns nothing, leaves the final levels in `L`.
    @inline(__always)
    static func quantizeScaleMinK(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int, rmin: Float, nstep: Int,
                                  L: UnsafeMutablePointer<UInt8>, Laux: UnsafeMutablePointer<UInt8>,
                                  weights: UnsafeMutablePointer<Float>, scales: inout [Float], mins: inout [Float]) {
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            var sumX2: Float = 0
            for l in 0..<32 { sumX2 += x[32 * j + l] * x[32 * j + l] }
            let avX = (sumX2 / 32).squareRoot()
            for l in 0..<32 { weights[l] = avX + abs(x[32 * j + l]) }
            var m: Float = 0
            scales[j] = makeQKX2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, &m, Laux, rmin, 0.1, nstep, false)
            mins[j] = m
            if scales[j] > maxScale { maxScale = scales[j] }
            if mins[j] > maxMin { maxMin = mins[j] }
        }
        _ = packScalesMinsK(SIMD8(scales[0..<8]), SIMD8(mins[0..<8]), maxScale: maxScale, maxMin: maxMin, into: y)
        requantizeScaleMinK(x, y, nmax: nmax, L: L)
    }

    /// The Q4_K/Q5_K levels (0...nmax) of 256 values against the block's stored d, dmin (f16 at 0 and 2) and
    /// 6-bit scales and mins (12 bytes at 4).
    @inline(__always)
    static func requantizeScaleMinK(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int, L: UnsafeMutablePointer<UInt8>) {
        let dAll = loadHalf(y, 0), mAll = loadHalf(y, 2)
        for j in 0..<8 {
            let (sc, m) = scaleMinK4(j, UnsafeRawPointer(y + 4))
            let d = dAll * Float(sc)
            if d == 0 { continue }
            let dm = mAll * Float(m)
            for ii in 0..<32 {
                let l = Int(nearestInt((x[32 * j + ii] + dm) / d))
                L[32 * j + ii] = UInt8(max(0, min(nmax, l)))
            }
        }
    }

    /// Writes the Q4_K/Q5_K header for eight (scale, min) pairs: d = maxScale/63 and dmin = maxMin/63 at 0 and 2,
    /// each pair as 6-bit values packed into the 12 bytes at 4. Returns d and dmin as stored (f16-rounded).
    @inline(__always)
    static func packScalesMinsK(_ scales: SIMD8<Float>, _ mins: SIMD8<Float>, maxScale: Float, maxMin: Float,
                                into y: UnsafeMutableRawPointer) -> (Float, Float) {
        let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
        packScaleMinLevelsK({ min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[$0]))) },
                            { min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[$0]))) }, into: y)
        storeHalf(y, 0, maxScale / 63)
        storeHalf(y, 2, maxMin / 63)
        return (loadHalf(y, 0), loadHalf(y, 2))
    }

    /// Eight 6-bit (scale, min) levels of Q4_K/Q5_K packed into the 12 bytes at 4: pairs 0-3 whole in bytes 0-3
    /// and 4-7, pairs 4-7 as low nibbles in bytes 8-11 with their top two bits over bytes 0-7.
    @inline(__always)
    static func packScaleMinLevelsK(_ scale: (Int) -> UInt8, _ min: (Int) -> UInt8, into y: UnsafeMutableRawPointer) {
        var sb: (UInt64, UInt32) = (0, 0)
        withUnsafeMutableBytes(of: &sb) { b in
            for j in 0..<8 {
                let ls = scale(j), lm = min(j)
                if j < 4 {
                    b[j] = ls; b[j + 4] = lm
                } else {
                    b[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                    b[j - 4] |= (ls >> 4) << 6
                    b[j] |= (lm >> 4) << 6
                }
            }
            for j in 0..<12 { y.storeBytes(of: b[j], toByteOffset: 4 + j, as: UInt8.self) }
        }
    }

    /// Q4_K quants: levels j and j + 32 of each 64-value half share a byte (low and high nibble), at offset 16.
    @inline(__always)
    static func packQ4K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
        for (n, j) in stride(from: 0, to: 256, by: 64).enumerated() {
            for l in 0..<32 {
                y.storeBytes(of: L[j + l] | (L[j + l + 32] << 4), toByteOffset: 16 + 32 * n + l, as: UInt8.self)
            }
        }
    }

    /// Q5_K quants: low nibbles as Q4_K's at offset 48, fifth bits in qh[32] at 16 (two bits per 64 values).
    @inline(__always)
    static func packQ5K(_ L: UnsafePointer<UInt8>, _ y: UnsafeMutableRawPointer) {
        for j in 0..<32 { y.storeBytes(of: 0, toByteOffset: 16 + j, as: UInt8.self) }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for (k, n) in stride(from: 0, to: 256, by: 64).enumerated() {
            for j in 0..<32 {
                var l1 = L[n + j], l2 = L[n + j + 32]
                var h = y.load(fromByteOffset: 16 + j, as: UInt8.self)
                if l1 > 15 { l1 -= 16; h |= m1 }
                if l2 > 15 { l2 -= 16; h |= m2 }
                y.storeBytes(of: h, toByteOffset: 16 + j, as: UInt8.self)
                y.storeBytes(of: l1 | (l2 << 4), toByteOffset: 48 + 32 * k + j, as: UInt8.self)
            }
            m1 = m1 &<< 2; m2 = m2 &<< 2
        }
    }

    /// Q4_K, 144 bytes: 0 d:f16, 2 dmin:f16, 4 scales:u8[12], 16 qs:u8[128].
    static func quantizeQ4_K(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout KScratch) {
        quantizeScaleMinKBlocks(x0, y0, blocks: blocks, five: false, scratch: &s)
    }

    /// Q5_K, 176 bytes: 0 d:f16, 2 dmin:f16, 4 scales:u8[12], 16 qh:u8[32], 48 qs:u8[128].
    static func quantizeQ5_K(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout KScratch) {
        quantizeScaleMinKBlocks(x0, y0, blocks: blocks, five: true, scratch: &s)
    }

    /// Q4_K (nmax 15, 21 candidate scales from -1) or Q5_K (nmax 31, 16 candidates from -0.5).
    static func quantizeScaleMinKBlocks(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, five: Bool,
                                        scratch s: inout KScratch) {
        var scales = s.scales, mins = s.mins
        s.L.withUnsafeMutableBufferPointer { Lb in
        s.Laux.withUnsafeMutableBufferPointer { Lauxb in
        s.weights.withUnsafeMutableBufferPointer { Wb in
            let L = Lb.baseAddress!
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * (five ? 176 : 144)
                quantizeScaleMinK(x, y, nmax: five ? 31 : 15, rmin: five ? -0.5 : -1, nstep: five ? 15 : 20, L: L,
                                  Laux: Lauxb.baseAddress!, weights: Wb.baseAddress!, scales: &scales, mins: &mins)
                five ? packQ5K(L, y) : packQ4K(L, y)
            }
        }}}
    }

    /// Q6_K, 210 bytes: 0 ql:u8[128], 128 qh:u8[64], 192 scales:int8[16], 208 d:f16.
    /// With an importance matrix (`importance`: one weight per value of the row, from its first block) each
    /// 16-value scale is fitted under those weights (`quantize_row_q6_K_impl`), otherwise under x².
    static func quantizeQ6_K(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout KScratch,
                             importance: UnsafePointer<Float>? = nil) {
        s.Li.withUnsafeMutableBufferPointer { Lb in
            let L = Lb.baseAddress!
            var scales = [Float](repeating: 0, count: 16)
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 210
                var maxScale: Float = 0, maxAbsScale: Float = 0
                for ib in 0..<16 {
                    let scale = makeQXQuants(16, 32, x + 16 * ib, L + 16 * ib, weights: importance.map { $0 + 256 * i + 16 * ib })
                    scales[ib] = scale
                    if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
                }
                if maxAbsScale < groupMaxEps {
                    (y).initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                    continue
                }
                let iscale = -128 / maxScale
                storeHalf(y, 208, 1 / iscale)
                for ib in 0..<16 {
                    let v = min(127, nearestInt(iscale * scales[ib]))
                    y.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: 192 + ib, as: UInt8.self)
                }
                let dAll = loadHalf(y, 208)
                for j in 0..<16 {
                    let sc = y.load(fromByteOffset: 192 + j, as: Int8.self)
                    let d = dAll * Float(sc)
                    if d == 0 { continue }
                    for ii in 0..<16 {
                        let l = Int(nearestInt(x[16 * j + ii] / d))
                        L[16 * j + ii] = Int8(max(-32, min(31, l)) + 32)
                    }
                }
                packQ6K(L, y)
            }
        }
    }

    /// IQ4_XS, 136 bytes: see `IQ4.quantizeSuperBlock`.
    static func quantizeIQ4_XS(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, blocks: Int, scratch: inout IQ4Scratch) {
        for i in 0..<blocks { IQ4.quantizeSuperBlock(size: 256, x + i * 256, y + i * 136, scratch: &scratch) }
    }
}
