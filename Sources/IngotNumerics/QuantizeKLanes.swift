// SIMD forms of the K-quant quantizers (Q2_K, Q4_K, Q5_K, Q6_K).
//
// The reference's scale searches accumulate float sums element by element, so vectorizing along a block would
// change the rounding of every sum. Instead each SIMD lane takes one whole sub-block (8 of the 32-value
// sub-blocks of a Q4_K super-block, or 8 of the 16-value ones of Q2_K/Q6_K) and runs exactly the reference's
// sequence of operations on it: the same products, sums in the same order, the same comparisons turned into
// per-lane selects. Each lane therefore produces the reference's bits, and eight searches run side by side.

enum KLanes {
    typealias F8 = SIMD8<Float>
    typealias I8 = SIMD8<Int32>
    typealias U8 = SIMD8<UInt32>

    @inline(__always) static func bits(_ v: F8) -> U8 { unsafeBitCast(v, to: U8.self) }
    @inline(__always) static func floats(_ v: U8) -> F8 { unsafeBitCast(v, to: F8.self) }

    /// `nearestInt` per lane.
    @inline(__always)
    static func nearest(_ f: F8) -> I8 {
        I8(truncatingIfNeeded: bits(f + 12582912) & 0x007F_FFFF) &- 0x0040_0000
    }

    /// Exact Int32 -> Float for |l| < 2^22 (through the 1.5 * 2^23 representation).
    @inline(__always)
    static func float(_ l: I8) -> F8 {
        floats(U8(truncatingIfNeeded: l &+ 0x4B40_0000)) - 12582912
    }

    @inline(__always)
    static func clamp(_ v: I8, _ lo: Int32, _ hi: Int32) -> I8 {
        var r = v
        r.replace(with: I8(repeating: lo), where: r .< I8(repeating: lo))
        r.replace(with: I8(repeating: hi), where: r .> I8(repeating: hi))
        return r
    }

    @inline(__always)
    static func absolute(_ v: F8) -> F8 { floats(bits(v) & 0x7FFF_FFFF) }

    /// Loads value i of eight sub-blocks of `n` values starting at `x` (sub-block b at x + b * n).
    @inline(__always)
    static func gather(_ x: UnsafePointer<Float>, _ n: Int, _ i: Int) -> F8 {
        F8(x[i], x[n + i], x[2 * n + i], x[3 * n + i], x[4 * n + i], x[5 * n + i], x[6 * n + i], x[7 * n + i])
    }

