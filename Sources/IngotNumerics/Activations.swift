/// Element-wise pieces of the forward pass, eight lanes at a time: exp, softmax, SiLU, RMS norm.
public enum Activations {
    /// e^x for x in [-87, 88] (inputs are clamped to it), by 2^n · p(b) with n = round(x / ln 2) and a degree-5
    /// polynomial on the remainder (the scheme of ggml's `ggml_v_expf`); relative error about 1e-7.
    @inline(__always)
    public static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87), hi = SIMD8<Float>(repeating: 88)
        let x = v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi)
        let r = SIMD8<Float>(repeating: 0x1.8p23)
        let z = x * 0x1.715476p+0 + r
        let n = z - r
        let b = x - n * 0x1.62e4p-1 - n * 0x1.7f7d1cp-20
        let e = unsafeBitCast(z, to: SIMD8<UInt32>.self) &<< 23
        let k = unsafeBitCast(e &+ 0x3F80_0000, to: SIMD8<Float>.self)
        let u = b * b
        let j = ((0x1.0e4020p-7 * b + 0x1.573e2ep-5) * u + (0x1.555e66p-3 * b + 0x1.fffdb6p-2)) * u + 0x1.ffffecp-1 * b
        return j * k + k
    }

    /// Softmax of `x[0..<n]` in place after scaling by `scale`.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int, scale: Float) {
        var m = -Float.infinity
        var i = 0
        var mv8 = SIMD8<Float>(repeating: -.infinity)
        while i + 8 <= n {
            let v = load(x + i) * scale
            store(v, x + i)
            mv8 = mv8.replacing(with: v, where: v .> mv8)
            i += 8
        }
        for j in 0..<8 { m = max(m, mv8[j]) }
        while i < n { x[i] *= scale; m = max(m, x[i]); i += 1 }
        var sum: Float = 0
        i = 0
        var acc = SIMD8<Float>()
        let mv = SIMD8<Float>(repeating: m)
        while i + 8 <= n {
            let e = exp(load(x + i) - mv)
            store(e, x + i)
            acc += e
            i += 8
        }
        if i < n {
            var tail = SIMD8<Float>(repeating: -Float.infinity)
            for j in i..<n { tail[j - i] = x[j] }
            let e = exp(tail - mv)
            for j in i..<n { x[j] = e[j - i]; sum += e[j - i] }
        }
        sum += acc.sum()
        let inv = 1 / sum
        for j in 0..<n { x[j] *= inv }
    }

    /// x ← silu(x) · y = x / (1 + e^-x) · y.
    public static func siluMul(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            let v = load(x + i)
            store(v / (1 + exp(-v)) * load(UnsafeMutablePointer(mutating: y) + i), x + i)
            i += 8
        }
        while i < n {
            var v = SIMD8<Float>(repeating: 0)
            v[0] = x[i]
            let s = v / (1 + exp(-v))
            x[i] = s[0] * y[i]
            i += 1
        }
    }

    /// out = x / sqrt(mean(x²) + eps) · weight.
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ n: Int, eps: Float,
                               into out: UnsafeMutablePointer<Float>) {
        var s: Double = 0
        for i in 0..<n { s += Double(x[i]) * Double(x[i]) }
        let scale = 1 / Float((s / Double(n) + Double(eps)).squareRoot())
        for i in 0..<n { out[i] = x[i] * scale * weight[i] }
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
}
