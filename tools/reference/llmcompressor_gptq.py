#!/usr/bin/env python3
"""Runs llm-compressor's own GPTQ on a Hugging Face folder over the same calibration windows `ingot quantize --method
gptq` uses, and saves the compressed-tensors folder it writes, for `ingot eval` to measure beside Ingot's
(tools/bench-gptq.py). Needs llm-compressor in a virtual environment of its own (it pins its own torch and
transformers; CPU only here):

    python3 -m venv /tmp/lcenv && /tmp/lcenv/bin/pip install llmcompressor
    /tmp/lcenv/bin/python tools/reference/llmcompressor_gptq.py MODEL --text TEXT --chunks 32 --group-size 64 -o OUT

The windows: `ingot tokenize MODEL --text TEXT --json` (BOS where the model adds one), cut into --ctx tokens, the
first token of each the BOS where the model adds one, at most --chunks of them: what `ingot calibrate` and
llama-imatrix run. The recipe: GPTQModifier on every Linear but lm_head, int4 (or --bits) symmetric (or --asymmetric)
in groups of --group-size, llm-compressor's defaults otherwise (block 128, dampening 0.01, activation order weight).
Prints one JSON line: the seconds `oneshot` took and the versions.
"""
import argparse
import json
import os
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def windows(ingot, model, text, ctx, chunks):
    def ids(*extra):
        r = subprocess.run([ingot, "tokenize", model, "--text", text, "--json", *extra], capture_output=True, text=True, check=True)
        return json.loads(r.stdout)["ids"]
    tokens = ids()
    # A model that adds BOS: every window starts with it (llama-perplexity's and llama-imatrix's windows).
    bos = tokens[0] if len(tokens) > len(ids("--no-special")) else None
    out = [list(tokens[k * ctx:(k + 1) * ctx]) for k in range(min(len(tokens) // ctx, chunks))]
    if bos is not None:
        for w in out:
            w[0] = bos
    return out


def save(model, source, output):
    """The compressed-tensors folder, with the source folder's tokenizer files."""
    if os.path.exists(output):
        shutil.rmtree(output)
    model.save_pretrained(output, save_compressed=True)
    for name in os.listdir(source):
        if name.startswith("tokenizer") or name in ("special_tokens_map.json", "generation_config.json"):
            shutil.copy(os.path.join(source, name), os.path.join(output, name))


def arguments():
    """The options both peers' GPTQ scripts take."""
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("-o", "--output", required=True)
    return ap


def main():
    ap = arguments()
    ap.add_argument("--asymmetric", action="store_true")
    ap.add_argument("--dtype", default="auto", help="the dtype the model runs in (auto: the checkpoint's)")
    a = ap.parse_args()

    import llmcompressor
    import torch
    import transformers
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.gptq import GPTQModifier

    wins = windows(a.ingot, a.model, a.text, a.ctx, a.chunks)
    ds = Dataset.from_dict({"input_ids": wins, "attention_mask": [[1] * len(w) for w in wins]})
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=a.dtype if a.dtype == "auto" else getattr(torch, a.dtype))
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=a.bits, type="int", symmetric=not a.asymmetric, strategy="group", group_size=a.group_size))
    recipe = GPTQModifier(config_groups={"group_0": scheme}, ignore=["lm_head"])
    t0 = time.monotonic()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.ctx, num_calibration_samples=len(wins))
    seconds = time.monotonic() - t0
    save(model, a.model, a.output)
    print(json.dumps({"seconds": seconds, "windows": len(wins), "llmcompressor": llmcompressor.__version__,
                      "torch": torch.__version__, "transformers": transformers.__version__}))


if __name__ == "__main__":
    main()
