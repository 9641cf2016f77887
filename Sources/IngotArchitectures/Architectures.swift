import IngotFormats

// The architectures Ingot knows, one entry each. Names checked against llama.cpp's gguf-py (`MODEL_TENSORS`,
// `tensor_mapping.py`) and its converter (`conversion/llama.py`, `qwen.py`, `deepseek.py`).

extension Architecture {
    public static let all: [Architecture] = [llama, mistral, qwen2, qwen3, qwen2moe, qwen3moe, deepseek2]

    /// Tensors every decoder of the llama family has.
    static let baseTensors: [TensorRole] = [
        .init("token_embd", "model.embed_tokens", .model),
        .init("output_norm", "model.norm", .model, keepsF32: true),
        .init("output", "lm_head", .model),
        .init("rope_freqs", "rope_freqs", .model, keepsF32: true),
        .init("attn_norm", "input_layernorm", keepsF32: true),
        .init("attn_v", "self_attn.v_proj"),
        .init("attn_output", "self_attn.o_proj"),
        .init("ffn_norm", "post_attention_layernorm", keepsF32: true),
    ]

    static func qk(permuted: Bool) -> [TensorRole] {
        [.init("attn_q", "self_attn.q_proj", permutation: permuted ? .queryHeads : nil),
         .init("attn_k", "self_attn.k_proj", permutation: permuted ? .keyValueHeads : nil)]
    }

    static let denseMLP: [TensorRole] = [
        .init("ffn_gate", "mlp.gate_proj"), .init("ffn_up", "mlp.up_proj"), .init("ffn_down", "mlp.down_proj"),
    ]

    static let qkNorms: [TensorRole] = [
        .init("attn_q_norm", "self_attn.q_norm", keepsF32: true), .init("attn_k_norm", "self_attn.k_norm", keepsF32: true),
    ]

    /// Experts as Qwen-MoE and DeepSeek name them (`mlp.gate` routes, `mlp.experts.E.*_proj`).
    static let qwenExperts: [TensorRole] = [
        .init("ffn_gate_inp", "mlp.gate", keepsF32: true),
        .init("ffn_gate_exps", "mlp.experts.{x}.gate_proj", .expertStack),
        .init("ffn_up_exps", "mlp.experts.{x}.up_proj", .expertStack),
        .init("ffn_down_exps", "mlp.experts.{x}.down_proj", .expertStack),
    ]

    /// Llama 2/3/3.1-3.3, SmolLM, Mistral (llama.cpp converts MistralForCausalLM to `llama`), and Mixtral: llama with
    /// experts (`block_sparse_moe`, w1 = gate, w3 = up, w2 = down).
    public static let llama = Architecture(
        name: "llama", modelTypes: ["llama", "mistral"], className: "LlamaForCausalLM",
        expertClassName: "MixtralForCausalLM", expertModelType: "mixtral",
        extraHyperparameters: [
            .init(.vocabSize, gguf: "vocab_size", .uint32, config: ["vocab_size"]),
            .init(.ropeDimensionCount, gguf: "rope.dimension_count", .uint32, config: []),
        ],
        tensors: baseTensors + qk(permuted: true) + denseMLP + [
            .init("ffn_gate_inp", "block_sparse_moe.gate", keepsF32: true),
            .init("ffn_gate_exps", "block_sparse_moe.experts.{x}.w1", .expertStack),
            .init("ffn_up_exps", "block_sparse_moe.experts.{x}.w3", .expertStack),
            .init("ffn_down_exps", "block_sparse_moe.experts.{x}.w2", .expertStack),
        ],
        permutesQK: true,
        configConstants: [("hidden_act", .string("silu")), ("attention_bias", .bool(false)), ("mlp_bias", .bool(false))],
        llamaVocabRules: true, block: .init(attention: .grouped(headNorms: false), feedForward: .gatedSiLU,
                                            experts: .init(gating: .softmax, normalizeWeights: true)))

    /// GGUF files whose `general.architecture` is `mistral` (older converters); written back as MistralForCausalLM.
    public static let mistral = Architecture(
        name: "mistral", modelTypes: ["mistral"], className: "MistralForCausalLM",
        extraHyperparameters: llama.extraHyperparameters,
        tensors: baseTensors + qk(permuted: true) + denseMLP, permutesQK: true,
        configConstants: [("hidden_act", .string("silu"))], llamaVocabRules: true,
        block: .init(attention: .grouped(headNorms: false), feedForward: .gatedSiLU))

    /// Qwen2 / Qwen2.5 and the DeepSeek-R1-Distill-Qwen models: biases on q, k, v; NeoX rotary.
    public static let qwen2 = Architecture(
        name: "qwen2", modelTypes: ["qwen2"], className: "Qwen2ForCausalLM",
        tensors: baseTensors + qk(permuted: false) + denseMLP, permutesQK: false,
        configConstants: [("hidden_act", .string("silu"))],
        block: .init(attention: .grouped(headNorms: false), feedForward: .gatedSiLU))

    /// Qwen3: RMS norms on each q and k head (`q_norm`, `k_norm`), no biases.
    public static let qwen3 = Architecture(
        name: "qwen3", modelTypes: ["qwen3"], className: "Qwen3ForCausalLM",
        tensors: baseTensors + qk(permuted: false) + qkNorms + denseMLP, permutesQK: false,
        configConstants: [("hidden_act", .string("silu")), ("attention_bias", .bool(false))],
        block: .init(attention: .grouped(headNorms: true), feedForward: .gatedSiLU))

