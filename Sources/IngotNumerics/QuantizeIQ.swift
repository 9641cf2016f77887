import IngotFormats

// The codebook quantizers IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M: ggml-quants.c's
// `quantize_row_iq*_impl`, written operation for operation so that the bytes equal llama-quantize's.
//
// Every super-block of 256 values is quantized on its own. IQ2 and IQ3 fold the signs out of each group of 8 (IQ2_XXS,
// IQ2_XS and IQ3_XXS keep an even number of minus signs, flipping the least important value, so that 7 bits store
// them), then search a sub-block scale: for each candidate, every group of 8 (IQ3: 4) levels is rounded onto the
// codebook, or, off it, replaced by the neighbouring codebook row of least weighted error; the candidate with the
// best weighted least-squares fit wins and is refitted. IQ1 has levels -1, 0, 1 shifted by ±1/8: it sorts the
// sub-block and tries every split into three groups exactly. The sub-block scales are then stored in 4 (IQ1: 3) bits
// of one super-block scale, with the fudge factors llama.cpp applies.
//
// Weights: importance_j · √(σ² + x_j²) with σ² the super-block's mean square (twice it for IQ2_S, IQ3 and IQ1).
// Without an importance matrix IQ3 and IQ1_M weigh by x², IQ2_S by σ²/4 + x²; IQ2_XXS, IQ2_XS and IQ1_S have no
// such form (llama.cpp asserts), and llama-quantize's rules refuse to plan them without one: called so anyway,
// Ingot weighs every column 1.

/// Work arrays of the codebook quantizers, allocated once per worker.
final class IQScratch {
    let weight = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    let waux = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    let xval = UnsafeMutablePointer<Float>.allocate(capacity: 32)
    let ones = UnsafeMutablePointer<Float>.allocate(capacity: 256)
    let scales = UnsafeMutablePointer<Float>.allocate(capacity: 16)
    let sumx = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 33)
    let sumw = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 33)
    /// IQ1's shifted levels -1+δ, δ, 1+δ and -1-δ, -δ, 1-δ (δ = 1/8).
    let plus = UnsafeMutablePointer<Float>.allocate(capacity: 3)
    let minus = UnsafeMutablePointer<Float>.allocate(capacity: 3)
    let L = UnsafeMutablePointer<Int8>.allocate(capacity: 32)
    let Laux = UnsafeMutablePointer<Int8>.allocate(capacity: 32)
    let qpLevels = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
    let signs = UnsafeMutablePointer<UInt8>.allocate(capacity: 8)
    let shifts = UnsafeMutablePointer<Int8>.allocate(capacity: 16)
    let onGrid = UnsafeMutablePointer<Bool>.allocate(capacity: 8)
    let onGridAux = UnsafeMutablePointer<Bool>.allocate(capacity: 8)
    let order = UnsafeMutablePointer<Int>.allocate(capacity: 32)
    let rows = UnsafeMutablePointer<Int>.allocate(capacity: 8)
    let words = UnsafeMutablePointer<UInt32>.allocate(capacity: 16)

    init() {
        ones.initialize(repeating: 1, count: 256)
        let delta: Float = 0.125
        plus[0] = -1 + delta; plus[1] = delta; plus[2] = 1 + delta
        minus[0] = -1 - delta; minus[1] = -delta; minus[2] = 1 - delta
    }

    deinit {
        for p in [weight, waux, xval, ones, scales, sumx, sumw, plus, minus] { p.deallocate() }
        L.deallocate(); Laux.deallocate(); qpLevels.deallocate(); signs.deallocate(); shifts.deallocate()
        onGrid.deallocate(); onGridAux.deallocate(); order.deallocate(); rows.deallocate(); words.deallocate()
    }
}

/// The scale search IQ2 and IQ3 share, with each type's codebook, level count and candidate scales.
struct IQSearch {
    /// After the search: which groups are rounded again at the chosen scale.
    enum Refit {
        /// Every group, whenever the scale is positive (IQ2_XXS).
        case every
        /// The groups the chosen candidate had off the codebook (IQ2_XS, IQ2_S, IQ3_XXS).
        case offGrid
        /// Every group, when any was off the codebook; no group counts as on it before a candidate wins (IQ3_S).
        case everyIfAnyOffGrid
    }

    let book: IQCodebook
    let kMaxQ: Int
    let steps: ClosedRange<Int>
    let step: Float
    let refit: Refit

