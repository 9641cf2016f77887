import IngotFormats
import IngotNumerics

/// A model that turns a window of tokens into next-token logits: what the evaluator (and later calibration) runs,
/// whatever the architecture behind it.
public protocol CausalLM: AnyObject {
    /// The file or folder the model was read from.
    var path: String { get }
    var vocab: Int { get }
    /// Logits for positions `outputs` of one window of `tokens`: `outputs.count × vocab` floats. `state` holds the
    /// run's buffers, reused from window to window (nil allocates them).
    func logits(_ tokens: [Int32], outputs: Range<Int>, workspace: MatMulWorkspace, kernels: KernelChoice,
                state: RunState?) throws -> [Float]
    /// Where the forward pass over `tokens` first goes non-finite (nil when it stays finite, or the model cannot say).
    func diagnoseNonFinite(_ tokens: [Int32], workspace: MatMulWorkspace, kernels: KernelChoice) throws -> NonFiniteTrace?
}

extension CausalLM {
    public func diagnoseNonFinite(_ tokens: [Int32], workspace: MatMulWorkspace, kernels: KernelChoice) throws -> NonFiniteTrace? { nil }
}

/// Sees the input of every linear layer: `rows` rows (tokens) of `columns` floats, the layer named by its GGUF tensor
/// (`blk.3.attn_q.weight`), and for a stacked tensor which of its matrices (an expert of `blk.3.ffn_up_exps.weight`,
/// /// the rows being the tokens routed to it, or a head of `blk.3.attn_k_b.weight`). Calibration accumulates importance
/// from it; the buffer is the model's own (no copy) and valid only during the call.
public protocol LinearObserver: AnyObject {
    func observe(_ tensor: String, matrix: MatrixIndex?, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
}

/// Sees how each mixture-of-experts block routes a window (expert statistics): for expert `expert` of the `experts` of
/// block `block`, the weight the router gave each token sent to it and the L2 norm of the expert's output for that
/// token (before weighting), in token order. A `LinearObserver` that also conforms is told both.
public protocol RoutingObserver: AnyObject {
    func routed(block: Int, expert: Int, of experts: Int, weights: UnsafeBufferPointer<Float>, outputNorms: UnsafeBufferPointer<Float>)
    /// Every how many tokens of a window (the first, then every `stride`-th) are also run through every expert of
    /// a block of `experts` that routes `used` per token, for `sampled`; 0 runs none. Not seen by linear observers.
    func outputSampleStride(experts: Int, used: Int) -> Int
    /// The outputs (before weighting) of expert `expert` of block `block` for the sampled tokens: `rows` × hidden.
    func sampled(block: Int, expert: Int, of experts: Int, outputs: UnsafeBufferPointer<Float>, rows: Int)
}

extension RoutingObserver {
    public func outputSampleStride(experts: Int, used: Int) -> Int { 0 }
    public func sampled(block: Int, expert: Int, of experts: Int, outputs: UnsafeBufferPointer<Float>, rows: Int) {}
}

/// Which matrix of a stacked tensor a linear layer is: `index` of `count`. Experts (`ffn_up_exps`) are `routed`, each
/// seeing only the tokens sent to it; the per-head matrices of latent attention (`attn_k_b`) are not, each seeing
/// every token.
public struct MatrixIndex: Equatable, Sendable {
    public let index: Int
    public let count: Int
    public let routed: Bool
    public init(index: Int, count: Int, routed: Bool) {
        self.index = index
        self.count = count
        self.routed = routed
    }
}

/// The buffers of a forward pass (llama2.c's `RunState`): each part asks for its scratch by name, sized for the first
/// window and reused by every layer and the next windows, instead of allocated per window. Contents are undefined
/// between uses; a part writes a buffer before reading it.
public final class RunState {
    private var pool: [String: UnsafeMutableBufferPointer<Float>] = [:]
    private var scores: [ReusableBuffer] = []
    private var rope: (rotary: ObjectIdentifier, tokens: Int, cos: [Float], sin: [Float])?

    public init() {}

    deinit { pool.values.forEach { $0.deallocate() } }

    /// At least `count` floats named `key`.
    func floats(_ key: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = pool[key], b.count >= count { return b.baseAddress! }
        pool[key]?.deallocate()
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, count))
        pool[key] = b
        return b.baseAddress!
    }

    /// One attention score buffer per worker.
    func scoreBuffers(_ threads: Int) -> [ReusableBuffer] {
        while scores.count < threads { scores.append(ReusableBuffer()) }
        return scores
    }

    /// `rotary`'s cos/sin tables for positions 0..<tokens, computed once per window size.
    func ropeTables(_ rotary: Rotary, tokens: Int) -> (cos: [Float], sin: [Float]) {
        if let r = rope, r.rotary == ObjectIdentifier(rotary), r.tokens == tokens { return (r.cos, r.sin) }
        let t = rotary.tables(tokens)
        rope = (ObjectIdentifier(rotary), tokens, t.cos, t.sin)
        return t
    }
}
