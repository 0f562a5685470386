#!/usr/bin/env python3
"""Interleaved A/B timing of two lungvol builds on one input (docs/benchmarks.md, fifth round).

    python3 bench/compare_builds.py OLD_LUNGVOL NEW_LUNGVOL [--runs N] [--input DIR]

Runs `lungvol --threads T analyze INPUT --no-dicom --no-qc --no-label-maps` for T = 1 and 2,
alternating the two builds and swapping which goes first every round (a run right after a
2-thread run can be slower on a shared machine, so neither build always follows the other).
Prints per stage the medians, the fastest run and the 1-vs-2-thread ratios from `timing_s` of
metrics.json. Build an old commit beside the current one with, for example:

    git worktree add /tmp/lungvol-old <commit>
    cmake -S /tmp/lungvol-old -B /tmp/lungvol-old/build -G Ninja -DCMAKE_BUILD_TYPE=Release \\
      -DLUNGVOL_BUILD_TESTS=OFF && cmake --build /tmp/lungvol-old/build --target lungvol
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("read", "lungs", "lesions", "measure")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--input", default=os.path.join(
        ROOT, "..", "shared", "data", "popi-4dct-phase00-itkelastix", "dicom"))
    a = ap.parse_args()
    builds = {"old": a.old, "new": a.new}
    for path in builds.values():
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            sys.exit(f"compare_builds: {path} is not an executable lungvol")
    if not os.path.isdir(a.input) and not os.path.isfile(a.input):
        sys.exit(f"compare_builds: input {a.input} not found (--input)")
    times = collections.defaultdict(list)  # (build, threads, stage) -> seconds
    work = tempfile.mkdtemp(prefix="lungvol-ab.")
    try:
        for r in range(a.runs):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for threads in (1, 2):
                for name in order:
                    out = os.path.join(work, name)
                    shutil.rmtree(out, ignore_errors=True)
                    p = subprocess.run([builds[name], "--threads", str(threads), "analyze", a.input,
                                        "-o", out, "--no-dicom", "--no-qc", "--no-label-maps"],
                                       capture_output=True, text=True)
                    if p.returncode != 0:
                        sys.exit(f"compare_builds: {builds[name]} failed ({p.returncode}):\n"
                                 f"{p.stderr[-2000:]}")
                    t = json.load(open(os.path.join(out, "metrics.json")))["timing_s"]
                    for k in STAGES:
                        times[(name, threads, k)].append(t[k])
                    times[(name, threads, "parallel")].append(t["lungs"] + t["lesions"] +
                                                              t["measure"])
            print(f"round {r + 1}/{a.runs}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{a.runs} runs each; seconds, median (fastest); 'parallel' = lungs + lesions + measure")
    print("| stage | build | 1 thread | 2 threads | speed-up (medians) | speed-up (fastest) |")
    print("|---|---|---|---|---|---|")
    for k in STAGES + ("parallel",):
        for name in ("old", "new"):
            t1, t2 = times[(name, 1, k)], times[(name, 2, k)]
            m1, m2 = statistics.median(t1), statistics.median(t2)
            print(f"| {k} | {name} | {m1:.3f} ({min(t1):.3f}) | {m2:.3f} ({min(t2):.3f}) | "
                  f"{m1 / m2 if m2 else float('nan'):.2f} | "
                  f"{min(t1) / min(t2) if min(t2) else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
