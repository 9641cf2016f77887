#!/usr/bin/env bash
# The whole test run on a fresh machine: reference packages, real fixtures, unit tests, CLI checks,
# quantization against llama.cpp's recorded outputs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/setup-python.sh
bash tools/fetch-fixtures.sh >/dev/null
swift build --build-tests
swift test --skip-build --disable-xctest
bash tools/check-cli.sh
bash tools/check-pack-roundtrips.sh
# Quantization against llama.cpp's recorded outputs (release build: the quantizers are the workload).
swift build -c release --product ingot
# Tokenizer: llama.cpp's own tokenizer tests, and ids recorded from llama.cpp for SmolLM2 and all of Shakespeare.
python3 tools/check-tokenizer.py
# Perplexity and KL divergence against llama.cpp's recorded numbers (SmolLM2 F16/Q8_0/Q4_K_M/Q4_1, Hamlet).
python3 tools/check-eval.py
# Conversion between Hugging Face folders and GGUF against gguf-py, safetensors, and the recorded outputs of
# llama.cpp's converter, llama.cpp, transformers and mlx-lm.
python3 tools/check-convert.py
# Mixture-of-experts forward passes and calibration against llama.cpp and transformers, on SmolLM2 made into
# Mixtral, Qwen2-MoE and Qwen3-MoE models (tools/make-moe-model.py --upcycle).
python3 tools/check-moe.py
python3 tools/make-edge-model.py >/dev/null
python3 tools/make-synthetic-model.py .cache/variants/synthetic-llama-f16.gguf >/dev/null
INGOT="$root/.build/release/ingot" python3 tools/check-quantize.py
# The same with every kernel forced to its scalar reference, for the presets with SIMD paths.
INGOT_REFERENCE_KERNELS=1 INGOT="$root/.build/release/ingot" python3 tools/check-quantize.py Q8_0 Q4_0 F16 BF16
# Calibration against llama-imatrix's recorded importance matrix, and importance-weighted quantization against
# llama-quantize --imatrix (SmolLM2 F16 and the synthetic llama; GGUF and legacy .dat importance matrices).
INGOT="$root/.build/release/ingot" python3 tools/check-calibrate.py
INGOT="$root/.build/debug/ingot" python3 tools/fuzz-inspect.py 400 "${FUZZ_SEED:-1}"
