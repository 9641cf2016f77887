#!/bin/bash
# Sharded quantization on a real Slurm: a single-node cluster (munged, slurmctld and slurmd on this machine, Debian's
# slurm-wlm and munge, installed if missing: needs root) runs tools/slurm/quantize.sh; the merged files must equal one
# `ingot quantize` byte for byte, for SmolLM2 (Q4_K_M, Q8_0) and the synthetic 1.1B llama (Q4_K_M); and a task
# cancelled mid-way, submitted again, must give the same result. Outside CI (it starts daemons); takes a few minutes.
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
wait_jobs() {   # until none of the jobs is queued or running
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do sleep 1; done
}
failed=0
check() {   # MODEL PRESET: the array and the merge, against one process
    local model=$1 preset=$2 out=$work/$2.gguf
    "$ingot" quantize "$model" -o "$work/whole.gguf" --type "$preset" >/dev/null 2>&1
    local start=$(date +%s.%N)
    read -r array merge < <("$root/tools/slurm/quantize.sh" "$model" "$out" "$preset" "$n")
    wait_jobs "$array,$merge"
    local took=$(echo "$(date +%s.%N) - $start" | bc)
    if cmp -s "$work/whole.gguf" "$out"; then
        echo "  ok    $(basename "$model") $preset: $n array tasks + merge (jobs $array, $merge) = one process, byte for byte (${took%.*} s)"
    else
        echo "  FAIL  $(basename "$model") $preset: merged file differs or is missing"; failed=1
        tail -5 ingot-*.log
    fi
    rm -f "$out" "$work/whole.gguf"
}
check "$root/.cache/variants/smollm2-f16.gguf" Q4_K_M
check "$root/.cache/variants/smollm2-f16.gguf" Q8_0
synthetic=$root/.cache/variants/synthetic-1b-f16.gguf   # 1.1B parameters, 2.2 GB
[ -f "$synthetic" ] || python3 "$root/tools/make-synthetic-model.py" "$synthetic" --hidden 2048 --ffn 5632 --layers 22 \
    --heads 32 --kv-heads 4 >/dev/null
check "$synthetic" Q4_K_M

# A task cancelled mid-way: no part; submitted again, the merge is the same.
"$ingot" quantize "$synthetic" -o "$work/whole.gguf" --type Q4_K_M >/dev/null 2>&1
out=$work/cancel.gguf
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL "$root/tools/slurm/quantize.sbatch" "$synthetic" "$out" Q4_K_M "$n")
for _ in $(seq 600); do   # until task 1 is writing its part (a hidden temporary beside the output)
    ls -a "$work" | grep -q "^\.cancel\.gguf\.part1-of-$n" && break
    sleep 0.1
done
scancel "${array}_1"
wait_jobs "$array"
left=$(ls "$work" | grep -c "^cancel.gguf.part1-of-$n\$" || true)
again=$(sbatch --parsable --array=1 --export=ALL "$root/tools/slurm/quantize.sbatch" "$synthetic" "$out" Q4_K_M "$n")
wait_jobs "$again"
"$ingot" merge "$out".part*-of-$n -o "$out" >/dev/null
if [ "$left" = 0 ] && cmp -s "$work/whole.gguf" "$out"; then
    echo "  ok    a task cancelled mid-way left no part; submitted again (job $again), the merge is one process's file"
else
    echo "  FAIL  cancelled task: part left $left, merged file differs"; failed=1
fi
cd /
rm -rf "$work"
exit $failed
