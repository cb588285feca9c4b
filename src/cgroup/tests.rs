//! Sampling and layout detection on fixture cgroup trees in a temporary directory.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

use super::*;

const UNIT: &str =
    "/user.slice/user-1000.slice/user@1000.service/app.slice/app-corral-firefox-1a2b.service";

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
    ("cgroup.controllers", "cpu memory pids\n"),
    ("cgroup.subtree_control", "\n"),
];

fn pressure(some: (f64, f64, f64, u64), full: (f64, f64, f64, u64)) -> Pressure {
    let line = |(avg10, avg60, avg300, total_usec)| PressureLine {
        avg10,
        avg60,
        avg300,
        total_usec,
    };
    Pressure {
        some: line(some),
        full: Some(line(full)),
    }
}

/// What `sample` returns for `UNIT_FILES`.
fn full_sample() -> CgroupSample {
    CgroupSample {
        memory_current: Some(734_003_200),
        memory_peak: Some(901_775_360),
        memory_high: Some(Limit::Value(3_221_225_472)),
        memory_max: Some(Limit::Value(4_294_967_296)),
        memory_low: Some(Limit::Value(0)),
        memory_swap_current: Some(1_048_576),
        memory_swap_max: Some(Limit::Max),
        memory_events: Some(MemoryEvents {
            low: Some(0),
            high: Some(12),
            max: Some(3),
            oom: Some(1),
            oom_kill: Some(1),
            oom_group_kill: Some(0),
        }),
        cpu_stat: Some(CpuStat {
            usage_usec: Some(8_542_118),
            user_usec: Some(6_012_380),
            system_usec: Some(2_529_738),
            nr_periods: Some(1540),
            nr_throttled: Some(37),
            throttled_usec: Some(912_345),
        }),
        cpu_max: Some(CpuMax {
            quota: Limit::Value(300_000),
            period_usec: 100_000,
        }),
        cpu_weight: Some(100),
        pids_current: Some(87),
        pids_max: Some(Limit::Max),
        memory_pressure: Some(pressure(
            (1.53, 0.87, 0.22, 3_108_457),
            (0.71, 0.40, 0.10, 1_456_234),
        )),
        cpu_pressure: Some(pressure((4.0, 2.0, 1.0, 500_000), (0.0, 0.0, 0.0, 0))),
        io_pressure: Some(pressure((0.0, 0.0, 0.0, 42), (0.0, 0.0, 0.0, 40))),
        events: Some(CgroupEvents {
            populated: Some(true),
            frozen: Some(false),
        }),
        freeze: Some(false),
    }
}

/// A v2 root holding one unit directory with every file of `UNIT_FILES`.
fn fixture() -> (TempDir, CgroupFs) {
    let root = tempfile::tempdir().unwrap();
    fs::write(
        root.path().join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    )
    .unwrap();
    write_unit(&root.path().join(UNIT.trim_start_matches('/')), UNIT_FILES);
    let cgroupfs = CgroupFs::new(root.path());
    (root, cgroupfs)
}

fn write_unit(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
}

fn unit_dir(cgroupfs: &CgroupFs) -> std::path::PathBuf {
    cgroupfs.path_of(UNIT)
}

#[test]
fn unit_path_appends_the_control_group_to_the_root() {
    let cgroupfs = CgroupFs::new("/fake/root");
    assert_eq!(cgroupfs.root(), Path::new("/fake/root"));
    assert_eq!(
        cgroupfs.unit("/user.slice/x.service").path(),
        Path::new("/fake/root/user.slice/x.service")
    );
    assert_eq!(cgroupfs.unit("/").path(), Path::new("/fake/root"));
    assert_eq!(CgroupFs::system().root(), Path::new(DEFAULT_ROOT));
}

#[test]
fn sample_reads_every_file() {
    let (_root, cgroupfs) = fixture();
    let mut unit = cgroupfs.unit(UNIT);
    assert_eq!(unit.sample().unwrap(), full_sample());
}

#[test]
fn sample_again_reads_changed_files() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let mut unit = cgroupfs.unit(UNIT);
    unit.sample().unwrap();

    // Overwrite in place, as the kernel does, so the open handles see the new content.
    write_unit(
        &dir,
        &[
            ("memory.current", "1000\n"),
            ("memory.max", "max\n"),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
            ("cgroup.freeze", "1\n"),
        ],
    );
    let sample = unit.sample().unwrap();
    assert_eq!(sample.memory_current, Some(1000));
    assert_eq!(sample.memory_max, Some(Limit::Max));
    assert_eq!(sample.events.and_then(|events| events.frozen), Some(true));
    assert_eq!(sample.freeze, Some(true));
    // A shorter text than before must not leave the tail of the old one in the buffer.
    write_unit(&dir, &[("memory.current", "7\n")]);
    assert_eq!(unit.memory_current().unwrap(), Some(7));
}

#[test]
fn missing_controller_files_are_none() {
    // A user manager without the cpu controller: no cpu.max or cpu.weight, and cpu.stat only
    // has the usage keys. No swap either.
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    for name in [
        "cpu.max",
        "cpu.weight",
        "memory.swap.current",
        "memory.swap.max",
    ] {
        fs::remove_file(dir.join(name)).unwrap();
    }
    fs::write(
        dir.join("cpu.stat"),
        "usage_usec 100\nuser_usec 60\nsystem_usec 40\n",
    )
    .unwrap();
    let mut unit = cgroupfs.unit(UNIT);
    let sample = unit.sample().unwrap();
    let expected = CgroupSample {
        cpu_max: None,
        cpu_weight: None,
        memory_swap_current: None,
        memory_swap_max: None,
        cpu_stat: Some(CpuStat {
            usage_usec: Some(100),
            user_usec: Some(60),
            system_usec: Some(40),
            ..CpuStat::default()
        }),
        ..full_sample()
    };
    assert_eq!(sample, expected);
    assert_eq!(unit.cpu_max().unwrap(), None);
}

