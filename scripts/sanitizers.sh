#!/usr/bin/env bash
# Builds lungvol and its tests with AddressSanitizer + UndefinedBehaviorSanitizer (gcc) into
# build-asan/ and runs the `unit` and `faults` test labels (the faults suite runs the sanitized
# lungvol binary, so every damaged input and killed batch is also checked for memory errors).
# Usage: scripts/sanitizers.sh [extra cmake configure args]. Env: LUNGVOL_JOBS (default nproc),
# LUNGVOL_ASAN_DIR (default build-asan), LUNGVOL_SAN_LABELS (default 'unit|faults').
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${LUNGVOL_ASAN_DIR:-build-asan}
JOBS=${LUNGVOL_JOBS:-$(nproc)}
LABELS=${LUNGVOL_SAN_LABELS:-unit|faults}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
start=$(date +%s)
# -O1 -g: readable stacks at a bearable speed. Warnings are not errors here: sanitizer
# instrumentation changes what gcc's flow analysis reports; the normal build keeps -Werror.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_C_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" \
  -DLUNGVOL_WERROR=OFF -DLUNGVOL_BUILD_TESTS=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
built=$(date +%s)
# Leaks: libgomp and ITK's factories keep process-lifetime allocations; LeakSanitizer is off so
# that only real memory errors (overflows, use-after-free) and undefined behaviour fail a test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
ctest --test-dir "$BUILD_DIR" -L "$LABELS" --output-on-failure -j "$JOBS" || rc=$?
end=$(date +%s)
echo "sanitizers: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s (labels: $LABELS)"
exit $rc
