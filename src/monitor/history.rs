//! Per-unit usage history in fixed-size rings (recent samples, 24 h of minutes, a timeline of
//! cgroup events) for the graphs and the tray; memory held is units × a constant.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cgroup::{CgroupSample, CpuMax, Limit};
use crate::limits::Bytes;

use super::{UnitInfo, UnitSnapshot};

/// A ring buffer of fixed capacity: pushing onto a full ring overwrites the oldest item.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    /// Grows up to `capacity` (never reallocating: reserved up front), then is overwritten in
    /// place starting at `oldest`.
    items: Vec<T>,
    capacity: usize,
    /// Index of the oldest item once the ring is full; 0 before.
    oldest: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `capacity` items (at least 1), its storage allocated now.
    pub fn with_capacity(capacity: usize) -> Ring<T> {
        let capacity = capacity.max(1);
        Ring {
            items: Vec::with_capacity(capacity),
            capacity,
            oldest: 0,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            self.items[self.oldest] = item;
            self.oldest = (self.oldest + 1) % self.capacity;
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        let (newer, older) = self.items.split_at(self.oldest);
        older.iter().chain(newer.iter())
    }

    pub fn last(&self) -> Option<&T> {
        self.last_index().map(|i| &self.items[i])
    }

    pub fn last_mut(&mut self) -> Option<&mut T> {
        self.last_index().map(|i| &mut self.items[i])
    }

    fn last_index(&self) -> Option<usize> {
        match self.items.len() {
            0 => None,
            len if len < self.capacity => Some(len - 1),
            _ => Some((self.oldest + self.capacity - 1) % self.capacity),
        }
    }

    /// Bytes of storage this ring holds, whatever its fill.
    pub fn footprint(&self) -> usize {
        self.capacity * std::mem::size_of::<T>()
    }
}

/// Milliseconds since the Unix epoch: half the size of a `SystemTime` and enough for graphs.
fn millis(at: SystemTime) -> u64 {
    // A clock set before 1970 is not worth a separate case: it reads as the epoch.
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Memory is stored in KiB in a u32 (up to 4 TiB per unit): the kernel counts memory in pages,
/// so nothing is lost, and a point stays 32 bytes. `u32::MAX` marks "not known" inside the
/// packed points only; accessors turn it into `None`.
const UNKNOWN_KIB: u32 = u32::MAX;

fn pack_bytes(bytes: Option<u64>) -> u32 {
    match bytes {
        Some(b) => u32::try_from(b / 1024).unwrap_or(UNKNOWN_KIB - 1),
        None => UNKNOWN_KIB,
    }
}

fn unpack_bytes(kib: u32) -> Option<Bytes> {
    (kib != UNKNOWN_KIB).then(|| Bytes(u64::from(kib) * 1024))
}

/// Percentages are stored as f32 with NaN for "not known", for the same reason.
fn pack_percent(value: Option<f64>) -> f32 {
    value.map_or(f32::NAN, |v| v as f32)
}

fn unpack_percent(value: f32) -> Option<f64> {
    (!value.is_nan()).then_some(f64::from(value))
}

/// The figures of one sample that the graphs draw, packed into 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Packed {
    at_ms: u64,
    memory_kib: u32,
    swap_kib: u32,
    cpu_percent: f32,
    /// PSI "some" avg10 of memory.pressure, cpu.pressure and io.pressure.
    memory_pressure: f32,
    cpu_pressure: f32,
    io_pressure: f32,
}

const _: () = assert!(std::mem::size_of::<Packed>() == 32);

impl Packed {
    fn of(at_ms: u64, sample: &CgroupSample, cpu_percent: Option<f64>) -> Packed {
        let avg10 = |p: Option<crate::cgroup::Pressure>| p.map(|p| p.some.avg10);
        Packed {
            at_ms,
            memory_kib: pack_bytes(sample.memory_current),
            swap_kib: pack_bytes(sample.memory_swap_current),
            cpu_percent: pack_percent(cpu_percent),
            memory_pressure: pack_percent(avg10(sample.memory_pressure)),
            cpu_pressure: pack_percent(avg10(sample.cpu_pressure)),
            io_pressure: pack_percent(avg10(sample.io_pressure)),
        }
    }
}

/// One sample in the recent-detail ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point(Packed);

