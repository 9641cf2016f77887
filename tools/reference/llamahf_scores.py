#!/usr/bin/env python3
"""What llama.cpp makes of a SentencePiece-style BPE tokenizer.json converted its own way.

llama.cpp's converter reads a llama folder without tokenizer.model through gguf-py's LlamaHfVocab, which gives every
token the score -1000; llama.cpp's SentencePiece tokenizer merges by score, so with all scores equal it merges left to
right instead of in the file's merge order. This writes Llama 2's vocabulary (llama.cpp's ggml-vocab-llama-spm.gguf)
with those scores, tokenizes Shakespeare's lines with llama.cpp, and counts the lines whose ids equal the tokenizers
library's on the same vocabulary as tokenizer.json (tools/make-tokenizer-json.py, legacy form). Ingot's conversion
scores tokens by merge rank instead (formats/tokenizer.md); tools/tokenizer-diff.py --hf checks that.

Needs llama-cpp-python, gguf and tokenizers.

usage: tools/reference/llamahf_scores.py [--lines 2000]
"""
import argparse
import importlib.util
import json
import os
import tempfile

from gguf import GGUFReader, GGUFWriter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, ".cache/llama-vocab/ggml-vocab-llama-spm.gguf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2000)
    a = ap.parse_args()
    import llama_cpp
    from tokenizers import Tokenizer
    r = GGUFReader(VOCAB)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    path = os.path.join(tempfile.mkdtemp(), "flat.gguf")
    w = GGUFWriter(path, "llama")
    for add, v in [(w.add_block_count, 1), (w.add_context_length, 64), (w.add_embedding_length, 8),
                   (w.add_feed_forward_length, 8), (w.add_head_count, 1)]:
        add(v)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores([-1000.0] * len(tokens))
    w.add_token_types(r.fields["tokenizer.ggml.token_type"].contents())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    llm = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    spec = importlib.util.spec_from_file_location("tokjson", os.path.join(ROOT, "tools/make-tokenizer-json.py"))
    tokjson = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokjson)
    hf = Tokenizer.from_str(json.dumps(tokjson.document(VOCAB, form="legacy")))
    lines = []
    for name in sorted(os.listdir(os.path.join(ROOT, ".cache/shakespeare"))):
        lines += [l for l in open(os.path.join(ROOT, ".cache/shakespeare", name), encoding="utf-8").read().split("\n") if len(l) > 20]
    lines = lines[:a.lines]
    same = sum(list(llm.tokenize(l.encode(), add_bos=False, special=False)) == hf.encode(l, add_special_tokens=False).ids
               for l in lines)
    print(f"scores -1000 (LlamaHfVocab): {same} of {len(lines)} Shakespeare lines tokenize as tokenizers does "
          f"(llama-cpp-python {llama_cpp.__version__})")


if __name__ == "__main__":
    main()
