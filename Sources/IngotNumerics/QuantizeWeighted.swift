import IngotFormats

// Importance-weighted quantizers: what llama-quantize runs when it is given an importance matrix (ggml-quants.c's
// `quantize_row_*_impl` with `quant_weights`), written operation for operation so that the bytes are identical.
//
// An importance matrix gives one weight per column of a tensor: the mean of the squared inputs that column saw
// during calibration (`in_sum2 / counts`). Each quantizer fits its scales by least squares under
//   w_j = importance_j · √(σ² + x_j²)
// where σ² is the mean square of the row (Q4_0..Q5_1), of the super-block (Q2_K: mean, Q3_K..Q5_K and IQ4:
// twice the mean); Q6_K uses the importance alone. The block layouts are those of the reference quantizers.

/// Work arrays of the importance-weighted quantizers, allocated once per worker (a row is quantized without
/// allocating).
final class WeightedScratch {
    let weights = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    let blockWeights = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let scales = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let mins = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let levels = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
    let signedLevels = UnsafeMutablePointer<Int8>.allocate(capacity: 256)
    let aux = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    let scaleLevels = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
    let minLevels = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
    let signedScaleLevels = UnsafeMutablePointer<Int8>.allocate(capacity: 16)

    deinit {
        for p in [weights, blockWeights, scales, mins] { p.deallocate() }
        for p in [levels, aux, scaleLevels, minLevels] { p.deallocate() }
        signedLevels.deallocate(); signedScaleLevels.deallocate()
    }
}

enum WeightedQuants {
    /// Quantizes one row of `columns` values (a multiple of `type`'s block size) under `importance` (one weight per
    /// column). Only for `BlockCodec.weightedTypes`.
    static func quantizeRow(_ type: GGMLType, _ x: UnsafePointer<Float>, columns: Int, importance qw: UnsafePointer<Float>,
                            into y: UnsafeMutableRawPointer, scratch: inout QuantScratch) {
        let s = scratch.weighted
        switch type {
        case .q4_0, .q5_0: legacySymmetric(x, columns: columns, qw, y, five: type == .q5_0, s)
        case .q4_1, .q5_1: legacyMinMax(x, columns: columns, qw, y, five: type == .q5_1, s)
        case .q2_K: q2K(x, columns: columns, qw, y, s)
        case .q3_K: q3K(x, columns: columns, qw, y, s)
        case .q4_K, .q5_K: scaleMinK(x, columns: columns, qw, y, five: type == .q5_K, s)
        case .q6_K: KQuants.quantizeQ6_K(x, y, blocks: columns / 256, scratch: &scratch.k, importance: qw)
        case .iq4_NL:
            for i in 0..<(columns / 32) {
                IQ4.quantizeSuperBlock(size: 32, x + 32 * i, y + 18 * i, scratch: &scratch.iq4, importance: qw + 32 * i)
            }
        case .iq4_XS:
            for i in 0..<(columns / 256) {
                IQ4.quantizeSuperBlock(size: 256, x + 256 * i, y + 136 * i, scratch: &scratch.iq4, importance: qw + 256 * i)
            }
        default: preconditionFailure("no importance-weighted quantizer for \(type)")
        }
    }

    /// Σx² / n over the row, accumulated in order.
    @inline(__always)
    static func meanSquare(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var sum: Float = 0
        for j in 0..<n { sum += x[j] * x[j] }
        return sum / Float(n)
    }