impl Point {
    pub fn at(&self) -> SystemTime {
        from_millis(self.0.at_ms)
    }
    /// memory.current, rounded down to KiB.
    pub fn memory(&self) -> Option<Bytes> {
        unpack_bytes(self.0.memory_kib)
    }
    /// memory.swap.current, rounded down to KiB.
    pub fn swap(&self) -> Option<Bytes> {
        unpack_bytes(self.0.swap_kib)
    }
    /// CPU use since the previous sample, in percent of one CPU.
    pub fn cpu_percent(&self) -> Option<f64> {
        unpack_percent(self.0.cpu_percent)
    }
    /// memory.pressure "some" avg10: percent of the last 10 s some task waited for memory.
    pub fn memory_pressure(&self) -> Option<f64> {
        unpack_percent(self.0.memory_pressure)
    }
    pub fn cpu_pressure(&self) -> Option<f64> {
        unpack_percent(self.0.cpu_pressure)
    }
    pub fn io_pressure(&self) -> Option<f64> {
        unpack_percent(self.0.io_pressure)
    }
}

/// One minute in the long view: the worst memory and pressure of the minute and its mean CPU,
/// so a one-second spike stays visible in the 24-hour graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteSummary(Packed);

impl MinuteSummary {
    /// The start of the minute (wall clock, aligned to whole minutes since the epoch).
    pub fn start(&self) -> SystemTime {
        from_millis(self.0.at_ms)
    }
    pub fn memory_max(&self) -> Option<Bytes> {
        unpack_bytes(self.0.memory_kib)
    }
    pub fn swap_max(&self) -> Option<Bytes> {
        unpack_bytes(self.0.swap_kib)
    }
    pub fn cpu_mean(&self) -> Option<f64> {
        unpack_percent(self.0.cpu_percent)
    }
    pub fn memory_pressure_max(&self) -> Option<f64> {
        unpack_percent(self.0.memory_pressure)
    }
    pub fn cpu_pressure_max(&self) -> Option<f64> {
        unpack_percent(self.0.cpu_pressure)
    }
    pub fn io_pressure_max(&self) -> Option<f64> {
        unpack_percent(self.0.io_pressure)
    }
}

const MINUTE_MS: u64 = 60_000;

/// The minute being summarised. CPU is summed to take the mean when the minute closes.
#[derive(Debug, Clone, Copy)]
struct MinuteBuilder {
    summary: Packed,
    cpu_sum: f64,
    cpu_count: u32,
}

impl MinuteBuilder {
    fn start(point: &Packed) -> MinuteBuilder {
        let mut summary = *point;
        summary.at_ms = point.at_ms - point.at_ms % MINUTE_MS;
        let cpu = unpack_percent(point.cpu_percent);
        MinuteBuilder {
            summary,
            cpu_sum: cpu.unwrap_or(0.0),
            cpu_count: u32::from(cpu.is_some()),
        }
    }

    fn add(&mut self, point: &Packed) {
        // "Unknown" (u32::MAX, NaN) must not win a max: compare only known values.
        fn max_kib(a: u32, b: u32) -> u32 {
            match (a, b) {
                (UNKNOWN_KIB, b) => b,
                (a, UNKNOWN_KIB) => a,
                (a, b) => a.max(b),
            }
        }
        let s = &mut self.summary;
        s.memory_kib = max_kib(s.memory_kib, point.memory_kib);
        s.swap_kib = max_kib(s.swap_kib, point.swap_kib);
        // f32::max returns the other operand when one is NaN, which is what "unknown" needs.
        s.memory_pressure = s.memory_pressure.max(point.memory_pressure);
        s.cpu_pressure = s.cpu_pressure.max(point.cpu_pressure);
        s.io_pressure = s.io_pressure.max(point.io_pressure);
        if let Some(cpu) = unpack_percent(point.cpu_percent) {
            self.cpu_sum += cpu;
            self.cpu_count += 1;
        }
    }

    fn summary(&self) -> MinuteSummary {
        let mut summary = self.summary;
        summary.cpu_percent = if self.cpu_count == 0 {
            f32::NAN
        } else {
            (self.cpu_sum / f64::from(self.cpu_count)) as f32
        };
        MinuteSummary(summary)
    }
}

/// A limit that changed while the unit ran, with its old and new values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitChange {
    MemoryHigh { from: Limit, to: Limit },
    MemoryMax { from: Limit, to: Limit },
    CpuMax { from: CpuMax, to: CpuMax },
}

