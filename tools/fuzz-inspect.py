#!/usr/bin/env python3
"""Mutation sweep of `ingot inspect`: random byte flips, insertions, deletions, truncations and
splices of the committed fixtures (and of the real model's header), each run through the binary.
Every run must end with exit 0 (the file still parses) or 1 (a FormatError), never a signal or a
trap, and finish in under a second.

    swift build -c release && python3 tools/fuzz-inspect.py [ITERATIONS] [SEED]
"""
import os
import random
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ingot = os.environ.get("INGOT", os.path.join(root, ".build", "release", "ingot"))
iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)

seeds = []
for d in ["fixtures/gguf", "fixtures/safetensors"]:
    for f in sorted(os.listdir(os.path.join(root, d))):
        p = os.path.join(root, d, f)
        if os.path.isfile(p):
            seeds.append((f, open(p, "rb").read()))
model = os.path.join(root, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
if os.path.exists(model):
    seeds.append(("smol-header.gguf", open(model, "rb").read()[:1785664]))


def mutate(data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        hot = min(len(b), 4096) or 1
        i = rng.randrange(hot) if rng.random() < 0.8 else rng.randrange(max(len(b), 1))
        if op < 0.4 and b:
            b[i % len(b)] ^= 1 << rng.randrange(8)
        elif op < 0.6 and b:
            b[i % len(b)] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif op < 0.7:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op < 0.8:
            del b[i:i + rng.randint(1, 16)]
        elif op < 0.9:
            b = b[:rng.randrange(len(b) + 1)]
        elif len(b) >= 8:
            j = rng.randrange(len(b) - 7)
            b[j:j + 8] = rng.choice([2**63, 2**64 - 1, 2**32, 0, 1 << 40]).to_bytes(8, "little")
    return bytes(b)


counts = {0: 0, 1: 0}
bad = 0
slowest = 0.0
with tempfile.TemporaryDirectory() as tmp:
    for n in range(iterations):
        name, data = rng.choice(seeds)
        ext = ".gguf" if name.endswith(".gguf") else ".safetensors"
        path = os.path.join(tmp, "case" + ext)
        with open(path, "wb") as f:
            f.write(mutate(data))
        start = time.monotonic()
        p = subprocess.run([ingot, "inspect", "--json", path], capture_output=True)
        elapsed = time.monotonic() - start
        slowest = max(slowest, elapsed)
        if p.returncode in counts and elapsed < 1.0:
            counts[p.returncode] += 1
        else:
            bad += 1
            keep = os.path.join(root, ".cache", f"fuzz-failure-{n}{ext}")
            os.makedirs(os.path.dirname(keep), exist_ok=True)
            with open(keep, "wb") as f, open(path, "rb") as src:
                f.write(src.read())
            print(f"FAIL exit {p.returncode} after {elapsed:.3f}s from {name}: kept {keep}\n{p.stderr.decode()[-400:]}")
print(f"fuzz: {iterations} mutations, {counts[0]} parsed, {counts[1]} refused, slowest {slowest:.3f}s")
print(f"{counts[0] + counts[1]} passed, {bad} failed")
sys.exit(1 if bad else 0)
