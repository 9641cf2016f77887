#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import IngotFormats
import IngotNumerics

// The parts a decoder block is made of. `DecoderModel` composes them as an architecture's `BlockShape` says; each
// part owns its weights and reads and writes rows of floats (one row per token of the window), with its scratch in
// the run's `RunState`.

/// What every part of one step of a forward pass needs: the window's size, the threads and kernels, the run's buffers,
/// and the model's settings.
public struct ForwardContext {
    /// Tokens in the window (rows of every activation).
    public let tokens: Int
    public let workspace: MatMulWorkspace
    public let kernels: KernelChoice
    public let state: RunState
    /// Sees the input of every linear layer; nil costs nothing.
    public let observer: LinearObserver?
    /// How activations are rounded before each product (`ActivationRounding`).
    public let activations: ActivationRounding
    /// Round K and V to half precision as llama.cpp's F16 cache holds them.
    public let halfPrecisionCache: Bool
}

/// A linear layer `y = x·Wᵀ (+ b)` named by its GGUF tensor (`blk.3.attn_q.weight`): the name under which observers
/// see its input and `DecoderModel.replaceWeight` swaps its weight.
public final class Linear {
    public let name: String
    /// Which matrix of a stacked tensor this is (an expert of `blk.3.ffn_up_exps.weight`, a head of
    /// `blk.3.attn_k_b.weight`); nil for every other layer.
    public let matrix: MatrixIndex?
    public private(set) var weight: StoredMatrix
    public let bias: [Float]?
    /// F32 values, or bytes of a stored type, put in place of the stored weight, owned here.
    private var replacement: [Float]?
    private var replacementBytes: [UInt8]?
    /// The stored weight while a replacement stands in for it.
    private var stored: StoredMatrix?

    init(name: String, matrix: MatrixIndex? = nil, weight: StoredMatrix, bias: [Float]? = nil) {
        self.name = name
        self.matrix = matrix
        self.weight = weight
        self.bias = bias
    }

    public var rows: Int { weight.rows }
    public var columns: Int { weight.cols }
    /// The weight as stored, also while a replacement stands in for it.
    var storedWeight: StoredMatrix { stored ?? weight }

    /// y (rows × `self.rows`) = x (rows × columns) · Wᵀ (+ b).
    func apply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        c.observer?.observe(name, matrix: matrix, input: UnsafeBufferPointer(start: x, count: n * columns), rows: n, columns: columns)
        QuantizedMatMul.multiply(weight, x, tokens: n, y, ldy: rows, workspace: c.workspace, activations: c.activations,
                                 kernels: c.kernels)
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for t in 0..<n { for i in 0..<b.count { y[t * b.count + i] += b[i] } }
            }
        }
    }

    /// Puts F32 `values` (rows × columns) in place of the weight.
    func replace(with values: [Float], path: String) throws {
        let (r, c) = (weight.rows, weight.cols)
        guard values.count == r * c else {
            throw ModelError(.shapeMismatch, field: name, "\(values.count) values for a \(r) x \(c) weight", path: path)
        }
        replacement = values
        let data = replacement!.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
        guard let m = StoredMatrix(type: .f32, rows: r, cols: c, data: data) else {
            throw ModelError(.shapeMismatch, field: name, "cannot hold a \(r) x \(c) F32 matrix", path: path)
        }
        if stored == nil { stored = weight }
        weight = m
    }

    /// Puts `bytes` of `type` (rows × columns values in its blocks) in place of the weight: the products then run as
    /// on a file that stores it so, with the activations rounded for that type.
    func replace(type: GGMLType, bytes: [UInt8], path: String) throws {
        let (r, c) = (weight.rows, weight.cols)
        guard c % type.blockSize == 0, bytes.count == r * (c / type.blockSize) * type.bytesPerBlock else {
            throw ModelError(.shapeMismatch, field: name, "\(bytes.count) bytes of \(type.name) for a \(r) x \(c) weight", path: path)
        }
        replacementBytes = bytes
        let data = replacementBytes!.withUnsafeBytes { UnsafeRawPointer($0.baseAddress!) }
        guard let m = StoredMatrix(type: type, rows: r, cols: c, data: data) else {
            throw ModelError(.shapeMismatch, field: name, "cannot hold a \(r) x \(c) \(type.name) matrix", path: path)
        }
        if stored == nil { stored = weight }
        replacement = nil
        weight = m
    }

    /// Puts the stored weight back and frees the replacement.
    func restore() {
        guard let s = stored else { return }
        weight = s
        stored = nil
        replacement = nil
        replacementBytes = nil
    }
}

/// RMS norm over rows of `weight.count` values: y = x / √(mean(x²) + ε) · weight.
public struct RMSNorm {
    public internal(set) var weight: [Float]
    public let eps: Float

    /// Normalizes in place the first `weight.count` values of `rows` rows that lie `rowStride` apart.
    func apply(_ x: UnsafeMutablePointer<Float>, rowStride: Int, rows: Int) {
        let d = weight.count
        weight.withUnsafeBufferPointer { w in
            for r in 0..<rows { Activations.rmsNorm(x + r * rowStride, w.baseAddress!, d, eps: eps, into: x + r * rowStride) }
        }
    }

