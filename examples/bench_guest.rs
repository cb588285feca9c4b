//! The benchmarks that need a real systemd, run in the test guest by `tests/vm/guest/bench.sh`
//! (started from the host by `tests/bench/run.sh`, which turns the figures into
//! BENCHMARKS.md). Each part measures Corral and its anchor side by side, interleaved round by
//! round, so that their ratio holds however fast or noisy the machine is.
//!
//! ```text
//! bench_guest cli       --corral PATH --runs N   corral run vs systemd-run, as commands
//! bench_guest launch    --runs N                 Corral's launcher in-process vs raw D-Bus
//! bench_guest sample    --corral PATH --counts 10,100,300 --sweeps N --cgtop-runs N --keep N
//!                                                the sampler vs systemd-cgtop over N units
//! bench_guest control   --corral PATH --runs N   freeze+thaw and kill: Corral vs systemctl/D-Bus
//! bench_guest calibrate                          a fixed CPU-bound and process-bound workload
//! bench_guest stall     --apps N --hold-ms N --rounds N
//!                                                the window's longest main-loop stall while
//!                                                it loads N desktop entries, and while a
//!                                                preference is held down (needs a display)
//! ```
//!
//! Every figure is printed on stdout as one JSON object per line: `{"metric": NAME, "unit":
//! "ms", "samples": [...]}` for repeated measurements, `{"metric": NAME, "unit": U, "value":
//! X}` for single ones. Progress and problems go to stderr. Units it starts are named
//! `app-corral-bench*` and are stopped before it exits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::json;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use corral::cgroup::CgroupFs;
use corral::config::Settings;
use corral::controller::Controller;
use corral::launch::{self, LaunchRequest};
use corral::monitor::{self, Sampler, UnitInfo};
use corral::systemd::proxy::ManagerProxy;
use corral::systemd::{ManagerKind, Systemd, UnitKind};

fn emit_samples(metric: &str, unit: &str, samples: &[f64]) {
    println!(
        "{}",
        json!({"metric": metric, "unit": unit, "samples": samples})
    );
}

fn emit_value(metric: &str, unit: &str, value: f64) {
    println!(
        "{}",
        json!({"metric": metric, "unit": unit, "value": value})
    );
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Command-line options as `--name value` pairs.
struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg}");
            };
            let value = args
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Options(map))
    }

    fn get(&self, name: &str, default: &str) -> String {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn number(&self, name: &str, default: usize) -> Result<usize> {
        self.get(name, &default.to_string())
            .parse()
            .with_context(|| format!("--{name} takes a number"))
    }
}

fn main() -> Result<()> {
    corral::raise_fd_limit();
    let mut args = std::env::args().skip(1);
    let part = args
        .next()
        .context("which part? cli, launch, sample, control or calibrate")?;
    let options = Options::parse(args)?;
    if part == "stall" {
        // GTK's main loop on the main thread, not in a runtime.
        return stall::run(&options);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match part.as_str() {
            "cli" => cli(&options).await,
            "launch" => launch_in_process(&options).await,
            "sample" => sample(&options).await,
            "control" => control(&options).await,
            "calibrate" => calibrate(),
            other => bail!("no part named {other}"),
        }
    })
}

/// Runs a command to its end with no input or output; its wall time in ms.
fn run_timed(argv: &[String]) -> Result<f64> {
    let start = Instant::now();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting {}", argv[0]))?;
    let elapsed = ms(start);
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(elapsed)
}

