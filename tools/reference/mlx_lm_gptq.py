#!/usr/bin/env python3
"""Runs mlx-lm's own GPTQ (`mlx_lm.quant.gptq.gptq_quantize`, on mlx-cpu) on a Hugging Face folder over the same
calibration windows `ingot quantize --method gptq` uses, and saves the MLX folder it writes, for `ingot eval` to
measure beside Ingot's (tools/bench-gptq.py). Needs mlx, mlx-cpu and mlx-lm in a virtual environment:

    python3 -m venv /tmp/mlxenv && /tmp/mlxenv/bin/pip install mlx mlx-cpu mlx-lm
    /tmp/mlxenv/bin/python tools/reference/mlx_lm_gptq.py MODEL --text TEXT --chunks 32 --bits 4 --group-size 64 -o OUT

The windows are those of tools/reference/llmcompressor_gptq.py. mlx-lm's GPTQ quantizes every Linear (the output
head too, when it is not tied) and gives the other quantizable layers (the embedding) its fallback, here the same bits
and group as the rest so that the bits per weight equal Ingot's MLX output. Prints one JSON line: the seconds GPTQ took.
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
    from mlx_lm.quant.gptq import gptq_quantize
    from mlx_lm.utils import load, save

    mx.set_default_device(mx.cpu)
    model, tokenizer, config = load(a.model, return_config=True)
    data = mx.array(windows(a.ingot, a.model, a.text, a.ctx, a.chunks))
    t0 = time.monotonic()
    model, config["quantization"] = gptq_quantize(model, data, a.bits, a.group_size, a.bits, a.group_size)
    seconds = time.monotonic() - t0
    save(a.output, a.model, model, tokenizer, config)
    print(json.dumps({"seconds": seconds, "windows": int(data.shape[0]), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__}))


if __name__ == "__main__":
    main()
