import IngotFormats

/// The hyperparameters Ingot knows by name. Each architecture's table (`Architecture.hyperparameters`) says which
/// GGUF key and which `config.json` keys hold each one.
public enum SpecField: String, CaseIterable, Sendable {
    case layerCount, contextLength, hiddenSize, feedForwardSize, headCount, kvHeadCount, ropeFreqBase, rmsNormEpsilon
    case expertCount, expertUsedCount, keyLength, valueLength, vocabSize, ropeDimensionCount
    case expertFeedForwardSize, expertSharedFeedForwardSize, expertSharedCount, expertWeightsScale, expertWeightsNorm
    case leadingDenseBlockCount, qLoraRank, kvLoraRank
    case expertGroupCount, expertGroupUsedCount, expertGatingFunction
    /// Multi-head latent attention's per-head q/k width (nope + rope) and v width; `keyLength` and `valueLength` then
    /// state the latent width llama.cpp attends over (`ModelSpec.applyLatentAttentionRules`).
    case keyLengthMLA, valueLengthMLA
    /// 0.1 · YaRN's `mscale_all_dim` (DeepSeek).
    case yarnLogMultiplier
}

/// A hyperparameter's value.
public enum SpecValue: Equatable, Sendable {
    case int(Int), float(Double), bool(Bool)

    public var int: Int? { if case .int(let v) = self { return v }; return nil }
    public var double: Double? {
        switch self {
        case .int(let v): Double(v)
        case .float(let v): v
        case .bool: nil
        }
    }
}

/// Llama 3.1's frequency-dependent RoPE scaling (config `rope_scaling` with `rope_type: llama3`), which llama.cpp
/// stores as the per-frequency divisors of a `rope_freqs` tensor.
public struct RopeScaling: Equatable, Sendable {
    public var type: String
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalContext: Int

    public init(type: String, factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContext: Int) {
        self.type = type
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalContext = originalContext
    }

    /// The divisor of each of the `dims / 2` rotary frequencies, as llama.cpp's converter computes them
    /// (`LlamaModel.generate_extra_tensors`): 1 for wavelengths below `originalContext / highFreqFactor`, `factor`
    /// above `originalContext / lowFreqFactor`, and a smooth blend between.
    public func llama3Factors(base: Double, dims: Int) -> [Float] {
        let low = Double(originalContext) / lowFreqFactor, high = Double(originalContext) / highFreqFactor
        return stride(from: 0, to: dims, by: 2).map { i in
            // In double precision, rounded once. llama.cpp's converter computes in torch float32, whose vectorized pow
            // is not correctly rounded: the blended factors agree within a few ulps (tools/check-convert.py).
            let freq = 1 / pow(base, Double(i) / Double(dims))
            let wavelen = 2 * Double.pi / freq
            if wavelen < high { return 1 }
            if wavelen > low { return Float(factor) }
            let smooth = (Double(originalContext) / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
            return Float(1 / ((1 - smooth) / factor + smooth))
        }
    }
}

extension RopeScaling {
    /// The Llama 3.1 scaling whose factors `factors` are (a GGUF's `rope_freqs`), with Llama 3's low and high frequency
    /// factors (1 and 4): `factor` is the largest divisor, the original context follows from a blended one, and the
    /// whole table is recomputed and must agree within 1e-5. Nil when no such scaling gives these factors.
    public static func llama3(factors: [Float], base: Double, dims: Int) -> RopeScaling? {
        guard factors.count == dims / 2, let factor = factors.max(), factor > 1, factor.isFinite,
              let blended = factors.firstIndex(where: { $0 > 1 && $0 < factor }) else { return nil }
        let f = Double(factor), value = Double(factors[blended])
        let wavelen = 2 * Double.pi * pow(base, Double(2 * blended) / Double(dims))
        let smooth = (1 / value - 1 / f) / (1 - 1 / f)
        let original = (wavelen * (smooth * 3 + 1)).rounded()
        guard original.isFinite, original >= 1, original < 1e9 else { return nil }
        let s = RopeScaling(type: "llama3", factor: Double("\(factor)") ?? f, lowFreqFactor: 1, highFreqFactor: 4,
                            originalContext: Int(original))
        let again = s.llama3Factors(base: base, dims: dims)
        guard zip(again, factors).allSatisfy({ abs($0 - $1) <= 1e-5 * max(1, abs($1)) }) else { return nil }
        return s
    }

