import IngotArchitectures
import IngotFormats

/// How experts are ranked for pruning, from the statistics `ingot calibrate` records (`ImportanceMatrix.ExpertStatistics`).
public enum ExpertScore: String, CaseIterable, Sendable {
    /// REAP (router-weighted expert activation pruning): the mean over an expert's tokens of gate weight × output norm.
    case reap
    /// The share of the block's tokens routed to the expert.
    case frequency
    /// EAN: the expert's output norm summed over its tokens.
    case ean

    func values(_ s: ImportanceMatrix.ExpertStatistics) -> [Double] {
        switch self {
        case .reap: s.reap
        case .frequency: s.frequency
        case .ean: s.ean
        }
    }
}

/// How many experts each block keeps.
public enum ExpertKeep: Sendable, Equatable {
    /// A fraction of the experts, rounded to the nearest count.
    case fraction(Double)
    case count(Int)

    func count(of experts: Int) -> Int {
        switch self {
        case .fraction(let f): Int((Double(experts) * f).rounded())
        case .count(let n): n
        }
    }
}

/// Removes experts from a mixture-of-experts model (REAP-style one-shot pruning): every block keeps the experts its
/// statistics rank highest, the same number in each block (llama.cpp and transformers state one expert count for
/// the model), and within each routing group as many (group-limited routing keeps its groups). The kept experts'
/// tensors, router rows and selection bias are copied byte for byte (`ExpertRewrite`).
public enum ExpertPruner {
    /// `source`: a GGUF file, or a Hugging Face folder seen as GGUF (`FolderAsGGUF`); `statistics`: what
    /// `ingot calibrate` wrote for it.
    public static func prune(_ source: GGUFTensorSource, statistics: ImportanceMatrix, keep: ExpertKeep, score: ExpertScore,
                             to path: String, as output: ExpertOutput = .gguf,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> ExpertReport {
        let layout = try ExpertLayout(source)
        let after = keep.count(of: layout.experts)
        try layout.check(count: after, option: "--keep")
        var plan: [Int: [NewExpert]] = [:]
        for (b, st) in try layout.statistics(statistics) {
            let values = score.values(st)
            var keepHere: [Int] = []
            for g in 0..<layout.groups {
                keepHere += layout.group(g).sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
                    .prefix(after / layout.groups)
            }
            plan[b] = keepHere.sorted().map(NewExpert.kept)
        }
        return try ExpertRewrite.write(layout, plan: plan, to: path, as: output, progress: progress)
    }
}
