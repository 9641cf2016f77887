#!/usr/bin/env python3
"""Makes small mixture-of-experts Hugging Face folders (random weights, seed fixed) with SmolLM2's tokenizer, so
that converting expert tensors (one tensor per expert in Hugging Face folders, stacked in GGUF) can be checked
against llama.cpp's converter without downloading a MoE model. Reference code only: numpy and safetensors.

  mixtral    MixtralForCausalLM: llama attention (q/k permuted by the converter), block_sparse_moe with
             experts.E.w1/w2/w3 and a router (gate)
  qwen3moe   Qwen3MoeForCausalLM: q/k norms, mlp.experts.E.{gate,up,down}_proj and a router (mlp.gate)
  deepseek3  DeepseekV3ForCausalLM: multi-head latent attention (q_a/q_b low-rank queries, kv_a_proj_with_mqa with
             the shared rotary key, kv_b_proj), one leading dense layer, routed experts with a score-correction bias,
             a shared expert, grouped routing, YaRN rope scaling, and one multi-token-prediction layer after the last
             block (which converters drop)

All: hidden 64, 4 heads, 4 experts of width 32 (2 used), SmolLM2's 49152-token vocabulary; mixtral and qwen3moe have
2 layers and 2 KV heads, deepseek3 3 layers.

usage: tools/make-moe-model.py SMOLLM2_FOLDER OUT_FOLDER --arch mixtral|qwen3moe|deepseek3
"""
import argparse
import json
import os
import shutil

import numpy as np
from safetensors.numpy import save_file

HIDDEN, LAYERS, HEADS, KV, EXPERTS, WIDTH, USED, HEAD_DIM = 64, 2, 4, 2, 4, 32, 2, 16
# DeepSeek-V3's latent attention, scaled down.
Q_LORA, KV_LORA, NOPE, ROPE, V_DIM, DS_LAYERS = 32, 32, 16, 8, 16, 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--arch", required=True, choices=["mixtral", "qwen3moe", "deepseek3"])
    a = ap.parse_args()
    rng = np.random.default_rng({"mixtral": 7, "qwen3moe": 8, "deepseek3": 9}[a.arch])
    src_config = json.load(open(os.path.join(a.src, "config.json")))
    vocab = src_config["vocab_size"]

    def w(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    t = {"model.embed_tokens.weight": w(vocab, HIDDEN), "model.norm.weight": np.ones(HIDDEN, np.float16),
         "lm_head.weight": w(vocab, HIDDEN)}
    if a.arch == "deepseek3":
        return deepseek3(a, t, w, vocab, src_config)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = (1 + w(HIDDEN)).astype(np.float16)
        t[p + "post_attention_layernorm.weight"] = (1 + w(HIDDEN)).astype(np.float16)
        t[p + "self_attn.q_proj.weight"] = w(HEADS * HEAD_DIM, HIDDEN)
        t[p + "self_attn.k_proj.weight"] = w(KV * HEAD_DIM, HIDDEN)
        t[p + "self_attn.v_proj.weight"] = w(KV * HEAD_DIM, HIDDEN)
        t[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * HEAD_DIM)
        if a.arch == "mixtral":
            t[p + "block_sparse_moe.gate.weight"] = w(EXPERTS, HIDDEN)
            for e in range(EXPERTS):
                t[p + f"block_sparse_moe.experts.{e}.w1.weight"] = w(WIDTH, HIDDEN)
                t[p + f"block_sparse_moe.experts.{e}.w3.weight"] = w(WIDTH, HIDDEN)
                t[p + f"block_sparse_moe.experts.{e}.w2.weight"] = w(HIDDEN, WIDTH)
        else:
            t[p + "self_attn.q_norm.weight"] = (1 + w(HEAD_DIM)).astype(np.float16)
            t[p + "self_attn.k_norm.weight"] = (1 + w(HEAD_DIM)).astype(np.float16)
            t[p + "mlp.gate.weight"] = w(EXPERTS, HIDDEN)
            for e in range(EXPERTS):
                t[p + f"mlp.experts.{e}.gate_proj.weight"] = w(WIDTH, HIDDEN)
                t[p + f"mlp.experts.{e}.up_proj.weight"] = w(WIDTH, HIDDEN)
                t[p + f"mlp.experts.{e}.down_proj.weight"] = w(HIDDEN, WIDTH)
    os.makedirs(a.out, exist_ok=True)
    save_file(t, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    config = {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV,
              "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "tie_word_embeddings": False, "torch_dtype": "float16", "hidden_act": "silu", "num_experts_per_tok": USED,
              "bos_token_id": src_config.get("bos_token_id"), "eos_token_id": src_config.get("eos_token_id")}
    if a.arch == "mixtral":
        config.update(model_type="mixtral", architectures=["MixtralForCausalLM"], intermediate_size=WIDTH,
                      num_local_experts=EXPERTS, head_dim=HEAD_DIM)
    else:
        config.update(model_type="qwen3_moe", architectures=["Qwen3MoeForCausalLM"], intermediate_size=WIDTH * 2,
                      moe_intermediate_size=WIDTH, num_experts=EXPERTS, head_dim=HEAD_DIM, norm_topk_prob=True,
                      decoder_sparse_step=1, mlp_only_layers=[])
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))


