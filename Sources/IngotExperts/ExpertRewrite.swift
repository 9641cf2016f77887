import IngotArchitectures
import IngotConvert
import IngotFormats
import IngotNumerics

/// One expert of a rewritten block: the former experts it is made of, each with its weight in the average (weights
/// sum to 1; a single member is that expert copied byte for byte), and the former expert whose router row and
/// selection bias it takes.
public struct NewExpert: Sendable, Equatable {
    /// Former expert indices, ascending.
    public var members: [Int]
    public var weights: [Double]
    public var router: Int

    public init(members: [Int], weights: [Double], router: Int) {
        (self.members, self.weights, self.router) = (members, weights, router)
    }

    /// Former expert `x` kept as it is.
    public static func kept(_ x: Int) -> NewExpert { NewExpert(members: [x], weights: [1], router: x) }
}

/// Where a rewritten model goes: a GGUF file, or a Hugging Face folder (the GGUF converted as `ingot convert --to hf`
/// converts it).
public enum ExpertOutput: String, Sendable, CaseIterable {
    case gguf, hf
}

/// What pruning or merging did.
public struct ExpertReport: Sendable {
    public var expertsBefore: Int
    public var expertsAfter: Int
    /// Each block's new experts, in order.
    public var experts: [Int: [NewExpert]]
    /// Tensor bytes read and written (GGUF tensor data; a folder output is then converted from it).
    public var bytesBefore: Int
    public var bytesAfter: Int
    /// Expert stacks whose type Ingot cannot write, stored as F16 after merging.
    public var widened: [String] = []

    /// The former experts each block kept (pruning: one per new expert).
    public var kept: [Int: [Int]] { experts.mapValues { $0.flatMap(\.members) } }
}

/// The mixture-of-experts facts of a model (GGUF keys and tensors, from a file or a folder seen as GGUF) that
/// pruning and merging need, checked against the statistics they are given.
struct ExpertLayout {
    let source: GGUFTensorSource
    let arch: String
    let experts: Int, used: Int, groups: Int, groupsUsed: Int
    /// Blocks with experts, by their router, ascending.
    let blocks: [Int]
    /// Router columns (the hidden width).
    let hidden: Int

    func fail(_ code: ModelError.Code, _ field: String, _ detail: String) -> ModelError {
        ModelError(code, field: field, offset: nil, detail, path: source.path)
    }

    init(_ source: GGUFTensorSource) throws {
        self.source = source
        func value(_ key: String) -> GGUFKeyValue? { source.metadata.first { $0.key == key } }
        let arch = value("general.architecture")?.value.stringValue ?? "?"
        func int(_ key: String) -> Int? { value("\(arch).\(key)")?.value.intValue }
        guard let experts = int("expert_count"), experts > 1 else {
            throw ModelError(.invalidValue, field: "\(arch).expert_count", offset: value("\(arch).expert_count")?.fileOffset,
                             "the model has no experts to prune or merge", path: source.path)
        }
        var blocks: [Int] = [], hidden = 0
        for t in source.tensors where t.name.hasSuffix(".ffn_gate_inp.weight") {
            let parts = t.name.split(separator: ".")
            guard parts.count == 4, let b = Int(parts[1]) else { continue }
            guard t.dimensions.count == 2, t.dimensions[1] == experts else {
                throw ModelError(.shapeMismatch, field: t.name, offset: t.infoOffset,
                                 "the router has \(t.dimensions.last ?? 0) rows for \(experts) experts", path: source.path)
            }
            blocks.append(b)
            hidden = t.dimensions[0]
        }
        guard !blocks.isEmpty else {
            throw ModelError(.missingTensor, field: "ffn_gate_inp", offset: nil, "the model has no expert routers", path: source.path)
        }
        (self.arch, self.experts, self.blocks, self.hidden) = (arch, experts, blocks.sorted(), hidden)
        used = max(1, int("expert_used_count") ?? 1)
        groups = max(1, int("expert_group_count") ?? 1)
        groupsUsed = max(1, int("expert_group_used_count") ?? 1)
        guard experts % groups == 0 else {
            let key = "\(arch).expert_group_count"
            throw ModelError(.invalidValue, field: key, offset: value(key)?.fileOffset,
                             "\(experts) experts do not split into \(groups) equal routing groups", path: source.path)
        }
    }

