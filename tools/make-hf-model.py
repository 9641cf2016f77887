#!/usr/bin/env python3
"""Writes a Hugging Face folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) holding the
same model as a llama-architecture GGUF, in Transformers' names and layout, with reference code only (gguf-py's
reader, numpy, the safetensors package): q/k rows un-permuted back from llama.cpp's converter (which interleaves the
two halves of each head for its rope), so the folder is what `convert_hf_to_gguf.py` started from.

--arch makes the other architectures of the llama family from the same weights, so that conversion and the forward
pass can be checked on them without downloading another model:

  llama     the model as it is (LlamaForCausalLM)
  llama31   Llama 3.1's rope scaling in config.json (rope_type llama3, factor 8, low/high 1/4, original 2048)
  qwen2     Qwen2ForCausalLM: q/k/v biases added (normal, 2% of a typical output, seed 1), and Qwen2's pre-tokenizer
            (Transformers gives every qwen2 folder Qwen2Tokenizer, which splits text with Qwen2's pattern)
  qwen3     Qwen3ForCausalLM: per-head q/k RMS-norm weights (1 + normal 0.1, seed 2) and an explicit head_dim

Weights are stored as the GGUF stores them (F16 stays F16); new tensors are F16 too.

usage: tools/make-hf-model.py MODEL.gguf OUT_DIR [--arch llama|llama31|qwen2|qwen3]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from gguf import GGUFReader
from safetensors.numpy import save_file

NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
CLASSES = {"llama": ("llama", "LlamaForCausalLM"), "llama31": ("llama", "LlamaForCausalLM"),
           "qwen2": ("qwen2", "Qwen2ForCausalLM"), "qwen3": ("qwen3", "Qwen3ForCausalLM")}


def unpermute(w, heads):
    # llama.cpp: w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols); this is its inverse.
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--arch", default="llama", choices=sorted(CLASSES))
    a = ap.parse_args()
    r = GGUFReader(a.model)
    f = lambda k: r.fields[k].contents() if k in r.fields else None
    arch = f("general.architecture")
    heads, kv = f(f"{arch}.attention.head_count"), f(f"{arch}.attention.head_count_kv")
    hidden = f(f"{arch}.embedding_length")
    head_dim = hidden // heads
    tensors = {}
    for t in r.tensors:
        a_ = np.array(t.data)
        if t.tensor_type.name == "BF16":
            a_ = a_.view(np.uint16)
        shape = tuple(int(x) for x in reversed(t.shape))
        a_ = a_.reshape(shape)
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            name = f"model.layers.{parts[1]}.{NAMES[parts[2]]}.{parts[3]}"
            if arch == "llama" and parts[2] == "attn_q" and parts[3] == "weight":
                a_ = unpermute(a_, heads)
            if arch == "llama" and parts[2] == "attn_k" and parts[3] == "weight":
                a_ = unpermute(a_, kv)
        tensors[name] = np.ascontiguousarray(a_)
    layers = f(f"{arch}.block_count")
    if a.arch == "qwen2":
        rng = np.random.default_rng(1)
        for i in range(layers):
            for proj in ["q_proj", "k_proj", "v_proj"]:
                w = tensors[f"model.layers.{i}.self_attn.{proj}.weight"].astype(np.float32)
                rms = np.sqrt((w * w).mean(axis=1))
                tensors[f"model.layers.{i}.self_attn.{proj}.bias"] = (rng.standard_normal(w.shape[0]) * 0.02 * rms
                                                                       * np.sqrt(w.shape[1])).astype(np.float16)
    if a.arch == "qwen3":
        rng = np.random.default_rng(2)
        for i in range(layers):
            for n in ["q_norm", "k_norm"]:
                tensors[f"model.layers.{i}.self_attn.{n}.weight"] = (1 + 0.1 * rng.standard_normal(head_dim)).astype(np.float16)
    os.makedirs(a.out, exist_ok=True)
    save_file(tensors, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    tokens = f("tokenizer.ggml.tokens")
    model_type, cls = CLASSES[a.arch]
    config = {"model_type": model_type, "architectures": [cls],
              "hidden_size": hidden, "intermediate_size": f(f"{arch}.feed_forward_length"),
              "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
              "rms_norm_eps": float(np.float32(f(f"{arch}.attention.layer_norm_rms_epsilon"))),
              "rope_theta": float(f(f"{arch}.rope.freq_base")), "max_position_embeddings": f(f"{arch}.context_length"),
              "vocab_size": len(tokens), "rope_scaling": None, "hidden_act": "silu",
              "tie_word_embeddings": "output.weight" not in [t.name for t in r.tensors], "torch_dtype": "float16"}
    if a.arch == "llama31":
        config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 2048}
    if a.arch == "qwen3":
        config["head_dim"] = head_dim
    if f("tokenizer.ggml.bos_token_id") is not None:
        config["bos_token_id"] = int(f("tokenizer.ggml.bos_token_id"))
    if f("tokenizer.ggml.eos_token_id") is not None:
        config["eos_token_id"] = int(f("tokenizer.ggml.eos_token_id"))
    with open(os.path.join(a.out, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "make-tokenizer-json.py"), a.model, os.path.join(a.out, "tokenizer.json")]
                   + (["qwen2"] if a.arch == "qwen2" else []), check=True)
    # tokenizer_config.json: the special tokens by content, as Transformers and llama.cpp's converter read them.
    tc = {"add_prefix_space": f("tokenizer.ggml.add_space_prefix"), "tokenizer_class": "GPT2Tokenizer",
          "clean_up_tokenization_spaces": False, "model_max_length": config["max_position_embeddings"]}
    for key, field in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                       ("pad_token", "padding_token_id")]:
        i = f(f"tokenizer.ggml.{field}")
        if i is not None:
            tc[key] = tokens[int(i)]
    if f("tokenizer.chat_template") is not None:
        tc["chat_template"] = f("tokenizer.chat_template")
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
        json.dump({k: v for k, v in tc.items() if v is not None}, fh, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