/// The same off the async runtime's thread, so D-Bus messages keep being read meanwhile.
async fn run_timed_async(argv: Vec<String>) -> Result<f64> {
    tokio::task::spawn_blocking(move || run_timed(&argv)).await?
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// `corral run` against `systemd-run`, as a person types them: one process per launch.
async fn cli(options: &Options) -> Result<()> {
    let corral = options.get("corral", "corral");
    let runs = options.number("runs", 20)?;
    let variants: Vec<(&str, Vec<String>)> = vec![
        (
            "cli.scope.corral",
            words(&format!(
                "{corral} run -q --scope --memory-max 1G --cpu-quota 100% -- true"
            )),
        ),
        (
            "cli.scope.systemd-run",
            words("systemd-run --user --scope -p MemoryMax=1G -p CPUQuota=100% true"),
        ),
        (
            "cli.service.corral",
            words(&format!(
                "{corral} run -q --wait --memory-max 1G --cpu-quota 100% -- true"
            )),
        ),
        (
            "cli.service.systemd-run",
            words("systemd-run --user --wait -p MemoryMax=1G -p CPUQuota=100% true"),
        ),
        (
            "cli.service-nowait.corral",
            words(&format!(
                "{corral} run -q --memory-max 1G --cpu-quota 100% -- true"
            )),
        ),
        // The same launches with address space randomization off. The emulator translates
        // each piece of code the first time it runs at an address, and keeps the translation
        // for the next run only if the code comes back at the same address: without
        // randomization, a command is translated once instead of at every run.
        (
            "cli.scope.corral-fixed",
            words(&format!(
                "setarch -R {corral} run -q --scope --memory-max 1G --cpu-quota 100% -- true"
            )),
        ),
        (
            "cli.scope.systemd-run-fixed",
            words("setarch -R systemd-run --user --scope -p MemoryMax=1G -p CPUQuota=100% true"),
        ),
        (
            "cli.service.corral-fixed",
            words(&format!(
                "setarch -R {corral} run -q --wait --memory-max 1G --cpu-quota 100% -- true"
            )),
        ),
        (
            "cli.service.systemd-run-fixed",
            words("setarch -R systemd-run --user --wait -p MemoryMax=1G -p CPUQuota=100% true"),
        ),
        // What any command costs here, and what loading Corral's binary costs.
        ("cli.process.true", words("/bin/true")),
        (
            "cli.process.corral-version",
            words(&format!("{corral} --version")),
        ),
        (
            "cli.process.systemd-run-version",
            words("systemd-run --version"),
        ),
    ];
    // The same commands' work without starting a process: Corral's command-line code called
    // in this process (a connection of its own each time, as the command makes).
    let in_process: Vec<(&str, Vec<String>)> = vec![
        (
            "cli.inproc.scope.corral",
            words("corral run -q --scope --memory-max 1G --cpu-quota 100% -- true"),
        ),
        (
            "cli.inproc.service.corral",
            words("corral run -q --wait --memory-max 1G --cpu-quota 100% -- true"),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut in_process_samples: Vec<Vec<f64>> = vec![Vec::new(); in_process.len()];
    // One round unmeasured, to warm the page cache and systemd; then interleaved rounds.
    for round in 0..=runs {
        for (i, (_, argv)) in variants.iter().enumerate() {
            let t = run_timed_async(argv.clone()).await?;
            if round > 0 {
                samples[i].push(t);
            }
        }
        for (i, (_, argv)) in in_process.iter().enumerate() {
            let parsed = corral::cli::Cli::try_parse_from(argv)?;
            let manager = parsed.manager();
            let command = parsed.command.context("a command")?;
            let start = Instant::now();
            let code = corral::cli::run(manager, command).await?;
            let t = ms(start);
            if code != 0 {
                bail!("{} exited with {code}", argv.join(" "));
            }
            if round > 0 {
                in_process_samples[i].push(t);
            }
        }
    }
    for ((metric, _), samples) in variants.iter().zip(&samples) {
        emit_samples(metric, "ms", samples);
    }
    for ((metric, _), samples) in in_process.iter().zip(&in_process_samples) {
        emit_samples(metric, "ms", samples);
    }
    Ok(())
}

fn bench_settings() -> Result<Settings> {
    Ok(Settings {
        memory_max: Some("1G".parse()?),
        cpu_quota: Some("100%".parse()?),
        ..Settings::default()
    })
}

fn request(app_id: &str, command: &[&str], kind: UnitKind) -> Result<LaunchRequest> {
    Ok(LaunchRequest {
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        app_id: app_id.to_owned(),
        app_name: app_id.to_owned(),
        preset: "bench".to_owned(),
        settings: bench_settings()?,
        kind,
        working_directory: std::env::var_os("HOME").map(PathBuf::from),
        runtime_limits: None,
    })
}

/// A second, bare connection for the raw D-Bus anchors: systemd's own calls, nothing else.
struct Raw {
    manager: ManagerProxy<'static>,
}

impl Raw {
    async fn connect() -> Result<Raw> {
        let connection = zbus::Connection::session().await?;
        let manager = ManagerProxy::new(&connection).await?;
        manager.subscribe().await?;
        Ok(Raw { manager })
    }

    /// StartTransientUnit of a unit named after `kind` with the benchmark's limits and `own`
    /// properties, then its job's JobRemoved: the time in ms.
    async fn start(
        &self,
        jobs: &mut corral::systemd::proxy::JobRemovedStream,
        kind: UnitKind,
        own: Vec<(&str, Value<'_>)>,
    ) -> Result<f64> {
        let name = corral::systemd::names::new_unit_name("benchraw", kind);
        let mut props: Vec<(&str, Value<'_>)> = vec![
            ("Description", Value::from("benchraw")),
            ("Slice", Value::from("app.slice")),
            ("CollectMode", Value::from("inactive-or-failed")),
            ("MemoryMax", Value::from(1u64 << 30)),
            ("CPUQuotaPerSecUSec", Value::from(1_000_000u64)),
        ];
        props.extend(own);
        let start = Instant::now();
        let job = self
            .manager
            .start_transient_unit(&name, "fail", &props, &[])
            .await?;
        let result = wait_job(jobs, &job).await?;
        let t = ms(start);
        if result != "done" {
            bail!("raw start of {name}: job {result}");
        }
        Ok(t)
    }
}

/// The launcher API as the window and the tray use it (one long-lived connection), against a
/// bare StartTransientUnit and its JobRemoved over one connection.
async fn launch_in_process(options: &Options) -> Result<()> {
    let runs = options.number("runs", 20)?;
    let systemd = Systemd::connect(ManagerKind::User).await?;
    let raw = Raw::connect().await?;
    let mut jobs = raw.manager.receive_job_removed().await?;
    let service = request("benchtrue", &["true"], UnitKind::Service)?;
    let scope = request("benchtrue", &["true"], UnitKind::Scope)?;
    let mut corral_service = Vec::new();
    let mut corral_scope = Vec::new();
    let mut raw_service = Vec::new();
    let mut raw_scope = Vec::new();
    // The goal's anchors, interleaved here too, so the ratios are of the same minutes.
    let anchors = [
        words("systemd-run --user --scope -p MemoryMax=1G -p CPUQuota=100% true"),
        words("systemd-run --user --wait -p MemoryMax=1G -p CPUQuota=100% true"),
    ];
    let mut anchor_samples = [Vec::new(), Vec::new()];
    for round in 0..=runs {
        for (anchor, samples) in anchors.iter().zip(anchor_samples.iter_mut()) {
            let t = run_timed_async(anchor.clone()).await?;
            if round > 0 {
                samples.push(t);
            }
        }
        // Corral's service: returns once systemd has executed the program (Type=exec).
        let start = Instant::now();
        let unit = launch::launch_service(&systemd, &service, None).await?;
        let t = ms(start);
        systemd.unref(&unit).await;
        if round > 0 {
            corral_service.push(t);
        }

        // Corral's scope: returns once the child has executed the program inside the scope.
        let start = Instant::now();
        let child = launch::launch_scope(&systemd, &scope).await?;
        let t = ms(start);
        launch::wait_child(child.pid).await;
        systemd.unref(&child.unit).await;
        if round > 0 {
            corral_scope.push(t);
        }

        // Raw: the same properties, StartTransientUnit, then JobRemoved of its job.
        let exec = vec![("/bin/true".to_owned(), vec!["/bin/true".to_owned()], false)];
        let service = vec![
            ("Type", Value::from("exec")),
            ("ExecStart", Value::from(exec)),
        ];
        let t = raw.start(&mut jobs, UnitKind::Service, service).await?;
        if round > 0 {
            raw_service.push(t);
        }

        // Raw scope: StartTransientUnit of a scope around a process already running, then
        // JobRemoved: systemd's own part of a scope launch, without the fork and the exec.
        let mut child = Command::new("sleep").arg("30").spawn()?;
        let scope = vec![("PIDs", Value::from(vec![child.id()]))];
        let started = raw.start(&mut jobs, UnitKind::Scope, scope).await;
        // Ended whether or not the scope started.
        child.kill()?;
        child.wait()?;
        let t = started?;
        if round > 0 {
            raw_scope.push(t);
        }
    }
    emit_samples("launch.inproc.service.corral", "ms", &corral_service);
    emit_samples("launch.inproc.scope.corral", "ms", &corral_scope);
    emit_samples("launch.inproc.service.raw", "ms", &raw_service);
    emit_samples("launch.inproc.scope.raw", "ms", &raw_scope);
    emit_samples("launch.anchor.scope.systemd-run", "ms", &anchor_samples[0]);
    emit_samples(
        "launch.anchor.service.systemd-run",
        "ms",
        &anchor_samples[1],
    );
    Ok(())
}

async fn wait_job(
    jobs: &mut corral::systemd::proxy::JobRemovedStream,
    job: &OwnedObjectPath,
) -> Result<String> {
    while let Some(signal) = jobs.next().await {
        let args = signal.args()?;
        if &args.job == job {
            return Ok(args.result.clone());
        }
    }
    bail!("the bus connection closed")
}

/// Starts `count` idle units (`sleep infinity`) as Corral does, a batch at a time.
async fn start_idle_units(systemd: &Systemd, count: usize) -> Result<Vec<String>> {
    let idle = request("benchidle", &["sleep", "infinity"], UnitKind::Service)?;
    let mut units = Vec::with_capacity(count);
    let mut left = count;
    while left > 0 {
        let batch = left.min(25);
        let started = join_all((0..batch).map(|_| launch::launch_service(systemd, &idle, None)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for unit in &started {
            systemd.unref(unit).await;
        }
        units.extend(started);
        left -= batch;
    }
    Ok(units)
}

async fn stop_units(systemd: &Systemd, units: &[String]) {
    for batch in units.chunks(50) {
        join_all(batch.iter().map(|u| systemd.kill(u, libc::SIGKILL))).await;
    }
}

/// VmRSS and VmHWM of a process, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// utime + stime of a process, in clock ticks (proc(5), fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The sampler's sweep over N real units against `systemd-cgtop -b -n 1` over the same units,
/// and how the running monitor (`corral watch`) grows with N.
async fn sample(options: &Options) -> Result<()> {
    let corral = options.get("corral", "corral");
    let counts: Vec<usize> = options
        .get("counts", "10,100,300")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("--counts takes numbers separated by commas")?;
    let sweeps = options.number("sweeps", 30)?;
    let cgtop_runs = options.number("cgtop-runs", 10)?;
    let keep = options.number("keep", 0)?;
    let watch_secs = options.number("watch-seconds", 6)?;
    let systemd = Systemd::connect(ManagerKind::User).await?;
    let fs = CgroupFs::system();
    let mut started: Vec<String> = Vec::new();
    for &n in &counts {
        let start = Instant::now();
        started.extend(start_idle_units(&systemd, n.saturating_sub(started.len())).await?);
        eprintln!(
            "bench_guest: {} idle units running ({:.1} s to start the new ones)",
            started.len(),
            start.elapsed().as_secs_f64()
        );

        // Listing (ListUnitsByPatterns and one ControlGroup Get per unit): done when units
        // come or go and every 10 s, not every sweep.
        let mut list_ms = Vec::new();
        let mut units: Vec<UnitInfo> = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            units = monitor::list_units(&systemd, true).await?;
            list_ms.push(ms(start));
        }
        let units: Vec<UnitInfo> = units
            .into_iter()
            .filter(|u| started.contains(&u.unit))
            .collect();
        if units.len() != n {
            bail!("listed {} of the {n} idle units", units.len());
        }
        emit_samples(&format!("sample.list.{n}"), "ms", &list_ms);
        // What the monitor pays every 10 s: the same listing, knowing the cgroups of the
        // units it listed before (a Get only for new ones).
        let mut relist_ms = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let again = monitor::list_units_knowing(&systemd, true, &units).await?;
            relist_ms.push(ms(start));
            std::hint::black_box(again);
        }
        emit_samples(&format!("sample.relist.{n}"), "ms", &relist_ms);

        let mut sampler = Sampler::new(fs.clone());
        let start = Instant::now();
        let first = sampler.sample(&units);
        emit_value(
            &format!("sample.first.{n}"),
            "us/unit",
            ms(start) * 1000.0 / n as f64,
        );
        // Every field the window shows must have been read, or the sweep is not the real one.
        let complete = first
            .iter()
            .filter(|s| {
                s.cgroup.as_ref().is_some_and(|c| {
                    c.memory_current.is_some()
                        && c.memory_max.is_some()
                        && c.cpu_stat.is_some()
                        && c.pids_current.is_some()
                        && c.memory_pressure.is_some()
                        && c.events.is_some()
                })
            })
            .count();
        emit_value(&format!("sample.complete.{n}"), "units", complete as f64);
        // Units whose cpu.pressure read all zero: an idle one skips it at its slow reads. The
        // others still show the stalls of their start in the 60 s and 300 s averages.
        let all_zero = |p: &corral::cgroup::Pressure| {
            let zero = |l: &corral::cgroup::PressureLine| {
                l.avg10 == 0.0 && l.avg60 == 0.0 && l.avg300 == 0.0
            };
            zero(&p.some) && p.full.as_ref().is_none_or(zero)
        };
        let calm = first
            .iter()
            .filter_map(|s| s.cgroup.as_ref()?.cpu_pressure)
            .filter(all_zero)
            .count();
        emit_value(&format!("sample.calm.{n}"), "units", calm as f64);
        // Units whose memory.pressure and io.pressure read all zero: once their totals hold for
        // a slow period, their slow reads skip both while nothing in their slice stalls.
        let quiet = first
            .iter()
            .filter_map(|s| s.cgroup.as_ref())
            .filter(|c| {
                [c.memory_pressure, c.io_pressure]
                    .iter()
                    .all(|p| p.as_ref().is_some_and(all_zero))
            })
            .count();
        emit_value(&format!("sample.quiet.{n}"), "units", quiet as f64);
        // The sweeps the monitor makes at the default interval, one a second: each is told
        // the time it would run at, which decides which of the slow files (pressure,
        // memory.peak, every 5 s) are due, so 30 sweeps cost what 30 s of sampling costs.
        let sweep_at = |i: usize| start + Duration::from_secs(1 + i as u64);
        let mut per_unit = Vec::new();
        for i in 0..sweeps {
            let started = Instant::now();
            let snapshots = sampler.sample_at(&units, sweep_at(i));
            per_unit.push(ms(started) * 1000.0 / n as f64);
            std::hint::black_box(snapshots);
        }
        emit_samples(&format!("sample.sweep.{n}"), "us/unit", &per_unit);
        // For reference, the same sweeps with every unit's slow files due at each one (the
        // sweep before the slow files were paced, but for the files an idle unit skips even
        // then): sweeps 5 s apart.
        let mut unpaced = Vec::new();
        let later = sweep_at(sweeps + 5);
        for i in 0..sweeps {
            let started = Instant::now();
            let snapshots = sampler.sample_at(&units, later + Duration::from_secs(5 * i as u64));
            unpaced.push(ms(started) * 1000.0 / n as f64);
            std::hint::black_box(snapshots);
        }
        emit_samples(&format!("sample.unpaced.{n}"), "us/unit", &unpaced);
        if n == *counts.last().unwrap_or(&0) {
            file_costs(&fs, &units)?;
        }

        // systemd-cgtop over the same units: their slice, one iteration, batch mode.
        let slice = units[0]
            .control_group
            .as_deref()
            .and_then(|cg| cg.rsplit_once('/'))
            .map(|(parent, _)| parent.to_owned())
            .context("a unit without a cgroup")?;
        let cgtop = vec![
            "systemd-cgtop".to_owned(),
            "-b".to_owned(),
            "-n".to_owned(),
            "1".to_owned(),
            slice.clone(),
        ];
        let shown = Command::new("systemd-cgtop")
            .args(["-b", "-n", "1", &slice])
            .output()?;
        let listed = String::from_utf8_lossy(&shown.stdout)
            .lines()
            .filter(|l| l.contains("app-corral-benchidle-"))
            .count();
        emit_value(&format!("cgtop.listed.{n}"), "units", listed as f64);
        let mut cgtop_per_unit = Vec::new();
        for _ in 0..cgtop_runs {
            cgtop_per_unit.push(run_timed_async(cgtop.clone()).await? * 1000.0 / n as f64);
        }
        emit_samples(&format!("cgtop.sweep.{n}"), "us/unit", &cgtop_per_unit);

        // The monitor with N units: `corral watch` (lists, samples every second, watches each
        // unit's events), its memory and CPU once settled.
        let mut watch = Command::new(&corral)
            .arg("watch")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // Settled: its start (the first listing, a hold and an OOM policy asked of systemd
        // per unit, each unit's watches) is over once a second passes in which it used less
        // than a fifth of a core. A fixed wait was too short on a slow run, and its start-up
        // fell into the measurement.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for _ in 0..30 {
            let Some(a) = cpu_ticks(watch.id()) else {
                break;
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
            match cpu_ticks(watch.id()) {
                Some(b) if ((b - a) as f64) < ticks_per_second() / 5.0 => break,
                Some(_) => {}
                None => break,
            }
        }
        let before = cpu_ticks(watch.id());
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(watch_secs as u64)).await;
        let after = cpu_ticks(watch.id());
        let rss = rss_kib(watch.id());
        let elapsed = start.elapsed().as_secs_f64();
        let _ = watch.kill();
        let _ = watch.wait();
        if let (Some(before), Some(after), Some((rss, hwm))) = (before, after, rss) {
            let cpu = (after - before) as f64 / ticks_per_second() / elapsed * 100.0;
            emit_value(&format!("watch.cpu.{n}"), "%", cpu);
            emit_value(&format!("watch.rss.{n}"), "KiB", rss as f64);
            emit_value(&format!("watch.hwm.{n}"), "KiB", hwm as f64);
        } else {
            eprintln!("bench_guest: corral watch ended early with {n} units");
        }
    }
    let (kept, extra) = started.split_at(keep.min(started.len()));
    stop_units(&systemd, extra).await;
    eprintln!("bench_guest: kept {} idle units", kept.len());
    Ok(())
}

/// The files a sample reads, in its order (src/cgroup/unit.rs).
const SAMPLED_FILES: [&str; 18] = [
    "memory.current",
    "memory.peak",
    "memory.high",
    "memory.max",
    "memory.low",
    "memory.swap.current",
    "memory.swap.max",
    "memory.events",
    "cpu.stat",
    "cpu.max",
    "cpu.weight",
    "pids.current",
    "pids.max",
    "memory.pressure",
    "cpu.pressure",
    "io.pressure",
    "cgroup.events",
    "cgroup.freeze",
];

/// What one pread of each file costs the kernel, over every unit (files kept open, as the
/// sampler keeps them): where a sweep's time goes.
fn file_costs(fs: &CgroupFs, units: &[UnitInfo]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 4096];
    let mut total = 0.0;
    for name in SAMPLED_FILES {
        let files: Vec<std::fs::File> = units
            .iter()
            .filter_map(|u| u.control_group.as_deref())
            .filter_map(|cg| std::fs::File::open(fs.path_of(cg).join(name)).ok())
            .collect();
        if files.is_empty() {
            continue;
        }
        let mut rounds: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                for file in &files {
                    std::hint::black_box(file.read_at(&mut buf, 0).ok());
                }
                ms(start) * 1000.0 / files.len() as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        let median = rounds[rounds.len() / 2];
        total += median;
        emit_value(&format!("sample.file.{name}"), "us/read", median);
    }
    emit_value("sample.file.all", "us/unit", total);
    // How often a sweep reads each file (src/cgroup/unit.rs), for the report's table.
    for (name, pace) in corral::cgroup::file_paces() {
        println!(
            "{}",
            json!({"metric": format!("sample.pace.{name}"), "unit": "pace", "pace": pace})
        );
    }
    emit_value(
        "sample.pace.slow-every",
        "s",
        corral::cgroup::SLOW_EVERY.as_secs_f64(),
    );
    Ok(())
}

/// Waits for PropertiesChanged saying that the unit at `path` is inactive or failed.
async fn wait_inactive(changes: &mut zbus::MessageStream, path: &str) -> Result<()> {
    type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);
    while let Some(message) = changes.next().await {
        let message = message?;
        if message.header().path().map(|p| p.as_str()) != Some(path) {
            continue;
        }
        let Ok((interface, changed, _)) = message.body().deserialize::<Changed>() else {
            continue;
        };
        if interface != "org.freedesktop.systemd1.Unit" {
            continue;
        }
        let state = changed
            .get("ActiveState")
            .and_then(|v| <&str>::try_from(v).ok());
        if matches!(state, Some("inactive" | "failed")) {
            return Ok(());
        }
    }
    bail!("the bus connection closed")
}

async fn unit_info(systemd: &Systemd, unit: &str) -> Result<UnitInfo> {
    monitor::list_units(systemd, true)
        .await?
        .into_iter()
        .find(|u| u.unit == unit)
        .with_context(|| format!("{unit} is not listed"))
}

/// Freeze + thaw and kill until the unit is gone: Corral's controller on its one connection,
/// the same calls bare over one connection, systemctl, and Corral's own commands.
async fn control(options: &Options) -> Result<()> {
    let corral = options.get("corral", "corral");
    let runs = options.number("runs", 15)?;
    let systemd = Systemd::connect(ManagerKind::User).await?;
    let controller = Controller::new(systemd.clone(), CgroupFs::system());
    let raw = Raw::connect().await?;
    // One long-lived subscription to every unit's property changes, as a client that watches
    // units would keep: the raw anchor pays no AddMatch per kill.
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path_namespace("/org/freedesktop/systemd1/unit")?
        .interface("org.freedesktop.DBus.Properties")?
        .member("PropertiesChanged")?
        .build();
    let mut changes =
        zbus::MessageStream::for_match_rule(rule, raw.manager.inner().connection(), None).await?;

    let target = start_idle_units(&systemd, 1).await?.remove(0);
    let info = unit_info(&systemd, &target).await?;
    let mut freeze = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..=runs {
        let start = Instant::now();
        controller.freeze(&info).await?;
        controller.thaw(&info).await?;
        let corral_ms = ms(start);

        let start = Instant::now();
        raw.manager.freeze_unit(&target).await?;
        raw.manager.thaw_unit(&target).await?;
        let raw_ms = ms(start);

        let systemctl_ms = run_timed_async(words(&format!("systemctl --user freeze {target}")))
            .await?
            + run_timed_async(words(&format!("systemctl --user thaw {target}"))).await?;
        let cli_ms = run_timed_async(words(&format!("{corral} freeze {target}"))).await?
            + run_timed_async(words(&format!("{corral} thaw {target}"))).await?;
        if round > 0 {
            for (samples, t) in freeze
                .iter_mut()
                .zip([corral_ms, raw_ms, systemctl_ms, cli_ms])
            {
                samples.push(t);
            }
        }
    }
    stop_units(&systemd, &[target]).await;
    for (samples, who) in freeze
        .iter()
        .zip(["corral", "raw", "systemctl", "corral-cli"])
    {
        emit_samples(&format!("control.freeze-thaw.{who}"), "ms", samples);
    }

    let mut kill = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..=runs {
        let units = start_idle_units(&systemd, 4).await?;
        // Drain what the starts announced, so that only the kills are waited for.
        while tokio::time::timeout(Duration::from_millis(50), changes.next())
            .await
            .is_ok()
        {}
        let corral_unit = unit_info(&systemd, &units[0]).await?;
        let start = Instant::now();
        if !controller
            .kill_and_wait(&corral_unit, libc::SIGKILL, Duration::from_secs(5))
            .await?
        {
            bail!("{} still active 5 s after SIGKILL", units[0]);
        }
        let corral_ms = ms(start);

        let path = corral::systemd::names::object_path(&units[1]);
        let start = Instant::now();
        raw.manager
            .kill_unit(&units[1], "all", libc::SIGKILL)
            .await?;
        tokio::time::timeout(Duration::from_secs(5), wait_inactive(&mut changes, &path))
            .await
            .context("raw kill: no end within 5 s")??;
        let raw_ms = ms(start);

        // systemctl returns once the signal is sent; the end is seen on the watch above.
        let path = corral::systemd::names::object_path(&units[2]);
        let start = Instant::now();
        run_timed_async(words(&format!(
            "systemctl --user kill --signal=KILL {}",
            units[2]
        )))
        .await?;
        tokio::time::timeout(Duration::from_secs(5), wait_inactive(&mut changes, &path))
            .await
            .context("systemctl kill: no end within 5 s")??;
        let systemctl_ms = ms(start);

        // `corral kill` waits for the end itself.
        let cli_ms = run_timed_async(words(&format!("{corral} kill {}", units[3]))).await?;
        if round > 0 {
            for (samples, t) in kill
                .iter_mut()
                .zip([corral_ms, raw_ms, systemctl_ms, cli_ms])
            {
                samples.push(t);
            }
        }
    }
    for (samples, who) in kill
        .iter()
        .zip(["corral", "raw", "systemctl", "corral-cli"])
    {
        emit_samples(&format!("control.kill.{who}"), "ms", samples);
    }
    Ok(())
}

/// A fixed workload to compare this machine with another: CPU-bound parsing, and starting
/// processes. Run on the host and in the guest, the ratios say how much slower the guest is.
fn calibrate() -> Result<()> {
    let text = "usage_usec 8542118\nuser_usec 6012380\nsystem_usec 2529738\n\
                core_sched.force_idle_usec 0\nnr_periods 1540\nnr_throttled 37\n\
                throttled_usec 912345\nnr_bursts 0\nburst_usec 0\n";
    let mut cpu = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..20_000 {
            std::hint::black_box(corral::cgroup::parse_cpu_stat(std::hint::black_box(text)));
        }
        cpu.push(ms(start));
    }
    emit_samples("calibrate.cpu", "ms", &cpu);
    let mut spawn = Vec::new();
    for _ in 0..10 {
        spawn.push(run_timed(&words("/bin/true"))?);
    }
    emit_samples("calibrate.spawn", "ms", &spawn);
    Ok(())
}