/// What happened, for a mark on the graphs' time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    /// Usage went over memory.high and the kernel throttled and reclaimed (memory.events high).
    MemoryHighThrottled,
    /// Usage reached memory.max and the kernel had to reclaim to allocate (memory.events max).
    MemoryMaxHit,
    /// The unit used up its CPU quota and had to wait (cpu.stat nr_throttled).
    CpuThrottled,
    Frozen,
    Thawed,
    /// The OOM killer killed processes of the unit (memory.events oom_kill), or the unit
    /// ended with systemd's Result=oom-kill.
    OomKill,
    LimitChanged(LimitChange),
}

impl TimelineKind {
    /// Throttling repeats every sample while it lasts: those events grow into one span rather
    /// than filling the ring with copies.
    fn is_span(self) -> bool {
        matches!(
            self,
            TimelineKind::MemoryHighThrottled
                | TimelineKind::MemoryMaxHit
                | TimelineKind::CpuThrottled
        )
    }
}

/// One mark on the timeline: an instant (`start == end`) or a span of repeated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEvent {
    start_ms: u64,
    end_ms: u64,
    /// How many kernel events the mark stands for (throttle events, kills); 1 for the others.
    pub count: u64,
    pub kind: TimelineKind,
}

impl TimelineEvent {
    pub fn start(&self) -> SystemTime {
        from_millis(self.start_ms)
    }
    pub fn end(&self) -> SystemTime {
        from_millis(self.end_ms)
    }
}

/// The most recent state of a unit, for labels and for post-mortems.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitStatus {
    pub info: UnitInfo,
    /// When the unit was first recorded.
    pub first_seen: SystemTime,
    /// When a sample of the unit's cgroup was last read.
    pub sampled_at: Option<SystemTime>,
    /// The last cgroup sample read; kept when a later read found the cgroup gone, so that a
    /// post-mortem still has the last known figures.
    pub cgroup: Option<CgroupSample>,
    pub cpu_percent: Option<f64>,
    /// The most memory the unit was seen using: the larger of memory.peak and every
    /// memory.current recorded (memory.peak needs Linux 5.19).
    pub peak_memory: Option<Bytes>,
    /// When the unit was no longer listed; it is dropped after the retention period.
    pub ended_at: Option<SystemTime>,
}

/// Ring sizes and how long ended units stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Points at the sampling rate: 600 is 10 minutes at 1 s.
    pub recent_points: usize,
    /// 1-minute summaries: 1440 is 24 hours.
    pub long_minutes: usize,
    pub timeline_events: usize,
    pub ended_retention: Duration,
}

impl Default for HistoryLimits {
    fn default() -> HistoryLimits {
        HistoryLimits {
            recent_points: 600,
            long_minutes: 1440,
            timeline_events: 64,
            ended_retention: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug)]
struct UnitHistory {
    status: UnitStatus,
    recent: Ring<Point>,
    long: Ring<MinuteSummary>,
    minute: Option<MinuteBuilder>,
    events: Ring<TimelineEvent>,
    /// The `History::generation` of the last full tick that listed the unit.
    seen_in: u64,
    /// Time of the previous recorded sample, to size the gap that still continues a span.
    last_sample_ms: Option<u64>,
}

/// A span continues across a quiet gap of up to this long, or three sampling intervals if
/// that is longer, so throttling that pauses for a sample is still one mark.
const SPAN_GAP_MS: u64 = 5_000;

impl UnitHistory {
    fn new(info: &UnitInfo, at: SystemTime, limits: &HistoryLimits) -> UnitHistory {
        UnitHistory {
            status: UnitStatus {
                info: info.clone(),
                first_seen: at,
                sampled_at: None,
                cgroup: None,
                cpu_percent: None,
                peak_memory: None,
                ended_at: None,
            },
            recent: Ring::with_capacity(limits.recent_points),
            long: Ring::with_capacity(limits.long_minutes),
            minute: None,
            events: Ring::with_capacity(limits.timeline_events),
            seen_in: 0,
            last_sample_ms: None,
        }
    }

