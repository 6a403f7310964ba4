#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The VT-d model on a real Linux guest.

A Linux 6.1 guest's intel-iommu driver built root, context and page tables
on an emulated VT-d unit, and queued 2214 invalidation descriptors (see
docs/guest-image.md and tests/data/linux61-e1000-aw39/).  This test plays
that guest back through `viommu run`: it loads the guest's memory, programs
the registers as the driver did, registers a map+unmap notifier on the NIC
(00:02.0) and on 00:1f.0, replays, translates sample addresses, then queues
every descriptor the guest queued, in order.  It checks, against the leaves
an independent walker found (the CSV files, not our own output):
  - the replays deliver exactly the 346 NIC and 4096 identity translations;
  - translations of sample addresses land where the CSV says;
  - the descriptors change nothing: no map, unmap, fault or guest error,
    and the fault status register stays clear.

usage: capture_test.py VIOMMU REPO_CAPTURE_DIR [SHARED_CAPTURE_DIR]
The shared copy is used when present (and must equal the repository's).
"""
import csv
import filecmp
import os
import subprocess
import sys
import tempfile

FILES = ["guest.img", "leaves-00_02.0.csv", "leaves-00_1f.0.csv",
         "invalidations.csv"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def leaves(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return sorted((int(r["iova"], 16), int(r["size"], 16), int(r["pa"], 16),
                   r["perm"].lower()) for r in rows)


def main():
    viommu, repo_dir = sys.argv[1], sys.argv[2]
    shared_dir = sys.argv[3] if len(sys.argv) > 3 else ""
    cap = repo_dir
    if shared_dir and os.path.exists(os.path.join(shared_dir, "guest.img")):
        for name in FILES:
            if not filecmp.cmp(os.path.join(shared_dir, name),
                               os.path.join(repo_dir, name), shallow=False):
                fail("tests/data copy of %s differs from %s" %
                     (name, shared_dir))
        cap = shared_dir
    print("capture: " + cap)

    nic = leaves(os.path.join(cap, "leaves-00_02.0.csv"))
    lpc = leaves(os.path.join(cap, "leaves-00_1f.0.csv"))
    with open(os.path.join(cap, "invalidations.csv")) as f:
        descs = [(int(r["lo"], 16), int(r["hi"], 16))
                 for r in csv.DictReader(f)]
    if (len(nic), len(lpc), len(descs)) != (346, 4096, 2214):
        fail("unexpected capture sizes %d %d %d" %
             (len(nic), len(lpc), len(descs)))

    samples = [nic[0], nic[len(nic) // 2], nic[-1], lpc[5]]
    lines = [
        "iommu vtd aw=39",
        "ram size=4G",
        "image file=%s" % os.path.abspath(os.path.join(cap, "guest.img")),
        # as the guest's driver did: root table, queue, then enable
        "reg write offset=0x20 value=0x2731000 size=8",
        "reg write offset=0x18 value=0x40000000",
        "reg write offset=0x88 value=0 size=8",
        "reg write offset=0x90 value=0x11bd000 size=8",
        "reg write offset=0x18 value=0x04000000",
        "reg write offset=0x18 value=0x84000000",
        "device nic bdf=00:02.0",
        "device lpc bdf=00:1f.0",
        "notifier vfio device=nic flags=map,unmap",
        "notifier lpcmap device=lpc flags=map,unmap",
        "replay vfio",
        "replay lpcmap",
    ]
    for i, (iova, _, pa, _) in enumerate(samples):
        dev = "lpc" if i == 3 else "nic"
        lines.append("translate device=%s iova=0x%x" % (dev, iova + 0x123))
    first_qi = len(lines) + 1
    lines += ["qi lo=0x%x hi=0x%x" % d for d in descs]
    lines.append("reg read offset=0x34")
    lines.append("reg read offset=0x80 size=8")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "capture.sc")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        run = subprocess.run([viommu, "run", "--verify", path],
                             capture_output=True, text=True)
    if run.returncode != 0:
        fail("viommu run exited %d: %s" % (run.returncode, run.stderr))
    out = run.stdout.splitlines()

    want = ["12 flags nic map,unmap", "13 flags lpc map,unmap"]
    want += ["14 vfio map iova=0x%x size=0x%x pa=0x%x perm=%s" % l
             for l in nic]
    want += ["15 lpcmap map iova=0x%x size=0x%x pa=0x%x perm=%s" % l
             for l in lpc]
    for i, (iova, size, pa, perm) in enumerate(samples):
        dev = "lpc" if i == 3 else "nic"
        want.append("%d translate %s iova=0x%x pa=0x%x perm=%s page=0x%x" %
                    (16 + i, dev, iova + 0x123, pa + 0x123, perm, size))
    # nothing from the 2214 descriptors; fault status clear; and the queue
    # head where the tail is: every descriptor consumed
    last = first_qi + len(descs)
    want.append("%d reg offset=0x34 value=0x0" % last)
    want.append("%d reg offset=0x80 value=0x%x" %
                (last + 1, (len(descs) * 16) % 4096))
    if out != want:
        for i, (a, b) in enumerate(zip(out, want)):
            if a != b:
                fail("line %d of output:\n  got:  %s\n  want: %s" % (i, a, b))
        fail("%d lines of output, want %d" % (len(out), len(want)))
    print("ok: %d NIC and %d identity translations, %d descriptors, no "
          "change" % (len(nic), len(lpc), len(descs)))


main()
