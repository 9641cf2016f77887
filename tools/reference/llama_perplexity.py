#!/usr/bin/env python3
"""Perplexity and KL divergence through llama.cpp (llama-cpp-python), computed exactly as llama-perplexity does
(tools/perplexity/perplexity.cpp): the text is tokenized with add_special=true / parse_special=false, cut into
n_ctx-token chunks, the first token of each chunk becomes BOS where the model adds one, and the logits of positions
n_ctx/2 .. n_ctx-2 score the next token. KL divergence uses llama-perplexity's own path: the base model's
log-probabilities are quantized to 16 bits per token (its --kl-divergence-base file) and compared with its formulas.

usage: tools/reference/llama_perplexity.py TEXT [--ctx 512] [--chunks 20] [--threads 2] [--base BASE.gguf]
                                           [--record fixtures/reference/llama-perplexity.json] MODEL.gguf ...
prints one JSON object per model; with --record, merges them into that file (keyed by model file name and base).
"""
import argparse
import json
import math
import os
import resource
import time

import numpy as np


def without_repacking(off=True):
    """Loads models without llama.cpp's extra buffer types (weight repacking for its AMX and other kernels, the
    tools' --no-repack) while `off`: on CPUs whose AMX state the kernel does not grant, those kernels stop the
    process with SIGILL on quantized weights, and llama.cpp's scheduler asserts on deepseek2 graphs with them.
    The products then run in ggml's generic CPU kernels (F16 logits move by up to 0.05)."""
    import llama_cpp.llama_cpp as lc
    if not hasattr(lc, "_ingot_default_params"):
        lc._ingot_default_params = lc.llama_model_default_params

        def params():
            p = lc._ingot_default_params()
            if lc._ingot_no_repack:
                p.use_extra_bufts = False
            return p
        lc.llama_model_default_params = params
    lc._ingot_no_repack = off


def run_model(path, tokens_all, ctx, chunks, threads):
    from llama_cpp import Llama
    without_repacking()
    llm = Llama(model_path=path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx, logits_all=True, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    add_bos = llm._model.add_bos_token() if hasattr(llm._model, "add_bos_token") else None
    if add_bos is None:
        import llama_cpp
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm._model.model)))
    tokens = tokens_all(llm)
    n = min(chunks, len(tokens) // ctx)
    first = ctx // 2
    rows = []
    seconds = 0.0
    for c in range(n):
        chunk = list(tokens[c * ctx:(c + 1) * ctx])
        targets = np.array(chunk[first + 1:], dtype=np.int64)
        if add_bos:
            chunk[0] = llm.token_bos()
        llm.reset()
        t = time.perf_counter()
        llm.eval(chunk)
        seconds += time.perf_counter() - t
        logits = np.array(llm.scores[first:ctx - 1], dtype=np.float32)
        rows.append((logits, targets))
    return rows, seconds, n


def log_softmax_stats(logits, targets):
    """llama-perplexity's log_softmax: float logits, sum of expf in double."""
    mx = logits.max(axis=1, keepdims=True)
    s = np.exp((logits - mx).astype(np.float32)).astype(np.float64).sum(axis=1)
    lse = mx[:, 0].astype(np.float64) + np.log(s)
    nll = lse - logits[np.arange(len(targets)), targets].astype(np.float64)
    return nll, lse


def quantize_base(logits):
    """llama-perplexity's 16-bit log-probabilities of the base model (scale, min_log_prob, q[i])."""
    mx = logits.max(axis=1)
    mn = np.maximum(logits.min(axis=1), mx - 16)
    s = np.exp((logits - mx[:, None]).astype(np.float32)).astype(np.float64).sum(axis=1)
    lse = np.log(s).astype(np.float32)
    min_log_prob = (mn - mx - lse).astype(np.float32)
    scale = ((mx - mn) / np.float32(65535)).astype(np.float32)
    inv = np.where(scale != 0, np.float32(1) / np.where(scale != 0, scale, 1), 0).astype(np.float32)
    q = np.where(logits > mn[:, None], np.rint(inv[:, None] * (logits - mn[:, None])), 0).astype(np.float32)
    return scale, min_log_prob, q


def mean_unc(s, s2, n):
    f = s / n
    d = s2 / n - f * f
    return f, (math.sqrt(d / (n - 1)) if d > 0 and n > 10 else 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base")
    ap.add_argument("--record")
    a = ap.parse_args()
    text = open(a.text, "rb").read()

    def tokens_all(llm):
        return llm.tokenize(text, add_bos=True, special=False)

    base_rows = None
    if a.base:
        base_rows, _, _ = run_model(a.base, tokens_all, a.ctx, a.chunks, a.threads)
    results = []
    for path in a.models:
        rows, seconds, n = run_model(path, tokens_all, a.ctx, a.chunks, a.threads)
        nll_all = np.concatenate([log_softmax_stats(l, t)[0] for l, t in rows])
        count = len(nll_all)
        m, u = mean_unc(nll_all.sum(), (nll_all ** 2).sum(), count)
        r = {"model": os.path.basename(path), "text": os.path.basename(a.text), "ctx": a.ctx, "chunks": n,
             "scored": count, "ppl": math.exp(m), "ppl_error": math.exp(m) * u,
             "tokens_per_second": n * a.ctx / seconds,
             "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if base_rows is not None:
            r["base"] = os.path.basename(a.base)
            klds, same, pdiff, nll_b_all = [], 0, [], []
            for (l, t), (bl, _) in zip(rows, base_rows):
                nll, lse = log_softmax_stats(l, t)
                scale, mlp, q = quantize_base(bl)
                lpb = scale[:, None] * q + mlp[:, None]
                pb = np.where(lpb > -16, np.exp(lpb), 0).astype(np.float32)
                kld = (pb.astype(np.float64) * (lpb - l + lse[:, None].astype(np.float32))).sum(axis=1)
                klds.append(kld)
                same += int((np.argmax(l, axis=1) == np.argmax(lpb, axis=1)).sum())
                nll_b = -(scale * q[np.arange(len(t)), t] + mlp)
                nll_b_all.append(nll_b.astype(np.float64))
                pdiff.append(np.exp(-nll.astype(np.float32)) - np.exp(-nll_b))
            k = np.concatenate(klds)
            pd = np.concatenate(pdiff).astype(np.float64)
            km, ku = mean_unc(k.sum(), (k ** 2).sum(), count)
            nb = np.concatenate(nll_b_all)
            r.update({"kld_mean": km, "kld_error": ku, "kld_median": float(np.median(k)),
                      "kld_p99": float(np.percentile(k, 99)), "kld_max": float(k.max()),
                      "same_top": same / count, "mean_delta_p": float(pd.mean()),
                      "rms_delta_p": float(math.sqrt((pd ** 2).mean())),
                      "base_ppl": math.exp(nb.mean()), "ppl_ratio": math.exp(m - nb.mean())})
        print(json.dumps(r), flush=True)
        results.append(r)
    if a.record:
        data = json.load(open(a.record)) if os.path.exists(a.record) else {"reference": "", "runs": {}}
        import llama_cpp
        data["reference"] = f"llama-cpp-python {llama_cpp.__version__} (llama.cpp), tools/reference/llama_perplexity.py"
        for r in results:
            data["runs"][r["model"] + (" vs " + r["base"] if "base" in r else "")] = r
        with open(a.record, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