#[test]
fn empty_directory_samples_to_all_none() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("empty.service")).unwrap();
    let mut unit = CgroupFs::new(root.path()).unit("/empty.service");
    assert_eq!(unit.sample().unwrap(), CgroupSample::default());
}

#[test]
fn absent_files_are_remembered_until_reopen() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    fs::remove_file(dir.join("cpu.max")).unwrap();
    let mut unit = cgroupfs.unit(UNIT);
    assert_eq!(unit.sample().unwrap().cpu_max, None);

    // The cpu controller gets enabled: the file appears, but is not looked for again...
    fs::write(dir.join("cpu.max"), "max 100000\n").unwrap();
    assert_eq!(unit.sample().unwrap().cpu_max, None);
    // ...until asked to.
    unit.reopen();
    let expected = CpuMax {
        quota: Limit::Max,
        period_usec: 100_000,
    };
    assert_eq!(unit.sample().unwrap().cpu_max, Some(expected));
}

#[test]
fn garbage_costs_only_its_own_field() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    write_unit(
        &dir,
        &[
            ("memory.max", "lots\n"),
            (
                "io.pressure",
                "some avg10=?? avg60=0.00 avg300=0.00 total=0\n",
            ),
            (
                "memory.events",
                "low 0\nhigh many\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
        ],
    );
    fs::write(dir.join("pids.current"), [0xff, 0xfe, b'\n']).unwrap();
    let mut unit = cgroupfs.unit(UNIT);
    let sample = unit.sample().unwrap();
    let mut expected = full_sample();
    expected.memory_max = None;
    expected.io_pressure = None;
    expected.pids_current = None;
    if let Some(events) = &mut expected.memory_events {
        events.high = None;
    }
    assert_eq!(sample, expected);
}

#[test]
fn targeted_readers_explain_garbage() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    fs::write(dir.join("memory.max"), "lots\n").unwrap();
    let mut unit = cgroupfs.unit(UNIT);
    match unit.memory_max() {
        Err(CgroupError::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!(path, dir.join("memory.max"));
            assert_eq!(line, 1);
            assert!(message.contains("\"lots\""), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let error = unit.memory_max().unwrap_err().to_string();
    assert!(
        error.starts_with(dir.join("memory.max:1: ").to_str().unwrap()),
        "{error}"
    );
}

#[test]
fn targeted_readers_read_one_value() {
    let (_root, cgroupfs) = fixture();
    let mut unit = cgroupfs.unit(UNIT);
    let sample = full_sample();
    assert_eq!(unit.memory_high().unwrap(), sample.memory_high);
    assert_eq!(unit.memory_max().unwrap(), sample.memory_max);
    assert_eq!(unit.memory_low().unwrap(), sample.memory_low);
    assert_eq!(unit.memory_swap_max().unwrap(), sample.memory_swap_max);
    assert_eq!(unit.cpu_max().unwrap(), sample.cpu_max);
    assert_eq!(unit.cpu_weight().unwrap(), sample.cpu_weight);
    assert_eq!(unit.pids_max().unwrap(), sample.pids_max);
    assert_eq!(unit.memory_events().unwrap(), sample.memory_events);
    assert_eq!(unit.events().unwrap(), sample.events);
    assert_eq!(unit.freeze().unwrap(), sample.freeze);
    assert_eq!(unit.cpu_pressure().unwrap(), sample.cpu_pressure);
    // Reading values one by one and then sampling share the same handles.
    assert_eq!(unit.sample().unwrap(), sample);
}

#[test]
fn removed_directory_between_samples_is_gone() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let mut unit = cgroupfs.unit(UNIT);
    unit.sample().unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(unit.sample(), Err(CgroupError::Gone(path)) if path == dir));
    assert!(matches!(unit.memory_current(), Err(CgroupError::Gone(_))));
}

#[test]
fn directory_recreated_under_the_same_name_is_gone() {
    // systemd reuses a unit's cgroup path when the unit starts again; the old handle must not
    // keep reading the dead cgroup's files as if nothing happened.
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let mut unit = cgroupfs.unit(UNIT);
    unit.sample().unwrap();
    fs::remove_dir_all(&dir).unwrap();
    write_unit(&dir, UNIT_FILES);
    assert!(matches!(unit.sample(), Err(CgroupError::Gone(_))));
    // A fresh handle reads the new cgroup.
    assert_eq!(cgroupfs.unit(UNIT).sample().unwrap(), full_sample());
}

#[test]
fn never_existing_directory_is_gone() {
    let (_root, cgroupfs) = fixture();
    let mut unit = cgroupfs.unit("/app.slice/nothing-here.service");
    assert!(matches!(unit.sample(), Err(CgroupError::Gone(_))));
    assert!(matches!(unit.pids_max(), Err(CgroupError::Gone(_))));
    let message = unit.sample().unwrap_err().to_string();
    assert!(message.contains("nothing-here.service"), "{message}");
}

#[test]
fn file_longer_than_the_buffer_is_read_whole() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    // Unknown keys first push the ones that matter past the first read's buffer.
    let mut text: String = (0..1000).map(|i| format!("future_key_{i} {i}\n")).collect();
    text.push_str("usage_usec 5\nnr_throttled 6\n");
    assert!(text.len() > 3 * 4096);
    fs::write(dir.join("cpu.stat"), &text).unwrap();
    let mut unit = cgroupfs.unit(UNIT);
    let stat = unit.sample().unwrap().cpu_stat.unwrap();
    assert_eq!(stat.usage_usec, Some(5));
    assert_eq!(stat.nr_throttled, Some(6));
    // The grown buffer serves later, shorter files correctly.
    assert_eq!(unit.sample().unwrap(), {
        let mut expected = full_sample();
        expected.cpu_stat = Some(stat);
        expected
    });
}