    /// `after` experts per block must still serve every token and split into the routing groups.
    func check(count after: Int, option: String) throws {
        guard after >= used, after <= experts else {
            throw fail(.invalidValue, option, "\(after) of \(experts) experts per block leaves fewer than the \(used) every token uses"
                       + (after > experts ? " (or more than there are)" : ""))
        }
        let perGroup = after / groups
        guard after % groups == 0, groups == 1 || (perGroup >= 2 && used <= groupsUsed * perGroup) else {
            throw fail(.invalidValue, option, "\(after) experts do not split into \(groups) routing groups of at least 2 "
                       + "that still give \(used) experts from \(groupsUsed) groups")
        }
    }

    /// Each block's statistics, which must be of this model: the same blocks, expert counts and widths.
    func statistics(_ s: ImportanceMatrix) throws -> [Int: ImportanceMatrix.ExpertStatistics] {
        var out: [Int: ImportanceMatrix.ExpertStatistics] = [:]
        for b in blocks {
            let field = "blk.\(b)\(ImportanceMatrix.expertStatsSuffix)"
            guard let st = s.expertStatistics[b] else {
                throw ModelError(.missingField, field: field, offset: nil,
                                 "the statistics have nothing for block \(b): they were computed for another model, or by a tool that records no expert statistics",
                                 path: s.path)
            }
            guard st.experts == experts else {
                throw ModelError(.shapeMismatch, field: field, offset: nil,
                                 "statistics of \(st.experts) experts for a block of \(experts): they were computed for another model", path: s.path)
            }
            let up = "blk.\(b).ffn_up_exps.weight"
            if let e = s.entries[up], let t = source.tensors.first(where: { $0.name == up }),
               e.columns != t.dimensions.first || e.matrices != experts {
                throw ModelError(.shapeMismatch, field: up, offset: nil,
                                 "the statistics saw \(e.matrices) experts of \(e.columns) inputs: they were computed for another model", path: s.path)
            }
            if st.outputWidth != 0 && st.outputWidth != hidden {
                throw ModelError(.shapeMismatch, field: "blk.\(b)\(ImportanceMatrix.expertOutputsSuffix)", offset: nil,
                                 "expert outputs \(st.outputWidth) wide for a model \(hidden) wide: they were computed for another model", path: s.path)
            }
            out[b] = st
        }
        if let extra = s.expertStatistics.keys.sorted().first(where: { !blocks.contains($0) }) {
            throw ModelError(.invalidValue, field: "blk.\(extra)\(ImportanceMatrix.expertStatsSuffix)", offset: nil,
                             "the statistics have a block \(extra) with experts that this model does not: they were computed for another model",
                             path: s.path)
        }
        return out
    }

    /// The experts of routing group `g`.
    func group(_ g: Int) -> Range<Int> { (g * experts / groups)..<((g + 1) * experts / groups) }
}

