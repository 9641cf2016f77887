#!/usr/bin/env python3
"""Makes FP8 checkpoints from a Hugging Face folder's weights (SmolLM2's, from tools/make-hf-model.py), with
reference code only (ml_dtypes for the FP8 codes, numpy, the safetensors package). Every linear weight of the
decoder blocks (q/k/v/o, gate/up/down) becomes F8_E4M3 with a scale; embeddings and norms stay as they were.

  --scheme block     DeepSeek-V3/R1's layout: one F32 `weight_scale_inv` per 128x128 block (edge blocks padded:
                     576 and 1536 are not multiples of 128), scale = amax / 448, config.json quantization_config
                     {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
  --scheme tensor    one F32 `weight_scale` per tensor (shape [])
  --scheme channel   one F32 `weight_scale` per output row (shape [rows, 1])

The codes are ml_dtypes' round-to-nearest-even of w / scale. Dequantized, a weight is fp8(q) * scale.

usage: tools/make-fp8-model.py SRC_FOLDER OUT_FOLDER [--scheme block|tensor|channel]
"""
import argparse
import json
import os
import shutil

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import load_file

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
          "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj")   # the last four: DeepSeek's latent attention
FP8_MAX = 448.0


def quantize(w, scheme):
    w = w.astype(np.float32)
    rows, cols = w.shape
    if scheme == "tensor":
        scale = np.array(max(np.abs(w).max() / FP8_MAX, 1e-12), dtype=np.float32).reshape([])
        full = np.full(w.shape, scale, dtype=np.float32)
    elif scheme == "channel":
        scale = np.maximum(np.abs(w).max(axis=1, keepdims=True) / FP8_MAX, 1e-12).astype(np.float32)
        full = np.broadcast_to(scale, w.shape)
    else:
        br, bc = -(-rows // 128), -(-cols // 128)
        padded = np.zeros((br * 128, bc * 128), dtype=np.float32)
        padded[:rows, :cols] = w
        amax = np.abs(padded.reshape(br, 128, bc, 128)).max(axis=(1, 3))
        scale = np.maximum(amax / FP8_MAX, 1e-12).astype(np.float32)
        full = np.repeat(np.repeat(scale, 128, axis=0), 128, axis=1)[:rows, :cols]
    q = (w / full).astype(ml_dtypes.float8_e4m3fn)
    return q, scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--scheme", default="block", choices=["block", "tensor", "channel"])
    a = ap.parse_args()
    tensors = load_file(os.path.join(a.src, "model.safetensors"))
    specs, keep = {}, []

    def put(name, x, dtype):
        x = np.ascontiguousarray(x)
        keep.append(x)
        specs[name] = TensorSpec(dtype=dtype, shape=list(x.shape), data_ptr=x.ctypes.data, data_len=x.nbytes)

    for name, w in tensors.items():
        stem = name[:-len(".weight")] if name.endswith(".weight") else None
        if stem and stem.split(".")[-1] in LINEAR:
            q, scale = quantize(w, a.scheme)
            put(name, q, "float8_e4m3fn")
            put(stem + (".weight_scale_inv" if a.scheme == "block" else ".weight_scale"), scale, "float32")
        else:
            put(name, w, str(w.dtype))
    os.makedirs(a.out, exist_ok=True)
    serialize_file(specs, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    for f in os.listdir(a.src):
        if f != "model.safetensors":
            shutil.copy(os.path.join(a.src, f), os.path.join(a.out, f))
    config = json.load(open(os.path.join(a.src, "config.json")))
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic"}
    if a.scheme == "block":
        config["quantization_config"]["weight_block_size"] = [128, 128]
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
