#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Play every scenario under a directory and compare with what it expects.

For each NAME.sc: `viommu run --verify NAME.sc` must print NAME.out on
standard output exactly when that file exists (examples have none: they
only need to run clean under --verify), NAME.err on standard error when
that file exists
(file paths in it appear as the scenario's base name), and exit with the
status in NAME.status (0 when absent).  Scenarios under bad/ expect status 2.

usage: run_scenarios.py VIOMMU DIR...
"""
import glob
import os
import subprocess
import sys


def read(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return f.read()


def check(viommu, sc):
    base = sc[:-3]
    want_out = read(base + ".out")
    want_err = read(base + ".err")
    status = read(base + ".status")
    want_status = int(status) if status else (
        2 if os.path.basename(os.path.dirname(sc)) == "bad" else 0)
    args = [viommu, "run"]
    if want_status == 0:
        args.append("--verify")
    run = subprocess.run(args + [sc], capture_output=True, text=True,
                         cwd=os.path.dirname(sc) or ".")
    err = run.stderr.replace(sc, os.path.basename(sc))
    problems = []
    if run.returncode != want_status:
        problems.append("exit status %d, want %d" %
                        (run.returncode, want_status))
    if want_out is not None and run.stdout != want_out:
        got, want = run.stdout.splitlines(), want_out.splitlines()
        for i in range(max(len(got), len(want))):
            g = got[i] if i < len(got) else "<nothing>"
            w = want[i] if i < len(want) else "<nothing>"
            if g != w:
                problems.append("stdout line %d:\n    got:  %s\n    want: %s"
                                % (i + 1, g, w))
                break
    if want_err is not None and err != want_err:
        problems.append("stderr:\n%s\n  want:\n%s" % (err, want_err))
    return problems


def main():
    viommu = os.path.abspath(sys.argv[1])
    files = []
    for d in sys.argv[2:]:
        files += sorted(glob.glob(os.path.join(os.path.abspath(d), "*.sc")))
    if not files:
        print("no scenarios found")
        return 1
    failed = 0
    for sc in files:
        problems = check(viommu, sc)
        name = os.path.relpath(sc)
        if problems:
            failed += 1
            print("FAIL %s\n  %s" % (name, "\n  ".join(problems)))
        else:
            print("ok   %s" % name)
    print("%d passed, %d failed" % (len(files) - failed, failed))
    return 1 if failed else 0


sys.exit(main())
