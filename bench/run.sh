#!/usr/bin/env bash
# bench/run.sh — end-to-end benchmark of `lungvol analyze` against dcm2niix (issue #6).
#
#   bash bench/run.sh [--quick] [--runs N] [--skip-kernels]
#
# In one run on this machine it measures, median of N runs (N=5, --quick: 3):
#   * `lungvol --threads 2 analyze` on POPI (real, 141 x 512 x 512) and on a 512 x 512 x 600
#     phantom at 0.7 mm: wall time, per-stage times from metrics.json, peak RSS (/usr/bin/time -v);
#   * `dcm2niix -z n` on the same series (the floor for reading DICOM) and `lungvol convert`
#     (read + .nii write) for the read stage;
#   * `--threads 1` vs `--threads 2` on POPI (20 runs each at N=5) for the parallel speed-up of
#     the analyze stages, read from the fastest runs, with each core's speed probed (a pinned
#     spin loop) before every block of them;
#   * analyze on phantoms of 150, 300 and 600 slices (same anatomy, slice spacing 2.8/1.4/0.7 mm)
#     for time vs voxel count;
#   * `lungvol --threads 2 register` of POPI re-rendered at another inspiration level
#     (`lungvol deform`, the default motion) to POPI itself: one POPI-size registration (issue
#     #17; the two analyze outputs are made once, untimed);
#   * one `batch --jobs 2` of 3 subjects x 3 visits (phantoms): the scans' time against the
#     registrations' time of the 6 follow-ups, as the batch stored them (issue #17);
#   * the Google Benchmark kernels (build-bench/bench/lungvol_bench_kernels), unless
#     --skip-kernels.
# It replaces the "## Results" section of docs/benchmarks.md and prints the summary table.
#
# Builds lungvol (Release, -DLUNGVOL_BUILD_BENCH=ON) in build-bench/ if needed. Phantoms are
# generated once into build-bench/bench-cache/. Needs dcm2niix and GNU time (scripts/setup.sh;
# `apt-get install -y dcm2niix time`). Environment: LUNGVOL_BENCH_BUILD (build folder),
# LUNGVOL_POPI (POPI DICOM folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${LUNGVOL_BENCH_BUILD:-$ROOT/build-bench}"
POPI="${LUNGVOL_POPI:-$ROOT/../shared/data/popi-4dct-phase00-itkelastix/dicom}"
RUNS=5
QUICK=0
KERNELS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; RUNS=3 ;;
    --runs) RUNS="$2"; shift ;;
    --skip-kernels) KERNELS=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

for tool in dcm2niix /usr/bin/time python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool is missing; install it with: apt-get install -y dcm2niix time python3" >&2
    exit 1
  fi
done
[ -d "$POPI" ] || { echo "run.sh: POPI data not found at $POPI (set LUNGVOL_POPI)" >&2; exit 1; }

# --- build -------------------------------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLUNGVOL_BUILD_BENCH=ON \
    -DLUNGVOL_BUILD_TESTS=OFF >/dev/null
fi
targets=(lungvol)
[ "$KERNELS" = 1 ] && targets+=(lungvol_bench_kernels)
cmake --build "$BUILD" -j2 --target "${targets[@]}" >/dev/null
LUNGVOL="$BUILD/apps/lungvol"
KBENCH="$BUILD/bench/lungvol_bench_kernels"

WORK="$(mktemp -d /tmp/lungvol-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# input kind threads run wall_s maxrss_kb read lungs lesions measure write total cpu_s
RECORDS="$WORK/records.tsv"
: >"$RECORDS"

