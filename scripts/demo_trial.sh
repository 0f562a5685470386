#!/usr/bin/env bash
# A small synthetic trial (used by scripts/demo.sh): phantom scans of 8 subjects in two arms at
# baseline, day 10 and day 28, lesions shrinking faster under "MSC" than under "placebo"; one
# missed visit (LOCF) and one corrupt scan (a failed row). Then batch (with label maps, so that
# every follow-up is registered to its baseline and gets a change map in the report), endpoint
# and sweep.
# Usage: demo_trial.sh LUNGVOL_BINARY OUTDIR
set -euo pipefail
LV=$1
DIR=$2
mkdir -p "$DIR/scans"
MANIFEST="$DIR/manifest.csv"
echo "subject_id,arm,visit,path" > "$MANIFEST"
# subject arm lesion-scale(day10) lesion-scale(day28): volume scales with the cube.
SUBJECTS=(
  "S01 MSC 0.90 0.70" "S02 MSC 0.85 0.65" "S03 MSC 0.92 0.78" "S04 MSC 0.88 0.60"
  "S05 placebo 0.97 0.92" "S06 placebo 0.95 0.85" "S07 placebo 1.00 0.95" "S08 placebo 0.96 0.88"
)
n=0
for row in "${SUBJECTS[@]}"; do
  read -r id arm s10 s28 <<<"$row"
  n=$((n + 1))
  for visit in baseline day10 day28; do
    case $visit in
      baseline) scale=1.0; day=01 ;;
      day10) scale=$s10; day=11 ;;
      day28) scale=$s28; day=29 ;;
    esac
    # S08 missed its day-28 scan: no row, the endpoint carries day 10 forward (LOCF).
    if [ "$id" = S08 ] && [ "$visit" = day28 ]; then continue; fi
    "$LV" --log-level warn phantom -o "$DIR/scans/$id/$visit" --seed "$n" --lesion-scale "$scale" \
      --patient-id "$id" --study-date "202003$day" --series-description "demo $visit" >/dev/null
    echo "$id,$arm,$visit,scans/$id/$visit/dicom" >> "$MANIFEST"
  done
done
# S05's day-10 series is corrupt: one slice truncated to 100 bytes -> one failed row.
f=$(ls "$DIR/scans/S05/day10/dicom" | sort | sed -n 40p)
head -c 100 "$DIR/scans/S05/day10/dicom/$f" > "$DIR/truncated" && mv "$DIR/truncated" "$DIR/scans/S05/day10/dicom/$f"
echo "manifest: $MANIFEST ($(($(wc -l < "$MANIFEST") - 1)) scans; S08 day28 missed, S05 day10 corrupt)"

# Meshes and the 3D QC render per scan; Debian's VTK renders through X, so without a display
# the batch runs under a private Xvfb (without either, the render is skipped with a warning).
XVFB=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then XVFB=(xvfb-run -a); fi
set +e
"${XVFB[@]}" "$LV" --log-level warn batch "$MANIFEST" -o "$DIR/results" --jobs 2 --meshes
rc=$?
set -e
if [ $rc -ne 0 ] && [ $rc -ne 8 ]; then echo "batch failed with exit code $rc"; exit $rc; fi
echo "batch: exit code $rc (8 = finished, some scans failed: see results/failures in results.sqlite)"
"$LV" endpoint "$DIR/results" --arms MSC,placebo --endpoints lesion_pct,ggo_pct,solid_pct,mean_hu,p15_hu,resolved_fraction,new_lesion_fraction
"$LV" --log-level warn sweep "$DIR/results" --split -400:-200:50 --arms MSC,placebo >/dev/null
echo "sweep: $DIR/results/sweep/sweep.csv, sweep.svg"
if "$LV" --help | grep -q "^  report"; then
  "$LV" --log-level warn report "$DIR/results" >/dev/null && echo "report: $DIR/results/report/index.html"
fi
