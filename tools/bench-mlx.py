#!/usr/bin/env python3
"""`ingot quantize --scheme mlx` side by side with `mlx_lm.convert -q` (mlx-lm on mlx-cpu) on the same Hugging Face
folder, alternating runs: wall time and peak resident memory of each process (ru_maxrss). Models: SmolLM2's llama
folder and the synthetic folder with its layers repeated (tools/bench-convert.py makes it: --scale 4, 120 layers,
about 1 GB of F16), to show whether peak memory grows with the model.

usage: tools/bench-mlx.py [--runs 3] [--bits 4] [--group-size 64] [--mode affine|mxfp4|mxfp8|nvfp4]
                          [--python PYTHON_WITH_MLX_LM] [--ingot .build/release/ingot]
"""
import argparse
import os
import shutil
import statistics
import sys

from benchutil import measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--mode", default="affine")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    folders = [("SmolLM2-135M F16 folder", os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")),
               ("SmolLM2 x4 layers F16 folder", os.path.join(ROOT, ".cache/bench/smollm2-x4"))]
    out = os.path.join(ROOT, ".cache/bench/mlx-out")
    print("| input | bits/group | Ingot s | mlx_lm.convert s | speed-up | Ingot peak MiB | mlx_lm peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for label, src in folders:
        if not os.path.exists(os.path.join(src, "config.json")):
            print(f"(skipped {label}: {src} missing; tools/bench-convert.py makes it)", file=sys.stderr)
            continue
        ours, theirs = [], []
        for _ in range(a.runs):
            shutil.rmtree(out, ignore_errors=True)
            shape = ["--bits", str(a.bits), "--group-size", str(a.group_size)] if a.mode == "affine" else ["--mode", a.mode]
            ours.append(measure([a.ingot, "quantize", src, "-o", out, "--scheme", "mlx", *shape, "--json"]))
            shutil.rmtree(out, ignore_errors=True)
            theirs.append(measure([a.python, "-m", "mlx_lm.convert", "--hf-path", src, "--mlx-path", out, "-q", "--q-mode", a.mode]
                                  + (["--q-bits", str(a.bits), "--q-group-size", str(a.group_size)] if a.mode == "affine" else [])))
        shutil.rmtree(out, ignore_errors=True)
        t1, m1 = statistics.median(x[0] for x in ours), max(x[1] for x in ours)
        t2, m2 = statistics.median(x[0] for x in theirs), max(x[1] for x in theirs)
        print(f"| {label} | {a.bits}/{a.group_size if a.mode == 'affine' else a.mode} | {t1:.2f} | {t2:.2f} | {t2 / t1:.1f}x | {m1:.0f} | {m2:.0f} |")


if __name__ == "__main__":
    main()