# --- inputs ------------------------------------------------------------------------------------
CACHE="$BUILD/bench-cache"
mkdir -p "$CACHE"
phantom() {  # phantom NZ SZ -> folder with dicom/
  local nz="$1" sz="$2" dir="$CACHE/phantom-512x512x$1"
  if [ "$(ls "$dir/dicom" 2>/dev/null | wc -l)" != "$nz" ]; then
    echo "generating phantom 512x512x$nz (slice spacing $sz mm) ..." >&2
    "$LUNGVOL" phantom -o "$dir" --size "512,512,$nz" --spacing "0.7,0.7,$sz" >/dev/null
  fi
  echo "$dir/dicom"
}
P600="$(phantom 600 0.7)"
P300="$(phantom 300 1.4)"
P150="$(phantom 150 2.8)"
# The registration pair: POPI and POPI re-rendered by a known breathing motion, both analyzed.
REG="$CACHE/register-popi"
if [ ! -f "$REG/follow/metrics.json" ] || [ ! -f "$REG/base/metrics.json" ]; then
  echo "preparing the registration pair (deform + 2 x analyze) ..." >&2
  rm -rf "$REG" && mkdir -p "$REG"
  "$LUNGVOL" --log-level warn deform "$POPI" -o "$REG/deformed" >/dev/null
  "$LUNGVOL" --log-level warn analyze "$POPI" -o "$REG/base" --no-qc --no-dicom >/dev/null
  "$LUNGVOL" --log-level warn analyze "$REG/deformed/ct.nii.gz" -o "$REG/follow" --no-qc \
    --no-dicom >/dev/null
fi

# The 3-visit cohort (issue #17, batch throughput): 3 subjects x baseline / day 10 / day 28,
# phantoms of the default size (192 x 192 x 80), lesions shrinking; one batch analyzes the 9 scans
# and registers the 6 follow-ups.
COHORT="$CACHE/cohort-3x3"
if [ ! -f "$COHORT/manifest.csv" ]; then
  echo "generating the 3 subjects x 3 visits cohort ..." >&2
  rm -rf "$COHORT" && mkdir -p "$COHORT"
  echo "subject_id,arm,visit,path" >"$COHORT/manifest.csv.tmp"
  for s in 1 2 3; do
    for v in "baseline 1.0 01" "day10 0.8 11" "day28 0.6 29"; do
      read -r visit scale day <<<"$v"
      "$LUNGVOL" --log-level warn phantom -o "$COHORT/S$s/$visit" --seed "$s" \
        --lesion-scale "$scale" --study-date "202003$day" >/dev/null
      echo "S$s,A,$visit,S$s/$visit/dicom" >>"$COHORT/manifest.csv.tmp"
    done
  done
  mv "$COHORT/manifest.csv.tmp" "$COHORT/manifest.csv"
fi

now() { date +%s.%N; }

# core_probe: each core's speed, a 1-second spin loop pinned to it, appended to PROBES as one
# line of loop counts (one per core). On a shared VM a core can run at a fraction of the other's
# speed for seconds at a time (another tenant on the same physical core); a 2-thread run then
# waits for the slower core at every join, while a 1-thread run may land on the fast one.
PROBES="$WORK/probes.txt"
: >"$PROBES"
core_probe() {
  python3 - >>"$PROBES" <<'PROBE'
import os, time
counts = []
for cpu in sorted(os.sched_getaffinity(0)):
    os.sched_setaffinity(0, {cpu})
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        for _ in range(10000):
            pass
        n += 1
    counts.append(n)
print(" ".join(map(str, counts)))
PROBE
}

# run_cmd INPUT KIND THREADS RUN cmd... : one timed run, appended to RECORDS.
run_cmd() {
  local input="$1" kind="$2" threads="$3" run="$4"
  shift 4
  local t0 t1 rss cpu
  t0=$(now)
  if ! /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.log" 2>&1; then
    echo "run.sh: failed: $*" >&2
    tail -20 "$WORK/out.log" >&2
    exit 1
  fi
  t1=$(now)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/time.txt")
  local stages="- - - - - -"
  if [ "$kind" = analyze ]; then
    stages=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["timing_s"]
print(" ".join(str(t.get(k, "-")) for k in ("read", "lungs", "lesions", "measure", "write", "total")))
' "$WORK/out/metrics.json")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$input" "$kind" "$threads" "$run" \
    "$(python3 -c "print(round($t1 - $t0, 3))")" "$rss" "${stages// /$'\t'}" "$cpu" >>"$RECORDS"
}

