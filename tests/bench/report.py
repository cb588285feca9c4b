#!/usr/bin/env python3
"""Turns the figures of one benchmark run (tests/bench/run.sh) into BENCHMARKS.md: Corral against
its anchor, their ratio, the goal and whether it was met, with the machine and the guest
described. Prints the table and, last, how many goals were met.

  report.py RAW_DIR OUT.md

RAW_DIR holds guest.jsonl and host.jsonl (one JSON object per line: {"metric", "unit",
"samples"} or {"metric", "unit", "value"}), guest.txt and host.txt (key=value lines). Notes for
goals come from notes.md beside this script: a "## <goal id>" section is shown under a goal's
row whether or not it was met. Nothing here knows a figure: every number comes from the run.
"""
import json
import math
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path):
    metrics = {}
    if not os.path.exists(path):
        return metrics
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            metrics[record["metric"]] = record
    return metrics


def load_info(path):
    info = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                if key:
                    info[key] = value
    return info


def percentile(samples, p):
    """Linear interpolation between closest ranks."""
    s = sorted(samples)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Figures:
    def __init__(self, metrics):
        self.m = metrics

    def samples(self, name):
        r = self.m.get(name)
        if r is None:
            return None
        if "samples" in r:
            return r["samples"] or None
        return [r["value"]]

    def median(self, name):
        s = self.samples(name)
        return percentile(s, 50) if s else None

    def p90(self, name):
        s = self.samples(name)
        return percentile(s, 90) if s else None

    def value(self, name):
        r = self.m.get(name)
        return None if r is None else r.get("value")

    def count(self, name):
        s = self.samples(name)
        return len(s) if s else 0


def fmt(value, unit, digits=None):
    if value is None:
        return "not measured"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {unit}".strip()


def dist(fig, name, unit):
    """median (p90, n) of a metric."""
    med = fig.median(name)
    if med is None:
        return "not measured"
    n = fig.count(name)
    if n == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} (p90 {fmt(fig.p90(name), unit)}, n={n})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load_notes():
    notes = {}
    path = os.path.join(HERE, "notes.md")
    if not os.path.exists(path):
        return notes
    current = None
    with open(path) as f:
        for line in f:
            m = re.match(r"^## (\S+)\s*$", line)
            if m:
                current = m.group(1)
                notes[current] = []
            elif current:
                notes[current].append(line.rstrip("\n"))
    return {k: "\n".join(v).strip() for k, v in notes.items()}


