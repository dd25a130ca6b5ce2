#!/usr/bin/env bash
# A real SLURM run: installs Debian's slurm-wlm and munge, starts a one-node
# cluster on localhost (munged, slurmctld, slurmd), submits a 4-task job array
# of scripts/slurm/sweep.sbatch, merges the shards and checks that the merged
# cells.csv is byte for byte the unsharded run's. Exits non-zero on any
# failure or mismatch, and stops every daemon it started.
#
#   bash scripts/slurm/ci_test.sh        (as root; .ci/run calls it)
#
# STEPSWEEP names the binary to test [default: release/stepsweep under
# CARGO_TARGET_DIR or target/, built if missing]. SLURM_TEST_TIMEOUT bounds
# the job array's run [300 s].
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
started=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm test: run as root; it installs packages and starts the SLURM daemons" >&2
    exit 2
fi

stepsweep=${STEPSWEEP:-${CARGO_TARGET_DIR:-$repo/target}/release/stepsweep}
if [ ! -x "$stepsweep" ]; then
    cargo build --release --quiet
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/stepsweep-slurm.XXXXXX)
chmod 755 "$work"

cleanup() {
    local status=$?
    if [ -n "${job:-}" ]; then
        scancel "$job" 2>/dev/null || true
    fi
    # Only the daemons this script started, by the ids they recorded.
    local daemons=()
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then
            daemons+=("$(cat "$pidfile")")
        fi
    done
    for pid in "${daemons[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    # Wait for them to go, so their ports are free for the next run.
    for pid in "${daemons[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    done
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log "$work"/munge/*.log "$work"/out/*.out; do
            [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
        done >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# munge: SLURM's authentication. Its own socket and pid file, so a munged that
# the machine may already run is left alone.
if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey --create --keyfile /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 "$work/munge"
runuser -u munge -- munged \
    --socket "$work/munge/munge.socket" \
    --pid-file "$work/munge/munged.pid" \
    --log-file "$work/munge/munged.log" \
    --seed-file "$work/munge/munged.seed"
export MUNGE_SOCKET="$work/munge/munge.socket"

node=$(hostname -s)
cpus=$(nproc)
mkdir -p "$work/state" "$work/spool" "$work/out"
cat >"$work/slurm.conf" <<EOF
ClusterName=stepsweep-ci
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CryptoType=crypto/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1024 State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$work/slurm.conf"

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Wait for the node to come up idle.
for _ in $(seq 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
        break
    fi
    sleep 1
done
if ! sinfo -h -N -o '%T' | grep -qx idle; then
    echo "slurm test: the node never became idle: $(sinfo -h -N -o '%T %E' 2>&1)" >&2
    exit 1
fi

# The sweep: small enough for CI, large enough that every shard has several cells.
cat >"$work/sweep.toml" <<'EOF'
trajectories = 3000
max_iters = 20000
seed = 20181203
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
values = [0.05, 0.15, 0.199, 0.21, 0.26, 0.3, 0.45, 0.49, 0.55]
EOF

job=$(STEPSWEEP="$stepsweep" sbatch --parsable \
    --array=0-3 \
    --chdir="$work/out" \
    --output="$work/out/task-%a.out" \
    --time=10 \
    scripts/slurm/sweep.sbatch "$work/sweep.toml" "$work/out" --backend cpu)
echo "slurm test: submitted job array $job"

deadline=$((SECONDS + ${SLURM_TEST_TIMEOUT:-300}))
while squeue -h -j "$job" 2>/dev/null | grep -q .; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "slurm test: job array $job still queued or running after ${SLURM_TEST_TIMEOUT:-300} s" >&2
        exit 1
    fi
    sleep 1
done

for i in 0 1 2 3; do
    if [ ! -f "$work/out/shard-$i/shard.json" ]; then
        echo "slurm test: task $i of job array $job left no shard.json" >&2
        exit 1
    fi
done

"$stepsweep" merge "$work"/out/shard-* --out "$work/merged" >/dev/null
"$stepsweep" run "$work/sweep.toml" --backend cpu --out "$work/whole" --quiet >/dev/null

if ! cmp "$work/merged/cells.csv" "$work/whole/cells.csv"; then
    echo "slurm test: the merged cells.csv differs from the unsharded run's" >&2
    diff "$work/merged/cells.csv" "$work/whole/cells.csv" >&2 || true
    exit 1
fi
echo "slurm test: 4 shards run by SLURM merge byte for byte into the unsharded cells.csv ($((SECONDS - started)) s)"