    /// Updates the status and the timeline from one snapshot; with `add_point`, also the rings.
    fn update(&mut self, snapshot: &UnitSnapshot, at: SystemTime, add_point: bool) {
        if self.status.info != *snapshot.info {
            self.status.info.clone_from(&snapshot.info);
        }
        self.status.ended_at = None;
        let Some(sample) = &snapshot.cgroup else {
            return;
        };
        let at_ms = millis(at);
        if let Some(previous) = self.status.cgroup.take() {
            self.note_changes(&previous, sample, at_ms);
        }
        let seen = sample.memory_peak.max(sample.memory_current).map(Bytes);
        self.status.peak_memory = self.status.peak_memory.max(seen);
        self.status.cgroup = Some(sample.clone());
        self.status.cpu_percent = snapshot.cpu_percent;
        self.status.sampled_at = Some(at);
        if add_point {
            let point = Packed::of(at_ms, sample, snapshot.cpu_percent);
            self.recent.push(Point(point));
            match &mut self.minute {
                Some(minute) if minute.summary.at_ms == at_ms - at_ms % MINUTE_MS => {
                    minute.add(&point)
                }
                slot => {
                    // A new minute (or the clock jumped): the finished one goes to the long view.
                    if let Some(done) = slot.take() {
                        self.long.push(done.summary());
                    }
                    *slot = Some(MinuteBuilder::start(&point));
                }
            }
        }
        self.last_sample_ms = Some(at_ms);
    }

    /// Compares two consecutive samples for events. Counters that went backwards belong to a
    /// new cgroup under the same unit name and mark nothing.
    fn note_changes(&mut self, previous: &CgroupSample, current: &CgroupSample, at_ms: u64) {
        let rise = |old: Option<u64>, new: Option<u64>| match (old, new) {
            (Some(old), Some(new)) if new > old => new - old,
            _ => 0,
        };
        let (old_events, new_events) = (
            previous.memory_events.unwrap_or_default(),
            current.memory_events.unwrap_or_default(),
        );
        let (old_cpu, new_cpu) = (
            previous.cpu_stat.unwrap_or_default(),
            current.cpu_stat.unwrap_or_default(),
        );
        let counted = [
            (
                TimelineKind::MemoryHighThrottled,
                rise(old_events.high, new_events.high),
            ),
            (
                TimelineKind::MemoryMaxHit,
                rise(old_events.max, new_events.max),
            ),
            (
                TimelineKind::OomKill,
                rise(old_events.oom_kill, new_events.oom_kill),
            ),
            (
                TimelineKind::CpuThrottled,
                rise(old_cpu.nr_throttled, new_cpu.nr_throttled),
            ),
        ];
        for (kind, count) in counted {
            if count > 0 {
                self.mark(kind, at_ms, count);
            }
        }
        let frozen = |s: &CgroupSample| s.events.and_then(|e| e.frozen);
        match (frozen(previous), frozen(current)) {
            (Some(false), Some(true)) => self.mark(TimelineKind::Frozen, at_ms, 1),
            (Some(true), Some(false)) => self.mark(TimelineKind::Thawed, at_ms, 1),
            _ => {}
        }
        let changes = [
            match (previous.memory_high, current.memory_high) {
                (Some(from), Some(to)) if from != to => Some(LimitChange::MemoryHigh { from, to }),
                _ => None,
            },
            match (previous.memory_max, current.memory_max) {
                (Some(from), Some(to)) if from != to => Some(LimitChange::MemoryMax { from, to }),
                _ => None,
            },
            match (previous.cpu_max, current.cpu_max) {
                (Some(from), Some(to)) if from != to => Some(LimitChange::CpuMax { from, to }),
                _ => None,
            },
        ];
        for change in changes.into_iter().flatten() {
            self.mark(TimelineKind::LimitChanged(change), at_ms, 1);
        }
    }

    fn mark(&mut self, kind: TimelineKind, at_ms: u64, count: u64) {
        if kind.is_span() {
            let gap = self
                .last_sample_ms
                .map_or(0, |last| at_ms.saturating_sub(last) * 3)
                .max(SPAN_GAP_MS);
            // Only the few newest marks can be the span to extend: other kinds recorded in
            // between (a limit change during throttling) must not split it.
            let mut open = None;
            for (back, event) in self.events.iter().rev().take(4).enumerate() {
                if event.kind == kind {
                    if at_ms.saturating_sub(event.end_ms) <= gap {
                        open = Some(back);
                    }
                    break;
                }
            }
            if let Some(event) = open.and_then(|back| self.nth_newest_mut(back)) {
                event.end_ms = at_ms;
                event.count = event.count.saturating_add(count);
                return;
            }
        }
        self.events.push(TimelineEvent {
            start_ms: at_ms,
            end_ms: at_ms,
            count,
            kind,
        });
    }

