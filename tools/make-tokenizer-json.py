#!/usr/bin/env python3
"""Writes the Hugging Face tokenizer.json equivalent of a GGUF byte-level BPE tokenizer (SmolLM2's by default):
vocab and merges from tokenizer.ggml.tokens/merges, control tokens as special added tokens, and the pre-tokenizer
of tokenizer.ggml.pre (smollm: Digits(individual) + ByteLevel; gpt-2: ByteLevel; llama-bpe and qwen2: their Split
regex + ByteLevel without regex). Used by tools/check-tokenizer.py to check `ingot tokenize` on tokenizer.json,
with the `tokenizers` package (if installed) as a second reference.

usage: tools/make-tokenizer-json.py MODEL.gguf OUT.json [PRE]   (PRE overrides tokenizer.ggml.pre)
"""
import json
import sys

from gguf import GGUFReader

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def main():
    r = GGUFReader(sys.argv[1])
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = field(r, "tokenizer.ggml.merges")
    pre = sys.argv[3] if len(sys.argv) > 3 else field(r, "tokenizer.ggml.pre") or "default"
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if pre in ("smollm", "starcoder", "refact", "command-r"):
        pre_tok = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    elif pre in ("gpt-2", "mpt", "olmo"):
        pre_tok = byte_level
    elif pre in ("llama-bpe", "llama3", "qwen2"):
        pattern = LLAMA3 if pre != "qwen2" else QWEN2
        pre_tok = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            dict(byte_level, use_regex=False)]}
    else:
        sys.exit(f"pre-tokenizer {pre} has no tokenizer.json form here")
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, (t, ty) in enumerate(zip(tokens, types)) if ty == 3]
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
           "pre_tokenizer": pre_tok, "post_processor": None,
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                     "ignore_merges": pre in ("llama-bpe", "llama3"),
                     "vocab": {t: i for i, t in enumerate(tokens)}, "merges": list(merges)}}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
