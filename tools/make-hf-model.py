#!/usr/bin/env python3
"""Writes a Hugging Face folder (config.json, model.safetensors, tokenizer.json) holding the same model as a
llama-architecture GGUF, in Transformers' names and layout: q/k rows un-permuted back from llama.cpp's converter
(which interleaves the two halves of each head for its rope), so the folder is what `convert_hf_to_gguf.py` started
from. `ingot eval` on the folder and on the GGUF must agree; check-eval.py runs both.

usage: tools/make-hf-model.py MODEL.gguf OUT_DIR   (F16/F32/BF16 GGUFs)
"""
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


def unpermute(w, heads):
    # llama.cpp: w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols); this is its inverse.
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    src, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(src)
    f = lambda k: r.fields[k].contents() if k in r.fields else None
    arch = f("general.architecture")
    heads, kv = f(f"{arch}.attention.head_count"), f(f"{arch}.attention.head_count_kv")
    tensors = {}
    for t in r.tensors:
        a = np.array(t.data)
        if t.tensor_type.name == "BF16":
            a = a.view(np.uint16)
        shape = tuple(int(x) for x in reversed(t.shape))
        a = a.reshape(shape)
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
                a = unpermute(a, heads)
            if arch == "llama" and parts[2] == "attn_k" and parts[3] == "weight":
                a = unpermute(a, kv)
        tensors[name] = np.ascontiguousarray(a)
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"))
    config = {"model_type": arch, "architectures": ["LlamaForCausalLM"],
              "hidden_size": f(f"{arch}.embedding_length"), "intermediate_size": f(f"{arch}.feed_forward_length"),
              "num_hidden_layers": f(f"{arch}.block_count"), "num_attention_heads": heads, "num_key_value_heads": kv,
              "rms_norm_eps": float(f(f"{arch}.attention.layer_norm_rms_epsilon")),
              "rope_theta": float(f(f"{arch}.rope.freq_base")), "max_position_embeddings": f(f"{arch}.context_length"),
              "vocab_size": len(r.fields["tokenizer.ggml.tokens"].data), "rope_scaling": None,
              "tie_word_embeddings": "output.weight" not in [t.name for t in r.tensors], "torch_dtype": "float16"}
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, os.path.join(here, "make-tokenizer-json.py"), src, os.path.join(out, "tokenizer.json")],
                   check=True)


if __name__ == "__main__":
    main()
