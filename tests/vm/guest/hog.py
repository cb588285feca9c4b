#!/usr/bin/env python3
"""A memory hog for the runaway-watch test. It grows 1 MiB at a time, reading its own cgroup's
memory.current, and prints "crossed MS" (milliseconds since the epoch) the moment it first
reaches PERCENT of memory.max, so the test can measure how long Corral took to notice.

  hog.py hold PERCENT OUT   grow to PERCENT, hover 4 times between PERCENT-3 and PERCENT+1,
                            then hold just above PERCENT until killed
  hog.py spike PERCENT      grow to PERCENT, hold it 2.5 s, then run away at once: become
                            `tail /dev/zero`, which reads one endless line, past the limit
"""
import os
import sys
import time

MIB = 1 << 20


def cgroup_dir():
    with open("/proc/self/cgroup") as f:
        path = f.read().strip().split("::", 1)[1]
    return "/sys/fs/cgroup" + path


def read_int(path):
    with open(path) as f:
        return int(f.read().strip())


def main():
    if sys.argv[1] not in ("hold", "spike"):
        sys.exit("usage: hog.py hold PERCENT OUT | hog.py spike PERCENT")
    cg = cgroup_dir()
    chunks = []

    def grow():
        # b"x" * n writes every page, so the memory is really charged to the cgroup.
        chunks.append(b"x" * MIB)

    percent = float(sys.argv[2])
    limit = read_int(cg + "/memory.max")

    def share():
        return 100.0 * read_int(cg + "/memory.current") / limit

    # Give the watcher time to discover the new unit: what is measured is how fast it notices
    # a crossing, not how fast it lists a unit that was just started (apps do not hit their
    # limit in their first second). Then grow slowly, like a leaking browser, 1 MiB per 20 ms.
    time.sleep(3)
    while share() < percent:
        grow()
        time.sleep(0.02)
    if sys.argv[1] == "spike":
        # Two of the watcher's ticks at PERCENT, then past the limit faster than a tick.
        time.sleep(2.5)
        os.execvp("tail", ["tail", "/dev/zero"])
    out = sys.argv[3]
    crossed = int(time.time() * 1000)
    # One more MiB (1.6 %) at once: the kernel charges memory in per-CPU batches (mm/memcontrol.c,
    # the "stock"), which other processes' charges can drain a moment later, so a hog sitting at
    # exactly 90.0 % may read as 89.x % to the watcher and never look crossed.
    grow()
    with open(out, "w") as f:
        f.write("crossed %d\n" % crossed)
    time.sleep(1.5)
    # Hover around the threshold: dip below it (but not below the clear level) and rise again.
    for _ in range(4):
        while share() >= percent - 3 and chunks:
            chunks.pop()
        time.sleep(0.3)
        while share() < percent + 1:
            grow()
        time.sleep(0.3)
    with open(out, "a") as f:
        f.write("hovered\n")
    while True:
        time.sleep(60)


main()
