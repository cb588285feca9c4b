//! The pure, in-process parts of watching apps, measured with criterion on the host: parsing
//! each cgroup v2 file Corral reads, one unit's sample, and the sampling sweep (plus history
//! and alert rules, i.e. one monitor tick) over N units of a fixture tree in a temporary
//! directory. The same sweep against real cgroups, and everything that needs systemd, is
//! measured in the guest by `tests/bench/run.sh` (see BENCHMARKS.md).
//!
//! `cargo bench --bench sampling`; `cargo bench --bench sampling -- sweep` for one group.

use std::hint::black_box;
use std::path::Path;
use std::time::{Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use corral::cgroup::{
    CgroupFs, ChangeWatch, parse_cgroup_events, parse_cpu_max, parse_cpu_stat, parse_limit,
    parse_memory_events, parse_pressure, parse_u64,
};
use corral::monitor::alerts::{AlertEngine, AlertThresholds};
use corral::monitor::history::History;
use corral::monitor::{Sampler, UnitInfo};

const SLICE: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice";

/// A unit's files as a v6 kernel writes them with memory, cpu and pids enabled.
const UNIT_FILES: &[(&str, &str)] = &[
    ("memory.current", "734003200\n"),
    ("memory.peak", "901775360\n"),
    ("memory.high", "3221225472\n"),
    ("memory.max", "4294967296\n"),
    ("memory.low", "0\n"),
    ("memory.swap.current", "1048576\n"),
    ("memory.swap.max", "max\n"),
    (
        "memory.events",
        "low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    ),
    (
        "cpu.stat",
        "usage_usec 8542118\nuser_usec 6012380\nsystem_usec 2529738\n\
         core_sched.force_idle_usec 0\nnr_periods 1540\nnr_throttled 37\n\
         throttled_usec 912345\nnr_bursts 0\nburst_usec 0\n",
    ),
    ("cpu.max", "300000 100000\n"),
    ("cpu.weight", "100\n"),
    ("pids.current", "87\n"),
    ("pids.max", "max\n"),
    (
        "memory.pressure",
        "some avg10=1.53 avg60=0.87 avg300=0.22 total=3108457\n\
         full avg10=0.71 avg60=0.40 avg300=0.10 total=1456234\n",
    ),
    (
        "cpu.pressure",
        "some avg10=4.00 avg60=2.00 avg300=1.00 total=500000\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    ),
    (
        "io.pressure",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total=40\n",
    ),
    ("cgroup.events", "populated 1\nfrozen 0\n"),
    ("cgroup.freeze", "0\n"),
];

fn text(name: &str) -> &'static str {
    UNIT_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a fixture file")
}

/// A cgroup root in a temporary directory with `n` unit directories, and their infos as
/// `list_units` would give them.
fn fixture_tree(n: usize) -> (tempfile::TempDir, CgroupFs, Vec<UnitInfo>) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let units = (0..n)
        .map(|i| {
            let unit = format!("app-corral-bench-{i:08x}.service");
            let control_group = format!("{SLICE}/{unit}");
            write_unit(&root.path().join(control_group.trim_start_matches('/')));
            UnitInfo::new(
                unit,
                "bench (preset relaxed)",
                "active".to_owned(),
                "running".to_owned(),
                Some(control_group),
            )
        })
        .collect();
    let fs = CgroupFs::new(root.path());
    (root, fs, units)
}

fn write_unit(dir: &Path) {
    std::fs::create_dir_all(dir).expect("a unit directory");
    for (name, text) in UNIT_FILES {
        std::fs::write(dir.join(name), text).expect("a fixture file");
    }
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("cpu.stat", |b| {
        b.iter(|| parse_cpu_stat(black_box(text("cpu.stat"))))
    });
    group.bench_function("memory.events", |b| {
        b.iter(|| parse_memory_events(black_box(text("memory.events"))))
    });
    group.bench_function("memory.pressure", |b| {
        b.iter(|| parse_pressure(black_box(text("memory.pressure"))))
    });
    group.bench_function("cgroup.events", |b| {
        b.iter(|| parse_cgroup_events(black_box(text("cgroup.events"))))
    });
    group.bench_function("memory.max", |b| {
        b.iter(|| parse_limit(black_box(text("memory.max"))))
    });
    group.bench_function("cpu.max", |b| {
        b.iter(|| parse_cpu_max(black_box(text("cpu.max"))))
    });
    // Every file of one unit, as one sample parses them (without the reads).
    group.bench_function("all files of a unit", |b| {
        b.iter(|| {
            let t = |name| black_box(text(name));
            (
                parse_u64(t("memory.current")).ok(),
                parse_u64(t("memory.peak")).ok(),
                parse_limit(t("memory.high")).ok(),
                parse_limit(t("memory.max")).ok(),
                parse_limit(t("memory.low")).ok(),
                parse_u64(t("memory.swap.current")).ok(),
                parse_limit(t("memory.swap.max")).ok(),
                parse_memory_events(t("memory.events")),
                parse_cpu_stat(t("cpu.stat")),
                parse_cpu_max(t("cpu.max")).ok(),
                parse_u64(t("cpu.weight")).ok(),
                parse_u64(t("pids.current")).ok(),
                parse_limit(t("pids.max")).ok(),
                parse_pressure(t("memory.pressure")).ok(),
                parse_pressure(t("cpu.pressure")).ok(),
                parse_pressure(t("io.pressure")).ok(),
                parse_cgroup_events(t("cgroup.events")),
            )
        })
    });
    group.finish();
}

fn sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("sweep");
    for n in [10, 100, 300] {
        let (_root, fs, units) = fixture_tree(n);
        group.throughput(Throughput::Elements(n as u64));
        // The sampler keeps every unit's files open: after the first sweep each file it reads
        // costs one pread, as in the running app, and the files that change only when written
        // or notified (limits, events) are read only when inotify reported a change.
        let mut sampler = Sampler::new(fs.clone());
        sampler.sample(&units);
        group.bench_with_input(BenchmarkId::new("sampler", n), &units, |b, units| {
            b.iter(|| sampler.sample(black_box(units)))
        });
        // The same without inotify: every file read on every sweep.
        let mut sampler = Sampler::with_changes(fs.clone(), ChangeWatch::unavailable());
        sampler.sample(&units);
        group.bench_with_input(BenchmarkId::new("full reads", n), &units, |b, units| {
            b.iter(|| sampler.sample(black_box(units)))
        });
        // A whole monitor tick: the sweep, the history rings and the alert rules.
        let mut sampler = Sampler::new(fs.clone());
        let mut history = History::default();
        let mut engine = AlertEngine::new(AlertThresholds::default());
        sampler.sample(&units);
        group.bench_with_input(BenchmarkId::new("tick", n), &units, |b, units| {
            b.iter(|| {
                let snapshots = sampler.sample(black_box(units));
                history.record(&snapshots, SystemTime::now());
                let now = Instant::now();
                for snapshot in &snapshots {
                    black_box(engine.observe(snapshot, now));
                }
            })
        });
        // Opening every file anew each time, as a reader without cached handles would (and, for
        // a new sampler, its inotify instance and one watch per unit).
        group.bench_with_input(BenchmarkId::new("cold", n), &units, |b, units| {
            b.iter(|| Sampler::new(fs.clone()).sample(black_box(units)))
        });
    }
    group.finish();
}

criterion_group!(benches, parsing, sweep);
criterion_main!(benches);
