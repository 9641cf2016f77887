#!/usr/bin/env python3
"""Benchmark: `ingot quantize` against llama.cpp's quantizer (llama_model_quantize, the code of llama-quantize),
same input, same preset, same thread count, in one run, alternating the two tools.

Both sides end with their output on disk: Ingot syncs its file before renaming it into place; llama.cpp's call
is followed by os.sync() inside the timed region. Wall time is the whole process for Ingot and the call plus
sync for llama.cpp (Python's start-up and library load are left out of its time, in its favour). Peak memory
is the maximum resident set of each process (/usr/bin/time %M; for llama.cpp that includes Python, ~30 MB).
Each cell is the median of --runs runs; the page cache is left warm, and `sync` runs before every run.

usage: tools/bench-quantize.py [--runs 3] [--threads 2] [--big] [--presets Q8_0,Q4_0,Q4_K_M,Q6_K,Q2_K]
  --big adds the 1.1B-parameter synthetic llama (tools/make-synthetic-model.py; made on first use, 2.1 GB)
       tools/bench-quantize.py --kernels [--runs 3]
  one thread, Ingot alone, with each kernel build (INGOT_KERNELS=reference, baseline, best) on the synthetic
  llama (256-multiple rows, so the K-quant kernels do all the work)
Prints Markdown rows for BENCHMARKS.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ingot = os.environ.get("INGOT", os.path.join(root, ".build", "release", "ingot"))


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MiB, stdout)."""
    subprocess.run(["sync"])
    p = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    line = [l for l in p.stderr.splitlines() if l.startswith("TIME ")][-1]
    _, wall, rss = line.split()
    return float(wall), int(rss) / 1024, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--presets", default="Q8_0,Q4_0,Q4_K_M,Q6_K,Q2_K")
    ap.add_argument("--kernels", action="store_true")
    a = ap.parse_args()
    if a.kernels:
        kernel_table(a)
        return
    models = [("SmolLM2-135M F16", os.path.join(root, ".cache/variants/smollm2-f16.gguf"))]
    if a.big:
        big = os.path.join(root, ".cache/variants/synthetic-1b-f16.gguf")
        if not os.path.exists(big):
            subprocess.run([sys.executable, os.path.join(root, "tools/make-synthetic-model.py"), big, "--hidden", "2048",
                            "--ffn", "5632", "--layers", "22", "--heads", "32", "--kv-heads", "4"], check=True)
        models.append(("synthetic llama 1.1B F16", big))
    ref = os.path.join(root, "tools/reference/llama_quantize.py")
    print(f"| input | preset | threads | Ingot s | llama.cpp s | speed-up | Ingot peak MiB | llama.cpp peak MiB |")
    print(f"|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=os.path.join(root, ".cache")) as d:
        for label, path in models:
            size = os.path.getsize(path)
            for preset in a.presets.split(","):
                ours, theirs, our_rss, their_rss = [], [], [], []
                for _ in range(a.runs):
                    out = os.path.join(d, "ingot.gguf")
                    w, rss, _ = timed([ingot, "quantize", path, "-o", out, "--type", preset, "--threads", str(a.threads), "--json"])
                    ours.append(w); our_rss.append(rss)
                    os.remove(out)
                    out = os.path.join(d, "llama.gguf")
                    _, rss, stdout = timed([sys.executable, ref, "time", path, preset, out, str(a.threads), "--sync"])
                    theirs.append(json.loads(stdout.strip().splitlines()[-1])["seconds"]); their_rss.append(rss)
                    os.remove(out)
                o, t = statistics.median(ours), statistics.median(theirs)
                print(f"| {label} ({size / 2**20:.0f} MiB) | {preset} | {a.threads} | {o:.2f} | {t:.2f} | {t / o:.2f}x "
                      f"| {max(our_rss):.0f} | {max(their_rss):.0f} |", flush=True)


def kernel_table(a):
    path = os.path.join(root, ".cache/variants/synthetic-llama-f16.gguf")
    if not os.path.exists(path):
        subprocess.run([sys.executable, os.path.join(root, "tools/make-synthetic-model.py"), path], check=True)
    choices = ["reference", "baseline", "best"]
    print("| preset | " + " | ".join(f"{c} s" for c in choices) + " | best vs baseline | best vs reference |")
    print("|---|" + "---|" * (len(choices) + 2))
    with tempfile.TemporaryDirectory(dir=os.path.join(root, ".cache")) as d:
        out = os.path.join(d, "k.gguf")
        for preset in a.presets.split(","):
            t = {}
            for c in choices:
                runs = []
                for _ in range(a.runs):
                    env = dict(os.environ, INGOT_KERNELS=c)
                    subprocess.run(["sync"])
                    p = subprocess.run([ingot, "quantize", path, "-o", out, "--type", preset, "--threads", "1", "--json"],
                                       capture_output=True, text=True, env=env, check=True)
                    runs.append(json.loads(p.stdout)["seconds"])
                t[c] = min(runs)
            print(f"| {preset} | " + " | ".join(f"{t[c]:.2f}" for c in choices)
                  + f" | {t['baseline'] / t['best']:.2f}x | {t['reference'] / t['best']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
