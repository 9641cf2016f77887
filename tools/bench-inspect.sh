#!/usr/bin/env bash
# Side-by-side benchmark: `ingot inspect` against gguf-py's gguf_dump on the same file, in one run.
# Prints a Markdown table row per mode with the median wall time of N runs, the time ratio, and
# the peak resident memory (max RSS) of each.
#
#   tools/bench-inspect.sh [FILE.gguf] [RUNS]
#
# Default FILE is the real SmolLM2-135M-Instruct Q4_1 GGUF; RUNS defaults to 7.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash tools/setup-python.sh
model="${1:-$(bash tools/fetch-fixtures.sh)}"
runs="${2:-7}"
swift build -c release --product ingot >/dev/null
ingot="$root/.build/release/ingot"

# measure CMD... -> "median_seconds max_rss_kib"
measure() {
  local times=() rss=0 t m tf
  tf=$(mktemp)
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -o "$tf" -f "%M" "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    m=$(tail -n 1 "$tf")
    t=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", b - a }')
    times+=("$t")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  rm -f "$tf"
  printf '%s\n' "${times[@]}" | sort -g | awk -v r="$rss" '{a[NR]=$1} END {print a[int((NR+1)/2)], r}'
}

row() {
  local label="$1"; shift
  local split=0 ours=() theirs=()
  for a in "$@"; do
    if [ "$a" = "--" ]; then split=1; continue; fi
    if [ $split -eq 0 ]; then ours+=("$a"); else theirs+=("$a"); fi
  done
  read -r t1 m1 < <(measure "${ours[@]}")
  read -r t2 m2 < <(measure "${theirs[@]}")
  awk -v l="$label" -v t1="$t1" -v t2="$t2" -v m1="$m1" -v m2="$m2" 'BEGIN {
    printf "| %s | %.4f s | %.3f s | %.1fx | %.1f MiB | %.1f MiB |\n", l, t1, t2, (t1 > 0) ? t2 / t1 : 0, m1 / 1024, m2 / 1024 }'
}

echo "file: $model ($(stat -c %s "$model") bytes), $runs runs each, median wall time, peak RSS"
echo "| mode | ingot inspect | gguf-py gguf_dump | gguf-py time / ingot time | ingot peak RSS | gguf-py peak RSS |"
echo "|---|---|---|---|---|---|"
row "text (all metadata, all tensors)" "$ingot" inspect "$model" -- python3 -m gguf.scripts.gguf_dump "$model"
row "JSON" "$ingot" inspect --json "$model" -- python3 -m gguf.scripts.gguf_dump --json "$model"

# Every malformed fixture: the slowest refusal and the largest peak memory (bounded by file size,
# whatever count or length the file declares).
worst_t=0; worst_m=0; worst=""
for f in fixtures/malformed/*.gguf fixtures/malformed/*.safetensors; do
  read -r t m < <(runs=1 measure "$ingot" inspect "$f")
  if awk -v a="$t" -v b="$worst_t" 'BEGIN { exit !(a > b) }'; then worst_t=$t; fi
  if [ "$m" -gt "$worst_m" ]; then worst_m=$m; worst=$f; fi
done
n=$(ls fixtures/malformed/*.gguf fixtures/malformed/*.safetensors | wc -l)
awk -v n="$n" -v t="$worst_t" -v m="$worst_m" -v w="$(basename "$worst")" 'BEGIN {
  printf "| %d malformed fixtures, refused | slowest %.4f s | | | largest %.1f MiB (%s) | |\n", n, t, m / 1024, w }'
