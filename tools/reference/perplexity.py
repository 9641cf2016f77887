#!/usr/bin/env python3
"""Perplexity of GGUF models through llama.cpp (llama-cpp-python), computed as llama-perplexity does: the text is
cut into chunks of n_ctx tokens, the first token of each chunk is replaced by BOS, and only the second half of
each chunk is scored. Used to show that models written by `ingot quantize` load and run in llama.cpp.

usage: tools/reference/perplexity.py TEXT_FILE [--ctx 512] [--chunks 4] MODEL.gguf ...
prints one JSON line per model: {"model", "ppl", "chunks", "tokens_scored"}
"""
import argparse
import json
import math
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=4)
    a = ap.parse_args()
    from llama_cpp import Llama
    text = open(a.text, "rb").read()
    for path in a.models:
        llm = Llama(model_path=path, n_ctx=a.ctx, n_batch=a.ctx, logits_all=True, n_threads=2, verbose=False)
        tokens = llm.tokenize(text, add_bos=False, special=False)
        nll, count = 0.0, 0
        chunks = min(a.chunks, len(tokens) // a.ctx)
        for c in range(chunks):
            chunk = list(tokens[c * a.ctx:(c + 1) * a.ctx])
            chunk[0] = llm.token_bos()
            llm.reset()
            llm.eval(chunk)
            logits = np.array(llm.scores[:a.ctx], dtype=np.float64)
            for j in range(a.ctx // 2, a.ctx - 1):
                row = logits[j]
                m = row.max()
                lse = m + math.log(np.exp(row - m).sum())
                nll += lse - row[chunk[j + 1]]
                count += 1
        print(json.dumps({"model": os.path.basename(path), "ppl": math.exp(nll / count), "chunks": chunks,
                          "tokens_scored": count}), flush=True)


if __name__ == "__main__":
    main()
