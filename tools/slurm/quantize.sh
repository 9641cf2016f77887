#!/bin/bash
# Quantizes MODEL into OUT over a Slurm job array of N tasks, then merges the parts in a job that waits for them
# all (afterok): the file one `ingot quantize` would write, byte for byte; the parts are removed once merged.
# Prints the two job ids. Extra arguments go to `ingot quantize` (--imatrix FILE, --tensor-type ...). INGOT names
# the binary (default: ingot on PATH); sbatch's own options go in its SBATCH_* variables (SBATCH_PARTITION, ...).
#
#   tools/slurm/quantize.sh MODEL OUT.gguf Q4_K_M 8 [--imatrix imatrix.gguf]
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 MODEL OUT PRESET N [ingot quantize options]" >&2
    exit 64
fi
model=$1 out=$2 preset=$3 n=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
ingot=${INGOT:-ingot}
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL,INGOT="$ingot" "$here/quantize.sbatch" "$model" "$out" "$preset" "$n" "$@")
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name=ingot-merge --output=ingot-merge-%j.log \
    --wrap "\"$ingot\" merge \"$out\".part*-of-$n -o \"$out\" && rm -f \"$out\".part*-of-$n")
echo "$array $merge"
