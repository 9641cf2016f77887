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
    /// Which expert of a stacked expert tensor (`blk.3.ffn_up_exps.weight`) this is; nil for every other layer.
    public let expert: ExpertIndex?
    public private(set) var weight: StoredMatrix
    public let bias: [Float]?
    /// F32 values put in place of the stored weight, owned here.
    private var replacement: [Float]?

    init(name: String, expert: ExpertIndex? = nil, weight: StoredMatrix, bias: [Float]? = nil) {
        self.name = name
        self.expert = expert
        self.weight = weight
        self.bias = bias
    }

    public var rows: Int { weight.rows }
    public var columns: Int { weight.cols }

    /// y (rows × `self.rows`) = x (rows × columns) · Wᵀ (+ b).
    func apply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        c.observer?.observe(name, expert: expert, input: UnsafeBufferPointer(start: x, count: n * columns), rows: n, columns: columns)
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
        weight = m
    }
}

/// RMS norm over rows of `weight.count` values: y = x / √(mean(x²) + ε) · weight.
public struct RMSNorm {
    public let weight: [Float]
    public let eps: Float

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

    init(style: RopeStyle, dims: Int, headDim: Int, base: Float, factors: [Float]?) {
        (self.style, self.dims, self.headDim, self.base, self.factors) = (style, dims, headDim, base, factors)
    }