    /// Normalizes `rows` rows of x into y (x and y may be the same memory).
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let d = weight.count
        weight.withUnsafeBufferPointer { w in
            for r in 0..<rows { Activations.rmsNorm(x + r * d, w.baseAddress!, d, eps: eps, into: y + r * d) }
        }
    }
}

/// Rotary position embedding over the first `dims` values of each head of `headDim` (positions 0..<n of the window),
/// pairing dimensions as `style` says, with per-frequency divisors (`rope_freqs`, Llama 3.1) where the model has them.
public final class Rotary {
    public let style: RopeStyle
    public let dims: Int
    public let headDim: Int
    public let base: Float
    public let factors: [Float]?
    public let yarn: YaRN?

    /// YaRN context extension as ggml's `rope_yarn` applies it (extrapolation factor 1): the angle of pair i is
    /// blended from the interpolated angle (`freqScale` · θ) and the original one by a ramp that is 1 below the
    /// correction dim `low` and 0 above `high`, and cos and sin are multiplied by `mscale`.
    public struct YaRN: Sendable {
        public let freqScale: Float
        public let low: Float, high: Float
        public let mscale: Float

        /// ggml_rope_yarn_corr_dims: the pair indices where the wavelength passes `originalContext` / β (β = 32
        /// and 1, llama.cpp's defaults).
        public init(factor: Float, originalContext: Int, dims: Int, base: Float, mscale: Float,
                    betaFast: Float = 32, betaSlow: Float = 1) {
            func corr(_ beta: Float) -> Float {
                Float(dims) * logf(Float(originalContext) / (beta * 2 * Float.pi)) / (2 * logf(base))
            }
            freqScale = 1 / factor
            low = max(0, floorf(corr(betaFast)))
            high = min(Float(dims - 1), ceilf(corr(betaSlow)))
            self.mscale = mscale
        }
    }

    init(style: RopeStyle, dims: Int, headDim: Int, base: Float, factors: [Float]?, yarn: YaRN? = nil) {
        (self.style, self.dims, self.headDim, self.base, self.factors, self.yarn) = (style, dims, headDim, base, factors, yarn)
    }

    /// cos/sin of position · θ_i for i < dims/2, with θ_i = base^(-2i/dims) built by repeated multiplication in Float
    /// as ggml's rope cache does (divided by the factors where the model has them, blended by YaRN where it has it).
    func tables(_ n: Int) -> (cos: [Float], sin: [Float]) {
        let half = dims / 2
        var c = [Float](repeating: 1, count: n * half), s = [Float](repeating: 0, count: n * half)
        let thetaScale = powf(base, -2 / Float(dims))
        for p in 0..<n {
            var theta = Float(p)
            for i in 0..<half {
                var t = theta / (factors?[i] ?? 1), m: Float = 1
                if let y = yarn {
                    let ramp = 1 - min(1, max(0, (Float(i) - y.low) / max(0.001, y.high - y.low)))
                    t = y.freqScale * t * (1 - ramp) + t * ramp
                    m = y.mscale
                }
                c[p * half + i] = cosf(t) * m
                s[p * half + i] = sinf(t) * m
                theta *= thetaScale
            }
        }
        return (c, s)
    }

    /// Rotates `heads` heads of each of the window's rows of y in place.
    func apply(_ y: UnsafeMutablePointer<Float>, heads: Int, _ c: ForwardContext) {
        let (cosT, sinT) = c.state.ropeTables(self, tokens: c.tokens)
        let half = dims / 2, d = headDim, adjacent = style == .adjacentPairs
        cosT.withUnsafeBufferPointer { cp in sinT.withUnsafeBufferPointer { sp in
            for t in 0..<c.tokens {
                for h in 0..<heads {
                    let row = y + (t * heads + h) * d
                    for i in 0..<half {
                        let (a, b) = adjacent ? (2 * i, 2 * i + 1) : (i, i + half)
                        let x0 = row[a], x1 = row[b], cc = cp[t * half + i], ss = sp[t * half + i]
                        row[a] = x0 * cc - x1 * ss
                        row[b] = x0 * ss + x1 * cc
                    }
                }
            }
        } }
    }
}

/// One residual branch of a block: reads the normalized hidden states (tokens × hidden) and writes what is added back
/// to them. Attention and feed-forward variants are sublayers; a block is a list of (norm, sublayer) pairs.
public protocol Sublayer: AnyObject {
    /// Its linear layers, in the order a forward pass runs them.
    var linears: [Linear] { get }
    func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext)
}

/// Grouped-query attention: q, k, v projections (biases where the model has them), optional RMS norms over each q and
/// k head (Qwen3), RoPE, causal softmax attention where query head j reads KV head j / (heads / kvHeads), and the
/// output projection.
///
///     q, k, v = x·Wqᵀ (+bq), x·Wkᵀ (+bk), x·Wvᵀ (+bv)          n×hd, n×gd, n×gd
///     q, k = rmsnorm per head · q_norm, k_norm                 (head norms)
///     rotate q, k by position
///     k, v rounded to half precision                           as llama.cpp's default F16 KV cache holds them
///     a_head = softmax(q_head·k_groupᵀ / √d, causal) · v_group
///     out = a·Woᵀ
public final class GroupedQueryAttention: Sublayer {
    let q: Linear, k: Linear, v: Linear, o: Linear
    let qNorm: RMSNorm?, kNorm: RMSNorm?
    let rotary: Rotary
    public let heads: Int, kvHeads: Int, headDim: Int

