#!/usr/bin/env bash
# The whole test run on a fresh machine: reference packages, real fixtures, unit tests, CLI checks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/setup-python.sh
bash tools/fetch-fixtures.sh >/dev/null
swift build --build-tests
swift test --skip-build --disable-xctest
bash tools/check-cli.sh
bash tools/check-pack-roundtrips.sh
INGOT="$root/.build/debug/ingot" python3 tools/fuzz-inspect.py 400 "${FUZZ_SEED:-1}"
