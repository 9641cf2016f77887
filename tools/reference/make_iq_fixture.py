#!/usr/bin/env python3
"""Writes fixtures/reference/iq-quantize.gguf: rows of floats, one importance weight per column, and the bytes
llama.cpp's codebook quantizers make of them, so that Ingot's IQ1/IQ2/IQ3 quantizers are tested byte for byte in
the unit tests (CI builds no llama.cpp).

Tensors:
  input                F32, ROWS x COLS: real SmolLM2 weights, heavy-tailed noise, rows with all-zero
                       sub-blocks (IQ3_S's cursor skips them), ties (F16-rounded and few distinct values, which
                       IQ1's sort must order as glibc's qsort does), tiny values near each type's threshold, one
                       value alone, negative rows
  importance           F32, COLS: positive, heavy-tailed
  weighted.T           the input quantized to T under the importance (ggml_quantize_chunk with an imatrix)
  plain.T              the same without one, for the types that allow it (IQ2_S, IQ3_XXS, IQ3_S, IQ1_M)

The bytes come from ggml_quantize_chunk in libggml-base of the native build (tools/reference/llama_imatrix.py
build), the function llama-quantize calls.

usage: tools/reference/make_iq_fixture.py [--lib .cache/llama-build/cmake/bin/libggml-base.so]
       (needs .cache/variants/smollm2-f16.gguf)
"""
import ctypes
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFReader
from gguf.constants import GGML_QUANT_SIZES

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLS = 512
WEIGHTED = [Q.IQ2_XXS, Q.IQ2_XS, Q.IQ2_S, Q.IQ3_XXS, Q.IQ3_S, Q.IQ1_S, Q.IQ1_M]
PLAIN = [Q.IQ2_S, Q.IQ3_XXS, Q.IQ3_S, Q.IQ1_M]


def rows(rng):
    f16 = os.path.join(root, ".cache", "variants", "smollm2-f16.gguf")
    t = {x.name: x for x in GGUFReader(f16).tensors}["blk.5.ffn_down.weight"]
    out = [np.array(t.data[i, :COLS], dtype=np.float32) for i in range(6)]
    out += [rng.standard_t(3, COLS).astype(np.float32) * 0.02 for _ in range(4)]
    out += [rng.normal(0, 1, COLS).astype(np.float16).astype(np.float32) for _ in range(2)]
    out += [rng.choice(np.array([-0.5, -0.25, 0, 0.25, 0.5], dtype=np.float32), COLS) for _ in range(2)]
    for zeros in (16, 32, 64):                      # whole sub-blocks of zeros at different places
        r = rng.normal(0, 0.05, COLS).astype(np.float32)
        for start in range(zeros, COLS, 3 * zeros):
            r[start:start + zeros] = 0
        out.append(r)
    for scale in (1e-6, 1e-9, 1e-13, 1e-16):        # around GROUP_MAX_EPS of each type
        out.append((rng.normal(0, 1, COLS) * scale).astype(np.float32))
    lone = np.zeros(COLS, dtype=np.float32)
    lone[37] = 0.75
    out.append(lone)
    out.append(-np.abs(rng.normal(0, 0.03, COLS)).astype(np.float32))
    out.append(np.full(COLS, 0.125, dtype=np.float32))
    return np.stack(out)


def main():
    lib = os.path.join(root, ".cache", "llama-build", "cmake", "bin", "libggml-base.so")
    if "--lib" in sys.argv:
        lib = sys.argv[sys.argv.index("--lib") + 1]
    ggml = ctypes.CDLL(lib)
    ggml.ggml_quantize_chunk.restype = ctypes.c_size_t
    ggml.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                         ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    rng = np.random.default_rng(20261127)
    x = np.ascontiguousarray(rows(rng))
    importance = np.ascontiguousarray((0.01 + 4.0 * rng.random(COLS) ** 3).astype(np.float32))
    n = x.shape[0]

    def quantize(qtype, weights):
        block, size = GGML_QUANT_SIZES[qtype]
        out = np.zeros((n, COLS // block * size), dtype=np.uint8)
        got = ggml.ggml_quantize_chunk(int(qtype), x.ctypes.data, out.ctypes.data, 0, n, COLS,
                                       None if weights is None else weights.ctypes.data)
        assert got == out.size, (qtype, got, out.size)
        return out

    path = os.path.join(root, "fixtures", "reference", "iq-quantize.gguf")
    w = gguf.GGUFWriter(path, arch="ingot-fixture")
    w.add_string("ingot.fixture.source", "ggml_quantize_chunk, llama.cpp from llama-cpp-python 0.3.36 (cmake)")
    w.add_tensor("input", x)
    w.add_tensor("importance", importance)
    for qtype in WEIGHTED:
        w.add_tensor(f"weighted.{qtype.name}", quantize(qtype, importance), raw_dtype=qtype)
    for qtype in PLAIN:
        w.add_tensor(f"plain.{qtype.name}", quantize(qtype, None), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{path}: {n} rows of {COLS}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
