#!/usr/bin/env python3
"""Coverage-guided fuzzing of Ingot's parsers and loaders with libFuzzer (the targets are in Fuzz/Sources/ingot-fuzz;
FUZZING.md says what each exercises and what was run).

    tools/fuzz.py build [--config debug]         # Fuzz/.build/release/ingot-fuzz, with -sanitize=fuzzer,address
    tools/fuzz.py seeds                          # seed corpora in .cache/fuzz/seeds/TARGET, from the fixtures
    tools/fuzz.py run [--seconds S | --runs N] [--rss-mb M] [--timeout T] [TARGET...]
    tools/fuzz.py smoke [--seconds 3]            # debug build, seeds, every target a few seconds (CI)

`run` fuzzes each target on its corpus (.cache/fuzz/corpus/TARGET, grown from the seeds) with a memory limit
(--rss-mb, default 2048, for the whole process and for any one allocation: an input that makes a parser allocate
without bound fails as out-of-memory), with the address sanitizer but not its leak checker (Swift's lazily made
globals, the architecture tables, read as leaks of the first input that touches them), a time limit
per input (--timeout, default 30 s: a hang fails; no seed takes a tenth of a second) and libFuzzer's -print_final_stats, then prints per target the
executions, the corpus, the coverage and what failed. A crash, a leak, an out-of-memory or a timeout leaves the input
in .cache/fuzz/findings/TARGET and fails the run; each one found becomes a regression fixture (fixtures/malformed or
a unit test) with its typed error.
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache/fuzz")
BINARY = os.path.join(ROOT, "Fuzz/.build/{config}/ingot-fuzz")
TARGETS = ["gguf", "safetensors", "json", "folder", "tokenizer", "tokenizer-json", "sentencepiece", "model", "pack",
           "imatrix", "gguf-roundtrip"]
# Largest input libFuzzer makes per target (seeds may be larger).
MAX_LEN = {"model": 1 << 17}


def build(config):
    subprocess.run(["swift", "build", "--package-path", os.path.join(ROOT, "Fuzz"), "-c", config,
                    "-Xswiftc", "-sanitize=fuzzer,address", "-Xswiftc", "-parse-as-library"], check=True)


def files(folder, prefix=""):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(prefix) and os.path.isfile(os.path.join(folder, f)))


def put(target, name, data):
    d = os.path.join(CACHE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(data)


def tiny_models(sys_path_gguf):
    """Small GGUF models of each forward-pass shape Ingot has (llama, qwen3 with head norms, mixtral and qwen2moe
    experts), F32 with a Q8_0 copy of the first, for the model and tokenizer targets."""
    import numpy as np
    import gguf
    out = {}
    rng = np.random.default_rng(0)
    vocab, hidden, ffn = 40, 32, 48

    def common(w, arch, experts=0):
        w.add_block_count(2); w.add_context_length(64); w.add_embedding_length(hidden)
        w.add_feed_forward_length(ffn); w.add_head_count(4); w.add_head_count_kv(2); w.add_layer_norm_rms_eps(1e-5)
        w.add_rope_freq_base(10000.0)
        if experts:
            w.add_expert_count(experts); w.add_expert_used_count(2)
        w.add_tokenizer_model("gpt2"); w.add_tokenizer_pre("gpt-2")
        tokens = [chr(ord("a") + i) for i in range(26)] + ["Ġ", "ĠH", "He", "ll", "lo", "Hello", "<s>", "</s>", "<unk>",
                                                             "Ċ", "Ġw", "or", "ld", "world"]
        w.add_token_list(tokens[:vocab]); w.add_token_types([1] * 32 + [3, 3, 2] + [1] * (vocab - 35))
        w.add_token_merges(["H e", "l l", "He ll", "Hell o", "Ġ H", "Ġ w", "o r", "l d", "w or", "wor ld"])
        w.add_bos_token_id(32); w.add_eos_token_id(33)

    def tensors(w, qk_norm=False, experts=0, shared=False):
        def t(name, *shape):
            w.add_tensor(name, (rng.standard_normal(shape) * 0.1).astype(np.float32))
        t("token_embd.weight", vocab, hidden); t("output_norm.weight", hidden)
        for b in range(2):
            p = f"blk.{b}."
            t(p + "attn_norm.weight", hidden); t(p + "ffn_norm.weight", hidden)
            t(p + "attn_q.weight", 32, hidden); t(p + "attn_k.weight", 16, hidden); t(p + "attn_v.weight", 16, hidden)
            t(p + "attn_output.weight", hidden, 32)
            if qk_norm:
                t(p + "attn_q_norm.weight", 8); t(p + "attn_k_norm.weight", 8)
            if experts:
                t(p + "ffn_gate_inp.weight", experts, hidden)
                t(p + "ffn_gate_exps.weight", experts, ffn, hidden); t(p + "ffn_up_exps.weight", experts, ffn, hidden)
                t(p + "ffn_down_exps.weight", experts, hidden, ffn)
                if shared:
                    t(p + "ffn_gate_inp_shexp.weight", hidden)
                    t(p + "ffn_gate_shexp.weight", ffn, hidden); t(p + "ffn_up_shexp.weight", ffn, hidden)
                    t(p + "ffn_down_shexp.weight", hidden, ffn)
            else:
                t(p + "ffn_gate.weight", ffn, hidden); t(p + "ffn_up.weight", ffn, hidden); t(p + "ffn_down.weight", hidden, ffn)

    for name, arch, kw in [("llama", "llama", {}), ("qwen3", "qwen3", {"qk_norm": True}),
                           ("mixtral", "llama", {"experts": 4}), ("qwen2moe", "qwen2moe", {"experts": 4, "shared": True})]:
        path = os.path.join(CACHE, f"tiny-{name}.gguf")
        w = gguf.GGUFWriter(path, arch)
        common(w, arch, kw.get("experts", 0))
        if arch == "qwen2moe":
            w.add_expert_feed_forward_length(ffn); w.add_expert_shared_feed_forward_length(ffn)
        if arch == "qwen3":
            w.add_key_length(8); w.add_value_length(8)
        tensors(w, **kw)
        w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
        out[name] = path
    return out


def smollm2_tokenizer(gguf, smol, vocab=1024):
    """SmolLM2's tokenizer keys (no tensors) cut to its first `vocab` tokens (its special tokens, the 256 bytes and
    the first merges' results) and the merges among them: the real vocabulary's shape in a 30 kB seed. The whole
    vocabulary (49,152 tokens, 1.7 MB) costs half a second per input and starves the fuzzer."""
    r = gguf.GGUFReader(smol)
    keys = os.path.join(CACHE, "smollm2-tokenizer.gguf")
    w = gguf.GGUFWriter(keys, "llama")
    tokens = r.fields["tokenizer.ggml.tokens"].contents()[:vocab]
    known = set(tokens)
    for f in r.fields.values():
        if not f.name.startswith("tokenizer."):
            continue
        vt = f.types[0]
        value = f.contents()
        if f.name in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.scores"):
            value = value[:vocab]
        elif f.name == "tokenizer.ggml.merges":
            value = [m for m in value if len(m.split(" ")) == 2 and m.replace(" ", "") in known
                     and all(part in known for part in m.split(" "))]
        elif f.name.endswith("_token_id") and value >= vocab:
            continue
        w.add_key_value(f.name, value, vt, sub_type=f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_ti_data_to_file(); w.close()
    return keys


def seeds(ingot):
    import gguf
    shutil.rmtree(os.path.join(CACHE, "seeds"), ignore_errors=True)
    os.makedirs(CACHE, exist_ok=True)
    malformed = os.path.join(ROOT, "fixtures/malformed")
    read = lambda p: open(p, "rb").read()
    for p in files(os.path.join(ROOT, "fixtures/gguf")) + files(malformed, "gguf-"):
        put("gguf", os.path.basename(p), read(p))
    for p in files(os.path.join(ROOT, "fixtures/safetensors")) + files(os.path.join(ROOT, "fixtures/safetensors/sharded")) \
            + files(malformed, "st-"):
        if p.endswith(".safetensors"):
            put("safetensors", os.path.basename(p), read(p))
    models = tiny_models(gguf)
    for name, p in models.items():
        put("gguf", f"tiny-{name}.gguf", read(p))
        put("model", f"tiny-{name}.gguf", read(p))
        put("tokenizer", f"tiny-{name}.gguf", read(p))
    # A quantized model, and the real SmolLM2's tokenizer (its keys without tensors).
    q8 = os.path.join(CACHE, "tiny-llama-Q8_0.gguf")
    subprocess.run([ingot, "quantize", models["llama"], "-o", q8, "--type", "Q8_0", "--pure"], check=True, capture_output=True)
    put("model", "tiny-llama-Q8_0.gguf", read(q8))
    smol = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(smol):
        put("tokenizer", "smollm2-tokenizer.gguf", read(smollm2_tokenizer(gguf, smol)))
    # JSON: every JSON fixture, and a tokenizer.json of the tiny vocabulary.
    tok = {"version": "1.0", "added_tokens": [{"id": 32, "content": "<s>", "special": True}, {"id": 33, "content": "</s>", "special": True}],
           "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "model": {"type": "BPE", "vocab": {chr(ord("a") + i): i for i in range(26)} | {"Ġ": 26, "ĠH": 27, "He": 28, "ll": 29, "lo": 30, "Hello": 31, "<s>": 32, "</s>": 33},
                     "merges": ["H e", "l l", "He ll", "Hell o", "Ġ H"]},
           "decoder": {"type": "ByteLevel"}}
    tokjson = json.dumps(tok).encode()
    put("tokenizer-json", "tiny-tokenizer.json", tokjson)
    # SentencePiece-style: Metaspace, byte fallback, a fused unknown token, an added token that strips.
    spm = {"added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True, "rstrip": True}],
           "normalizer": None, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
           "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                     "vocab": {"<unk>": 0, "<s>": 1, "\u2581": 2, "a": 3, "b": 4, "\u2581a": 5, "ab": 6, "<0xC3>": 7, "<0xA9>": 8},
                     "merges": [["\u2581", "a"], ["a", "b"]]}}
    put("tokenizer-json", "tiny-metaspace.json", json.dumps(spm, ensure_ascii=False).encode())
    put("json", "tiny-tokenizer.json", tokjson)
    for p in files(os.path.join(ROOT, "fixtures/safetensors/sharded")) + files(os.path.join(ROOT, "fixtures/reference")):
        if p.endswith(".json") and os.path.getsize(p) < 64 << 10:
            put("json", os.path.basename(p), read(p))
    # The folder target's folder, and seeds that each replace one of its files (first byte: which file).
    folder = os.path.join(CACHE, "folder")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "fixtures/safetensors/sharded"), folder)
    open(os.path.join(folder, "tokenizer.json"), "wb").write(tokjson)
    for i, name in enumerate(["config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]):
        put("folder", name, bytes([i]) + read(os.path.join(folder, name)))
    spm = os.path.join(ROOT, ".cache/variants/hf/tiny-llama-spm/tokenizer.model")
    if os.path.exists(spm):
        put("sentencepiece", "tiny-llama-spm.model", read(spm))
    put("sentencepiece", "empty.model", b"")
    # Packed artifacts of small files.
    for p in [os.path.join(ROOT, "fixtures/gguf/gguf-py-all-types.gguf"), os.path.join(ROOT, "fixtures/safetensors/all-dtypes.safetensors"),
              models["llama"]]:
        out = os.path.join(CACHE, os.path.basename(p) + ".ingot")
        if os.path.exists(out):
            os.unlink(out)
        subprocess.run([ingot, "pack", p, "-o", out], check=True, capture_output=True)
        put("pack", os.path.basename(out), read(out))
    for p in ["imatrix-synthetic.gguf", "imatrix-synthetic.dat", "llama-imatrix-upcycled-mixtral.gguf"]:
        put("imatrix", p, read(os.path.join(ROOT, "fixtures/reference", p)))
    put("gguf-roundtrip", "zeros", bytes(64))
    put("gguf-roundtrip", "counting", bytes(range(256)))
    for t in TARGETS:
        n = len(os.listdir(os.path.join(CACHE, "seeds", t)))
        print(f"  {t}: {n} seeds")


STATS = re.compile(r"stat::(\w+):\s+(\d+)")
COV = re.compile(r"cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")


def run_target(target, seconds, runs, rss_mb, timeout, jobs_log, config):
    corpus = os.path.join(CACHE, "corpus", target)
    findings = os.path.join(CACHE, "findings", target)
    os.makedirs(corpus, exist_ok=True)
    # Findings are of this run (the log of each run keeps the last one's).
    shutil.rmtree(findings, ignore_errors=True)
    os.makedirs(findings, exist_ok=True)
    env = dict(os.environ, INGOT_FUZZ_TARGET=target, INGOT_FUZZ_FOLDER=os.path.join(CACHE, "folder"),
               ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1")
    cmd = [BINARY.format(config=config), corpus, os.path.join(CACHE, "seeds", target), f"-rss_limit_mb={rss_mb}", f"-timeout={timeout}",
           "-print_final_stats=1", "-detect_leaks=0", f"-malloc_limit_mb={rss_mb}", f"-artifact_prefix={findings}/", f"-max_len={MAX_LEN.get(target, 1 << 16)}"]
    cmd += [f"-max_total_time={seconds}"] if runs is None else [f"-runs={runs}"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    log = p.stderr
    with open(jobs_log, "a") as fh:
        fh.write(f"==== {target}\n{log[-20000:]}\n")
    stats = {k: int(v) for k, v in STATS.findall(log)}
    cov = COV.findall(log)
    last = cov[-1] if cov else ("?", "?", "?", "?")
    found = sorted(os.listdir(findings))
    return {"target": target, "exit": p.returncode, "seconds": round(elapsed, 1),
            "executions": stats.get("number_of_executed_units"), "exec_per_second": stats.get("average_exec_per_sec"),
            "peak_rss_mb": stats.get("peak_rss_mb"), "coverage": int(last[0]) if last[0] != "?" else None,
            "features": int(last[1]) if last[1] != "?" else None, "corpus": len(os.listdir(corpus)), "findings": found}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["build", "seeds", "run", "smoke"])
    ap.add_argument("targets", nargs="*")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--rss-mb", type=int, default=2048)
    ap.add_argument("--timeout", type=int, default=30)
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--json", help="write the per-target results here")
    ap.add_argument("--config", choices=["release", "debug"], default="release",
                    help="the build to make and run (smoke: debug, quicker to build for a few seconds of fuzzing)")
    a = ap.parse_intermixed_args()
    if a.command == "build":
        build(a.config)
        return 0
    if a.command == "seeds":
        seeds(a.ingot)
        return 0
    if a.command == "smoke":
        a.config = "debug"
        build(a.config)
        seeds(a.ingot)
        a.seconds = a.seconds if a.seconds != 60 else 5
    targets = a.targets or TARGETS
    log = os.path.join(CACHE, "last-run.log")
    open(log, "w").close()
    results, bad = [], 0
    for t in targets:
        r = run_target(t, a.seconds, a.runs, a.rss_mb, a.timeout, log, a.config)
        results.append(r)
        ok = r["exit"] == 0 and not r["findings"]
        bad += not ok
        print(f"  {'ok  ' if ok else 'FAIL'}  {t:15s} {r['executions'] or 0:>11,} executions in {r['seconds']:>6} s "
              f"({r['exec_per_second'] or 0:,}/s), corpus {r['corpus']}, coverage {r['coverage']} edges / {r['features']} features, "
              f"peak {r['peak_rss_mb']} MB" + (f"; findings {r['findings']} (exit {r['exit']}, log {log})" if not ok else ""), flush=True)
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    print(f"fuzz: {len(targets) - bad} targets clean, {bad} with findings")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