    /// config.json's `rope_scaling` object.
    public var json: JSONValue {
        .object(JSONObject([("rope_type", .string(type)), ("factor", .double(factor)), ("low_freq_factor", .double(lowFreqFactor)),
                            ("high_freq_factor", .double(highFreqFactor)), ("original_max_position_embeddings", JSONValue(originalContext))]))
    }
}

/// RoPE scaling that GGUF states in `{arch}.rope.scaling.*` keys (YaRN, linear), as opposed to Llama 3.1's, which
/// becomes a tensor. config.json `rope_scaling` holds the same values under Transformers' names.
public struct KeyedRopeScaling: Equatable, Sendable {
    /// `yarn` or `linear`.
    public var type: String
    public var factor: Double
    public var originalContext: Int?
    public var extrapolationFactor: Double?
    public var attentionFactor: Double?
    public var betaFast: Double?
    public var betaSlow: Double?
    /// DeepSeek's YaRN magnitude scales (config only; GGUF keeps 0.1 · mscale_all_dim as `yarn_log_multiplier`).
    public var mscale: Double?
    public var mscaleAllDim: Double?

    public static let types = ["yarn", "linear"]

    /// From config.json `rope_scaling` of a type GGUF states in keys; nil for any other.
    init?(config rs: JSONValue) {
        let type = rs["rope_type"]?.stringValue ?? rs["type"]?.stringValue ?? ""
        guard KeyedRopeScaling.types.contains(type), let factor = rs["factor"]?.doubleValue else { return nil }
        self.type = type
        self.factor = factor
        guard type == "yarn" else { return }
        originalContext = rs["original_max_position_embeddings"]?.intValue
        extrapolationFactor = rs["extrapolation_factor"]?.doubleValue
        attentionFactor = rs["attention_factor"]?.doubleValue ?? rs["attn_factor"]?.doubleValue
        betaFast = rs["beta_fast"]?.doubleValue
        betaSlow = rs["beta_slow"]?.doubleValue
        mscale = rs["mscale"]?.doubleValue
        mscaleAllDim = rs["mscale_all_dim"]?.doubleValue
    }

    /// From a GGUF's `{arch}.rope.scaling.*` keys; nil when they state none.
    init?(gguf g: GGUFFile, architecture a: String) {
        func number(_ k: String) -> Double? { g["\(a).rope.scaling.\(k)"]?.doubleValue }
        guard let type = g["\(a).rope.scaling.type"]?.stringValue, KeyedRopeScaling.types.contains(type),
              let factor = number("factor") else { return nil }
        self.type = type
        self.factor = factor
        originalContext = g["\(a).rope.scaling.original_context_length"]?.intValue
        extrapolationFactor = number("yarn_ext_factor")
        attentionFactor = number("yarn_attn_factor")
        betaFast = number("yarn_beta_fast")
        betaSlow = number("yarn_beta_slow")
        // DeepSeek's releases use one value for both.
        mscaleAllDim = number("yarn_log_multiplier").map { Double("\(Float($0 / 0.1))") ?? $0 / 0.1 }
        mscale = mscaleAllDim
    }

    /// The `{arch}.rope.scaling.*` keys in the order llama.cpp's converter writes them.
    func ggufKeys(architecture a: String) -> [GGUFKeyValue] {
        let p = "\(a).rope.scaling."
        var out = [GGUFKeyValue(p + "type", .string(GGUFString(type))), GGUFKeyValue(p + "factor", .float32(Float(factor)))]
        guard type == "yarn" else { return out }
        if let c = originalContext, c >= 0, c <= Int(UInt32.max) { out.append(GGUFKeyValue(p + "original_context_length", .uint32(UInt32(c)))) }
        for (k, v) in [("yarn_ext_factor", extrapolationFactor), ("yarn_attn_factor", attentionFactor),
                       ("yarn_beta_fast", betaFast), ("yarn_beta_slow", betaSlow)] {
            if let v { out.append(GGUFKeyValue(p + k, .float32(Float(v)))) }
        }
        return out
    }