    /// Queries per attention block: each block scores only the keys it can see, in a 32 × n buffer per worker.
    static let queryBlock = 32

    init(block i: Int, weights w: WeightReader, hidden: Int, heads: Int, kvHeads: Int, headDim: Int, headNorms: Bool,
         rotary: Rotary) throws {
        let p = "blk.\(i)."
        let qd = heads * headDim, kvd = kvHeads * headDim
        q = try w.linear(p + "attn_q", rows: qd, cols: hidden, bias: true)
        k = try w.linear(p + "attn_k", rows: kvd, cols: hidden, bias: true)
        v = try w.linear(p + "attn_v", rows: kvd, cols: hidden, bias: true)
        o = try w.linear(p + "attn_output", rows: hidden, cols: qd)
        qNorm = headNorms ? try w.norm(p + "attn_q_norm.weight", headDim) : nil
        kNorm = headNorms ? try w.norm(p + "attn_k_norm.weight", headDim) : nil
        self.rotary = rotary
        (self.heads, self.kvHeads, self.headDim) = (heads, kvHeads, headDim)
    }

    public var linears: [Linear] { [q, k, v, o] }

    public func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, qd = heads * headDim, kvd = kvHeads * headDim
        let qb = c.state.floats("attn.q", n * qd), kb = c.state.floats("attn.k", n * kvd)
        let vb = c.state.floats("attn.v", n * kvd), vt = c.state.floats("attn.vt", n * kvd)
        let att = c.state.floats("attn.out", n * qd)
        q.apply(x, rows: n, into: qb, c)
        k.apply(x, rows: n, into: kb, c)
        v.apply(x, rows: n, into: vb, c)
        qNorm?.apply(qb, rows: n * heads, into: qb)
        kNorm?.apply(kb, rows: n * kvHeads, into: kb)
        rotary.apply(qb, heads: heads, c)
        rotary.apply(kb, heads: kvHeads, c)
        if c.halfPrecisionCache {
            ActivationRounding.roundTrip(kb, count: n * kvd, cols: kvd, through: .f16)
            ActivationRounding.roundTrip(vb, count: n * kvd, cols: kvd, through: .f16)
        }
        for t in 0..<n { for j in 0..<kvd { vt[j * n + t] = vb[t * kvd + j] } }
        causalAttention(q: qb, k: kb, vt: vt, into: att, heads: heads, kvHeads: kvHeads, keyDim: headDim, valueDim: headDim,
                        scale: 1 / Float(headDim).squareRoot(), c)
        o.apply(att, rows: n, into: out, c)
    }
}

/// Causal softmax attention over a window, one head per job, queries in blocks of `queryBlock` scoring only the keys
/// they can see: q is n × heads × keyDim, k n × kvHeads × keyDim, vt (kvHeads · valueDim) × n (values transposed),
/// out n × heads × valueDim; query head h reads KV head h / (heads / kvHeads).
///
///     out_h = softmax(scale · q_h·k_gᵀ, causal) · v_g
func causalAttention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, vt: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                     heads: Int, kvHeads: Int, keyDim: Int, valueDim: Int, scale: Float, _ c: ForwardContext) {
    let n = c.tokens, qd = heads * keyDim, kd = kvHeads * keyDim, od = heads * valueDim, group = heads / kvHeads
    let kernels = c.kernels, block = GroupedQueryAttention.queryBlock
    let scores = c.state.scoreBuffers(c.workspace.threads)
    let qs = UnsafeSendable(q), ks = UnsafeSendable(k), vs = UnsafeSendable(vt), os = UnsafeSendable(UnsafePointer(out))
    try? parallelFor(0..<heads, threads: c.workspace.threads) { h, worker in
        let s = scores[worker].get(block * n * 4).baseAddress!.assumingMemoryBound(to: Float.self)
        let kvh = h / group
        let o = UnsafeMutablePointer(mutating: os.pointer)
        var t0 = 0
        while t0 < n {
            let tb = min(block, n - t0), keys = t0 + tb
            MatMul.gemm(qs.pointer + t0 * qd + h * keyDim, ldx: qd, ks.pointer + kvh * keyDim, ldw: kd, k: keyDim,
                        tokens: tb, rows: keys, s, ldy: n, kernels: kernels)
            for t in t0..<(t0 + tb) {
                let row = s + (t - t0) * n
                Activations.softmax(row, t + 1, scale: scale)
                for j in (t + 1)..<max(t + 1, keys) { row[j] = 0 }
            }
            MatMul.gemm(s, ldx: n, vs.pointer + kvh * valueDim * n, ldw: n, k: keys,
                        tokens: tb, rows: valueDim, o + t0 * od + h * valueDim, ldy: od, kernels: kernels)
            t0 += tb
        }
    }
}

