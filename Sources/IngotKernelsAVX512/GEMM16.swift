// The float matrix product for CPUs with AVX-512, built with `-target-cpu skylake-avx512` (Package.swift): the same
// product as IngotNumerics' `MatMul.gemm`, on sixteen-lane vectors and 32 registers. IngotNumerics calls it when
// /proc/cpuinfo shows AVX-512 (F, CD, BW, DQ, VL).
//
//     y[t * ldy + r] = Σ_{i<k} x[t * ldx + i] · w[r * ldw + i]      for t < tokens, r < rows
//
// Cost: tokens · rows · k multiply-adds. The kernel keeps a 4-token × 4-row block of sixteen-lane sums in registers
// (16 accumulators), loading each X and W vector once per block: 8 loads per 16 fused multiply-adds. Each sum is
// taken lane-wise over k, then across lanes; the order differs from the eight-lane kernel, so results agree with it
// to rounding, not bit for bit.

public enum GEMM16 {
    /// Rows of a packed weight panel (`gemmPanel`): two sixteen-lane vectors.
    public static let panelRows = 32

    /// `y[t * ldy + r] = Σ_{i<k} x[t * ldx + i] · panel[i * 32 + r]` for t < tokens, r < rows (at most 32): the
    /// weights packed k-major, 32 rows per step of k (rows from `rows` on hold zeros; their sums are not stored).
    /// An outer product: six tokens times 32 rows in twelve accumulators, each step of k two W loads and six
    /// broadcasts for twelve fused multiply-adds, and no sums across lanes; each output is summed in k order.
    public static func gemmPanel(_ x: UnsafePointer<Float>, ldx: Int, _ panel: UnsafePointer<Float>, k: Int,
                                 tokens: Int, rows: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        @inline(__always) func store(_ t: Int, _ lo: SIMD16<Float>, _ hi: SIMD16<Float>) {
            let out = y + t * ldy
            if rows == 32 {
                UnsafeMutableRawPointer(out).storeBytes(of: lo, as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(out + 16).storeBytes(of: hi, as: SIMD16<Float>.self)
            } else {
                for r in 0..<min(rows, 16) { out[r] = lo[r] }
                for r in 16..<max(16, rows) { out[r] = hi[r - 16] }
            }
        }
        var t = 0
        while t + 6 <= tokens {
            let x0 = x + t * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx
            var c0 = SIMD16<Float>(), d0 = SIMD16<Float>(), c1 = SIMD16<Float>(), d1 = SIMD16<Float>()
            var c2 = SIMD16<Float>(), d2 = SIMD16<Float>(), c3 = SIMD16<Float>(), d3 = SIMD16<Float>()
            var c4 = SIMD16<Float>(), d4 = SIMD16<Float>(), c5 = SIMD16<Float>(), d5 = SIMD16<Float>()
            var p = panel
            for i in 0..<k {
                let b0 = load(p), b1 = load(p + 16)
                var v = SIMD16<Float>(repeating: x0[i]); c0 = c0.addingProduct(v, b0); d0 = d0.addingProduct(v, b1)
                v = SIMD16<Float>(repeating: x1[i]); c1 = c1.addingProduct(v, b0); d1 = d1.addingProduct(v, b1)
                v = SIMD16<Float>(repeating: x2[i]); c2 = c2.addingProduct(v, b0); d2 = d2.addingProduct(v, b1)
                v = SIMD16<Float>(repeating: x3[i]); c3 = c3.addingProduct(v, b0); d3 = d3.addingProduct(v, b1)
                v = SIMD16<Float>(repeating: x4[i]); c4 = c4.addingProduct(v, b0); d4 = d4.addingProduct(v, b1)
                v = SIMD16<Float>(repeating: x5[i]); c5 = c5.addingProduct(v, b0); d5 = d5.addingProduct(v, b1)
                p += 32
            }
            store(t, c0, d0); store(t + 1, c1, d1); store(t + 2, c2, d2)
            store(t + 3, c3, d3); store(t + 4, c4, d4); store(t + 5, c5, d5)
            t += 6
        }
        while t < tokens {
            let x0 = x + t * ldx
            var c0 = SIMD16<Float>(), d0 = SIMD16<Float>()
            var p = panel
            for i in 0..<k {
                let v = SIMD16<Float>(repeating: x0[i])
                c0 = c0.addingProduct(v, load(p)); d0 = d0.addingProduct(v, load(p + 16))
                p += 32
            }
            store(t, c0, d0)
            t += 1
        }
    }

    public static func gemm(_ x: UnsafePointer<Float>, ldx: Int, _ w: UnsafePointer<Float>, ldw: Int, k: Int,
                            tokens: Int, rows: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        var t = 0
        while t + 4 <= tokens {
            var r = 0
            while r + 4 <= rows {
                block4x4(x + t * ldx, ldx, w + r * ldw, ldw, k, y + t * ldy + r, ldy)
                r += 4
            }
            while r < rows {
                for j in 0..<4 { y[(t + j) * ldy + r] = dot(x + (t + j) * ldx, w + r * ldw, k) }
                r += 1
            }
            t += 4
        }
        while t < tokens {
            var r = 0
            while r + 4 <= rows {
                block1x4(x + t * ldx, w + r * ldw, ldw, k, y + t * ldy + r)
                r += 4
            }
            while r < rows {
                y[t * ldy + r] = dot(x + t * ldx, w + r * ldw, k)
                r += 1
            }
            t += 1
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Σ a[i]·b[i] over the last `k - from` values, in order.
    @inline(__always)
    static func tail(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, from: Int, _ k: Int) -> Float {
        var s: Float = 0
        for i in from..<k { s += a[i] * b[i] }
        return s
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= k { acc = acc.addingProduct(load(a + i), load(b + i)); i += 16 }
        return acc.sum() + tail(a, b, from: i, k)
    }

    /// One token against four rows.
    @inline(__always)
    static func block1x4(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ ldw: Int, _ k: Int,
                         _ y: UnsafeMutablePointer<Float>) {
        let w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var i = 0
        while i + 16 <= k {
            let v = load(x + i)
            a0 = a0.addingProduct(v, load(w0 + i)); a1 = a1.addingProduct(v, load(w1 + i))
            a2 = a2.addingProduct(v, load(w2 + i)); a3 = a3.addingProduct(v, load(w3 + i))
            i += 16
        }
        y[0] = a0.sum() + tail(x, w0, from: i, k); y[1] = a1.sum() + tail(x, w1, from: i, k)
        y[2] = a2.sum() + tail(x, w2, from: i, k); y[3] = a3.sum() + tail(x, w3, from: i, k)
    }

    /// Four tokens against four rows: sixteen accumulators, four W vectors and one X vector in 32 registers.
    @inline(__always)
    static func block4x4(_ x: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafePointer<Float>, _ ldw: Int, _ k: Int,
                         _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
        let w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw
        let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
        var a00 = SIMD16<Float>(), a01 = SIMD16<Float>(), a02 = SIMD16<Float>(), a03 = SIMD16<Float>()
        var a10 = SIMD16<Float>(), a11 = SIMD16<Float>(), a12 = SIMD16<Float>(), a13 = SIMD16<Float>()
        var a20 = SIMD16<Float>(), a21 = SIMD16<Float>(), a22 = SIMD16<Float>(), a23 = SIMD16<Float>()
        var a30 = SIMD16<Float>(), a31 = SIMD16<Float>(), a32 = SIMD16<Float>(), a33 = SIMD16<Float>()
        var i = 0
        let end = k & ~15
        while i < end {
            let b0 = load(w0 + i), b1 = load(w1 + i), b2 = load(w2 + i), b3 = load(w3 + i)
            var v = load(x0 + i)
            a00 = a00.addingProduct(v, b0); a01 = a01.addingProduct(v, b1); a02 = a02.addingProduct(v, b2); a03 = a03.addingProduct(v, b3)
            v = load(x1 + i)
            a10 = a10.addingProduct(v, b0); a11 = a11.addingProduct(v, b1); a12 = a12.addingProduct(v, b2); a13 = a13.addingProduct(v, b3)
            v = load(x2 + i)
            a20 = a20.addingProduct(v, b0); a21 = a21.addingProduct(v, b1); a22 = a22.addingProduct(v, b2); a23 = a23.addingProduct(v, b3)
            v = load(x3 + i)
            a30 = a30.addingProduct(v, b0); a31 = a31.addingProduct(v, b1); a32 = a32.addingProduct(v, b2); a33 = a33.addingProduct(v, b3)
            i &+= 16
        }
        @inline(__always) func store(_ j: Int, _ c: Int, _ a: SIMD16<Float>) {
            y[j * ldy + c] = a.sum() + tail(x + j * ldx, w + c * ldw, from: i, k)
        }
        store(0, 0, a00); store(0, 1, a01); store(0, 2, a02); store(0, 3, a03)
        store(1, 0, a10); store(1, 1, a11); store(1, 2, a12); store(1, 3, a13)
        store(2, 0, a20); store(2, 1, a21); store(2, 2, a22); store(2, 3, a23)
        store(3, 0, a30); store(3, 1, a31); store(3, 2, a32); store(3, 3, a33)
    }
}