    /// Q4_0 (18 bytes: d, qs) and Q5_0 (22 bytes: d, qh, qs): per 32 values the scale of `make_qx_quants`
    /// (nmax 8 or 16) under the weights; σ² is the row's mean square.
    static func legacySymmetric(_ x: UnsafePointer<Float>, columns: Int, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                                five: Bool, _ s: WeightedScratch) {
        let sigma2 = meanSquare(x, columns)
        let w = s.weights, l = s.signedLevels
        for ib in 0..<(columns / 32) {
            let xb = x + 32 * ib, q = qw + 32 * ib, yb = y + ib * (five ? 22 : 18)
            for j in 0..<32 { w[j] = q[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            let d = KQuants.makeQXQuants(32, five ? 16 : 8, xb, l, weights: w)
            storeHalf(yb, 0, d)
            if five {
                packQ5(l, yb + 2)
            } else {
                for j in 0..<16 {
                    let v = UInt8(bitPattern: l[j]) | (UInt8(bitPattern: l[j + 16]) << 4)
                    yb.storeBytes(of: v, toByteOffset: 2 + j, as: UInt8.self)
                }
            }
        }
    }

    /// Q4_1 (20 bytes: d, m, qs) and Q5_1 (24 bytes: d, m, qh, qs): per 32 values a scale and minimum from
    /// `make_qkx3_quants` (37 candidate scales from -0.9 in steps of 0.05) under the weights.
    static func legacyMinMax(_ x: UnsafePointer<Float>, columns: Int, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer,
                             five: Bool, _ s: WeightedScratch) {
        let sigma2 = meanSquare(x, columns)
        let w = s.weights, l = s.levels
        for ib in 0..<(columns / 32) {
            let xb = x + 32 * ib, q = qw + 32 * ib, yb = y + ib * (five ? 24 : 20)
            for j in 0..<32 { w[j] = q[j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            var theMin: Float = 0
            let d = KQuants.makeQKX2Quants(32, five ? 31 : 15, xb, w, l, &theMin, s.aux, -0.9, 0.05, 36, false)
            storeHalf(yb, 0, d)
            storeHalf(yb, 2, -theMin)
            if five {
                l.withMemoryRebound(to: Int8.self, capacity: 32) { packQ5($0, yb + 4) }
            } else {
                for j in 0..<16 { yb.storeBytes(of: l[j] | (l[j + 16] << 4), toByteOffset: 4 + j, as: UInt8.self) }
            }
        }
    }

    /// Five-bit levels of 32 values: qh:u32 (bit j = fifth bit of value j) at 0, low nibbles (j, j+16) at 4.
    @inline(__always)
    static func packQ5(_ L: UnsafePointer<Int8>, _ y: UnsafeMutableRawPointer) {
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = UInt8(bitPattern: L[j]), b = UInt8(bitPattern: L[j + 16])
            y.storeBytes(of: (a & 0x0F) | ((b & 0x0F) << 4), toByteOffset: 4 + j, as: UInt8.self)
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: 0, as: UInt32.self)
    }

    /// `make_qp_quants`: non-negative `x` (block scales or minimums) as levels 0...nmax of one scale, searched over
    /// nine candidates and refined by coordinate descent under `weights`.
    static func makeQPQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
                             _ weights: UnsafePointer<Float>) -> Float {
        var mx: Float = 0
        for i in 0..<n { mx = mx > x[i] ? mx : x[i] }
        if mx < KQuants.groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / mx
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
        let scale = 1 / iscale
        var bestMSE: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            bestMSE += weights[i] * diff * diff
        }
        for s in -4...4 where s != 0 {
            let iscaleS = (0.1 * Float(s) + fnmax) / mx
            let scaleS = 1 / iscaleS
            var mse: Float = 0
            for i in 0..<n {
                let l = min(Int32(nmax), nearestInt(iscaleS * x[i]))
                let diff = x[i] - scaleS * Float(l)
                mse += weights[i] * diff * diff
            }
            if mse < bestMSE { bestMSE = mse; iscale = iscaleS }
        }
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = min(Int32(nmax), nearestInt(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            let w = weights[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = weights[i], li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                var sl2 = suml2 - w * li * li
                if slx > 0 && sl2 > 0 {
                    let newL = min(Int32(nmax), nearestInt(x[i] * sl2 / slx))
                    if newL != Int32(L[i]) {
                        slx += w * x[i] * Float(newL)
                        sl2 += w * Float(newL) * Float(newL)
                        if slx * slx * suml2 > sumlx * sumlx * sl2 {
                            L[i] = UInt8(truncatingIfNeeded: newL); sumlx = slx; suml2 = sl2
                            changed += 1
                        }
                    }
                }
            }
            if changed == 0 { break }
        }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// Q2_K (84 bytes): sixteen 16-value blocks fitted by `make_qkx3_quants` (nmax 3), their scales and minimums
    /// by `make_qp_quants` (nmax 15) weighted by each block's total weight; σ² is the super-block's mean square.
    static func q2K(_ x0: UnsafePointer<Float>, columns: Int, _ qw0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer,
                    _ s: WeightedScratch) {
        let L = s.levels, w = s.weights, sw = s.blockWeights
        for i in 0..<(columns / 256) {
            let x = x0 + 256 * i, qw = qw0 + 256 * i, y = y0 + 84 * i
            let sigma2 = meanSquare(x, 256)
            for j in 0..<16 {
                sw[j] = blockWeights(x + 16 * j, qw + 16 * j, 16, sigma2, w)
                var m: Float = 0
                s.scales[j] = KQuants.makeQKX2Quants(16, 3, x + 16 * j, w, L + 16 * j, &m, s.aux, -0.9, 0.05, 36, false)
                s.mins[j] = m
            }
            storeHalf(y, 80, makeQPQuants(16, 15, s.scales, s.scaleLevels, sw))
            storeHalf(y, 82, makeQPQuants(16, 15, s.mins, s.minLevels, sw))
            for j in 0..<16 { y.storeBytes(of: s.scaleLevels[j] | (s.minLevels[j] << 4), toByteOffset: j, as: UInt8.self) }
            KQuants.requantizeQ2K(x, y, L)
        }
    }

    /// Q3_K (110 bytes): sixteen 16-value blocks fitted by `make_qx_quants` (nmax 4), their scales as 6-bit levels
    /// by `make_qx_quants` (nmax 32) weighted by each block's total weight; σ² is twice the super-block's mean square.
    static func q3K(_ x0: UnsafePointer<Float>, columns: Int, _ qw0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer,
                    _ s: WeightedScratch) {
        let L = s.signedLevels, w = s.weights, sw = s.blockWeights, ls = s.signedScaleLevels
        for i in 0..<(columns / 256) {
            let x = x0 + 256 * i, qw = qw0 + 256 * i, y = y0 + 110 * i
            let sigma2 = superBlockSigma2(x)
            for j in 0..<16 {
                sw[j] = blockWeights(x + 16 * j, qw + 16 * j, 16, sigma2, w)
                s.scales[j] = KQuants.makeQXQuants(16, 4, x + 16 * j, L + 16 * j, weights: w)
            }
            let sbytes = (y + 96).bindMemory(to: UInt8.self, capacity: 12)
            sbytes.initialize(repeating: 0, count: 12)
            let dBlock = KQuants.makeQXQuants(16, 32, s.scales, ls, weights: sw)
            for j in 0..<16 {
                var l = Int(ls[j])
                if j < 8 { sbytes[j] = UInt8(l & 0xF) } else { sbytes[j - 8] |= UInt8(truncatingIfNeeded: (l & 0xF) << 4) }
                l >>= 4
                sbytes[j % 4 + 8] |= UInt8(truncatingIfNeeded: l << (2 * (j / 4)))
            }
            storeHalf(y, 108, dBlock)
            KQuants.requantizeQ3K(x, y, L)
        }
    }

    /// Twice the mean square of a 256-value super-block (Q3_K, Q4_K, Q5_K), accumulated in order.
    @inline(__always)
    static func superBlockSigma2(_ x: UnsafePointer<Float>) -> Float {
        var sumx2: Float = 0
        for j in 0..<256 { sumx2 += x[j] * x[j] }
        return 2 * sumx2 / 256
    }

    /// w_l = importance_l · √(σ² + x_l²) for the n values of a block; returns Σw.
    @inline(__always)
    static func blockWeights(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ n: Int, _ sigma2: Float,
                             _ w: UnsafeMutablePointer<Float>) -> Float {
        for l in 0..<n { w[l] = qw[l] * (sigma2 + x[l] * x[l]).squareRoot() }
        var sumw: Float = 0
        for l in 0..<n { sumw += w[l] }
        return sumw
    }

    /// Q4_K (144 bytes) and Q5_K (176 bytes): eight 32-value blocks fitted by `make_qkx3_quants` (nmax 15 or 31),
    /// their scales and minimums as 6-bit levels by `make_qp_quants` (nmax 63) weighted by each block's total
    /// weight; σ² is twice the super-block's mean square.
    static func scaleMinK(_ x0: UnsafePointer<Float>, columns: Int, _ qw0: UnsafePointer<Float>, _ y0: UnsafeMutableRawPointer,
                          five: Bool, _ s: WeightedScratch) {
        let nmax = five ? 31 : 15
        let L = s.levels, w = s.weights, sw = s.blockWeights, ls = s.scaleLevels, lm = s.minLevels
        for i in 0..<(columns / 256) {
            let x = x0 + 256 * i, qw = qw0 + 256 * i, y = y0 + (five ? 176 : 144) * i
            let sigma2 = superBlockSigma2(x)
            for j in 0..<8 {
                sw[j] = blockWeights(x + 32 * j, qw + 32 * j, 32, sigma2, w)
                var m: Float = 0
                s.scales[j] = KQuants.makeQKX2Quants(32, nmax, x + 32 * j, w, L + 32 * j, &m, s.aux, -0.9, 0.05, 36, false)
                s.mins[j] = m
            }
            let dBlock = makeQPQuants(8, 63, s.scales, ls, sw)
            let mBlock = makeQPQuants(8, 63, s.mins, lm, sw)
            KQuants.packScaleMinLevelsK({ min(63, ls[$0]) }, { min(63, lm[$0]) }, into: y)
            storeHalf(y, 0, dBlock)
            storeHalf(y, 2, mBlock)
            KQuants.requantizeScaleMinK(x, y, nmax: nmax, L: L)
            five ? KQuants.packQ5K(L, y) : KQuants.packQ4K(L, y)
        }
    }
}
