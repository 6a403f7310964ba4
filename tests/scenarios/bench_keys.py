#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check that `viommu bench --quick --json` runs and prints every key.

Benchmarks are not timed tests: nothing here compares a figure with its
target (a loaded machine would fail it).  The keys are exactly those of the
issue that asked for the benchmark, each a number.

usage: bench_keys.py VIOMMU
"""
import json
import math
import subprocess
import sys

KEYS = [
    "dispatch_ns_1",
    "dispatch_ns_256",
    "sync_unchanged_ns_per_entry",
    "sync_changed_ns_per_entry",
    "psi_ns_small",
    "psi_ns_large",
    "replay_ns_per_entry",
    "replay_empty_aw57_ns",
    "translate_hit_ns",
    "translate_miss_ns",
    "bytes_per_mapping",
    "virtio_map_unmap_ns",
    "baseline_gtree_insert_ns",
    "baseline_gtree_find_ns",
    "baseline_gtree_bytes_per_mapping",
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = subprocess.run([sys.argv[1], "bench", "--quick", "--json"],
                         capture_output=True, text=True, timeout=240)
    if run.returncode != 0:
        sys.exit("viommu bench exited with %d:\n%s" %
                 (run.returncode, run.stderr))
    try:
        got = json.loads(run.stdout)
    except ValueError as e:
        sys.exit("not one JSON object (%s):\n%s" % (e, run.stdout))
    problems = []
    if not isinstance(got, dict):
        problems.append("not a JSON object")
        got = {}
    for key in KEYS:
        if key not in got:
            problems.append("missing key %s" % key)
        elif isinstance(got[key], bool) or \
                not isinstance(got[key], (int, float)):
            problems.append("%s is not a number: %r" % (key, got[key]))
        elif not math.isfinite(got[key]) or got[key] < 0:
            # 0 is possible: a sanitizer's allocator reports no heap use
            problems.append("%s is not a finite number >= 0: %r" %
                            (key, got[key]))
    for key in sorted(set(got) - set(KEYS)):
        problems.append("unexpected key %s" % key)
    if problems:
        sys.exit("\n".join(problems))
    print("all %d keys present" % len(KEYS))


if __name__ == "__main__":
    main()
