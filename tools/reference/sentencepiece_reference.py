#!/usr/bin/env python3
"""Records what code nobody on this team wrote does with the SentencePiece folder `ingot convert` writes, for
tools/check-convert.py (fixtures/reference/sentencepiece.json):

1. tools/make-spm-model.py makes a small llama GGUF with Llama 2's tokenizer (llama.cpp's
   models/ggml-vocab-llama-spm.gguf); `ingot convert --to hf` writes its folder (tokenizer.model, tokenizer.json,
   tokenizer_config.json): their SHA-256 digests are recorded, so that CI knows it still writes what was checked.
2. llama.cpp (llama-cpp-python, vocab only, on ggml-vocab-llama-spm.gguf itself) tokenizes every Shakespeare play
   (add_bos, no special parsing): count and SHA-256 of the ids per play.
3. The sentencepiece package on the folder's tokenizer.model and transformers' AutoTokenizer on the folder tokenize
   the same plays: the plays whose ids equal llama.cpp's are counted.
4. llama.cpp's convert_hf_to_gguf.py converts the folder back: its tokenizer.* keys are compared with the source
   GGUF's, and every metadata value is recorded for check-convert to compare Ingot's own conversion against.

Needs torch, transformers, sentencepiece, gguf and llama-cpp-python 0.3.36 (not in CI).

usage: tools/reference/sentencepiece_reference.py [--ingot .build/release/ingot] [--python PYTHON_WITH_TORCH]
"""
import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LLAMA = os.path.join(ROOT, ".cache/downloads/llama_cpp_python-0.3.36/vendor/llama.cpp")
VOCAB = os.path.join(ROOT, ".cache/llama-vocab/ggml-vocab-llama-spm.gguf")
GGUF = os.path.join(ROOT, ".cache/variants/tiny-llama-spm.gguf")
FOLDER = os.path.join(ROOT, ".cache/variants/hf/tiny-llama-spm")


def digest(ids):
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


def tokenizer_keys(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    out = {}
    for k, f in r.fields.items():
        if k.startswith("tokenizer."):
            v = f.contents()
            out[k] = hashlib.sha256(json.dumps(v, ensure_ascii=False).encode()).hexdigest() if isinstance(v, list) else v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-spm-model.py"), VOCAB, GGUF], check=True)
    subprocess.run(["rm", "-rf", FOLDER], check=True)
    subprocess.run([a.ingot, "convert", GGUF, "-o", FOLDER, "--to", "hf"], check=True, capture_output=True)
    files = {n: hashlib.sha256(open(os.path.join(FOLDER, n), "rb").read()).hexdigest()
             for n in ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "config.json"]}

    from llama_cpp import Llama
    import sentencepiece
    from transformers import AutoTokenizer
    llm = Llama(model_path=VOCAB, vocab_only=True, verbose=False)
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(FOLDER, "tokenizer.model"))
    hf = AutoTokenizer.from_pretrained(FOLDER)
    plays, sp_equal, hf_equal = [], 0, 0
    for path in sorted(glob.glob(os.path.join(ROOT, ".cache/shakespeare/*.txt"))):
        raw = open(path, "rb").read()
        ids = list(llm.tokenize(raw, add_bos=True, special=False))
        text = raw.decode("utf-8")
        sp_equal += [sp.bos_id()] + sp.encode(text) == ids
        hf_equal += hf.encode(text) == ids
        plays.append({"file": os.path.basename(path), "count": len(ids), "sha256": digest(ids)})
    print(f"{len(plays)} plays: sentencepiece equal on {sp_equal}, transformers ({type(hf).__name__}) on {hf_equal}")

    ref = os.path.join(ROOT, ".cache/reference/convert-tiny-llama-spm.gguf")
    subprocess.run([a.python, os.path.join(LLAMA, "convert_hf_to_gguf.py"), FOLDER, "--outfile", ref, "--outtype", "auto"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    source_keys, ref_keys = tokenizer_keys(GGUF), tokenizer_keys(ref)
    print(f"convert_hf_to_gguf.py on the folder: tokenizer keys equal the source GGUF's: {source_keys == ref_keys}")
    sys.path.insert(0, os.path.join(ROOT, "tools/reference"))
    from convert_hf_to_gguf import describe
    record = {
        "reference": "llama-cpp-python 0.3.36 (tokenize, vocab only), sentencepiece " + sentencepiece.__version__
                     + ", transformers " + __import__("transformers").__version__
                     + "; tools/reference/sentencepiece_reference.py",
        "folder": files,
        "plays": plays,
        "sentencepiece_equal_plays": sp_equal,
        "transformers_equal_plays": hf_equal,
        "transformers_class": type(hf).__name__,
        "convert_hf_to_gguf": describe(ref),
        "convert_hf_to_gguf_tokenizer_equals_source": source_keys == ref_keys,
    }
    with open(os.path.join(ROOT, "fixtures/reference/sentencepiece.json"), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    main()