/// The window's main loop while it works: a GLib timeout every [`stall::TICK`] notes how late
/// it runs; the longest delay is the longest stall a person would feel.
mod stall {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use adw::prelude::*;
    use anyhow::{Result, bail};
    use relm4::prelude::*;

    use super::{Options, emit_value, ms};
    use corral::engine::ConfigStore;
    use corral::ui::preferences::{Preferences, PreferencesInit};
    use corral::ui::window::{MainWindow, WindowInit};

    pub const TICK: Duration = Duration::from_millis(5);

    /// The longest gap between ticks since the last reset, beyond the tick itself.
    struct StallMeter {
        longest: Rc<Cell<Duration>>,
        last: Rc<Cell<Instant>>,
    }

    impl StallMeter {
        fn start() -> StallMeter {
            let longest = Rc::new(Cell::new(Duration::ZERO));
            let last = Rc::new(Cell::new(Instant::now()));
            let (l, t) = (Rc::clone(&longest), Rc::clone(&last));
            gtk::glib::timeout_add_local(TICK, move || {
                let now = Instant::now();
                let gap = now.duration_since(t.replace(now)).saturating_sub(TICK);
                l.set(l.get().max(gap));
                gtk::glib::ControlFlow::Continue
            });
            StallMeter { longest, last }
        }

