#!/usr/bin/env python3
"""FP8 quantization throughput against the speed of reading the input, on the same Hugging Face folder, runs
alternating: `ingot quantize --scheme fp8` (per channel, and DeepSeek's 128x128 blocks) beside reading every
safetensors shard into memory (`cat > /dev/null`, the page cache warm as for every run) and beside `ingot convert
--to hf`, which reads and writes the same folder without quantizing. Reported: median seconds of each and the input
bytes per second.

usage: tools/bench-fp8.py [--runs 3] [--threads 2] [--ingot .build/release/ingot]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, **kw):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    out = os.path.join(ROOT, ".cache/bench/fp8-out")
    print("| input | read (cat) s | ingot convert --to hf s | fp8 channel s | fp8 block s | fp8 block input MB/s |")
    print("|---|---|---|---|---|---|")
    for label, src in [("SmolLM2-135M F16 folder", os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")),
                       ("SmolLM2 x4 layers F16 folder", os.path.join(ROOT, ".cache/bench/smollm2-x4"))]:
        if not os.path.exists(os.path.join(src, "config.json")):
            continue
        shards = sorted(os.path.join(src, f) for f in os.listdir(src) if f.endswith(".safetensors"))
        size = sum(os.path.getsize(s) for s in shards)
        times = {"cat": [], "convert": [], "channel": [], "block": []}
        for _ in range(a.runs):
            times["cat"].append(timed(["cat", *shards]))
            for key, args in [("convert", ["convert", src, "-o", out, "--to", "hf"]),
                              ("channel", ["quantize", src, "-o", out, "--scheme", "fp8", "--strategy", "channel"]),
                              ("block", ["quantize", src, "-o", out, "--scheme", "fp8", "--strategy", "block"])]:
                shutil.rmtree(out, ignore_errors=True)
                times[key].append(timed([a.ingot, *args, "--threads", str(a.threads)] if key != "convert" else [a.ingot, *args]))
        shutil.rmtree(out, ignore_errors=True)
        m = {k: statistics.median(v) for k, v in times.items()}
        print(f"| {label} ({size / 1e6:.0f} MB) | {m['cat']:.2f} | {m['convert']:.2f} | {m['channel']:.2f} | {m['block']:.2f} | "
              f"{size / 1e6 / m['block']:.0f} |")


if __name__ == "__main__":
    main()
