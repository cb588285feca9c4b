//! One unit's cgroup directory, sampled repeatedly through file handles kept open between samples.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::CgroupError;
use super::parse::{
    CgroupEvents, CpuMax, CpuStat, Limit, MemoryEvents, ParseError, Pressure, PressureLine,
    parse_bool, parse_cgroup_events, parse_cpu_max, parse_cpu_stat, parse_limit,
    parse_memory_events, parse_pressure, parse_u64,
};
use super::stalls::{self, SharedParent, StallEpochs, StallTotals};
use super::watch::{ChangeWatch, UnitWatch};

/// Everything Corral shows about one unit, read in one pass. A field is `None` when its file or
/// key is missing (controller not enabled, older kernel) or holds text that does not parse.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CgroupSample {
    pub memory_current: Option<u64>,
    /// Since Linux 5.19.
    pub memory_peak: Option<u64>,
    pub memory_high: Option<Limit>,
    pub memory_max: Option<Limit>,
    /// A limit rather than a number: memory.low may be set to "max".
    pub memory_low: Option<Limit>,
    pub memory_swap_current: Option<u64>,
    pub memory_swap_max: Option<Limit>,
    pub memory_events: Option<MemoryEvents>,
    pub cpu_stat: Option<CpuStat>,
    pub cpu_max: Option<CpuMax>,
    pub cpu_weight: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_max: Option<Limit>,
    pub memory_pressure: Option<Pressure>,
    pub cpu_pressure: Option<Pressure>,
    pub io_pressure: Option<Pressure>,
    pub events: Option<CgroupEvents>,
    pub freeze: Option<bool>,
}

/// The files a sample reads, as indexes into `UnitCgroup::files`.
#[derive(Debug, Clone, Copy)]
enum Knob {
    MemoryCurrent,
    MemoryPeak,
    MemoryHigh,
    MemoryMax,
    MemoryLow,
    MemorySwapCurrent,
    MemorySwapMax,
    MemoryEvents,
    CpuStat,
    CpuMax,
    CpuWeight,
    PidsCurrent,
    PidsMax,
    MemoryPressure,
    CpuPressure,
    IoPressure,
    CgroupEvents,
    CgroupFreeze,
}

const KNOB_COUNT: usize = Knob::CgroupFreeze as usize + 1;

/// Every knob, in the order of `Knob`.
const KNOBS: [Knob; KNOB_COUNT] = [
    Knob::MemoryCurrent,
    Knob::MemoryPeak,
    Knob::MemoryHigh,
    Knob::MemoryMax,
    Knob::MemoryLow,
    Knob::MemorySwapCurrent,
    Knob::MemorySwapMax,
    Knob::MemoryEvents,
    Knob::CpuStat,
    Knob::CpuMax,
    Knob::CpuWeight,
    Knob::PidsCurrent,
    Knob::PidsMax,
    Knob::MemoryPressure,
    Knob::CpuPressure,
    Knob::IoPressure,
    Knob::CgroupEvents,
    Knob::CgroupFreeze,
];

/// The files that change only when written (limits, cgroup.freeze) or when the kernel says so
/// with a file modified event (memory.events, cgroup.events): a watched unit re-reads them only
/// when inotify reported a change (see [`super::watch`]). The others change all the time.
const SETTLED: [Knob; 10] = [
    Knob::MemoryHigh,
    Knob::MemoryMax,
    Knob::MemoryLow,
    Knob::MemorySwapMax,
    Knob::MemoryEvents,
    Knob::CpuMax,
    Knob::CpuWeight,
    Knob::PidsMax,
    Knob::CgroupEvents,
    Knob::CgroupFreeze,
];

/// The files that change all the time but matter at a slower pace, read by
/// [`UnitCgroup::sample_at`] only every [`SLOW_EVERY`]: the pressure files, whose figures are
/// averages over 10 s and more that the kernel itself recomputes only every 2 s
/// (Documentation/accounting/psi.rst; kernel/sched/psi.c, PSI_FREQ), and memory.peak, which
/// only grows, so that between its reads memory.current bounds it from below. They were half
/// the cost of a sweep's reads (BENCHMARKS.md, "Where a sweep's time goes"). Those of them in
/// [`SLOW_WHILE_RUNNING`] are read then only if the unit ran.
const SLOW: [Knob; 4] = [
    Knob::MemoryPeak,
    Knob::MemoryPressure,
    Knob::CpuPressure,
    Knob::IoPressure,
];

