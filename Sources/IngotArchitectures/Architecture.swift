import IngotFormats

/// One architecture, described once in both vocabularies: llama.cpp's GGUF (`general.architecture`, `{arch}.*` keys,
/// `blk.N.attn_q.weight`) and Hugging Face Transformers' (`config.json` `model_type`, `model.layers.N.self_attn.q_proj.weight`).
///
/// Everything that reads or writes a model asks this table: `ModelSpec` reads and writes the hyperparameters through
/// `hyperparameters`, conversion maps names through `tensors` and permutes q/k rows where `permutesQK` says so, and the
/// forward pass finds its weights by their GGUF names. Adding an architecture is adding one entry to `Architecture.all`
/// (see Architectures.swift), the way llama.cpp keeps one tensor list per architecture and mlx-lm one short file.
public struct Architecture: Sendable {
    /// GGUF `general.architecture` (`llama`, `qwen2`, `deepseek2`).
    public let name: String
    /// `config.json` `model_type` values that mean this architecture; the first is written.
    public let modelTypes: [String]
    /// `config.json` `architectures[0]`, the Transformers class written for a dense model.
    public let className: String
    /// The class written when the model has experts (Mixtral is llama.cpp's `llama` with experts).
    public let expertClassName: String?
    /// The `model_type` written when the model has experts.
    public let expertModelType: String?
    /// Hyperparameters beyond `Hyperparameter.common`, in the order llama.cpp's converter writes them.
    public let extraHyperparameters: [Hyperparameter]
    /// Every tensor the architecture may hold.
    public let tensors: [TensorRole]
    /// llama.cpp's converter reorders the rows of each q and k head from Hugging Face's rotary layout (the two halves
    /// of a head rotate together) to adjacent pairs (`LlamaModel.permute`), so llama.cpp rotates (2i, 2i+1).
    /// Architectures without it keep Hugging Face's layout and llama.cpp rotates (i, i + d/2) ("NeoX" style).
    public let permutesQK: Bool
    /// `config.json` keys written with fixed values for Transformers (activation, bias flags).
    public let configConstants: [(String, JSONValue)]
    /// The config.json key written for a hyperparameter where this architecture's Transformers config names it
    /// differently from the first key of its table entry (Qwen-MoE: `num_experts`, not `num_local_experts`).
    public let configKeys: [SpecField: String]
    /// llama.cpp's converter reads the llama family's tokenizer with two extra rules (`LlamaModel.set_vocab`):
    /// tokenizer_config.json `add_prefix_space` becomes `tokenizer.ggml.add_space_prefix`, and a vocabulary of 49152
    /// tokens (Granite, SmolLM) never adds BOS.
    public let llamaVocabRules: Bool
    /// How the forward pass composes one block of this architecture from its parts; nil where Ingot converts the
    /// architecture but does not run it yet.
    public let block: BlockShape?
    /// Multi-head latent attention (DeepSeek-V2/V3): llama.cpp stores the kv up-projection `kv_b` split per head into
    /// `k_b` (transposed) and `v_b`, and states the attention as one KV head of the latent width
    /// (`ModelSpec.applyLatentAttentionRules`).
    public let latentAttention: Bool

    /// How RoPE pairs the dimensions of a head in the GGUF layout.
    public var ggufRopeStyle: RopeStyle { permutesQK ? .adjacentPairs : .halves }

    /// All hyperparameters, common ones first.
    public var hyperparameters: [Hyperparameter] { Hyperparameter.common + extraHyperparameters }

    public init(name: String, modelTypes: [String], className: String, expertClassName: String? = nil,
                expertModelType: String? = nil, extraHyperparameters: [Hyperparameter] = [], tensors: [TensorRole],
                permutesQK: Bool, configConstants: [(String, JSONValue)] = [], configKeys: [SpecField: String] = [:],
                llamaVocabRules: Bool = false, block: BlockShape? = nil, latentAttention: Bool = false) {
        self.name = name
        self.modelTypes = modelTypes
        self.className = className
        self.expertClassName = expertClassName
        self.expertModelType = expertModelType
        self.extraHyperparameters = extraHyperparameters
        self.tensors = tensors
        self.permutesQK = permutesQK
        self.configConstants = configConstants
        self.llamaVocabRules = llamaVocabRules
        self.configKeys = configKeys
        self.block = block
        self.latentAttention = latentAttention
    }

    /// The architecture llama.cpp calls `name`.
    public static func named(_ name: String) -> Architecture? { all.first { $0.name == name } }

    /// The architecture of a `config.json` `model_type`.
    public static func forModelType(_ type: String) -> Architecture? {
        all.first { $0.modelTypes.contains(type) || $0.expertModelType == type }
    }

