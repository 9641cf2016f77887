#if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
import IngotNumericsAVX2
#endif
#if !INGOT_KERNEL_VARIANT && canImport(IngotKernelsAVX512)
import IngotKernelsAVX512
#endif

/// The float matrix product at the heart of the forward pass: `Y[t, r] = Σ_k X[t, k] · W[r, k]`, with X the
/// activations (one row per token) and W a weight matrix stored row-major as in GGUF (one row per output). Quantized
/// weights reach it as tiles of rows dequantized to floats (`QuantizedMatMul`), so every GGUF format shares this
/// kernel and the dequantizers (bit-exact with ggml's) carry the format.
///
/// Cost: tokens · rows · k multiply-adds. The SIMD kernel keeps a 3-token × 3-row block of eight-lane sums in
/// registers (9 accumulators), loading each X and W vector once per block: 6 loads per 9 multiply-adds.
public enum MatMul {
    /// `y[t * ldy + r] = Σ_{i<k} x[t * ldx + i] · w[r * ldw + i]` for t < tokens, r < rows.
    public static func gemm(_ x: UnsafePointer<Float>, ldx: Int, _ w: UnsafePointer<Float>, ldw: Int, k: Int,
                            tokens: Int, rows: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int,
                            kernels: KernelChoice = Kernels.choice) {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotKernelsAVX512)
        if kernels == .best && CPUFeatures.hasAVX512 {
            GEMM16.gemm(x, ldx: ldx, w, ldw: ldw, k: k, tokens: tokens, rows: rows, y, ldy: ldy)
            return
        }
        #endif
        #if !INGOT_KERNEL_VARIANT && canImport(IngotNumericsAVX2)
        if kernels == .best && CPUFeatures.hasAVX2 {
            IngotNumericsAVX2.MatMul.gemm(x, ldx: ldx, w, ldw: ldw, k: k, tokens: tokens, rows: rows, y, ldy: ldy, kernels: .best)
            return
        }
        #endif
        if kernels == .reference {
            ReferenceKernels.gemm(x, ldx: ldx, w, ldw: ldw, k: k, tokens: tokens, rows: rows, y, ldy: ldy)
        } else {
            SIMDKernels.gemm(x, ldx: ldx, w, ldw: ldw, k: k, tokens: tokens, rows: rows, y, ldy: ldy)
        }
    }
}

extension MatMul {
    /// Whether `kernels` multiply stored weights as k-major panels (`multiplyPanel`) rather than by `gemm`.
    static func usesPanels(_ kernels: KernelChoice) -> Bool {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotKernelsAVX512)
        return kernels == .best && CPUFeatures.hasAVX512
        #else
        return false
        #endif
    }

    /// Rows of a panel.
    static var panelRows: Int {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotKernelsAVX512)
        return GEMM16.panelRows
        #else
        return 0
        #endif
    }

    /// `y[t * ldy + r] = Σ_i x[t * ldx + i] · w[r * k + i]` for `rows` (≤ `panelRows`) rows of w, through `panel`
    /// (k × panelRows floats of scratch): the rows are packed k-major, then multiplied by the outer-product kernel.
    static func multiplyPanel(_ x: UnsafePointer<Float>, ldx: Int, _ w: UnsafePointer<Float>, k: Int, tokens: Int, rows: Int,
                              panel: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if !INGOT_KERNEL_VARIANT && canImport(IngotKernelsAVX512)
        let pr = GEMM16.panelRows
        for r in 0..<rows {
            let src = w + r * k
            for i in 0..<k { panel[i * pr + r] = src[i] }
        }
        if rows < pr { for i in 0..<k { for r in rows..<pr { panel[i * pr + r] = 0 } } }
        GEMM16.gemmPanel(x, ldx: ldx, panel, k: k, tokens: tokens, rows: rows, y, ldy: ldy)
        #endif
    }
}

extension ReferenceKernels {
    /// The plain triple loop, summing in order in Float.
    public static func gemm(_ x: UnsafePointer<Float>, ldx: Int, _ w: UnsafePointer<Float>, ldw: Int, k: Int,
                            tokens: Int, rows: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        for t in 0..<tokens {
            for r in 0..<rows {
                var s: Float = 0
                for i in 0..<k { s += x[t * ldx + i] * w[r * ldw + i] }
                y[t * ldy + r] = s
            }
        }
    }
}

