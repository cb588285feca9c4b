#!/usr/bin/env python3
"""A browser in miniature for the OOM-policy test: the parent (the browser) holds 55 MiB, one
child (a quiet tab) sleeps, and one child (a runaway tab) grows until the kernel kills it.

  tabs.py OUT     writes "PARENT QUIET RUNAWAY ADJ" to OUT once the runaway starts to grow

The runaway waits until its oom_score_adj is the margin above its parent's (what Corral's
monitor does for an app under OOMPolicy=continue), at most 15 s, and writes the adjustment it
had when it started to grow: the test then knows whether the kernel's choice was made with the
order fixed. The parent takes its memory after the children forked, so that none of it is
shared with them: the parent uses more memory than the runaway when the limit is reached, and
only the adjustment makes the kernel take the tab.
"""
import os
import sys
import time

MIB = 1 << 20


def adj(pid="self"):
    with open(f"/proc/{pid}/oom_score_adj") as f:
        return int(f.read())


def runaway(out, parent, quiet):
    for _ in range(150):
        if adj() >= adj(parent) + 300:
            break
        time.sleep(0.1)
    with open(out + ".tmp", "w") as f:
        f.write(f"{parent} {quiet} {os.getpid()} {adj()}\n")
    os.rename(out + ".tmp", out)
    chunks = []
    while True:
        chunks.append(b"x" * MIB)


def main():
    out = sys.argv[1]
    parent = os.getpid()
    quiet = os.fork()
    if quiet == 0:
        time.sleep(600)
        os._exit(0)
    child = os.fork()
    if child == 0:
        runaway(out, parent, quiet)
        os._exit(0)
    hold = [b"x" * MIB for _ in range(55)]
    time.sleep(600)
    del hold


main()
