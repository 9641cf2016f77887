import IngotArchitectures
import IngotFormats

/// Merges each block's experts into fewer (HC-SMoE, retraining-free): experts are grouped by how alike their outputs
/// are on the calibration text, and each group becomes one expert, the frequency-weighted average of its members.
///
///     o_e = mean over sampled tokens of expert e's output         (ExpertStatistics.outputMeans, every expert run
///                                                                   on the same tokens, so o_e compares functions)
///     d(a, b) = ‖o_a − o_b‖₂
///     groups: agglomerative, average linkage (the distance of two groups is the mean of their members' pairwise
///             distances), joined until `count` remain; within each routing group where routing is group-limited
///     W_new = Σ f_e W_e / Σ f_e    over gate, up and down of the members, f_e = tokens routed to e
///             (plain average where no member was routed to)
///     router row of the new expert = that of its most-routed member (and its selection bias)
///
/// Cost: O(E³) per block for the grouping (E ≤ 256: under 20 M steps); the weights stream one expert stack at a time.
public enum ExpertMerger {
    /// `source`: a GGUF file or a folder seen as GGUF; `statistics`: what `ingot calibrate` wrote for it, with expert
    /// outputs (recorded since expert outputs were added to calibration).
    public static func merge(_ source: GGUFTensorSource, statistics: ImportanceMatrix, to target: ExpertKeep,
                             to path: String, as output: ExpertOutput = .gguf,
                             progress: (Int, Int) -> Void = { _, _ in }) throws -> ExpertReport {
        let layout = try ExpertLayout(source)
        let after = target.count(of: layout.experts)
        try layout.check(count: after, option: "--to")
        var plan: [Int: [NewExpert]] = [:]
        for (b, st) in try layout.statistics(statistics) {
            guard st.outputWidth > 0 else {
                throw ModelError(.missingField, field: "blk.\(b)\(ImportanceMatrix.expertOutputsSuffix)", offset: nil,
                                 "the statistics have no expert outputs to group experts by: calibrate again with this version of ingot",
                                 path: statistics.path)
            }
            var news: [NewExpert] = []
            for g in 0..<layout.groups {
                let members = Array(layout.group(g))
                let clusters = averageLinkage(members.map { e in Array(st.outputMeans[(e * st.outputWidth)..<((e + 1) * st.outputWidth)]) },
                                              into: after / layout.groups)
                news += clusters.map { c in expert(c.map { members[$0] }, tokens: st.tokens) }
            }
            plan[b] = news
        }
        return try ExpertRewrite.write(layout, plan: plan, to: path, as: output, progress: progress)
    }

    /// The new expert for a group: members ascending, weights their token shares, the router of the most-routed.
    static func expert(_ group: [Int], tokens: [Double]) -> NewExpert {
        let members = group.sorted()
        let total = members.reduce(0) { $0 + tokens[$1] }
        let weights = members.map { total > 0 ? tokens[$0] / total : 1 / Double(members.count) }
        let router = members.max { tokens[$0] < tokens[$1] || (tokens[$0] == tokens[$1] && $0 > $1) }!  // members is never empty
        return NewExpert(members: members, weights: weights, router: router)
    }

    /// Groups `points` (equal lengths) into `count` clusters by average-linkage agglomeration on Euclidean distance
    /// (ties: the pair with the lower indices joins first). Clusters come out ordered by their smallest member,
    /// members ascending.
    static func averageLinkage(_ points: [[Float]], into count: Int) -> [[Int]] {
        let n = points.count
        var clusters: [[Int]?] = (0..<n).map { [$0] }
        var d = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in (i + 1)..<max(n, i + 1) {
                var s = 0.0
                for (a, b) in zip(points[i], points[j]) { s += Double(a - b) * Double(a - b) }
                (d[i][j], d[j][i]) = (s.squareRoot(), s.squareRoot())
            }
        }
        var alive = n
        while alive > max(count, 1) {
            var best: (Int, Int)? = nil
            for i in 0..<n where clusters[i] != nil {
                for j in (i + 1)..<n where clusters[j] != nil {
                    if best.map({ d[i][j] < d[$0.0][$0.1] }) ?? true { best = (i, j) }
                }
            }
            guard let (i, j) = best else { break }
            // Lance-Williams for average linkage: d(k, i∪j) = (|i| d(k,i) + |j| d(k,j)) / (|i| + |j|).
            let ni = Double(clusters[i]!.count), nj = Double(clusters[j]!.count)
            for k in 0..<n where clusters[k] != nil && k != i && k != j {
                let v = (ni * d[k][i] + nj * d[k][j]) / (ni + nj)
                (d[k][i], d[i][k]) = (v, v)
            }
            clusters[i]! += clusters[j]!
            clusters[j] = nil
            alive -= 1
        }
        return clusters.compactMap { $0?.sorted() }.sorted { $0[0] < $1[0] }
    }
}