extension SIMDKernels {
    public static func gemm(_ x: UnsafePointer<Float>, ldx: Int, _ w: UnsafePointer<Float>, ldw: Int, k: Int,
                            tokens: Int, rows: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        var t = 0
        while t + 3 <= tokens {
            var r = 0
            while r + 3 <= rows {
                block3x3(x + t * ldx, ldx, w + r * ldw, ldw, k, y + t * ldy + r, ldy)
                r += 3
            }
            while r < rows {
                for j in 0..<3 { y[(t + j) * ldy + r] = dot(x + (t + j) * ldx, w + r * ldw, k) }
                r += 1
            }
            t += 3
        }
        while t < tokens {
            var r = 0
            while r + 3 <= rows {
                block1x3(x + t * ldx, w + r * ldw, ldw, k, y + t * ldy + r)
                r += 3
            }
            while r < rows {
                y[t * ldy + r] = dot(x + t * ldx, w + r * ldw, k)
                r += 1
            }
            t += 1
        }
    }

    /// acc + a · b, fused where the target has FMA (the baseline x86-64 build has none, and a fused call there
    /// would go through a library routine per lane).
    @inline(__always)
    static func madd(_ acc: SIMD8<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if INGOT_KERNEL_VARIANT || arch(arm64)
        return acc.addingProduct(a, b)
        #else
        return acc + a * b
        #endif
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= k { acc = madd(acc, load8(a + i), load8(b + i)); i += 8 }
        var s = acc.sum()
        while i < k { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// One token against three rows.
    @inline(__always)
    static func block1x3(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ ldw: Int, _ k: Int,
                         _ y: UnsafeMutablePointer<Float>) {
        let w0 = w, w1 = w + ldw, w2 = w + 2 * ldw
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
        var i = 0
        while i + 8 <= k {
            let v = load8(x + i)
            a0 = madd(a0, v, load8(w0 + i)); a1 = madd(a1, v, load8(w1 + i)); a2 = madd(a2, v, load8(w2 + i))
            i += 8
        }
        var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum()
        while i < k { s0 += x[i] * w0[i]; s1 += x[i] * w1[i]; s2 += x[i] * w2[i]; i += 1 }
        y[0] = s0; y[1] = s1; y[2] = s2
    }

    /// Three tokens against three rows: nine accumulators, which with three W vectors and one X vector stay in the
    /// sixteen vector registers of AVX2 (a 4×3 block spills).
    @inline(__always)
    static func block3x3(_ x: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafePointer<Float>, _ ldw: Int, _ k: Int,
                         _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
        let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx
        let w0 = w, w1 = w + ldw, w2 = w + 2 * ldw
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
        var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>()
        var i = 0
        let end = k & ~7
        while i < end {
            let b0 = load8(w0 + i), b1 = load8(w1 + i), b2 = load8(w2 + i)
            var v = load8(x0 + i)
            a00 = madd(a00, v, b0); a01 = madd(a01, v, b1); a02 = madd(a02, v, b2)
            v = load8(x1 + i)
            a10 = madd(a10, v, b0); a11 = madd(a11, v, b1); a12 = madd(a12, v, b2)
            v = load8(x2 + i)
            a20 = madd(a20, v, b0); a21 = madd(a21, v, b1); a22 = madd(a22, v, b2)
            i &+= 8
        }
        y[0] = a00.sum(); y[1] = a01.sum(); y[2] = a02.sum()
        y[ldy] = a10.sum(); y[ldy + 1] = a11.sum(); y[ldy + 2] = a12.sum()
        y[2 * ldy] = a20.sum(); y[2 * ldy + 1] = a21.sum(); y[2 * ldy + 2] = a22.sum()
        if i < k {
            for j in 0..<3 {
                for c in 0..<3 {
                    let xr = x + j * ldx, wr = w + c * ldw
                    var t = y[j * ldy + c]
                    for m in i..<k { t += xr[m] * wr[m] }
                    y[j * ldy + c] = t
                }
            }
        }
    }
}