    /// The event `back` places before the newest (0 is the newest).
    fn nth_newest_mut(&mut self, back: usize) -> Option<&mut TimelineEvent> {
        let ring = &mut self.events;
        let len = ring.items.len();
        if back >= len {
            return None;
        }
        let newest = ring.last_index()?;
        let index = (newest + len - back) % len;
        ring.items.get_mut(index)
    }

    fn footprint(&self) -> usize {
        std::mem::size_of::<UnitHistory>()
            + self.recent.footprint()
            + self.long.footprint()
            + self.events.footprint()
            + self.status.info.unit.capacity()
            + self.status.info.name.capacity()
            + self.status.info.app_id.as_ref().map_or(0, String::capacity)
            + self.status.info.preset.as_ref().map_or(0, String::capacity)
            + self.status.info.active_state.capacity()
            + self.status.info.sub_state.capacity()
            + self
                .status
                .info
                .control_group
                .as_ref()
                .map_or(0, String::capacity)
    }
}

/// Usage history of every unit Corral watches, in memory only.
#[derive(Debug)]
pub struct History {
    limits: HistoryLimits,
    units: HashMap<String, UnitHistory>,
    /// Counts full ticks, to find the units a tick no longer listed without a set per tick.
    generation: u64,
}

impl Default for History {
    fn default() -> History {
        History::new(HistoryLimits::default())
    }
}

impl History {
    pub fn new(limits: HistoryLimits) -> History {
        History {
            limits,
            units: HashMap::new(),
            generation: 0,
        }
    }

    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    /// Records one full sampling tick: every listed unit gets a point; units not listed any
    /// more are marked ended at `at`, and units ended longer ago than the retention are dropped.
    pub fn record(&mut self, snapshots: &[UnitSnapshot], at: SystemTime) {
        self.generation += 1;
        let generation = self.generation;
        for snapshot in snapshots {
            let unit = self.entry(&snapshot.info, at);
            unit.seen_in = generation;
            unit.update(snapshot, at, true);
        }
        let retention = self.limits.ended_retention;
        self.units.retain(|_, unit| {
            if unit.seen_in != generation && unit.status.ended_at.is_none() {
                unit.status.ended_at = Some(at);
            }
            match unit.status.ended_at {
                Some(ended) => at.duration_since(ended).unwrap_or_default() <= retention,
                None => true,
            }
        });
    }

    /// Records a sample of one unit taken between ticks (an inotify or PSI wakeup): it updates
    /// the unit's latest figures, peak and timeline, but adds no point, so the recent ring keeps
    /// the sampling rate's spacing. Other units are untouched.
    pub fn note(&mut self, snapshot: &UnitSnapshot, at: SystemTime) {
        self.entry(&snapshot.info, at).update(snapshot, at, false);
    }

    /// Marks a unit ended now (systemd said UnitRemoved, or the unit went inactive), before the
    /// next tick would notice. An OOM kill that systemd reports as the unit's Result
    /// (Result=oom-kill) is marked on the timeline, unless the cgroup's own counter already was.
    pub fn mark_ended(&mut self, unit: &str, at: SystemTime, oom_killed: bool) {
        let Some(history) = self.units.get_mut(unit) else {
            return;
        };
        if history.status.ended_at.is_none() {
            history.status.ended_at = Some(at);
        }
        let first_seen_ms = millis(history.status.first_seen);
        let kill_marked = history
            .events
            .iter()
            .any(|e| e.kind == TimelineKind::OomKill && e.start_ms >= first_seen_ms);
        if oom_killed && !kill_marked {
            history.mark(TimelineKind::OomKill, millis(at), 1);
        }
    }

    fn entry(&mut self, info: &UnitInfo, at: SystemTime) -> &mut UnitHistory {
        // get_mut first: the key String is only allocated for a unit seen for the first time.
        if !self.units.contains_key(&info.unit) {
            self.units
                .insert(info.unit.clone(), UnitHistory::new(info, at, &self.limits));
        }
        self.units
            .get_mut(&info.unit)
            .expect("the unit was inserted just above")
    }

    /// The recent points of a unit; [`Ring::iter`] gives them oldest first.
    pub fn recent(&self, unit: &str) -> Option<&Ring<Point>> {
        self.units.get(unit).map(|u| &u.recent)
    }

    /// The unit's 1-minute summaries, oldest first; the last one is the minute in progress.
    pub fn long(&self, unit: &str) -> Option<impl Iterator<Item = MinuteSummary> + Clone> {
        self.units.get(unit).map(|u| {
            u.long
                .iter()
                .copied()
                .chain(u.minute.as_ref().map(MinuteBuilder::summary))
        })
    }

