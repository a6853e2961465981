#!/usr/bin/env bash
# A real single-node Slurm cluster (with accounting) for the sweep tests, started by hand: these machines have no
# systemd, so every daemon runs in the foreground (-D) in the background.
#
#   bash .ci/slurm_cluster.sh start   install the Debian packages if missing, configure, start, wait until a job runs
#   bash .ci/slurm_cluster.sh stop    stop every daemon
#
# Everything lives under SLURM_DIR (default /tmp/harness-slurm); clients find the cluster through
# SLURM_CONF=$SLURM_DIR/slurm.conf, which tests/sweep_cluster.py reads. Needs root (apt-get, daemons' users).
set -euo pipefail

SLURM_DIR=${SLURM_DIR:-/tmp/harness-slurm}
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
export SLURM_CONF=${SLURM_DIR}/slurm.conf

log() { echo "[slurm_cluster] $*"; }

install_packages() {
    local missing=()
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
    local seconds=$1 description=$2
    shift 2
    for _ in $(seq $((seconds * 4))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    log "timed out waiting for ${description}; logs in ${SLURM_DIR}/log"
    tail -n 20 "${SLURM_DIR}"/log/* >&2 || true
    exit 1
}

start_munge() {
    [[ -s /etc/munge/munge.key ]] || mungekey --create
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --foreground > "${SLURM_DIR}/log/munged.log" 2>&1 &
    wait_for 20 munged munge -n
}

start_mariadb() {
    local data=${SLURM_DIR}/mysql run=${SLURM_DIR}/mysqld
    mkdir -p "${run}" && chown mysql:mysql "${run}"
    if [[ ! -d ${data}/mysql ]]; then
        mkdir -p "${data}" && chown mysql:mysql "${data}"
        mariadb-install-db --user=mysql --datadir="${data}" --auth-root-authentication-method=socket >/dev/null
    fi
    runuser -u mysql -- /usr/sbin/mariadbd --datadir="${data}" --socket="${run}/mysqld.sock" \
        --pid-file="${run}/mysqld.pid" --bind-address=127.0.0.1 --port=3306 --log-error="${run}/error.log" \
        > "${SLURM_DIR}/log/mariadbd.log" 2>&1 &
    wait_for 60 mariadb mariadb --socket="${run}/mysqld.sock" -e "SELECT 1"
    mariadb --socket="${run}/mysqld.sock" <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL
}

write_configs() {
    local node cpus memory
    node=$(hostname -s)
    cpus=$(nproc)
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mkdir -p "${SLURM_DIR}"/{state,spool,log}
    cat > "${SLURM_DIR}/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=${SLURM_DIR}/log/slurmdbd.log
PidFile=${SLURM_DIR}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "${SLURM_DIR}/slurmdbd.conf"
    cat > "${SLURM_CONF}" <<EOF
ClusterName=harness
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# A requeued job starts again after cred_expire + 1 s (default 120 s: the requeue test would wait 2 min).
AuthInfo=cred_expire=10
StateSaveLocation=${SLURM_DIR}/state
SlurmdSpoolDir=${SLURM_DIR}/spool
SlurmctldPidFile=${SLURM_DIR}/slurmctld.pid
SlurmdPidFile=${SLURM_DIR}/slurmd.pid
SlurmctldLogFile=${SLURM_DIR}/log/slurmctld.log
SlurmdLogFile=${SLURM_DIR}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=2048
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MaxArraySize=10001
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=defer_batch
MinJobAge=300
KillWait=5
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    if sinfo >/dev/null 2>&1 && scontrol ping 2>/dev/null | grep -q UP; then
        log "already running (SLURM_CONF=${SLURM_CONF})"
        return 0
    fi
    local started=${SECONDS}
    install_packages
    log "packages ready after $((SECONDS - started)) s"
    write_configs
    start_munge
    start_mariadb
    slurmdbd -D > "${SLURM_DIR}/log/slurmdbd.out" 2>&1 &
    wait_for 60 slurmdbd bash -c "exec 3<>/dev/tcp/127.0.0.1/6819"
    sacctmgr -i add cluster harness >/dev/null 2>&1 || true
    slurmctld -D -f "${SLURM_CONF}" > "${SLURM_DIR}/log/slurmctld.out" 2>&1 &
    wait_for 60 slurmctld scontrol ping
    slurmd -D -f "${SLURM_CONF}" > "${SLURM_DIR}/log/slurmd.out" 2>&1 &
    wait_for 60 "the node to be idle" bash -c "sinfo -h -o %t | grep -qx idle"
    wait_for 60 "a first job" srun -t 1 true
    log "cluster up after $((SECONDS - started)) s (SLURM_CONF=${SLURM_CONF})"
}

stop() {
    for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
        pkill -x "${daemon}" 2>/dev/null || true
    done
    log "stopped"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    *) echo "Usage: bash .ci/slurm_cluster.sh start|stop" >&2; exit 2 ;;
esac