#[test]
fn controllers_and_subtree_control() {
    let (_root, cgroupfs) = fixture();
    let controllers = cgroupfs.controllers(UNIT).unwrap();
    assert_eq!(controllers.to_string(), "cpu memory pids");
    assert!(controllers.contains("memory"));
    assert!(!controllers.contains("io"));
    assert!(cgroupfs.subtree_control(UNIT).unwrap().is_empty());
    assert_eq!(cgroupfs.controllers("/").unwrap().len(), 8);
}

#[test]
fn controllers_of_missing_group_is_gone_and_of_missing_file_is_io() {
    let (_root, cgroupfs) = fixture();
    assert!(matches!(
        cgroupfs.controllers("/app.slice/gone.service"),
        Err(CgroupError::Gone(_))
    ));
    // The root has no cgroup.subtree_control in this fixture, but exists.
    match cgroupfs.subtree_control("/") {
        Err(CgroupError::Io { path, .. }) => {
            assert!(path.ends_with("cgroup.subtree_control"));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn layout_v2() {
    let (_root, cgroupfs) = fixture();
    assert_eq!(cgroupfs.layout(), Layout::V2);
}

#[test]
fn layout_hybrid() {
    let root = tempfile::tempdir().unwrap();
    write_unit(&root.path().join("unified"), &[("cgroup.controllers", "")]);
    write_unit(
        &root.path().join("memory"),
        &[("tasks", ""), ("cgroup.procs", "")],
    );
    assert_eq!(CgroupFs::new(root.path()).layout(), Layout::Hybrid);
}

#[test]
fn layout_v1() {
    let root = tempfile::tempdir().unwrap();
    write_unit(
        &root.path().join("memory"),
        &[("tasks", ""), ("cgroup.procs", "")],
    );
    write_unit(&root.path().join("systemd"), &[("tasks", "")]);
    assert_eq!(CgroupFs::new(root.path()).layout(), Layout::V1);
}

#[test]
fn layout_missing() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(CgroupFs::new(root.path()).layout(), Layout::Missing);
    assert_eq!(
        CgroupFs::new(root.path().join("does-not-exist")).layout(),
        Layout::Missing
    );
    // A directory with unrelated content is not a cgroup filesystem either.
    write_unit(&root.path().join("stuff"), &[("notes.txt", "hello")]);
    assert_eq!(CgroupFs::new(root.path()).layout(), Layout::Missing);
}

#[test]
fn values_are_serializable() {
    fn assert_serialize<T: serde::Serialize>() {}
    assert_serialize::<CgroupSample>();
    assert_serialize::<Controllers>();
    assert_serialize::<Layout>();
}

// A unit watched by a ChangeWatch: the settled files (limits, cgroup.freeze, memory.events,
// cgroup.events) are read again only when inotify reports a change. A write to a file in the
// fixture's directory raises IN_MODIFY there as on cgroupfs.

/// The files a sample reads, and those of them that change all the time.
const SAMPLED_FILES: usize = 18;
const CHANGING_FILES: usize = 8;

/// A watched handle on the fixture's unit, after its first sample.
fn watched_unit(cgroupfs: &CgroupFs, changes: &ChangeWatch) -> UnitCgroup {
    let mut unit = cgroupfs.unit(UNIT).watched_by(changes);
    changes.drain();
    assert_eq!(unit.sample().unwrap(), full_sample());
    assert_eq!(
        unit.reads(),
        SAMPLED_FILES,
        "the first sample reads everything"
    );
    unit
}

/// A sample after draining `changes`, and how many files it read.
fn sample_counting(unit: &mut UnitCgroup, changes: &ChangeWatch) -> (CgroupSample, usize) {
    changes.drain();
    let before = unit.reads();
    let sample = unit.sample().unwrap();
    (sample, unit.reads() - before)
}

/// Replaces a file's bytes in place through a shared mapping, a change inotify never reports
/// (inotify(7): "The inotify API does not report file accesses and modifications that may occur
/// because of mmap(2), msync(2), and munmap(2)"). The length stays the same.
pub(crate) fn change_unnoticed(path: &Path, text: &str) {
    use std::os::fd::AsRawFd;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    assert_eq!(file.metadata().unwrap().len(), text.len() as u64);
    // SAFETY: a fresh shared mapping of exactly the file's length, written within its bounds
    // and unmapped before returning.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            text.len(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(map, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(text.as_ptr(), map.cast::<u8>(), text.len());
        libc::munmap(map, text.len());
    }
}

/// Descriptors of this process that are inotify instances.
pub(crate) fn inotify_instances() -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:inotify")
        .count()
}

#[test]
fn inotify_events_come_with_their_watch_and_name() {
    use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("memory.max"), "max\n").unwrap();
    let fd = watch::new_inotify().unwrap();
    let wd = inotify::add_watch(&fd, dir.path(), WatchFlags::MODIFY | WatchFlags::ONLYDIR).unwrap();
    let mut seen = Vec::new();
    // Nothing yet: a read that would block is no error.
    watch::read_inotify_events(&fd, |w, mask, name| seen.push((w, mask, name.to_vec()))).unwrap();
    assert!(seen.is_empty());
    fs::write(dir.path().join("memory.max"), "1024\n").unwrap();
    watch::read_inotify_events(&fd, |w, mask, name| seen.push((w, mask, name.to_vec()))).unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|(w, mask, name)| *w == wd
            && mask.contains(ReadFlags::MODIFY)
            && name == b"memory.max"),
        "{seen:?}"
    );
}

