#!/usr/bin/env bash
# The README's main command: installs packages, builds lungvol, analyzes sample_dicom/ and runs
# a small synthetic trial end to end (phantom scans -> batch -> endpoint -> sweep -> report).
# Outputs go to ${LUNGVOL_DEMO_DIR:-out/demo}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${LUNGVOL_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target lungvol -j "${LUNGVOL_JOBS:-$(nproc)}"
LV="$BUILD_DIR/apps/lungvol"
OUT=${LUNGVOL_DEMO_DIR:-out/demo}
rm -rf "$OUT"
mkdir -p "$OUT"

echo
echo "== 1. One scan: sample_dicom/ (synthetic chest CT with known truth)"
"$LV" inspect sample_dicom
"$LV" --log-level warn analyze sample_dicom -o "$OUT/sample"
python3 - "$OUT/sample/metrics.json" sample_dicom/truth.json <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["regions"]["lungs"]
t = json.load(open(sys.argv[2]))["volumes"]
print(f"{'':14}{'measured':>10}{'truth':>10}")
for key, label in [("volume_ml", "lung mL"), ("ggo_ml", "ground-glass"), ("solid_ml", "solid mL")]:
    tk = {"volume_ml": "lung_ml"}.get(key, key)
    print(f"{label:14}{m[key]:10.1f}{t[tk]:10.1f}")
PY

echo
echo "== 2. A synthetic trial: 8 subjects, 2 arms, baseline / day 10 / day 28"
bash scripts/demo_trial.sh "$LV" "$OUT/trial"
echo
echo "Outputs:"
echo "  $OUT/sample/            metrics.json, measurements.csv, lungs/lesions.nii.gz, QC PNGs, seg.dcm, sr.dcm"
echo "  $OUT/trial/results/     results.sqlite, visits_wide.csv, registrations/ (change maps), endpoint/, sweep/, report/index.html"
