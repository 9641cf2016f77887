#!/usr/bin/env python3
"""llama.cpp's quantizer (llama_model_quantize from llama-cpp-python, the same code as llama-quantize) as the
reference for `ingot quantize`.

  record:  tools/reference/llama_quantize.py record OUT.json LABEL=MODEL.gguf[:PRESET,PRESET...] ...
           (fixtures/reference/llama-quantize.json came from
            record fixtures/reference/llama-quantize.json smollm2-f16=.cache/variants/smollm2-f16.gguf
                   smollm2-edge-f16=.cache/variants/smollm2-edge-f16.gguf
                   smollm2-q4_1=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf:Q8_0,Q4_K_M,Q6_K,F16
                   synthetic-llama=.cache/variants/synthetic-llama-f16.gguf   (tools/make-synthetic-model.py))
           quantizes each model to each preset with llama.cpp and records, per preset, the xxh64 of the whole
           output file and of every tensor's bytes with its type, plus the seconds the call took.
           With --llama-quantize BIN (first), the native llama-quantize that tools/reference/llama_imatrix.py builds
           with cmake from the same sdist runs instead of the library; the model's entry names that tool. The two
           write the same bytes (smollm2-edge-f16 was re-recorded this way when its signed-zero rows 16-19 came in).
  time:    tools/reference/llama_quantize.py time MODEL.gguf PRESET OUT.gguf THREADS [--sync]
           one timed call (with --sync, followed by os.sync() inside the timing); prints {"seconds": ...}
           (used by tools/bench-quantize.py).

Needs `pip install llama-cpp-python` (builds llama.cpp; about 10 minutes on 2 cores). The recorded JSON is
committed under fixtures/reference/ so that CI compares against it without building llama.cpp.
"""
import ctypes
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from digests import file_xxh64 as digest_file, tensor_digests  # noqa: E402

# llama.h LLAMA_FTYPE_* for the presets Ingot writes.
FTYPES = {
    "F16": 1, "BF16": 32, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K_S": 11,
    "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
    "IQ4_NL": 25, "IQ4_XS": 30, "MXFP4_MOE": 38,
}
ALL = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K", "Q4_0",
       "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "MXFP4_MOE", "F16", "BF16"]


def quantize(src, dst, preset, threads, pure=False, sync=False):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = FTYPES[preset]
    p.nthread = threads
    p.allow_requantize = True
    p.pure = pure
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if sync:
        os.sync()
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"llama_model_quantize failed ({rc}) for {preset}")
    return seconds


def quantize_native(binary, src, dst, preset, threads):
    """The same call through the llama-quantize command (allow-requantize, as above)."""
    import subprocess
    t0 = time.perf_counter()
    p = subprocess.run([binary, "--allow-requantize", src, dst, preset, str(threads)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"llama-quantize failed ({p.returncode}) for {preset}: {p.stderr[-500:]}")
    return time.perf_counter() - t0


def describe(path):
    return {"file_xxh64": digest_file(path), "bytes": os.path.getsize(path), "tensors": tensor_digests(path)}


def main():
    if sys.argv[1] == "time":
        src, preset, dst, threads = sys.argv[2:6]
        print(json.dumps({"seconds": quantize(src, dst, preset, int(threads), sync="--sync" in sys.argv)}))
        return
    assert sys.argv[1] == "record"
    args = sys.argv[2:]
    native = None
    if args[0] == "--llama-quantize":
        native, args = args[1], args[2:]
    out = args[0]
    if os.path.exists(out):  # models recorded earlier are kept unless recorded again
        result = json.load(open(out))
    else:
        result = {"tool": "llama-cpp-python " + __import__("llama_cpp").__version__, "models": {}}
    for spec in args[1:]:
        label, rest = spec.split("=", 1)
        path, _, presets = rest.partition(":")
        presets = presets.split(",") if presets else ALL
        entry = {"source": os.path.basename(path), "source_xxh64": digest_file(path), "presets": {}}
        if native:
            entry["tool"] = ("llama-quantize: llama.cpp of the llama-cpp-python 0.3.36 sdist, cmake Release GGML_NATIVE "
                             "(tools/reference/llama_imatrix.py build)")
        with tempfile.TemporaryDirectory() as d:
            for preset in presets:
                dst = os.path.join(d, preset + ".gguf")
                seconds = quantize_native(native, path, dst, preset, 2) if native else quantize(path, dst, preset, 2)
                entry["presets"][preset] = describe(dst) | {"seconds": round(seconds, 3)}
                os.remove(dst)
                print(f"{label} {preset}: {entry['presets'][preset]['file_xxh64']} ({seconds:.2f} s)", file=sys.stderr)
        result["models"][label] = entry
    with open(out, "w") as f:
        dump(result, f)


def dump(d, f):
    """One line per preset: small enough to commit, still readable in a diff."""
    f.write('{"tool": %s, "models": {\n' % json.dumps(d["tool"]))
    models = sorted(d["models"].items())
    for i, (label, m) in enumerate(models):
        tool = ' "tool": %s,' % json.dumps(m["tool"]) if "tool" in m else ""
        f.write(' %s: {"source": %s, "source_xxh64": %s,%s "presets": {\n'
                % (json.dumps(label), json.dumps(m["source"]), json.dumps(m["source_xxh64"]), tool))
        presets = sorted(m["presets"].items())
        for j, (k, v) in enumerate(presets):
            f.write('  %s: %s%s\n' % (json.dumps(k), json.dumps(v, sort_keys=True, separators=(",", ":")),
                                      "," if j + 1 < len(presets) else ""))
        f.write(' }}%s\n' % ("," if i + 1 < len(models) else ""))
    f.write('}}\n')


if __name__ == "__main__":
    main()