    /// cos/sin of position · θ_i for i < dims/2, with θ_i = base^(-2i/dims) built by repeated multiplication in Float
    /// as ggml's rope cache does (divided by the factors where the model has them).
    func tables(_ n: Int) -> (cos: [Float], sin: [Float]) {
        let half = dims / 2
        var c = [Float](repeating: 1, count: n * half), s = [Float](repeating: 0, count: n * half)
        let thetaScale = powf(base, -2 / Float(dims))
        for p in 0..<n {
            var theta = Float(p)
            for i in 0..<half {
                let t = theta / (factors?[i] ?? 1)
                c[p * half + i] = cosf(t)
                s[p * half + i] = sinf(t)
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
        attend(qb, kb, vt, into: att, c)
        o.apply(att, rows: n, into: out, c)
    }

    /// Causal attention, one head per job, queries in blocks of `queryBlock`.
    private func attend(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ vt: UnsafePointer<Float>,
                        into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, qd = heads * headDim, kvd = kvHeads * headDim, d = headDim, group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot(), kernels = c.kernels
        let scores = c.state.scoreBuffers(c.workspace.threads)
        let qs = UnsafeSendable(q), ks = UnsafeSendable(k), vs = UnsafeSendable(vt), os = UnsafeSendable(UnsafePointer(out))
        try? parallelFor(0..<heads, threads: c.workspace.threads) { h, worker in
            let s = scores[worker].get(GroupedQueryAttention.queryBlock * n * 4).baseAddress!.assumingMemoryBound(to: Float.self)
            let kvh = h / group
            let o = UnsafeMutablePointer(mutating: os.pointer)
            var t0 = 0
            while t0 < n {
                let tb = min(GroupedQueryAttention.queryBlock, n - t0), keys = t0 + tb
                MatMul.gemm(qs.pointer + t0 * qd + h * d, ldx: qd, ks.pointer + kvh * d, ldw: kvd, k: d,
                            tokens: tb, rows: keys, s, ldy: n, kernels: kernels)
                for t in t0..<(t0 + tb) {
                    let row = s + (t - t0) * n
                    Activations.softmax(row, t + 1, scale: scale)
                    for j in (t + 1)..<max(t + 1, keys) { row[j] = 0 }
                }
                MatMul.gemm(s, ldx: n, vs.pointer + kvh * d * n, ldw: n, k: keys,
                            tokens: tb, rows: d, o + t0 * qd + h * d, ldy: qd, kernels: kernels)
                t0 += tb
            }
        }
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
    public let router: Linear
    /// One set of projections per expert, all `width` wide.
    public let gate: [Linear], up: [Linear], down: [Linear]
    public let shared: GatedMLP?
    /// The shared expert's gate (`ffn_gate_inp_shexp`, one row of hidden values; a vector in GGUF).
    public let sharedGate: Linear?
    public let used: Int
    let routing: BlockShape.Experts
    /// llama.cpp's `expert_weights_scale` (1 where the model has none).
    let weightScale: Float

    public var experts: Int { gate.count }
    public var width: Int { gate.first?.rows ?? 0 }

    init(block i: Int, weights w: WeightReader, hidden: Int, experts: Int, used: Int, routing: BlockShape.Experts,
         weightScale: Float) throws {
        let p = "blk.\(i)."
        router = try w.linear(p + "ffn_gate_inp", rows: experts, cols: hidden)
        gate = try w.experts(p + "ffn_gate_exps", experts: experts, rows: nil, cols: hidden)
        let width = gate[0].rows
        up = try w.experts(p + "ffn_up_exps", experts: experts, rows: width, cols: hidden)
        down = try w.experts(p + "ffn_down_exps", experts: experts, rows: hidden, cols: width)
        switch routing.shared {
        case .none:
            shared = nil
            sharedGate = nil
        case .sigmoidGated:
            shared = try GatedMLP(block: i, weights: w, hidden: hidden, ffn: nil, suffix: "_shexp")
            sharedGate = try w.linear(p + "ffn_gate_inp_shexp", rows: 1, cols: hidden)
        }
        (self.used, self.routing, self.weightScale) = (used, routing, weightScale)
    }

    public var linears: [Linear] {
        [router] + (0..<experts).flatMap { [gate[$0], up[$0], down[$0]] } + (shared?.linears ?? []) + (sharedGate.map { [$0] } ?? [])
    }

    /// The experts token `t` goes to and their weights, from its router logits (`experts` values, overwritten by
    /// the probabilities).
    func route(_ logits: UnsafeMutablePointer<Float>, chosen: UnsafeMutablePointer<Int32>, weights: UnsafeMutablePointer<Float>) {
        let e = experts
        switch routing.gating {
        case .softmax: Activations.softmax(logits, e, scale: 1)
        case .sigmoid: for j in 0..<e { logits[j] = 1 / (1 + expf(-logits[j])) }
        }
        var sum: Float = 0
        for s in 0..<used {
            var best = -1
            for j in 0..<e where best < 0 || logits[j] > logits[best] {
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
        if weightScale != 0 && weightScale != 1 { for s in 0..<used { weights[s] *= weightScale } }
    }

    public func run(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        let n = c.tokens, k = used, h = router.columns, f = width, e = experts
        let logits = c.state.floats("moe.logits", n * e)
        let weights = c.state.floats("moe.weights", n * k)
        let chosen = UnsafeMutableRawPointer(c.state.floats("moe.chosen", n * k)).bindMemory(to: Int32.self, capacity: n * k)
        router.apply(x, rows: n, into: logits, c)
        for t in 0..<n { route(logits + t * e, chosen: chosen + t * k, weights: weights + t * k) }
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
            for (r, s) in rows.enumerated() {
                let ws = weights[s], src = ys + r * h, dst = y + s * h
                for j in 0..<h { dst[j] = src[j] * ws }
            }
        }
        for t in 0..<n {
            let o = out + t * h
            o.update(from: y + t * k * h, count: h)
            for j in 1..<max(1, k) {
                let src = y + (t * k + j) * h
                for i in 0..<h { o[i] += src[i] }
            }
        }
        if let shared, let sharedGate {
            let sh = c.state.floats("moe.shared", n * h), sg = c.state.floats("moe.sharedGate", n)
            shared.run(x, into: sh, c)
            sharedGate.apply(x, rows: n, into: sg, c)
            for t in 0..<n {
                let s = 1 / (1 + expf(-sg[t]))
                for i in 0..<h { out[t * h + i] += sh[t * h + i] * s }
            }
        }
    }
}

/// One block: pre-norm residual branches run in order, `x += sublayer(rmsnorm(x) · norm)`.
public struct Block {
    public let branches: [(norm: RMSNorm, sublayer: any Sublayer)]

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
    let find: (String) -> Found?
    /// Expert `x` of a stacked expert tensor, where the source keeps one tensor per expert (Hugging Face folders).
    var findExpert: (String, Int) -> Found? = { _, _ in nil }

    func has(_ name: String) -> Bool { find(name) != nil }

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

    /// The `experts` matrices of the stacked expert tensor `stem.weight`, each `rows` × `cols` (any rows, the same for
    /// all, where `rows` is nil): one GGUF tensor of dims [cols, rows, experts] sliced per expert, or one tensor per
    /// expert in a folder.
    func experts(_ stem: String, experts: Int, rows: Int?, cols: Int) throws -> [Linear] {
        let name = stem + ".weight"
        guard let t = find(name) else {
            var out: [Linear] = []
            for x in 0..<experts {
                guard let one = findExpert(name, x) else {
                    throw ModelError(.missingTensor, field: name, "the model has no tensor for expert \(x) of '\(name)'", path: path)
                }
                let m = try matrix(one, rows: rows ?? out.first?.rows, cols: cols)
                out.append(Linear(name: name, expert: ExpertIndex(index: x, count: experts), weight: m))
            }
            return out
        }
        let d = t.dims
        guard d.count == 3, d[0] == cols, d[2] == experts, rows == nil || d[1] == rows else {
            throw ModelError(.shapeMismatch, field: t.name, offset: t.entryOffset,
                             "expected [\(experts), \(rows.map(String.init) ?? "*"), \(cols)] (experts, rows, columns), found \(Array(d.reversed()))",
                             path: path)
        }
        guard t.type != .f64, let first = StoredMatrix(type: t.type, rows: d[1], cols: d[0], data: t.data) else {
            throw ModelError(.unsupportedTensorType, field: t.name, offset: t.entryOffset,
                             "tensor type \(t.type) cannot be computed on", path: path)
        }
        return (0..<experts).map { x in
            Linear(name: name, expert: ExpertIndex(index: x, count: experts),
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