def linear_fit(xs, ys):
    """Least-squares slope, intercept and R² of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    r2 = (sxy * sxy / (sxx * syy)) if sxx and syy else 1.0
    return slope, intercept, r2


def main():
    raw, out_path = sys.argv[1], sys.argv[2]
    g = Figures(load(os.path.join(raw, "guest.jsonl")))
    h = Figures(load(os.path.join(raw, "host.jsonl")))
    guest = load_info(os.path.join(raw, "guest.txt"))
    host = load_info(os.path.join(raw, "host.txt"))
    notes = load_notes()
    MB = 1e6 / 1024  # KiB per MB

    rows = []  # (id, what, corral, anchor, ratio text, goal text, met: True/False/None)

    def goal_ratio(gid, what, corral_metric, anchor_metric, anchor_label, limit, unit="ms"):
        c, a = g.median(corral_metric), g.median(anchor_metric)
        r = ratio(c, a)
        met = None if r is None else r <= limit
        rows.append((gid, what, dist(g, corral_metric, unit),
                     f"{anchor_label}: {dist(g, anchor_metric, unit)}",
                     "—" if r is None else f"{r:.2f}x", f"≤ {limit:g}x", met))

    def info_ratio(gid, what, corral_metric, anchor_metric, anchor_label, unit="ms"):
        c, a = g.median(corral_metric), g.median(anchor_metric)
        r = ratio(c, a)
        rows.append((gid, what, dist(g, corral_metric, unit),
                     f"{anchor_label}: {dist(g, anchor_metric, unit)}",
                     "—" if r is None else f"{r:.2f}x", "(for reference)", None))

    # 1. Launch from the command line.
    goal_ratio("launch-cli-scope", "Launch, CLI, scope: `corral run --scope` of capped `true`",
               "cli.scope.corral", "cli.scope.systemd-run", "`systemd-run --user --scope`", 1.0)
    goal_ratio("launch-cli-service", "Launch, CLI, service: `corral run --wait` of capped `true`",
               "cli.service.corral", "cli.service.systemd-run", "`systemd-run --user --wait`", 1.0)
    info_ratio("launch-cli-scope-fixed",
               "`corral run --scope` with address space randomization off (`setarch -R`, both sides)",
               "cli.scope.corral-fixed", "cli.scope.systemd-run-fixed",
               "`setarch -R systemd-run --user --scope`")
    info_ratio("launch-cli-service-fixed",
               "`corral run --wait` with address space randomization off (`setarch -R`, both sides)",
               "cli.service.corral-fixed", "cli.service.systemd-run-fixed",
               "`setarch -R systemd-run --user --wait`")
    info_ratio("launch-cli-nowait", "`corral run` without `--wait` (returns once `true` runs)",
               "cli.service-nowait.corral", "cli.service.systemd-run", "`systemd-run --user --wait`")
    info_ratio("process", "Starting the binary: `corral --version`",
               "cli.process.corral-version", "cli.process.systemd-run-version",
               "`systemd-run --version`")
    info_ratio("cli-work-scope", "`corral run --scope`'s work without its process (in-process)",
               "cli.inproc.scope.corral", "cli.scope.systemd-run", "`systemd-run --user --scope`")
    info_ratio("cli-work-service", "`corral run --wait`'s work without its process (in-process)",
               "cli.inproc.service.corral", "cli.service.systemd-run", "`systemd-run --user --wait`")
    # 2. Launch in-process, against systemd-run (the goal) and the bare D-Bus call.
    goal_ratio("launch-inproc-service", "Launch, in-process, service (launcher API, one connection)",
               "launch.inproc.service.corral", "launch.anchor.service.systemd-run",
               "`systemd-run --user --wait`", 0.4)
    goal_ratio("launch-inproc-scope", "Launch, in-process, scope (fork, scope, exec)",
               "launch.inproc.scope.corral", "launch.anchor.scope.systemd-run",
               "`systemd-run --user --scope`", 0.4)
    info_ratio("launch-inproc-raw", "Launch, in-process, service, against the bare call",
               "launch.inproc.service.corral", "launch.inproc.service.raw",
               "StartTransientUnit → JobRemoved")
    info_ratio("launch-inproc-scope-raw", "Launch, in-process, scope, against the bare call",
               "launch.inproc.scope.corral", "launch.inproc.scope.raw",
               "StartTransientUnit of a scope around a running process → JobRemoved")
    # 3. Sampling sweep.
    for n in (10, 100, 300):
        c = g.median(f"sample.sweep.{n}")
        a = g.median(f"cgtop.sweep.{n}")
        r = ratio(c, a)
        if n == 300:
            rows.append(("sweep-300", f"Sampling sweep, N = {n}, every field the window shows "
                         "(sweeps a second apart, each file at its pace)",
                         dist(g, f"sample.sweep.{n}", "µs/unit"), "—", "—", "≤ 30 µs/unit",
                         None if c is None else c <= 30))
            rows.append(("sweep-vs-cgtop", f"Sampling sweep, N = {n}, against systemd-cgtop",
                         dist(g, f"sample.sweep.{n}", "µs/unit"),
                         f"`systemd-cgtop -b -n 1 SLICE`: {dist(g, f'cgtop.sweep.{n}', 'µs/unit')}",
                         "—" if r is None else f"{r:.3f}x ({1 / r:.0f}x faster)" if r else "—",
                         "≤ 0.02x (50x faster)", None if r is None else r <= 0.02))
            if g.median(f"sample.unpaced.{n}") is not None:
                info_ratio("sweep-unpaced", f"Sampling sweep, N = {n}, paced, against every "
                           "unit's slow files due at every sweep",
                           f"sample.sweep.{n}", f"sample.unpaced.{n}",
                           "sweeps 5 s apart", "µs/unit")
        else:
            rows.append((f"sweep-{n}", f"Sampling sweep, N = {n}",
                         dist(g, f"sample.sweep.{n}", "µs/unit"),
                         f"`systemd-cgtop`: {dist(g, f'cgtop.sweep.{n}', 'µs/unit')}",
                         "—" if r is None else f"{r:.3f}x", "(for reference)", None))
    n_max = max([n for n in (10, 100, 300) if g.median(f"sample.list.{n}") is not None], default=None)
    if n_max:
        info_ratio("relist", f"Listing {n_max} units again, cgroups known (the monitor, every 10 s)",
                   f"sample.relist.{n_max}", f"sample.list.{n_max}", "listing from scratch")
    files = sorted(((k[len("sample.file."):], r["value"]) for k, r in g.m.items()
                    if k.startswith("sample.file.") and k != "sample.file.all"),
                   key=lambda kv: -kv[1])
    # 4. Freeze + thaw, kill until gone.
    goal_ratio("freeze-thaw", "Freeze + thaw (Controller, read back from cgroup.events)",
               "control.freeze-thaw.corral", "control.freeze-thaw.raw",
               "FreezeUnit + ThawUnit, bare", 1.2)
    info_ratio("freeze-thaw-cli", "`corral freeze` + `corral thaw`",
               "control.freeze-thaw.corral-cli", "control.freeze-thaw.systemctl",
               "`systemctl --user freeze` + `thaw`")
    goal_ratio("kill", "Kill (SIGKILL) until systemd says the unit is gone (Controller)",
               "control.kill.corral", "control.kill.raw",
               "KillUnit → PropertiesChanged, bare", 1.2)
    info_ratio("kill-cli", "`corral kill` (waits for the end)", "control.kill.corral-cli",
               "control.kill.systemctl", "`systemctl --user kill` + the end seen on D-Bus")
    # 5. Alerts.
    p90 = g.p90("alert.near-limit")
    rows.append(("alert", "Alert: memory crosses 90 % of the limit → Notify arrives (`corral watch`)",
                 dist(g, "alert.near-limit", "ms"), "—", "—", "p90 ≤ 100 ms",
                 None if p90 is None else p90 <= 100))
    recorded, runs = g.value("alert.oom-recorded"), g.value("alert.oom-runs")
    oom_ms = g.median("alert.oom-kill")
    rows.append(("oom", "OOM kill (the kernel's count in memory.events) → OOM-killed notification arrives (`corral watch`)",
                 f"{dist(g, 'alert.oom-kill', 'ms')}; "
                 f"{'not measured' if recorded is None else f'{recorded:.0f} of {runs:.0f} post-mortems recorded'}",
                 "—", "—", "every kill recorded, latency ≤ 100 ms",
                 None if recorded is None or oom_ms is None else
                 recorded == runs and runs > 0 and oom_ms <= 100))
    info_ratio("oom-record", "OOM kill (the kernel's count) → post-mortem in the event log",
               "alert.oom-record", "alert.oom-systemd",
               "systemd's own end of the unit (\"Failed with result 'oom-kill'\" in its journal)")
    # 6. Footprint.
    units = g.value("footprint.units")
    for who, cpu_goal, mb_goal, wakeup_goal in (("tray", 0.5, 40, 2.0), ("window", 1.5, 100, None)):
        cpu = g.value(f"footprint.{who}.cpu")
        hwm = g.value(f"footprint.{who}.hwm")
        wakeups = g.value(f"footprint.{who}.wakeups")
        label = ("`corral --tray`, window hidden" if who == "tray"
                 else "the window (`corral`), shown")
        count = f"{units:.0f}" if units is not None else "?"
        rows.append((f"{who}-cpu", f"Footprint: {label}, {count} idle units, 60 s: CPU",
                     fmt(cpu, "% of a core", 2), "—", "—", f"≤ {cpu_goal:g} %",
                     None if cpu is None else cpu <= cpu_goal))
        rows.append((f"{who}-wakeups",
                     f"Footprint: {label}, {count} idle units, 60 s: wakeups (context switches of "
                     "all its threads)", fmt(wakeups, "per second", 2), "—", "—",
                     "(for reference)" if wakeup_goal is None else f"≤ {wakeup_goal:g} per second",
                     None if wakeups is None or wakeup_goal is None else wakeups <= wakeup_goal))
        rows.append((f"{who}-rss", f"Footprint: {label}: peak RSS (VmHWM)",
                     "not measured" if hwm is None else f"{hwm / MB:.1f} MB", "—", "—",
                     f"≤ {mb_goal} MB", None if hwm is None else hwm / MB <= mb_goal))
    # 6b. The window's main loop.
    stall = g.value("stall.catalog")
    read_ms = g.value("stall.catalog.load")
    rows.append(("stall-catalog",
                 "Main loop: longest stall while the window reads 2 000 desktop entries",
                 fmt(stall, "ms", 1) + ("" if read_ms is None else f" (read in {read_ms:.0f} ms)"),
                 "the same reading on the main loop, as before: "
                 + fmt(g.value("stall.catalog.on-main-loop"), "ms", 1), "—", "≤ 50 ms",
                 None if stall is None else stall <= 50))
    rows.append(("stall-launcher",
                 "Main loop: longest stall while the launcher opens on 2 000 apps",
                 fmt(g.value("stall.launcher"), "ms", 1), "—", "—", "(for reference)", None))
    held = g.median("stall.preference")
    writes = g.value("stall.preference.writes")
    rows.append(("stall-preference",
                 "Main loop: longest stall while a preference is held down (a step every 30 ms, 3 s)",
                 dist(g, "stall.preference", "ms") + ("" if writes is None else
                                                      f"; {writes:.0f} write of the file per burst"),
                 "the same steps on a bare spin button: " + dist(g, "stall.preference.bare", "ms")
                 + "; writing the file at each step, as before: "
                 + dist(g, "stall.preference.before", "ms"),
                 (lambda r: "—" if r is None else f"{r:.2f}x")(
                     ratio(held, g.median("stall.preference.bare"))), "≤ 50 ms",
                 None if held is None else held <= 50))
    # 7. Growth.
    ns = [n for n in (10, 100, 300) if g.median(f"sample.sweep.{n}") is not None]
    if len(ns) >= 2:
        sweep_total = [g.median(f"sample.sweep.{n}") * n for n in ns]  # µs per sweep
        slope, intercept, r2 = linear_fit(ns, sweep_total)
        per_unit = {n: g.median(f"sample.sweep.{n}") for n in ns}
        growth = per_unit[ns[-1]] / per_unit[ns[-2]]
        rows.append(("growth-sweep",
                     f"Growth: sweep time over N = {', '.join(map(str, ns))}",
                     f"{', '.join(f'{per_unit[n] * n / 1000:.2f}' for n in ns)} ms per sweep; "
                     f"{slope:.1f} µs per added unit, R² {r2:.3f}", "—",
                     f"{growth:.2f}x per unit from N = {ns[-2]} to {ns[-1]}",
                     "linear: per-unit cost at the largest N ≤ 1.25x the next", growth <= 1.25))
    rss_ns = [n for n in (10, 100, 300) if g.value(f"watch.rss.{n}") is not None]
    if len(rss_ns) >= 2:
        rss = [g.value(f"watch.rss.{n}") / MB for n in rss_ns]
        slope, intercept, r2 = linear_fit(rss_ns, rss)
        cpu = [g.value(f"watch.cpu.{n}") for n in rss_ns]
        rows.append(("growth-rss", f"Growth: `corral watch` RSS over N = {', '.join(map(str, rss_ns))}",
                     f"{', '.join(f'{v:.1f}' for v in rss)} MB; {slope * 1000:.0f} kB per added unit "
                     f"(R² {r2:.3f}); CPU {', '.join(f'{c:.1f}' for c in cpu)} % of a core", "—", "—",
                     "≤ 100 kB per unit", slope * 1000 <= 100))

    # 8. Rules (issue 13): a rule reaching N running instances, and a reload at 300 units.
    for n in (1, 10, 50):
        info_ratio(f"rules-apply-{n}",
                   f"Rule applied to {n} running instance{'s' if n > 1 else ''} (`corral rules set`: "
                   "drop-ins, one reload, each instance read back)",
                   f"rules.apply.{n}", f"rules.reload.{n}", "`systemctl --user daemon-reload`")
    loaded = g.value("rules.units")
    info_ratio("rules-reload-300",
               f"Rule change with {loaded:.0f} units loaded (no instance)" if loaded else
               "Rule change with 300 units loaded (no instance)",
               "rules.apply.300", "rules.reload.300", "`systemctl --user daemon-reload`")

    goals = [r for r in rows if r[5] != "(for reference)"]
    met = sum(1 for r in goals if r[6])
    measured = sum(1 for r in goals if r[6] is not None)

    # The machine and the guest.
    def slowdown(metric):
        hv, gv = h.median(metric), g.median(metric)
        return None if not hv or gv is None else gv / hv

    cpu_x, spawn_x = slowdown("calibrate.cpu"), slowdown("calibrate.spawn")
    lines = []
    lines.append("# Benchmarks")
    lines.append("")
    lines.append("Generated by `tests/bench/run.sh` on "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit "
                 f"{host.get('commit', '?')}; do not edit by hand. Corral and each anchor were measured "
                 "side by side in the same guest run, interleaved round by round, so the ratios hold on "
                 "a noisy machine; absolute times are those of an emulated guest and only mean something "
                 "next to their anchor. Figures are the median, then the 90th percentile and the number "
                 "of runs. Ratio goals compare medians; the alert goal is on the 90th percentile.")
    lines.append("")
    lines.append("## Machine")
    lines.append("")
    lines.append(f"- Host: {host.get('cpu_model', '?')}, {host.get('cpus', '?')} cores, "
                 f"{int(host.get('memory_kib', 0) or 0) / 1048576:.0f} GiB, Linux {host.get('kernel', '?')}, "
                 f"{host.get('rustc', '?')}; {host.get('qemu', 'QEMU')}.")
    lines.append(f"- Guest: QEMU TCG (software emulation, `-cpu max`), {guest.get('cpus', '?')} vCPUs, "
                 f"{int(guest.get('memory_kib', 0) or 0) / 1024:.0f} MiB, Debian 12, Linux {guest.get('kernel', '?')}, "
                 f"{guest.get('systemd', '?')}, cgroup v2, clock source {guest.get('clocksource', '?')}; testuser's user manager (controllers delegated: "
                 f"{guest.get('controllers', '?') or 'none'}).")
    lines.append("- How much slower the guest is than the host, same binary, same run: CPU-bound code "
                 f"{'not measured' if cpu_x is None else f'{cpu_x:.0f}x'} (parsing cpu.stat), starting a "
                 f"process {'not measured' if spawn_x is None else f'{spawn_x:.0f}x'} (`/bin/true`). "
                 "Footprint CPU shares below are the guest's, so they are inflated accordingly.")
    lines.append(f"- Release build (`{host.get('release', 'profile not recorded')}`); Corral's default config (sampling every 1 s; the "
                 "tray, while its window is hidden and nothing is going on, every 5 s).")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append(f"**{met} of {len(goals)} goals met** ({measured} measured).")
    lines.append("")
    lines.append("| # | What | Corral | Anchor | Ratio | Goal | Met |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for i, (gid, what, c, a, r, goal, ok) in enumerate(rows, 1):
        verdict = "—" if goal == "(for reference)" else "not measured" if ok is None else "yes" if ok else "**no**"
        lines.append(f"| {i} | {what} | {c} | {a} | {r} | {goal} | {verdict} |")
    lines.append("")
    if files:
        total = g.value("sample.file.all")
        lines.append("## Where a sweep's time goes")
        lines.append("")
        # How often a sweep reads each file, as the benchmark binary reported it from the code
        # (src/cgroup/unit.rs, file_paces): every sweep, after the unit ran, every few seconds
        # (the slow files; some of them only if the unit ran), or only when inotify reported a
        # change to them (the settled files).
        paces = {k[len("sample.pace."):]: r.get("pace") for k, r in g.m.items()
                 if k.startswith("sample.pace.") and "pace" in r}
        slow_every = g.value("sample.pace.slow-every") or 5
        every = [name for name, _ in files if paces.get(name) == "EverySweep"]
        # An idle unit's slow read: the while-running files, and the pressure files it cannot
        # skip (all three, or none once they settled at zero in a slice without stalls).
        running = [name for name, _ in files if paces.get(name) == "WhileRunning"]
        pressure = [name for name, _ in files if name.endswith(".pressure")]
        cost = dict(files)
        base = sum(cost[n] for n in every) + sum(cost[n] for n in running) / slow_every
        most = base + sum(cost[n] for n in pressure) / slow_every
        pace_text = {"EverySweep": "every sweep",
                     "WhileRunning": f"every sweep after the unit ran, and every {slow_every:g} s",
                     "Slow": f"every {slow_every:g} s (every sweep while memory is under pressure)",
                     "SlowWhileRunning": f"every {slow_every:g} s, if the unit ran since the last read"
                                         " (cpu.pressure: or its averages were not all zero then)",
                     "SlowUnlessParentQuiet": f"every {slow_every:g} s (every sweep while memory is under"
                                              " pressure), unless it read all zero and the unit's"
                                              " slice showed no stall since",
                     "OnChange": "when inotify reports a change"}
        lines.append(f"One pread of each file the sampler reads, over the {n_max} units (files kept open, "
                     f"median of 5 rounds): {total:.0f} µs per unit for all of them. A sweep a second "
                     f"reads {len(every)} of them for an idle unit every time. Every {slow_every:g} s "
                     f"(each unit in a different second) it reads the {len(running)} that only the "
                     "unit's running tasks change, and the three pressure files but those it can "
                     "skip: cpu.pressure while it reads all zero and the unit does not run, "
                     "memory.pressure and io.pressure while they read all zero and the unit's slice "
                     "shows no stall on their resource (its own pressure files, read once per sweep "
                     "for all its units). The others are read only when the unit ran or inotify "
                     "reports a change to them. That is "
                     f"{most:.0f} µs per idle unit and sweep of reads on average with every pressure "
                     f"file read, {base:.0f} µs with none, against "
                     f"{g.median(f'sample.sweep.{n_max}'):.0f} µs per unit for the whole sweep "
                     "(reads, parsing, snapshots).")
        calm = g.value(f"sample.calm.{n_max}")
        if calm is not None:
            lines[-1] += (f" {calm:.0f} of the {n_max} units read a cpu.pressure of all zeros at the first "
                          "sweep, which their slow reads then skip while they stay idle; the others did "
                          "not (a stall, such as the one of a unit's start in this guest, stays in the "
                          "60 s and 300 s averages for minutes).")
        quiet = g.value(f"sample.quiet.{n_max}")
        if quiet is not None:
            lines[-1] += (f" {quiet:.0f} read a memory.pressure and an io.pressure of all zeros, which "
                          "their slow reads skip once two readings a slow period apart agree.")
        lines.append("")
        lines.append("| file | µs per read | read by a sweep |")
        lines.append("| --- | --- | --- |")
        for name, v in files:
            lines.append(f"| `{name}` | {v:.1f} | {pace_text.get(paces.get(name), 'not reported')} |")
        lines.append("")
    shown = [(i, r) for i, r in enumerate(rows, 1) if r[0] in notes]
    if shown or "general" in notes:
        lines.append("## Notes")
        lines.append("")
        if "general" in notes:
            lines.append(notes["general"])
            lines.append("")
        for i, r in shown:
            state = "" if r[5] == "(for reference)" else " (met)" if r[6] else " (missed)" if r[6] is False else " (not measured)"
            lines.append(f"**{i}. {r[1]}{state}.** {notes[r[0]]}")
            lines.append("")
    with open(out_path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")

    for i, (gid, what, c, a, r, goal, ok) in enumerate(rows, 1):
        verdict = "" if goal == "(for reference)" else " [not measured]" if ok is None else " [met]" if ok else " [MISSED]"
        print(f"{i:2}. {what}: {c} | {a} | {r} | {goal}{verdict}")
    print(f"benchmarks: {met} of {len(goals)} goals met ({measured} measured); see {out_path}")


main()
