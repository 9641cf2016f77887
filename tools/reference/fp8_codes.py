#!/usr/bin/env python3
"""Records ml_dtypes' FP8, FP4 (E2M1) and E8M0 codes for a million floats each, for the Swift test of Ingot's
encoders (fixtures/reference/fp8-codes.json). The floats come from a generator both sides implement (splitmix64 of
seed + (i+1)·0x9E3779B97F4A7C15): a quarter are random bit patterns (NaN, infinities, huge, tiny, subnormal),
a half have exponents around the format's range, and a quarter sit exactly halfway between two values of the
format (ties).

For each format the file holds the SHA-256 of the codes of the non-NaN inputs as Ingot must give them. FP8:
ml_dtypes' round-to-nearest-even of the value clamped to the largest finite value first (what vLLM, llm-compressor
and DeepSeek do before casting); the file counts the inputs where a bare ml_dtypes cast differs from that
(overflow: NaN for E4M3FN, infinity for E5M2), so the difference is named, not hidden. E2M1 and E8M0: ml_dtypes'
bare cast (E2M1 saturates at 6 by itself; E8M0 gives its NaN, 255, to zero, negatives and overflow, and so does
Ingot's encoder).

usage: tools/reference/fp8_codes.py   (needs numpy and ml_dtypes, which CI installs)
"""
import hashlib
import json
import os

import ml_dtypes
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COUNT, SEED = 1 << 20, 20261126
# dtype, clamp (None: the bare cast), exponent range of the ranged and tie inputs, mantissa bits dropped
FORMATS = {"e4m3fn": (ml_dtypes.float8_e4m3fn, 448.0, -12, 9, 20), "e5m2": (ml_dtypes.float8_e5m2, 57344.0, -19, 16, 21),
           "e2m1fn": (ml_dtypes.float4_e2m1fn, None, -4, 3, 22), "e8m0fnu": (ml_dtypes.float8_e8m0fnu, None, -127, 127, 23)}


def splitmix(n, seed):
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def floats(fmt):
    _, _, lo, hi, shift = FORMATS[fmt]
    z = splitmix(COUNT, SEED)
    kind = (z >> np.uint64(62)).astype(np.uint32)
    low = (z & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    sign = ((z >> np.uint64(61)) & np.uint64(1)).astype(np.uint32) << np.uint32(31)
    exponent = ((z >> np.uint64(32)) % np.uint64(hi - lo + 1)).astype(np.int64) + lo + 127
    mantissa = low & np.uint32(0x7FFFFF)
    ranged = sign | (exponent.astype(np.uint32) << np.uint32(23)) | mantissa
    tie = sign | (exponent.astype(np.uint32) << np.uint32(23)) | (mantissa & ~np.uint32((1 << shift) - 1)) | np.uint32(1 << (shift - 1))
    bits = np.where(kind == 0, low, np.where(kind == 3, tie, ranged))
    return bits.view(np.float32)


def main():
    out = {"reference": f"ml_dtypes {ml_dtypes.__version__}; tools/reference/fp8_codes.py", "count": COUNT, "seed": SEED,
           "formats": {}}
    for fmt, (dtype, top, _, _, _) in FORMATS.items():
        x = floats(fmt)
        finite = ~np.isnan(x)
        clamped = x[finite] if top is None else np.clip(x[finite], -top, top).astype(np.float32)
        codes = clamped.astype(dtype).view(np.uint8)
        bare = x[finite].astype(dtype).view(np.uint8)
        out["formats"][fmt] = {"sha256": hashlib.sha256(codes.tobytes()).hexdigest(), "non_nan": int(finite.sum()),
                               "bare_cast_differs": int((codes != bare).sum()),
                               "bare_cast_differs_because": None if top is None else "overflow: a bare cast gives " + ("NaN" if fmt == "e4m3fn" else "infinity"),
                               "first_codes": [int(c) for c in codes[:16]]}
        print(fmt, out["formats"][fmt]["non_nan"], out["formats"][fmt]["bare_cast_differs"])
    with open(os.path.join(ROOT, "fixtures/reference/fp8-codes.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