#[test]
fn a_watched_unit_reads_only_the_changing_files_when_nothing_was_written() {
    let (_root, cgroupfs) = fixture();
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    for _ in 0..3 {
        let (sample, reads) = sample_counting(&mut unit, &changes);
        assert_eq!(sample, full_sample());
        assert_eq!(reads, CHANGING_FILES);
    }
}

#[test]
fn a_written_limit_or_event_is_seen_at_the_next_sample() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);

    write_unit(&dir, &[("memory.max", "max\n")]);
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.memory_max, Some(Limit::Max));
    assert_eq!(reads, CHANGING_FILES + 1);

    write_unit(
        &dir,
        &[
            ("cgroup.events", "populated 1\nfrozen 1\n"),
            ("cgroup.freeze", "1\n"),
            (
                "memory.events",
                "low 0\nhigh 13\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
        ],
    );
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.events.and_then(|e| e.frozen), Some(true));
    assert_eq!(sample.freeze, Some(true));
    assert_eq!(sample.memory_events.and_then(|e| e.high), Some(13));
    assert_eq!(sample.memory_max, Some(Limit::Max), "kept from before");
    assert_eq!(reads, CHANGING_FILES + 3);

    // cpu.weight also changes through cpu.weight.nice; other files change no settled value.
    write_unit(&dir, &[("cpu.weight", "50\n")]);
    write_unit(&dir, &[("cpu.weight.nice", "5\n"), ("cgroup.procs", "1\n")]);
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.cpu_weight, Some(50));
    assert_eq!(reads, CHANGING_FILES + 1);
}

#[test]
fn an_unreported_change_is_not_read_until_an_event_names_its_file() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    change_unnoticed(&dir.join("memory.max"), "1073741824\n");
    // Modifications of other files do not make it read.
    write_unit(&dir, &[("memory.current", "5\n"), ("memory.high", "max\n")]);
    let (sample, _) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.memory_current, Some(5));
    assert_eq!(sample.memory_high, Some(Limit::Max));
    assert_eq!(sample.memory_max, full_sample().memory_max);
    // A write event for memory.max does (here it writes the same bytes again).
    let text = fs::read_to_string(dir.join("memory.max")).unwrap();
    fs::write(dir.join("memory.max"), &text).unwrap();
    let (sample, _) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.memory_max, Some(Limit::Value(1 << 30)));

    // The same unnoticed change, on a handle without a watch, is read at once.
    let mut plain = cgroupfs.unit(UNIT);
    plain.sample().unwrap();
    change_unnoticed(&dir.join("memory.max"), "2147483648\n");
    assert_eq!(
        plain.sample().unwrap().memory_max,
        Some(Limit::Value(2 << 30))
    );
}

#[test]
fn targeted_readers_read_afresh_and_refresh_the_watched_values() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    change_unnoticed(&dir.join("memory.max"), "1073741824\n");
    assert_eq!(unit.memory_max().unwrap(), Some(Limit::Value(1 << 30)));
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.memory_max, Some(Limit::Value(1 << 30)));
    assert_eq!(reads, CHANGING_FILES);
}

#[test]
fn a_queue_overflow_makes_every_unit_read_everything() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    change_unnoticed(&dir.join("memory.max"), "1073741824\n");
    // More events than the queue holds (fs.inotify.max_queued_events); alternating between two
    // files, as identical events in a row are merged into one.
    let limit: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(16384);
    assert!(
        limit <= 1 << 20,
        "a queue too long to overflow in a test: {limit}"
    );
    let files = ["memory.current", "memory.peak"].map(|name| {
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join(name))
            .unwrap()
    });
    for i in 0..=limit {
        std::os::unix::fs::FileExt::write_at(&files[i % 2], b"1", 0).unwrap();
    }
    write_unit(&dir, &[("memory.current", "5\n"), ("memory.peak", "6\n")]);
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(reads, SAMPLED_FILES);
    assert_eq!(sample.memory_max, Some(Limit::Value(1 << 30)));
    // The watch still works afterwards.
    let (_, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(reads, CHANGING_FILES);
}

#[test]
fn without_a_watch_every_sample_reads_everything() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    // No watch left for this user (ENOSPC), or no inotify instance at all.
    let refusing = ChangeWatch::new();
    refusing.refuse_watches();
    for changes in [refusing, ChangeWatch::unavailable()] {
        let mut unit = watched_unit(&cgroupfs, &changes);
        change_unnoticed(&dir.join("memory.max"), "1073741824\n");
        let (sample, reads) = sample_counting(&mut unit, &changes);
        assert_eq!(reads, SAMPLED_FILES);
        assert_eq!(sample.memory_max, Some(Limit::Value(1 << 30)));
        change_unnoticed(&dir.join("memory.max"), "4294967296\n");
    }
}

#[test]
fn reopen_reads_everything_and_watches_again() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    change_unnoticed(&dir.join("memory.max"), "1073741824\n");
    unit.reopen();
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(reads, SAMPLED_FILES);
    assert_eq!(sample.memory_max, Some(Limit::Value(1 << 30)));
    write_unit(&dir, &[("pids.max", "64\n")]);
    let (sample, reads) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.pids_max, Some(Limit::Value(64)));
    assert_eq!(reads, CHANGING_FILES + 1);
    // So does a sample asked to.
    unit.read_everything_next();
    assert_eq!(sample_counting(&mut unit, &changes).1, SAMPLED_FILES);
}

