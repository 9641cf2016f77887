#!/usr/bin/env python3
"""Writes fixtures/reference/gptq.safetensors: GPTQ as llm-compressor computes it, for Ingot's GPTQ to be checked
against (Tests/IngotCalibrateTests/GPTQTests.swift). Needs llm-compressor (0.14, with torch on the CPU) in a virtual
environment of its own, as it pins its own torch and transformers:

    python3 -m venv /tmp/lcenv && /tmp/lcenv/bin/pip install llmcompressor
    /tmp/lcenv/bin/python tools/reference/gptq_reference.py

One weight W (48 x 256, F32) and the Hessian H = 2/n XᵀX of 600 correlated input rows with unequal column scales
(column 5 never active: a dead column). For each case, compressed-tensors' `calculate_qparams` fits the scales and zero
points to W's groups (what llm-compressor's min-max observer does before GPTQ runs) and llm-compressor's
`quantize_weight` (block 128, dampening 0.01) quantizes it: the fixture holds W, H and each case's output weights, and
the metadata each case's loss.
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures/reference/gptq.safetensors")
ROWS, COLS, TOKENS = 48, 256, 600
# name: (bits, symmetric, group size or None for per channel, activation order)
CASES = {
    "w4_sym_g64_weight": (4, True, 64, "weight"),
    "w4_sym_g64_none": (4, True, 64, None),
    "w4_asym_g32_weight": (4, False, 32, "weight"),
    "w8_sym_channel_weight": (8, True, None, "weight"),
}


def main():
    import llmcompressor
    import torch
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.utils.helpers import calculate_qparams
    from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight
    from safetensors.torch import save_file

    rng = np.random.default_rng(20261127)
    w = rng.standard_normal((ROWS, COLS)).astype(np.float32) * 0.05
    w[:, 17] *= 6  # an outlier column
    mix = rng.standard_normal((COLS, COLS)).astype(np.float32) / np.sqrt(COLS)
    x = (rng.standard_normal((TOKENS, COLS)).astype(np.float32) @ (np.eye(COLS, dtype=np.float32) + mix))
    x *= np.exp(rng.standard_normal(COLS).astype(np.float32))
    x[:, 5] = 0
    W, X = torch.from_numpy(w), torch.from_numpy(x)
    H = ((2 / TOKENS) * (X.t() @ X)).float()
    tensors = {"weight": W.contiguous(), "hessian": H.contiguous()}
    meta = {"reference": f"llmcompressor {llmcompressor.__version__}, torch {torch.__version__} (CPU); "
                         "tools/reference/gptq_reference.py"}
    for name, (bits, sym, group, order) in CASES.items():
        args = QuantizationArgs(num_bits=bits, type="int", symmetric=sym, group_size=group,
                                strategy="group" if group else "channel", actorder=order)
        if group:
            g = W.unflatten(-1, (COLS // group, group))
            lo, hi = g.amin(-1), g.amax(-1)
        else:
            lo, hi = W.amin(-1, keepdim=True), W.amax(-1, keepdim=True)
        scale, zp = calculate_qparams(lo, hi, args)
        q, loss, fallback = quantize_weight(W.clone()[None], H.clone()[None], scale[None], zp[None], None, args,
                                            blocksize=128, percdamp=0.01)
        assert not bool(fallback[0])
        tensors[name] = q[0].contiguous()
        meta[name] = json.dumps({"bits": bits, "symmetric": sym, "group": group, "actorder": order, "loss": float(loss[0])})
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