    /// config.json's `rope_scaling` object.
    public var json: JSONValue {
        var o: [(String, JSONValue)] = [("type", .string(type)), ("factor", .double(factor))]
        if let c = originalContext { o.append(("original_max_position_embeddings", JSONValue(c))) }
        for (k, v) in [("extrapolation_factor", extrapolationFactor), ("attention_factor", attentionFactor), ("beta_fast", betaFast),
                       ("beta_slow", betaSlow), ("mscale", mscale), ("mscale_all_dim", mscaleAllDim)] {
            if let v { o.append((k, .double(v))) }
        }
        return .object(JSONObject(o))
    }
}

/// What a model is, in one vocabulary whether it was read from GGUF keys or from a Hugging Face `config.json`, and
/// the one place that reads and writes both: the keys come from the architecture's table (`Architecture`). Every
/// value is optional: a file states what it states, and nothing is guessed.
public struct ModelSpec: Equatable, Sendable {
    /// llama.cpp's name for the architecture (`llama`, `qwen2`), also when read from a config.json `model_type`
    /// (`mistral` and `mixtral` folders are llama.cpp's `llama`).
    public var architecture: String?
    /// config.json `model_type` as the folder states it.
    public var modelType: String?
    public var name: String?
    public var values: [SpecField: SpecValue] = [:]
    /// Where each value was read: the GGUF key or `config.json KEY`, and the byte offset when the format records one.
    public var sources: [SpecField: (field: String, offset: Int?)] = [:]
    /// GGUF `tokenizer.ggml.model` (`gpt2`, `llama`); for folders, which tokenizer file is present.
    public var tokenizer: String?
    /// True when the output projection reuses the token embedding (no `output.weight` in GGUF;
    /// config `tie_word_embeddings`).
    public var tiedEmbeddings: Bool?
    /// config.json `rope_scaling`, when it is Llama 3.1's (`rope_type: llama3`).
    public var ropeScaling: RopeScaling?
    /// RoPE scaling stated in GGUF keys (YaRN, linear), from GGUF or config.json.
    public var keyedRopeScaling: KeyedRopeScaling?
    /// config.json `rope_scaling` of another type (read so that it can be refused where it matters).
    public var otherRopeScaling: String?

    public init() {}

    public static func == (a: ModelSpec, b: ModelSpec) -> Bool {
        a.architecture == b.architecture && a.name == b.name && a.values == b.values && a.tokenizer == b.tokenizer
            && a.tiedEmbeddings == b.tiedEmbeddings && a.ropeScaling == b.ropeScaling && a.keyedRopeScaling == b.keyedRopeScaling
    }

    /// The architecture's table, when Ingot knows it.
    public var table: Architecture? { architecture.flatMap(Architecture.named) }

    public subscript(field: SpecField) -> SpecValue? {
        get { values[field] }
        set { values[field] = newValue }
    }

    public func int(_ f: SpecField) -> Int? { values[f]?.int }
    public func double(_ f: SpecField) -> Double? { values[f]?.double }

    public var layerCount: Int? { int(.layerCount) }
    public var contextLength: Int? { int(.contextLength) }
    public var hiddenSize: Int? { int(.hiddenSize) }
    public var feedForwardSize: Int? { int(.feedForwardSize) }
    public var headCount: Int? { int(.headCount) }
    public var kvHeadCount: Int? { int(.kvHeadCount) ?? headCount }
    public var ropeFreqBase: Double? { double(.ropeFreqBase) }
    public var rmsNormEpsilon: Double? { double(.rmsNormEpsilon) }
    public var vocabSize: Int? { int(.vocabSize) }
    public var expertCount: Int? { int(.expertCount) }
    public var expertUsedCount: Int? { int(.expertUsedCount) }

    /// Size of one attention head: `attention.key_length` / `head_dim` where stated, else hidden / heads.
    public var headDimension: Int? {
        if let k = int(.keyLength) { return k }
        guard let h = hiddenSize, let n = headCount, n > 0, h % n == 0 else { return nil }
        return h / n
    }