analyze() {  # analyze INPUT_NAME PATH THREADS RUN
  rm -rf "$WORK/out"
  run_cmd "$1" analyze "$3" "$4" "$LUNGVOL" --threads "$3" analyze "$2" -o "$WORK/out"
}
dcm2niix_run() {  # dcm2niix_run INPUT_NAME PATH RUN
  rm -rf "$WORK/d2n" && mkdir -p "$WORK/d2n"
  run_cmd "$1" dcm2niix 1 "$3" dcm2niix -z n -o "$WORK/d2n" -f volume "$2"
}
register_run() {  # register_run RUN
  rm -rf "$WORK/reg"
  run_cmd popi register 2 "$1" "$LUNGVOL" --threads 2 register "$REG/base" "$REG/follow" \
    -o "$WORK/reg" --no-qc
}
# batch3_run RUN: one `batch` of the 3-visit cohort from scratch (label maps, no QC PNGs); the
# wall time goes to RECORDS, and the batch's own per-scan and per-registration times (results.sqlite)
# to BATCH3 as: run, scans, scan seconds (sum), registrations, registration seconds (sum), wall.
BATCH3="$WORK/batch3.tsv"
: >"$BATCH3"
batch3_run() {
  rm -rf "$WORK/batch3"
  run_cmd cohort3 batch3 2 "$1" "$LUNGVOL" --threads 2 batch "$COHORT/manifest.csv" \
    -o "$WORK/batch3" --jobs 2 --no-qc
  python3 - "$WORK/batch3/results.sqlite" "$1" "$(tail -1 "$RECORDS" | cut -f5)" >>"$BATCH3" <<'B3'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n_s, t_s = db.execute("SELECT COUNT(*), SUM(timing_s) FROM scans WHERE status = 'ok'").fetchone()
n_r, t_r = db.execute("SELECT COUNT(*), SUM(timing_s) FROM registrations WHERE status = 'ok'").fetchone()
if n_s != 9 or n_r != 6:
    sys.exit(f"run.sh: the 3-visit batch analyzed {n_s} of 9 scans and registered {n_r} of 6 follow-ups")
print(f"{sys.argv[2]}\t{n_s}\t{t_s}\t{n_r}\t{t_r}\t{sys.argv[3]}")
B3
}
convert_run() {  # convert_run INPUT_NAME PATH RUN
  rm -f "$WORK/volume.nii"
  run_cmd "$1" convert 2 "$3" "$LUNGVOL" --threads 2 convert "$2" -o "$WORK/volume.nii"
}

# --- measurements (interleaved so that load from other users spreads over all of them) ---------
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "measuring, $RUNS runs each ..." >&2
for run in $(seq 1 "$RUNS"); do
  echo "  run $run/$RUNS" >&2
  for name in popi p600; do
    path="$POPI"; [ "$name" = p600 ] && path="$P600"
    dcm2niix_run "$name" "$path" "$run"
    convert_run "$name" "$path" "$run"
    analyze "$name" "$path" 2 "$run"
  done
  # The thread comparison: 1 and 2 threads back to back, in the order 1 2 2 1 (twice), so that
  # a change in the machine's speed (other tenants) falls on both alike.
  core_probe
  for threads in 1 2 2 1 1 2 2 1; do analyze popi-threads "$POPI" "$threads" "$run"; done
  analyze p150 "$P150" 2 "$run"
  analyze p300 "$P300" 2 "$run"
  register_run "$run"
  batch3_run "$run"
done