    /// `make_qkx2_quants` on eight sub-blocks at once. X and W hold n vectors (value i of each sub-block);
    /// L receives the levels; returns (scale, -min) per lane.
    @inline(__always)
    static func makeQKX2(_ n: Int, _ nmax: Int32, _ X: UnsafePointer<F8>, _ W: UnsafePointer<F8>,
                         _ L: UnsafeMutablePointer<I8>, _ Laux: UnsafeMutablePointer<I8>,
                         _ rmin: Float, _ rdelta: Float, _ nstep: Int, _ useMAD: Bool) -> (F8, F8) {
        var lo = X[0], hi = X[0]
        var sumW = W[0]
        var sumX = sumW * X[0]
        for i in 1..<n {
            lo.replace(with: X[i], where: X[i] .< lo)
            hi.replace(with: X[i], where: X[i] .> hi)
            sumW += W[i]
            sumX += W[i] * X[i]
        }
        lo = lo.replacing(with: F8(repeating: 0), where: lo .> 0)
        let flat = hi .== lo
        let fnmax = Float(nmax)
        var iscale = fnmax / (hi - lo)
        var scale = 1 / iscale
        var bestError = F8(repeating: 0)
        for i in 0..<n {
            let l = clamp(nearest(iscale * (X[i] - lo)), 0, nmax)
            L[i] = l
            var diff = scale * float(l) + lo - X[i]
            diff = useMAD ? absolute(diff) : diff * diff
            bestError += W[i] * diff
        }
        for s in 0...nstep {
            iscale = (rmin + rdelta * Float(s) + fnmax) / (hi - lo)
            var sumL = F8(repeating: 0), sumL2 = F8(repeating: 0), sumXL = F8(repeating: 0)
            for i in 0..<n {
                let l = clamp(nearest(iscale * (X[i] - lo)), 0, nmax)
                Laux[i] = l
                let fl = float(l)
                sumL += W[i] * fl
                sumL2 += W[i] * fl * fl
                sumXL += W[i] * fl * X[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            let positive = D .> 0
            if !any(positive) { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let clampMin = thisMin .> 0
            thisMin = thisMin.replacing(with: F8(repeating: 0), where: clampMin)
            thisScale.replace(with: sumXL / sumL2, where: clampMin)
            var curError = F8(repeating: 0)
            for i in 0..<n {
                var diff = thisScale * float(Laux[i]) + thisMin - X[i]
                diff = useMAD ? absolute(diff) : diff * diff
                curError += W[i] * diff
            }
            let better = positive .& (curError .< bestError)
            if !any(better) { continue }
            let mask = I8(repeating: 0).replacing(with: I8(repeating: -1), where: better)
            for i in 0..<n { L[i] = (Laux[i] & mask) | (L[i] & ~mask) }
            bestError.replace(with: curError, where: better)
            scale.replace(with: thisScale, where: better)
            lo.replace(with: thisMin, where: better)
        }
        // Sub-blocks whose values are all equal (after taking min down to 0) get scale 0 and levels 0.
        if any(flat) {
            let keep = I8(repeating: -1).replacing(with: I8(repeating: 0), where: flat)
            for i in 0..<n { L[i] &= keep }
            scale = scale.replacing(with: F8(repeating: 0), where: flat)
        }
        return (scale, -lo)
    }

    /// `make_qx_quants` (rmse_type 1, no weights) on eight sub-blocks: signed levels stored + nmax.
    @inline(__always)
    static func makeQX(_ n: Int, _ nmax: Int32, _ X: UnsafePointer<F8>, _ L: UnsafeMutablePointer<I8>) -> F8 {
        var mx = F8(repeating: 0), amax = F8(repeating: 0)
        for i in 0..<n {
            let ax = absolute(X[i])
            let gt = ax .> amax
            amax.replace(with: ax, where: gt)
            mx.replace(with: X[i], where: gt)
        }
        let zero = amax .< KQuants.groupMaxEps
        let fnmax = Float(nmax)
        var iscale = Float(-nmax) / mx
        var sumlx = F8(repeating: 0), suml2 = F8(repeating: 0)
        for i in 0..<n {
            let l = clamp(nearest(iscale * X[i]), -nmax, nmax - 1)
            L[i] = l &+ nmax
            let w = X[i] * X[i]
            let fl = float(l)
            sumlx += w * X[i] * fl
            suml2 += w * fl * fl
        }
        var scale = (sumlx / suml2).replacing(with: F8(repeating: 0), where: suml2 .== 0)
        var best = scale * sumlx
        for s in -9...9 where s != 0 {
            iscale = -(fnmax + 0.1 * Float(s)) / mx
            sumlx = F8(repeating: 0); suml2 = F8(repeating: 0)
            for i in 0..<n {
                let l = clamp(nearest(iscale * X[i]), -nmax, nmax - 1)
                let w = X[i] * X[i]
                let fl = float(l)
                sumlx += w * X[i] * fl
                suml2 += w * fl * fl
            }
            let better = (suml2 .> 0) .& (sumlx * sumlx .> best * suml2)
            if !any(better) { continue }
            let mask = I8(repeating: 0).replacing(with: I8(repeating: -1), where: better)
            for i in 0..<n {
                let l = clamp(nearest(iscale * X[i]), -nmax, nmax - 1) &+ nmax
                L[i] = (l & mask) | (L[i] & ~mask)
            }
            scale.replace(with: sumlx / suml2, where: better)
            best.replace(with: scale * sumlx, where: better)
        }
        if any(zero) {
            let keep = I8(repeating: -1).replacing(with: I8(repeating: 0), where: zero)
            for i in 0..<n { L[i] &= keep }
            scale = scale.replacing(with: F8(repeating: 0), where: zero)
        }
        return scale
    }
}

/// Work vectors for the lane-parallel K-quants (one per worker).
struct KLaneScratch {
    var X = [SIMD8<Float>](repeating: .zero, count: 32)
    var W = [SIMD8<Float>](repeating: .zero, count: 32)
    var L = [SIMD8<Int32>](repeating: .zero, count: 32)
    var Laux = [SIMD8<Int32>](repeating: .zero, count: 32)
}

extension KQuants {
    /// Q4_K (nmax 15) and Q5_K (nmax 31) with the scale search of all eight sub-blocks in SIMD lanes; writes
    /// levels into `Lout` (256 bytes) and the header (d, dmin, 12 scale bytes) as `quantizeScaleMinK` does.
    @inline(__always)
    static func scaleMinKLanes(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int32, rmin: Float, nstep: Int,
                               Lout: UnsafeMutablePointer<UInt8>, s: inout KLaneScratch) {
        s.X.withUnsafeMutableBufferPointer { Xb in
        s.W.withUnsafeMutableBufferPointer { Wb in
        s.L.withUnsafeMutableBufferPointer { Lb in
        s.Laux.withUnsafeMutableBufferPointer { Lauxb in
            let X = Xb.baseAddress!, W = Wb.baseAddress!, L = Lb.baseAddress!, Laux = Lauxb.baseAddress!
            var sumX2 = SIMD8<Float>(repeating: 0)
            for i in 0..<32 {
                X[i] = KLanes.gather(x, 32, i)
                sumX2 += X[i] * X[i]
            }
            let avX = (sumX2 / 32).squareRoot()
            for i in 0..<32 { W[i] = avX + KLanes.absolute(X[i]) }
            let (scales, mins) = KLanes.makeQKX2(32, nmax, X, W, L, Laux, rmin, 0.1, nstep, false)
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let (dAll, mAll) = packScalesMinsK(scales, mins, maxScale: maxScale, maxMin: maxMin, into: y)
            var d = SIMD8<Float>(repeating: 0), dm = SIMD8<Float>(repeating: 0)
            for j in 0..<8 {
                let (sc, m) = scaleMinK4(j, UnsafeRawPointer(y + 4))
                d[j] = dAll * Float(sc)
                dm[j] = mAll * Float(m)
            }
            let skip = d .== 0
            let keep = SIMD8<Int32>(repeating: 0).replacing(with: SIMD8<Int32>(repeating: -1), where: skip)
            for i in 0..<32 {
                let l = KLanes.clamp(KLanes.nearest((X[i] + dm) / d), 0, nmax)
                let v = (l & ~keep) | (L[i] & keep)
                for j in 0..<8 { Lout[32 * j + i] = UInt8(truncatingIfNeeded: v[j]) }
            }
        }}}}
    }

    static func quantizeQ4_KLanes(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout QuantScratch) {
        s.k.L.withUnsafeMutableBufferPointer { Lb in
            let L = Lb.baseAddress!
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 144
                scaleMinKLanes(x, y, nmax: 15, rmin: -1, nstep: 20, Lout: L, s: &s.lanes)
                packQ4K(L, y)
            }
        }
    }

    static func quantizeQ5_KLanes(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout QuantScratch) {
        s.k.L.withUnsafeMutableBufferPointer { Lb in
            let L = Lb.baseAddress!
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 176
                scaleMinKLanes(x, y, nmax: 31, rmin: -0.5, nstep: 15, Lout: L, s: &s.lanes)
                packQ5K(L, y)
            }
        }
    }

    /// Q6_K with the 16 sub-block searches in two groups of eight lanes.
    static func quantizeQ6_KLanes(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout QuantScratch) {
        s.lanes.X.withUnsafeMutableBufferPointer { Xb in
        s.lanes.L.withUnsafeMutableBufferPointer { Lb in
        s.k.Li.withUnsafeMutableBufferPointer { Lib in
            let X = Xb.baseAddress!, LV = Lb.baseAddress!, L = Lib.baseAddress!
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 210
                var scales = (SIMD8<Float>(), SIMD8<Float>())
                for g in 0..<2 {
                    for k in 0..<16 { X[16 * g + k] = KLanes.gather(x + 128 * g, 16, k) }
                    let sc = KLanes.makeQX(16, 32, X + 16 * g, LV + 16 * g)
                    if g == 0 { scales.0 = sc } else { scales.1 = sc }
                    for k in 0..<16 { for j in 0..<8 { L[128 * g + 16 * j + k] = Int8(truncatingIfNeeded: LV[16 * g + k][j]) } }
                }
                var maxScale: Float = 0, maxAbsScale: Float = 0
                for ib in 0..<16 {
                    let scale = ib < 8 ? scales.0[ib] : scales.1[ib - 8]
                    if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
                }
                if maxAbsScale < groupMaxEps {
                    y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                    continue
                }
                let iscale = -128 / maxScale
                storeHalf(y, 208, 1 / iscale)
                for ib in 0..<16 {
                    let scale = ib < 8 ? scales.0[ib] : scales.1[ib - 8]
                    let v = min(127, nearestInt(iscale * scale))
                    y.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: 192 + ib, as: UInt8.self)
                }
                let dAll = loadHalf(y, 208)
                for g in 0..<2 {
                    var d = SIMD8<Float>(repeating: 0)
                    for j in 0..<8 { d[j] = dAll * Float(y.load(fromByteOffset: 192 + 8 * g + j, as: Int8.self)) }
                    let skip = d .== 0
                    for k in 0..<16 {
                        let l = KLanes.clamp(KLanes.nearest(X[16 * g + k] / d), -32, 31) &+ 32
                        for j in 0..<8 where !skip[j] { L[128 * g + 16 * j + k] = Int8(truncatingIfNeeded: l[j]) }
                    }
                }
                packQ6K(L, y)
            }
        }}}
    }

    /// Q2_K with the 16 sub-block searches (16 values, weights |x|, absolute error) in two groups of eight lanes.
    static func quantizeQ2_KLanes(_ x0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer, blocks: Int, scratch s: inout QuantScratch) {
        s.lanes.X.withUnsafeMutableBufferPointer { Xb in
        s.lanes.W.withUnsafeMutableBufferPointer { Wb in
        s.lanes.L.withUnsafeMutableBufferPointer { Lb in
        s.lanes.Laux.withUnsafeMutableBufferPointer { Lauxb in
        s.k.L.withUnsafeMutableBufferPointer { Lob in
            let X = Xb.baseAddress!, W = Wb.baseAddress!, LV = Lb.baseAddress!, Laux = Lauxb.baseAddress!, L = Lob.baseAddress!
            for i in 0..<blocks {
                let x = x0 + i * 256, y = y0 + i * 84
                var scales = SIMD16<Float>(), mins = SIMD16<Float>()
                for g in 0..<2 {
                    for k in 0..<16 {
                        X[16 * g + k] = KLanes.gather(x + 128 * g, 16, k)
                        W[16 * g + k] = KLanes.absolute(X[16 * g + k])
                    }
                    let (sc, mn) = KLanes.makeQKX2(16, 3, X + 16 * g, W + 16 * g, LV + 16 * g, Laux, -0.5, 0.1, 15, true)
                    if g == 0 { scales.lowHalf = sc; mins.lowHalf = mn } else { scales.highHalf = sc; mins.highHalf = mn }
                    for k in 0..<16 { for j in 0..<8 { L[128 * g + 16 * j + k] = UInt8(truncatingIfNeeded: LV[16 * g + k][j]) } }
                }
                var maxScale: Float = 0, maxMin: Float = 0
                for j in 0..<16 {
                    let sc = scales[j], m = mins[j]
                    if sc > maxScale { maxScale = sc }
                    if m > maxMin { maxMin = m }
                }
                packQ2KScales({ scales[$0] }, { mins[$0] }, maxScale: maxScale, maxMin: maxMin, into: y)
                let dAll = loadHalf(y, 80), mAll = loadHalf(y, 82)
                for g in 0..<2 {
                    var d = SIMD8<Float>(repeating: 0), dm = SIMD8<Float>(repeating: 0)
                    for j in 0..<8 {
                        let sc = y.load(fromByteOffset: 8 * g + j, as: UInt8.self)
                        d[j] = dAll * Float(sc & 0xF)
                        dm[j] = mAll * Float(sc >> 4)
                    }
                    let skip = d .== 0
                    for k in 0..<16 {
                        let l = KLanes.clamp(KLanes.nearest((X[16 * g + k] + dm) / d), 0, 3)
                        for j in 0..<8 where !skip[j] { L[128 * g + 16 * j + k] = UInt8(truncatingIfNeeded: l[j]) }
                    }
                }
                packQ2K(L, y)
            }
        }}}}}
    }
}