/// Multi-head latent attention (DeepSeek-V2/V3) as llama.cpp's `deepseek2` graph runs it, the kv up-projection
/// absorbed into the query and the output (llama.cpp stores it split per head as `attn_k_b` and `attn_v_b`):
///
///     q = q_b(rmsnorm(q_a(x)) · q_a_norm)  (or q(x))            n × heads × (nope + rope)
///     [c, k_pe] = kv_a_mqa(x);  c = rmsnorm(c) · kv_a_norm      c: n × kvLora, k_pe: n × rope (one head)
///     q_pe, k_pe rotated (adjacent pairs, YaRN where the model has it)
///     Q_h = [k_b_h · q_nope_h, q_pe_h];  K = [c, k_pe];  V = c   one latent KV head, F16 as llama.cpp's cache
///     a_h = softmax(scale · Q_h·Kᵀ, causal) · V                 n × kvLora per head
///     out = o([v_b_h · a_h for each head])
public final class LatentAttention: Sublayer {
    let qA: Linear?, qANorm: RMSNorm?, qB: Linear?
    /// The full-rank query of models without a low-rank one (DeepSeek-V2-Lite).
    let q: Linear?
    let kvA: Linear
    let kvANorm: RMSNorm
    /// Per head: kvLora × nope and vDim × kvLora.
    public let kB: [Linear], vB: [Linear]
    let o: Linear
    let rotary: Rotary
    public let heads: Int, nope: Int, rope: Int, kvLora: Int, vDim: Int
    /// Softmax scale: mscale² / √(nope + rope) (mscale from YaRN's `yarn_log_multiplier`, 1 without).
    let scale: Float

    init(block i: Int, weights w: WeightReader, hidden: Int, heads: Int, nope: Int, rope: Int, kvLora: Int, vDim: Int,
         qLora: Int?, rotary: Rotary, scale: Float) throws {
        let p = "blk.\(i)."
        let qd = heads * (nope + rope)
        if let r = qLora {
            qA = try w.linear(p + "attn_q_a", rows: r, cols: hidden)
            qANorm = try w.norm(p + "attn_q_a_norm.weight", r)
            qB = try w.linear(p + "attn_q_b", rows: qd, cols: r)
            q = nil
        } else {
            (qA, qANorm, qB) = (nil, nil, nil)
            q = try w.linear(p + "attn_q", rows: qd, cols: hidden)
        }
        kvA = try w.linear(p + "attn_kv_a_mqa", rows: kvLora + rope, cols: hidden)
        kvANorm = try w.norm(p + "attn_kv_a_norm.weight", kvLora)
        kB = try w.stack(p + "attn_k_b", count: heads, rows: kvLora, cols: nope, routed: false)
        vB = try w.stack(p + "attn_v_b", count: heads, rows: vDim, cols: kvLora, routed: false)
        o = try w.linear(p + "attn_output", rows: hidden, cols: heads * vDim)
        (self.rotary, self.scale) = (rotary, scale)
        (self.heads, self.nope, self.rope, self.kvLora, self.vDim) = (heads, nope, rope, kvLora, vDim)
    }

    public var linears: [Linear] { [qA, qB, q].compactMap { $0 } + [kvA] + kB + vB + [o] }

    public func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, dq = nope + rope, dk = kvLora + rope
        let qFull = c.state.floats("mla.q", n * heads * dq)
        if let qA, let qANorm, let qB {
            let t = c.state.floats("mla.qa", n * qA.rows)
            qA.apply(x, rows: n, into: t, c)
            qANorm.apply(t, rows: n, into: t)
            qB.apply(t, rows: n, into: qFull, c)
        } else {
            q!.apply(x, rows: n, into: qFull, c)
        }
        let kvpe = c.state.floats("mla.kvpe", n * dk)
        kvA.apply(x, rows: n, into: kvpe, c)
        // K = [normalized latent, rotated k_pe] per token; V is the latent (its transpose for the product).
        let keys = c.state.floats("mla.k", n * dk), kpe = c.state.floats("mla.kpe", n * rope)
        for t in 0..<n {
            (keys + t * dk).update(from: kvpe + t * dk, count: kvLora)
            (kpe + t * rope).update(from: kvpe + t * dk + kvLora, count: rope)
        }
        kvANorm.apply(keys, rowStride: dk, rows: n)
        rotary.apply(kpe, heads: 1, c)
        for t in 0..<n { (keys + t * dk + kvLora).update(from: kpe + t * rope, count: rope) }
        if c.halfPrecisionCache { ActivationRounding.roundTrip(keys, count: n * dk, cols: dk, through: .f16) }
        let vt = c.state.floats("mla.vt", kvLora * n)
        for t in 0..<n { for j in 0..<kvLora { vt[j * n + t] = keys[t * dk + j] } }
        // Q_h = [k_b_h · q_nope_h, rotated q_pe_h].
        let queries = c.state.floats("mla.Q", n * heads * dk), qpe = c.state.floats("mla.qpe", n * heads * rope)
        let qn = c.state.floats("mla.qnope", n * nope), qa = c.state.floats("mla.qabs", n * kvLora)
        for t in 0..<n { for h in 0..<heads { (qpe + (t * heads + h) * rope).update(from: qFull + (t * heads + h) * dq + nope, count: rope) } }
        rotary.apply(qpe, heads: heads, c)
        for h in 0..<heads {
            for t in 0..<n { (qn + t * nope).update(from: qFull + (t * heads + h) * dq, count: nope) }
            kB[h].apply(qn, rows: n, into: qa, c)
            for t in 0..<n {
                let row = queries + (t * heads + h) * dk
                row.update(from: qa + t * kvLora, count: kvLora)
                (row + kvLora).update(from: qpe + (t * heads + h) * rope, count: rope)
            }
        }
        let latent = c.state.floats("mla.att", n * heads * kvLora)
        causalAttention(q: queries, k: keys, vt: vt, into: latent, heads: heads, kvHeads: 1, keyDim: dk, valueDim: kvLora,
                        scale: scale, c)
        // Each head's latent output through its v_b, into the heads · vDim input of the output projection.
        let ah = c.state.floats("mla.ah", n * kvLora), vh = c.state.floats("mla.vh", n * vDim)
        let att = c.state.floats("mla.out", n * heads * vDim)
        for h in 0..<heads {
            for t in 0..<n { (ah + t * kvLora).update(from: latent + (t * heads + h) * kvLora, count: kvLora) }
            vB[h].apply(ah, rows: n, into: vh, c)
            for t in 0..<n { (att + (t * heads + h) * vDim).update(from: vh + t * vDim, count: vDim) }
        }
        o.apply(att, rows: n, into: out, c)
    }
}