KJSON=""
if [ "$KERNELS" = 1 ]; then
  echo "running kernel micro-benchmarks ..." >&2
  KJSON="$WORK/kernels.json"
  min_time=0.5
  [ "$QUICK" = 1 ] && min_time=0.1
  "$KBENCH" --benchmark_min_time="$min_time" --benchmark_out="$KJSON" \
    --benchmark_out_format=json >/dev/null
fi

# --- report ------------------------------------------------------------------------------------
CPU="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
MACHINE="$(nproc) cores, ${CPU:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GB RAM", $2/1048576}' /proc/meminfo)"
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
COMMAND="bash bench/run.sh"; [ "$QUICK" = 1 ] && COMMAND="bash bench/run.sh --quick"
VERSION="$("$LUNGVOL" --version 2>/dev/null | head -1 || true)"
COMMIT="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"

python3 - "$RECORDS" "$ROOT/docs/benchmarks.md" "$RUNS" "$MACHINE" "$LOAD" "$COMMAND" \
  "$VERSION" "$COMMIT" "$KJSON" "$LOAD_START" "$(nproc)" "$PROBES" "$BATCH3" <<'PY'
import datetime, json, os, statistics, sys
records, doc, runs, machine, load, command, version, commit, kjson, load_start, ncpu, probes, batch3 = sys.argv[1:14]
ncpu = int(ncpu)
busy = max(float(load.split()[0]), float(load_start.split()[0])) > ncpu
rows = []
for line in open(records):
    f = line.rstrip("\n").split("\t")
    rows.append(dict(input=f[0], kind=f[1], threads=int(f[2]), wall=float(f[4]), rss_kb=int(f[5]),
                     stages={k: (None if v == "-" else float(v)) for k, v in
                             zip(("read", "lungs", "lesions", "measure", "write", "total"), f[6:12])},
                     cpu=float(f[12])))

def sel(inp, kind, threads=None):
    return [r for r in rows if r["input"] == inp and r["kind"] == kind and
            (threads is None or r["threads"] == threads)]

def med(rs, key):
    vals = [r[key] if key in ("wall", "rss_kb", "cpu") else r["stages"][key] for r in rs]
    return statistics.median(vals) if vals else float("nan")

VOXELS = {"popi": 512 * 512 * 141, "p600": 512 * 512 * 600, "p300": 512 * 512 * 300,
          "p150": 512 * 512 * 150}
NAMES = {"popi": "POPI 512x512x141 (real)", "p600": "phantom 512x512x600 @0.7 mm",
         "p300": "phantom 512x512x300 @0.7x0.7x1.4", "p150": "phantom 512x512x150 @0.7x0.7x2.8"}
out = []
w = out.append
w("## Results\n")
w(f"Measured {datetime.datetime.now():%Y-%m-%d %H:%M} with `{command}` (median of {runs} runs), "
  f"{version or 'lungvol ?'} at commit {commit}.  ")
w(f"Machine: {machine}; load average (1, 5, 15 min) {load_start} at the start, {load} at the "
  "end. The machine is shared with other engineers building and testing at the same time, so "
  "absolute times carry noise; the ratios are measured side by side, interleaved run by run."
  + (f" **The load exceeded the {ncpu} cores during this run: the processes were descheduled "
     "part of the time, so wall times are inflated and the 2-thread speed-up cannot show; "
     "the CPU-time column (user + sys) is the less load-sensitive figure.**" if busy else "")
  + "\n")

