import IngotFormats
import IngotNumerics

/// GPTQ's settings, llm-compressor's defaults (`GPTQModifier`).
public struct GPTQOptions: Sendable {
    /// Columns whose error is propagated to the rest at once (`block_size`).
    public var blockSize = 128
    /// Added to the Hessian's diagonal, as a fraction of its mean (`dampening_frac`).
    public var dampening = 0.01
    /// Quantize the columns in order of decreasing Hessian diagonal (`actorder`, llm-compressor's `weight`/`static`:
    /// each column keeps its own group's parameters, so the stored layout does not change).
    public var activationOrder = true
    public var threads = 2
    public init() {}
}

/// One weight quantized by GPTQ.
public struct GPTQResult: Sendable {
    /// rows × cols codes of the grid.
    public var codes: [Int32]
    /// The values they stand for (rows × cols): the weight as the runtime will see it.
    public var values: [Float]
    /// Σ over rows and columns of the scaled error² / 2, llm-compressor's reported loss.
    public var loss: Double
    /// The damped Hessian was not positive definite: the weight was rounded to nearest instead, as llm-compressor does.
    public var roundedToNearest: Bool
}

/// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", 2022),
/// as llm-compressor 0.14 computes it (`gptq_quantize.quantize_weight`):
///
///     H = Σ x xᵀ over the layer's input rows (any positive multiple of it gives the same result)
///     dead columns (H_ii = 0): H_ii = 1, W[:, i] = 0
///     activation order: columns (and H) permuted by decreasing H_ii
///     H += dampening · mean(diag H) · I
///     U = upper Cholesky factor of H⁻¹
///     for each column i in turn, every row:  q = grid(w_i),  e = (w_i - q) / U_ii,  w_j -= e · U_ij for j > i
///
/// with the updates to columns past the current block of `blockSize` deferred and applied per block. The grid's
/// parameters are fitted to the weight before (llm-compressor's observer does the same); every column is rounded with
/// its own group's parameters whatever the order. Rows are independent: they run in tiles over the threads.
///
/// U is computed without forming H⁻¹: with J the order reversal, J·H·J = L·Lᵀ (Cholesky), so H = V·Vᵀ with V = J·L·J
/// upper, H⁻¹ = V⁻ᵀ·V⁻¹ and U = V⁻¹ = J·L⁻¹·J. All in Float, as llm-compressor computes it.
public enum GPTQ {
    /// What GPTQ derives from a Hessian alone, shared by the layers that read the same input (q, k and v; gate and up).
    public struct Factor: Sendable {
        public let cols: Int
        /// Columns in the order they are quantized.
        public let order: [Int]
        /// Columns no input row ever reached (H_ii = 0): their weights count as 0.
        public let dead: [Int]
        /// U, the upper Cholesky factor of the permuted, damped H⁻¹ (cols × cols, row-major); the identity when H
        /// was not positive definite.
        public let u: [Float]
        public let factored: Bool
    }