#[test]
fn two_watched_handles_on_one_directory_each_see_changes() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut first = watched_unit(&cgroupfs, &changes);
    let mut second = watched_unit(&cgroupfs, &changes);
    write_unit(&dir, &[("memory.high", "max\n")]);
    changes.drain();
    assert_eq!(first.sample().unwrap().memory_high, Some(Limit::Max));
    assert_eq!(second.sample().unwrap().memory_high, Some(Limit::Max));
    // The directory's one watch outlives the first handle.
    drop(first);
    write_unit(&dir, &[("memory.high", "1024\n")]);
    let (sample, reads) = sample_counting(&mut second, &changes);
    assert_eq!(sample.memory_high, Some(Limit::Value(1024)));
    assert_eq!(reads, CHANGING_FILES + 1);
}

#[test]
fn a_watched_unit_still_notices_its_directory_removed() {
    let (_root, cgroupfs) = fixture();
    let dir = unit_dir(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = watched_unit(&cgroupfs, &changes);
    fs::remove_dir_all(&dir).unwrap();
    changes.drain();
    assert!(matches!(unit.sample(), Err(CgroupError::Gone(path)) if path == dir));
    // Re-created under the same name, as systemd does when a unit starts again.
    write_unit(&dir, UNIT_FILES);
    let mut unit = watched_unit(&cgroupfs, &changes);
    fs::remove_dir_all(&dir).unwrap();
    write_unit(&dir, UNIT_FILES);
    changes.drain();
    assert!(matches!(unit.sample(), Err(CgroupError::Gone(_))));
    // A fresh watched handle reads the new cgroup, and is told of its changes.
    let mut unit = watched_unit(&cgroupfs, &changes);
    write_unit(&dir, &[("memory.low", "1\n")]);
    let (sample, _) = sample_counting(&mut unit, &changes);
    assert_eq!(sample.memory_low, Some(Limit::Value(1)));
}

/// The files a sweep reads between the reads of its slow files (the pressure files and
/// memory.peak), when the unit ran since the last one.
const FAST_FILES: usize = CHANGING_FILES - 4;
/// The files a sweep reads then when the unit did not run: cpu.stat.
const IDLE_FILES: usize = 1;
/// The files a sweep reads when the slow files are due and the unit did not run since they
/// were last read: all the changing files but memory.peak (the fixture's cpu.pressure shows a
/// stall, whose averages decay without the unit running).
const IDLE_SLOW_FILES: usize = CHANGING_FILES - 1;
/// The same once cpu.pressure read all zero, PSI_PERIOD or more after the unit last ran.
const CALM_SLOW_FILES: usize = CHANGING_FILES - 2;
/// [`IDLE_SLOW_FILES`] without memory.pressure and io.pressure, once they read all zero and the
/// unit's parent showed no memory or io stall since.
const QUIET_SLOW_FILES: usize = IDLE_SLOW_FILES - 2;

/// The fixture's unit used `usage_usec` of CPU time so far.
fn ran_until(cgroupfs: &CgroupFs, usage_usec: u64) {
    fs::write(
        unit_dir(cgroupfs).join("cpu.stat"),
        format!("usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n"),
    )
    .unwrap();
}

/// A sweep's sample at `at`, after draining `changes`, and how many files it read.
fn sweep_counting(
    unit: &mut UnitCgroup,
    changes: &ChangeWatch,
    at: std::time::Instant,
) -> (CgroupSample, usize) {
    changes.drain();
    let before = unit.reads();
    let sample = unit.sample_at(at).unwrap();
    (sample, unit.reads() - before)
}

/// The fixture's files without memory pressure.
fn calm_unit(cgroupfs: &CgroupFs) {
    unit_memory_pressure(cgroupfs, 0.0, 3_108_457);
}

/// The fixture's memory.pressure with `some` at `avg10` and `total`, the rest calm.
fn unit_memory_pressure(cgroupfs: &CgroupFs, avg10: f64, total: u64) {
    fs::write(
        unit_dir(cgroupfs).join("memory.pressure"),
        format!(
            "some avg10={avg10:.2} avg60=0.00 avg300=0.00 total={total}\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=1456234\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_sweep_reads_the_pressure_files_and_the_peak_every_slow_period() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    let (first, reads) = sweep_counting(&mut unit, &changes, start);
    assert_eq!(reads, SAMPLED_FILES, "the first sample reads everything");
    let second = Duration::from_secs(1);
    let mut slow_reads = 0;
    for tick in 1..=10u32 {
        let (sample, reads) = sweep_counting(&mut unit, &changes, start + second * tick);
        // Between reads, the slow fields repeat their last values; an idle unit's others too.
        assert_eq!(sample, first);
        assert!(reads == IDLE_FILES || reads == IDLE_SLOW_FILES, "{reads}");
        slow_reads += usize::from(reads == IDLE_SLOW_FILES);
    }
    assert_eq!(slow_reads, 2, "every 5 s over 10 s");
    // A sample for a wakeup reads everything again.
    unit.read_everything_next();
    let (_, reads) = sweep_counting(&mut unit, &changes, start + second * 11);
    assert_eq!(reads, SAMPLED_FILES);
}

#[test]
fn between_its_reads_the_peak_is_at_least_the_memory_in_use() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    let (first, _) = sweep_counting(&mut unit, &changes, start);
    assert_eq!(first.memory_peak, Some(901_775_360));
    fs::write(unit_dir(&cgroupfs).join("memory.current"), "950000000\n").unwrap();
    ran_until(&cgroupfs, 9_000_000);
    let (sample, reads) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(1));
    assert_eq!(reads, FAST_FILES);
    assert_eq!(sample.memory_current, Some(950_000_000));
    assert_eq!(sample.memory_peak, Some(950_000_000));
    // And it never goes down again until the file is read.
    fs::write(unit_dir(&cgroupfs).join("memory.current"), "100\n").unwrap();
    ran_until(&cgroupfs, 9_500_000);
    let (sample, _) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(2));
    assert_eq!(sample.memory_peak, Some(950_000_000));
}

