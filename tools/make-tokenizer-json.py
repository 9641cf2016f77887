#!/usr/bin/env python3
"""Writes the Hugging Face tokenizer.json equivalent of a GGUF byte-level BPE tokenizer (SmolLM2's by default):
vocab and merges from tokenizer.ggml.tokens/merges, control tokens as special added tokens, and the pre-tokenizer
of tokenizer.ggml.pre (smollm: Digits(individual) + ByteLevel; gpt-2: ByteLevel; llama-bpe, qwen2, deepseek-v3,
gpt-4o, llama4 and tekken: their Split regexes as their models' tokenizer.json files write them + ByteLevel without
regex). Used by tools/check-tokenizer.py to check `ingot tokenize` on tokenizer.json,
with the `tokenizers` package (if installed) as a second reference.

usage: tools/make-tokenizer-json.py MODEL.gguf OUT.json [PRE]   (PRE overrides tokenizer.ggml.pre)
"""
import json
import sys

from gguf import GGUFReader

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# DeepSeek-V3's three splits as its tokenizer.json holds them (CR and LF as characters, not escapes).
DEEPSEEK_V3 = [r"\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
               "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*"
               "|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]
# GPT-4o's (o200k) and Tekken's, as llama-vocab.cpp's comments quote their tokenizer.json files.
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPLITS = {"llama-bpe": [LLAMA3], "llama3": [LLAMA3], "qwen2": [QWEN2], "deepseek-v3": DEEPSEEK_V3,
          "hunyuan-dense": DEEPSEEK_V3, "gpt-4o": [GPT4O], "llama4": [GPT4O], "tekken": [TEKKEN]}


def field(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def pre_tokenizer(pre):
    """tokenizer.json's pre_tokenizer for a llama.cpp pre-tokenizer name (exits for names without a form here)."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if pre in ("smollm", "starcoder", "refact", "command-r"):
        return {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]}
    if pre in ("gpt-2", "mpt", "olmo"):
        return byte_level
    if pre in SPLITS:
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False} for pattern in SPLITS[pre]]
            + [dict(byte_level, use_regex=False)]}
    sys.exit(f"pre-tokenizer {pre} has no tokenizer.json form here")


def document(path, pre=None):
    """The tokenizer.json of a GGUF's tokenizer; `pre` overrides tokenizer.ggml.pre. Control tokens are special added
    tokens, user-defined ones added tokens that are not special."""
    r = GGUFReader(path)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = field(r, "tokenizer.ggml.merges")
    pre = pre or field(r, "tokenizer.ggml.pre") or "default"
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": ty == 4,
              "special": ty == 3} for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (3, 4)]
    return with_pre({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
                     "pre_tokenizer": None, "post_processor": None,
                     "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
                     "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                               "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                               "ignore_merges": False,
                               "vocab": {t: i for i, t in enumerate(tokens)}, "merges": list(merges)}}, pre)


def with_pre(doc, pre):
    """`doc` with the pre-tokenizer (and ignore_merges) of `pre`."""
    doc = dict(doc, pre_tokenizer=pre_tokenizer(pre))
    doc["model"] = dict(doc["model"], ignore_merges=pre in ("llama-bpe", "llama3", "tekken"))
    return doc


def main():
    doc = document(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
