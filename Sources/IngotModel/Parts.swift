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
    public private(set) var weight: StoredMatrix
    public let bias: [Float]?
    /// F32 values put in place of the stored weight, owned here.
    private var replacement: [Float]?

    init(name: String, weight: StoredMatrix, bias: [Float]? = nil) {
        self.name = name
        self.weight = weight
        self.bias = bias
    }

    public var rows: Int { weight.rows }
    public var columns: Int { weight.cols }

    /// y (rows × `self.rows`) = x (rows × columns) · Wᵀ (+ b).
    func apply(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, _ c: ForwardContext) {
        c.observer?.observe(name, input: UnsafeBufferPointer(start: x, count: n * columns), rows: n, columns: columns)
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

    init(block i: Int, weights w: WeightReader, hidden: Int, ffn: Int) throws {
        let p = "blk.\(i)."
        gate = try w.linear(p + "ffn_gate", rows: ffn, cols: hidden)
        up = try w.linear(p + "ffn_up", rows: ffn, cols: hidden)
        down = try w.linear(p + "ffn_down", rows: hidden, cols: ffn)
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

    func has(_ name: String) -> Bool { find(name) != nil }

    /// A matrix of `rows` × `cols` (any rows where `rows` is nil).
    func matrix(_ name: String, rows: Int?, cols: Int) throws -> StoredMatrix {
        guard let t = find(name) else {
            throw ModelError(.missingTensor, field: name, "the model has no tensor for '\(name)'", path: path)
        }
        let d = t.dims
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

    /// The linear layer `stem.weight` (rows × cols), with `stem.bias` where `bias` allows one and the model has it.
    func linear(_ stem: String, rows: Int, cols: Int, bias: Bool = false) throws -> Linear {
        Linear(name: stem + ".weight", weight: try matrix(stem + ".weight", rows: rows, cols: cols),
               bias: bias ? try vector(stem + ".bias", rows, required: false) : nil)
    }
}