    /// Rotary dimensions per head: `rope.dimension_count` where stated, else the head size.
    public var ropeDimensions: Int? { int(.ropeDimensionCount) ?? headDimension }

    // MARK: reading

    /// Reads the llama.cpp keys of a GGUF file, through the architecture's table (the common keys for an
    /// architecture Ingot does not know).
    public init(gguf g: GGUFFile) {
        let arch = g["general.architecture"]?.stringValue
        architecture = arch
        name = g["general.name"]?.stringValue
        let params = arch.flatMap(Architecture.named)?.hyperparameters ?? Hyperparameter.common
        if let arch {
            for p in params {
                let key = "\(arch).\(p.gguf)"
                guard let kv = g.metadata.first(where: { $0.key == key }) else { continue }
                let value: SpecValue?
                switch p.kind {
                case .uint32, .named: value = kv.value.intValue.map(SpecValue.int)
                case .float32: value = kv.value.doubleValue.map(SpecValue.float)
                case .bool: value = kv.value.boolValue.map(SpecValue.bool)
                }
                if let value {
                    values[p.field] = value
                    sources[p.field] = (key, kv.fileOffset)
                }
            }
        }
        if let arch { keyedRopeScaling = KeyedRopeScaling(gguf: g, architecture: arch) }
        if values[.vocabSize] == nil, let n = g["tokenizer.ggml.tokens"]?.arrayValue?.count { values[.vocabSize] = .int(n) }
        tokenizer = g["tokenizer.ggml.model"]?.stringValue
        if g.tensor(named: "token_embd.weight") != nil {
            tiedEmbeddings = g.tensor(named: "output.weight") == nil
        }
    }

    /// Reads a Hugging Face `config.json` (and which tokenizer files sit beside it), through the table of its
    /// `model_type`.
    public init(config c: JSONValue, files: [String] = []) {
        modelType = c["model_type"]?.stringValue
        let table = modelType.flatMap(Architecture.forModelType)
        architecture = table?.name ?? modelType
        name = c["_name_or_path"]?.stringValue ?? c["architectures"]?.arrayValue?.first?.stringValue
        let object = c.objectValue
        for p in table?.hyperparameters ?? Hyperparameter.common where values[p.field] == nil {
            for key in p.config {
                guard let v = c[key], v != .null else { continue }
                let value: SpecValue?
                switch p.kind {
                case .uint32: value = v.intValue.map(SpecValue.int)
                case .float32: value = v.doubleValue.map(SpecValue.float)
                case .bool: value = v.boolValue.map(SpecValue.bool)
                case .named(let names): value = v.stringValue.flatMap { names[$0] }.map(SpecValue.int)
                }
                guard let value else { continue }
                values[p.field] = value
                let offset = object.flatMap { o in o.members.firstIndex { $0.key == key }.flatMap(o.offset(ofMember:)) }
                sources[p.field] = ("config.json \(key)", offset)
                break
            }
        }
        if values[.kvHeadCount] == nil, let h = values[.headCount] { values[.kvHeadCount] = h }
        // Where config.json has no key for the rotary dimensions, llama.cpp's converter writes the head size.
        if values[.ropeDimensionCount] == nil, let p = table?.hyperparameters.first(where: { $0.field == .ropeDimensionCount }),
           p.config.isEmpty, let d = headDimension {
            values[.ropeDimensionCount] = .int(d)
        }
        tiedEmbeddings = c["tie_word_embeddings"]?.boolValue
        if let rs = c["rope_scaling"], rs != .null {
            let type = rs["rope_type"]?.stringValue ?? rs["type"]?.stringValue ?? "?"
            if type == "llama3" {
                ropeScaling = RopeScaling(type: type, factor: rs["factor"]?.doubleValue ?? 8,
                                          lowFreqFactor: rs["low_freq_factor"]?.doubleValue ?? 1,
                                          highFreqFactor: rs["high_freq_factor"]?.doubleValue ?? 4,
                                          originalContext: rs["original_max_position_embeddings"]?.intValue ?? 8192)
            } else if let k = KeyedRopeScaling(config: rs) {
                keyedRopeScaling = k
            } else if type != "default" {
                otherRopeScaling = type
            }
        }
        if table?.latentAttention == true { applyLatentAttentionRules(config: c) }
        if files.contains("tokenizer.json") { tokenizer = "tokenizer.json" }
        else if files.contains("tokenizer.model") { tokenizer = "tokenizer.model" }
    }