#[test]
fn under_memory_pressure_every_sweep_reads_the_pressure_files() {
    use std::time::{Duration, Instant};
    // The fixture's memory.pressure shows some avg10=1.53.
    let (_root, cgroupfs) = fixture();
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    sweep_counting(&mut unit, &changes, start);
    let (_, reads) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(1));
    assert_eq!(reads, IDLE_SLOW_FILES);
    // Once it reads zero, the slow pace resumes.
    calm_unit(&cgroupfs);
    let (sample, reads) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(2));
    assert_eq!(reads, IDLE_SLOW_FILES);
    assert_eq!(sample.memory_pressure.map(|p| p.some.avg10), Some(0.0));
    let (_, reads) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(3));
    assert_eq!(reads, IDLE_FILES);
}

/// The fixture's cpu.pressure without a stall.
fn calm_cpu(cgroupfs: &CgroupFs) {
    fs::write(
        unit_dir(cgroupfs).join("cpu.pressure"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    )
    .unwrap();
}

#[test]
fn an_idle_unit_reads_neither_its_peak_nor_a_calm_cpu_pressure() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    calm_cpu(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    let second = |n: u64| start + Duration::from_secs(n);
    let (first, _) = sweep_counting(&mut unit, &changes, start);
    // Files that would show a change if read: the sweeps must not read them.
    fs::write(unit_dir(&cgroupfs).join("memory.peak"), "999999999\n").unwrap();
    let reads: Vec<usize> = (1..=10)
        .map(|n| {
            let (sample, reads) = sweep_counting(&mut unit, &changes, second(n));
            assert_eq!(sample, first, "second {n}");
            reads
        })
        .collect();
    // At 5 s cpu.pressure is read once more: the first reading was taken as the unit ran,
    // before the kernel had folded that run's stalls into the averages. At 10 s it is not.
    let idle = IDLE_FILES;
    assert_eq!(
        reads,
        [
            idle,
            idle,
            idle,
            idle,
            IDLE_SLOW_FILES,
            idle,
            idle,
            idle,
            idle,
            CALM_SLOW_FILES
        ]
    );
    // Once it runs, the next slow read takes both again.
    ran_until(&cgroupfs, 9_000_000);
    let (_, reads) = sweep_counting(&mut unit, &changes, second(11));
    assert_eq!(reads, FAST_FILES);
    let reads: Vec<usize> = (12..=15)
        .map(|n| sweep_counting(&mut unit, &changes, second(n)).1)
        .collect();
    assert_eq!(reads, [IDLE_FILES, IDLE_FILES, IDLE_FILES, CHANGING_FILES]);
    let (sample, _) = sweep_counting(&mut unit, &changes, second(16));
    assert_eq!(sample.memory_peak, Some(999_999_999));
}

#[test]
fn a_calm_cpu_pressure_is_trusted_only_once_read_a_psi_period_after_the_unit_ran() {
    use std::time::{Duration, Instant};
    // The fixture's memory.pressure shows a stall: every sweep reads the slow files.
    let (_root, cgroupfs) = fixture();
    calm_cpu(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    let second = |n: u64| start + Duration::from_secs(n);
    sweep_counting(&mut unit, &changes, start);
    let mut reads = Vec::new();
    for n in 1..=6 {
        if n == 4 {
            ran_until(&cgroupfs, 9_000_000);
        }
        reads.push(sweep_counting(&mut unit, &changes, second(n)).1);
    }
    assert_eq!(
        reads,
        [
            // 1 s after it ran: cpu.pressure is read, and not trusted yet.
            IDLE_SLOW_FILES,
            // 2 s after: read, and trusted from now on.
            IDLE_SLOW_FILES,
            CALM_SLOW_FILES,
            // It ran: everything.
            CHANGING_FILES,
            IDLE_SLOW_FILES,
            IDLE_SLOW_FILES,
        ]
    );
    let (_, reads) = sweep_counting(&mut unit, &changes, second(7));
    assert_eq!(reads, CALM_SLOW_FILES);
}

#[test]
fn a_sweep_reads_what_only_running_tasks_change_when_the_unit_ran() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    let changes = ChangeWatch::new();
    let mut unit = cgroupfs.unit(UNIT).watched_by(&changes);
    let start = Instant::now();
    let second = |n: u64| start + Duration::from_secs(n);
    let (first, _) = sweep_counting(&mut unit, &changes, start);
    // Idle: cpu.stat alone, and memory.current as last read even though the file changed
    // (reclaim can shrink an idle app).
    fs::write(unit_dir(&cgroupfs).join("memory.current"), "500000000\n").unwrap();
    let (sample, reads) = sweep_counting(&mut unit, &changes, second(1));
    assert_eq!(reads, IDLE_FILES);
    assert_eq!(sample.memory_current, first.memory_current);
    // It ran: memory, swap and tasks are read again, with the CPU time.
    fs::write(unit_dir(&cgroupfs).join("pids.current"), "3\n").unwrap();
    ran_until(&cgroupfs, 9_000_000);
    let (sample, reads) = sweep_counting(&mut unit, &changes, second(2));
    assert_eq!(reads, FAST_FILES);
    assert_eq!(sample.memory_current, Some(500_000_000));
    assert_eq!(sample.pids_current, Some(3));
    assert_eq!(sample.cpu_stat.and_then(|c| c.usage_usec), Some(9_000_000));
    // Idle again; a change from outside shows with the slow files at the latest.
    fs::write(unit_dir(&cgroupfs).join("memory.current"), "400000000\n").unwrap();
    let reads: Vec<(Option<u64>, usize)> = (3..=7)
        .map(|n| {
            let (sample, reads) = sweep_counting(&mut unit, &changes, second(n));
            (sample.memory_current, reads)
        })
        .collect();
    assert_eq!(
        reads,
        [
            (Some(500_000_000), IDLE_FILES),
            (Some(500_000_000), IDLE_FILES),
            (Some(400_000_000), CHANGING_FILES),
            (Some(400_000_000), IDLE_FILES),
            (Some(400_000_000), IDLE_FILES),
        ]
    );
}

#[test]
fn the_units_of_a_sweep_read_their_slow_files_in_different_sweeps() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    let changes = ChangeWatch::new();
    let start = Instant::now();
    let mut due_at = Vec::new();
    for phase in 0..5u32 {
        let mut unit = cgroupfs
            .unit(UNIT)
            .watched_by(&changes)
            .with_slow_phase(Duration::from_secs(phase.into()));
        sweep_counting(&mut unit, &changes, start);
        let tick = (1..=5u32)
            .find(|&t| {
                sweep_counting(&mut unit, &changes, start + Duration::from_secs(t.into())).1
                    > IDLE_FILES
            })
            .unwrap();
        due_at.push(tick);
    }
    assert_eq!(due_at, [5, 4, 3, 2, 1]);
}