    /// The unit's timeline marks; [`Ring::iter`] gives them oldest first.
    pub fn events(&self, unit: &str) -> Option<&Ring<TimelineEvent>> {
        self.units.get(unit).map(|u| &u.events)
    }

    pub fn latest(&self, unit: &str) -> Option<&UnitStatus> {
        self.units.get(unit).map(|u| &u.status)
    }

    /// Every unit with a history, running or recently ended, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = &UnitStatus> {
        self.units.values().map(|u| &u.status)
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// An estimate of the bytes held: the rings at full capacity, the per-unit records and
    /// strings, and the map's table.
    pub fn footprint(&self) -> usize {
        let table =
            self.units.capacity() * (std::mem::size_of::<String>() + std::mem::size_of::<usize>());
        let keys: usize = self.units.keys().map(String::capacity).sum();
        let units: usize = self.units.values().map(UnitHistory::footprint).sum();
        std::mem::size_of::<History>() + table + keys + units
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CgroupEvents, CpuStat, MemoryEvents, Pressure, PressureLine};
    use crate::systemd::names::Launcher;

    const GIB: u64 = Bytes::GIB;

    fn t(seconds: u64) -> SystemTime {
        // A whole minute since the epoch, so minute boundaries fall on multiples of 60.
        UNIX_EPOCH + Duration::from_secs(1_700_000_040 + seconds)
    }

    fn info(unit: &str) -> UnitInfo {
        UnitInfo::new(
            unit.to_owned(),
            "Firefox [corral: browser]",
            "active".to_owned(),
            "running".to_owned(),
            Some(format!("/app.slice/{unit}")),
        )
    }

    fn snapshot(unit: &str, memory: u64, cpu: f64) -> UnitSnapshot {
        UnitSnapshot {
            info: info(unit).into(),
            cgroup: Some(CgroupSample {
                memory_current: Some(memory),
                memory_max: Some(Limit::Value(4 * GIB)),
                memory_events: Some(MemoryEvents {
                    high: Some(0),
                    max: Some(0),
                    oom_kill: Some(0),
                    ..MemoryEvents::default()
                }),
                cpu_stat: Some(CpuStat {
                    nr_throttled: Some(0),
                    ..CpuStat::default()
                }),
                memory_pressure: Some(Pressure {
                    some: PressureLine {
                        avg10: cpu / 10.0,
                        ..PressureLine::default()
                    },
                    full: None,
                }),
                events: Some(CgroupEvents {
                    populated: Some(true),
                    frozen: Some(false),
                }),
                ..CgroupSample::default()
            }),
            cpu_percent: Some(cpu),
        }
    }

    #[test]
    fn ring_overwrites_the_oldest_and_iterates_in_order() {
        let mut ring = Ring::with_capacity(3);
        assert!(ring.is_empty());
        assert_eq!(ring.last(), None);
        for i in 1..=2 {
            ring.push(i);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ring.last(), Some(&2));
        for i in 3..=7 {
            ring.push(i);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(ring.iter().rev().copied().collect::<Vec<_>>(), [7, 6, 5]);
        assert_eq!(ring.last(), Some(&7));
        assert_eq!((ring.len(), ring.capacity()), (3, 3));
        *ring.last_mut().unwrap() = 70;
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [5, 6, 70]);
    }

    #[test]
    fn recent_keeps_ten_minutes_at_one_second() {
        let mut history = History::default();
        let unit = "app-corral-firefox-1.service";
        for s in 0..900 {
            history.record(&[snapshot(unit, s * Bytes::MIB, 10.0)], t(s));
        }
        let recent: Vec<_> = history.recent(unit).unwrap().iter().collect();
        assert_eq!(recent.len(), 600);
        assert_eq!(recent[0].at(), t(300));
        assert_eq!(recent[599].at(), t(899));
        assert_eq!(recent[599].memory(), Some(Bytes(899 * Bytes::MIB)));
        assert_eq!(recent[599].cpu_percent(), Some(10.0));
        assert_eq!(recent[599].memory_pressure(), Some(1.0));
        assert_eq!(recent[599].cpu_pressure(), None);
        assert_eq!(
            history.latest(unit).unwrap().peak_memory,
            Some(Bytes(899 * Bytes::MIB))
        );
    }