/// The [`SLOW`] files that cannot change while the unit's tasks do not run, skipped when their
/// slow read comes and the unit has not run since they were last read. memory.peak rises only
/// with memory.current, which only running tasks grow (see [`WHILE_RUNNING`]). cpu.pressure
/// counts the time the unit's tasks wait for a CPU: a unit that did not run at all in a slow
/// period had no runnable task in it, short of one left without any CPU for seconds. Its
/// averages still decay after a stall, so it is skipped only while its last reading was
/// all zero, and was taken at least [`PSI_PERIOD`] after the unit last ran, when the kernel
/// had folded any stall of that run into them. memory.pressure and io.pressure have no such
/// rule: a task waiting for swap-in or for a disk stalls without running. They have their
/// parent's instead (see [`QuietFile`]).
const SLOW_WHILE_RUNNING: [Knob; 2] = [Knob::MemoryPeak, Knob::CpuPressure];

/// How often the kernel recomputes a pressure file's averages (kernel/sched/psi.c, PSI_FREQ).
const PSI_PERIOD: Duration = Duration::from_secs(2);

/// Whether a pressure file showed no stall in any of its averages.
fn all_zero(pressure: &Pressure) -> bool {
    let zero = |line: &PressureLine| line.avg10 == 0.0 && line.avg60 == 0.0 && line.avg300 == 0.0;
    zero(&pressure.some) && pressure.full.as_ref().is_none_or(zero)
}

/// What vouches for the last reading of memory.pressure or io.pressure, the other two [`SLOW`]
/// files. Their slow read is skipped when the unit's parent cgroup showed no stall on their
/// resource since that reading, if it was all zero and had nothing left to fold into its
/// averages: its totals were those of a reading taken [`PSI_PERIOD`] or more before (see
/// [`super::stalls`]). The parent is read once per sweep for all its children, so while nothing
/// below it stalls on memory or io, which is most of the time on a desktop that is not short of
/// memory, its units read neither file.
#[derive(Debug, Clone, Copy, Default)]
struct QuietFile {
    /// The sweep it was last read at, and the stall totals it read then.
    read_at: Option<Instant>,
    totals: Option<StallTotals>,
    /// The parent's stall epoch when that reading was all zero with nothing left to fold into
    /// its averages: while the parent's epoch is the same, the file still reads the same.
    parent_epoch: Option<u64>,
}

/// Which of the files that change all the time a sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// All of them: a first sample, or one asked to read everything.
    Everything,
    /// The [`SLOW`] files are due, with the [`WHILE_RUNNING`] ones.
    Slow,
    /// cpu.stat, and the [`WHILE_RUNNING`] files if the unit ran.
    Fast,
}

/// The files that change all the time, but only while the unit's own tasks run, read by
/// [`UnitCgroup::sample_at`] only when cpu.stat (read at every sample) shows that the unit ran
/// since the last sample, and with the [`SLOW`] files in any case. A task grows memory.current
/// or memory.swap.current by faulting pages in, and pids.current by forking: all work done in
/// its own context, which its cgroup's usage_usec counts to the microsecond. What changes them
/// from outside (reclaim shrinking an idle app, a process moved in) waits at most
/// [`SLOW_EVERY`]. Most apps on a desktop sit idle most seconds, so most units cost a sweep one
/// read. An alert does not hang on these reads: the kernel wakes the monitor for memory.events
/// and pressure, and a unit near its limit is sampled whole (see `monitor::service`).
const WHILE_RUNNING: [Knob; 3] = [
    Knob::MemoryCurrent,
    Knob::MemorySwapCurrent,
    Knob::PidsCurrent,
];

/// How often a sweep ([`UnitCgroup::sample_at`] on a watched unit) reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FilePace {
    /// At every sample.
    EverySweep,
    /// At every sample after which the unit's tasks ran (its cpu.stat usage grew), and every
    /// [`SLOW_EVERY`].
    WhileRunning,
    /// Every [`SLOW_EVERY`] (every sample while memory is under pressure), if the unit ran
    /// since the file was last read (or, for cpu.pressure, its averages were not all zero then).
    SlowWhileRunning,
    /// Every [`SLOW_EVERY`] (every sample while memory is under pressure), unless its last
    /// reading was all zero and the parent cgroup's stall totals did not move since.
    SlowUnlessParentQuiet,
    /// When inotify reported that it was written, or that the kernel changed it.
    OnChange,
}