    /// The spec of any model file: GGUF keys, or the folder's config.json.
    public init(model: ModelFile) {
        switch model.storage {
        case .gguf(let g): self.init(gguf: g)
        case .huggingFaceFolder(let d):
            if let c = d.config { self.init(config: c, files: d.files) } else { self.init() }
        case .safetensors: self.init()
        }
    }

    /// A positive integer hyperparameter below 2^24, or a typed error naming the key (and its offset) that should hold it.
    public func require(_ f: SpecField, path: String?) throws -> Int {
        guard let v = int(f), v > 0, v < 1 << 24 else {
            let where_ = sources[f] ?? (defaultKey(f), nil)
            throw ModelError(.missingField, field: where_.field, offset: where_.offset,
                             "a positive integer below 2^24 is required", path: path)
        }
        return v
    }

    func defaultKey(_ f: SpecField) -> String {
        guard let p = (table?.hyperparameters ?? Hyperparameter.common).first(where: { $0.field == f }) else { return f.rawValue }
        return "\(architecture ?? "?").\(p.gguf)"
    }

    // MARK: writing

    /// The `{arch}.*` keys of this spec in the table's order, as llama.cpp's converter writes them, with
    /// `general.file_type` where the converter puts it (after the common keys, before the architecture's own).
    public func ggufKeys(architecture table: Architecture, fileType: UInt32?) -> [GGUFKeyValue] {
        var out: [GGUFKeyValue] = []
        func put(_ p: Hyperparameter) {
            guard let v = values[p.field] else { return }
            let key = "\(table.name).\(p.gguf)"
            switch (p.kind, v) {
            case (.uint32, .int(let i)) where i >= 0 && i <= Int(UInt32.max), (.named, .int(let i)) where i >= 0 && i <= Int(UInt32.max):
                out.append(GGUFKeyValue(key, .uint32(UInt32(i))))
            case (.float32, _): if let d = v.double { out.append(GGUFKeyValue(key, .float32(Float(d)))) }
            case (.bool, .bool(let b)): out.append(GGUFKeyValue(key, .bool(b)))
            default: break
            }
        }
        for p in Hyperparameter.common {
            put(p)
            // The scaling keys follow the KV head count, as llama.cpp's converter writes them.
            if p.field == .kvHeadCount, let k = keyedRopeScaling { out += k.ggufKeys(architecture: table.name) }
        }
        if let fileType { out.append(GGUFKeyValue("general.file_type", .uint32(fileType))) }
        table.extraHyperparameters.forEach(put)
        return out
    }

    /// The hyperparameters as `config.json` members (each key once; the first config key of each entry).
    public func configMembers(architecture table: Architecture) -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        var written = Set<String>()
        // Latent attention's key/value lengths are the latent width, not a head size config.json states.
        let skipped: Set<SpecField> = table.latentAttention ? [.keyLength, .valueLength, .kvHeadCount] : []
        for p in table.hyperparameters where !skipped.contains(p.field) {
            guard let key = table.configKeys[p.field] ?? p.config.first, let v = values[p.field], written.insert(key).inserted else { continue }
            switch (p.kind, v) {
            case (.named(let names), .int(let i)):
                if let name = names.first(where: { $0.value == i })?.key { out.append((key, .string(name))) }
            case (_, .int(let i)): out.append((key, JSONValue(i)))
            case (_, .float(let d)): out.append((key, .double(d)))
            case (_, .bool(let b)): out.append((key, .bool(b)))
            }
        }
        if table.latentAttention { out += latentAttentionConfig() }
        return out
    }

    // MARK: multi-head latent attention