    /// The names every architecture knows, for error messages.
    public static var supportedNames: String { all.map(\.name).joined(separator: ", ") }

    // MARK: tensor names

    /// The GGUF name of a Hugging Face tensor: `model.layers.3.self_attn.q_proj.weight` -> (`blk.3.attn_q.weight`,
    /// role attn_q). An expert's tensor `model.layers.3.mlp.experts.7.gate_proj.weight` maps to the stacked
    /// `blk.3.ffn_gate_exps.weight` with `expert` 7. What follows the role's stem (`.weight`, `.bias`,
    /// `.weight_scale_inv`) is carried over; the longest matching stem wins (`mlp.gate.e_score_correction_bias`
    /// before `mlp.gate`). Nil when the name is not one of this architecture's.
    public func ggufName(forHF name: String) -> MappedName? {
        var best: (role: TensorRole, layer: Int?, expert: Int?, suffix: Substring)?
        for role in tensors {
            guard let m = role.match(hf: name), role.hf.count > (best?.role.hf.count ?? -1) else { continue }
            best = (role, m.layer, m.expert, m.suffix)
        }
        guard let b = best else { return nil }
        return MappedName(name: b.role.ggufName(layer: b.layer) + b.suffix, role: b.role, layer: b.layer, expert: b.expert)
    }

    /// The Hugging Face name of a GGUF tensor; for a stacked expert tensor, use `MappedName.hfName(expert:)` for
    /// each expert's name.
    public func hfName(forGGUF name: String) -> MappedName? {
        var best: (role: TensorRole, layer: Int?, suffix: Substring)?
        for role in tensors {
            guard let m = role.match(gguf: name), role.gguf.count > (best?.role.gguf.count ?? -1) else { continue }
            best = (role, m.layer, m.suffix)
        }
        guard let b = best else { return nil }
        return MappedName(name: b.role.hfName(layer: b.layer, expert: nil) + b.suffix, role: b.role, layer: b.layer,
                          expert: nil, suffix: String(b.suffix))
    }

    /// The role llama.cpp names `gguf` (`attn_q`, `ffn_gate_exps`).
    public func role(_ gguf: String) -> TensorRole? { tensors.first { $0.gguf == gguf } }
}

/// How a tensor name was mapped.
public struct MappedName: Equatable, Sendable {
    public var name: String
    public var role: TensorRole
    /// The block index, for per-layer tensors.
    public var layer: Int?
    /// The expert index of a Hugging Face per-expert tensor.
    public var expert: Int?
    /// What followed the role's stem (`.weight`).
    public var suffix: String = ""

    /// The Hugging Face name of expert `x` of a stacked GGUF tensor.
    public func hfName(expert x: Int) -> String { role.hfName(layer: layer, expert: x) + suffix }
}

/// The parts one block is made of, in order, each a pre-norm residual branch (`x += part(rmsnorm(x) · norm)`): what
/// the forward pass builds for an architecture. A new architecture that reuses the parts is a new value here, not new
/// forward-pass code.
public struct BlockShape: Sendable, Equatable {
    /// The token-mixing branch.
    public enum Attention: Sendable, Equatable {
        /// q, k, v and output projections (biases on q, k, v where the model has them), KV heads shared by groups of
        /// query heads, RoPE; `headNorms` adds an RMS norm over each q and k head before RoPE (Qwen3).
        case grouped(headNorms: Bool)
        /// Multi-head latent attention (DeepSeek-V2/V3), as llama.cpp runs it with the kv up-projection absorbed:
        /// every head attends over one latent key and value per token (`attn_kv_a_mqa`, `attn_k_b`, `attn_v_b`).
        case latent
    }

    /// The per-token branch.
    public enum FeedForward: Sendable, Equatable {
        /// (silu(x·Wgateᵀ) ⊙ x·Wupᵀ)·Wdownᵀ.
        case gatedSiLU
    }

    /// How the experts of a block are routed and combined (llama.cpp's `build_moe_ffn` arguments for the
    /// architecture). A block runs them in place of `feedForward` when the model has experts (`expert_count` > 0)
    /// and the block is past the leading dense ones.
    public struct Experts: Sendable, Equatable {
        /// What turns router logits into expert probabilities.
        public enum Gating: Sendable, Equatable {
            /// softmax over all experts (Mixtral, Qwen-MoE, DeepSeek-V2).
            case softmax
            /// sigmoid of each logit on its own (DeepSeek-V3).
            case sigmoid
        }

        /// The expert every token goes through besides the routed ones.
        public enum Shared: Sendable, Equatable {
            case none
            /// `ffn_{gate,up,down}_shexp`, its output multiplied by sigmoid(x · `ffn_gate_inp_shexp`) (Qwen2-MoE).
            case sigmoidGated
            /// `ffn_{gate,up,down}_shexp` added as it is (DeepSeek's shared experts, stored as one wider expert).
            case plain
        }