w("### End to end (`lungvol --threads 2 analyze`, all outputs) vs dcm2niix\n")
w("| input | dcm2niix -z n wall / CPU (s) | lungvol convert wall / CPU (s) | analyze wall / CPU (s) | read | lungs | lesions | measure | write | peak RSS (MB) | RSS bytes/voxel |")
w("|---|---|---|---|---|---|---|---|---|---|---|")
for inp in ("popi", "p600"):
    a = sel(inp, "analyze", 2)
    d, c = sel(inp, 'dcm2niix'), sel(inp, 'convert')
    w(f"| {NAMES[inp]} | {med(d, 'wall'):.2f} / {med(d, 'cpu'):.2f} | {med(c, 'wall'):.2f} / {med(c, 'cpu'):.2f} | "
      f"{med(a, 'wall'):.2f} / {med(a, 'cpu'):.2f} | " + " | ".join(f"{med(a, k):.2f}" for k in ("read", "lungs", "lesions", "measure", "write")) +
      f" | {med(a, 'rss_kb') / 1024:.0f} | {med(a, 'rss_kb') * 1024 / VOXELS[inp]:.1f} |")
w("")

d2n_popi = med(sel("popi", "dcm2niix"), "wall")
a_popi = sel("popi", "analyze", 2)
ratio_total = med(a_popi, "wall") / d2n_popi
ratio_read = med(a_popi, "read") / d2n_popi
ratio_conv = med(sel("popi", "convert"), "wall") / d2n_popi
d2n_p600 = med(sel("p600", "dcm2niix"), "wall")
a_p600 = sel("p600", "analyze", 2)
ratio_read_p600 = med(a_p600, "read") / d2n_p600
bpv = med(a_p600, "rss_kb") * 1024 / VOXELS["p600"]
t1, t2 = sel("popi-threads", "analyze", 1), sel("popi-threads", "analyze", 2)
par = ("lungs", "lesions", "measure")
s1 = sum(med(t1, k) for k in par)
s2 = sum(med(t2, k) for k in par)
speed = s1 / s2
# Per adjacent pair (records come in the order 1 2 2 1 per run): the ratio of each 1-thread run
# to the 2-thread run next to it.
def par_time(r):
    return sum(r["stages"][k] for k in par)
pair_ratios = []
for i in range(0, len(t1) - 1, 2):
    a, b = t1[i:i + 2], t2[i:i + 2]
    pair_ratios += [par_time(x) / par_time(y) for x, y in zip(a, b)]
pair_speed = statistics.median(pair_ratios) if pair_ratios else float("nan")
# The headline is the ratio of the fastest runs (Chen & Revels 2016, "Robust benchmarking in
# noisy environments", arXiv:1608.04295: other tenants only ever add time, so the minimum is the
# estimator least biased by them). The medians are printed beside it, and the spread of each set
# of runs.
best_speed = min(par_time(r) for r in t1) / min(par_time(r) for r in t2) if t1 and t2 else float("nan")
def spread(rs):  # interquartile range over the median, of lungs + lesions + measure
    v = sorted(par_time(r) for r in rs)
    if len(v) < 4:
        return float("nan")
    q = statistics.quantiles(v, n=4)
    return (q[2] - q[0]) / statistics.median(v)
w("### Threads (POPI, `--threads 1` vs `--threads 2`)\n")
# Balance of each probe: the slowest core's speed over the fastest's (1 = equal cores).
balance = []
for line in open(probes):
    c = [int(x) for x in line.split()]
    if len(c) > 1 and max(c) > 0:
        balance.append(min(c) / max(c))
if balance:
    w(f"Core balance before each block of thread runs (a 1-second spin loop pinned to each core; "
      f"the slowest core's speed over the fastest's, 1.00 = equal): "
      f"{', '.join(f'{b:.2f}' for b in balance)}."
      + (" **The cores did not run at the same speed** (another tenant on one of the host's "
         "cores): a 2-thread run then waits for the slower core at every join, a 1-thread run "
         "is slowed only while its own core is the slow one; the fastest runs are those with "
         "both cores at full speed." if min(balance) < 0.9 else "") + "\n")
