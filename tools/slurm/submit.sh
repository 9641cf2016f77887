#!/bin/bash
# Runs a sharded ingot command over a Slurm job array of N tasks (tools/slurm/shard.sbatch), then merges the parts
# in a job that waits for them all (afterok): for quantize and convert the file one process writes, byte for byte;
# for calibrate one run's importance matrix; for eval one run's report, as JSON at OUT. The parts are removed once
# merged. Prints the two job ids. INGOT names the binary (default: ingot on PATH); sbatch's own options go in its
# SBATCH_* variables (SBATCH_PARTITION, ...).
#
#   tools/slurm/submit.sh 8 OUT.gguf quantize MODEL --type Q4_K_M [--imatrix imatrix.gguf]
#   tools/slurm/submit.sh 8 OUT.gguf convert HF_FOLDER --to gguf
#   tools/slurm/submit.sh 8 imatrix.gguf calibrate MODEL --text calibration.txt
#   tools/slurm/submit.sh 8 report.json eval MODEL --base BASE --text test.txt
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 N OUT COMMAND [ingot options, without -o and --shard]" >&2
    exit 64
fi
n=$1 out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
ingot=${INGOT:-ingot}
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL,INGOT="$ingot" "$here/shard.sbatch" "$n" "$@" -o "$out")
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name=ingot-merge --output=ingot-merge-%j.log \
    --wrap "\"$ingot\" merge \"$out\".part*-of-$n -o \"$out\" && rm -f \"$out\".part*-of-$n")
echo "$array $merge"