    static var iq2xxs: IQSearch { IQSearch(book: .iq2xxs, kMaxQ: 3, steps: -6...6, step: 0.1, refit: .every) }
    static var iq2xs: IQSearch { IQSearch(book: .iq2xs, kMaxQ: 3, steps: -9...9, step: 0.1, refit: .offGrid) }
    static var iq2s: IQSearch { IQSearch(book: .iq2s, kMaxQ: 3, steps: -9...9, step: 0.1, refit: .offGrid) }
    static var iq3xxs: IQSearch { IQSearch(book: .iq3xxs, kMaxQ: 8, steps: -15...15, step: 0.2, refit: .offGrid) }
    static var iq3s: IQSearch { IQSearch(book: .iq3s, kMaxQ: 8, steps: -9...9, step: 0.2, refit: .everyIfAnyOffGrid) }

    /// Rounds one group of `x` at inverse scale `id` onto levels 0..<kMaxQ; a point off the codebook becomes its
    /// best neighbour at `scale`. Returns whether the rounded point was on the codebook.
    @inline(__always)
    func round(_ x: UnsafePointer<Float>, id: Float, scale: Float, _ waux: UnsafePointer<Float>,
               _ L: UnsafeMutablePointer<Int8>, _ s: IQScratch) -> Bool {
        var u = 0
        for i in 0..<book.width {
            let l = Int(nearestInt(0.5 * (id * x[i] - 1)))
            let c = max(0, min(kMaxQ - 1, l))
            L[i] = Int8(c)
            u |= c << (book.shift * i)
        }
        if book.map[u] >= 0 { return true }
        _ = book.bestNeighbour(u, x, waux, scale: scale, rows: book.oddRows, L)
        return false
    }

    /// Σ w·x·q and Σ w·q² with q = 2l+1, in order.
    @inline(__always)
    static func moments(_ n: Int, _ s: IQScratch, _ L: UnsafePointer<Int8>) -> (Float, Float) {
        var sumqx: Float = 0, sumq2: Float = 0
        for i in 0..<n {
            let w = s.weight[i]
            let q = Float(2 * Int(L[i]) + 1)
            sumqx += w * s.xval[i] * q
            sumq2 += w * q * q
        }
        return (sumqx, sumq2)
    }

    /// The scale of one sub-block of `n` folded values (`s.xval`, weights in `s.weight` and their square roots in
    /// `s.waux`), starting from `start` (levels in `s.L`), with candidates (2·kMaxQ - 1 + step·i) / `denominator`.
    /// Leaves the levels in `s.L`; the scale may come out negative.
    func fit(_ n: Int, _ s: IQScratch, start: Float, denominator: Float) -> Float {
        let g = book.width, groups = n / g
        var best: Float = 0
        var scale = start
        for k in 0..<groups { s.onGrid[k] = refit != .everyIfAnyOffGrid }
        let top = Float(2 * kMaxQ - 1)
        for i in steps {
            let id = (top + Float(i) * step) / denominator
            let thisScale = 1 / id
            for k in 0..<groups {
                s.onGridAux[k] = round(s.xval + g * k, id: id, scale: thisScale, s.waux + g * k, s.Laux + g * k, s)
            }
            let (sumqx, sumq2) = Self.moments(n, s, s.Laux)
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2
                best = scale * sumqx
                s.L.update(from: s.Laux, count: n)
                s.onGrid.update(from: s.onGridAux, count: groups)
            }
        }
        var again = refit == .every
        if !again { for k in 0..<groups where !s.onGrid[k] { again = true } }
        if again && scale > 0 {
            let id = 1 / scale
            for k in 0..<groups where refit != .offGrid || !s.onGrid[k] {
                _ = round(s.xval + g * k, id: id, scale: scale, s.waux + g * k, s.L + g * k, s)
            }
            let (sumqx, sumq2) = Self.moments(n, s, s.L)
            if sumq2 > 0 { scale = sumqx / sumq2 }
        }
        return scale
    }
}

enum IQQuants {
    static let types: Set<GGMLType> = [.iq2_XXS, .iq2_XS, .iq2_S, .iq3_XXS, .iq3_S, .iq1_S, .iq1_M]

    /// Quantizes `count` values (a multiple of 256) of `type`, weighted by `importance` (one per value, the
    /// importance of each column of a row) when given.
    static func quantize(_ type: GGMLType, _ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let size = type.bytesPerBlock
        for ibl in 0..<(count / 256) {
            let xb = x + 256 * ibl, qw = importance.map { $0 + 256 * ibl }, yb = y + size * ibl
            switch type {
            case .iq2_XXS: iq2xxs(xb, qw ?? UnsafePointer(s.ones), yb, s)
            case .iq2_XS: iq2xs(xb, qw ?? UnsafePointer(s.ones), yb, s)
            case .iq2_S: iq2s(xb, qw, yb, s)
            case .iq3_XXS: iq3xxs(xb, qw, yb, s)
            case .iq3_S: iq3s(xb, qw, yb, s)
            case .iq1_S: iq1s(xb, qw ?? UnsafePointer(s.ones), yb, s)
            case .iq1_M: iq1m(xb, qw, yb, s)
            default: preconditionFailure("no codebook quantizer for \(type)")
            }
        }
    }