/// The SwiGLU feed-forward branch: (silu(x·Wgateᵀ) ⊙ x·Wupᵀ)·Wdownᵀ.
public final class GatedMLP: Sublayer {
    let gate: Linear, up: Linear, down: Linear

    /// `blk.i.ffn_{gate,up,down}` + `suffix` (`_shexp` for a shared expert); `ffn` nil takes the gate's rows.
    init(block i: Int, weights w: WeightReader, hidden: Int, ffn: Int?, suffix: String = "") throws {
        let p = "blk.\(i)."
        gate = try w.linear(p + "ffn_gate" + suffix, rows: ffn, cols: hidden)
        let width = gate.rows
        up = try w.linear(p + "ffn_up" + suffix, rows: width, cols: hidden)
        down = try w.linear(p + "ffn_down" + suffix, rows: hidden, cols: width)
    }

    public var linears: [Linear] { [gate, up, down] }

    public func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, f = gate.rows
        let g = c.state.floats("mlp.gate", n * f), u = c.state.floats("mlp.up", n * f)
        gate.apply(x, rows: n, into: g, c)
        up.apply(x, rows: n, into: u, c)
        Activations.siluMul(g, u, n * f)
        down.apply(g, rows: n, into: out, c)
    }
}

/// A mixture of experts in place of the feed-forward branch (llama.cpp's `build_moe_ffn`), for Mixtral, Qwen-MoE
/// and the expert blocks of DeepSeek:
///
///     logits = x·Wrouterᵀ                                       n×E, F32 router
///     p = softmax(logits) | sigmoid(logits)                     per token
///     chosen = the `used` largest p                             (ties: the lower expert index)
///     w = p[chosen] (/ Σ p[chosen] when normalized) · scale
///     out_t = Σ_slots w_s · down_e(silu(gate_e(x_t)) ⊙ up_e(x_t))   summed in slot order, as llama.cpp adds its views
///     (+ sigmoid(x_t · g_shared) · shared(x_t) with a gated shared expert)
///
/// Each expert runs once over the rows of the tokens routed to it, with the same products as a dense layer; an
/// expert no token chose costs nothing.
public final class MixtureOfExperts: Sublayer {
    /// How tokens are sent to experts, the architecture's rules with the model's values filled in.
    public struct Routing: Sendable {
        public var gating: BlockShape.Experts.Gating
        /// Divide the chosen weights by their sum.
        public var normalizeWeights: Bool
        /// llama.cpp's `expert_weights_scale` (1 where the model has none).
        public var weightScale: Float
        /// Group-limited routing (DeepSeek-V3): experts in `groups` equal groups, a token choosing among the
        /// `groupsUsed` groups whose two best experts score highest; 1 group: no limit.
        public var groups: Int
        public var groupsUsed: Int
    }

    public let router: Linear
    /// Added to the probabilities to choose experts, not to weight them (DeepSeek-V3's `exp_probs_b`).
    let selectionBias: [Float]?
    /// One set of projections per expert, all `width` wide.
    public let gate: [Linear], up: [Linear], down: [Linear]
    public let shared: GatedMLP?
    /// The shared expert's gate (`ffn_gate_inp_shexp`, one row of hidden values; a vector in GGUF).
    public let sharedGate: Linear?
    public let used: Int
    public let routing: Routing
    /// The block this branch belongs to, as routing observers name it.
    public let block: Int

    public var experts: Int { gate.count }
    public var width: Int { gate.first?.rows ?? 0 }

