#!/usr/bin/env bash
# Builds the libFuzzer DICOM harness with clang (-fsanitize=fuzzer,address,undefined) into
# build-fuzz/, fuzzes for a bounded time from seeds (../shared/data DICOM files + the
# regression corpus fuzz/corpus/), then replays fuzz/corpus/ once (regression check).
# Usage: scripts/fuzz.sh [SECONDS] (default 60; 0 = replay only).
# Env: LUNGVOL_FUZZ_DIR (default build-fuzz), LUNGVOL_SHARED_DIR (default ../shared),
# LUNGVOL_FUZZ_MAX_LEN (default 131072 bytes: larger seeds are cut, which keeps the fuzzer
# fast and still reaches every header and the start of every compressed stream).
# Crashing inputs land in build-fuzz/artifacts/; a crash makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_FUZZ=${1:-60}
BUILD_DIR=${LUNGVOL_FUZZ_DIR:-build-fuzz}
SHARED=${LUNGVOL_SHARED_DIR:-../shared}
CXX_BIN=$(command -v clang++ || command -v clang++-14 || true)
CC_BIN=$(command -v clang || command -v clang-14 || true)
if [ -z "$CXX_BIN" ]; then
  echo "fuzz: clang++ not found (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
  exit 2
fi
# Every library gets coverage instrumentation and the sanitizers; only the harness links
# libFuzzer's main.
FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -g"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_C_COMPILER="$CC_BIN" \
  -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_C_FLAGS="$FLAGS" \
  -DLUNGVOL_BUILD_TESTS=OFF -DLUNGVOL_BUILD_FUZZ=ON -DLUNGVOL_WERROR=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "${LUNGVOL_JOBS:-$(nproc)}" --target lungvol_fuzz_dicom
FUZZER="$BUILD_DIR/fuzz/lungvol_fuzz_dicom"

# Leaks: DCMTK's dictionary and codec registries live for the whole process.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD_DIR/artifacts"

if [ "$SECONDS_TO_FUZZ" -gt 0 ]; then
  # Seeds: every DICOM file of the shared real data (read-only; copied so libFuzzer can add
  # to the working corpus) plus the regression corpus.
  WORK="$BUILD_DIR/corpus"
  SEEDS="$BUILD_DIR/seeds"
  mkdir -p "$WORK" "$SEEDS"
  if [ -d "$SHARED/data" ]; then
    find "$SHARED/data/dicom-ct-transfer-syntaxes-cornerstone" "$SHARED/data/pydicom-ct-edgecases" \
      "$SHARED/data/lungmask-testdata" "$SHARED/data/cip-chest-imaging-platform/simple_dicom" \
      -type f ! -name '*.md' 2>/dev/null | while read -r f; do
      cp -f "$f" "$SEEDS/$(basename "$f")"
    done
  fi
  cp -f fuzz/corpus/* "$SEEDS/" 2>/dev/null || true
  echo "fuzz: $(ls "$SEEDS" | wc -l) seed files, fuzzing for $SECONDS_TO_FUZZ s"
  "$FUZZER" "$WORK" "$SEEDS" -max_total_time="$SECONDS_TO_FUZZ" -timeout=20 -rss_limit_mb=2048 \
    -max_len="${LUNGVOL_FUZZ_MAX_LEN:-131072}" -artifact_prefix="$BUILD_DIR/artifacts/" -print_final_stats=1 \
    -dict=fuzz/dicom.dict 2>&1 | tail -n 40
fi

# Regression: every input in fuzz/corpus/ must run without a finding.
echo "fuzz: replaying $(ls fuzz/corpus | wc -l) regression inputs"
"$FUZZER" fuzz/corpus/* 2>&1 | tail -n 3
echo "fuzz: ok"
