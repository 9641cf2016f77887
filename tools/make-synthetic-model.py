#!/usr/bin/env python3
"""Writes a llama-architecture GGUF (F16) with deterministic pseudo-random weights, for rules and scale tests.

The metadata (tokenizer included) is SmolLM2-135M-Instruct's, with the shape keys replaced, so llama.cpp
loads it. Weights come from a splitmix64 stream (no numpy distribution whose output could change between
versions), shaped like trained weights: small, centered, with heavier tails.

With --experts E the feed-forward branch of every block is a mixture of E experts of --ffn neurons (Mixtral's layout
in llama.cpp: stacked ffn_*_exps tensors and an F32 router ffn_gate_inp), --experts-used of them per token.

usage: tools/make-synthetic-model.py OUT.gguf [--hidden 512] [--ffn 1536] [--layers 8] [--heads 8] [--kv-heads 2]
                                              [--experts E --experts-used K]

  tools/make-synthetic-model.py .cache/variants/synthetic-llama-f16.gguf          rule coverage (256-multiple rows, GQA 4)
  tools/make-synthetic-model.py .cache/variants/synthetic-1b-f16.gguf --hidden 2048 --ffn 5632 --layers 22 \\
      --heads 32 --kv-heads 4                                                      1.1B parameters (8x SmolLM2)
  tools/make-synthetic-model.py .cache/variants/synthetic-moe-32.gguf --hidden 576 --ffn 1536 --layers 32 \
      --heads 9 --kv-heads 3 --experts 8 --experts-used 2                           0.7B parameters (5x SmolLM2)
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGUFReader

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tools"))
from gguf_fields import copy_metadata  # noqa: E402


def weights(seed, shape):
    """float16 weights from splitmix64(seed + i): uniform in [-1, 1), cubed, scaled to 0.05."""
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float16)
    step = 1 << 22
    with np.errstate(over="ignore"):
        for start in range(0, n, step):
            z = (np.arange(start, min(n, start + step), dtype=np.uint64) + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            u = (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 23) - np.float32(1)
            out[start:start + len(u)] = (u * u * u * np.float32(0.05)).astype(np.float16)
    return out.reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=1536)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--experts", type=int, default=0)
    ap.add_argument("--experts-used", type=int, default=2)
    a = ap.parse_args()
    src = GGUFReader(os.path.join(root, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    vocab = len(src.fields["tokenizer.ggml.tokens"].data)
    head_dim = a.hidden // a.heads
    replace = {
        "llama.embedding_length": a.hidden, "llama.feed_forward_length": a.ffn, "llama.block_count": a.layers,
        "llama.attention.head_count": a.heads, "llama.attention.head_count_kv": a.kv_heads,
        "llama.rope.dimension_count": head_dim, "general.file_type": 1, "general.name": "synthetic-llama",
    }
    if a.experts:
        replace["general.name"] = "synthetic-moe"
    w = gguf.GGUFWriter(a.out, arch="llama")
    copy_metadata(src, w, replace)
    if a.experts:
        w.add_uint32("llama.expert_count", a.experts)
        w.add_uint32("llama.expert_used_count", a.experts_used)
    seed = 1
    def add(name, shape):
        nonlocal seed
        w.add_tensor(name, weights(seed << 40, shape))
        seed += 1
    add("token_embd.weight", (vocab, a.hidden))
    w.add_tensor("output_norm.weight", np.ones(a.hidden, dtype=np.float32))
    kv = head_dim * a.kv_heads
    for i in range(a.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(a.hidden, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(a.hidden, dtype=np.float32))
        add(f"blk.{i}.attn_q.weight", (a.hidden, a.hidden))
        add(f"blk.{i}.attn_k.weight", (kv, a.hidden))
        add(f"blk.{i}.attn_v.weight", (kv, a.hidden))
        add(f"blk.{i}.attn_output.weight", (a.hidden, a.hidden))
        if a.experts:
            # The router at 20 times the weights' scale, so that routing is decided, not a tie.
            w.add_tensor(f"blk.{i}.ffn_gate_inp.weight", (weights(seed << 40, (a.experts, a.hidden)).astype(np.float32) * 20))
            seed += 1
            add(f"blk.{i}.ffn_gate_exps.weight", (a.experts, a.ffn, a.hidden))
            add(f"blk.{i}.ffn_up_exps.weight", (a.experts, a.ffn, a.hidden))
            add(f"blk.{i}.ffn_down_exps.weight", (a.experts, a.hidden, a.ffn))
            continue
        add(f"blk.{i}.ffn_gate.weight", (a.ffn, a.hidden))
        add(f"blk.{i}.ffn_up.weight", (a.ffn, a.hidden))
        add(f"blk.{i}.ffn_down.weight", (a.hidden, a.ffn))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(a.out)


if __name__ == "__main__":
    main()
