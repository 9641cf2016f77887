#!/usr/bin/env python3
"""Writes the Hugging Face tokenizer.json equivalent of a GGUF byte-level BPE tokenizer (SmolLM2's by default):
vocab and merges from tokenizer.ggml.tokens/merges, control tokens as special added tokens, and the pre-tokenizer
of tokenizer.ggml.pre (smollm: Digits(individual) + ByteLevel; gpt-2: ByteLevel; llama-bpe, qwen2, deepseek-v3,
gpt-4o, llama4 and tekken: their Split regexes as their models' tokenizer.json files write them + ByteLevel without
regex). Used by tools/check-tokenizer.py to check `ingot tokenize` on tokenizer.json,
with the `tokenizers` package (if installed) as a second reference.

A SentencePiece vocabulary (tokenizer.ggml.model llama: Llama 2's, Phi-3's, Baichuan's) becomes the BPE tokenizer.json
that Transformers' converters write for such a model: the pieces as vocabulary, byte fallback, `<unk>` as unknown token,
and merges derived from the pieces as Transformers' `generate_merges` derives them (every split of a piece into two
pieces, ordered by the piece's score, then by the ids of the two halves). FORM says how spaces become U+2581:
`legacy` (a Prepend + Replace normalizer, as LlamaTokenizerFast with legacy=True), or a Metaspace pre-tokenizer with
prepend_scheme `first`, `always` or `never`, without or with `split` (`first-split`, `always-split`, `never-split`).

usage: tools/make-tokenizer-json.py MODEL.gguf OUT.json [PRE] [--form FORM]   (PRE overrides tokenizer.ggml.pre)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_fields import reader  # noqa: E402

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


# Texts llama.cpp makes control tokens at load whatever their stored type (llama-vocab.cpp, its end-of-generation
# list). Ingot applies that correction to a tokenizer.json too, so that it gives the GGUF's ids; such a token is written
# special here, as the tokens llama.cpp treats alike would be.
END_OF_GENERATION = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                     "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                     "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                     "<｜end▁of▁sentence｜>", "[e~["}
SPM_FORMS = ["legacy", "first", "always", "never", "first-split", "always-split", "never-split"]


def sentencepiece_document(tokens, types, scores, form, rstrip=()):
    """A SentencePiece vocabulary as SentencePiece-style BPE tokenizer.json, spaces as FORM says; added tokens whose
    text is in `rstrip` take the spaces after them (Phi-3's file says so of its special tokens)."""
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    merges = []
    for piece, score in zip(tokens, scores):
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: m[2], reverse=True)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": t in rstrip, "normalized": False,
              "special": ty != 4 or t in END_OF_GENERATION} for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (2, 3, 4)]
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    if form == "legacy":
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, replace]}
        pre = None
    else:
        scheme, _, split = form.partition("-")
        normalizer = None
        pre = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split == "split"}
    unk = next((t for t, ty in zip(tokens, types) if ty == 2), None)
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
            "pre_tokenizer": pre, "post_processor": None,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "dropout": None, "unk_token": unk, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                      "vocab": vocab, "merges": [[a, b] for a, b, _ in merges]}}


def document(path, pre=None, form=None):
    """The tokenizer.json of a GGUF's tokenizer; `pre` overrides tokenizer.ggml.pre, `form` says how a SentencePiece
    vocabulary writes its spaces. Control tokens are special added tokens, user-defined ones added tokens that are
    not special."""
    r = reader(path)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    if field(r, "tokenizer.ggml.model") == "llama":
        # llama.cpp strips the spaces right of Phi-3's special tokens but three (by model name), as Phi-3's
        # tokenizer.json marks them rstrip.
        phi3 = "phi3" in (field(r, "general.name") or "").lower().replace("-", "")
        rstrip = {t for t, ty in zip(tokens, types) if ty in (3, 4) and t not in ("<unk>", "<s>", "<|endoftext|>")} if phi3 else ()
        return sentencepiece_document(tokens, types, field(r, "tokenizer.ggml.scores"), form or "legacy", rstrip)
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
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("pre", nargs="?")
    ap.add_argument("--form", choices=SPM_FORMS)
    a = ap.parse_args()
    doc = document(a.model, a.pre, a.form)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