w(f"{len(t1)} runs each, back to back in the order 1, 2, 2, 1 threads. The speed-up of the "
  f"parallel stages (lungs + lesions + measure) from the fastest run of each is **{best_speed:.2f}**; "
  f"the median of the {len(pair_ratios)} ratios of adjacent runs is {pair_speed:.2f}, the ratio "
  f"of the medians {speed:.2f}. Spread (interquartile range / median) of the parallel stages: "
  f"{spread(t1):.0%} at 1 thread, {spread(t2):.0%} at 2 threads. Medians per stage:\n")
w("| stage | 1 thread (s) | 2 threads (s) | speed-up |")
w("|---|---|---|---|")
for k in ("read", "lungs", "lesions", "measure", "write", "total"):
    w(f"| {k} | {med(t1, k):.2f} | {med(t2, k):.2f} | {med(t1, k) / max(med(t2, k), 1e-9):.2f} |")
w(f"| lungs + lesions + measure | {s1:.2f} | {s2:.2f} | {speed:.2f} |")
w(f"| CPU time (user + sys) / wall, whole run | {med(t1, 'cpu') / med(t1, 'wall'):.2f} | {med(t2, 'cpu') / med(t2, 'wall'):.2f} | |\n")

w("### Time vs voxel count (phantoms, same anatomy, 2 threads)\n")
w("| input | voxels (M) | analyze wall (s) | lungs + lesions + measure (s) | ns/voxel (wall) | ns/voxel (compute) | peak RSS bytes/voxel |")
w("|---|---|---|---|---|---|---|")
for inp in ("p150", "p300", "p600"):
    a = sel(inp, "analyze", 2)
    comp = sum(med(a, k) for k in par)
    w(f"| {NAMES[inp]} | {VOXELS[inp] / 1e6:.1f} | {med(a, 'wall'):.2f} | {comp:.2f} | "
      f"{med(a, 'wall') * 1e9 / VOXELS[inp]:.0f} | {comp * 1e9 / VOXELS[inp]:.0f} | "
      f"{med(a, 'rss_kb') * 1024 / VOXELS[inp]:.1f} |")
w("")

def verdict(ok):
    return "**met**" if ok else "**not met**"
w("### Targets (issues #6, #17)\n")
w("| target | measured | |")
w("|---|---|---|")
w(f"| analyze on POPI ≤ 20 x dcm2niix wall time | {ratio_total:.1f} x ({med(a_popi, 'wall'):.2f} s vs {d2n_popi:.2f} s) | {verdict(ratio_total <= 20)} |")
w(f"| read stage ≤ 2 x dcm2niix | POPI {ratio_read:.2f} x, phantom 600 {ratio_read_p600:.2f} x (`lungvol convert` incl. .nii write: {ratio_conv:.2f} x) | {verdict(max(ratio_read, ratio_read_p600) <= 2)} |")
w(f"| peak memory ≤ 8 bytes/voxel at 512x512x600 | {bpv:.1f} bytes/voxel ({med(a_p600, 'rss_kb') / 1024:.0f} MB) | {verdict(bpv <= 8)} |")
reg = sel("popi", "register", 2)
reg_wall = med(reg, "wall")
w(f"| one POPI-size registration ≤ 30 s on 2 cores (issue #17) | {reg_wall:.1f} s wall, {med(reg, 'cpu'):.1f} s CPU (`register`, POPI re-rendered by `deform` to POPI, all outputs but the QC PNGs) | {verdict(reg_wall <= 30)} |")
# One batch of 3 subjects x 3 visits: the scans' and the registrations' own times as the batch
# stored them (summed over the 9 scans / 6 follow-ups, 2 jobs in parallel), median over the runs.
b3 = [l.rstrip("\n").split("\t") for l in open(batch3) if l.strip()]
if b3:
    import statistics
    scan_s = statistics.median(float(r[2]) for r in b3)
    reg_s = statistics.median(float(r[4]) for r in b3)
    b3_wall = statistics.median(float(r[5]) for r in b3)
    w(f"| batch throughput dominated by scans, not registrations, 3 visits per subject (issue #17) | "
      f"scans {scan_s:.1f} s (9, {scan_s / 9:.1f} s each) vs registrations {reg_s:.1f} s (6, "
      f"{reg_s / 6:.1f} s each), {100 * reg_s / (scan_s + reg_s):.0f} % of the work; batch wall "
      f"{b3_wall:.1f} s (`batch --jobs 2 --no-qc`, 3 phantoms of 192 x 192 x 80 per subject) | "
      f"{verdict(reg_s < scan_s)} |")
