import IngotFormats

/// A model's hyperparameters checked against their domains and against its tensors, in one place, before anything
/// runs on them: a file can parse and still state a model no forward pass computes (a rotary base of 0, a norm epsilon
/// of NaN, more experts used per token than there are). What llama.cpp refuses at load (its asserts and thrown errors
/// in `llama_model::load_hparams` and the tensor count check of its loader) Ingot refuses with a typed error naming
/// the key and its byte offset; values outside any sensible domain that llama.cpp uses as they are (a NaN epsilon, a
/// rotary dimension beyond the head) Ingot refuses too; what can run but is suspect comes back as warnings.
public enum ModelValidation {
    /// llama.cpp's `LLAMA_MAX_LAYERS` and `LLAMA_MAX_EXPERTS`.
    public static let maxLayers = 512
    public static let maxExperts = 512

    /// Checks `spec`; `blocks` are the block indices the model's tensors name (`blk.N.` in GGUF), nil where the
    /// tensors are not to be counted (a folder, whose extra layers may be multi-token prediction layers the
    /// converter drops). Throws the first violation; returns the warnings.
    public static func check(_ spec: ModelSpec, blocks: Set<Int>?, path: String?) throws -> [String] {
        var warnings: [String] = []
        let gguf = blocks != nil
        func location(_ f: SpecField) -> (field: String, offset: Int?) { spec.sources[f] ?? (spec.defaultKey(f), nil) }
        func fail(_ f: SpecField, _ detail: String) -> ModelError {
            let at = location(f)
            return ModelError(.invalidValue, field: at.field, offset: at.offset, detail, path: path)
        }
        func positive(_ f: SpecField) throws {
            guard let v = spec[f] else { return }
            switch v {
            case .int(let i): if i <= 0 { throw fail(f, "\(i) must be at least 1") }
            case .float(let d): if !d.isFinite || d <= 0 { throw fail(f, "\(d) must be a finite number above 0") }
            case .bool: break
            }
        }

        // Sizes.
        for f in [SpecField.hiddenSize, .feedForwardSize, .headCount, .keyLength, .valueLength, .contextLength, .vocabSize,
                  .expertFeedForwardSize, .expertSharedFeedForwardSize, .kvLoraRank, .qLoraRank, .keyLengthMLA, .valueLengthMLA] {
            try positive(f)
        }
        if let n = spec.layerCount, !(1 ... maxLayers).contains(n) {
            throw fail(.layerCount, "\(n) blocks; llama.cpp takes 1 to \(maxLayers)")
        }
        if let kv = spec.int(.kvHeadCount) {
            if kv <= 0 { throw fail(.kvHeadCount, "\(kv) must be at least 1") }
            if let h = spec.headCount, h % kv != 0 {
                throw fail(.kvHeadCount, "\(h) query heads cannot share \(kv) key/value heads evenly")
            }
        }
        if spec.int(.keyLength) == nil, spec.table?.latentAttention != true, let h = spec.hiddenSize, let n = spec.headCount, h % n != 0 {
            throw fail(.hiddenSize, "\(h) does not divide into \(n) heads, and no key length states the head size")
        }
        if spec.contextLength == nil, spec.table?.block != nil {
            warnings.append("\(spec.defaultKey(.contextLength)) is missing: the trained context is unknown (llama.cpp requires the key)")
        }

        // Numbers every forward pass computes with.
        if let base = spec.ropeFreqBase, !base.isFinite || base <= 0 {
            throw fail(.ropeFreqBase, "a rotary base of \(base): it must be a finite number above 0")
        }
        if let eps = spec.rmsNormEpsilon {
            guard eps.isFinite, eps > 0 else { throw fail(.rmsNormEpsilon, "a norm epsilon of \(eps): it must be a finite number above 0") }
            if eps > 0.01 { warnings.append("\(location(.rmsNormEpsilon).field) is \(eps), unusually large for a norm epsilon (models use 1e-6 to 1e-5)") }
        }
        if let s = spec.double(.expertWeightsScale), !s.isFinite || s <= 0 {
            throw fail(.expertWeightsScale, "an expert weight scale of \(s): it must be a finite number above 0")
        }
        if let m = spec.double(.yarnLogMultiplier), !m.isFinite {
            throw fail(.yarnLogMultiplier, "\(m) is not a finite number")
        }

        // Rotary dimensions: even, within the head; llama.cpp's llama takes only the whole head.
        if let rope = spec.int(.ropeDimensionCount), spec.table?.latentAttention != true {
            guard rope > 0, rope % 2 == 0 else { throw fail(.ropeDimensionCount, "\(rope) rotary dimensions: it must be even and at least 2") }
            if let head = spec.headDimension {
                if rope > head { throw fail(.ropeDimensionCount, "\(rope) rotary dimensions exceed the head size \(head)") }
                if spec.architecture == "llama", rope != head {
                    throw fail(.ropeDimensionCount, "\(rope) rotary dimensions; llama.cpp's llama rotates the whole head (\(head)): invalid n_rot")
                }
            }
        }

        // Experts, by llama.cpp's asserts.
        let experts = spec.expertCount ?? 0, used = spec.expertUsedCount ?? 0
        let groups = spec.int(.expertGroupCount) ?? 0, groupsUsed = spec.int(.expertGroupUsedCount) ?? 0
        if experts > maxExperts { throw fail(.expertCount, "\(experts) experts; llama.cpp takes at most \(maxExperts)") }
        if experts > 0 {
            if used < 1 || used > experts { throw fail(.expertUsedCount, "\(used) experts per token out of \(experts)") }
            if groups >= experts && groups > 1 { throw fail(.expertGroupCount, "\(groups) expert groups for \(experts) experts") }
            if groups > 1 {
                if experts % groups != 0 { throw fail(.expertGroupCount, "\(experts) experts do not divide into \(groups) groups") }
                if groupsUsed < 1 || groupsUsed >= groups {
                    throw fail(.expertGroupUsedCount, "\(groupsUsed) groups used of \(groups): llama.cpp takes 1 to \(groups - 1)")
                }
            }
        } else if used > 0 || groups > 1 {
            let f: SpecField = used > 0 ? .expertUsedCount : .expertGroupCount
            let message = "\(used > 0 ? "\(used) experts per token" : "\(groups) expert groups") without experts"
            if gguf { throw fail(f, message) }
            warnings.append("\(location(f).field): \(message); ignored")
        }

        // The tensors: no block beyond the block count (llama.cpp: "wrong number of tensors").
        if let blocks, let n = spec.layerCount, let extra = blocks.filter({ $0 >= n }).min() {
            throw fail(.layerCount, "\(n) blocks, but the file has tensors of block \(extra)")
        }
        return warnings
    }

