//! The history's memory stays flat however long Corral runs: 24 hours of samples for 300 units
//! fill every ring, and a second day allocates nothing and holds the same bytes; a day in which
//! every app is replaced each hour holds no more than the apps running plus those ended within
//! the retention. The process's resident memory is printed and bounded too. Its own test
//! binary, because counting allocations needs a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant, UNIX_EPOCH};

use corral::cgroup::{CgroupEvents, CgroupSample, CpuStat, Limit, MemoryEvents, Pressure};
use corral::monitor::history::History;
use corral::monitor::{UnitInfo, UnitSnapshot};

/// Counts allocations made by the current thread, so the test harness's other threads do not
/// disturb the count.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// The tests take turns, so that each one's resident memory is its own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This process's resident memory (VmRSS), in KiB.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

const UNITS: usize = 300;
/// One sample every 30 s for 24 h: enough to wrap the 600-point ring several times and fill all
/// 1440 minutes, in a few seconds of a debug build.
const STEP: Duration = Duration::from_secs(30);
const DAY: u64 = 24 * 60 * 60;

fn snapshots() -> Vec<UnitSnapshot> {
    (0..UNITS)
        .map(|i| UnitSnapshot {
            info: UnitInfo::new(
                format!("app-corral-app{i}-{i:08x}.service"),
                &format!("App {i} [corral: browser]"),
                "active".to_owned(),
                "running".to_owned(),
                Some(format!(
                    "/user.slice/user-1000.slice/user@1000.service/app.slice/app-corral-app{i}-{i:08x}.service"
                )),
            )
            .into(),
            cgroup: Some(CgroupSample {
                memory_max: Some(Limit::Value(4 << 30)),
                memory_events: Some(MemoryEvents::default()),
                cpu_stat: Some(CpuStat::default()),
                memory_pressure: Some(Pressure::default()),
                events: Some(CgroupEvents::default()),
                ..CgroupSample::default()
            }),
            cpu_percent: Some(0.0),
        })
        .collect()
}

/// Advances every unit's counters and gauges in place, as a sampler would, without allocating.
fn tick(snapshots: &mut [UnitSnapshot], step: u64) {
    for (i, s) in snapshots.iter_mut().enumerate() {
        let Some(cg) = s.cgroup.as_mut() else {
            continue;
        };
        cg.memory_current = Some(((step * 7 + i as u64 * 13) % 4096) << 20);
        s.cpu_percent = Some(((step + i as u64) % 300) as f64);
        if let Some(events) = cg.memory_events.as_mut() {
            // Throttled for a minute in every three, so timeline spans open and close all day.
            if (step / 2).is_multiple_of(3) {
                events.high = Some(events.high.unwrap_or(0) + 5);
            }
        }
        if let Some(p) = cg.memory_pressure.as_mut() {
            p.some.avg10 = ((step + i as u64) % 100) as f64;
        }
    }
}

fn run_day(history: &mut History, snapshots: &mut [UnitSnapshot], day: u64) -> Duration {
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_040 + day * DAY);
    let steps = DAY / STEP.as_secs();
    let clock = Instant::now();
    for step in 0..steps {
        tick(snapshots, day * steps + step);
        history.record(snapshots, start + STEP * step as u32);
    }
    clock.elapsed()
}

#[test]
fn a_day_for_300_units_fills_the_rings_and_the_next_day_allocates_nothing() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut history = History::default();
    let mut snapshots = snapshots();

    let took = run_day(&mut history, &mut snapshots, 0);
    let footprint = history.footprint();
    let unit = &snapshots[0].info.unit.clone();
    assert_eq!(history.len(), UNITS);
    assert_eq!(history.recent(unit).map(|r| r.len()), Some(600));
    // 1439 finished minutes and the one in progress.
    assert_eq!(history.long(unit).map(|l| l.count()), Some(1440));
    let timeline = history.events(unit).map(|e| e.len()).unwrap_or(0);
    assert_eq!(
        timeline,
        history.limits().timeline_events,
        "timeline ring full"
    );

    let resident_after_one_day = resident_kib();
    let before = allocations();
    let took_second = run_day(&mut history, &mut snapshots, 1);
    let allocated = allocations() - before;
    let resident_after_two_days = resident_kib();
    assert_eq!(
        allocated, 0,
        "recording a second day allocated {allocated} times"
    );
    assert_eq!(history.footprint(), footprint, "footprint grew");
    // Now the long ring is full: 1440 finished minutes and the one in progress.
    assert_eq!(history.long(unit).map(|l| l.count()), Some(1441));

    let per_unit = footprint / UNITS;
    println!(
        "history footprint for {UNITS} units: {footprint} bytes ({:.1} MiB, {per_unit} bytes per unit); \
         a day of 30 s samples took {took:?}, the second {took_second:?}; the test process \
         held {resident_after_one_day} KiB after one day, {resident_after_two_days} KiB after two",
        footprint as f64 / (1024.0 * 1024.0)
    );
    assert!(
        resident_after_two_days <= resident_after_one_day + 1024,
        "resident memory grew from {resident_after_one_day} to {resident_after_two_days} KiB"
    );
    // 600 × 32 + 1441 × 32 + 64 timeline marks + strings: about 70 KB per unit.
    assert!(per_unit < 80_000, "{per_unit} bytes per unit");
}

#[test]
fn a_day_of_apps_replaced_every_hour_keeps_only_the_running_and_the_recently_ended() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut history = History::default();
    let mut snapshots = snapshots();
    let retention = history.limits().ended_retention;
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_040);
    let steps = DAY / STEP.as_secs();
    let mut most_units = 0;
    let mut most_bytes = 0;
    let mut generation = vec![0u64; UNITS];
    for step in 0..steps {
        let at = step * STEP.as_secs();
        // App i is replaced by a new unit every hour, at its own moment of the hour.
        for (i, s) in snapshots.iter_mut().enumerate() {
            let current = (at + i as u64 * 12) / 3600;
            if current != generation[i] {
                generation[i] = current;
                std::sync::Arc::make_mut(&mut s.info).unit =
                    format!("app-corral-app{i}-{current:08x}.service");
            }
        }
        tick(&mut snapshots, step);
        history.record(&snapshots, start + STEP * step as u32);
        most_units = most_units.max(history.len());
        most_bytes = most_bytes.max(history.footprint());
    }
    // 7200 units ran during the day; at most the running ones and those that ended within
    // the retention (a quarter of an hour's replacements, plus one step) are kept.
    let ended_within = UNITS as u64 * (retention.as_secs() + STEP.as_secs()) / 3600 + 1;
    let bound = UNITS + ended_within as usize;
    println!(
        "a day of hourly replacements: at most {most_units} units kept ({bound} allowed), \
         {most_bytes} bytes ({:.1} MiB); the test process holds {} KiB",
        most_bytes as f64 / (1024.0 * 1024.0),
        resident_kib()
    );
    assert!(most_units <= bound, "{most_units} units kept");
    assert!(most_bytes / most_units < 80_000);
}