w(f"| thread speed-up ≥ 1.7 x on parallel stages | {best_speed:.2f} x, fastest runs (lungs + lesions + measure, POPI; median of adjacent-pair ratios {pair_speed:.2f} x, ratio of medians {speed:.2f} x) | {verdict(best_speed >= 1.7)}{' (machine overloaded: not conclusive)' if busy else ''} |")
w("")

if kjson and os.path.exists(kjson):
    k = json.load(open(kjson))
    w("### Kernels (`build-bench/bench/lungvol_bench_kernels`)\n")
    label = next((b.get("label") for b in k["benchmarks"] if b.get("label")), "POPI")
    w(f"Inputs: the {label} scan (512 x 512 x 141) and the masks the pipeline derives from it; "
      "`/1`, `/2` = OpenMP threads. Real time per call.\n")
    w("| kernel | 1 thread | 2 threads | speed-up | throughput (1 thread) |")
    w("|---|---|---|---|---|")
    groups = {}
    for b in k["benchmarks"]:
        parts = [p for p in b["name"].replace("BM_", "").split("/")
                 if p != "real_time" and not p.startswith("iterations:")]
        threads = parts[-1] if parts[-1] in ("1", "2") else "1"
        base = "/".join(parts[:-1] if parts[-1] in ("1", "2") else parts)
        groups.setdefault(base, {})[threads] = b
    for base, g in groups.items():
        def cell(b):
            if b is None:
                return "", None
            if b.get("error_occurred"):
                return "error: " + b.get("error_message", ""), None
            return f"{b['real_time']:.1f} {b.get('time_unit', 'ns')}", b["real_time"]
        c1, t1k = cell(g.get("1"))
        c2, t2k = cell(g.get("2"))
        sp = f"{t1k / t2k:.2f}" if t1k and t2k else ""
        b = g.get("1") or g.get("2")
        thr = ""
        if "items_per_second" in b:
            thr = f"{b['items_per_second'] / 1e6:.0f} Mvoxel/s"
        if "bytes_per_second" in b:
            thr = f"{b['bytes_per_second'] / 2**20:.0f} MiB/s"
        w(f"| {base} | {c1} | {c2} | {sp} | {thr} |")
    w("")

section = "\n".join(out)
intro = """# Benchmarks

How fast `lungvol analyze` is, against `dcm2niix` (the floor for reading a DICOM series), and
where its time goes. Reproduce on any machine with the Debian packages of `scripts/setup.sh`
and the shared data (`../shared/data/popi-4dct-phase00-itkelastix`):

    bash bench/run.sh            # 5 runs per figure, about 5 min on 2 idle cores once built
    bash bench/run.sh --quick    # 3 runs per figure, fewer kernel repetitions, about 2.5 min

The script builds Release into `build-bench/`, generates the phantoms once into
`build-bench/bench-cache/`, and rewrites the "Results" section below. The micro-benchmarks alone:
`build-bench/bench/lungvol_bench_kernels` (target `lungvol_bench_kernels`, configure with
`-DLUNGVOL_BUILD_BENCH=ON`).

"""
text = open(doc).read() if os.path.exists(doc) else intro
if "## Results" in text:
    head, _, rest = text.partition("## Results")
    nxt = rest.find("\n## ")
    tail = rest[nxt + 1:] if nxt >= 0 else ""
    text = head + section + ("\n" + tail if tail else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
print(section)
PY