    /// The check on a GGUF file: its keys, its `blk.N.` tensors, and the sizes its keys state against the shapes of
    /// the tensors every architecture shares (the embedding, norms, dense feed-forward and attention projections).
    public static func check(gguf g: GGUFFile) throws -> [String] {
        let spec = ModelSpec(gguf: g)
        let warnings = try check(spec, blocks: blockIndices(g.tensors.map(\.name)), path: g.path)
        try checkShapes(spec, g)
        return warnings
    }

    static func checkShapes(_ spec: ModelSpec, _ g: GGUFFile) throws {
        guard spec.table?.block != nil, let hidden = spec.hiddenSize else { return }
        func key(_ f: SpecField) -> String { spec.sources[f]?.field ?? spec.defaultKey(f) }
        func expect(_ t: GGUFTensorInfo, _ dims: [Int?], _ what: String) throws {
            let ok = t.dimensions.count == dims.count && zip(t.dimensions, dims).allSatisfy { $1 == nil || $0 == $1 }
            guard !ok else { return }
            let want = dims.reversed().map { $0.map(String.init) ?? "*" }.joined(separator: ", ")
            throw ModelError(.shapeMismatch, field: t.name, offset: t.infoOffset,
                             "is \(Array(t.dimensions.reversed())) where \(what) make it [\(want)]", path: g.path)
        }
        let latent = spec.table?.latentAttention == true
        let heads = spec.headCount, kvHeads = spec.kvHeadCount, headDim = spec.headDimension
        let valueDim = spec.int(.valueLength) ?? headDim
        for t in g.tensors {
            let name = t.name
            let role = name.hasPrefix("blk.") ? name.split(separator: ".", maxSplits: 2).last.map(String.init) ?? name : name
            switch role {
            case "token_embd.weight": try expect(t, [hidden, nil], key(.hiddenSize))
            case "output_norm.weight", "attn_norm.weight", "ffn_norm.weight": try expect(t, [hidden], key(.hiddenSize))
            case "ffn_gate.weight", "ffn_up.weight":
                try expect(t, [hidden, spec.feedForwardSize], "\(key(.hiddenSize)) and \(key(.feedForwardSize))")
            case "ffn_down.weight":
                try expect(t, [spec.feedForwardSize, hidden], "\(key(.feedForwardSize)) and \(key(.hiddenSize))")
            case "attn_q.weight" where !latent:
                try expect(t, [hidden, heads.flatMap { h in headDim.map { h * $0 } }], "\(key(.hiddenSize)), \(key(.headCount)) and the head size")
            case "attn_k.weight" where !latent:
                try expect(t, [hidden, kvHeads.flatMap { h in headDim.map { h * $0 } }], "\(key(.hiddenSize)), \(key(.kvHeadCount)) and the head size")
            case "attn_v.weight" where !latent:
                try expect(t, [hidden, kvHeads.flatMap { h in valueDim.map { h * $0 } }], "\(key(.hiddenSize)), \(key(.kvHeadCount)) and the head size")
            default: break
            }
        }
    }

    /// The check on any model: GGUF keys and tensors, or a folder's config.json; nothing for a lone safetensors file.
    public static func check(model: ModelFile) throws -> [String] {
        switch model.storage {
        case .gguf(let g): return try check(gguf: g)
        case .huggingFaceFolder(let d):
            guard d.config != nil else { return [] }
            return try check(ModelSpec(model: model), blocks: nil, path: (d.path) + "/config.json")
        case .safetensors: return []
        }
    }

    /// The N of every `blk.N.` tensor name.
    public static func blockIndices(_ names: [String]) -> Set<Int> {
        var out = Set<Int>()
        for n in names {
            guard let rest = n.dropPrefix("blk."), let dot = rest.firstIndex(of: "."),
                  rest[..<dot].allSatisfy({ $0.isASCII && $0.isNumber }), let i = Int(rest[..<dot]) else { continue }
            out.insert(i)
        }
        return out
    }
}