    /// Factors `hessian` (n × n, row-major, symmetric).
    public static func factor(hessian: UnsafePointer<Float>, cols n: Int, options: GPTQOptions = GPTQOptions()) -> Factor {
        var diag = (0..<n).map { Double(hessian[$0 * n + $0]) }
        let dead = (0..<n).filter { diag[$0] == 0 }
        for i in dead { diag[i] = 1 }
        var perm = Array(0..<n)
        if options.activationOrder {
            perm.sort { diag[$0] > diag[$1] || (diag[$0] == diag[$1] && $0 < $1) }
        }
        let damp = options.dampening * diag.reduce(0, +) / Double(max(n, 1))
        // The permuted, reversed, damped Hessian: a[i][j] = H[p(n-1-i)][p(n-1-j)], lower triangle.
        var a = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            let pi = perm[n - 1 - i]
            for j in 0..<i { a[i * n + j] = hessian[pi * n + perm[n - 1 - j]] }
            a[i * n + i] = Float(diag[pi] + damp)
        }
        var u = [Float](repeating: 0, count: n * n)
        let factored = a.withUnsafeMutableBufferPointer { ap in
            guard cholesky(ap.baseAddress!, n, threads: options.threads) else { return false }
            // Row j of y is column j of L⁻¹; U[i][j] = L⁻¹[n-1-i][n-1-j] = y[n-1-j][n-1-i].
            let y = lowerInverseColumns(ap.baseAddress!, n, threads: options.threads)
            for i in 0..<n { for j in i..<n { u[i * n + j] = y[(n - 1 - j) * n + (n - 1 - i)] } }
            return true
        }
        if !factored {
            u = [Float](repeating: 0, count: n * n)
            for i in 0..<n { u[i * n + i] = 1 }
        }
        return Factor(cols: n, order: perm, dead: dead, u: u, factored: factored)
    }

    public static func quantize<G: ColumnGrid>(_ weights: UnsafePointer<Float>, rows: Int, cols n: Int, hessian: UnsafePointer<Float>,
                                grid: G, options: GPTQOptions = GPTQOptions()) -> GPTQResult {
        quantize(weights, rows: rows, factor: factor(hessian: hessian, cols: n, options: options), grid: grid, options: options)
    }

    public static func quantize<G: ColumnGrid>(_ weights: UnsafePointer<Float>, rows: Int, factor f: Factor, grid: G,
                                options: GPTQOptions = GPTQOptions()) -> GPTQResult {
        let n = f.cols
        precondition(grid.rows == rows && grid.cols == n, "the grid is for another shape")
        // Columns in the order they are quantized, dead ones zero.
        var wp = [Float](repeating: 0, count: rows * n)
        for r in 0..<rows { for j in 0..<n { wp[r * n + j] = weights[r * n + f.order[j]] } }
        if !f.dead.isEmpty {
            let isDead = Set(f.dead)
            for j in 0..<n where isDead.contains(f.order[j]) { for r in 0..<rows { wp[r * n + j] = 0 } }
        }
        var codes = [Int32](repeating: 0, count: rows * n), values = [Float](repeating: 0, count: rows * n)
        let tile = 8, tiles = (rows + tile - 1) / tile
        var losses = [Double](repeating: 0, count: tiles)
        let block = max(1, options.blockSize), groups = grid.groups, gs = grid.groupSize
        wp.withUnsafeMutableBufferPointer { wb in f.u.withUnsafeBufferPointer { ub in
        codes.withUnsafeMutableBufferPointer { cb in values.withUnsafeMutableBufferPointer { vb in
        losses.withUnsafeMutableBufferPointer { lb in f.order.withUnsafeBufferPointer { pb in
            let W = UnsafeSendable(UnsafePointer(wb.baseAddress!)), U = UnsafeSendable(ub.baseAddress!)
            let C = UnsafeSendable(UnsafePointer(cb.baseAddress!)), V = UnsafeSendable(UnsafePointer(vb.baseAddress!))
            let L = UnsafeSendable(UnsafePointer(lb.baseAddress!)), P = UnsafeSendable(pb.baseAddress!)
            try? parallelFor(0..<tiles, threads: options.threads) { t, _ in
                let w = UnsafeMutablePointer(mutating: W.pointer), u = U.pointer, p = P.pointer
                let codes = UnsafeMutablePointer(mutating: C.pointer), values = UnsafeMutablePointer(mutating: V.pointer)
                let r0 = t * tile, r1 = min(rows, r0 + tile)
                var err = [Float](repeating: 0, count: tile * block)
                var loss = 0.0
                err.withUnsafeMutableBufferPointer { eb in
                    let e = eb.baseAddress!
                    var i1 = 0
                    while i1 < n {
                        let i2 = min(i1 + block, n)
                        for r in r0..<r1 {
                            let wr = w + r * n, er = e + (r - r0) * block
                            for i in i1..<i2 {
                                let x = wr[i], col = p[i], g = r * groups + col / gs
                                let q = grid.code(x, group: g), v = grid.value(q, group: g)
                                codes[r * n + col] = q
                                values[r * n + col] = v
                                let ei = (x - v) / u[i * n + i]
                                loss += Double(ei * ei) / 2
                                er[i - i1] = ei
                                let ui = u + i * n
                                for j in (i + 1)..<i2 { wr[j] -= ei * ui[j] }
                            }
                        }
                        if i2 < n {
                            for k in 0..<(i2 - i1) {
                                let uk = u + (i1 + k) * n
                                for r in r0..<r1 {
                                    let ek = e[(r - r0) * block + k], wr = w + r * n
                                    for j in i2..<n { wr[j] -= ek * uk[j] }
                                }
                            }
                        }
                        i1 = i2
                    }
                }
                UnsafeMutablePointer(mutating: L.pointer)[t] = loss
            }
        } } } } } }
        return GPTQResult(codes: codes, values: values, loss: losses.reduce(0, +), roundedToNearest: !f.factored)
    }

    /// The lower Cholesky factor of the symmetric matrix whose lower triangle `a` (n × n, row-major) holds, in place
    /// (the upper triangle is left alone). False when a pivot is not positive: the matrix is not positive definite.
    /// The rows below each pivot are independent: they are shared among the threads where there are enough of them.
    static func cholesky(_ a: UnsafeMutablePointer<Float>, _ n: Int, threads: Int = 1) -> Bool {
        let A = UnsafeSendable(UnsafePointer(a))
        for j in 0..<n {
            let rj = a + j * n
            let d = rj[j] - dot(rj, rj, j)
            guard d > 0, d.isFinite else { return false }
            let s = d.squareRoot()
            rj[j] = s
            let below = n - j - 1
            let workers = below * j >= 1 << 16 ? max(1, threads) : 1
            try? parallelFor(0..<workers, threads: workers) { k, _ in
                let a = UnsafeMutablePointer(mutating: A.pointer), rj = a + j * n
                let i0 = j + 1 + below * k / workers, i1 = j + 1 + below * (k + 1) / workers
                for i in i0..<i1 {
                    let ri = a + i * n
                    ri[j] = (ri[j] - dot(ri, rj, j)) / s
                }
            }
        }
        return true
    }

    /// The columns of L⁻¹ for the lower triangular L in the lower triangle of `l`, one row of the result each (the
    /// transpose of L⁻¹): column j solves L·y = e_j by forward substitution, y_i = (δ_ij - Σ_{j≤k<i} L_ik·y_k) / L_ii.
    /// Columns are independent: they are shared among the threads.
    static func lowerInverseColumns(_ l: UnsafePointer<Float>, _ n: Int, threads: Int = 1) -> [Float] {
        var y = [Float](repeating: 0, count: n * n)
        y.withUnsafeMutableBufferPointer { yb in
            let Y = UnsafeSendable(UnsafePointer(yb.baseAddress!)), L = UnsafeSendable(l)
            // Column j costs (n - j)²/2: interleave so the workers get equal shares.
            try? parallelFor(0..<n, threads: max(1, threads)) { j, _ in
                let y = UnsafeMutablePointer(mutating: Y.pointer) + j * n, l = L.pointer
                y[j] = 1 / l[j * n + j]
                for i in (j + 1)..<max(j + 1, n) {
                    let li = l + i * n
                    y[i] = -dot(li + j, y + j, i - j) / li[i]
                }
            }
        }
        return y
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var k = 0
        while k + 16 <= n {
            s0 += UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self)
            s1 += UnsafeRawPointer(a + k + 8).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + k + 8).loadUnaligned(as: SIMD8<Float>.self)
            k += 16
        }
        var s = (s0 + s1).sum()
        while k < n { s += a[k] * b[k]; k += 1 }
        return s
    }
}