    init(block i: Int, weights w: WeightReader, hidden: Int, experts: Int, used: Int, shared kind: BlockShape.Experts.Shared,
         routing: Routing) throws {
        let p = "blk.\(i)."
        router = try w.linear(p + "ffn_gate_inp", rows: experts, cols: hidden)
        selectionBias = try w.vector(p + "exp_probs_b.bias", experts, required: false)
        gate = try w.stack(p + "ffn_gate_exps", count: experts, rows: nil, cols: hidden, routed: true)
        let width = gate[0].rows
        up = try w.stack(p + "ffn_up_exps", count: experts, rows: width, cols: hidden, routed: true)
        down = try w.stack(p + "ffn_down_exps", count: experts, rows: hidden, cols: width, routed: true)
        switch kind {
        case .none:
            (shared, sharedGate) = (nil, nil)
        case .sigmoidGated:
            shared = try GatedMLP(block: i, weights: w, hidden: hidden, ffn: nil, suffix: "_shexp")
            sharedGate = try w.linear(p + "ffn_gate_inp_shexp", rows: 1, cols: hidden)
        case .plain:
            shared = try GatedMLP(block: i, weights: w, hidden: hidden, ffn: nil, suffix: "_shexp")
            sharedGate = nil
        }
        guard routing.groups >= 1, experts % routing.groups == 0, routing.groupsUsed >= 1, routing.groupsUsed <= routing.groups,
              routing.groups == 1 || (experts / routing.groups >= 2 && used <= routing.groupsUsed * (experts / routing.groups)) else {
            throw ModelError(.invalidValue, field: "expert_group_count",
                             "\(experts) experts cannot be routed in \(routing.groups) groups, \(routing.groupsUsed) used, \(used) experts per token",
                             path: w.path)
        }
        (self.used, self.routing, block) = (used, routing, i)
    }

    public var linears: [Linear] {
        [router] + (0..<experts).flatMap { [gate[$0], up[$0], down[$0]] } + (shared?.linears ?? []) + (sharedGate.map { [$0] } ?? [])
    }

    /// The experts a token goes to and their weights, from its router logits (`experts` values, overwritten by the
    /// probabilities); `select` is scratch of `experts` values.
    func route(_ logits: UnsafeMutablePointer<Float>, select: UnsafeMutablePointer<Float>, chosen: UnsafeMutablePointer<Int32>,
               weights: UnsafeMutablePointer<Float>) {
        let e = experts
        switch routing.gating {
        case .softmax: Activations.softmax(logits, e, scale: 1)
        case .sigmoid: for j in 0..<e { logits[j] = 1 / (1 + expf(-logits[j])) }
        }
        for j in 0..<e { select[j] = logits[j] + (selectionBias?[j] ?? 0) }
        if routing.groups > 1 {
            // Each group scores the sum of its two best experts; all but the best `groupsUsed` groups are masked.
            let size = e / routing.groups
            var scores: [(score: Float, group: Int)] = []
            for g in 0..<routing.groups {
                var a = -Float.infinity, b = -Float.infinity
                for j in (g * size)..<((g + 1) * size) {
                    let v = select[j]
                    if v > a { (a, b) = (v, a) } else if v > b { b = v }
                }
                scores.append((a + b, g))
            }
            let kept = Set(scores.sorted { $0.score > $1.score || ($0.score == $1.score && $0.group < $1.group) }
                .prefix(routing.groupsUsed).map(\.group))
            for g in 0..<routing.groups where !kept.contains(g) {
                for j in (g * size)..<((g + 1) * size) { select[j] = -.infinity }
            }
        }
        var sum: Float = 0
        for s in 0..<used {
            var best = -1
            for j in 0..<e where best < 0 || select[j] > select[best] {
                if (0..<s).contains(where: { chosen[$0] == Int32(j) }) { continue }
                best = j
            }
            chosen[s] = Int32(best)
            weights[s] = logits[best]
            sum += weights[s]
        }
        if routing.normalizeWeights {
            // llama.cpp clamps the sum to the smallest normal half before dividing.
            let d = max(sum, 6.103515625e-5)
            for s in 0..<used { weights[s] /= d }
        }
        let scale = routing.weightScale
        if scale != 0 && scale != 1 { for s in 0..<used { weights[s] *= scale } }
    }

    public func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, k = used, h = router.columns, f = width, e = experts
        let logits = c.state.floats("moe.logits", n * e)
        let weights = c.state.floats("moe.weights", n * k)
        let chosen = UnsafeMutableRawPointer(c.state.floats("moe.chosen", n * k)).bindMemory(to: Int32.self, capacity: n * k)
        router.apply(x, rows: n, into: logits, c)
        let select = c.state.floats("moe.select", e)
        for t in 0..<n { route(logits + t * e, select: select, chosen: chosen + t * k, weights: weights + t * k) }
        // Slots (token t, rank j) = t·k + j grouped by expert, in token order.
        var slots = [[Int]](repeating: [], count: e)
        for s in 0..<(n * k) { slots[Int(chosen[s])].append(s) }
        let xs = c.state.floats("moe.x", n * h), g = c.state.floats("moe.gate", n * f)
        let u = c.state.floats("moe.up", n * f), ys = c.state.floats("moe.down", n * h)
        let y = c.state.floats("moe.slots", n * k * h)
        for x0 in 0..<e where !slots[x0].isEmpty {
            let rows = slots[x0]
            for (r, s) in rows.enumerated() { (xs + r * h).update(from: x + (s / k) * h, count: h) }
            gate[x0].apply(xs, rows: rows.count, into: g, c)
            up[x0].apply(xs, rows: rows.count, into: u, c)
            Activations.siluMul(g, u, rows.count * f)
            down[x0].apply(g, rows: rows.count, into: ys, c)
            if let seen = c.observer as? RoutingObserver {
                let w = rows.map { weights[$0] }
                let norms = (0..<rows.count).map { r in
                    (0..<h).reduce(Float(0)) { $0 + ys[r * h + $1] * ys[r * h + $1] }.squareRoot()
                }
                w.withUnsafeBufferPointer { wp in norms.withUnsafeBufferPointer { np in
                    seen.routed(block: block, expert: x0, of: e, weights: wp, outputNorms: np)
                } }
            }
            for (r, s) in rows.enumerated() {
                let ws = weights[s], src = ys + r * h, dst = y + s * h
                for j in 0..<h { dst[j] = src[j] * ws }
            }
        }
        if let seen = c.observer as? RoutingObserver {
            let stride = seen.outputSampleStride(experts: e, used: k)
            if stride > 0 { sampleOutputs(x, every: stride, seen, c) }
        }
        for t in 0..<n {
            let o = out + t * h
            o.update(from: y + t * k * h, count: h)
            for j in 1..<max(1, k) {
                let src = y + (t * k + j) * h
                for i in 0..<h { o[i] += src[i] }
            }
        }
        if let shared {
            let sh = c.state.floats("moe.shared", n * h)
            shared.run(x, into: sh, c)
            if let sharedGate {
                let sg = c.state.floats("moe.sharedGate", n)
                sharedGate.apply(x, rows: n, into: sg, c)
                for t in 0..<n {
                    let s = 1 / (1 + expf(-sg[t]))
                    for i in 0..<h { sh[t * h + i] *= s }
                }
            }
            for i in 0..<(n * h) { out[i] += sh[i] }
        }
    }
}

