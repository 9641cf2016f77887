#!/usr/bin/env python3
"""Makes the F16 and BF16 forms of the real models, with reference code only (gguf-py's
dequantizer and writer, numpy, the safetensors package), into .cache/variants/:

  smollm2-f16.gguf, smollm2-bf16.gguf   SmolLM2-135M-Instruct: every Q4_1/Q8_0 tensor dequantized
                                        by gguf.quants.dequantize, stored as F16 / BF16; F32 norms
                                        and all metadata kept (general.file_type set to match)
  minilm-bf16.safetensors               all-MiniLM-L6-v2's real F32 weights rounded to BF16
                                        (round to nearest even), written by the safetensors package

usage: tools/make-variants.py   (run tools/fetch-fixtures.sh with FETCH_MINILM=1 first)
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFReader, GGUFValueType as V
from safetensors import safe_open
from safetensors.numpy import save_file  # noqa: F401
from safetensors import TensorSpec, serialize_file

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(root, "tools"))
from gguf_fields import field_value  # noqa: E402
cache = os.path.join(root, ".cache")
out_dir = os.path.join(cache, "variants")
os.makedirs(out_dir, exist_ok=True)


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def gguf_variant(src, dst, target):
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch=arch)
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value, t, sub = field_value(field)
        if key == "general.file_type":
            value = 1 if target == Q.F16 else 32   # LLAMA_FTYPE_MOSTLY_F16 / _BF16
        w.add_key_value(key, value, t, sub)
    for t in r.tensors:
        if t.tensor_type == Q.F32:
            w.add_tensor(t.name, np.array(t.data, dtype=np.float32))
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if target == Q.F16:
            w.add_tensor(t.name, x.astype(np.float16))
        else:
            bits = to_bf16_bits(x)
            w.add_tensor(t.name, bits.view(np.uint8).reshape(*bits.shape[:-1], bits.shape[-1] * 2), raw_dtype=Q.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


smol = os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
for name, target in [("smollm2-f16.gguf", Q.F16), ("smollm2-bf16.gguf", Q.BF16)]:
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
        gguf_variant(smol, path + ".tmp", target)
        os.replace(path + ".tmp", path)
    print(path)

minilm = os.path.join(cache, "models", "all-MiniLM-L6-v2", "model.safetensors")
path = os.path.join(out_dir, "minilm-bf16.safetensors")
if os.path.exists(minilm) and not os.path.exists(path):
    keep, specs = [], {}
    with safe_open(minilm, framework="numpy") as f:
        meta = f.metadata()
        for k in f.keys():
            x = f.get_tensor(k)
            if x.dtype == np.float32:
                bits = to_bf16_bits(x)
                keep.append(bits)
                specs[k] = TensorSpec(dtype="bfloat16", shape=list(x.shape), data_ptr=bits.ctypes.data, data_len=bits.nbytes)
            else:
                x = np.ascontiguousarray(x)
                keep.append(x)
                specs[k] = TensorSpec(dtype=str(x.dtype), shape=list(x.shape), data_ptr=x.ctypes.data, data_len=x.nbytes)
    serialize_file(specs, path + ".tmp", metadata=meta)
    os.replace(path + ".tmp", path)
if os.path.exists(path):
    print(path)