    // MARK: Shared steps

    /// Σx² over the super-block, in order.
    @inline(__always)
    static func sumSquares(_ x: UnsafePointer<Float>) -> Float {
        var sum: Float = 0
        for i in 0..<256 { sum += x[i] * x[i] }
        return sum
    }

    /// importance · √(σ² + x²) over `n` values.
    @inline(__always)
    static func weigh(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ n: Int, sigma2: Float, _ s: IQScratch) {
        for i in 0..<n { s.weight[i] = qw[i] * (sigma2 + x[i] * x[i]).squareRoot() }
    }

    /// `s.xval` = |x| and `s.signs[k]` = the sign bits of each group of 8. With `evenParity` an odd count of minus
    /// signs is made even by flipping the value of least weighted magnitude, and the eighth bit is dropped.
    @inline(__always)
    static func foldSigns(_ x: UnsafePointer<Float>, _ n: Int, evenParity: Bool, _ s: IQScratch) {
        for k in 0..<(n / 8) {
            var flips = 0
            var bits: UInt8 = 0
            for i in 0..<8 {
                let v = x[8 * k + i]
                if v >= 0 { s.xval[8 * k + i] = v } else { s.xval[8 * k + i] = -v; flips += 1; bits |= 1 << UInt8(i) }
            }
            if evenParity {
                if flips % 2 == 1 {
                    var imin = 0
                    var least = s.weight[8 * k] * x[8 * k] * x[8 * k]
                    for i in 1..<8 {
                        let ax = s.weight[8 * k + i] * x[8 * k + i] * x[8 * k + i]
                        if ax < least { least = ax; imin = i }
                    }
                    s.xval[8 * k + imin] = -s.xval[8 * k + imin]
                    bits ^= 1 << UInt8(imin)
                }
                bits &= 127
            }
            s.signs[k] = bits
        }
    }

    /// C's MAX(a, b).
    @inline(__always) static func larger(_ a: Float, _ b: Float) -> Float { a > b ? a : b }

    @inline(__always)
    static func largest(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = x[0]
        for i in 1..<n { m = larger(m, x[i]) }
        return m
    }

    /// The 4-bit (IQ1: 3-bit) level of a sub-block scale under the super-block's inverse scale.
    @inline(__always)
    static func scaleLevel(_ scale: Float, _ id: Float, top: Int) -> Int {
        max(0, min(top, Int(nearestInt(0.5 * (id * scale - 1)))))
    }

    /// Folds, searches and refits one IQ2/IQ3 sub-block of `n` values; nil when it is too small to quantize.
    /// The levels are in `s.L` and the signs in `s.signs`, flipped when the scale came out negative.
    @inline(__always)
    static func subBlock(_ p: IQSearch, _ x: UnsafePointer<Float>, _ n: Int, evenParity: Bool, epsilon: Float,
                         _ s: IQScratch) -> Float? {
        for i in 0..<n { s.waux[i] = s.weight[i].squareRoot() }
        foldSigns(x, n, evenParity: evenParity, s)
        let mx = largest(s.xval, n)
        s.L.update(repeating: 0, count: n)
        // IQ3_S skips only an all-zero sub-block (epsilon 0: `!max`).
        if epsilon == 0 ? mx == 0 : mx < epsilon { return nil }
        var scale = p.fit(n, s, start: mx / Float(2 * p.kMaxQ - 1), denominator: mx)
        if scale < 0 {
            scale = -scale
            for k in 0..<(n / 8) { s.signs[k] = evenParity ? ~s.signs[k] & 127 : ~s.signs[k] }
        }
        return scale
    }

    // MARK: IQ2