    #[test]
    fn long_view_summarises_each_minute() {
        let mut history = History::default();
        let unit = "u.service";
        // Minute 0: memory climbs to 59 MiB with CPU 0..59 (mean 29.5); minute 1 a single
        // spike of 2 GiB among small values; then one sample into minute 2.
        for s in 0..60 {
            history.record(&[snapshot(unit, s * Bytes::MIB, s as f64)], t(s));
        }
        for s in 60..120 {
            let memory = if s == 90 { 2 * GIB } else { Bytes::MIB };
            history.record(&[snapshot(unit, memory, 50.0)], t(s));
        }
        history.record(&[snapshot(unit, 3 * Bytes::MIB, 5.0)], t(120));
        let long: Vec<_> = history.long(unit).unwrap().collect();
        assert_eq!(
            long.len(),
            3,
            "two finished minutes and the one in progress"
        );
        assert_eq!(long[0].start(), t(0));
        assert_eq!(long[0].memory_max(), Some(Bytes(59 * Bytes::MIB)));
        assert!((long[0].cpu_mean().unwrap() - 29.5).abs() < 1e-6);
        assert_eq!(long[0].memory_pressure_max(), Some(5.9f32 as f64));
        assert_eq!(long[1].start(), t(60));
        assert_eq!(long[1].memory_max(), Some(Bytes(2 * GIB)), "spike kept");
        assert_eq!(long[1].cpu_mean(), Some(50.0));
        assert_eq!(long[2].start(), t(120));
        assert_eq!(long[2].memory_max(), Some(Bytes(3 * Bytes::MIB)));
    }

    #[test]
    fn unknown_values_stay_unknown_and_do_not_win_a_max() {
        let mut history = History::default();
        let mut first = snapshot("u.service", GIB, 1.0);
        first.cpu_percent = None;
        if let Some(c) = first.cgroup.as_mut() {
            c.memory_current = None;
        }
        history.record(&[first], t(0));
        history.record(&[snapshot("u.service", GIB, 3.0)], t(1));
        let recent: Vec<_> = history.recent("u.service").unwrap().iter().collect();
        assert_eq!(recent[0].memory(), None);
        assert_eq!(recent[0].cpu_percent(), None);
        let minute = history.long("u.service").unwrap().next().unwrap();
        assert_eq!(minute.memory_max(), Some(Bytes(GIB)));
        assert_eq!(
            minute.cpu_mean(),
            Some(3.0),
            "mean of the known values only"
        );
        assert_eq!(minute.io_pressure_max(), None);
    }