/// Every file a sample reads, with how often a sweep reads it: for the benchmark's report.
pub fn file_paces() -> Vec<(&'static str, FilePace)> {
    (0..KNOB_COUNT)
        .map(|i| {
            let knob = KNOBS[i];
            let pace = if SETTLED_KNOBS & knob.bit() != 0 {
                FilePace::OnChange
            } else if SLOW_WHILE_RUNNING.iter().any(|k| k.bit() == knob.bit()) {
                FilePace::SlowWhileRunning
            } else if SLOW.iter().any(|slow| slow.bit() == knob.bit()) {
                FilePace::SlowUnlessParentQuiet
            } else if WHILE_RUNNING.iter().any(|k| k.bit() == knob.bit()) {
                FilePace::WhileRunning
            } else {
                FilePace::EverySweep
            };
            (knob.file_name(), pace)
        })
        .collect()
}

/// How often [`UnitCgroup::sample_at`] reads the [`SLOW`] files of a unit whose memory is not
/// under pressure: every fifth sweep at the default refresh interval of 1 s.
pub const SLOW_EVERY: Duration = Duration::from_secs(5);

/// A sweep taken this much before a unit's slow files are due still reads them: ticks come a
/// little early or late, and a due time missed by a hair would cost a whole tick more.
const SLOW_SLACK: Duration = Duration::from_millis(250);

/// [`SETTLED`] as a bit set.
pub(super) const SETTLED_KNOBS: u32 = {
    let mut bits = 0;
    let mut i = 0;
    while i < SETTLED.len() {
        bits |= SETTLED[i].bit();
        i += 1;
    }
    bits
};

/// The settled knobs whose value a modification of the file `name` in a unit's directory may
/// have changed.
pub(super) fn settled_knobs_of_file(name: &[u8]) -> u32 {
    // Writing cpu.weight.nice sets cpu.weight (cgroup-v2.rst, "cpu.weight.nice").
    if name == b"cpu.weight.nice" {
        return Knob::CpuWeight.bit();
    }
    SETTLED
        .iter()
        .filter(|knob| knob.file_name().as_bytes() == name)
        .fold(0, |bits, knob| bits | knob.bit())
}

impl Knob {
    const fn bit(self) -> u32 {
        1 << self as u32
    }

    fn file_name(self) -> &'static str {
        match self {
            Knob::MemoryCurrent => "memory.current",
            Knob::MemoryPeak => "memory.peak",
            Knob::MemoryHigh => "memory.high",
            Knob::MemoryMax => "memory.max",
            Knob::MemoryLow => "memory.low",
            Knob::MemorySwapCurrent => "memory.swap.current",
            Knob::MemorySwapMax => "memory.swap.max",
            Knob::MemoryEvents => "memory.events",
            Knob::CpuStat => "cpu.stat",
            Knob::CpuMax => "cpu.max",
            Knob::CpuWeight => "cpu.weight",
            Knob::PidsCurrent => "pids.current",
            Knob::PidsMax => "pids.max",
            Knob::MemoryPressure => "memory.pressure",
            Knob::CpuPressure => "cpu.pressure",
            Knob::IoPressure => "io.pressure",
            Knob::CgroupEvents => "cgroup.events",
            Knob::CgroupFreeze => "cgroup.freeze",
        }
    }
}

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Unopened,
    /// The file did not exist when first opened. Remembered so that a cgroup without, say, the
    /// cpu controller costs no failed open() per sample; `reopen` forgets it.
    Absent,
    Open(File),
}

/// Linux's ENODEV. kernfs answers reads on files of a removed cgroup with it, and std has no
/// `io::ErrorKind` for it.
const ENODEV: i32 = 19;

fn is_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(ENODEV)
}

/// statfs(2)'s f_type of the cgroup v2 filesystem (linux/magic.h).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