    /// Qwen1.5-MoE / Qwen2-MoE: routed experts plus one gated shared expert.
    public static let qwen2moe = Architecture(
        name: "qwen2moe", modelTypes: ["qwen2_moe"], className: "Qwen2MoeForCausalLM",
        extraHyperparameters: [
            .init(.expertFeedForwardSize, gguf: "expert_feed_forward_length", .uint32, config: ["moe_intermediate_size"]),
            .init(.expertSharedFeedForwardSize, gguf: "expert_shared_feed_forward_length", .uint32,
                  config: ["shared_expert_intermediate_size"]),
        ],
        tensors: baseTensors + qk(permuted: false) + qwenExperts + [
            .init("ffn_gate_inp_shexp", "mlp.shared_expert_gate", keepsF32: true),
            .init("ffn_gate_shexp", "mlp.shared_expert.gate_proj"),
            .init("ffn_up_shexp", "mlp.shared_expert.up_proj"),
            .init("ffn_down_shexp", "mlp.shared_expert.down_proj"),
        ],
        permutesQK: false, configConstants: [("hidden_act", .string("silu"))], configKeys: [.expertCount: "num_experts"],
        block: .init(attention: .grouped(headNorms: false), feedForward: .gatedSiLU,
                     experts: .init(gating: .softmax, normalizeWeights: false, shared: .sigmoidGated)))

    /// Qwen3-MoE: q/k norms and routed experts, no shared expert.
    public static let qwen3moe = Architecture(
        name: "qwen3moe", modelTypes: ["qwen3_moe"], className: "Qwen3MoeForCausalLM",
        extraHyperparameters: [
            .init(.expertFeedForwardSize, gguf: "expert_feed_forward_length", .uint32, config: ["moe_intermediate_size"]),
        ],
        tensors: baseTensors + qk(permuted: false) + qkNorms + qwenExperts,
        // llama.cpp always renormalizes Qwen3-MoE's top-k routing weights.
        permutesQK: false, configConstants: [("hidden_act", .string("silu")), ("attention_bias", .bool(false)), ("norm_topk_prob", .bool(true))],
        configKeys: [.expertCount: "num_experts"],
        block: .init(attention: .grouped(headNorms: true), feedForward: .gatedSiLU,
                     experts: .init(gating: .softmax, normalizeWeights: true)))

    /// DeepSeek-V2/V3/R1 (llama.cpp's `deepseek2`): multi-head latent attention (low-rank q and kv with a shared
    /// rotary key), leading dense blocks, routed experts with a score-correction bias and shared experts.
    public static let deepseek2 = Architecture(
        name: "deepseek2", modelTypes: ["deepseek_v3", "deepseek_v2"], className: "DeepseekV3ForCausalLM",
        extraHyperparameters: [
            .init(.leadingDenseBlockCount, gguf: "leading_dense_block_count", .uint32, config: ["first_k_dense_replace"]),
            .init(.vocabSize, gguf: "vocab_size", .uint32, config: ["vocab_size"]),
            .init(.qLoraRank, gguf: "attention.q_lora_rank", .uint32, config: ["q_lora_rank"]),
            .init(.kvLoraRank, gguf: "attention.kv_lora_rank", .uint32, config: ["kv_lora_rank"]),
            .init(.keyLengthMLA, gguf: "attention.key_length_mla", .uint32, config: []),
            .init(.valueLengthMLA, gguf: "attention.value_length_mla", .uint32, config: ["v_head_dim"]),
            .init(.expertFeedForwardSize, gguf: "expert_feed_forward_length", .uint32, config: ["moe_intermediate_size", "intermediate_size"]),
            .init(.expertSharedCount, gguf: "expert_shared_count", .uint32, config: ["n_shared_experts"]),
            .init(.expertWeightsScale, gguf: "expert_weights_scale", .float32, config: ["routed_scaling_factor"]),
            .init(.expertWeightsNorm, gguf: "expert_weights_norm", .bool, config: ["norm_topk_prob"]),
            .init(.ropeDimensionCount, gguf: "rope.dimension_count", .uint32, config: ["qk_rope_head_dim"]),
            .init(.yarnLogMultiplier, gguf: "rope.scaling.yarn_log_multiplier", .float32, config: []),
        ],
        tensors: baseTensors.filter { $0.gguf != "attn_v" } + [
            .init("attn_q", "self_attn.q_proj"),
            .init("attn_q_a", "self_attn.q_a_proj"),
            .init("attn_q_a_norm", "self_attn.q_a_layernorm", keepsF32: true),
            .init("attn_q_b", "self_attn.q_b_proj"),
            .init("attn_kv_a_mqa", "self_attn.kv_a_proj_with_mqa"),
            .init("attn_kv_a_norm", "self_attn.kv_a_layernorm", keepsF32: true),
            // kv_b is stored as k_b and v_b in GGUF (see latentAttention).
            .init("attn_kv_b", "self_attn.kv_b_proj"),
            .init("attn_k_b", "self_attn.k_b_proj"),
            .init("attn_v_b", "self_attn.v_b_proj"),
            .init("exp_probs_b.bias", "mlp.gate.e_score_correction_bias", keepsF32: true),
            .init("ffn_gate_shexp", "mlp.shared_experts.gate_proj"),
            .init("ffn_up_shexp", "mlp.shared_experts.up_proj"),
            .init("ffn_down_shexp", "mlp.shared_experts.down_proj"),
        ] + denseMLP + qwenExperts,
        permutesQK: false, configConstants: [("hidden_act", .string("silu")), ("attention_bias", .bool(false))],
        configKeys: [.expertCount: "n_routed_experts"],
        block: .init(attention: .latent, feedForward: .gatedSiLU, experts: .init(gating: nil, normalizeWeights: nil, shared: .plain)),
        latentAttention: true)
}
