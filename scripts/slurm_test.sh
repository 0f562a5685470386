#!/usr/bin/env bash
# `lungvol batch --executor slurm` on a real Slurm cluster of one node on localhost: installs
# Debian's slurm-wlm and munge when missing, starts munged, slurmctld and slurmd with a minimal
# configuration in a temporary folder, runs a phantom cohort (2 subjects x 2 visits) through
# the Slurm executor and through a local batch, and checks that the two results.sqlite hold the
# same scans, measurements, histograms, failures, identity flags and protocol texts, and the same
# registrations of the follow-ups (one registration task per subject, after the scans' merge:
# rows, change volumes, mask consistency and change maps), that --status reports the finished
# run, and that submitting again recomputes nothing. The daemons it started are stopped by PID.
# Usage: scripts/slurm_test.sh. Env: LUNGVOL_BUILD_DIR (default build), LUNGVOL_BINARY,
# LUNGVOL_SKIP_SLURM=1 (skip), LUNGVOL_SLURM_TIMEOUT (seconds to wait for the jobs; 300).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LUNGVOL_SKIP_SLURM:-0}" = "1" ]; then echo "slurm_test: skipped (LUNGVOL_SKIP_SLURM=1)"; exit 0; fi
start=$(date +%s)
LUNGVOL=${LUNGVOL_BINARY:-$PWD/${LUNGVOL_BUILD_DIR:-build}/apps/lungvol}
[ -x "$LUNGVOL" ] || { echo "slurm_test: $LUNGVOL not found; build lungvol first" >&2; exit 1; }
LUNGVOL=$(readlink -f "$LUNGVOL")
TIMEOUT=${LUNGVOL_SLURM_TIMEOUT:-300}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || need+=(slurm-wlm)
command -v munged >/dev/null || [ -x /usr/sbin/munged ] || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  echo "slurm_test: installing ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