def deepseek3(a, t, w, vocab, src_config):
    def norm(n):
        return (1 + w(n)).astype(np.float16)
    for i in range(DS_LAYERS + 1):   # the last is the multi-token-prediction layer
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(HIDDEN)
        t[p + "post_attention_layernorm.weight"] = norm(HIDDEN)
        t[p + "self_attn.q_a_proj.weight"] = w(Q_LORA, HIDDEN)
        t[p + "self_attn.q_a_layernorm.weight"] = norm(Q_LORA)
        t[p + "self_attn.q_b_proj.weight"] = w(HEADS * (NOPE + ROPE), Q_LORA)
        t[p + "self_attn.kv_a_proj_with_mqa.weight"] = w(KV_LORA + ROPE, HIDDEN)
        t[p + "self_attn.kv_a_layernorm.weight"] = norm(KV_LORA)
        t[p + "self_attn.kv_b_proj.weight"] = w(HEADS * (NOPE + V_DIM), KV_LORA)
        t[p + "self_attn.o_proj.weight"] = w(HIDDEN, HEADS * V_DIM)
        if i == 0:
            t[p + "mlp.gate_proj.weight"] = w(WIDTH * 2, HIDDEN)
            t[p + "mlp.up_proj.weight"] = w(WIDTH * 2, HIDDEN)
            t[p + "mlp.down_proj.weight"] = w(HIDDEN, WIDTH * 2)
            continue
        t[p + "mlp.gate.weight"] = w(EXPERTS, HIDDEN)
        t[p + "mlp.gate.e_score_correction_bias"] = (w(EXPERTS) * 4).astype(np.float32)
        for e in range(EXPERTS):
            t[p + f"mlp.experts.{e}.gate_proj.weight"] = w(WIDTH, HIDDEN)
            t[p + f"mlp.experts.{e}.up_proj.weight"] = w(WIDTH, HIDDEN)
            t[p + f"mlp.experts.{e}.down_proj.weight"] = w(HIDDEN, WIDTH)
        t[p + "mlp.shared_experts.gate_proj.weight"] = w(WIDTH, HIDDEN)
        t[p + "mlp.shared_experts.up_proj.weight"] = w(WIDTH, HIDDEN)
        t[p + "mlp.shared_experts.down_proj.weight"] = w(HIDDEN, WIDTH)
        if i == DS_LAYERS:
            t[p + "enorm.weight"] = norm(HIDDEN)
            t[p + "hnorm.weight"] = norm(HIDDEN)
            t[p + "eh_proj.weight"] = w(HIDDEN, 2 * HIDDEN)
            t[p + "shared_head.norm.weight"] = norm(HIDDEN)
    os.makedirs(a.out, exist_ok=True)
    save_file(t, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": HIDDEN,
              "num_hidden_layers": DS_LAYERS, "num_nextn_predict_layers": 1, "num_attention_heads": HEADS,
              "num_key_value_heads": HEADS, "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
              "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float16", "hidden_act": "silu",
              "intermediate_size": WIDTH * 2, "moe_intermediate_size": WIDTH, "first_k_dense_replace": 1, "moe_layer_freq": 1,
              "n_routed_experts": EXPERTS, "num_experts_per_tok": USED, "n_shared_experts": 1, "n_group": 2, "topk_group": 1,
              "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": True, "routed_scaling_factor": 2.5,
              "q_lora_rank": Q_LORA, "kv_lora_rank": KV_LORA, "qk_nope_head_dim": NOPE, "qk_rope_head_dim": ROPE,
              "v_head_dim": V_DIM, "attention_bias": False, "attention_dropout": 0.0,
              "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512, "beta_fast": 32,
                               "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
              "bos_token_id": src_config.get("bos_token_id"), "eos_token_id": src_config.get("eos_token_id")}
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))


if __name__ == "__main__":
    main()
