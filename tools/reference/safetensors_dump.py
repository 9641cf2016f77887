#!/usr/bin/env python3
"""Canonical JSON dump of a safetensors file, or of a Hugging Face folder of shards, as the
`safetensors` package reads it: per tensor its dtype, shape, byte count, the file it is in and
the CRC-32 of its bytes, plus `__metadata__`. Tensors are sorted by name (the package's order is
not the file's). The Swift tests compare Ingot's reader against this.

usage: safetensors_dump.py FILE.safetensors | FOLDER
"""
import json
import os
import sys
import zlib

from safetensors import safe_open
import numpy as np  # noqa: F401  (safe_open with framework="numpy" needs it)


def tensors_of(path, label):
    out = []
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
        for name in f.keys():
            sl = f.get_slice(name)
            dtype = sl.get_dtype()
            shape = [int(d) for d in sl.get_shape()]
            out.append({"name": name, "dtype": dtype, "shape": shape, "file": label})
    return out, meta


def raw_bytes(path):
    """Tensor bytes by name, read the way the reference lays them out (header length, JSON, data)."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
        data = fh.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items() if k != "__metadata__"}


def dump(path):
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        pairs = [(os.path.join(path, f), f) for f in files]
    else:
        pairs = [(path, os.path.basename(path))]
    tensors, metadata = [], {}
    for full, label in pairs:
        ts, meta = tensors_of(full, label)
        raw = raw_bytes(full)
        for t in ts:
            t["bytes"] = len(raw[t["name"]])
            t["crc32"] = zlib.crc32(raw[t["name"]])
        tensors += ts
        metadata[label] = meta
    tensors.sort(key=lambda t: t["name"])
    return {"tensors": tensors, "metadata": metadata}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1]), sys.stdout, ensure_ascii=False)