        /// nil: as the model's `expert_gating_func` says (softmax where it says nothing, as llama.cpp reads
        /// DeepSeek-V2 files).
        public let gating: Gating?
        /// Divide the chosen experts' probabilities by their sum (llama.cpp's `norm_w`); nil: as the model's
        /// `expert_weights_norm` says (no where it says nothing).
        public let normalizeWeights: Bool?
        public let shared: Shared

        public init(gating: Gating?, normalizeWeights: Bool?, shared: Shared = .none) {
            self.gating = gating
            self.normalizeWeights = normalizeWeights
            self.shared = shared
        }
    }

    public let attention: Attention
    public let feedForward: FeedForward
    /// The routed branch of blocks with experts; nil where the architecture has none.
    public let experts: Experts?

    public init(attention: Attention, feedForward: FeedForward, experts: Experts? = nil) {
        self.attention = attention
        self.feedForward = feedForward
        self.experts = experts
    }
}

/// RoPE's pairing of the dimensions of one head.
public enum RopeStyle: String, Sendable {
    /// (2i, 2i+1): llama.cpp's llama after the converter's q/k permutation.
    case adjacentPairs = "norm"
    /// (i, i + d/2): Hugging Face's `rotate_half`, and llama.cpp's NeoX-style architectures (qwen2, qwen3).
    case halves = "neox"
}

/// One tensor of an architecture: its GGUF stem (`attn_q`), its Hugging Face stem (`self_attn.q_proj`) and where it
/// lives. The suffix (`.weight`, `.bias`, `.weight_scale_inv`) is carried over unchanged.
public struct TensorRole: Equatable, Sendable {
    public enum Scope: Equatable, Sendable {
        /// One tensor for the model (`token_embd` <-> `model.embed_tokens`).
        case model
        /// One per block (`blk.N.attn_q` <-> `model.layers.N.self_attn.q_proj`).
        case layer
        /// One per block, all experts stacked on a leading axis in GGUF (`blk.N.ffn_gate_exps`, [experts, rows, cols])
        /// and one tensor per expert in Hugging Face folders (`model.layers.N.mlp.experts.E.gate_proj`).
        case expertStack
    }

    /// Which rows of a q/k projection the converter permutes, and by which head count.
    public enum Permutation: Equatable, Sendable { case queryHeads, keyValueHeads }

    public let gguf: String
    public let hf: String
    public let scope: Scope
    /// Set for the q and k projections (weights and biases) of architectures that permute them.
    public let permutation: Permutation?
    /// Stored as F32 whatever the output type (llama.cpp keeps norms, 1-D tensors and routers in F32).
    public let keepsF32: Bool

    public init(_ gguf: String, _ hf: String, _ scope: Scope = .layer, permutation: Permutation? = nil, keepsF32: Bool = false) {
        self.gguf = gguf
        self.hf = hf
        self.scope = scope
        self.permutation = permutation
        self.keepsF32 = keepsF32
    }

    func ggufName(layer: Int?) -> String {
        switch scope {
        case .model: gguf
        case .layer, .expertStack: "blk.\(layer ?? 0).\(gguf)"
        }
    }

    func hfName(layer: Int?, expert: Int?) -> String {
        switch scope {
        case .model: hf
        case .layer: "model.layers.\(layer ?? 0).\(hf)"
        case .expertStack: "model.layers.\(layer ?? 0).\(hf.replacingFirst("{x}", with: String(expert ?? 0)))"
        }
    }

    /// `rest` is `stem` or `stem.suffix`: returns the suffix (with its dot).
    static func after(_ stem: Substring, _ rest: Substring) -> Substring? {
        guard rest.hasPrefix(stem) else { return nil }
        let tail = rest.dropFirst(stem.count)
        return tail.isEmpty || tail.hasPrefix(".") ? tail : nil
    }

    /// Matches a GGUF name: the layer (nil for model tensors) and what follows the stem.
    func match(gguf name: String) -> (layer: Int?, suffix: Substring)? {
        switch scope {
        case .model:
            return TensorRole.after(gguf[...], name[...]).map { (nil, $0) }
        case .layer, .expertStack:
            guard let rest = name.dropPrefix("blk."), let dot = rest.firstIndex(of: "."),
                  rest[..<dot].allSatisfy({ $0.isASCII && $0.isNumber }), let layer = Int(rest[..<dot]),
                  let suffix = TensorRole.after(gguf[...], rest[rest.index(after: dot)...]) else { return nil }
            return (layer, suffix)
        }
    }