        fn reset(&self) {
            self.last.set(Instant::now());
            self.longest.set(Duration::ZERO);
        }

        fn longest_ms(&self) -> f64 {
            self.longest.get().as_secs_f64() * 1000.0
        }
    }

    /// Runs the main loop until `done`, for at most `limit`.
    fn until(limit: Duration, done: impl Fn() -> bool) -> bool {
        let end = Instant::now() + limit;
        while !done() {
            if Instant::now() > end {
                return false;
            }
            gtk::glib::MainContext::default().iteration(true);
        }
        true
    }

    fn spin_buttons(widget: &gtk::Widget, out: &mut Vec<gtk::SpinButton>) {
        if let Some(spin) = widget.downcast_ref::<gtk::SpinButton>() {
            out.push(spin.clone());
        }
        let mut child = widget.first_child();
        while let Some(c) = child {
            spin_buttons(&c, out);
            child = c.next_sibling();
        }
    }

    pub fn run(options: &Options) -> Result<()> {
        let apps = options.number("apps", 2000)?;
        let hold = Duration::from_millis(options.number("hold-ms", 3000)? as u64);
        let rounds = options.number("rounds", 3)?.max(1);
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("share");
        std::fs::create_dir_all(data.join("applications"))?;
        for i in 0..apps {
            std::fs::write(
                data.join("applications")
                    .join(format!("org.example.App{i}.desktop")),
                format!(
                    "[Desktop Entry]\nType=Application\nName=App {i}\nComment=Generated for the stall benchmark\nKeywords=bench;app{i};\nIcon=utilities-terminal\nExec=true %U\n"
                ),
            )?;
        }
        // SAFETY: no other thread runs yet.
        unsafe {
            std::env::set_var("XDG_DATA_HOME", &data);
            // The system's folders stay: GSettings finds its schemas there.
            std::env::set_var("XDG_DATA_DIRS", "/usr/local/share:/usr/share");
        }
        adw::init()?;
        corral::ui::register_resources();
        let store = ConfigStore::spawn(
            dir.path().join("config.toml"),
            corral::engine::config_store::DEBOUNCE,
        );

        // 1. The window opens and loads the catalog.
        let meter = StallMeter::start();
        let start = Instant::now();
        let window = MainWindow::builder()
            .launch(WindowInit {
                manager: corral::systemd::ManagerKind::User,
                show_all: false,
                engine: None,
                store: store.clone(),
            })
            .detach();
        window.widget().present();
        if !until(Duration::from_secs(120), || {
            window.model().apps_known() >= apps
        }) {
            bail!("the window did not load {apps} desktop entries in 2 minutes");
        }
        emit_value("stall.catalog.start", "ms", ms(start));
        // Then, the window idle and drawn, the entries are read again (as when the launcher
        // opens): the longest stall while they load.
        until(Duration::from_secs(2), || false);
        meter.reset();
        let start = Instant::now();
        window.emit(corral::ui::window::Msg::ReloadCatalog);
        if !until(Duration::from_secs(120), || {
            window.model().catalog_reads() >= 2
        }) {
            bail!("the window did not read the desktop entries again in 2 minutes");
        }
        emit_value("stall.catalog.load", "ms", ms(start));
        emit_value("stall.catalog", "ms", meter.longest_ms());
        // The anchor: the same reading on the main loop, as the window did in its init before.
        until(Duration::from_secs(1), || false);
        meter.reset();
        let read = Rc::new(Cell::new(false));
        {
            let read = Rc::clone(&read);
            gtk::glib::idle_add_local_once(move || {
                let catalog = corral::apps::AppCatalog::load();
                read.set(catalog.len() >= apps);
            });
        }
        until(Duration::from_secs(120), || read.get());
        until(Duration::from_millis(100), || false);
        emit_value("stall.catalog.on-main-loop", "ms", meter.longest_ms());
        // For reference: opening the launcher, its window and its list of every app (and one
        // more reading of the entries).
        until(Duration::from_secs(2), || false);
        meter.reset();
        gtk::prelude::WidgetExt::activate_action(window.widget(), "win.launch", None)?;
        if !until(Duration::from_secs(120), || {
            window.model().catalog_reads() >= 3
        }) {
            bail!("the launcher did not get the desktop entries in 2 minutes");
        }
        until(Duration::from_millis(500), || false);
        emit_value("stall.launcher", "ms", meter.longest_ms());

        // 2. A preference held down: a step every 30 ms (GTK's spin button repeats faster).
        let preferences = Preferences::builder()
            .transient_for(window.widget())
            .launch(PreferencesInit {
                store: store.clone(),
                monitor: None,
                rules: corral::engine::rules::RuleService::for_user(store.clone(), None),
            })
            .detach();
        preferences.widget().present();
        let spin = Rc::new(Cell::new(None::<gtk::SpinButton>));
        let found = until(Duration::from_secs(30), || {
            let mut spins = Vec::new();
            spin_buttons(preferences.widget().upcast_ref(), &mut spins);
            // The second is the memory warning, in whole percent.
            spins.get(1).cloned().map(|s| spin.set(Some(s))).is_some()
        });
        let Some(spin) = spin.take().filter(|_| found) else {
            bail!("the preferences showed no spin button");
        };
        spin.set_value(1.0);
        until(Duration::from_secs(2), || false);
        // The anchor: the same steps on a bare spin button in a window of the same size, with
        // no handler: what stepping and drawing cost the main loop by themselves.
        let bare = gtk::SpinButton::with_range(1.0, 100.0, 1.0);
        let bare_window = adw::Window::builder()
            .default_width(640)
            .default_height(576)
            .content(&bare)
            .build();
        bare_window.present();
        // And as before: each step writing the file on the main loop.
        let before = gtk::SpinButton::with_range(1.0, 100.0, 1.0);
        let path = dir.path().join("before.toml");
        before.connect_value_changed(move |spin| {
            if let Ok(mut editor) = corral::config::ConfigEditor::open(&path) {
                let _ = editor.set_general("memory-warning", spin.value());
                let _ = editor.save();
            }
        });
        let before_window = adw::Window::builder()
            .default_width(640)
            .default_height(576)
            .content(&before)
            .build();
        before_window.present();
        until(Duration::from_secs(2), || false);
        let (mut corral, mut anchor, mut old, mut writes) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for round in 0..rounds {
            for (which, out) in [
                (&spin, &mut corral),
                (&bare, &mut anchor),
                (&before, &mut old),
            ] {
                which.set_value(1.0);
                let window = which.root().and_downcast::<gtk::Window>();
                if let Some(window) = &window {
                    window.present();
                }
                // The reset's own write is done before the burst (the store waits 0.4 s).
                until(Duration::from_secs(1), || false);
                let writes_before = store.writes();
                meter.reset();
                let end = Instant::now() + hold;
                while Instant::now() < end {
                    which.spin(gtk::SpinType::StepForward, 1.0);
                    let step = Instant::now() + Duration::from_millis(30);
                    until(Duration::from_millis(30), || Instant::now() >= step);
                }
                out.push(meter.longest_ms());
                // One write per burst, once the person stops.
                until(corral::engine::config_store::DEBOUNCE * 3, || false);
                writes += store.writes() - writes_before;
            }
            eprintln!(
                "stall: round {round}: corral {:.1} ms, bare {:.1} ms, writing each step {:.1} ms",
                corral[round], anchor[round], old[round]
            );
        }
        super::emit_samples("stall.preference", "ms", &corral);
        super::emit_samples("stall.preference.bare", "ms", &anchor);
        super::emit_samples("stall.preference.before", "ms", &old);
        emit_value(
            "stall.preference.writes",
            "count",
            writes as f64 / rounds as f64,
        );
        Ok(())
    }
}
