#!/usr/bin/env bash
# Installs the Python reference packages the tests compare against.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python3}"
if ! "$py" -c 'import gguf, safetensors, numpy, xxhash, ml_dtypes' 2>/dev/null; then
  "$py" -m pip install --quiet -r "$root/tools/requirements.txt"
fi