    /// Matches a Hugging Face name: layer, expert and what follows the stem.
    func match(hf name: String) -> (layer: Int?, expert: Int?, suffix: Substring)? {
        switch scope {
        case .model:
            return TensorRole.after(hf[...], name[...]).map { (nil, nil, $0) }
        case .layer:
            guard let (layer, rest) = TensorRole.layerPrefix(name), let suffix = TensorRole.after(hf[...], rest) else { return nil }
            return (layer, nil, suffix)
        case .expertStack:
            guard let (layer, rest) = TensorRole.layerPrefix(name), let x = hf.firstRange(of: "{x}") else { return nil }
            let head = hf[..<x.lowerBound], tail = hf[x.upperBound...]
            guard rest.hasPrefix(head) else { return nil }
            let afterHead = rest.dropFirst(head.count)
            let digits = afterHead.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let e = Int(digits), let suffix = TensorRole.after(tail, afterHead.dropFirst(digits.count))
            else { return nil }
            return (layer, e, suffix)
        }
    }

    /// `model.layers.N.rest` -> (N, rest).
    static func layerPrefix(_ stem: String) -> (Int, Substring)? {
        guard let rest = stem.dropPrefix("model.layers."), let dot = rest.firstIndex(of: "."),
              rest[..<dot].allSatisfy({ $0.isASCII && $0.isNumber }), let layer = Int(rest[..<dot]) else { return nil }
        return (layer, rest[rest.index(after: dot)...])
    }
}

/// One hyperparameter in both vocabularies: the GGUF key (after `{arch}.`), its GGUF value type, and the
/// `config.json` keys that hold it (the first is written; the others are read, as llama.cpp's converter reads them).
public struct Hyperparameter: Sendable {
    public enum Kind: Sendable {
        case uint32, float32, bool
        /// A uint32 in GGUF that config.json names by a string (`scoring_func: sigmoid` is expert_gating_func 2).
        case named([String: Int])
    }

    public let field: SpecField
    public let gguf: String
    public let kind: Kind
    public let config: [String]

    public init(_ field: SpecField, gguf: String, _ kind: Kind, config: [String]) {
        self.field = field
        self.gguf = gguf
        self.kind = kind
        self.config = config
    }

    /// The hyperparameters every architecture has, in the order llama.cpp's converter writes them
    /// (`TextModel.set_gguf_parameters`), before `general.file_type`.
    public static let common: [Hyperparameter] = [
        .init(.layerCount, gguf: "block_count", .uint32, config: ["num_hidden_layers", "n_layer", "num_layers"]),
        .init(.contextLength, gguf: "context_length", .uint32, config: ["max_position_embeddings", "n_ctx", "n_positions"]),
        .init(.hiddenSize, gguf: "embedding_length", .uint32, config: ["hidden_size", "n_embd", "dim"]),
        .init(.feedForwardSize, gguf: "feed_forward_length", .uint32, config: ["intermediate_size", "n_inner", "hidden_dim"]),
        .init(.headCount, gguf: "attention.head_count", .uint32, config: ["num_attention_heads", "n_head", "n_heads"]),
        .init(.kvHeadCount, gguf: "attention.head_count_kv", .uint32, config: ["num_key_value_heads", "n_kv_heads"]),
        .init(.ropeFreqBase, gguf: "rope.freq_base", .float32, config: ["rope_theta"]),
        .init(.rmsNormEpsilon, gguf: "attention.layer_norm_rms_epsilon", .float32, config: ["rms_norm_eps", "norm_eps"]),
        .init(.expertCount, gguf: "expert_count", .uint32, config: ["num_local_experts", "num_experts", "n_routed_experts"]),
        .init(.expertUsedCount, gguf: "expert_used_count", .uint32, config: ["num_experts_per_tok", "num_experts_per_token"]),
        .init(.expertGroupCount, gguf: "expert_group_count", .uint32, config: ["n_group"]),
        .init(.expertGroupUsedCount, gguf: "expert_group_used_count", .uint32, config: ["topk_group"]),
        // gguf-py's ExpertGatingFuncType.
        .init(.expertGatingFunction, gguf: "expert_gating_func", .named(["softmax": 1, "sigmoid": 2, "sqrtsoftplus": 4]),
              config: ["scoring_func", "score_function", "score_func"]),
        .init(.keyLength, gguf: "attention.key_length", .uint32, config: ["head_dim"]),
        .init(.valueLength, gguf: "attention.value_length", .uint32, config: ["head_dim"]),
    ]
}

extension String {
    func dropPrefix(_ p: String) -> Substring? { hasPrefix(p) ? dropFirst(p.count) : nil }

    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = firstRange(of: target) else { return self }
        return String(self[..<r.lowerBound]) + replacement + String(self[r.upperBound...])
    }
}