extension MixtureOfExperts {
    /// Runs every expert on tokens 0, stride, 2·stride, ... of the window and hands each expert's outputs to `seen`
    /// (what merging compares experts by). Linear observers are not told: the importance matrix sees routed tokens only.
    /// Cost: at most the routed work when stride ≥ experts / used.
    func sampleOutputs(_ x: UnsafePointer<Float>, every stride: Int, _ seen: RoutingObserver, _ c: ForwardContext) {
        let h = router.columns, f = width, rows = Swift.stride(from: 0, to: c.tokens, by: stride).map { $0 }
        let m = rows.count
        let quiet = ForwardContext(tokens: m, workspace: c.workspace, kernels: c.kernels, state: c.state, observer: nil,
                                   activations: c.activations, halfPrecisionCache: c.halfPrecisionCache)
        let xs = c.state.floats("moe.x", m * h), g = c.state.floats("moe.gate", m * f)
        let u = c.state.floats("moe.up", m * f), ys = c.state.floats("moe.down", m * h)
        for (r, t) in rows.enumerated() { (xs + r * h).update(from: x + t * h, count: h) }
        for x0 in 0..<experts {
            gate[x0].apply(xs, rows: m, into: g, quiet)
            up[x0].apply(xs, rows: m, into: u, quiet)
            Activations.siluMul(g, u, m * f)
            down[x0].apply(g, rows: m, into: ys, quiet)
            seen.sampled(block: block, expert: x0, of: experts, outputs: UnsafeBufferPointer(start: ys, count: m * h), rows: m)
        }
    }
}

/// One block: pre-norm residual branches run in order, `x += sublayer(rmsnorm(x) · norm)`.
public struct Block {
    public internal(set) var branches: [(norm: RMSNorm, sublayer: any Sublayer)]

    /// Runs the block over the window's hidden states `x` (tokens × hidden), in place.
    func run(_ x: UnsafeMutablePointer<Float>, hidden: Int, _ c: ForwardContext) {
        let count = c.tokens * hidden
        let xn = c.state.floats("block.norm", count), y = c.state.floats("block.out", count)
        for (norm, sublayer) in branches {
            norm.apply(x, rows: c.tokens, into: xn)
            sublayer.run(xn, into: y, c)
            for j in 0..<count { x[j] += y[j] }
        }
    }
}

/// Reads an architecture's weights by GGUF name from a file or folder, checking each shape, for the parts' loaders.
struct WeightReader {
    /// A tensor as found: GGML type, dims fastest-first, data, and where its entry is in the file.
    struct Found {
        var name: String, type: GGMLType, dims: [Int], data: UnsafeRawPointer, entryOffset: Int?
    }

    let path: String
    let eps: Float
    private let lookup: (String) -> Found?
    /// Expert `x` of a stacked expert tensor, where the source keeps one tensor per expert (Hugging Face folders).
    var findExpert: (String, Int) -> Found? = { _, _ in nil }
    /// Every tensor the model was built from (shared by the reader's copies).
    let log = WeightLog()

    init(path: String, eps: Float, find: @escaping (String) -> Found?) {
        self.path = path
        self.eps = eps
        self.lookup = find
    }

    /// The tensor of GGUF name `name`, recorded in the log.
    func find(_ name: String) -> Found? {
        guard let t = lookup(name) else { return nil }
        log.record(name, t)
        return t
    }

    func has(_ name: String) -> Bool { lookup(name) != nil }

    /// A matrix of `rows` × `cols` (any rows where `rows` is nil).
    func matrix(_ name: String, rows: Int?, cols: Int) throws -> StoredMatrix {
        guard let t = find(name) else {
            throw ModelError(.missingTensor, field: name, "the model has no tensor for '\(name)'", path: path)
        }
        return try matrix(t, rows: rows, cols: cols)
    }