T=$(mktemp -d /tmp/lungvol-slurm.XXXXXX)
chmod 700 "$T"
PIDS=()
cleanup() {
  local rc=$?
  # Only the daemons this script started, newest first.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "slurm_test: FAILED (exit $rc); daemon logs:" >&2
    tail -n 20 "$T"/*.log "$T"/work/slurm/slurm/logs/* 2>/dev/null >&2 || true
  fi
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT INT TERM

USER_NAME=$(id -un)
HOST=$(hostname -s)
NCPU=$(nproc)
# Ports off the defaults (6817/6818) so a real cluster on this machine is not disturbed.
PORT=$((20000 + ($$ % 5000) * 2))

# munge with its own key and socket.
dd if=/dev/urandom of="$T/munge.key" bs=1024 count=1 status=none
chmod 600 "$T/munge.key"
munged -F --force --key-file="$T/munge.key" --socket="$T/munge.sock" \
  --pid-file="$T/munged.pid" --seed-file="$T/munge.seed" --log-file="$T/munged.log" \
  >"$T/munged.out" 2>&1 &
PIDS+=($!)

mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<EOF
ClusterName=lungvoltest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
PlugStackConfig=$T/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
echo "CgroupPlugin=cgroup/v1" > "$T/cgroup.conf"
: > "$T/plugstack.conf"
export SLURM_CONF=$T/slurm.conf
for _ in $(seq 50); do [ -S "$T/munge.sock" ] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" -N "$HOST" >"$T/slurmd.out" 2>&1 &
PIDS+=($!)
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
  [ "$state" = "idle" ] && break
  sleep 0.5
done
[ "$state" = "idle" ] || { echo "slurm_test: the node did not come up (state '$state')" >&2; exit 1; }
up=$(date +%s)
echo "slurm_test: one-node cluster up in $((up - start)) s ($HOST, $NCPU CPUs, port $PORT)"

# The cohort: 2 subjects x 2 visits, small phantoms (64 x 64 x 24 voxels).
W=$T/work
mkdir -p "$W"
for s in 1 2; do
  for v in baseline day10; do
    if [ $v = baseline ]; then scale=1.5; date=2020030$s; else scale=1.0; date=2020031$s; fi
    "$LUNGVOL" --log-level warn phantom -o "$W/S0${s}_$v" --seed $s --size 64,64,24 \
      --spacing 2.7,2.7,6.5 --lesion-scale $scale --study-date $date >/dev/null
  done
done
printf 'subject_id,arm,visit,path\nS01,A,baseline,S01_baseline/dicom\nS01,A,day10,S01_day10/dicom\nS02,B,baseline,S02_baseline/dicom\nS02,B,day10,S02_day10/dicom\n' \
  > "$W/manifest.csv"
"$LUNGVOL" --log-level warn --threads 1 batch "$W/manifest.csv" -o "$W/local" --no-qc

t0=$(date +%s)
"$LUNGVOL" --log-level warn --threads 1 batch "$W/manifest.csv" -o "$W/slurm" --executor slurm \
  --array-limit 2 --slurm-opt=--time=00:10:00 --no-qc
"$LUNGVOL" batch --executor slurm --status "$W/slurm"
until [ -f "$W/slurm/slurm/merged.json" ] && [ -f "$W/slurm/slurm/registrations-merged.json" ]; do
  if [ $(($(date +%s) - t0)) -gt "$TIMEOUT" ]; then
    echo "slurm_test: the jobs did not finish within $TIMEOUT s" >&2
    squeue >&2 || true
    exit 1
  fi
  sleep 1
done
# The merge records are written before their jobs exit: wait for the queue to drain.
for _ in $(seq 100); do [ -z "$(squeue -h -u "$USER_NAME")" ] && break; sleep 0.2; done
t1=$(date +%s)
echo "slurm_test: 4 scan tasks + merge, 2 registration tasks + merge finished in $((t1 - t0)) s"

status=$("$LUNGVOL" batch --executor slurm --status "$W/slurm")
echo "$status"
grep -q "done 4, failed 0, running 0, pending 0, ended without a result 0" <<<"$status"
grep -q "merged into results.sqlite" <<<"$status"
grep -q "registrations: 2 subject(s) as job array [0-9]*, 2 finished; stored in results.sqlite" <<<"$status"
ls "$W"/slurm/slurm/logs/task-*_[0-3].log "$W"/slurm/slurm/logs/register-*_[01].log >/dev/null
# The change maps are the same voxels (gzip headers aside), and each has its DICOM SEG.
for s in S01 S02; do
  cmp <(gzip -dc "$W/local/registrations/$s/day10/change_map.nii.gz") \
      <(gzip -dc "$W/slurm/registrations/$s/day10/change_map.nii.gz")
  [ -s "$W/slurm/registrations/$s/day10/change_map_seg.dcm" ]
done

python3 - "$W/local/results.sqlite" "$W/slurm/results.sqlite" <<'EOF'
import sqlite3, sys
queries = {
    "scans": "SELECT subject_id, arm, visit, status, series_uid, input_sha256, study_date,"
             " protocol_sha256, software_version, days_from_baseline, in_window, voxel_ml,"
             " warnings, error, patient_id, study_instance_uid, image_sha256, input_patients"
             " FROM scans",
    "measurements": "SELECT s.subject_id, s.visit, m.region, m.metric, m.value, m.unit"
                    " FROM measurements m JOIN scans s USING(scan_id)",
    "histograms": "SELECT s.subject_id, s.visit, h.region, h.kind, h.hu_min, h.n_bins, h.total,"
                  " h.counts FROM histograms h JOIN scans s USING(scan_id)",
    "failures": "SELECT subject_id, visit, error, exit_code FROM failures",
    "identity_flags": "SELECT subject_id, visit, flag, detail FROM identity_flags",
    "protocols": "SELECT sha256, name, version, toml FROM protocols",
    "registrations": "SELECT subject_id, visit, baseline_visit, registration_key, status,"
                     " baseline_input_sha256, followup_input_sha256, parameters_sha256,"
                     " software_version, inspiration_flagged, consistency_flagged, error"
                     " FROM registrations",
    "registration_measurements": "SELECT subject_id, visit, region, metric, value, unit"
                                 " FROM registration_measurements",
    "registration_subjects": "SELECT subject_id, subject_key, baseline_visit, best_aerated_visit,"
                             " status, error FROM registration_subjects",
    "lung_mask_consistency": "SELECT * FROM lung_mask_consistency",
}
local, slurm = (sqlite3.connect(p) for p in sys.argv[1:3])
for name, q in queries.items():
    a, b = sorted(local.execute(q).fetchall()), sorted(slurm.execute(q).fetchall())
    if a != b:
        sys.exit(f"slurm_test: table {name} differs: {len(a)} local rows, {len(b)} Slurm rows; "
                 f"first difference {next((x, y) for x, y in zip(a, b) if x != y) if len(a) == len(b) else ''}")
    print(f"slurm_test: {name}: {len(a)} rows identical")
assert slurm.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
n = slurm.execute("SELECT n_total, n_analyzed, n_skipped, n_failed FROM runs ORDER BY run_id").fetchall()
assert n == [(4, 4, 0, 0)], n
regs = slurm.execute("SELECT COUNT(*) FROM registrations WHERE status = 'ok'").fetchone()[0]
assert regs == 2, f"slurm_test: {regs} registrations, expected 2 (S01 and S02 day10)"
EOF

# Submitting again recomputes nothing and submits no job.
again=$("$LUNGVOL" --log-level warn batch "$W/manifest.csv" -o "$W/slurm" --executor slurm --no-qc 2>&1)
echo "$again"
grep -q "all already done: nothing submitted" <<<"$again"
[ -z "$(squeue -h -u "$USER_NAME")" ]
python3 - "$W/slurm/results.sqlite" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
last = db.execute("SELECT n_total, n_analyzed, n_skipped, n_failed FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
assert last == (4, 0, 4, 0), last
assert db.execute("SELECT COUNT(*) FROM scans WHERE run_id = 1").fetchone()[0] == 4
EOF
end=$(date +%s)
echo "slurm_test: OK in $((end - start)) s (cluster start $((up - start)) s, Slurm batch $((t1 - t0)) s)"