    #[test]
    fn timeline_marks_throttling_as_spans_and_changes_as_instants() {
        let mut history = History::default();
        let unit = "u.service";
        let mut s = snapshot(unit, GIB, 100.0);
        history.record(std::slice::from_ref(&s), t(0));
        fn cg(s: &mut UnitSnapshot) -> &mut CgroupSample {
            s.cgroup.as_mut().unwrap()
        }
        // memory.high throttling for 5 s, a pause of 20 s, then again: two spans.
        for second in 1..=5 {
            cg(&mut s).memory_events.as_mut().unwrap().high = Some(second * 100);
            history.record(std::slice::from_ref(&s), t(second));
        }
        // The limit changes while throttled: an instant, and the span still continues.
        cg(&mut s).memory_max = Some(Limit::Value(5 * GIB));
        cg(&mut s).memory_events.as_mut().unwrap().high = Some(600);
        history.record(std::slice::from_ref(&s), t(6));
        for second in 7..26 {
            history.record(std::slice::from_ref(&s), t(second));
        }
        cg(&mut s).memory_events.as_mut().unwrap().high = Some(650);
        history.record(std::slice::from_ref(&s), t(26));
        // Frozen, thawed, an OOM kill of one process, CPU throttling.
        cg(&mut s).events.as_mut().unwrap().frozen = Some(true);
        history.record(std::slice::from_ref(&s), t(30));
        cg(&mut s).events.as_mut().unwrap().frozen = Some(false);
        history.record(std::slice::from_ref(&s), t(40));
        cg(&mut s).memory_events.as_mut().unwrap().oom_kill = Some(1);
        cg(&mut s).cpu_stat.as_mut().unwrap().nr_throttled = Some(7);
        history.record(std::slice::from_ref(&s), t(41));

        let events: Vec<_> = history.events(unit).unwrap().iter().copied().collect();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                TimelineKind::MemoryHighThrottled,
                TimelineKind::LimitChanged(LimitChange::MemoryMax {
                    from: Limit::Value(4 * GIB),
                    to: Limit::Value(5 * GIB)
                }),
                TimelineKind::MemoryHighThrottled,
                TimelineKind::Frozen,
                TimelineKind::Thawed,
                TimelineKind::OomKill,
                TimelineKind::CpuThrottled,
            ]
        );
        assert_eq!((events[0].start(), events[0].end()), (t(1), t(6)));
        assert_eq!(events[0].count, 600);
        assert_eq!(
            (events[2].start(), events[2].end(), events[2].count),
            (t(26), t(26), 50)
        );
        assert_eq!(events[6].count, 7);
    }

    #[test]
    fn a_new_cgroup_under_the_same_name_marks_nothing() {
        let mut history = History::default();
        let mut s = snapshot("u.service", GIB, 1.0);
        s.cgroup
            .as_mut()
            .unwrap()
            .memory_events
            .as_mut()
            .unwrap()
            .oom_kill = Some(3);
        history.record(std::slice::from_ref(&s), t(0));
        s.cgroup
            .as_mut()
            .unwrap()
            .memory_events
            .as_mut()
            .unwrap()
            .oom_kill = Some(0);
        history.record(std::slice::from_ref(&s), t(1));
        assert_eq!(history.events("u.service").unwrap().len(), 0);
    }

    #[test]
    fn ended_units_are_kept_for_a_while_then_dropped() {
        let mut history = History::default();
        let (a, b) = ("a.service", "b.service");
        history.record(&[snapshot(a, GIB, 1.0), snapshot(b, 2 * GIB, 1.0)], t(0));
        history.record(&[snapshot(a, GIB, 1.0)], t(1));
        assert_eq!(history.latest(b).unwrap().ended_at, Some(t(1)));
        assert_eq!(history.latest(a).unwrap().ended_at, None);
        assert_eq!(history.latest(b).unwrap().peak_memory, Some(Bytes(2 * GIB)));
        // A wakeup for `a` alone does not end anything.
        history.note(&snapshot(a, 3 * GIB, 1.0), t(2));
        assert_eq!(history.latest(a).unwrap().ended_at, None);
        assert_eq!(history.latest(a).unwrap().peak_memory, Some(Bytes(3 * GIB)));
        assert_eq!(
            history.recent(a).unwrap().len(),
            2,
            "a wakeup adds no point"
        );
        history.mark_ended(a, t(3), true);
        assert_eq!(history.latest(a).unwrap().ended_at, Some(t(3)));
        assert_eq!(
            history.events(a).unwrap().last().map(|e| e.kind),
            Some(TimelineKind::OomKill)
        );
        history.record(&[], t(15 * 60 + 1));
        assert!(history.latest(a).is_some() && history.latest(b).is_some());
        history.record(&[], t(15 * 60 + 4));
        assert!(history.latest(a).is_none() && history.latest(b).is_none());
        assert!(history.is_empty());
    }

    #[test]
    fn a_unit_listed_again_is_running_again() {
        let mut history = History::default();
        history.record(&[snapshot("a.service", GIB, 1.0)], t(0));
        history.record(&[], t(1));
        assert!(history.latest("a.service").unwrap().ended_at.is_some());
        history.record(&[snapshot("a.service", GIB, 1.0)], t(2));
        assert_eq!(history.latest("a.service").unwrap().ended_at, None);
    }

    #[test]
    fn a_sample_without_a_cgroup_keeps_the_last_known_figures() {
        let mut history = History::default();
        history.record(&[snapshot("a.service", GIB, 1.0)], t(0));
        let mut gone = snapshot("a.service", 0, 0.0);
        gone.cgroup = None;
        history.record(&[gone], t(1));
        let status = history.latest("a.service").unwrap();
        assert_eq!(status.sampled_at, Some(t(0)));
        assert_eq!(status.cgroup.as_ref().unwrap().memory_current, Some(GIB));
        assert_eq!(history.recent("a.service").unwrap().len(), 1);
    }

    #[test]
    fn launcher_info_is_kept_current() {
        let mut history = History::default();
        let mut s = snapshot("a.service", GIB, 1.0);
        history.record(std::slice::from_ref(&s), t(0));
        std::sync::Arc::make_mut(&mut s.info).active_state = "deactivating".to_owned();
        history.record(std::slice::from_ref(&s), t(1));
        let status = history.latest("a.service").unwrap();
        assert_eq!(status.info.active_state, "deactivating");
        assert_eq!(status.info.launcher, Launcher::Other);
        assert_eq!(status.first_seen, t(0));
    }
}
