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

/// What a pruning run did.
public struct PruneReport: Sendable {
    public var expertsBefore: Int
    public var expertsAfter: Int
    /// The experts each block kept, by their former index, ascending.
    public var kept: [Int: [Int]]
    public var bytesBefore: Int
    public var bytesAfter: Int
}

/// Removes experts from a GGUF mixture-of-experts model (REAP-style one-shot pruning): every block keeps the experts
/// its statistics rank highest, the same number in each block (llama.cpp states one `expert_count` for the model),
/// and within each routing group as many (group-limited routing keeps its groups). Sliced along their last axis: the
/// stacked expert tensors (`*_exps`), the router rows (`ffn_gate_inp`) and the selection bias (`exp_probs_b`);
/// `{arch}.expert_count` becomes the new count; every other tensor and key is copied. Memory: one tensor at a time.
public enum ExpertPruner {
    public static func prune(_ g: GGUFFile, statistics: ImportanceMatrix, keep: ExpertKeep, score: ExpertScore,
                             to path: String) throws -> PruneReport {
        let spec = ModelSpec(gguf: g)
        let arch = spec.architecture ?? "?"
        func fail(_ code: ModelError.Code, _ field: String, _ detail: String) -> ModelError {
            ModelError(code, field: field, offset: nil, detail, path: g.path)
        }
        guard let experts = spec.expertCount, experts > 1 else {
            throw fail(.invalidValue, "\(arch).expert_count", "the model has no experts to prune")
        }
        let used = spec.expertUsedCount ?? 1
        let groups = max(1, spec.int(.expertGroupCount) ?? 1), groupsUsed = max(1, spec.int(.expertGroupUsedCount) ?? 1)
        let after = keep.count(of: experts)
        guard after >= used, after <= experts else {
            throw fail(.invalidValue, "--keep", "keeping \(after) of \(experts) experts per block leaves fewer than the \(used) every token uses"
                       + (after > experts ? " (or more than there are)" : ""))
        }
        let perGroup = after / groups
        guard after % groups == 0, groups == 1 || (perGroup >= 2 && used <= groupsUsed * perGroup) else {
            throw fail(.invalidValue, "--keep", "\(after) experts do not split into \(groups) routing groups of at least 2 "
                       + "that still give \(used) experts from \(groupsUsed) groups")
        }
        // The blocks with experts, by their router; each needs statistics of the same shape.
        var blocks: [Int] = []
        for t in g.tensors where t.name.hasSuffix(".ffn_gate_inp.weight") {
            let parts = t.name.split(separator: ".")
            guard parts.count == 4, let b = Int(parts[1]) else { continue }
            guard t.dimensions.count == 2, t.dimensions[1] == experts else {
                throw ModelError(.shapeMismatch, field: t.name, offset: t.infoOffset,
                                  "the router has \(t.dimensions.last ?? 0) rows for \(experts) experts", path: g.path)
            }
            blocks.append(b)
        }
        guard !blocks.isEmpty else { throw fail(.missingTensor, "ffn_gate_inp", "the model has no expert routers") }
        var kept: [Int: [Int]] = [:]
        for b in blocks.sorted() {
            guard let st = statistics.expertStatistics[b] else {
                throw ModelError(.missingField, field: "blk.\(b)\(ImportanceMatrix.expertStatsSuffix)", offset: nil,
                                  "the statistics have nothing for block \(b): they were computed for another model, or by a tool that records no expert statistics",
                                  path: statistics.path)
            }
            guard st.experts == experts else {
                throw ModelError(.shapeMismatch, field: "blk.\(b)\(ImportanceMatrix.expertStatsSuffix)", offset: nil,
                                  "statistics of \(st.experts) experts for a block of \(experts): they were computed for another model",
                                  path: statistics.path)
            }
            if let e = statistics.entries["blk.\(b).ffn_up_exps.weight"], let up = g.tensor(named: "blk.\(b).ffn_up_exps.weight"),
               e.columns != up.dimensions.first || e.matrices != experts {
                throw ModelError(.shapeMismatch, field: "blk.\(b).ffn_up_exps.weight", offset: nil,
                                  "the statistics saw \(e.matrices) experts of \(e.columns) inputs: they were computed for another model",
                                  path: statistics.path)
            }
            let values = score.values(st), size = experts / groups
            var keepHere: [Int] = []
            for grp in 0..<groups {
                let members = Array((grp * size)..<((grp + 1) * size))
                keepHere += members.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }.prefix(after / groups)
            }
            kept[b] = keepHere.sorted()
        }
        if let extra = statistics.expertStatistics.keys.sorted().first(where: { !blocks.contains($0) }) {
            throw ModelError(.invalidValue, field: "blk.\(extra)\(ImportanceMatrix.expertStatsSuffix)", offset: nil,
                              "the statistics have a block \(extra) with experts that this model does not: they were computed for another model",
                              path: statistics.path)
        }

        // Which tensors are cut along their last axis, and for which block.
        func slicedBlock(_ t: GGUFTensorInfo) -> Int? {
            let parts = t.name.split(separator: ".")
            guard parts.count >= 3, parts[0] == "blk", let b = Int(parts[1]), kept[b] != nil, t.dimensions.last == experts else { return nil }
            let stem = parts[2]
            if stem.hasSuffix("_exps") && t.dimensions.count == 3 { return b }
            if stem == "ffn_gate_inp" && t.dimensions.count == 2 { return b }
            if stem == "exp_probs_b" && t.dimensions.count == 1 { return b }
            return nil
        }
        var infos: [GGUFTensorInfo] = []
        for t in g.tensors {
            var dims = t.dimensions
            if slicedBlock(t) != nil { dims[dims.count - 1] = after }
            infos.append(try GGUFTensorInfo(name: t.name, dimensions: dims, type: t.type))
        }
        let countKey = "\(arch).expert_count"
        let metadata = g.metadata.map { kv in
            kv.key == countKey ? GGUFKeyValue(countKey, .uint32(UInt32(after))) : GGUFKeyValue(kv.key, kv.value)
        }
        let w = try GGUFWriter(path: path, metadata: metadata, tensors: infos)
        var bytesBefore = 0, bytesAfter = 0
        do {
            for t in g.tensors {
                let data = g.data(for: t)
                bytesBefore += data.count
                if let b = slicedBlock(t), let keepHere = kept[b] {
                    let slice = data.count / experts
                    for x in keepHere {
                        try w.append(UnsafeRawBufferPointer(rebasing: data[(x * slice)..<((x + 1) * slice)]))
                    }
                    bytesAfter += slice * keepHere.count
                } else {
                    try w.write(data)
                    bytesAfter += data.count
                }
            }
            try w.finish()
        } catch {
            w.abort()
            throw error
        }
        return PruneReport(expertsBefore: experts, expertsAfter: after, kept: kept, bytesBefore: bytesBefore, bytesAfter: bytesAfter)
    }
}
