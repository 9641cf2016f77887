#!/usr/bin/env python3
"""Canonical JSON dump of a GGUF file as llama.cpp's gguf-py reads it.

The Swift tests build the same document from Ingot's reader and require equality, so every
metadata value and every tensor (name, type, dims, absolute offset, byte count, CRC-32 of the
bytes) is checked against gguf-py. Encoding: integers as JSON integers; FLOAT32/FLOAT64 as
{"f32": bits} / {"f64": bits}; strings as text, or {"hex": ...} when not UTF-8; arrays as
{"array": ELEMENT_TYPE, "items": [...]} (nested arrays nest).

usage: gguf_dump.py FILE.gguf
"""
import json
import struct
import sys
import zlib

from gguf import GGUFReader, GGUFValueType


def decode(parts, i, gtype):
    if gtype == GGUFValueType.STRING:
        raw = parts[i + 1].tobytes()
        try:
            return raw.decode("utf-8"), i + 2
        except UnicodeDecodeError:
            return {"hex": raw.hex()}, i + 2
    if gtype == GGUFValueType.ARRAY:
        itype = GGUFValueType(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(count):
            v, i = decode(parts, i, itype)
            items.append(v)
        return {"array": itype.name, "items": items}, i
    v = parts[i][0]
    if gtype == GGUFValueType.FLOAT32:
        return {"f32": struct.unpack("<I", struct.pack("<f", float(v)))[0]}, i + 1
    if gtype == GGUFValueType.FLOAT64:
        return {"f64": struct.unpack("<Q", struct.pack("<d", float(v)))[0]}, i + 1
    if gtype == GGUFValueType.BOOL:
        return bool(v), i + 1
    return int(v), i + 1


def dump(path):
    r = GGUFReader(path)
    metadata = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        gtype = field.types[0]
        value, end = decode(field.parts, 3, gtype)
        assert end == len(field.parts), key
        metadata.append({"key": key, "type": gtype.name, "value": value})
    tensors = []
    for t in r.tensors:
        raw = r.data[t.data_offset : t.data_offset + t.n_bytes]
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "bytes": int(t.n_bytes),
            "crc32": zlib.crc32(raw.tobytes()),
        })
    version = int(r.fields["GGUF.version"].parts[-1][0])
    return {"version": version, "alignment": int(r.alignment), "dataOffset": int(r.data_offset),
            "metadata": metadata, "tensors": tensors}


if __name__ == "__main__":
    json.dump(dump(sys.argv[1]), sys.stdout, ensure_ascii=False)