fn is_cgroupfs(dir: &File) -> bool {
    // f_type is an i64 here, an i32 on some architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::fstatfs(dir).is_ok_and(|stat| stat.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

/// Sizes in cgroup files here are a few hundred bytes at most; a page covers them and is what
/// seq_file fills per read anyway.
const INITIAL_BUFFER: usize = 4096;

/// A unit's cgroup directory, e.g. /sys/fs/cgroup/user.slice/.../app.slice/x.service.
///
/// Files are opened on first use and kept open: re-reading an open kernfs file at offset 0 with
/// pread(2) makes seq_file regenerate its content (fs/seq_file.c resets its iterator on a read
/// at position 0), so each sample costs one syscall per file instead of open+read+close, and no
/// path lookup through the cgroup tree. All reads share one buffer owned by this struct.
///
/// [`sample`](UnitCgroup::sample) reads everything and turns every problem but a removed
/// directory into `None`. A unit [`watched_by`](UnitCgroup::watched_by) a [`ChangeWatch`] reads
/// the settled files (limits, cgroup.freeze, memory.events, cgroup.events) only when inotify
/// reported a change to them, and reuses their last values otherwise: they are most of the
/// files, and rarely change. The one-value readers ([`memory_max`](UnitCgroup::memory_max) and
/// its siblings, one per sample field) always read their file, and say why a value is unknown,
/// which matters when checking that a limit took: `Ok(None)` means the file does not exist
/// (the controller is not enabled), `Err(Parse)` that it holds garbage, `Err(Io)` that it could
/// not be read.
#[derive(Debug)]
pub struct UnitCgroup {
    path: PathBuf,
    /// Held to notice the directory's removal on any filesystem (see `check_alive`).
    dir: Option<File>,
    /// Whether the directory is on cgroupfs, where reads notice a removal by themselves.
    on_cgroupfs: bool,
    files: [Slot; KNOB_COUNT],
    buf: Vec<u8>,
    /// Set by `watched_by`: which settled files changed.
    watch: Option<UnitWatch>,
    /// The settled files' values as last read; only those not in `stale` are current.
    settled: CgroupSample,
    /// Settled knobs (`Knob::bit`) to read at the next sample.
    stale: u32,
    /// When `sample_at` reads the [`SLOW`] files next; `None`: at the next sample.
    slow_due: Option<Instant>,
    /// cpu.stat's usage_usec at the last sample: unchanged, the [`WHILE_RUNNING`] files are.
    last_usage: Option<u64>,
    /// Where in [`SLOW_EVERY`] this unit's slow reads fall, so that the units of a sweep do not
    /// all read theirs in the same sweep.
    slow_phase: Duration,
    /// When a sample last saw cpu.stat's usage grow (or could not read it): the unit ran
    /// between the sample before and then.
    last_ran: Option<Instant>,
    /// cpu.stat's usage when memory.peak was last read (see [`SLOW_WHILE_RUNNING`]).
    usage_at_peak: Option<u64>,
    /// cpu.stat's usage when cpu.pressure was last read, if that reading was all zero and
    /// taken [`PSI_PERIOD`] or more after the unit last ran: until the unit runs again, it
    /// stays all zero (see [`SLOW_WHILE_RUNNING`]).
    usage_at_calm_cpu: Option<u64>,
    /// The parent cgroup's stall totals, shared with its other children (see [`UnitCgroup::beside`]).
    parent: Option<SharedParent>,
    /// What vouches for memory.pressure's and io.pressure's last readings ([`QuietFile`]).
    memory_quiet: QuietFile,
    io_quiet: QuietFile,
    /// Files read so far, to show which ones a sample reads.
    #[cfg(test)]
    reads: usize,
}

impl UnitCgroup {
    /// A handle on the cgroup directory at `path`. Nothing is opened until the first read.
    pub fn new(path: impl Into<PathBuf>) -> UnitCgroup {
        UnitCgroup {
            path: path.into(),
            dir: None,
            on_cgroupfs: false,
            files: Default::default(),
            buf: Vec::new(),
            watch: None,
            settled: CgroupSample::default(),
            stale: SETTLED_KNOBS,
            slow_due: None,
            last_usage: None,
            slow_phase: Duration::ZERO,
            last_ran: None,
            usage_at_peak: None,
            usage_at_calm_cpu: None,
            parent: None,
            memory_quiet: QuietFile::default(),
            io_quiet: QuietFile::default(),
            #[cfg(test)]
            reads: 0,
        }
    }

    /// Spreads the reads of [`sample_at`](UnitCgroup::sample_at)'s slow files over a sweep's
    /// units: this unit's second read comes `SLOW_EVERY - phase` after its first, then every
    /// [`SLOW_EVERY`]. The sampler gives each unit a different phase.
    pub fn with_slow_phase(mut self, phase: Duration) -> UnitCgroup {
        self.slow_phase = phase.min(SLOW_EVERY);
        self
    }

    /// Makes samples re-read the settled files only when `changes` reported a modification of
    /// them; the owner of `changes` calls [`ChangeWatch::drain`] before each round of samples.
    /// The directory is watched from the first sample on, before anything is read. Without
    /// inotify, or when the watch cannot be added, every sample reads every file.
    pub fn watched_by(mut self, changes: &ChangeWatch) -> UnitCgroup {
        self.watch = Some(UnitWatch::new(changes));
        self
    }

    /// Lets the sweeps skip memory.pressure and io.pressure while `parent`, this unit's parent
    /// cgroup, shows that nothing below it stalled since they read all zero (see
    /// [`QuietFile`]).
    pub fn beside(mut self, parent: SharedParent) -> UnitCgroup {
        self.parent = Some(parent);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Close every file and forget which were absent, e.g. after a controller was enabled in
    /// the parent's cgroup.subtree_control and new files appeared.
    pub fn reopen(&mut self) {
        self.dir = None;
        self.files = Default::default();
        self.stale = SETTLED_KNOBS;
        self.slow_due = None;
        self.memory_quiet = QuietFile::default();
        self.io_quiet = QuietFile::default();
        if let Some(watch) = &mut self.watch {
            watch.reset();
        }
    }

    /// Makes the next sample read every file, whatever inotify reported: for a sample taken
    /// because one of the unit's files woke someone, who may have heard of the change before
    /// this unit's own watch did.
    pub fn read_everything_next(&mut self) {
        self.stale = SETTLED_KNOBS;
        self.slow_due = None;
    }

    /// How many files were read so far.
    #[cfg(test)]
    pub(crate) fn reads(&self) -> usize {
        self.reads
    }

    /// Read every file (for a watched unit, the settled ones only if they changed: see
    /// [`watched_by`](UnitCgroup::watched_by)). Missing files and keys, unreadable files and
    /// unparsable values are `None`; the only error is [`CgroupError::Gone`], when the directory
    /// itself was removed.
    pub fn sample(&mut self) -> Result<CgroupSample, CgroupError> {
        self.sample_reading(Pace::Everything, Instant::now())
    }

    /// [`sample`](UnitCgroup::sample) for a sweep at `now` that repeats every second or so:
    /// the [`SLOW`] files (the pressure files and memory.peak) are read only every
    /// [`SLOW_EVERY`], at the first sample, after [`read_everything_next`] or [`reopen`], and
    /// at every sample while the last reading showed memory pressure (its 10 s average above
    /// zero), so that a pressure alert is judged on fresh figures as soon as pressure starts.
    /// Of those, memory.peak and cpu.pressure are read then only if the unit ran since their
    /// last reading (see [`SLOW_WHILE_RUNNING`]). In between, the pressure fields repeat their
    /// last reading, and memory.peak is the larger of its last reading and memory.current
    /// (memory.peak never falls).
    ///
    /// [`read_everything_next`]: UnitCgroup::read_everything_next
    /// [`reopen`]: UnitCgroup::reopen
    pub fn sample_at(&mut self, now: Instant) -> Result<CgroupSample, CgroupError> {
        let under_pressure = self
            .settled
            .memory_pressure
            .is_some_and(|p| p.some.avg10 > 0.0);
        let pace = match self.slow_due {
            None => Pace::Everything,
            Some(at) if now + SLOW_SLACK >= at || under_pressure => Pace::Slow,
            Some(_) => Pace::Fast,
        };
        let sample = self.sample_reading(pace, now)?;
        if pace != Pace::Fast {
            self.slow_due = Some(match self.slow_due {
                None => now + SLOW_EVERY - self.slow_phase,
                Some(_) => now + SLOW_EVERY,
            });
        }
        Ok(sample)
    }

    fn sample_reading(&mut self, pace: Pace, now: Instant) -> Result<CgroupSample, CgroupError> {
        self.check_alive()?;
        self.stale |= match &mut self.watch {
            Some(watch) => watch.take_changes(&self.path),
            None => SETTLED_KNOBS,
        };
        let parse_memory_events = |text: &str| Ok(parse_memory_events(text));
        let parse_cpu_stat = |text: &str| Ok(parse_cpu_stat(text));
        let parse_cgroup_events = |text: &str| Ok(parse_cgroup_events(text));
        let cpu_stat = self.lenient(Knob::CpuStat, parse_cpu_stat)?;
        let usage = cpu_stat.as_ref().and_then(|c| c.usage_usec);
        // Without a usage to compare, the unit may have run.
        let ran = usage.is_none() || usage != self.last_usage;
        if ran {
            self.last_ran = Some(now);
        }
        self.last_usage = usage;
        // Whether the unit ran since a reading taken at usage `then`.
        let ran_since = |then: Option<u64>| usage.is_none() || then != usage;
        let slow = pace != Pace::Fast;
        let read_running = slow || ran;
        let memory_current =
            self.while_running(read_running, Knob::MemoryCurrent, |s| &mut s.memory_current)?;
        let memory_swap_current =
            self.while_running(read_running, Knob::MemorySwapCurrent, |s| {
                &mut s.memory_swap_current
            })?;
        let pids_current =
            self.while_running(read_running, Knob::PidsCurrent, |s| &mut s.pids_current)?;
        let memory_peak = if pace == Pace::Everything || slow && ran_since(self.usage_at_peak) {
            self.usage_at_peak = usage;
            self.lenient(Knob::MemoryPeak, parse_u64)?
        } else {
            // memory.peak never falls (cgroup-v2.rst, "memory.peak"): what was read last, or
            // what is in use now if more.
            self.settled.memory_peak.map(|peak| match memory_current {
                Some(current) => peak.max(current),
                None => peak,
            })
        };
        self.settled.memory_peak = memory_peak;
        if slow {
            // A sample that reads everything (the first, or one for a kernel wakeup, which
            // races systemd removing the cgroup of an app the OOM killer ended) does not wait
            // for the parent: without its epoch nothing is skipped, its readings vouch for
            // nothing, and the next slow read starts over.
            let parent = match &self.parent {
                Some(parent) if pace != Pace::Everything => stalls::lock(parent).epochs_at(now),
                _ => StallEpochs::default(),
            };
            self.memory_quiet = self.quiet_pressure(
                Knob::MemoryPressure,
                |s| &mut s.memory_pressure,
                self.memory_quiet,
                now,
                parent.memory,
            )?;
            self.io_quiet = self.quiet_pressure(
                Knob::IoPressure,
                |s| &mut s.io_pressure,
                self.io_quiet,
                now,
                parent.io,
            )?;
            if pace == Pace::Everything || ran_since(self.usage_at_calm_cpu) {
                let reading = self.lenient(Knob::CpuPressure, parse_pressure)?;
                let settled = self
                    .last_ran
                    .is_some_and(|ran| now.saturating_duration_since(ran) >= PSI_PERIOD);
                self.usage_at_calm_cpu = match reading {
                    Some(pressure) if settled && all_zero(&pressure) => usage,
                    _ => None,
                };
                self.settled.cpu_pressure = reading;
            }
        }
        Ok(CgroupSample {
            memory_current,
            memory_peak,
            memory_high: self.settled(Knob::MemoryHigh, |s| &mut s.memory_high, parse_limit)?,
            memory_max: self.settled(Knob::MemoryMax, |s| &mut s.memory_max, parse_limit)?,
            memory_low: self.settled(Knob::MemoryLow, |s| &mut s.memory_low, parse_limit)?,
            memory_swap_current,
            memory_swap_max: self.settled(
                Knob::MemorySwapMax,
                |s| &mut s.memory_swap_max,
                parse_limit,
            )?,
            memory_events: self.settled(
                Knob::MemoryEvents,
                |s| &mut s.memory_events,
                parse_memory_events,
            )?,
            cpu_stat,
            cpu_max: self.settled(Knob::CpuMax, |s| &mut s.cpu_max, parse_cpu_max)?,
            cpu_weight: self.settled(Knob::CpuWeight, |s| &mut s.cpu_weight, parse_u64)?,
            pids_current,
            pids_max: self.settled(Knob::PidsMax, |s| &mut s.pids_max, parse_limit)?,
            memory_pressure: self.settled.memory_pressure,
            cpu_pressure: self.settled.cpu_pressure,
            io_pressure: self.settled.io_pressure,
            events: self.settled(Knob::CgroupEvents, |s| &mut s.events, parse_cgroup_events)?,
            freeze: self.settled(Knob::CgroupFreeze, |s| &mut s.freeze, parse_bool)?,
        })
    }

    /// Reads memory.pressure or io.pressure at a slow read into `field`, unless what `quiet`
    /// knew of its last reading still holds with the parent's stall totals at `parent`
    /// ([`QuietFile`]; `None`: nothing vouches for it). Returns what is known of it now.
    fn quiet_pressure(
        &mut self,
        knob: Knob,
        field: fn(&mut CgroupSample) -> &mut Option<Pressure>,
        quiet: QuietFile,
        now: Instant,
        parent: Option<u64>,
    ) -> Result<QuietFile, CgroupError> {
        if parent.is_some() && quiet.parent_epoch == parent {
            return Ok(quiet);
        }
        let reading = self.lenient(knob, parse_pressure)?;
        let totals = reading.as_ref().map(StallTotals::of);
        // No stall since a reading PSI_PERIOD or more ago: the averages hold every stall.
        let folded = quiet
            .read_at
            .is_some_and(|at| now.saturating_duration_since(at) >= PSI_PERIOD + SLOW_SLACK)
            && totals.is_some()
            && quiet.totals == totals;
        let parent_epoch = match reading {
            Some(pressure) if folded && all_zero(&pressure) => parent,
            _ => None,
        };
        *field(&mut self.settled) = reading;
        Ok(QuietFile {
            read_at: Some(now),
            totals,
            parent_epoch,
        })
    }

    /// Whether the directory still exists, checked through the handle opened on first use.
    ///
    /// On cgroupfs this is not what notices a removal: kernfs keeps reporting a removed
    /// directory's old link count, but fails every read of its files with ENODEV (every
    /// cgroup has cpu.stat, a core file read on every sample, watched or not, so some read
    /// always fails; the removal also drops a watched unit's watch, after which it reads
    /// everything again). A regular filesystem,
    /// as in the test fixtures, keeps serving unlinked files instead, and there an rmdir'ed
    /// directory's link count drops to 0. One fstat(2) covers that case, including a
    /// directory removed and re-created under the same name, as systemd does when a unit
    /// starts again. On cgroupfs itself the fstat is skipped: the reads are enough there, and
    /// a sweep over hundreds of units pays for every syscall.
    fn check_alive(&mut self) -> Result<(), CgroupError> {
        if self.dir.is_none() {
            match File::open(&self.path) {
                Ok(dir) => {
                    self.on_cgroupfs = is_cgroupfs(&dir);
                    self.dir = Some(dir);
                }
                Err(error) if is_gone(&error) => return Err(CgroupError::Gone(self.path.clone())),
                // Only a complement to the reads, which report their own errors.
                Err(_) => return Ok(()),
            }
        }
        if self.on_cgroupfs {
            return Ok(());
        }
        let gone = match self.dir.as_ref().map(File::metadata) {
            Some(Ok(metadata)) => metadata.nlink() == 0,
            Some(Err(error)) => is_gone(&error),
            None => false,
        };
        if gone {
            return Err(CgroupError::Gone(self.path.clone()));
        }
        Ok(())
    }

    /// `read_parsed` for `sample`: every error but `Gone` just makes the field unknown.
    fn lenient<T>(
        &mut self,
        knob: Knob,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        match self.read_parsed(knob, parse) {
            Err(CgroupError::Gone(path)) => Err(CgroupError::Gone(path)),
            Err(_) => Ok(None),
            Ok(value) => Ok(value),
        }
    }

    /// `lenient` for a [`WHILE_RUNNING`] file: read if the unit `ran`, else its last value.
    fn while_running(
        &mut self,
        ran: bool,
        knob: Knob,
        field: fn(&mut CgroupSample) -> &mut Option<u64>,
    ) -> Result<Option<u64>, CgroupError> {
        if !ran {
            return Ok(*field(&mut self.settled));
        }
        let value = self.lenient(knob, parse_u64)?;
        *field(&mut self.settled) = value;
        Ok(value)
    }

    /// `lenient` for a settled file: its last value unless it is stale. An I/O error leaves it
    /// stale, to be read again; garbage stays `None` until the file is written again.
    fn settled<T: Copy>(
        &mut self,
        knob: Knob,
        field: fn(&mut CgroupSample) -> &mut Option<T>,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        if self.stale & knob.bit() == 0 {
            return Ok(*field(&mut self.settled));
        }
        let value = match self.read_parsed(knob, parse) {
            Err(CgroupError::Gone(path)) => return Err(CgroupError::Gone(path)),
            Err(CgroupError::Io { .. }) => return Ok(None),
            Err(CgroupError::Parse { .. }) => None,
            Ok(value) => value,
        };
        *field(&mut self.settled) = value;
        self.stale &= !knob.bit();
        Ok(value)
    }

    /// For the targeted readers: `Ok(None)` if the file is absent, errors as they are.
    fn strict<T>(
        &mut self,
        knob: Knob,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        self.check_alive()?;
        self.read_parsed(knob, parse)
    }

    fn read_parsed<T>(
        &mut self,
        knob: Knob,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CgroupError> {
        #[cfg(test)]
        {
            self.reads += 1;
        }
        let Some(text) = read_file(
            &self.path,
            knob.file_name(),
            &mut self.files[knob as usize],
            &mut self.buf,
        )?
        else {
            return Ok(None);
        };
        parse(text).map(Some).map_err(|error| CgroupError::Parse {
            path: self.path.join(knob.file_name()),
            line: error.line,
            message: error.message,
        })
    }
}

/// The current text of `dir/name` through its cached handle, opening it on first use.
/// `Ok(None)` when the file does not exist.
fn read_file<'buf>(
    dir: &Path,
    name: &str,
    slot: &mut Slot,
    buf: &'buf mut Vec<u8>,
) -> Result<Option<&'buf str>, CgroupError> {
    let io_error = |source| CgroupError::Io {
        path: dir.join(name),
        source,
    };
    if let Slot::Unopened = slot {
        *slot = match File::open(dir.join(name)) {
            Ok(file) => Slot::Open(file),
            // An ENOENT may mean the whole directory went away since `check_alive`; checked
            // here because an absent file is remembered and never opened again.
            Err(error) if is_gone(&error) => match dir.symlink_metadata() {
                Ok(_) => Slot::Absent,
                Err(error) if is_gone(&error) => return Err(CgroupError::Gone(dir.to_path_buf())),
                Err(source) => {
                    return Err(CgroupError::Io {
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            },
            Err(error) => return Err(io_error(error)),
        };
    }
    let file = match slot {
        Slot::Open(file) => file,
        Slot::Absent | Slot::Unopened => return Ok(None),
    };
    if buf.is_empty() {
        buf.resize(INITIAL_BUFFER, 0);
    }
    let len = loop {
        match file.read_at(buf, 0) {
            // A full buffer may have cut the text short: grow and read it whole again.
            Ok(len) if len == buf.len() => buf.resize(buf.len() * 2, 0),
            Ok(len) => break len,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if is_gone(&error) => return Err(CgroupError::Gone(dir.to_path_buf())),
            Err(error) => return Err(io_error(error)),
        }
    };
    match std::str::from_utf8(&buf[..len]) {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(CgroupError::Parse {
            path: dir.join(name),
            line: 1,
            message: "the file is not UTF-8 text".to_owned(),
        }),
    }
}

// One reader per sample field, for a targeted read such as checking a limit after setting it.
macro_rules! value_readers {
    ($($name:ident: $value:ty = $knob:ident, $parse:expr;)*) => {
        impl UnitCgroup {
            $(
                #[doc = concat!("Reads [`CgroupSample::", stringify!($name), "`] alone; errors as described on [`UnitCgroup`].")]
                pub fn $name(&mut self) -> Result<Option<$value>, CgroupError> {
                    let value = self.strict(Knob::$knob, $parse)?;
                    // Always read afresh: a limit is read back right after it was set, maybe
                    // before the sampler drained the write's event. What it read is current.
                    self.settled.$name = value;
                    Ok(value)
                }
            )*
        }
    };
}

value_readers! {
    memory_current: u64 = MemoryCurrent, parse_u64;
    memory_peak: u64 = MemoryPeak, parse_u64;
    memory_high: Limit = MemoryHigh, parse_limit;
    memory_max: Limit = MemoryMax, parse_limit;
    memory_low: Limit = MemoryLow, parse_limit;
    memory_swap_current: u64 = MemorySwapCurrent, parse_u64;
    memory_swap_max: Limit = MemorySwapMax, parse_limit;
    memory_events: MemoryEvents = MemoryEvents, |text: &str| Ok(parse_memory_events(text));
    cpu_stat: CpuStat = CpuStat, |text: &str| Ok(parse_cpu_stat(text));
    cpu_max: CpuMax = CpuMax, parse_cpu_max;
    cpu_weight: u64 = CpuWeight, parse_u64;
    pids_current: u64 = PidsCurrent, parse_u64;
    pids_max: Limit = PidsMax, parse_limit;
    memory_pressure: Pressure = MemoryPressure, parse_pressure;
    cpu_pressure: Pressure = CpuPressure, parse_pressure;
    io_pressure: Pressure = IoPressure, parse_pressure;
    events: CgroupEvents = CgroupEvents, |text: &str| Ok(parse_cgroup_events(text));
    freeze: bool = CgroupFreeze, parse_bool;
}