    /// llama.cpp's reading of a DeepSeek-V2/V3 config.json (`DeepseekV2Model.set_gguf_parameters`): the attention is
    /// stated as one KV head whose key is the latent plus the rotary part (kv_lora_rank + qk_rope_head_dim) and whose
    /// value is the latent; the per-head widths go to `key_length_mla` (qk_nope_head_dim + qk_rope_head_dim) and
    /// `value_length_mla`. Defaults where the config is silent: kv_lora_rank 512, rms_norm_eps 1e-6, no shared
    /// experts, leading dense blocks all (no experts) or none; `norm_topk_prob` is written only when true, and
    /// 0.1 · mscale_all_dim of YaRN as `yarn_log_multiplier`.
    mutating func applyLatentAttentionRules(config c: JSONValue) {
        let kvLora = int(.kvLoraRank) ?? 512
        values[.kvLoraRank] = .int(kvLora)
        values[.kvHeadCount] = .int(1)
        if let rope = int(.ropeDimensionCount) {
            values[.keyLength] = .int(kvLora + rope)
            if let nope = c["qk_nope_head_dim"]?.intValue { values[.keyLengthMLA] = .int(nope + rope) }
        }
        values[.valueLength] = .int(kvLora)
        if values[.rmsNormEpsilon] == nil { values[.rmsNormEpsilon] = .float(1e-6) }
        if values[.leadingDenseBlockCount] == nil, let layers = int(.layerCount) {
            values[.leadingDenseBlockCount] = .int(values[.expertCount] == nil ? layers : 0)
        }
        if values[.expertSharedCount] == nil { values[.expertSharedCount] = .int(0) }
        if values[.expertWeightsNorm] != .bool(true) { values[.expertWeightsNorm] = nil }
        if let m = keyedRopeScaling?.mscaleAllDim { values[.yarnLogMultiplier] = .float(0.1 * m) }
    }

    /// The config.json members latent attention needs beyond the table's (the inverse of
    /// `applyLatentAttentionRules`).
    func latentAttentionConfig() -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        if let h = headCount { out.append(("num_key_value_heads", JSONValue(h))) }
        if let k = int(.keyLengthMLA), let r = int(.ropeDimensionCount) { out.append(("qk_nope_head_dim", JSONValue(k - r))) }
        // Transformers' DeepSeek configs default to a low-rank query; a model without one must say so.
        if int(.qLoraRank) == nil { out.append(("q_lora_rank", .null)) }
        if values[.expertWeightsNorm] == nil { out.append(("norm_topk_prob", .bool(false))) }
        return out
    }

    public var json: JSONValue {
        var o = JSONObject()
        func put(_ k: String, _ v: JSONValue?) { if let v { o.members.append((key: k, value: v)) } }
        put("architecture", architecture.map { .string($0) })
        put("name", name.map { .string($0) })
        put("layerCount", layerCount.map { JSONValue($0) })
        put("contextLength", contextLength.map { JSONValue($0) })
        put("hiddenSize", hiddenSize.map { JSONValue($0) })
        put("feedForwardSize", feedForwardSize.map { JSONValue($0) })
        put("headCount", headCount.map { JSONValue($0) })
        put("kvHeadCount", kvHeadCount.map { JSONValue($0) })
        put("headDimension", headDimension.map { JSONValue($0) })
        put("ropeFreqBase", ropeFreqBase.map { .double($0) })
        put("rmsNormEpsilon", rmsNormEpsilon.map { .double($0) })
        put("vocabSize", vocabSize.map { JSONValue($0) })
        put("expertCount", expertCount.map { JSONValue($0) })
        put("expertUsedCount", expertUsedCount.map { JSONValue($0) })
        for f in SpecField.allCases where ![.layerCount, .contextLength, .hiddenSize, .feedForwardSize, .headCount, .kvHeadCount,
                                            .ropeFreqBase, .rmsNormEpsilon, .vocabSize, .expertCount, .expertUsedCount].contains(f) {
            switch values[f] {
            case .int(let i)?: put(f.rawValue, JSONValue(i))
            case .float(let d)?: put(f.rawValue, .double(d))
            case .bool(let b)?: put(f.rawValue, .bool(b))
            case nil: break
            }
        }
        put("tokenizer", tokenizer.map { .string($0) })
        put("tiedEmbeddings", tiedEmbeddings.map { .bool($0) })
        return .object(o)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
