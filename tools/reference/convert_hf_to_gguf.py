#!/usr/bin/env python3
"""Runs llama.cpp's own converter (convert_hf_to_gguf.py from the llama-cpp-python 0.3.36 sdist, fetched by
tools/fetch-fixtures.sh) on the Hugging Face folders that tools/make-hf-model.py makes from SmolLM2's weights
(llama, llama31, qwen2, qwen3), the small mixture-of-experts folders of tools/make-moe-model.py (mixtral,
qwen2moe, qwen3moe, deepseek3) and deepseek3's FP8 form (tools/make-fp8-model.py, 128x128 block scales), writes its GGUFs to .cache/reference/convert-<arch>.gguf and records every
tensor's type, shape and SHA-256 and every metadata value in fixtures/reference/convert-hf-to-gguf.json, which
tools/check-convert.py compares `ingot convert --to gguf` against.

The qwen2 folder uses Qwen2's pre-tokenizer over SmolLM2's vocabulary, a combination llama.cpp has no hash for;
it is registered as "qwen2" here, the way llama.cpp's convert_hf_to_gguf_update.py registers a new tokenizer.

Needs torch, transformers, sentencepiece and numpy (pip install torch transformers sentencepiece), not in CI.

usage: tools/reference/convert_hf_to_gguf.py [--python PYTHON]   (PYTHON: an interpreter with torch)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LLAMA = os.path.join(ROOT, ".cache/downloads/llama_cpp_python-0.3.36/vendor/llama.cpp")
ARCHS = ["llama", "llama31", "qwen2", "qwen3", "mixtral", "qwen2moe", "qwen3moe", "deepseek3", "deepseek3fp8"]
MOE = {"mixtral", "qwen2moe", "qwen3moe", "deepseek3"}   # made by tools/make-moe-model.py (random experts, SmolLM2's tokenizer)

# Runs inside the torch interpreter: registers the extra tokenizer hashes, then runs the converter's main().
RUNNER = r"""
import hashlib, re, runpy, sys
llama, extra = sys.argv[1], dict(a.split("=") for a in sys.argv[2].split(",") if a)
sys.path.insert(0, llama)
sys.path.insert(1, llama + "/gguf-py")
import conversion.base as base
chktxt = eval(re.search(r"chktxt = ('.*')\n", open(llama + "/conversion/base.py", encoding="utf-8").read()).group(1))
original = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    digest = hashlib.sha256(str(tokenizer.encode(chktxt)).encode()).hexdigest()
    return extra[digest] if digest in extra else original(self, tokenizer)
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = [llama + "/convert_hf_to_gguf.py"] + sys.argv[3:]
runpy.run_path(llama + "/convert_hf_to_gguf.py", run_name="__main__")
"""
EXTRA_HASHES = {"a70b913f1e3447c4ebd43024210ebb1f33e860fe7320b66b6eea6c99053643de": "qwen2"}


def describe(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        v = f.contents()
        if isinstance(v, list) and len(v) > 16:
            v = {"count": len(v), "sha256": hashlib.sha256(json.dumps(v, ensure_ascii=False).encode()).hexdigest()}
        meta[k] = {"type": "/".join(t.name for t in f.types), "value": v}
    tensors = []
    for t in r.tensors:
        e = {"name": t.name, "type": t.tensor_type.name, "shape": [int(x) for x in reversed(t.shape)],
             "sha256": hashlib.sha256(t.data.tobytes()).hexdigest()}
        if t.tensor_type.name == "F32" and t.n_elements <= 64 and not t.name.startswith("blk."):
            e["values"] = [float(x) for x in t.data]   # rope_freqs: compared within a few ulps
        tensors.append(e)
    return {"metadata": meta, "tensors": tensors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    out_dir = os.path.join(ROOT, ".cache/reference")
    os.makedirs(out_dir, exist_ok=True)
    record = {"reference": "convert_hf_to_gguf.py of llama.cpp in llama-cpp-python 0.3.36, --outtype auto; "
                           "tools/reference/convert_hf_to_gguf.py", "models": {}}
    for arch in ARCHS:
        folder = os.path.join(ROOT, f".cache/variants/hf/smollm2-{arch}")
        if not os.path.exists(os.path.join(folder, "config.json")):
            if arch == "deepseek3fp8":
                src = os.path.join(ROOT, ".cache/variants/hf/smollm2-deepseek3")
                subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-fp8-model.py"), src, folder, "--scheme", "block"], check=True)
            elif arch in MOE:
                llama = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
                subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-moe-model.py"), llama, folder, "--arch", arch], check=True)
            else:
                subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, folder, "--arch", arch], check=True)
        out = os.path.join(out_dir, f"convert-{arch}.gguf")
        extra = ",".join(f"{k}={v}" for k, v in EXTRA_HASHES.items())
        subprocess.run([a.python, "-c", RUNNER, LLAMA, extra, folder, "--outfile", out, "--outtype", "auto"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        record["models"][f"smollm2-{arch}"] = describe(out)
        print(f"{arch}: {len(record['models'][f'smollm2-{arch}']['tensors'])} tensors -> {out}")
    with open(os.path.join(ROOT, "fixtures/reference/convert-hf-to-gguf.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    main()
