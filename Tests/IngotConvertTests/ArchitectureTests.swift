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
}
