import IngotFormats
import IngotNumerics

/// The KL divergence of one model's next-token distributions from another's, as `ingot eval --base` scores them, for
/// callers that hold both sets of logits (a sensitivity search comparing a perturbed model with its base).
public enum Divergence {
    /// Mean over `rows` of KL(base ‖ model), each row `vocab` logits; rows shared among `threads` workers.
    public static func meanKLD(_ logits: [Float], base: [Float], rows: Int, vocab: Int, threads: Int) -> Double {
        precondition(logits.count >= rows * vocab && base.count >= rows * vocab, "fewer logits than rows × vocab")
        guard rows > 0 else { return 0 }
        let values = Slots<Double>(count: rows)
        logits.withUnsafeBufferPointer { lp in base.withUnsafeBufferPointer { bp in
            let l = UnsafeSendable(lp.baseAddress!), b = UnsafeSendable(bp.baseAddress!)
            try? parallelFor(0..<rows, threads: max(1, threads)) { i, _ in
                values[i] = Position.compare(l.pointer + i * vocab, b.pointer + i * vocab, vocab: vocab, token: 0).kld
            }
        } }
        return (0..<rows).reduce(0) { $0 + (values[$1] ?? 0) } / Double(rows)
    }
}
