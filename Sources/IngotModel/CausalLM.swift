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
}

/// Sees the input of every linear layer: `rows` rows (tokens) of `columns` floats, the layer named by its GGUF tensor
/// (`blk.3.attn_q.weight`). Calibration accumulates importance from it; the buffer is the model's own (no copy) and
/// valid only during the call.
public protocol LinearObserver: AnyObject {
    func observe(_ tensor: String, input: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
}

/// The buffers of a forward pass (llama2.c's `RunState`): allocated for the first window and reused for the next
/// ones of the same size, instead of once per window.
public final class RunState {
    var xn: [Float] = [], q: [Float] = [], k: [Float] = [], v: [Float] = [], vt: [Float] = [], att: [Float] = []
    var g: [Float] = [], u: [Float] = []
    var scores: [ReusableBuffer] = []
    var cosTable: [Float] = [], sinTable: [Float] = []
    private var shape: [Int] = []
    private var owner: ObjectIdentifier?

    public init() {}

    /// Sizes the buffers for `tokens` tokens of `model` (no work when they already fit).
    func prepare(tokens n: Int, hidden: Int, qd: Int, kvd: Int, ffn: Int, threads: Int, model: LlamaModel) {
        let want = [n, hidden, qd, kvd, ffn, threads]
        guard want != shape || owner != ObjectIdentifier(model) else { return }
        shape = want
        owner = ObjectIdentifier(model)
        xn = [Float](repeating: 0, count: n * hidden)
        q = [Float](repeating: 0, count: n * qd)
        k = [Float](repeating: 0, count: n * kvd)
        v = [Float](repeating: 0, count: n * kvd)
        vt = [Float](repeating: 0, count: n * kvd)
        att = [Float](repeating: 0, count: n * qd)
        g = [Float](repeating: 0, count: n * ffn)
        u = [Float](repeating: 0, count: n * ffn)
        scores = (0..<threads).map { _ in ReusableBuffer() }
        (cosTable, sinTable) = model.ropeTables(n)
    }
}
