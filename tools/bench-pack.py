#!/usr/bin/env python3
"""Side-by-side benchmark of `ingot pack` / `ingot unpack` against the `zstd` command on the same
inputs, in one run. For each input: sizes (Ingot's artifact, zstd -3, zstd -19), pack time
(Ingot with 1 thread and with all cores, zstd -3 and -19 single-threaded), restore time
(single-threaded `ingot unpack`, which fsyncs, against `zstd -d` followed by a sync of its
output), decode-only time (`ingot verify --threads 1` against `zstd -t`), and peak memory.
Every restore is checked by sha256 against the original.

    tools/fetch-fixtures.sh (FETCH_MINILM=1) && tools/make-variants.py && tools/bench-pack.py [--quick]

--quick skips zstd -19 (the slowest column).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ingot = os.path.join(root, ".build", "release", "ingot")
quick = "--quick" in sys.argv
cache = os.path.join(root, ".cache")
inputs = [
    ("SmolLM2-135M Q4_1 GGUF (as shipped)", os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")),
    ("SmolLM2-135M F16 GGUF (dequantized Q4_1)", os.path.join(cache, "variants", "smollm2-f16.gguf")),
    ("SmolLM2-135M BF16 GGUF (dequantized Q4_1)", os.path.join(cache, "variants", "smollm2-bf16.gguf")),
    ("all-MiniLM-L6-v2 F32 safetensors (real weights)", os.path.join(cache, "models", "all-MiniLM-L6-v2", "model.safetensors")),
    ("all-MiniLM-L6-v2 BF16 safetensors (real weights, rounded)", os.path.join(cache, "variants", "minilm-bf16.safetensors")),
    ("all-MiniLM-L6-v2 Hugging Face folder (11 files)", os.path.join(cache, "models", "all-MiniLM-L6-v2")),
]


def perf_works():
    try:
        return subprocess.run(["perf", "stat", "-x,", "-e", "task-clock", "true"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


PERF = perf_works()


def timed(cmd):
    """(wall seconds, CPU seconds of all threads (perf's task-clock, else user + system), peak RSS MiB)."""
    with tempfile.NamedTemporaryFile() as tf, tempfile.NamedTemporaryFile() as pf:
        prefix = ["perf", "stat", "-x,", "-o", pf.name, "-e", "task-clock", "--"] if PERF else []
        start = time.monotonic()
        subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%U %S %M"] + prefix + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.monotonic() - start
        user, system, rss = open(tf.name).read().strip().splitlines()[-1].split()
        cpu = float(user) + float(system)
        if PERF:
            for line in open(pf.name):
                if "task-clock" in line:
                    cpu = float(line.split(",")[0]) / 1000
    return elapsed, cpu, int(rss) / 1024


def best(cmd, runs=5, before=None):
    """Best wall time, best CPU time, largest peak RSS over `runs` runs."""
    results = []
    for _ in range(runs):
        if before:
            before()
        results.append(timed(cmd))
    return min(r[0] for r in results), min(r[1] for r in results), max(r[2] for r in results)


def digest(path):
    if os.path.isdir(path):
        h = hashlib.sha256()
        for dirpath, _, files in sorted(os.walk(path)):
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                h.update(os.path.relpath(p, path).encode() + b"\0" + hashlib.sha256(open(p, "rb").read()).digest())
        return h.hexdigest()
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path)


subprocess.run(["swift", "build", "-c", "release", "--product", "ingot"], check=True, cwd=root, stdout=subprocess.DEVNULL)
tmp = tempfile.mkdtemp(dir=cache)
rows_size, rows_pack, rows_unpack = [], [], []
try:
    for label, path in inputs:
        if not os.path.exists(path):
            print(f"skipping {label}: {path} missing (run tools/fetch-fixtures.sh with FETCH_MINILM=1 and tools/make-variants.py)")
            continue
        original = size(path)
        # zstd works on one stream: a folder goes through tar first (as a user would ship it).
        src = path
        if os.path.isdir(path):
            src = os.path.join(tmp, "folder.tar")
            subprocess.run(["tar", "-cf", src, "-C", path, "."], check=True)
        art = os.path.join(tmp, "a.ingot")
        t1, _, m1 = best([ingot, "pack", "--threads", "1", path, "-o", art])
        tn, _, mn = best([ingot, "pack", path, "-o", art])
        ours = os.path.getsize(art)
        z3 = os.path.join(tmp, "a.zst3")
        tz3, _, _ = best(["zstd", "-q", "-f", "-T1", "-3", src, "-o", z3])
        s3 = os.path.getsize(z3)
        if not quick:
            z19 = os.path.join(tmp, "a.zst19")
            tz19, _, _ = best(["zstd", "-q", "-f", "-T1", "-19", src, "-o", z19], runs=1)
            s19 = os.path.getsize(z19)
        out = os.path.join(tmp, "restored")

        def clear():
            if os.path.isdir(out):
                shutil.rmtree(out)
            elif os.path.exists(out):
                os.remove(out)

        tu, cu, mu = best([ingot, "unpack", "--threads", "1", art, "-o", out], before=clear)
        assert digest(out) == digest(path), f"{label}: restored sha256 differs"
        tu2, _, _ = best([ingot, "unpack", art, "-o", out], before=clear)
        assert digest(out) == digest(path)
        zd = os.path.join(tmp, "restored.zstd")
        # Like ingot unpack, which syncs its output before renaming it into place.
        tzs, czd, _ = best(["sh", "-c", f"zstd -q -f -d -T1 {z3} -o {zd} && sync {zd}"])
        tv, cv, _ = best([ingot, "verify", "--threads", "1", art])
        tzt, czt, _ = best(["zstd", "-q", "-t", z3])
        pct = lambda n: f"{100 * n / original:.2f}%"
        rows_size.append(f"| {label} | {original:,} | {ours:,} ({pct(ours)}) | {s3:,} ({pct(s3)}) | "
                         + ("" if quick else f"{s19:,} ({pct(s19)}) | ") + f"{'yes' if quick or ours < s19 else 'NO'} / {'yes' if ours <= s3 else 'NO'} |")
        rows_pack.append(f"| {label} | {t1:.2f} s | {tn:.2f} s | {tz3:.2f} s | " + ("" if quick else f"{tz19:.1f} s ({tz19 / t1:.0f}x ingot's 1-thread time) | ")
                         + f"{m1:.0f} / {mn:.0f} MiB |")
        mb = original / 1e6
        rows_unpack.append(f"| {label} | {tu:.3f} s | {tu2:.3f} s | {tzs:.3f} s | {mb / cu:.0f} | {mb / czd:.0f} | {mb / cv:.0f} | {mb / czt:.0f} | {mu:.0f} MiB |")
        print(f"done: {label}", file=sys.stderr)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("\n### Size (bytes; lower is better)\n")
print("| input | original | ingot pack (level 3) | zstd -3 | " + ("" if quick else "zstd -19 | ") + "smaller than zstd -19 / no larger than zstd -3 |")
print("|---|---|---|---|" + ("" if quick else "---|") + "---|")
print("\n".join(rows_size))
print("\n### Pack time (best of 5; zstd -19 one run)\n")
print("| input | ingot pack, 1 thread | ingot pack, 2 threads | zstd -3 -T1 | " + ("" if quick else "zstd -19 -T1 | ") + "ingot peak RSS (1 / 2 threads) |")
print("|---|---|---|---|" + ("" if quick else "---|") + "---|")
print("\n".join(rows_pack))
print("\n### Restore (best of 5): wall time, and throughput per CPU-second (MB restored / CPU seconds of all threads, perf task-clock)\n")
print("| input | ingot unpack, 1 thread (fsync) | ingot unpack, 2 threads | zstd -d -T1 + sync | ingot unpack MB/CPU-s | zstd -d + sync MB/CPU-s | ingot verify MB/CPU-s | zstd -t MB/CPU-s | ingot unpack peak RSS |")
print("|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows_unpack))
