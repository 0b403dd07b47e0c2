#!/usr/bin/env bash
# A single-node Slurm cluster for the `regimen sweep submit --slurm` test: Debian's slurmctld,
# slurmd and munge (installed when missing), configured in a folder of the caller's, with this
# machine as the only node. Run as root (CI); slurmd runs jobs as the submitting user.
#
#   bash .ci/slurm.sh start DIR   # prints the path of slurm.conf, for SLURM_CONF
#   bash .ci/slurm.sh stop DIR
set -euo pipefail
action="${1:?start or stop}"
dir="${2:?a folder for the cluster}"

case "$action" in
start)
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
        echo "installing Debian's slurmctld, slurmd, slurm-client and munge" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >&2
    fi
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 755 "$dir"
    # munge: a key of its own and a daemon whose socket is in the folder.
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key >&2
        chown munge:munge /etc/munge/munge.key
    fi
    chown munge:munge "$dir/munge"
    runuser -u munge -- munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" >&2
    host="$(hostname -s)"
    read -r ctl_port node_port < <(python3 -c 'import socket
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s)
print(*[s.getsockname()[1] for s in ports])')
    cat >"$dir/slurm.conf" <<CONF
ClusterName=regimen
SlurmctldHost=$host
SlurmctldPort=$ctl_port
SlurmdPort=$node_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF" >&2
    slurmd -f "$SLURM_CONF" >&2
    for _ in $(seq 1 100); do
        if sinfo -h -o %t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; then
            echo "$SLURM_CONF"
            exit 0
        fi
        sleep 0.2
    done
    echo "the Slurm node did not come up:" >&2
    sinfo >&2 || true
    tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1
    ;;
stop)
    pids=()
    for file in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [ -f "$file" ]; then
            pid="$(cat "$file")"
            kill "$pid" 2>/dev/null && pids+=("$pid")
        fi
    done
    # The daemons remove their own files as they go: wait for them before removing the folder.
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    done
    rm -rf "$dir" 2>/dev/null || rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
