#!/usr/bin/env bash
# Bit-exact round trips of the real models through `ingot pack` and `ingot unpack`, checked by
# sha256: SmolLM2-135M-Instruct as shipped (Q4_1 GGUF), its F16 and BF16 forms (tools/make-variants.py),
# the real all-MiniLM-L6-v2 Hugging Face folder (F32 safetensors, tokenizer, a subfolder) and its
# BF16 form. Prints "N passed, N failed".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
ingot="${INGOT:-$root/.build/release/ingot}"
FETCH_MINILM=1 bash tools/fetch-fixtures.sh >/dev/null
python3 tools/make-variants.py >/dev/null
tmp=$(mktemp -d "$root/.cache/roundtrip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
digest() {  # sha256 of a file, or of every file in a folder (name and content)
  if [ -d "$1" ]; then (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
  else sha256sum "$1" | cut -d' ' -f1; fi
}
passed=0 failed=0
for src in .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf .cache/variants/smollm2-f16.gguf .cache/variants/smollm2-bf16.gguf \
           .cache/models/all-MiniLM-L6-v2 .cache/variants/minilm-bf16.safetensors; do
  rm -rf "$tmp/out" "$tmp/a.ingot"
  if "$ingot" pack "$src" -o "$tmp/a.ingot" >/dev/null && "$ingot" verify "$tmp/a.ingot" >/dev/null \
     && "$ingot" unpack "$tmp/a.ingot" -o "$tmp/out" >/dev/null && [ "$(digest "$src")" = "$(digest "$tmp/out")" ]; then
    passed=$((passed + 1))
    echo "ok: $src sha256 $(digest "$src") restored; artifact $(stat -c %s "$tmp/a.ingot") of $(du -sb "$src" | cut -f1) bytes"
  else
    failed=$((failed + 1))
    echo "FAIL: $src"
  fi
done
echo "roundtrips: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
