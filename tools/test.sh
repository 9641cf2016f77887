#!/usr/bin/env bash
# The whole test run on a fresh machine: reference packages, real fixtures, unit tests, CLI checks,
# quantization against llama.cpp's recorded outputs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# Each stage prints how long it took and what .cache holds after it (stderr), so a slow CI run says where its
# time went and a full disk says what filled it.
stage() {
  local start=$SECONDS
  "$@"
  echo "[test.sh] $((SECONDS - start)) s, .cache $(du -sh .cache 2>/dev/null | cut -f1): $*" | cut -c1-160 >&2
}
stage bash tools/setup-python.sh
stage bash tools/fetch-fixtures.sh >/dev/null
# One release build for the unit tests and every check (the quantizers, forward passes and parsers are the workload
# of both; a debug build as well cost two minutes more). -enable-testing lets the tests' @testable imports in; the
# kernels run at the same speed with it. Debug builds are still exercised: the fuzz targets below are built with
# assertions, under AddressSanitizer.
stage swift build -c release --build-tests -Xswiftc -enable-testing
stage swift test -c release --skip-build --disable-xctest -Xswiftc -enable-testing
stage bash tools/check-cli.sh
stage bash tools/check-pack-roundtrips.sh
# Tokenizer: llama.cpp's own tokenizer tests, and ids recorded from llama.cpp for SmolLM2 and all of Shakespeare.
stage python3 tools/check-tokenizer.py
# Perplexity and KL divergence against llama.cpp's recorded numbers (SmolLM2 F16/Q8_0/Q4_K_M/Q4_1, Hamlet).
stage python3 tools/check-eval.py
# Conversion between Hugging Face folders and GGUF against gguf-py, safetensors, and the recorded outputs of
# llama.cpp's converter, llama.cpp, transformers and mlx-lm.
stage python3 tools/check-convert.py
# Mixture-of-experts forward passes and calibration against llama.cpp and transformers, on SmolLM2 made into
# Mixtral, Qwen2-MoE and Qwen3-MoE models (tools/make-moe-model.py --upcycle).
stage python3 tools/check-moe.py
# Models that parse but are wrong (SmolLM2 with one change each) through every command, and signals at random
# moments to every writer.
stage python3 tools/check-broken-models.py
stage python3 tools/check-interrupts.py --trials 4
stage python3 tools/make-edge-model.py >/dev/null
stage python3 tools/make-synthetic-model.py .cache/variants/synthetic-llama-f16.gguf >/dev/null
stage env INGOT="$root/.build/release/ingot" python3 tools/check-quantize.py
# The same with every kernel forced to its scalar reference, for the presets with SIMD paths.
stage env INGOT_REFERENCE_KERNELS=1 INGOT="$root/.build/release/ingot" python3 tools/check-quantize.py Q8_0 Q4_0 F16 BF16
# Calibration against llama-imatrix's recorded importance matrix, and importance-weighted quantization against
# llama-quantize --imatrix (SmolLM2 F16 and the synthetic llama; GGUF and legacy .dat importance matrices).
stage env INGOT="$root/.build/release/ingot" python3 tools/check-calibrate.py
# Sharded quantization (--shard I/N, then ingot merge) against one process, byte for byte; restarts; bad parts.
stage python3 tools/check-shards.py
stage env INGOT="$root/.build/release/ingot" python3 tools/fuzz-inspect.py 400 "${FUZZ_SEED:-1}"
# libFuzzer on every parser and loader for a few seconds each (FUZZING.md): a regression that crashes fails here.
stage python3 tools/fuzz.py smoke --seconds 3
