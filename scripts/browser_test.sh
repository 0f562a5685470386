#!/usr/bin/env bash
# Loads the QC report (`lungvol report`) in headless Chromium with the network closed and
# checks what a reader would see: the subjects table, every subject, a scan page with its
# images, on the demo trial the registered follow-ups and a change-map page, no console errors,
# no request leaving the folder. Saves screenshots.
# Usage: browser_test.sh [OUTDIR]
#   OUTDIR   a `lungvol batch` output folder; without it the demo trial is built in
#            $LUNGVOL_BROWSER_DIR (default out/browser-test) with scripts/demo_trial.sh.
# Environment: LUNGVOL_BINARY (default build/apps/lungvol), LUNGVOL_BROWSER_DIR,
#              LUNGVOL_NO_INSTALL=1 (fail instead of apt-get installing chromium),
#              LUNGVOL_REQUIRE_CHROMIUM_INSTALLED=1 (exit 77 = skipped without chromium; CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
LV=${LUNGVOL_BINARY:-build/apps/lungvol}
WORK=${LUNGVOL_BROWSER_DIR:-out/browser-test}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

fail() { echo "browser_test: FAIL: $*" >&2; exit 1; }

CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ] && [ "${LUNGVOL_REQUIRE_CHROMIUM_INSTALLED:-0}" = 1 ]; then
  # CTest: never install from a test; exit 77 = skipped (SKIP_RETURN_CODE).
  echo "browser_test: SKIPPED: chromium is not installed (apt-get install chromium, or run scripts/browser_test.sh by hand)"
  exit 77
fi
if [ -z "$CHROME" ]; then
  [ "${LUNGVOL_NO_INSTALL:-0}" = 1 ] && fail "chromium is not installed"
  echo "browser_test: installing Debian's chromium (apt-get)"
  start=$(date +%s)
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "browser_test: chromium installed in $(( $(date +%s) - start )) s"
  CHROME=$(command -v chromium)
fi
[ -x "$LV" ] || fail "$LV not found (build lungvol or set LUNGVOL_BINARY)"