    /// IQ2_XXS, 66 bytes: d, then per 32 values two words: four 8-bit codebook rows; four 7-bit sign sets and the
    /// 4-bit scale.
    static func iq2xxs(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let p = IQSearch.iq2xxs
        let q2 = s.words
        q2.update(repeating: 0, count: 16)
        let sigma2 = sumSquares(x) / 256
        var maxScale: Float = 0
        for ib in 0..<8 {
            let xb = x + 32 * ib
            weigh(xb, qw + 32 * ib, 32, sigma2: sigma2, s)
            for i in 0..<32 { s.waux[i] = s.weight[i].squareRoot() }
            foldSigns(xb, 32, evenParity: true, s)
            let mx = largest(s.xval, 32)
            if mx < KQuants.groupMaxEps { s.scales[ib] = 0; continue }
            // IQ2_XXS starts from make_qp_quants' scale and searches around its largest level. (llama.cpp leaves
            // make_qp_quants' levels in L, which a finite input always replaces; Ingot starts from zeros.)
            s.L.update(repeating: 0, count: 32)
            var scale = WeightedQuants.makeQPQuants(32, p.kMaxQ + 1, s.xval, s.qpLevels, s.weight)
            let effMax = scale * Float(p.kMaxQ)
            if effMax <= 0 { s.scales[ib] = 0; continue }
            scale = p.fit(32, s, start: scale, denominator: effMax)
            if scale < 0 {
                scale = -scale
                for k in 0..<4 { s.signs[k] = ~s.signs[k] & 127 }
            }
            for k in 0..<4 {
                q2[2 * ib] |= UInt32(p.book.row(of: s.L + 8 * k)) << UInt32(8 * k)
                q2[2 * ib + 1] |= UInt32(s.signs[k]) << UInt32(7 * k)
            }
            s.scales[ib] = scale
            maxScale = larger(maxScale, scale)
        }
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 66)
        if maxScale == 0 { return }
        let d = maxScale / 31
        storeHalf(y, 0, d)
        let id = 1 / d
        for ib in 0..<8 { q2[2 * ib + 1] |= UInt32(scaleLevel(s.scales[ib], id, top: 15)) << 28 }
        for i in 0..<16 { y.storeBytes(of: q2[i].littleEndian, toByteOffset: 2 + 4 * i, as: UInt32.self) }
    }

    /// IQ2_XS, 74 bytes: d, 32 words of a 9-bit codebook row and 7 sign bits per 8 values, 16 4-bit scales.
    static func iq2xs(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let p = IQSearch.iq2xs
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 74)
        let sigma2 = sumSquares(x) / 256
        var maxScale: Float = 0
        for ib in 0..<16 {
            let xb = x + 16 * ib
            weigh(xb, qw + 16 * ib, 16, sigma2: sigma2, s)
            guard let scale = subBlock(p, xb, 16, evenParity: true, epsilon: KQuants.groupMaxEps, s) else {
                s.scales[ib] = 0
                continue
            }
            for k in 0..<2 {
                let word = UInt16(p.book.row(of: s.L + 8 * k)) | UInt16(s.signs[k]) << 9
                y.storeBytes(of: word.littleEndian, toByteOffset: 2 + 2 * (2 * ib + k), as: UInt16.self)
            }
            s.scales[ib] = scale
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 {
            y.initializeMemory(as: UInt8.self, repeating: 0, count: 74)
            return
        }
        let d = maxScale / 31
        storeHalf(y, 0, d)
        storeScaleNibbles(y + 66, 16, d, s)
    }

    /// Sub-block scales as 4-bit levels of `d`, two per byte (low nibble first).
    @inline(__always)
    static func storeScaleNibbles(_ y: UnsafeMutableRawPointer, _ count: Int, _ d: Float, _ s: IQScratch) {
        let id = 1 / d
        for ib in stride(from: 0, to: count, by: 2) {
            let lo = scaleLevel(s.scales[ib], id, top: 15), hi = scaleLevel(s.scales[ib + 1], id, top: 15)
            y.storeBytes(of: UInt8(lo | hi << 4), toByteOffset: ib / 2, as: UInt8.self)
        }
    }

    /// IQ2_S, 82 bytes: d, 32 low bytes of 10-bit codebook rows, 32 sign bytes, 8 bytes of the rows' high bits,
    /// 16 4-bit scales.
    static func iq2s(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let p = IQSearch.iq2s
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 82)
        let sigma2 = 2 * sumSquares(x) / 256
        let qs = y + 2, qh = y + 66
        var maxScale: Float = 0
        for ib in 0..<16 {
            let xb = x + 16 * ib
            if let qw { weigh(xb, qw + 16 * ib, 16, sigma2: sigma2, s) } else {
                for i in 0..<16 { s.weight[i] = 0.25 * sigma2 + xb[i] * xb[i] }
            }
            guard let scale = subBlock(p, xb, 16, evenParity: false, epsilon: 1e-8, s) else {
                s.scales[ib] = 0
                continue
            }
            for k in 0..<2 {
                let r = p.book.row(of: s.L + 8 * k), i8 = 2 * ib + k
                qs.storeBytes(of: UInt8(r & 255), toByteOffset: i8, as: UInt8.self)
                qh.storeBytes(of: qh.load(fromByteOffset: i8 / 4, as: UInt8.self) | UInt8((r >> 8) << (2 * (i8 % 4))),
                              toByteOffset: i8 / 4, as: UInt8.self)
                qs.storeBytes(of: s.signs[k], toByteOffset: 32 + i8, as: UInt8.self)
            }
            s.scales[ib] = scale
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 { return }
        let d = maxScale / 31
        storeHalf(y, 0, d * 0.9875)
        storeScaleNibbles(y + 74, 16, d, s)
    }

    // MARK: IQ3

    /// IQ3_XXS, 98 bytes: d, 64 8-bit codebook rows (4 values each), per 32 values a word of four 7-bit sign sets
    /// and the 4-bit scale.
    static func iq3xxs(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let p = IQSearch.iq3xxs
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 98)
        let words = s.words
        words.update(repeating: 0, count: 8)
        let sigma2 = 2 * sumSquares(x) / 256
        var maxScale: Float = 0
        for ib in 0..<8 {
            let xb = x + 32 * ib
            if let qw { weigh(xb, qw + 32 * ib, 32, sigma2: sigma2, s) } else {
                for i in 0..<32 { s.weight[i] = xb[i] * xb[i] }
            }
            guard let scale = subBlock(p, xb, 32, evenParity: true, epsilon: 1e-8, s) else {
                s.scales[ib] = 0
                continue
            }
            for k in 0..<8 {
                y.storeBytes(of: UInt8(truncatingIfNeeded: p.book.row(of: s.L + 4 * k)), toByteOffset: 2 + 8 * ib + k, as: UInt8.self)
            }
            words[ib] = UInt32(s.signs[0]) | UInt32(s.signs[1]) << 7 | UInt32(s.signs[2]) << 14 | UInt32(s.signs[3]) << 21
            s.scales[ib] = scale
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 {
            y.initializeMemory(as: UInt8.self, repeating: 0, count: 98)
            return
        }
        let d = maxScale / 31
        storeHalf(y, 0, d * 1.0125)
        let id = 1 / d
        for ib in 0..<8 {
            let word = words[ib] | UInt32(scaleLevel(s.scales[ib], id, top: 15)) << 28
            y.storeBytes(of: word.littleEndian, toByteOffset: 66 + 4 * ib, as: UInt32.self)
        }
    }

    /// IQ3_S, 110 bytes: d, 64 low bytes of 9-bit codebook rows, 8 bytes of their high bits, 32 sign bytes, 8 4-bit
    /// scales.
    static func iq3s(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        let p = IQSearch.iq3s
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 110)
        let sigma2 = 2 * sumSquares(x) / 256
        let qh = y + 66
        // llama.cpp advances its row and sign cursors only past a sub-block it quantized: after an all-zero
        // sub-block the next one lands in its place. Ingot writes the same bytes.
        var qs = y + 2, signs = y + 74
        var maxScale: Float = 0
        for ib in 0..<8 {
            let xb = x + 32 * ib
            if let qw { weigh(xb, qw + 32 * ib, 32, sigma2: sigma2, s) } else {
                for i in 0..<32 { s.weight[i] = xb[i] * xb[i] }
            }
            guard let scale = subBlock(p, xb, 32, evenParity: false, epsilon: 0, s) else {
                s.scales[ib] = 0
                continue
            }
            for k in 0..<8 {
                let r = p.book.row(of: s.L + 4 * k)
                qs.storeBytes(of: UInt8(r & 255), toByteOffset: k, as: UInt8.self)
                qh.storeBytes(of: qh.load(fromByteOffset: ib, as: UInt8.self) | UInt8((r >> 8) << k), toByteOffset: ib, as: UInt8.self)
            }
            qs += 8
            for k in 0..<4 { signs.storeBytes(of: s.signs[k], toByteOffset: k, as: UInt8.self) }
            signs += 4
            s.scales[ib] = scale
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 { return }
        let d = maxScale / 31
        storeHalf(y, 0, d * 1.033)
        storeScaleNibbles(y + 106, 8, d, s)
    }

    // MARK: IQ1

    /// `s.order` = 0..<n sorted by `x`, equal values in index order (glibc's qsort merge-sorts an array this small,
    /// which keeps that order).
    @inline(__always)
    static func sortIndices(_ x: UnsafePointer<Float>, _ n: Int, _ s: IQScratch) {
        let o = s.order
        for j in 0..<n {
            var i = j
            while i > 0 && x[o[i - 1]] > x[j] { o[i] = o[i - 1]; i -= 1 }
            o[i] = j
        }
    }

    @inline(__always)
    static func largestMagnitude(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = abs(x[0])
        for i in 1..<n { m = larger(m, abs(x[i])) }
        return m
    }

    /// Levels by the split: below `i1` in sorted order 0, below `i2` 1, the rest 2.
    @inline(__always)
    static func splitLevels(_ n: Int, _ i1: Int, _ i2: Int, _ s: IQScratch) {
        for j in 0..<n { s.L[s.order[j]] = j < i1 ? 0 : j < i2 ? 1 : 2 }
    }

    /// IQ1's codebook rows as level values, shifted up (-1+δ, δ, 1+δ) and down (-1-δ, -δ, 1-δ).
    static let iq1PlusRows = IQCodebook.iq1s.valueRows([-1 + 0.125, 0.125, 1 + 0.125])
    static let iq1MinusRows = IQCodebook.iq1s.valueRows([-1 - 0.125, -0.125, 1 - 0.125])

    /// The codebook row of each group of 8 levels (off the codebook, the best neighbour at `scale`, shifted up
    /// where `up(k)`) into `s.rows`; false when any was off.
    @inline(__always)
    static func iq1Rows(_ x: UnsafePointer<Float>, groups: Int, scale: Float, up: (Int) -> Bool, _ s: IQScratch) -> Bool {
        let book = IQCodebook.iq1s
        var allOn = true
        for k in 0..<groups {
            let u = book.index(s.L + 8 * k)
            let m = Int(book.map[u])
            if m >= 0 { s.rows[k] = m; continue }
            allOn = false
            s.rows[k] = book.bestNeighbour(u, x + 8 * k, s.weight + 8 * k, scale: scale,
                                           rows: up(k) ? iq1PlusRows : iq1MinusRows, s.L + 8 * k)
        }
        return allOn
    }

    /// Σ w·q·x and Σ w·q² over the rows' values.
    @inline(__always)
    static func iq1Moments(_ x: UnsafePointer<Float>, groups: Int, up: (Int) -> Bool, _ s: IQScratch) -> (Float, Float) {
        let points = IQCodebook.iq1s.points
        var sumqx: Float = 0, sumq2: Float = 0
        for k in 0..<groups {
            let xx = up(k) ? s.plus : s.minus, r = s.rows[k]
            for j in 0..<8 {
                let w = s.weight[8 * k + j]
                let q = xx[Int((points[8 * r + j] - 1) / 2)]
                sumqx += w * q * x[8 * k + j]
                sumq2 += w * q * q
            }
        }
        return (sumqx, sumq2)
    }

    /// IQ1_S, 50 bytes: d, 32 low bytes of 11-bit codebook rows, per 32 values a 16-bit word: the rows' high bits,
    /// a 3-bit scale and the sign of the shift.
    static func iq1s(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 50)
        let sigma2 = 2 * sumSquares(x) / 256
        let xp = s.plus, xm = s.minus
        let sumx = s.sumx, sumw = s.sumw
        var maxScale: Float = 0
        for ib in 0..<8 {
            let xb = x + 32 * ib
            weigh(xb, qw + 32 * ib, 32, sigma2: sigma2, s)
            let mx = largestMagnitude(xb, 32)
            if mx < 1e-12 { s.scales[ib] = 0; s.shifts[ib] = 1; continue }
            sortIndices(xb, 32, s)
            sumx[0] = 0; sumw[0] = 0
            for j in 0..<32 {
                let i = s.order[j]
                sumx[j + 1] = sumx[j] + s.weight[i] * xb[i]
                sumw[j + 1] = sumw[j] + s.weight[i]
            }
            var best = -Float.greatestFiniteMagnitude, scale = mx
            var b1 = -1, b2 = -1, shift = 0
            for i1 in 0...32 {
                for i2 in i1...32 {
                    let a = sumx[i1] - sumx[0], b = sumx[i2] - sumx[i1], c = sumx[32] - sumx[i2]
                    let wa = sumw[i1] - sumw[0], wb = sumw[i2] - sumw[i1], wc = sumw[32] - sumw[i2]
                    var sumqx = a * xp[0] + b * xp[1] + c * xp[2]
                    var sumq2 = wa * xp[0] * xp[0] + wb * xp[1] * xp[1] + wc * xp[2] * xp[2]
                    if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                        scale = sumqx / sumq2; best = scale * sumqx
                        b1 = i1; b2 = i2; shift = 1
                    }
                    sumqx = a * xm[0] + b * xm[1] + c * xm[2]
                    sumq2 = wa * xm[0] * xm[0] + wb * xm[1] * xm[1] + wc * xm[2] * xm[2]
                    if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                        scale = sumqx / sumq2; best = scale * sumqx
                        b1 = i1; b2 = i2; shift = -1
                    }
                }
            }
            if b1 < 0 || b2 < 0 || shift == 0 { s.scales[ib] = 0; s.shifts[ib] = 1; continue }
            splitLevels(32, b1, b2, s)
            if scale < 0 {
                for j in 0..<32 { s.L[j] = 2 - s.L[j] }
                scale = -scale; shift = -shift
            }
            let up = shift == 1
            if !iq1Rows(xb, groups: 4, scale: scale, up: { _ in up }, s) {
                let (sumqx, sumq2) = iq1Moments(xb, groups: 4, up: { _ in up }, s)
                if sumqx > 0 && sumq2 > 0 { scale = sumqx / sumq2 }
            }
            var h: UInt16 = 0
            for k in 0..<4 {
                y.storeBytes(of: UInt8(s.rows[k] & 255), toByteOffset: 2 + 4 * ib + k, as: UInt8.self)
                h |= UInt16(s.rows[k] >> 8) << UInt16(3 * k)
            }
            y.storeBytes(of: h.littleEndian, toByteOffset: 34 + 2 * ib, as: UInt16.self)
            s.scales[ib] = scale
            s.shifts[ib] = Int8(shift)
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 { return }
        let d = maxScale / 15
        storeHalf(y, 0, d * 1.125)
        let id = 1 / d
        for ib in 0..<8 {
            var l = scaleLevel(s.scales[ib], id, top: 7)
            if s.shifts[ib] == -1 { l |= 8 }
            let h = UInt16(littleEndian: y.loadUnaligned(fromByteOffset: 34 + 2 * ib, as: UInt16.self)) | UInt16(l) << 12
            y.storeBytes(of: h.littleEndian, toByteOffset: 34 + 2 * ib, as: UInt16.self)
        }
    }

    /// IQ1_M's shift bits in the high-bits byte of a sub-block, by the signs of its two halves' shifts.
    static let shiftMasks: [UInt8] = [0x00, 0x80, 0x08, 0x88]

    /// IQ1_M, 56 bytes: 32 low bytes of 11-bit codebook rows; per 16 values a byte of the rows' high bits and their
    /// shift signs; 16 3-bit scales and the 16-bit super-block scale spread over the top nibbles of four words.
    static func iq1m(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer, _ s: IQScratch) {
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 56)
        let sigma2 = 2 * sumSquares(x) / 256
        let xp = s.plus, xm = s.minus
        // Prefix sums per half of the sub-block (each half has its own shift): px[h] at sumx + 17h, pw at sumw + 17h.
        let px = s.sumx, pw = s.sumw
        let p2 = xp[2], m2 = xm[2]
        let cp1 = xp[0] * xp[0] - xp[1] * xp[1], cp2 = xp[1] * xp[1] - xp[2] * xp[2]
        let cm1 = xm[0] * xm[0] - xm[1] * xm[1], cm2 = xm[1] * xm[1] - xm[2] * xm[2]
        /// Whether half k of a sub-block with shifts `shift` (0: +,+; 1: +,-; 2: -,+; 3: -,-) is shifted up.
        func up(_ k: Int, _ shift: Int) -> Bool { k == 0 ? shift < 2 : shift % 2 == 0 }
        func weigh16(_ xb: UnsafePointer<Float>, _ ib: Int) {
            if let qw { weigh(xb, qw + 16 * ib, 16, sigma2: sigma2, s) } else {
                for i in 0..<16 { s.weight[i] = xb[i] * xb[i] }
            }
        }
        var maxScale: Float = 0
        for ib in 0..<16 {
            let xb = x + 16 * ib
            weigh16(xb, ib)
            let mx = largestMagnitude(xb, 16)
            if mx < 1e-7 { s.scales[ib] = 0; s.shifts[ib] = 0; continue }
            sortIndices(xb, 16, s)
            px[0] = 0; px[17] = 0; pw[0] = 0; pw[17] = 0
            for j in 0..<16 {
                let i = s.order[j]
                let h = i < 8 ? 0 : 17, o = 17 - h
                px[h + j + 1] = px[h + j] + s.weight[i] * xb[i]
                px[o + j + 1] = px[o + j]
                pw[h + j + 1] = pw[h + j] + s.weight[i]
                pw[o + j + 1] = pw[o + j]
            }
            var best = -Float.greatestFiniteMagnitude, scale = mx
            var b1 = -1, b2 = -1, bestK = -1
            var sumqx = SIMD4<Float>(), sumq2 = SIMD4<Float>()
            for i1 in 0...16 {
                for i2 in i1...16 {
                    var qxp = SIMD2<Float>(), qxm = SIMD2<Float>(), q2p = SIMD2<Float>(), q2m = SIMD2<Float>()
                    for h in 0..<2 {
                        let o = 17 * h
                        let tx = px[o + 16], tw = pw[o + 16]
                        let sx = px[o + i1] + px[o + i2]
                        qxp[h] = tx * p2 - sx
                        qxm[h] = tx * m2 - sx
                        q2p[h] = tw * p2 * p2 + pw[o + i1] * cp1 + pw[o + i2] * cp2
                        q2m[h] = tw * m2 * m2 + pw[o + i1] * cm1 + pw[o + i2] * cm2
                    }
                    sumqx[0] = qxp[0] + qxp[1]; sumqx[1] = qxp[0] + qxm[1]
                    sumqx[2] = qxm[0] + qxp[1]; sumqx[3] = qxm[0] + qxm[1]
                    sumq2[0] = q2p[0] + q2p[1]; sumq2[1] = q2p[0] + q2m[1]
                    sumq2[2] = q2m[0] + q2p[1]; sumq2[3] = q2m[0] + q2m[1]
                    for k in 0..<4 where sumq2[k] > 0 && sumqx[k] * sumqx[k] > best * sumq2[k] {
                        scale = sumqx[k] / sumq2[k]; best = scale * sumqx[k]
                        b1 = i1; b2 = i2; bestK = k
                    }
                }
            }
            if b1 < 0 || b2 < 0 || bestK < 0 { s.scales[ib] = 0; s.shifts[ib] = 0; continue }
            splitLevels(16, b1, b2, s)
            if scale < 0 {
                for j in 0..<16 { s.L[j] = 2 - s.L[j] }
                scale = -scale
                bestK = 3 - bestK
            }
            let k0 = bestK
            if !iq1Rows(xb, groups: 2, scale: scale, up: { up($0, k0) }, s) {
                let (sqx, sq2) = iq1Moments(xb, groups: 2, up: { up($0, k0) }, s)
                if sqx > 0 && sq2 > 0 { scale = sqx / sq2 }
            }
            y.storeBytes(of: UInt8(s.rows[0] & 255), toByteOffset: 2 * ib, as: UInt8.self)
            y.storeBytes(of: UInt8(s.rows[1] & 255), toByteOffset: 2 * ib + 1, as: UInt8.self)
            y.storeBytes(of: UInt8((s.rows[0] >> 8) | ((s.rows[1] >> 8) << 4)), toByteOffset: 32 + ib, as: UInt8.self)
            s.scales[ib] = scale
            s.shifts[ib] = Int8(bestK)
            maxScale = larger(maxScale, scale)
        }
        if maxScale == 0 { return }
        var sc = SIMD4<UInt16>()
        var d = maxScale / 15
        let id = 1 / d
        let points = IQCodebook.iq1s.points
        var sumqxF: Float = 0, sumq2F: Float = 0
        for ib in 0..<16 {
            let l = scaleLevel(s.scales[ib], id, top: 7)
            sc[ib / 4] |= UInt16(l << (3 * (ib % 4)))
            let shift = Int(s.shifts[ib])
            let qh = y.load(fromByteOffset: 32 + ib, as: UInt8.self) | shiftMasks[shift]
            y.storeBytes(of: qh, toByteOffset: 32 + ib, as: UInt8.self)
            let xb = x + 16 * ib
            weigh16(xb, ib)
            for k in 0..<2 {
                let xx = up(k, shift) ? xp : xm
                let r = Int(y.load(fromByteOffset: 2 * ib + k, as: UInt8.self)) + ((Int(qh) << (8 - 4 * k)) & 0x700)
                for j in 0..<8 {
                    let w = s.weight[8 * k + j]
                    let q = xx[Int((points[8 * r + j] - 1) / 2)] * Float(2 * l + 1)
                    sumqxF += w * q * xb[8 * k + j]
                    sumq2F += w * q * q
                }
            }
        }
        if sumq2F > 0 { d = sumqxF / sumq2F }
        let h = floatToHalf(d * 1.1125)
        sc |= SIMD4((h & 0x000F) << 12, (h & 0x00F0) << 8, (h & 0x0F00) << 4, h & 0xF000)
        for i in 0..<4 { y.storeBytes(of: sc[i].littleEndian, toByteOffset: 48 + 2 * i, as: UInt16.self) }
    }
}
