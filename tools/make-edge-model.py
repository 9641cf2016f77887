#!/usr/bin/env python3
"""Makes .cache/variants/smollm2-edge-f16.gguf: SmolLM2 F16 with awkward values written into real tensors, so
that quantizers are compared with llama.cpp on the cases that break them, inside a model llama.cpp loads.

Rows 0..19 of every blk.0 and blk.1 matrix (and of token_embd) are replaced, one pattern per row:
  0 zeros                 4 one spike (65504) in zeros   8 F16 subnormals (±6e-8..)  12 ramp -1..1
  1 constant 0.5          5 ±65504 alternating           9 tiny normals (±6.1e-5)    13 -ramp
  2 constant -0.25        6 one negative spike           10 a single nonzero value   14 powers of two
  3 alternating ±1        7 halves of ±(1/3)             11 real row * 1e-4          15 real row * 1000
  16 -0.0 throughout      17 -0.0 and +0.0 alternating   18 signed zeros, 0.25 every 37th value
  19 signed zeros, -0.5 every 41st value (a masked row holds -0.0; a block's scale and minimum must take the sign
     llama.cpp's scan gives them)
Everything else, and all metadata, is the real model's. Needs .cache/variants/smollm2-f16.gguf
(tools/make-variants.py). Written with gguf-py only.

usage: tools/make-edge-model.py
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGUFReader

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tools"))
from gguf_fields import copy_metadata  # noqa: E402
src = os.path.join(root, ".cache", "variants", "smollm2-f16.gguf")
dst = os.path.join(root, ".cache", "variants", "smollm2-edge-f16.gguf")



def patterns(row_len, real):
    rows = []
    n = row_len
    rows.append(np.zeros(n))
    rows.append(np.full(n, 0.5))
    rows.append(np.full(n, -0.25))
    rows.append(np.where(np.arange(n) % 2 == 0, 1.0, -1.0))
    r = np.zeros(n); r[n // 3] = 65504.0; rows.append(r)
    rows.append(np.where(np.arange(n) % 2 == 0, 65504.0, -65504.0))
    r = np.zeros(n); r[7] = -3.0; rows.append(r)
    rows.append(np.where(np.arange(n) < n // 2, 1 / 3, -1 / 3))
    rows.append(np.where(np.arange(n) % 3 == 0, 5.96e-8, -1.2e-7))
    rows.append(np.where(np.arange(n) % 2 == 0, 6.1e-5, -6.1e-5))
    r = np.zeros(n); r[n - 1] = 0.125; rows.append(r)
    rows.append(real[0] * 1e-4)
    rows.append(np.linspace(-1, 1, n))
    rows.append(-np.linspace(-1, 1, n))
    rows.append(2.0 ** (np.arange(n) % 16 - 8))
    rows.append(real[1] * 1000)
    i = np.arange(n)
    rows.append(np.full(n, -0.0))
    rows.append(np.where(i % 2 == 0, -0.0, 0.0))
    zeros = np.where(i % 3 == 0, -0.0, 0.0)
    rows.append(np.where(i % 37 == 36, 0.25, zeros))
    rows.append(np.where(i % 41 == 40, -0.5, zeros))
    return np.stack(rows).astype(np.float16)


def main():
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch=arch)
    copy_metadata(r, w)
    for t in r.tensors:
        data = np.array(t.data)
        if t.tensor_type == gguf.GGMLQuantizationType.F16 and (t.name.startswith(("blk.0.", "blk.1.")) or t.name == "token_embd.weight"):
            data = data.copy()
            p = patterns(data.shape[1], data[:2].astype(np.float32))
            data[:len(p)] = p
        w.add_tensor(t.name, data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(dst)


if __name__ == "__main__":
    main()