#[test]
fn every_file_has_a_pace() {
    let paces = file_paces();
    assert_eq!(paces.len(), SAMPLED_FILES);
    let count = |pace| paces.iter().filter(|(_, p)| *p == pace).count();
    assert_eq!(count(FilePace::EverySweep), IDLE_FILES);
    assert_eq!(count(FilePace::WhileRunning), FAST_FILES - IDLE_FILES);
    assert_eq!(
        count(FilePace::SlowUnlessParentQuiet) + count(FilePace::SlowWhileRunning),
        CHANGING_FILES - FAST_FILES
    );
    assert_eq!(
        count(FilePace::SlowUnlessParentQuiet),
        IDLE_SLOW_FILES - QUIET_SLOW_FILES
    );
    assert_eq!(
        count(FilePace::SlowWhileRunning),
        CHANGING_FILES - CALM_SLOW_FILES
    );
    assert!(paces.contains(&("memory.peak", FilePace::SlowWhileRunning)));
    assert!(paces.contains(&("cpu.pressure", FilePace::SlowWhileRunning)));
    assert!(paces.contains(&("cpu.stat", FilePace::EverySweep)));
    assert!(paces.contains(&("memory.current", FilePace::WhileRunning)));
    assert!(paces.contains(&("memory.pressure", FilePace::SlowUnlessParentQuiet)));
    assert!(paces.contains(&("io.pressure", FilePace::SlowUnlessParentQuiet)));
    assert!(paces.contains(&("memory.events", FilePace::OnChange)));
}

use super::stalls::{self, StallEpochs, reads as parent_reads};

/// The cgroup above the fixture's unit (app.slice), with pressure files whose totals are
/// `memory` and `io` (some and full alike).
fn parent_stalled(cgroupfs: &CgroupFs, memory: u64, io: u64) {
    let parent = unit_dir(cgroupfs).parent().unwrap().to_owned();
    let text = |total: u64| {
        format!(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n"
        )
    };
    fs::write(parent.join("memory.pressure"), text(memory)).unwrap();
    fs::write(parent.join("io.pressure"), text(io)).unwrap();
}

/// The fixture's unit, watched, beside its parent's stall totals.
fn unit_beside_parent(cgroupfs: &CgroupFs, changes: &ChangeWatch) -> (UnitCgroup, SharedParent) {
    let parent_path = UNIT.rsplit_once('/').unwrap().0;
    let parent = ParentStalls::shared(cgroupfs.unit(parent_path));
    let unit = cgroupfs
        .unit(UNIT)
        .watched_by(changes)
        .beside(parent.clone());
    (unit, parent)
}

#[test]
fn a_quiet_parent_spares_its_units_their_memory_and_io_pressure() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let changes = ChangeWatch::new();
    let (mut unit, _parent) = unit_beside_parent(&cgroupfs, &changes);
    let start = Instant::now();
    let second = |n: u64| start + Duration::from_secs(n);
    let (first, _) = sweep_counting(&mut unit, &changes, start);
    let slow_reads = |unit: &mut UnitCgroup, from: u64| -> Vec<usize> {
        (from..from + 5)
            .map(|n| sweep_counting(unit, &changes, second(n)).1)
            .filter(|&reads| reads > IDLE_FILES)
            .collect()
    };
    // At 5 s both files read what they read at the start: they are all zero with nothing left
    // to fold, so from then on they hold while the parent's totals do.
    assert_eq!(slow_reads(&mut unit, 1), [IDLE_SLOW_FILES]);
    // What a read would show now: not read while the parent shows no stall.
    unit_memory_pressure(&cgroupfs, 9.0, 4_000_000);
    assert_eq!(slow_reads(&mut unit, 6), [QUIET_SLOW_FILES]);
    let (sample, _) = sweep_counting(&mut unit, &changes, second(11));
    assert_eq!(sample, first);
    // A memory stall below the parent: memory.pressure is read at the next slow read, and
    // io.pressure still is not.
    parent_stalled(&cgroupfs, 6_000, 7_000);
    let reads: Vec<usize> = (12..=15)
        .map(|n| sweep_counting(&mut unit, &changes, second(n)).1)
        .collect();
    assert_eq!(
        reads,
        [IDLE_FILES, IDLE_FILES, IDLE_FILES, QUIET_SLOW_FILES + 1]
    );
    let (sample, reads) = sweep_counting(&mut unit, &changes, second(16));
    assert_eq!(sample.memory_pressure.map(|p| p.some.avg10), Some(9.0));
    // Memory is under pressure now: every sweep reads the slow files.
    assert_eq!(reads, QUIET_SLOW_FILES + 1);
}