    func matrix(_ t: Found, rows: Int?, cols: Int) throws -> StoredMatrix {
        // A one-row matrix may be stored as a vector (Qwen2-MoE's shared-expert gate).
        let d = t.dims.count == 1 && rows == 1 ? t.dims + [1] : t.dims
        guard d.count == 2, d[0] == cols, rows == nil || d[1] == rows else {
            throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset,
                             "expected [\(rows.map(String.init) ?? "*"), \(cols)] (rows, columns), found \(Array(d.reversed()))",
                             path: path)
        }
        guard t.type != .f64, let m = StoredMatrix(type: t.type, rows: d[1], cols: d[0], data: t.data) else {
            throw ModelError(.unsupportedTensorType, field: t.name, offset: t.entryOffset,
                             "tensor type \(t.type) cannot be computed on", path: path)
        }
        return m
    }

    /// `n` values as floats; nil when absent and not `required`.
    func vector(_ name: String, _ n: Int, required: Bool = true) throws -> [Float]? {
        guard let t = find(name) else {
            if !required { return nil }
            throw ModelError(.missingTensor, field: name, "the model has no tensor for '\(name)'", path: path)
        }
        guard n > 0, t.dims.reduce(1, *) == n, t.type != .f64, BlockCodec.canDequantize(t.type), n % t.type.blockSize == 0 else {
            throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset, "expected \(n) values, found \(t.dims) of \(t.type)",
                             path: path)
        }
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { BlockCodec.dequantize(t.type, t.data, count: n, into: $0.baseAddress!) }
        return out
    }

    func norm(_ name: String, _ n: Int) throws -> RMSNorm {
        RMSNorm(weight: try vector(name, n)!, eps: eps)
    }

    /// The `count` matrices of the stacked tensor `stem.weight`, each `rows` × `cols` (any rows, the same for all, where
    /// `rows` is nil): one GGUF tensor of dims [cols, rows, count] sliced per matrix, or one tensor per expert in a
    /// folder. `routed`: experts, each seeing the tokens sent to it; otherwise per-head matrices seeing every token.
    func stack(_ stem: String, count: Int, rows: Int?, cols: Int, routed: Bool) throws -> [Linear] {
        let name = stem + ".weight"
        guard let t = find(name) else {
            var out: [Linear] = []
            for x in 0..<count {
                guard let one = findExpert(name, x) else {
                    throw ModelError(.missingTensor, field: name, "the model has no tensor for matrix \(x) of '\(name)'", path: path)
                }
                log.record(name, one)
                let m = try matrix(one, rows: rows ?? out.first?.rows, cols: cols)
                out.append(Linear(name: name, matrix: MatrixIndex(index: x, count: count, routed: routed), weight: m))
            }
            return out
        }
        let d = t.dims
        guard d.count == 3, d[0] == cols, d[2] == count, rows == nil || d[1] == rows else {
            throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset,
                             "expected [\(count), \(rows.map(String.init) ?? "*"), \(cols)] (\(routed ? "experts" : "heads"), rows, columns), found \(Array(d.reversed()))",
                             path: path)
        }
        guard t.type != .f64, let first = StoredMatrix(type: t.type, rows: d[1], cols: d[0], data: t.data) else {
            throw ModelError(.unsupportedTensorType, field: t.name, offset: t.entryOffset,
                             "tensor type \(t.type) cannot be computed on", path: path)
        }
        return (0..<count).map { x in
            Linear(name: name, matrix: MatrixIndex(index: x, count: count, routed: routed),
                   weight: StoredMatrix(type: t.type, rows: d[1], cols: d[0], data: t.data + x * d[1] * first.rowBytes)!)
        }
    }

    /// The linear layer `stem.weight` (rows × cols; any rows where `rows` is nil), with `stem.bias` where `bias`
    /// allows one and the model has it.
    func linear(_ stem: String, rows: Int?, cols: Int, bias: Bool = false) throws -> Linear {
        let m = try matrix(stem + ".weight", rows: rows, cols: cols)
        return Linear(name: stem + ".weight", weight: m, bias: bias ? try vector(stem + ".bias", m.rows, required: false) : nil)
    }
}

/// The tensors a model was built from, by the GGUF name it asked for (a folder's expert tensors under the name of
/// their stack), so that a forward pass gone non-finite can be traced to the weights that hold NaN or infinity.
final class WeightLog {
    private(set) var entries: [(request: String, tensor: WeightReader.Found)] = []
    private var seen: Set<String> = []

    func record(_ request: String, _ t: WeightReader.Found) {
        guard seen.insert(t.name).inserted else { return }
        entries.append((request, t))
    }

    /// The first tensor among those requested under names for which `include` holds that decodes to a NaN or an
    /// infinity: its name, the row and column, the value, and where its entry is in the file.
    func firstNonFinite(where include: (String) -> Bool) -> NonFiniteWeight? {
        for (request, t) in entries where include(request) {
            let columns = max(1, t.dims.first ?? 1)
            let rows = t.dims.dropFirst().reduce(1, *)
            if let bad = NonFinite.firstRow(t.type, t.data, rows: rows, columns: columns) {
                return NonFiniteWeight(tensor: t.name, row: bad.row, column: bad.column, value: bad.value, entryOffset: t.entryOffset)
            }
        }
        return nil
    }
}

/// A weight holding a NaN or an infinity.
public struct NonFiniteWeight: Sendable, Equatable {
    public var tensor: String
    public var row: Int
    public var column: Int
    public var value: Float
    public var entryOffset: Int?
}
