#!/usr/bin/env python3
"""Checks `ingot tokenize` against llama.cpp's own tokenizer tests and against recorded llama.cpp ids.

1. llama.cpp's test suite (tests/test-tokenizer-0): vocabulary-only GGUFs `models/ggml-vocab-*.gguf` with inputs
   (`.inp`, cases separated by "\\n__ggml_vocab_test__\\n") and the ids llama.cpp must produce (`.out`, one line per
   case), tokenized without BOS/EOS and without parsing special tokens. They come from the llama-cpp-python sdist on
   PyPI (tools/fetch-fixtures.sh --llama-vocab puts them under .cache/llama-vocab/).
2. fixtures/tokenizer/smollm2-hard.json: hard strings and a slice of Hamlet, with the ids llama.cpp gave
   (recorded by tools/reference/llama_tokenize.py), from the GGUF and from its tokenizer.json form
   (tools/make-tokenizer-json.py; four of llama.cpp's vocabularies are also run that way).
3. fixtures/tokenizer/shakespeare.json: count and SHA-256 of the ids of every play in the Shakespeare corpus under
   llama.cpp, for SmolLM2 (also recorded by tools/reference/llama_tokenize.py).
4. fixtures/tokenizer/differential.json: random hard strings (tools/tokenizer-diff.py, whose command it records) for
   every vocabulary of 1. and SmolLM2's, plain and with special tokens parsed, with the ids llama.cpp gave; and
   differential-relabelled.json: the same for pre-tokenizers no shipped vocabulary uses (DeepSeek-V3's among them),
   on Qwen2's vocabulary relabelled with their names.
5. fixtures/tokenizer/differential-metaspace.json: the SentencePiece vocabularies of 1. (Llama 2's, Phi-3's,
   Baichuan's) as SentencePiece-style BPE tokenizer.json in each form tools/make-tokenizer-json.py writes (the legacy
   Replace + Prepend normalizer; Metaspace with each prepend scheme, with and without split), with the ids the
   tokenizers library gave on that file (tools/tokenizer-diff.py --hf).

usage: tools/check-tokenizer.py [--ingot .build/release/ingot] [--vocab-dir .cache/llama-vocab]
"""
import argparse
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from digests import ids_of_texts, plays_differing  # noqa: E402
SEP = "\n__ggml_vocab_test__\n"
# Vocabularies also checked through a tokenizer.json made from them (tools/make-tokenizer-json.py).
AS_JSON = {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf", "ggml-vocab-starcoder.gguf"}
# Tokenizers Ingot does not implement (WordPiece).
UNSUPPORTED = {"ggml-vocab-bert-bge.gguf"}


def report(label, cases, got, expected):
    """Prints one ok/FAIL line (and the first differing cases); returns True when every case matched."""
    bad = [i for i in range(len(cases)) if got[i] != expected[i]]
    if not bad:
        print(f"  ok    {label}: {len(cases)} cases")
        return True
    print(f"  FAIL  {label}: {len(bad)} of {len(cases)} cases differ")
    for i in bad[:3]:
        print(f"        {cases[i][:80]!r}\n        want {expected[i][:40]}\n        got  {got[i][:40]}")
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--vocab-dir", default=os.path.join(ROOT, ".cache/llama-vocab"))
    ap.add_argument("--shakespeare", default=os.path.join(ROOT, ".cache/shakespeare"))
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    failures = 0
    passed = 0

    vocabs = sorted(glob.glob(os.path.join(a.vocab_dir, "ggml-vocab-*.gguf")))
    if not vocabs:
        print(f"no llama.cpp vocabularies under {a.vocab_dir}", file=sys.stderr)
        return 1
    for path in vocabs:
        name = os.path.basename(path)
        if not os.path.exists(path + ".inp"):
            continue
        if name in UNSUPPORTED:
            print(f"  skip  {name} (tokenizer not supported)")
            continue
        raw = open(path + ".inp", encoding="utf-8", newline="").read()
        cases = raw.split(SEP)
        if cases and cases[-1] == "" and raw.endswith(SEP):
            cases = cases[:-1]
        expected = [[int(x) for x in line.split()] for line in open(path + ".out", encoding="utf-8").read().split("\n")]
        expected = expected[:len(cases)]
        sources = [(name, path)]
        if name in AS_JSON:
            js = os.path.join(tempfile.gettempdir(), f"ingot-{os.getpid()}-{name}.tokenizer.json")
            subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-tokenizer-json.py"), path, js], check=True)
            sources.append((name + " as tokenizer.json", js))
        for label, source in sources:
            got = ids_of_texts(a.ingot, source, cases)
            if source.endswith(".json"):
                os.unlink(source)
            if report(label, cases, got, expected):
                passed += 1
            else:
                failures += 1

    fixture = json.load(open(os.path.join(ROOT, "fixtures/tokenizer/smollm2-hard.json"), encoding="utf-8"))
    cases = fixture["cases"] + fixture["special_cases"]
    texts = [c["text"] for c in cases]
    n = len(fixture["cases"])
    smol_json = os.path.join(tempfile.gettempdir(), f"ingot-{os.getpid()}-smollm2.tokenizer.json")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-tokenizer-json.py"), a.model, smol_json], check=True)
    for label, source in [("smollm2-hard.json", a.model), ("smollm2-hard.json through tokenizer.json", smol_json)]:
        got = ids_of_texts(a.ingot, source, texts[:n], add_special=True)
        got += ids_of_texts(a.ingot, source, texts[n:], add_special=True, parse_special=True)
        if report(label, texts, got, [c["ids"] for c in cases]):
            passed += 1
        else:
            failures += 1
    os.unlink(smol_json)

    spec = importlib.util.spec_from_file_location("tokdiff", os.path.join(ROOT, "tools/tokenizer-diff.py"))
    tokdiff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokdiff)
    work = tempfile.mkdtemp(prefix="ingot-tokenizer-")
    runs = []
    for name in ["differential.json", "differential-relabelled.json", "differential-patterns.json", "differential-gemma4.json",
                 "differential-metaspace.json"]:
        runs += json.load(open(os.path.join(ROOT, "fixtures/tokenizer", name), encoding="utf-8"))["runs"]
    # Relabelled runs whose pre-tokenizer has a tokenizer.json form are checked through that file as well: the
    # tokenizer.json reader must recognise the Split patterns (DeepSeek-V3's, GPT-4o's, Tekken's) as llama.cpp's.
    spec = importlib.util.spec_from_file_location("tokjson", os.path.join(ROOT, "tools/make-tokenizer-json.py"))
    tokjson = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokjson)
    json_docs = {}
    for run in runs:
        source = a.model if run["vocab"] == "smollm2" else os.path.join(a.vocab_dir, f"ggml-vocab-{run['vocab']}.gguf")
        if "pre" in run:
            source = tokdiff.relabelled(source, run["pre"], work)
        texts = [c["text"] for c in run["cases"]]
        label = f"differential {run['vocab']}" + (f" as {run['pre']}" if "pre" in run else "") \
            + (" (special tokens parsed)" if run["parse_special"] else "")
        sources = [(label, source)]
        if "form" in run:
            # Recorded from the tokenizers library on the tokenizer.json form: only that file is run.
            js = os.path.join(work, f"{run['vocab']}-{run['form']}.tokenizer.json")
            if not os.path.exists(js):
                with open(js, "w", encoding="utf-8") as f:
                    json.dump(tokjson.document(source, form=run["form"]), f, ensure_ascii=False)
            sources = [(f"differential {run['vocab']} tokenizer.json {run['form']}"
                        + (" (special tokens parsed)" if run["parse_special"] else ""), js)]
        elif run.get("pre") in tokjson.SPLITS:
            # One reading of each vocabulary (gpt-2's reader takes seconds), the pre-tokenizer set per run.
            if run["vocab"] not in json_docs:
                json_docs[run["vocab"]] = tokjson.document(source)
            js = source[:-5] + ".tokenizer.json"
            with open(js, "w", encoding="utf-8") as f:
                json.dump(tokjson.with_pre(json_docs[run["vocab"]], run["pre"]), f, ensure_ascii=False)
            sources.append((label + " through tokenizer.json", js))
        for label, path in sources:
            got = ids_of_texts(a.ingot, path, texts, parse_special=run["parse_special"])
            if report(label, texts, got, [c["ids"] for c in run["cases"]]):
                passed += 1
            else:
                failures += 1

    shutil.rmtree(work)

    corpus = json.load(open(os.path.join(ROOT, "fixtures/tokenizer/shakespeare.json"), encoding="utf-8"))
    bad, total = plays_differing(a.ingot, a.model, corpus["files"], a.shakespeare)
    if bad:
        failures += 1
        print(f"  FAIL  shakespeare: {len(bad)} of {len(corpus['files'])} files differ: {bad[:5]}")
    else:
        passed += 1
        print(f"  ok    shakespeare: {len(corpus['files'])} files, {total} tokens")
    print(f"tokenizer: {passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
