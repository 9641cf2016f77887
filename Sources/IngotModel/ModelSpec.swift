import IngotFormats

/// What a model is, in one vocabulary whether it was read from GGUF keys or from a Hugging Face
/// `config.json`. Every field is optional: a file states what it states, and nothing is guessed.
public struct ModelSpec: Equatable, Sendable {
    /// GGUF `general.architecture` (`llama`, `qwen2`) or config.json `model_type`.
    public var architecture: String?
    public var name: String?
    /// Transformer blocks: GGUF `{arch}.block_count`, config `num_hidden_layers`.
    public var layerCount: Int?
    /// GGUF `{arch}.context_length`, config `max_position_embeddings`.
    public var contextLength: Int?
    /// GGUF `{arch}.embedding_length`, config `hidden_size`.
    public var hiddenSize: Int?
    /// GGUF `{arch}.feed_forward_length`, config `intermediate_size`.
    public var feedForwardSize: Int?
    /// GGUF `{arch}.attention.head_count`, config `num_attention_heads`.
    public var headCount: Int?
    /// GGUF `{arch}.attention.head_count_kv`, config `num_key_value_heads` (defaults to headCount there).
    public var kvHeadCount: Int?
    /// GGUF `{arch}.rope.freq_base`, config `rope_theta`.
    public var ropeFreqBase: Double?
    /// GGUF `{arch}.attention.layer_norm_rms_epsilon`, config `rms_norm_eps`.
    public var rmsNormEpsilon: Double?
    /// GGUF `{arch}.vocab_size` or the length of `tokenizer.ggml.tokens`; config `vocab_size`.
    public var vocabSize: Int?
    /// GGUF `{arch}.expert_count`; config `num_local_experts` / `num_experts` / `n_routed_experts`.
    public var expertCount: Int?
    /// GGUF `{arch}.expert_used_count`; config `num_experts_per_tok`.
    public var expertUsedCount: Int?
    /// GGUF `tokenizer.ggml.model` (`gpt2`, `llama`); for folders, which tokenizer file is present.
    public var tokenizer: String?
    /// True when the output projection reuses the token embedding (no `output.weight` in GGUF;
    /// config `tie_word_embeddings`).
    public var tiedEmbeddings: Bool?

    public init() {}

    public var headDimension: Int? {
        guard let h = hiddenSize, let n = headCount, n > 0, h % n == 0 else { return nil }
        return h / n
    }

    /// Reads the llama.cpp keys of a GGUF file.
    public init(gguf g: GGUFFile) {
        let arch = g["general.architecture"]?.stringValue
        func int(_ key: String) -> Int? { arch.flatMap { g["\($0).\(key)"]?.intValue } }
        func double(_ key: String) -> Double? { arch.flatMap { g["\($0).\(key)"]?.doubleValue } }
        architecture = arch
        name = g["general.name"]?.stringValue
        layerCount = int("block_count")
        contextLength = int("context_length")
        hiddenSize = int("embedding_length")
        feedForwardSize = int("feed_forward_length")
        headCount = int("attention.head_count")
        kvHeadCount = int("attention.head_count_kv") ?? headCount
        ropeFreqBase = double("rope.freq_base")
        rmsNormEpsilon = double("attention.layer_norm_rms_epsilon")
        vocabSize = int("vocab_size") ?? g["tokenizer.ggml.tokens"]?.arrayValue?.count
        expertCount = int("expert_count")
        expertUsedCount = int("expert_used_count")
        tokenizer = g["tokenizer.ggml.model"]?.stringValue
        if g.tensor(named: "token_embd.weight") != nil {
            tiedEmbeddings = g.tensor(named: "output.weight") == nil
        }
    }

    /// Reads a Hugging Face `config.json` (and which tokenizer files sit beside it).
    public init(config c: JSONValue, files: [String] = []) {
        func int(_ keys: String...) -> Int? { keys.lazy.compactMap { c[$0]?.intValue }.first }
        architecture = c["model_type"]?.stringValue
        name = c["_name_or_path"]?.stringValue ?? c["architectures"]?.arrayValue?.first?.stringValue
        layerCount = int("num_hidden_layers", "n_layer", "num_layers")
        contextLength = int("max_position_embeddings", "n_positions")
        hiddenSize = int("hidden_size", "n_embd")
        feedForwardSize = int("intermediate_size", "n_inner")
        headCount = int("num_attention_heads", "n_head")
        kvHeadCount = int("num_key_value_heads") ?? headCount
        ropeFreqBase = c["rope_theta"]?.doubleValue
        rmsNormEpsilon = c["rms_norm_eps"]?.doubleValue
        vocabSize = int("vocab_size")
        expertCount = int("num_local_experts", "num_experts", "n_routed_experts")
        expertUsedCount = int("num_experts_per_tok")
        tiedEmbeddings = c["tie_word_embeddings"]?.boolValue
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
        put("tokenizer", tokenizer.map { .string($0) })
        put("tiedEmbeddings", tiedEmbeddings.map { .bool($0) })
        return .object(o)
    }
}