/// Writes a mixture-of-experts model with each block's experts replaced by `plan[block]` (the same count in every
/// block: llama.cpp and transformers state one expert count per model). Along their last axis: the stacked expert
/// tensors (`*_exps`) get each new expert's members averaged with its weights (a lone member: its bytes), the router
/// rows (`ffn_gate_inp`) and selection bias (`exp_probs_b`) each new expert's router row; `{arch}.expert_count`
/// becomes the new count and everything else is copied. An averaged stack is re-encoded in its own type (F16 where
/// Ingot cannot write that type). Memory: one tensor (one block's expert stack) at a time.
enum ExpertRewrite {
    /// `progress(done, total)` after each tensor written.
    static func write(_ layout: ExpertLayout, plan: [Int: [NewExpert]], to path: String, as output: ExpertOutput,
                      progress: (Int, Int) -> Void) throws -> ExpertReport {
        let source = layout.source, experts = layout.experts
        let after = plan.values.first?.count ?? experts
        guard plan.values.allSatisfy({ $0.count == after }) else {
            throw layout.fail(.invalidValue, "experts", "every block must keep the same number of experts")
        }

        func rewritten(_ t: GGUFTensorInfo) -> (block: Int, stack: Bool)? {
            let parts = t.name.split(separator: ".")
            guard parts.count >= 3, parts[0] == "blk", let b = Int(parts[1]), plan[b] != nil, t.dimensions.last == experts else { return nil }
            let stem = parts[2]
            if stem.hasSuffix("_exps") && t.dimensions.count == 3 { return (b, true) }
            if stem == "ffn_gate_inp" && t.dimensions.count == 2 { return (b, false) }
            if stem == "exp_probs_b" && t.dimensions.count == 1 { return (b, false) }
            return nil
        }
        func averaged(_ b: Int) -> Bool { plan[b]!.contains { $0.members.count > 1 } }
        var infos: [GGUFTensorInfo] = [], widened: [String] = []
        for t in source.tensors {
            var dims = t.dimensions, type = t.type
            if let r = rewritten(t) {
                dims[dims.count - 1] = after
                if r.stack && averaged(r.block) {
                    guard BlockCodec.canDequantize(t.type) else {
                        throw ModelError(.unsupportedTensorType, field: t.name, offset: t.infoOffset,
                                         "experts stored as \(t.type) cannot be averaged: Ingot does not decode that type", path: source.path)
                    }
                    if !BlockCodec.canQuantize(t.type) {
                        type = .f16
                        widened.append(t.name)
                    }
                }
            }
            infos.append(try GGUFTensorInfo(name: t.name, dimensions: dims, type: type))
        }
        let countKey = "\(layout.arch).expert_count"
        let metadata = source.metadata.map { kv in
            kv.key == countKey ? GGUFKeyValue(countKey, .uint32(UInt32(after))) : GGUFKeyValue(kv.key, kv.value)
        }

        // A folder is converted from a GGUF written beside it, removed afterwards.
        var temporary: TemporaryFolder?
        let ggufPath: String
        switch output {
        case .gguf: ggufPath = path
        case .hf:
            let folder = try TemporaryFolder(beside: path)
            temporary = folder
            ggufPath = folder.path + "/experts.gguf"
        }
        defer { temporary?.discard() }

        let w = try GGUFWriter(path: ggufPath, metadata: metadata, tensors: infos)
        var bytesBefore = 0, bytesAfter = 0
        var scratch = QuantScratch()
        do {
            for (i, (t, out)) in zip(source.tensors, infos).enumerated() {
                try source.withBytes(of: t) { data in
                    bytesBefore += data.count
                    guard let r = rewritten(t), let news = plan[r.block] else {
                        try w.write(data)
                        bytesAfter += data.count
                        return
                    }
                    let slice = data.count / experts
                    func bytes(of x: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: data[(x * slice)..<((x + 1) * slice)]) }
                    let count = t.dimensions.dropLast().reduce(1, *)
                    var sum = [Float](), one = [Float](repeating: 0, count: r.stack ? count : 0)
                    var encoded = [UInt8]()
                    for n in news {
                        // Copied: router rows and bias, a lone member kept in its type, and an empty stack (no bytes to decode).
                        if !r.stack || count == 0 || (n.members.count == 1 && out.type == t.type) {
                            let part = bytes(of: r.stack ? n.members[0] : n.router)
                            try w.append(part)
                            bytesAfter += part.count
                            continue
                        }
                        // The weighted average of the members' values, in Float.
                        sum = [Float](repeating: 0, count: count)
                        for (x, weight) in zip(n.members, n.weights) {
                            one.withUnsafeMutableBufferPointer { BlockCodec.dequantize(t.type, bytes(of: x).baseAddress!, count: count, into: $0.baseAddress!) }
                            let c = Float(weight)
                            for i in 0..<count { sum[i] += c * one[i] }
                        }
                        encoded = [UInt8](repeating: 0, count: count / out.type.blockSize * out.type.bytesPerBlock)
                        sum.withUnsafeBufferPointer { s in
                            encoded.withUnsafeMutableBytes {
                                BlockCodec.quantize(out.type, s.baseAddress!, count: count, into: $0.baseAddress!, scratch: &scratch)
                            }
                        }
                        try encoded.withUnsafeBytes { try w.append($0) }
                        bytesAfter += encoded.count
                    }
                }
                source.release(t, bytes: 0..<t.byteCount)
                progress(i + 1, infos.count)
            }
            try w.finish()
        } catch {
            w.abort()
            throw error
        }
        if output == .hf {
            var options = Converter.Options(target: .hf)
            options.dtype = .auto
            _ = try Converter.convert(try ModelFile.open(ggufPath), to: path, options: options)
        }
        return ExpertReport(expertsBefore: experts, expertsAfter: after, experts: plan, bytesBefore: bytesBefore, bytesAfter: bytesAfter,
                            widened: widened)
    }
}
