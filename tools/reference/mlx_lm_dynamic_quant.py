#!/usr/bin/env python3
"""Runs mlx-lm's mixed-precision search (`mlx_lm.quant.dynamic_quant`: gradient sensitivities, then a threshold that
gives the most sensitive layers the high bits within the target bits per weight) on a Hugging Face folder, on mlx-cpu,
over the same calibration windows `ingot fit` probes, and saves the MLX folder it writes, for `ingot eval` to measure
beside Ingot's (tools/bench-calibrate.py mlx). Needs mlx, mlx-cpu and mlx-lm in a virtual environment:

    python3 -m venv /tmp/mlxenv && /tmp/mlxenv/bin/pip install mlx mlx-cpu mlx-lm
    /tmp/mlxenv/bin/python tools/reference/mlx_lm_dynamic_quant.py MODEL --text TEXT --chunks 8 --target-bpw 4.5 \\
        --bits 3 --high-bits 5 -o OUT      # --bits, --group-size: the low form

mlx-lm's own script takes its calibration text from the network (`load_data`); this calls the same functions it calls
(`estimate_sensitivities`, `estimate_threshold`, `quantize_model`, `save`) in the same order, with Ingot's windows of
the text given. --sensitivities reuses the sensitivities of an earlier run (they depend on the low and high forms only,
not on the target). Prints one JSON line: seconds, bits per weight (mlx-lm's `compute_bits_per_weight`), the
threshold, and the layers given the high bits.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llmcompressor_gptq import arguments, windows  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = arguments()  # --bits and --group-size: the low form
    ap.add_argument("--target-bpw", type=float, default=4.5)
    ap.add_argument("--high-bits", type=int, default=5)
    ap.add_argument("--high-group-size", type=int, default=64)
    ap.add_argument("--sensitivities", help="a JSON file: read when it exists, else written")
    ap.add_argument("--record", help="also write the choice here as tools/check-calibrate.py reads it "
                                     "(fixtures/reference/mlx-dynamic-quant.json)")
    a = ap.parse_args()
    a.low_bits, a.low_group_size = a.bits, a.group_size

    import mlx.core as mx
    import mlx_lm
    from mlx_lm.quant.dynamic_quant import estimate_sensitivities, estimate_threshold
    from mlx_lm.utils import compute_bits_per_weight, load, quantize_model, save

    mx.set_default_device(mx.cpu)
    model, tokenizer, config = load(a.model, return_config=True)
    t0 = time.monotonic()
    if a.sensitivities and os.path.exists(a.sensitivities):
        sensitivities = json.load(open(a.sensitivities))
    else:
        data = mx.array(windows(a.ingot, a.model, a.text, a.ctx, a.chunks))
        # The gradients in float32: mlx-cpu's float16 products are emulated and take hours on this model (the forms
        # are then chosen and written on the model in its own type, as mlx-lm does).
        wide, _ = load(a.model)
        wide.set_dtype(mx.float32)
        sensitivities = estimate_sensitivities(wide, data, a.low_bits, a.low_group_size, a.high_bits, a.high_group_size)
        del wide
        if a.sensitivities:
            json.dump(sensitivities, open(a.sensitivities, "w"))
    measured = time.monotonic() - t0
    sensitivities = dict(sensitivities)
    threshold = estimate_threshold(model, sensitivities, a.target_bpw, a.low_bits, a.low_group_size, a.high_bits, a.high_group_size)
    high = []

    def predicate(p, m):
        if not hasattr(m, "to_quantized"):
            return False
        if sensitivities[p] > threshold:
            high.append(p)
            return {"bits": a.high_bits, "group_size": a.high_group_size}
        return True

    model, config = quantize_model(model, config, group_size=a.low_group_size, bits=a.low_bits, quant_predicate=predicate)
    seconds = time.monotonic() - t0
    bpw = compute_bits_per_weight(model)
    save(a.output, a.model, model, tokenizer, config)
    result = {"seconds": seconds, "sensitivitySeconds": measured, "bitsPerWeight": bpw, "threshold": threshold,
              "high": sorted(set(high)), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__}
    if a.record:
        record = {
            "command": "tools/reference/mlx_lm_dynamic_quant.py " + " ".join(sys.argv[1:]),
            "model": os.path.relpath(os.path.abspath(a.model), ROOT), "text": os.path.relpath(os.path.abspath(a.text), ROOT),
            "ctx": a.ctx, "chunks": a.chunks, "targetBitsPerWeight": a.target_bpw, "bitsPerWeight": bpw,
            "low": {"bits": a.low_bits, "groupSize": a.low_group_size}, "high": {"bits": a.high_bits, "groupSize": a.high_group_size},
            "highModules": sorted(set(high)), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__,
        }
        with open(a.record, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