if [ $# -ge 1 ]; then
  OUTDIR=$1
else
  OUTDIR="$WORK/trial/results"
  # Rebuilt when missing, or when made by an older lungvol (no binary newer than it, no 3D renders).
  if [ ! -f "$OUTDIR/results.sqlite" ] || [ "$LV" -nt "$OUTDIR/results.sqlite" ] ||
     [ -z "$(find "$OUTDIR/scans" -name qc_3d.png -print -quit 2>/dev/null)" ]; then
    rm -rf "$WORK/trial"
    bash scripts/demo_trial.sh "$LV" "$WORK/trial" >/dev/null
  fi
fi
# A reader's decision, so that the decision display is checked too (only on the demo trial this
# script builds; a given OUTDIR is never modified).
if [ $# -eq 0 ]; then
  "$LV" --log-level warn review "$OUTDIR" S01 baseline --accept --reader "browser test" >/dev/null
  "$LV" --log-level warn review "$OUTDIR" S05 day10 --exclude "corrupt series" --reader "browser test" >/dev/null
fi
REPORT="$WORK/report"
rm -rf "$REPORT"
"$LV" --log-level warn report "$OUTDIR" -o "$REPORT"

# The subjects and visits the report must show, from the batch's own manifest table.
SUBJECTS=$(python3 - "$OUTDIR/results.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = db.execute("SELECT DISTINCT subject_id FROM manifest ORDER BY subject_id").fetchall()
if not rows:
    rows = db.execute("SELECT DISTINCT subject_id FROM scans ORDER BY subject_id").fetchall()
print("\n".join(r[0] for r in rows))
PY
)
[ -n "$SUBJECTS" ] || fail "no subjects in $OUTDIR/results.sqlite"

# A closed network: no background services, and every host name resolves to nowhere, so any
# request for a remote resource fails (and shows up as a console / network error).
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
FLAGS=(--headless --no-sandbox --disable-gpu --disable-background-networking
       --disable-component-update --disable-sync --no-first-run --disable-quic
       --disable-default-apps --disable-extensions --mute-audio
       "--host-resolver-rules=MAP * ~NOTFOUND" --user-data-dir="$PROFILE"
       --enable-logging=stderr --v=0 --virtual-time-budget=5000)

# load PAGE NAME: dumps the DOM to $WORK/NAME.dom, the log to $WORK/NAME.log, then a
# screenshot to $WORK/NAME.png.
load() {
  local page=$1 name=$2
  timeout 120 "$CHROME" "${FLAGS[@]}" --dump-dom "file://$page" >"$WORK/$name.dom" 2>"$WORK/$name.log" ||
    fail "chromium could not load $page (log: $WORK/$name.log)"
  timeout 120 "$CHROME" "${FLAGS[@]}" --window-size=1280,1600 --screenshot="$WORK/$name.png" \
    "file://$page" >>"$WORK/$name.log" 2>&1 || fail "chromium could not screenshot $page"
  [ -s "$WORK/$name.png" ] || fail "no screenshot $WORK/$name.png"
  # Chromium logs every console message as "...:CONSOLE..." (errors too, at INFO level in
  # recent versions); the report has no script, so any console line is a problem.
  if grep -E "Uncaught|:CONSOLE|Failed to load resource|net::ERR_" "$WORK/$name.log"; then
    fail "console or network errors loading $page (log: $WORK/$name.log)"
  fi
}

INDEX="$REPORT/index.html"
load "$INDEX" index
DOM="$WORK/index.dom"
grep -q '<table class="subjects">' "$DOM" || fail "index: no subjects table in the DOM"
grep -q '<table class="scans">' "$DOM" || fail "index: no scans table in the DOM"
grep -q '<svg class="chart"' "$DOM" || fail "index: no SVG chart in the DOM"
while read -r s; do
  grep -qF "\">$s</td>" "$DOM" || fail "index: subject $s missing"
done <<<"$SUBJECTS"
# Scans by risk: rows in descending QC score, the failed scan (score 100) first with its exit code.
SCORES=$(grep -o '<tr data-score="[0-9]*"' "$DOM" | grep -o '[0-9]*')
[ -n "$SCORES" ] || fail "index: no scored scan rows"
[ "$SCORES" = "$(sort -rn <<<"$SCORES")" ] || fail "index: scans not sorted by QC score: $(tr '\n' ' ' <<<"$SCORES")"
if [ $# -eq 0 ]; then
  [ "$(head -1 <<<"$SCORES")" = 100 ] || fail "index: the failed scan is not first"
  grep -q 'exit 4:' "$DOM" || fail "index: the failed scan's exit code is not shown"
  grep -q 'excluded by browser test' "$DOM" || fail "index: the exclusion is not shown"
  grep -q 'accepted by browser test' "$DOM" || fail "index: the acceptance is not shown"
fi
# Thumbnails: each links to its full image, which exists in the report folder.
n_thumb=$(grep -o '<img class="thumb" src="[^"]*"' "$DOM" | wc -l)
[ "$n_thumb" -ge 1 ] || fail "index: no thumbnails"
for src in $(grep -o '<img class="thumb" src="[^"]*"' "$INDEX" | sed 's/.*src="//; s/"$//'); do
  [ -s "$REPORT/$src" ] || fail "index: thumbnail $src not in the report folder"
  grep -qF "<a href=\"$src\"><img class=\"thumb\"" "$INDEX" || fail "index: thumbnail $src does not link to its image"
done
echo "browser_test: index.html OK ($(wc -l <<<"$SUBJECTS") subjects present, $n_thumb thumbnails, sorted by QC score)"

# The first scan page with images.
PAGE=$(grep -l '<img src="../images/' "$REPORT"/scans/*.html | head -1)
[ -n "$PAGE" ] || fail "no scan page with QC images"
name=$(basename "$PAGE" .html)
load "$PAGE" "scan-$name"
DOM="$WORK/scan-$name.dom"
n_img=$(grep -o '<img ' "$DOM" | wc -l)
[ "$n_img" -ge 1 ] || fail "$name: no <img> in the DOM"
grep -q '<table>' "$DOM" || fail "$name: no metrics table"
# The demo trial runs batch --meshes under Xvfb: the 3D render is on the page (issue #5).
if [ $# -eq 0 ]; then
  grep -q 'qc_3d.png' "$DOM" || fail "$name: no 3D QC render (qc_3d.png) on the scan page"
fi
# Every image the page links exists in the report folder (relative, so the folder can move).
for src in $(grep -o '<img src="[^"]*"' "$PAGE" | sed 's/<img src="//; s/"$//'); do
  [ -s "$REPORT/scans/$src" ] || fail "$name: image $src not in the report folder"
done
echo "browser_test: scan page $name OK ($n_img images)"

# The demo trial registers every follow-up to its baseline (issue #17): by its design (8 subjects
# x day10 + day28, S08's day 28 missed, S05's day 10 corrupt) 14 follow-ups, and the 6 subjects
# with all three visits have two registered each. A follow-up's page shows the change map over
# the baseline and the checkerboard, loaded in Chromium with their images in the report folder.
if [ $# -eq 0 ]; then
  REG=$(python3 - "$OUTDIR/results.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
ok = db.execute("SELECT COUNT(*) FROM registrations WHERE status = 'ok'").fetchone()[0]
two = db.execute("SELECT COUNT(*) FROM (SELECT subject_id FROM registrations WHERE status = 'ok'"
                 " GROUP BY subject_id HAVING COUNT(*) = 2)").fetchone()[0]
print(ok, two)
PY
)
  [ "$REG" = "14 6" ] || fail "registrations: expected 14 ok, 6 subjects with 2 registered visits; got '$REG' (ok, subjects with 2)"
  REGPAGES=$(grep -l '<h2>Registration to baseline</h2>' "$REPORT"/scans/*.html | wc -l)
  [ "$REGPAGES" = 14 ] || fail "report: $REGPAGES scan pages with a registration section, expected 14"
  RPAGE=$(grep -l '<h2>Registration to baseline</h2>' "$REPORT"/scans/*.html | head -1)
  rname=$(basename "$RPAGE" .html)
  load "$RPAGE" "registration-$rname"
  RDOM="$WORK/registration-$rname.dom"
  for f in qc_change_axial.png qc_change_coronal.png qc_checker_axial.png; do
    src=$(grep -o "<img src=\"[^\"]*$f\"" "$RDOM" | head -1 | sed 's/<img src="//; s/"$//')
    [ -n "$src" ] || fail "$rname: no $f (change-map overlay / checkerboard) on the page"
    [ -s "$REPORT/scans/$src" ] || fail "$rname: $src not in the report folder"
  done
  echo "browser_test: registrations OK (14 follow-ups, 6 subjects with 2; change map on $rname)"
fi

if grep -rlE 'https?://' "$REPORT" --include='*.html'; then fail "the report holds http(s) URLs"; fi
echo "browser_test: PASS; screenshots $WORK/index.png, $WORK/scan-$name.png"
