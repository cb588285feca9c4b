#!/usr/bin/env python3
"""A memory hog for the benchmarks, and the clock of its OOM kill.

  bench_hog.py oom GO OUT        once the file GO exists, grows 1 MiB at a time as fast as it
                                 can, appending the time (ms since the epoch) to OUT after each
                                 MiB, until the OOM killer ends it
  bench_hog.py kill CGROUP OUT   waits (inotify) for CGROUP's memory.events to count an OOM kill
                                 and writes the time it saw the count to OUT; prints "ready" once
                                 it watches. The kernel counts the kill just before it sends the
                                 SIGKILL (mm/oom_kill.c), so this is the moment of the kill as
                                 anyone watching the cgroup can know it, Corral included.
"""
import ctypes
import os
import sys
import time

MIB = 1 << 20
IN_MODIFY = 0x2


def now_ms():
    return int(time.time() * 1000)


def grow(go, out_path):
    chunks = []
    while not os.path.exists(go):
        time.sleep(0.05)
    with open(out_path, "w") as out:
        while True:
            # b"x" * n writes every page, so the memory is really charged to the cgroup.
            chunks.append(b"x" * MIB)
            out.write("%d\n" % now_ms())
            out.flush()


def oom_kills(events):
    with open(events) as f:
        for line in f:
            key, value = line.split()
            if key == "oom_kill":
                return int(value)
    return 0


def watch_kill(cgroup, out_path):
    libc = ctypes.CDLL(None, use_errno=True)
    events = os.path.join(cgroup, "memory.events")
    fd = libc.inotify_init()
    if fd < 0 or libc.inotify_add_watch(fd, events.encode(), IN_MODIFY) < 0:
        sys.exit("cannot watch %s: errno %d" % (events, ctypes.get_errno()))
    before = oom_kills(events)
    print("ready", flush=True)
    while True:
        os.read(fd, 4096)
        seen = now_ms()
        if oom_kills(events) > before:
            with open(out_path, "w") as out:
                out.write("%d\n" % seen)
            return


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "oom":
        grow(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "kill":
        watch_kill(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: bench_hog.py oom GO OUT | bench_hog.py kill CGROUP OUT")


main()
