#!/usr/bin/env python3
"""Runs mlx-lm's own AWQ (`mlx_lm.quant.awq.awq_quantize`, on mlx-cpu) on a Hugging Face folder over the same
calibration windows `ingot quantize --method awq` uses, and saves the MLX folder it writes, for `ingot eval` to
measure beside Ingot's (tools/bench-gptq.py). Needs mlx, mlx-cpu and mlx-lm in a virtual environment:

    python3 -m venv /tmp/mlxenv && /tmp/mlxenv/bin/pip install mlx mlx-cpu mlx-lm
    /tmp/mlxenv/bin/python tools/reference/mlx_lm_awq.py MODEL --text TEXT --chunks 32 --bits 4 --group-size 64 -o OUT

The windows are those of tools/reference/llmcompressor_gptq.py. mlx-lm's AWQ searches the scales of its Llama
mappings (a grid of 20, activations only), then a clipping of each weight's groups (q and k excepted), and keeps a
block's original weights when that did not lower the block's error; the embedding (and an untied head) it quantizes
with --bits and --group-size here too, so that the bits per weight equal Ingot's MLX output. Prints one JSON line: the
seconds AWQ took.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmcompressor_gptq import arguments, windows  # noqa: E402


def main():
    a = arguments().parse_args()

    import mlx.core as mx
    import mlx_lm
    from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS, awq_quantize, update_config
    from mlx_lm.utils import load, save

    mx.set_default_device(mx.cpu)
    model, tokenizer, config = load(a.model, return_config=True)
    data = mx.array(windows(a.ingot, a.model, a.text, a.ctx, a.chunks))
    t0 = time.monotonic()
    awq_quantize(model, data, AWQ_MODEL_CONFIGS[config["model_type"]], group_size=a.group_size, bits=a.bits,
                 embed_group_size=a.group_size, embed_bits=a.bits)
    seconds = time.monotonic() - t0
    config = update_config(model, config)
    save(a.output, a.model, model, tokenizer, config)
    print(json.dumps({"seconds": seconds, "windows": int(data.shape[0]), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__}))


if __name__ == "__main__":
    main()
