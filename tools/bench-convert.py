#!/usr/bin/env python3
"""Ingot's `convert --to gguf` side by side with llama.cpp's convert_hf_to_gguf.py (llama-cpp-python 0.3.36 sdist,
run with torch), on the same Hugging Face folder, alternating runs: wall time and peak resident memory of each
process (ru_maxrss). Also a synthetic folder with SmolLM2's layers repeated (--scale 4: 120 layers, about 1 GB of
F16), to show whether peak memory grows with model size. And Ingot's GGUF -> folder and FP8 -> BF16 folder.

usage: tools/bench-convert.py [--runs 3] [--scale 4] [--python PYTHON_WITH_TORCH] [--ingot .build/release/ingot]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys


from benchutil import measure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA = os.path.join(ROOT, ".cache/downloads/llama_cpp_python-0.3.36/vendor/llama.cpp")


def scaled_folder(src, scale):
    out = os.path.join(ROOT, f".cache/bench/smollm2-x{scale}")
    if not os.path.exists(os.path.join(out, "config.json")):
        subprocess.run([sys.executable, __file__, "--make-scaled", src, out, str(scale)], check=True)
    return out


def make_scaled(src, out, scale):
    from safetensors.numpy import load_file, save_file
    os.makedirs(out, exist_ok=True)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    config = json.load(open(os.path.join(src, "config.json")))
    layers = config["num_hidden_layers"]
    big = {}
    for name, t in tensors.items():
        if name.startswith("model.layers."):
            i = int(name.split(".")[2])
            rest = name.split(".", 3)[3]
            for k in range(scale):
                big[f"model.layers.{i + k * layers}.{rest}"] = t
        else:
            big[name] = t
    save_file(big, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    config["num_hidden_layers"] = layers * scale
    json.dump(config, open(os.path.join(out, "config.json"), "w"))
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(src, f), os.path.join(out, f))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--make-scaled":
        return make_scaled(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    src = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
    big = scaled_folder(src, a.scale)
    tmp = os.path.join(ROOT, ".cache/bench")
    rows = []
    for label, folder in [("SmolLM2-135M F16 folder", src), (f"x{a.scale} layers ({a.scale * 30})", big)]:
        ours, theirs = [], []
        for _ in range(a.runs):
            out = os.path.join(tmp, "ingot.gguf")
            ours.append(measure([a.ingot, "convert", folder, "-o", out, "--to", "gguf", "--dtype", "f16"]))
            os.unlink(out)
            out = os.path.join(tmp, "llama.gguf")
            theirs.append(measure([a.python, os.path.join(LLAMA, "convert_hf_to_gguf.py"), folder, "--outfile", out, "--outtype", "f16"]))
            os.unlink(out)
        t_o, m_o = min(x[0] for x in ours), max(x[1] for x in ours)
        t_t, m_t = min(x[0] for x in theirs), max(x[1] for x in theirs)
        rows.append(f"| HF -> GGUF, {label} | {t_o:.2f} s | {t_t:.2f} s | {t_t / t_o:.1f}x | {m_o:.0f} MiB | {m_t:.0f} MiB |")
        print(rows[-1], flush=True)
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    fp8 = os.path.join(ROOT, ".cache/variants/hf/smollm2-fp8-block")
    for label, cmd in [("GGUF -> folder (F16)", [a.ingot, "convert", f16, "-o", os.path.join(tmp, "hf-out"), "--to", "hf"]),
                       ("FP8 folder -> BF16 folder", [a.ingot, "convert", fp8, "-o", os.path.join(tmp, "hf-out"), "--to", "hf", "--dtype", "bf16"])]:
        if not os.path.exists(cmd[2]):
            continue
        best = []
        for _ in range(a.runs):
            best.append(measure(cmd))
            shutil.rmtree(os.path.join(tmp, "hf-out"))
        rows.append(f"| {label}, Ingot only | {min(x[0] for x in best):.2f} s | | | {max(x[1] for x in best):.0f} MiB | |")
        print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
