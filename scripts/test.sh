#!/usr/bin/env bash
# The README's test command: installs packages, builds, runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WERROR=OFF
if [ "${CI:-}" = "true" ]; then WERROR=ON; fi
bash scripts/build.sh -DLUNGVOL_WERROR=$WERROR
BUILD_DIR=${LUNGVOL_BUILD_DIR:-build}
SHARED=${LUNGVOL_SHARED_DIR:-../shared}
if [ ! -d "$SHARED/data" ]; then
  echo "test: no shared data in $SHARED/data: the data-dependent tests are skipped (set LUNGVOL_SHARED_DIR to the folder holding data/ and reference/)"
fi
# The 3D QC render needs an X server (Debian's VTK is GLX-only): one Xvfb for the whole run.
XVFB=()
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then XVFB=(xvfb-run -a); fi
"${XVFB[@]}" ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${LUNGVOL_JOBS:-$(nproc)}" "$@"
LUNGVOL_BUILD_DIR="$BUILD_DIR" bash scripts/slurm_test.sh  # Slurm executor on a one-node cluster (~20 s)
