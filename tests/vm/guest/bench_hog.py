#!/usr/bin/env python3
"""A memory hog for the benchmarks: grows 1 MiB at a time as fast as it can, appending the time
(milliseconds since the epoch) to OUT after each MiB, until the OOM killer ends it. The last
line written is when it was last alive: at most one MiB's growth before the kill.

  bench_hog.py oom OUT
"""
import sys
import time

MIB = 1 << 20


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "oom":
        sys.exit("usage: bench_hog.py oom OUT")
    chunks = []
    with open(sys.argv[2], "w") as out:
        # Let the watcher list the new unit first, as in the alert benchmark.
        time.sleep(3)
        while True:
            # b"x" * n writes every page, so the memory is really charged to the cgroup.
            chunks.append(b"x" * MIB)
            out.write("%d\n" % int(time.time() * 1000))
            out.flush()


main()
