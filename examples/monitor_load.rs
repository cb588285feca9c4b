//! What Corral's monitor costs with the units that run now, for the guest's load suite
//! (tests/vm/guest/load.sh): the listing (ListUnitsByPatterns and one ControlGroup read per
//! unit), a sampling sweep (every unit's cgroup files), and the running monitor itself (the
//! same `Monitor` the window, the tray and `corral watch` use) over some seconds: its CPU time
//! per tick, its resident memory and its open files.
//!
//! ```text
//! monitor_load [SECONDS]      (default 20; the user manager, as testuser)
//! ```

use std::time::{Duration, Instant};

use anyhow::Result;
use corral::cgroup::CgroupFs;
use corral::monitor::service::{Monitor, MonitorOptions};
use corral::monitor::{Sampler, list_units};
use corral::systemd::{ManagerKind, Systemd};

/// User plus system CPU time this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills a struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A line of /proc/self/status, e.g. VmRSS, in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Bytes the allocator has handed out and not had back (glibc's mallinfo2: heap chunks in use
/// plus mmap'd blocks): unlike the resident size, it does not count freed memory the
/// allocator keeps, so a leak shows here.
fn allocated_kib() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    ((info.uordblks + info.hblkhd) / 1024) as u64
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    corral::raise_fd_limit();
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let systemd = Systemd::connect(ManagerKind::User).await?;

    let start = Instant::now();
    let units = list_units(&systemd, true).await?;
    println!(
        "listing: {} units in {:.0} ms",
        units.len(),
        ms(start.elapsed())
    );

    let mut sampler = Sampler::new(CgroupFs::system());
    let mut sweeps = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let snapshots = sampler.sample(&units);
        sweeps.push(start.elapsed());
        assert_eq!(snapshots.len(), units.len());
    }
    let known = sampler
        .sample(&units)
        .iter()
        .filter(|s| {
            s.cgroup
                .as_ref()
                .is_some_and(|c| c.memory_current.is_some())
        })
        .count();
    let steady = &sweeps[1..];
    println!(
        "sampling sweep: first {:.0} ms (opens the files), then {:.0} ms on average, {:.0} ms at \
         worst; {known} of {} units with their memory read",
        ms(sweeps[0]),
        ms(steady.iter().sum::<Duration>() / steady.len() as u32),
        ms(*steady.iter().max().unwrap()),
        units.len()
    );
    drop(sampler);

    let monitor = Monitor::spawn_with(
        systemd,
        CgroupFs::system(),
        Duration::from_secs(1),
        MonitorOptions::default(),
    );
    let mut updates = monitor.subscribe();
    // Settle: the first listing and the wakeups' setup.
    while updates.borrow_and_update().units.len() < units.len() {
        if tokio::time::timeout(Duration::from_secs(30), updates.changed())
            .await
            .is_err()
        {
            break;
        }
    }
    let rss_start = status_kib("VmRSS");
    let cpu_start = cpu_time();
    let wall = Instant::now();
    let mut states = 0u32;
    let mut worst_gap = Duration::ZERO;
    let mut last = Instant::now();
    let mut next_report = Duration::ZERO;
    while wall.elapsed() < Duration::from_secs(seconds) {
        if wall.elapsed() >= next_report {
            println!(
                "  at {:>3} s: {} KiB resident, {} KiB allocated",
                next_report.as_secs(),
                status_kib("VmRSS"),
                allocated_kib()
            );
            next_report += Duration::from_secs(seconds.div_ceil(4).max(1));
        }
        if tokio::time::timeout(Duration::from_secs(5), updates.changed())
            .await
            .is_ok()
        {
            states += 1;
            worst_gap = worst_gap.max(last.elapsed());
            last = Instant::now();
        }
    }
    let cpu = cpu_time() - cpu_start;
    let state = monitor.latest();
    println!(
        "monitor over {seconds} s at a 1 s tick: {states} states, {:.0} ms of CPU per second \
         ({:.1} % of one CPU), longest wait between states {:.0} ms; {} units listed, problem: {}",
        ms(cpu) / seconds as f64,
        cpu.as_secs_f64() * 100.0 / wall.elapsed().as_secs_f64(),
        ms(worst_gap),
        state.units.len(),
        state.problem.as_deref().unwrap_or("none")
    );
    println!(
        "memory: {} KiB resident after settling, {} KiB after {seconds} s (peak {} KiB), {} KiB \
         allocated; {} open files",
        rss_start,
        status_kib("VmRSS"),
        status_kib("VmHWM"),
        allocated_kib(),
        open_files()
    );
    Ok(())
}