#[test]
fn an_all_zero_pressure_holds_only_once_its_totals_held_a_psi_period() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let changes = ChangeWatch::new();
    let (mut unit, _parent) = unit_beside_parent(&cgroupfs, &changes);
    let start = Instant::now();
    let second = |n: u64| start + Duration::from_secs(n);
    sweep_counting(&mut unit, &changes, start);
    // All zero, but the total moved since the last reading: a stall the averages may not hold
    // yet. The reading after is read again.
    let all_zero = |total: u64| {
        format!(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        )
    };
    let slow_reads = |unit: &mut UnitCgroup, seconds: std::ops::RangeInclusive<u64>| {
        seconds
            .map(|n| sweep_counting(unit, &changes, second(n)).1)
            .filter(|&reads| reads > IDLE_FILES)
            .collect::<Vec<usize>>()
    };
    // The fixture's stall makes the first slow read come at 1 s, too soon after the last one
    // to vouch for anything. At 6 s the total moved since.
    fs::write(
        unit_dir(&cgroupfs).join("memory.pressure"),
        all_zero(3_200_000),
    )
    .unwrap();
    assert_eq!(slow_reads(&mut unit, 1..=1), [IDLE_SLOW_FILES]);
    fs::write(
        unit_dir(&cgroupfs).join("memory.pressure"),
        all_zero(3_300_000),
    )
    .unwrap();
    assert_eq!(slow_reads(&mut unit, 2..=6), [IDLE_SLOW_FILES]);
    // At 11 s it held: from 16 s memory.pressure is no longer read. (io.pressure, all zero
    // from the start, held at 6 s, and is not read from 11 s.)
    assert_eq!(
        slow_reads(&mut unit, 7..=16),
        [IDLE_SLOW_FILES - 1, QUIET_SLOW_FILES]
    );
}

#[test]
fn without_a_readable_parent_every_slow_read_takes_both_files() {
    use std::time::{Duration, Instant};
    // No pressure files in the parent: nothing vouches for the unit's.
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    let changes = ChangeWatch::new();
    let (mut unit, _parent) = unit_beside_parent(&cgroupfs, &changes);
    let start = Instant::now();
    sweep_counting(&mut unit, &changes, start);
    let reads: Vec<usize> = (1..=15)
        .map(|n| sweep_counting(&mut unit, &changes, start + Duration::from_secs(n)).1)
        .filter(|&reads| reads > IDLE_FILES)
        .collect();
    assert_eq!(reads, [IDLE_SLOW_FILES; 3]);
}

#[test]
fn the_units_beside_one_parent_read_it_once_per_sweep() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let changes = ChangeWatch::new();
    let (mut first, parent) = unit_beside_parent(&cgroupfs, &changes);
    let mut second = cgroupfs
        .unit(UNIT)
        .watched_by(&changes)
        .beside(parent.clone());
    let start = Instant::now();
    for n in 0..3 {
        let at = start + Duration::from_secs(n);
        sweep_counting(&mut first, &changes, at);
        sweep_counting(&mut second, &changes, at);
    }
    // Both units read everything at the start, which does not ask the parent, and under the
    // fixture's memory pressure their slow files at every sweep after: memory.pressure and
    // io.pressure of the parent, once each per sweep.
    assert_eq!(parent_reads(&parent), 2 * 2);
}

#[test]
fn a_parent_removed_and_made_again_is_read_at_its_path() {
    use std::time::{Duration, Instant};
    let (root, cgroupfs) = fixture();
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let parent_path = UNIT.rsplit_once('/').unwrap().0;
    let parent = ParentStalls::shared(cgroupfs.unit(parent_path));
    let start = Instant::now();
    let epochs = |n: u64| stalls::lock(&parent).epochs_at(start + Duration::from_secs(n));
    let before = epochs(0);
    assert!(before.memory.is_some() && before.io.is_some());
    assert_eq!(epochs(1), before, "the same totals");
    // systemd removes the slice with its last unit and makes it again for the next one.
    let dir = cgroupfs.path_of(parent_path);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        epochs(2),
        StallEpochs::default(),
        "a parent gone vouches for nothing"
    );
    fs::create_dir_all(root.path().join(UNIT.trim_start_matches('/'))).unwrap();
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let again = epochs(3);
    assert!(again.memory.is_some() && again.io.is_some());
    assert_ne!(again, before, "new epochs: nothing carries over");
    assert_eq!(epochs(4), again);
}

#[test]
fn a_wakeup_reads_the_pressure_a_quiet_parent_would_skip() {
    use std::time::{Duration, Instant};
    let (_root, cgroupfs) = fixture();
    calm_unit(&cgroupfs);
    parent_stalled(&cgroupfs, 5_000, 7_000);
    let changes = ChangeWatch::new();
    let (mut unit, _parent) = unit_beside_parent(&cgroupfs, &changes);
    let start = Instant::now();
    for n in 0..=10 {
        sweep_counting(&mut unit, &changes, start + Duration::from_secs(n));
    }
    unit_memory_pressure(&cgroupfs, 9.0, 4_000_000);
    // The parent shows no stall yet, but a kernel wakeup reads every file.
    unit.read_everything_next();
    let (sample, reads) = sweep_counting(&mut unit, &changes, start + Duration::from_secs(11));
    assert_eq!(reads, SAMPLED_FILES);
    assert_eq!(sample.memory_pressure.map(|p| p.some.avg10), Some(9.0));
}
