import IngotArchitectures
import IngotFormats
import Testing

@Suite("Architecture tables")
struct ArchitectureTests {
    @Test("Hugging Face and GGUF names map both ways for every role of every architecture")
    func namesRoundTrip() throws {
        for arch in Architecture.all {
            for role in arch.tensors {
                let gguf = role.scope == .model ? "\(role.gguf).weight" : "blk.7.\(role.gguf).weight"
                let back = try #require(arch.hfName(forGGUF: gguf), "\(arch.name): \(gguf)")
                #expect(back.role == role)
                let hf = role.scope == .expertStack ? back.hfName(expert: 5) : back.name
                let again = try #require(arch.ggufName(forHF: hf), "\(arch.name): \(hf)")
                #expect(again.name == gguf, "\(arch.name): \(hf) -> \(again.name)")
                #expect(again.expert == (role.scope == .expertStack ? 5 : nil))
                #expect(again.layer == (role.scope == .model ? nil : 7))
            }
        }
    }

    @Test("Names as llama.cpp's gguf-py maps them")
    func knownNames() throws {
        let llama = Architecture.llama
        #expect(llama.ggufName(forHF: "model.layers.12.self_attn.q_proj.weight")?.name == "blk.12.attn_q.weight")
        #expect(llama.ggufName(forHF: "model.embed_tokens.weight")?.name == "token_embd.weight")
        #expect(llama.ggufName(forHF: "lm_head.weight")?.name == "output.weight")
        #expect(llama.ggufName(forHF: "model.layers.3.block_sparse_moe.experts.11.w3.weight")?.name == "blk.3.ffn_up_exps.weight")
        #expect(llama.ggufName(forHF: "model.layers.3.block_sparse_moe.experts.x.w3.weight") == nil)
        #expect(llama.ggufName(forHF: "model.layers.3.self_attn.q_norm.weight") == nil)
        #expect(Architecture.qwen3.ggufName(forHF: "model.layers.0.self_attn.k_norm.weight")?.name == "blk.0.attn_k_norm.weight")
        #expect(Architecture.qwen2.ggufName(forHF: "model.layers.0.self_attn.q_proj.bias")?.name == "blk.0.attn_q.bias")
        let ds = Architecture.deepseek2
        #expect(ds.ggufName(forHF: "model.layers.4.mlp.gate.e_score_correction_bias")?.name == "blk.4.exp_probs_b.bias")
        #expect(ds.ggufName(forHF: "model.layers.4.mlp.shared_experts.down_proj.weight")?.name == "blk.4.ffn_down_shexp.weight")
        #expect(ds.ggufName(forHF: "model.layers.4.self_attn.kv_a_proj_with_mqa.weight_scale_inv")?.name
                == "blk.4.attn_kv_a_mqa.weight_scale_inv")
        #expect(Architecture.qwen2moe.ggufName(forHF: "model.layers.1.mlp.shared_expert_gate.weight")?.name == "blk.1.ffn_gate_inp_shexp.weight")
        #expect(Architecture.forModelType("mixtral")?.name == "llama")
        #expect(Architecture.forModelType("mistral")?.name == "llama")
        #expect(Architecture.forModelType("deepseek_v3")?.name == "deepseek2")
    }

    @Test("Llama 3.1's rope_freqs give back the rope_scaling that made them")
    func ropeScalingRecovered() throws {
        let made = RopeScaling(type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192)
        let factors = made.llama3Factors(base: 500000, dims: 128)   // Llama 3.1 8B: theta 500000, head size 128
        #expect(factors.first == 1 && factors.last == 8 && factors.contains { $0 > 1 && $0 < 8 })
        #expect(RopeScaling.llama3(factors: factors, base: 500000, dims: 128) == made)
        #expect(RopeScaling.llama3(factors: [Float](repeating: 1, count: 64), base: 500000, dims: 128) == nil)
        var bent = factors
        bent[60] = 3
        #expect(RopeScaling.llama3(factors: bent, base: 500000, dims: 128) == nil)
    }

    @Test("config.json and GGUF keys describe the same spec")
    func specBothWays() throws {
        let config = try JSONParser.parse("""
        {"model_type": "qwen3", "num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 96,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "rope_theta": 1000000.0,
         "rms_norm_eps": 1e-06, "max_position_embeddings": 4096, "vocab_size": 500, "tie_word_embeddings": true}
        """)
        let spec = ModelSpec(config: config)
        #expect(spec.architecture == "qwen3")
        #expect(spec.headDimension == 32)
        #expect(spec.int(.valueLength) == 32)
        let keys = spec.ggufKeys(architecture: .qwen3, fileType: 1)
        #expect(keys.map(\.key) == ["qwen3.block_count", "qwen3.context_length", "qwen3.embedding_length",
                                    "qwen3.feed_forward_length", "qwen3.attention.head_count", "qwen3.attention.head_count_kv",
                                    "qwen3.rope.freq_base", "qwen3.attention.layer_norm_rms_epsilon",
                                    "qwen3.attention.key_length", "qwen3.attention.value_length", "general.file_type"])
        let members = spec.configMembers(architecture: .qwen3)
        #expect(members.map(\.0) == ["num_hidden_layers", "max_position_embeddings", "hidden_size", "intermediate_size",
                                     "num_attention_heads", "num_key_value_heads", "rope_theta", "rms_norm_eps", "head_dim"])
        let missing = ModelSpec(config: try JSONParser.parse(#"{"model_type": "llama", "hidden_size": 0}"#))
        #expect(throws: ModelError.self) { try missing.require(.hiddenSize, path: "x") }
    }

    @Test("DeepSeek's latent attention: config.json read and written as llama.cpp's converter states it")
    func latentAttentionSpec() throws {
        let config = try JSONParser.parse("""
        {"model_type": "deepseek_v3", "num_hidden_layers": 3, "hidden_size": 64, "intermediate_size": 64,
         "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 2048, "rope_theta": 10000.0,
         "n_routed_experts": 4, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "scoring_func": "sigmoid",
         "first_k_dense_replace": 1, "vocab_size": 500, "q_lora_rank": 32, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
         "qk_rope_head_dim": 8, "v_head_dim": 16, "moe_intermediate_size": 32, "n_shared_experts": 1,
         "routed_scaling_factor": 2.5, "norm_topk_prob": true,
         "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "beta_fast": 32,
                          "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}}
        """)
        let spec = ModelSpec(config: config)
        #expect(spec.int(.kvHeadCount) == 1 && spec.int(.keyLength) == 40 && spec.int(.valueLength) == 32)
        #expect(spec.int(.keyLengthMLA) == 24 && spec.int(.valueLengthMLA) == 16)
        #expect(spec.int(.expertGatingFunction) == 2 && spec.rmsNormEpsilon == 1e-6)
        #expect(spec.keyedRopeScaling?.type == "yarn" && spec.otherRopeScaling == nil)
        let keys = spec.ggufKeys(architecture: .deepseek2, fileType: 1).map { $0.key.hasPrefix("deepseek2.") ? String($0.key.dropFirst(10)) : $0.key }
        // The order convert_hf_to_gguf.py writes (fixtures/reference/convert-hf-to-gguf.json, smollm2-deepseek3).
        #expect(keys == ["block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
                         "attention.head_count_kv", "rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length",
                         "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow", "rope.freq_base",
                         "attention.layer_norm_rms_epsilon", "expert_count", "expert_used_count", "expert_group_count",
                         "expert_group_used_count", "expert_gating_func", "attention.key_length", "attention.value_length",
                         "general.file_type", "leading_dense_block_count", "vocab_size", "attention.q_lora_rank",
                         "attention.kv_lora_rank", "attention.key_length_mla", "attention.value_length_mla",
                         "expert_feed_forward_length", "expert_shared_count", "expert_weights_scale", "expert_weights_norm",
                         "rope.dimension_count", "rope.scaling.yarn_log_multiplier"])
        // Back to config.json: per-head widths and KV heads as Transformers' DeepSeek config names them.
        let members = Dictionary(spec.configMembers(architecture: .deepseek2), uniquingKeysWith: { a, _ in a })
        #expect(members["num_key_value_heads"] == JSONValue(4) && members["qk_nope_head_dim"] == JSONValue(16))
        #expect(members["v_head_dim"] == JSONValue(16) && members["scoring_func"] == .string("sigmoid"))
        #expect(members["head_dim"] == nil && members["kv_lora_rank"] == JSONValue(32))
    }
}
