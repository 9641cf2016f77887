#!/usr/bin/env python3
"""Writes fixtures/dequant/blocks.gguf: for every GGUF type Ingot dequantizes, blocks and the floats gguf-py's
`gguf.quants.dequantize` makes of them, so that Ingot's dequantizers are tested against gguf-py in CI.

For each type T there are up to two 2-D tensors of quantized data and their expected F32 values:
  random.T / random.T.expected   random block bytes (every bit pattern: scales may be NaN, inf, subnormal)
  real.T / real.T.expected       real SmolLM2 weights quantized to T: by llama.cpp (K-quants, IQ4_*, through
                                 llama_model_quantize) or by gguf-py (Q4_0..Q8_0, TQ1_0, TQ2_0, MXFP4, BF16)

usage: tools/reference/make_dequant_fixture.py   (needs .cache/variants/smollm2-f16.gguf and llama-cpp-python)
"""
import os
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFReader
from gguf.constants import GGML_QUANT_SIZES

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "tools", "reference"))
import llama_quantize  # noqa: E402

DEQUANT = [Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K,
           Q.IQ2_XXS, Q.IQ2_XS, Q.IQ2_S, Q.IQ3_XXS, Q.IQ3_S, Q.IQ1_S, Q.IQ1_M, Q.IQ4_NL, Q.IQ4_XS, Q.TQ1_0,
           Q.TQ2_0, Q.MXFP4, Q.NVFP4]
# Presets whose llama.cpp output (with --pure) holds real blocks of the type in ffn_down (rows of 1536 values).
LLAMA = {Q.Q2_K: "Q2_K", Q.Q3_K: "Q3_K_S", Q.Q4_K: "Q4_K_S", Q.Q5_K: "Q5_K_S", Q.Q6_K: "Q6_K",
         Q.IQ4_NL: "IQ4_NL", Q.IQ4_XS: "IQ4_XS"}
GGUFPY = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.TQ1_0, Q.TQ2_0, Q.MXFP4, Q.BF16, Q.F16]
ROW = 512  # values per row: two 256-value super-blocks or sixteen 32-value blocks
ROWS = 2


def main():
    rng = np.random.default_rng(20261123)
    out = os.path.join(root, "fixtures", "dequant", "blocks.gguf")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    w = gguf.GGUFWriter(out, arch="ingot-fixture")
    f16 = os.path.join(root, ".cache", "variants", "smollm2-f16.gguf")
    src = {t.name: t for t in GGUFReader(f16).tensors}
    real_rows = np.array(src["blk.3.ffn_down.weight"].data[:ROWS, :ROW], dtype=np.float32)

    def add(name, qtype, raw):
        block, size = GGML_QUANT_SIZES[qtype]
        raw = np.ascontiguousarray(raw)
        raw = (raw if raw.dtype == np.uint8 else raw.view(np.uint8)).reshape(ROWS, ROW // block * size)
        expected = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        w.add_tensor(name, raw, raw_dtype=qtype)
        w.add_tensor(name + ".expected", expected)

    with tempfile.TemporaryDirectory() as d:
        llama_files = {}
        for qtype, preset in LLAMA.items():
            path = os.path.join(d, preset + ".gguf")
            llama_quantize.quantize(f16, path, preset, 2, pure=True)
            llama_files[qtype] = path
        for qtype in DEQUANT:
            block, size = GGML_QUANT_SIZES[qtype]
            add(f"random.{qtype.name}", qtype, rng.integers(0, 256, ROWS * ROW // block * size, dtype=np.uint8))
            if qtype in LLAMA:
                t = {x.name: x for x in GGUFReader(llama_files[qtype]).tensors}["blk.3.ffn_down.weight"]
                assert t.tensor_type == qtype, (qtype, t.tensor_type)
                raw = np.array(t.data)[:ROWS, : ROW // block * size]
                add(f"real.{qtype.name}", qtype, raw)
            elif qtype in GGUFPY:
                add(f"real.{qtype.name}", qtype, gguf.quants.quantize(real_rows, qtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    print(f"{out}: {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
