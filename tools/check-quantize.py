#!/usr/bin/env python3
"""Checks `ingot quantize` against llama.cpp's quantizer, file by file and tensor by tensor.

For every model and preset recorded in fixtures/reference/llama-quantize.json (written by
tools/reference/llama_quantize.py from llama-cpp-python's llama_model_quantize), quantizes the same source with
Ingot and compares the xxh64 of the whole output file; on a mismatch, lists the tensors whose type or bytes
differ. Exits 1 on any difference.

usage: INGOT=.build/release/ingot tools/check-quantize.py [--threads N] [PRESET ...]
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digests import file_xxh64 as file_digest, tensor_digests  # noqa: E402

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ingot = os.environ.get("INGOT", os.path.join(root, ".build", "release", "ingot"))
sources = {
    "smollm2-f16": ".cache/variants/smollm2-f16.gguf",
    "smollm2-edge-f16": ".cache/variants/smollm2-edge-f16.gguf",
    "smollm2-q4_1": ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "synthetic-llama": ".cache/variants/synthetic-llama-f16.gguf",
}


def main():
    args = sys.argv[1:]
    threads = "2"
    if args[:1] == ["--threads"]:
        threads, args = args[1], args[2:]
    ref = json.load(open(os.path.join(root, "fixtures", "reference", "llama-quantize.json")))
    failures = checked = 0
    with tempfile.TemporaryDirectory() as d:
        for label, m in sorted(ref["models"].items()):
            src = os.path.join(root, sources[label])
            if file_digest(src) != m["source_xxh64"]:
                print(f"FAIL {label}: source {src} is not the file the reference was recorded from")
                failures += 1
                continue
            for preset, want in sorted(m["presets"].items()):
                if args and preset not in args:
                    continue
                out = os.path.join(d, f"{label}-{preset}.gguf")
                p = subprocess.run([ingot, "quantize", src, "-o", out, "--type", preset, "--threads", threads, "--json"],
                                   capture_output=True, text=True)
                checked += 1
                if p.returncode != 0:
                    print(f"FAIL {label} {preset}: exit {p.returncode}: {p.stderr.strip()[:300]}")
                    failures += 1
                    continue
                got = file_digest(out)
                if got == want["file_xxh64"]:
                    print(f"ok   {label} {preset}: file identical to llama.cpp's ({want['bytes']} bytes)")
                else:
                    failures += 1
                    diffs = []
                    mine = tensor_digests(out)
                    for name, value in want["tensors"].items():
                        if mine.get(name) != value:
                            diffs.append(f"{name}: llama.cpp {value}, ingot {mine.get(name)}")
                    print(f"FAIL {label} {preset}: file differs; {len(diffs)} of {len(want['tensors'])} tensors differ")
                    for line in diffs[:10]:
                        print("     " + line)
                os.remove(out)
    print(f"quantize: {checked - failures} identical, {failures} different")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
