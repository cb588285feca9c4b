//! Runaway rules: a unit's successive cgroup samples (cgroup-v2.rst, psi.rst) become alerts,
//! one per unit and condition, raised, updated and cleared with hysteresis.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cgroup::{CgroupSample, CpuMax, CpuStat, Limit};
use crate::config::General;
use crate::limits::{Bytes, CpuQuota};
use crate::monitor::processes::KilledProcess;

use super::{UnitInfo, UnitSnapshot};

/// What an alert is about. Each unit has at most one alert per condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// Memory use is close to the unit's hard limit (or its soft limit if it has no hard one).
    MemoryNearLimit,
    /// The kernel keeps throttling the unit at its memory.high and reclaiming its memory.
    MemoryThrottled,
    /// The unit keeps using all of its CPU quota and is made to wait.
    CpuThrottled,
    /// The unit's tasks spend a large share of time waiting for memory (PSI).
    MemoryPressure,
    /// The OOM killer killed processes of the unit, or the whole unit.
    OomKilled,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::MemoryNearLimit,
        Condition::MemoryThrottled,
        Condition::CpuThrottled,
        Condition::MemoryPressure,
        Condition::OomKilled,
    ];

    /// A stable name for logs, JSON and notification bookkeeping.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::MemoryNearLimit => "memory-near-limit",
            Condition::MemoryThrottled => "memory-throttled",
            Condition::CpuThrottled => "cpu-throttled",
            Condition::MemoryPressure => "memory-pressure",
            Condition::OomKilled => "oom-killed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which memory limit a figure is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBoundary {
    /// memory.max: past it the OOM killer acts.
    Max,
    /// memory.high: past it the kernel throttles and reclaims.
    High,
}

/// The unit's limits when the alert was made, as the kernel holds them; `None` is unlimited.
/// What a "raise the limit" action starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitLimits {
    pub memory_high: Option<Bytes>,
    pub memory_max: Option<Bytes>,
    pub cpu_quota: Option<CpuQuota>,
}

impl UnitLimits {
    fn of(sample: &CgroupSample) -> UnitLimits {
        let bytes = |limit: Option<Limit>| limit.and_then(Limit::value).map(Bytes);
        UnitLimits {
            memory_high: bytes(sample.memory_high),
            memory_max: bytes(sample.memory_max),
            cpu_quota: sample.cpu_max.and_then(cpu_quota),
        }
    }
}

/// cpu.max as a percentage of one CPU, rounded to the nearest whole percent.
fn cpu_quota(max: CpuMax) -> Option<CpuQuota> {
    let cpus = max.cpus()?;
    Some(CpuQuota::Percent((cpus * 100.0).round() as u32))
}

/// The figures behind an alert, per condition.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertDetail {
    MemoryNearLimit {
        used: Bytes,
        limit: Bytes,
        boundary: MemoryBoundary,
        /// `used` in percent of `limit`.
        percent: f64,
    },
    MemoryThrottled {
        used: Option<Bytes>,
        high: Bytes,
        /// memory.events "high" events since the throttling began.
        events: u64,
    },
    CpuThrottled {
        /// Share of the kernel's enforcement periods in which the unit ran out of quota, in
        /// percent (or of wall time spent throttled, on kernels without nr_periods).
        throttled_percent: f64,
        quota: CpuQuota,
        usage_percent: Option<f64>,
    },
    MemoryPressure {
        /// PSI "some" avg10: percent of the last 10 s in which some task waited for memory.
        some_avg10: f64,
        full_avg10: Option<f64>,
        /// How long the pressure has stayed above the threshold.
        held: Duration,
    },
    OomKilled {
        /// Processes killed since Corral began watching; at least 1.
        kills: u64,
        limit: Option<Bytes>,
        /// The most memory the unit was seen using (memory.peak or memory.current).
        peak: Option<Bytes>,
        /// The whole unit ends with the kill: systemd stops it (Result=oom-kill) because its
        /// OOMPolicy is stop or kill, or it ended after the kill.
        unit_ended: bool,
        /// The process the kernel killed, when the unit went on and the monitor saw it go
        /// (see [`crate::monitor::processes::oom_victim`]).
        victim: Option<KilledProcess>,
    },
}

impl AlertDetail {
    pub fn condition(&self) -> Condition {
        match self {
            AlertDetail::MemoryNearLimit { .. } => Condition::MemoryNearLimit,
            AlertDetail::MemoryThrottled { .. } => Condition::MemoryThrottled,
            AlertDetail::CpuThrottled { .. } => Condition::CpuThrottled,
            AlertDetail::MemoryPressure { .. } => Condition::MemoryPressure,
            AlertDetail::OomKilled { .. } => Condition::OomKilled,
        }
    }
}

/// A condition on one unit, as last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub unit: String,
    pub app_name: String,
    pub app_id: Option<String>,
    /// The preset the unit was launched with, when Corral launched it (for its policies).
    pub preset: Option<String>,
    pub limits: UnitLimits,
    pub detail: AlertDetail,
}

impl Alert {
    pub fn condition(&self) -> Condition {
        self.detail.condition()
    }
}

/// What changed about one unit's condition.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    /// The condition began: show it.
    Raised(Alert),
    /// It still holds and its figures changed materially: replace what is shown.
    Updated(Alert),
    /// It is over (or the unit ended): withdraw what is shown. Carries the last reported alert.
    Cleared(Alert),
}

impl AlertChange {
    pub fn alert(&self) -> &Alert {
        match self {
            AlertChange::Raised(a) | AlertChange::Updated(a) | AlertChange::Cleared(a) => a,
        }
    }
}

/// Thresholds and timings of the rules. Percentages are 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThresholds {
    /// Raise "near limit" at this share of the limit…
    pub memory_warning: f64,
    /// …and clear it only below this one…
    pub memory_clear: f64,
    /// …once it has stayed below for this long: under memory.high the kernel reclaims in
    /// bursts, and a dip of a second must not clear an alert that the next second raises again.
    pub memory_clear_after: Duration,
    /// Update a raised "near limit" when the share moved this many points since it was shown.
    pub memory_update_step: f64,
    /// memory.high throttling must go on this long before it is raised…
    pub throttling_after: Duration,
    /// …and pauses this short do not end it (reclaim comes in bursts)…
    pub throttling_lapse: Duration,
    /// …and it clears after this long without a new event.
    pub throttling_clear_after: Duration,
    /// "CPU held at its quota": throttled in more than this share of periods…
    pub cpu_throttled_share: f64,
    /// …continuously for this long; cleared after `throttling_clear_after` below it.
    pub cpu_after: Duration,
    /// PSI memory "some" avg10 at or above this raises "pressure"…
    pub pressure_warning: f64,
    /// …once it has held this long…
    pub pressure_after: Duration,
    /// …and it clears below this.
    pub pressure_clear: f64,
    /// Update a raised "pressure" when avg10 moved this many points since it was shown.
    pub pressure_update_step: f64,
}

impl Default for AlertThresholds {
    fn default() -> AlertThresholds {
        AlertThresholds::from_general(&General::default())
    }
}

impl AlertThresholds {
    /// The thresholds the `[general]` table sets (memory-warning, pressure-warning,
    /// pressure-seconds), with the rest derived from them.
    pub fn from_general(general: &General) -> AlertThresholds {
        let memory_warning = general.memory_warning;
        let pressure_warning = general.pressure_warning;
        AlertThresholds {
            memory_warning,
            // 5 points of hysteresis: allocation patterns swing by a few percent all the time.
            memory_clear: (memory_warning - 5.0).max(0.0),
            memory_clear_after: Duration::from_secs(5),
            memory_update_step: 5.0,
            throttling_after: Duration::from_secs(2),
            throttling_lapse: Duration::from_secs(5),
            throttling_clear_after: Duration::from_secs(10),
            cpu_throttled_share: 50.0,
            cpu_after: Duration::from_secs(3),
            pressure_warning,
            pressure_after: Duration::from_secs_f64(general.pressure_seconds),
            pressure_clear: pressure_warning * 0.75,
            pressure_update_step: 10.0,
        }
    }
}

/// A condition that must hold for a while before it counts, with lapses up to a tolerance.
#[derive(Debug, Clone, Copy, Default)]
struct Sustained {
    /// When the current episode began.
    since: Option<Instant>,
    /// When the condition last held.
    last: Option<Instant>,
}

impl Sustained {
    /// Records whether the condition held at `now`. An observation where it does not hold
    /// ends the episode only once the condition last held more than `lapse` ago.
    fn observe(&mut self, holds: bool, now: Instant, lapse: Duration) {
        if holds {
            self.since.get_or_insert(now);
            self.last = Some(now);
        } else if self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) > lapse)
        {
            self.since = None;
        }
    }

    fn held_for(&self, now: Instant) -> Duration {
        self.since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    fn quiet_for(&self, now: Instant) -> Duration {
        self.last
            .map_or(Duration::MAX, |last| now.saturating_duration_since(last))
    }

    fn reset(&mut self) {
        *self = Sustained::default();
    }
}

/// The counters of the previous observation, to tell what rose since.
#[derive(Debug, Clone, Copy)]
struct Counters {
    at: Instant,
    memory_high_events: Option<u64>,
    oom_kills: Option<u64>,
    cpu: Option<CpuStat>,
}

/// What a rule concludes from one observation.
enum Verdict {
    /// The condition holds: raise it, or update it if the figures moved materially.
    Holds(AlertDetail),
    /// Between the raise and clear thresholds, or not yet held long enough: no change.
    Unchanged,
    /// The condition is over: clear it if it was raised.
    Over(Condition),
}

#[derive(Debug, Default)]
struct UnitWatch {
    previous: Option<Counters>,
    throttling: Sustained,
    throttle_events: u64,
    cpu: Sustained,
    pressure: Sustained,
    oom_kills: u64,
    peak: Option<u64>,
    /// Since when a raised "near limit" has been below its clear level.
    memory_below_since: Option<Instant>,
    limits: UnitLimits,
    /// The alert last reported for each condition, indexed by `Condition::index`.
    active: [Option<Alert>; 5],
}

/// Applies the rules to each unit's samples and tracks which alerts are raised.
#[derive(Debug, Default)]
pub struct AlertEngine {
    thresholds: AlertThresholds,
    units: HashMap<String, UnitWatch>,
}

impl AlertEngine {
    pub fn new(thresholds: AlertThresholds) -> AlertEngine {
        AlertEngine {
            thresholds,
            units: HashMap::new(),
        }
    }

    pub fn thresholds(&self) -> &AlertThresholds {
        &self.thresholds
    }

    /// New thresholds (the config changed); they apply from the next observation.
    pub fn set_thresholds(&mut self, thresholds: AlertThresholds) {
        self.thresholds = thresholds;
    }

    /// Applies the rules to one new sample of a unit. Call it once per sampling tick and on
    /// wakeups (inotify on memory.events, a PSI trigger); `now` is monotonic, so suspend and
    /// wall-clock changes do not fake rates. A snapshot without a cgroup changes nothing: an
    /// ended unit is reported through [`AlertEngine::unit_ended`].
    pub fn observe(&mut self, snapshot: &UnitSnapshot, now: Instant) -> Vec<AlertChange> {
        let mut changes = Vec::new();
        let Some(sample) = &snapshot.cgroup else {
            return changes;
        };
        let thresholds = self.thresholds;
        let watch = match self.units.get_mut(&snapshot.info.unit) {
            Some(watch) => watch,
            None => self.units.entry(snapshot.info.unit.clone()).or_default(),
        };
        let events = sample.memory_events.unwrap_or_default();
        let current = Counters {
            at: now,
            memory_high_events: events.high,
            oom_kills: events.oom_kill,
            cpu: sample.cpu_stat,
        };
        watch.limits = UnitLimits::of(sample);
        let seen = sample.memory_peak.max(sample.memory_current);
        watch.peak = watch.peak.max(seen);

        let verdicts = [
            memory_near_limit(&thresholds, watch, sample, now),
            memory_throttled(&thresholds, watch, sample, &current),
            cpu_throttled(&thresholds, watch, snapshot, &current),
            memory_pressure(&thresholds, watch, sample, now),
            oom_killed(watch, &current),
        ];
        watch.previous = Some(current);
        for verdict in verdicts {
            settle(&thresholds, watch, &snapshot.info, verdict, &mut changes);
        }
        changes
    }

    /// The unit ended (systemd reported it inactive, failed or removed), with systemd's Result
    /// when known. Clears its conditions, raises or updates the OOM alert when the Result is
    /// "oom-kill", and forgets the unit.
    pub fn unit_ended(&mut self, info: &UnitInfo, result: Option<&str>) -> Vec<AlertChange> {
        let mut watch = self.units.remove(&info.unit).unwrap_or_default();
        let mut changes = Vec::new();
        for condition in Condition::ALL {
            if condition == Condition::OomKilled {
                continue;
            }
            if let Some(alert) = watch.active[condition.index()].take() {
                changes.push(AlertChange::Cleared(alert));
            }
        }
        let killed = result == Some("oom-kill");
        // An app that lost processes to the OOM killer and went on (OOMPolicy=continue), then
        // ended well, was not killed: its alert goes.
        if result == Some("success")
            && let Some(alert) = watch.active[Condition::OomKilled.index()].take()
        {
            changes.push(AlertChange::Cleared(alert));
            return changes;
        }
        if killed || watch.active[Condition::OomKilled.index()].is_some() {
            let detail = AlertDetail::OomKilled {
                kills: watch.oom_kills.max(1),
                limit: watch.limits.memory_max,
                peak: watch.peak.map(Bytes),
                unit_ended: true,
                victim: None,
            };
            let alert = alert(info, watch.limits, detail);
            changes.push(match watch.active[Condition::OomKilled.index()] {
                Some(_) => AlertChange::Updated(alert),
                None => AlertChange::Raised(alert),
            });
        }
        changes
    }

    /// Forgets a unit without reporting anything, e.g. one that is no longer watched.
    pub fn forget(&mut self, unit: &str) {
        self.units.remove(unit);
    }

    /// The alerts currently raised for a unit.
    pub fn active(&self, unit: &str) -> impl Iterator<Item = &Alert> {
        self.units
            .get(unit)
            .into_iter()
            .flat_map(|watch| watch.active.iter().flatten())
    }

    /// Every alert currently raised.
    pub fn all_active(&self) -> impl Iterator<Item = &Alert> {
        self.units
            .values()
            .flat_map(|watch| watch.active.iter().flatten())
    }
}

fn alert(info: &UnitInfo, limits: UnitLimits, detail: AlertDetail) -> Alert {
    Alert {
        unit: info.unit.clone(),
        app_name: info.name.clone(),
        app_id: info.app_id.clone(),
        preset: info.preset.clone(),
        limits,
        detail,
    }
}

/// Turns a verdict into a change, comparing with what was last reported.
fn settle(
    thresholds: &AlertThresholds,
    watch: &mut UnitWatch,
    info: &UnitInfo,
    verdict: Verdict,
    changes: &mut Vec<AlertChange>,
) {
    match verdict {
        Verdict::Unchanged => {}
        Verdict::Over(condition) => {
            if let Some(shown) = watch.active[condition.index()].take() {
                changes.push(AlertChange::Cleared(shown));
            }
        }
        Verdict::Holds(detail) => {
            let slot = &mut watch.active[detail.condition().index()];
            match slot {
                None => {
                    let raised = alert(info, watch.limits, detail);
                    *slot = Some(raised.clone());
                    changes.push(AlertChange::Raised(raised));
                }
                Some(shown) => {
                    if shown.limits != watch.limits || moved(thresholds, &shown.detail, &detail) {
                        shown.limits = watch.limits;
                        shown.detail = detail;
                        changes.push(AlertChange::Updated(shown.clone()));
                    }
                }
            }
        }
    }
}

/// Whether the figures changed enough to bother the person again.
fn moved(thresholds: &AlertThresholds, shown: &AlertDetail, now: &AlertDetail) -> bool {
    use AlertDetail as D;
    match (shown, now) {
        (
            D::MemoryNearLimit {
                limit: a,
                boundary: ba,
                percent: pa,
                ..
            },
            D::MemoryNearLimit {
                limit: b,
                boundary: bb,
                percent: pb,
                ..
            },
        ) => a != b || ba != bb || (pa - pb).abs() >= thresholds.memory_update_step,
        (D::MemoryThrottled { high: a, .. }, D::MemoryThrottled { high: b, .. }) => a != b,
        (D::CpuThrottled { quota: a, .. }, D::CpuThrottled { quota: b, .. }) => a != b,
        (D::MemoryPressure { some_avg10: a, .. }, D::MemoryPressure { some_avg10: b, .. }) => {
            (a - b).abs() >= thresholds.pressure_update_step
        }
        (
            D::OomKilled {
                kills: a,
                unit_ended: ea,
                ..
            },
            D::OomKilled {
                kills: b,
                unit_ended: eb,
                ..
            },
        ) => a != b || ea != eb,
        _ => true,
    }
}

fn memory_near_limit(
    t: &AlertThresholds,
    watch: &mut UnitWatch,
    s: &CgroupSample,
    now: Instant,
) -> Verdict {
    let limit = match (watch.limits.memory_max, watch.limits.memory_high) {
        (Some(max), _) => Some((max, MemoryBoundary::Max)),
        (None, Some(high)) => Some((high, MemoryBoundary::High)),
        (None, None) => None,
    };
    let (Some((limit, boundary)), Some(used)) = (limit, s.memory_current) else {
        return Verdict::Over(Condition::MemoryNearLimit);
    };
    let percent = used as f64 / limit.0.max(1) as f64 * 100.0;
    let active = watch.active[Condition::MemoryNearLimit.index()].is_some();
    if percent >= t.memory_clear {
        watch.memory_below_since = None;
    }
    if percent >= t.memory_warning || (active && percent >= t.memory_clear) {
        Verdict::Holds(AlertDetail::MemoryNearLimit {
            used: Bytes(used),
            limit,
            boundary,
            percent,
        })
    } else if percent < t.memory_clear {
        let since = *watch.memory_below_since.get_or_insert(now);
        // A new limit is a new situation (someone raised it): no need to wait.
        let limit_changed = watch.active[Condition::MemoryNearLimit.index()]
            .as_ref()
            .is_some_and(|a| {
                matches!(a.detail, AlertDetail::MemoryNearLimit { limit: shown, .. } if shown != limit)
            });
        if !active || limit_changed || now.duration_since(since) >= t.memory_clear_after {
            Verdict::Over(Condition::MemoryNearLimit)
        } else {
            Verdict::Unchanged
        }
    } else {
        Verdict::Unchanged
    }
}

fn memory_throttled(
    t: &AlertThresholds,
    watch: &mut UnitWatch,
    s: &CgroupSample,
    current: &Counters,
) -> Verdict {
    let Some(high) = watch.limits.memory_high else {
        watch.throttling.reset();
        return Verdict::Over(Condition::MemoryThrottled);
    };
    let rise = rise(
        watch.previous.and_then(|p| p.memory_high_events),
        current.memory_high_events,
    );
    if rise > 0 && watch.throttling.quiet_for(current.at) > t.throttling_lapse {
        watch.throttle_events = 0;
    }
    watch.throttle_events = watch.throttle_events.saturating_add(rise);
    watch
        .throttling
        .observe(rise > 0, current.at, t.throttling_lapse);
    if rise > 0 && watch.throttling.held_for(current.at) >= t.throttling_after {
        Verdict::Holds(AlertDetail::MemoryThrottled {
            used: s.memory_current.map(Bytes),
            high,
            events: watch.throttle_events,
        })
    } else if watch.throttling.quiet_for(current.at) >= t.throttling_clear_after {
        Verdict::Over(Condition::MemoryThrottled)
    } else {
        Verdict::Unchanged
    }
}

fn cpu_throttled(
    t: &AlertThresholds,
    watch: &mut UnitWatch,
    snapshot: &UnitSnapshot,
    current: &Counters,
) -> Verdict {
    let Some(quota) = watch.limits.cpu_quota else {
        watch.cpu.reset();
        return Verdict::Over(Condition::CpuThrottled);
    };
    let share = match (watch.previous, current.cpu) {
        (Some(previous), Some(now)) => previous.cpu.and_then(|before| {
            throttled_share(
                &before,
                &now,
                current.at.saturating_duration_since(previous.at),
            )
        }),
        _ => None,
    };
    // No reading (first sample, counters reset): keep the state as it is.
    let Some(share) = share else {
        return Verdict::Unchanged;
    };
    let holds = share > t.cpu_throttled_share;
    // CPU use is steady, unlike reclaim: any sample below the line breaks the episode.
    watch.cpu.observe(holds, current.at, Duration::ZERO);
    if holds && watch.cpu.held_for(current.at) >= t.cpu_after {
        Verdict::Holds(AlertDetail::CpuThrottled {
            throttled_percent: share,
            quota,
            usage_percent: snapshot.cpu_percent,
        })
    } else if watch.cpu.quiet_for(current.at) >= t.throttling_clear_after {
        Verdict::Over(Condition::CpuThrottled)
    } else {
        Verdict::Unchanged
    }
}

/// The share of time a unit was held back by its quota, in percent. Preferred: the share of
/// enforcement periods (cpu.max's period, 100 ms by default) in which it ran out of quota,
/// which does not depend on how many CPUs it uses. When no period passed (the unit sat idle)
/// or the keys are missing, throttled_usec over wall time stands in; it adds up the waits of
/// every CPU, so it can pass 100 %.
fn throttled_share(before: &CpuStat, now: &CpuStat, wall: Duration) -> Option<f64> {
    let delta = |a: Option<u64>, b: Option<u64>| b?.checked_sub(a?);
    let periods = delta(before.nr_periods, now.nr_periods);
    let throttled = delta(before.nr_throttled, now.nr_throttled);
    match (periods, throttled) {
        (Some(periods), Some(throttled)) if periods > 0 => {
            Some(throttled as f64 / periods as f64 * 100.0)
        }
        _ => {
            let usec = delta(before.throttled_usec, now.throttled_usec)?;
            let wall = wall.as_micros();
            (wall > 0).then(|| usec as f64 / wall as f64 * 100.0)
        }
    }
}

fn memory_pressure(
    t: &AlertThresholds,
    watch: &mut UnitWatch,
    s: &CgroupSample,
    now: Instant,
) -> Verdict {
    let Some(pressure) = s.memory_pressure else {
        return Verdict::Unchanged;
    };
    let avg10 = pressure.some.avg10;
    let holds = avg10 >= t.pressure_warning;
    // avg10 is already a 10-second average: no extra lapse tolerance.
    watch.pressure.observe(holds, now, Duration::ZERO);
    let active = watch.active[Condition::MemoryPressure.index()].is_some();
    let detail = AlertDetail::MemoryPressure {
        some_avg10: avg10,
        full_avg10: pressure.full.map(|f| f.avg10),
        held: watch.pressure.held_for(now),
    };
    if active {
        if avg10 < t.pressure_clear {
            watch.pressure.reset();
            Verdict::Over(Condition::MemoryPressure)
        } else {
            Verdict::Holds(detail)
        }
    } else if holds && watch.pressure.held_for(now) >= t.pressure_after {
        Verdict::Holds(detail)
    } else {
        Verdict::Unchanged
    }
}

fn oom_killed(watch: &mut UnitWatch, current: &Counters) -> Verdict {
    let kills = rise(watch.previous.and_then(|p| p.oom_kills), current.oom_kills);
    if kills == 0 {
        return Verdict::Unchanged;
    }
    watch.oom_kills = watch.oom_kills.saturating_add(kills);
    Verdict::Holds(AlertDetail::OomKilled {
        kills: watch.oom_kills,
        limit: watch.limits.memory_max,
        peak: watch.peak.map(Bytes),
        unit_ended: false,
        victim: None,
    })
}

/// How much a cumulative counter rose; 0 on the first reading or when it went backwards
/// (a new cgroup under the same unit name), so counts from before Corral watched never alert.
fn rise(previous: Option<u64>, current: Option<u64>) -> u64 {
    match (previous, current) {
        (Some(previous), Some(current)) => current.saturating_sub(previous),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{MemoryEvents, Pressure, PressureLine};

    const GIB: u64 = Bytes::GIB;

    fn info() -> UnitInfo {
        UnitInfo::new(
            "app-corral-firefox-1a2b3c4d.service".to_owned(),
            "Firefox [corral: browser]",
            "active".to_owned(),
            "running".to_owned(),
            Some("/app.slice/app-corral-firefox-1a2b3c4d.service".to_owned()),
        )
    }

    /// A recorded sequence: one unit's samples, one per second, built step by step.
    struct Recording {
        engine: AlertEngine,
        start: Instant,
        second: f64,
        snapshot: UnitSnapshot,
    }

    impl Recording {
        fn new() -> Recording {
            Recording {
                engine: AlertEngine::default(),
                start: Instant::now(),
                second: 0.0,
                snapshot: UnitSnapshot {
                    info: info().into(),
                    cgroup: Some(CgroupSample {
                        memory_current: Some(GIB),
                        memory_max: Some(Limit::Value(4 * GIB)),
                        memory_high: Some(Limit::Max),
                        memory_events: Some(MemoryEvents {
                            high: Some(0),
                            max: Some(0),
                            oom: Some(0),
                            oom_kill: Some(0),
                            ..MemoryEvents::default()
                        }),
                        cpu_stat: Some(CpuStat {
                            usage_usec: Some(0),
                            nr_periods: Some(0),
                            nr_throttled: Some(0),
                            throttled_usec: Some(0),
                            ..CpuStat::default()
                        }),
                        cpu_max: Some(CpuMax {
                            quota: Limit::Max,
                            period_usec: 100_000,
                        }),
                        memory_pressure: Some(Pressure::default()),
                        ..CgroupSample::default()
                    }),
                    cpu_percent: Some(5.0),
                },
            }
        }

        fn cgroup(&mut self) -> &mut CgroupSample {
            self.snapshot.cgroup.as_mut().unwrap()
        }

        /// Sets memory.current to `percent` of 4 GiB.
        fn memory_percent(&mut self, percent: f64) -> &mut Recording {
            self.cgroup().memory_current = Some((4.0 * GIB as f64 * percent / 100.0) as u64);
            self
        }

        fn events(&mut self) -> &mut MemoryEvents {
            self.cgroup().memory_events.as_mut().unwrap()
        }

        fn cpu(&mut self) -> &mut CpuStat {
            self.cgroup().cpu_stat.as_mut().unwrap()
        }

        fn pressure(&mut self, avg10: f64) -> &mut Recording {
            self.cgroup().memory_pressure = Some(Pressure {
                some: PressureLine {
                    avg10,
                    ..PressureLine::default()
                },
                full: None,
            });
            self
        }

        /// One second later, observe.
        fn tick(&mut self) -> Vec<AlertChange> {
            self.tick_after(1.0)
        }

        fn tick_after(&mut self, seconds: f64) -> Vec<AlertChange> {
            self.second += seconds;
            let now = self.start + Duration::from_secs_f64(self.second);
            self.engine.observe(&self.snapshot, now)
        }
    }

    fn kinds(changes: &[AlertChange]) -> Vec<(&'static str, Condition)> {
        changes
            .iter()
            .map(|c| {
                let kind = match c {
                    AlertChange::Raised(_) => "raised",
                    AlertChange::Updated(_) => "updated",
                    AlertChange::Cleared(_) => "cleared",
                };
                (kind, c.alert().condition())
            })
            .collect()
    }

    fn percent_of(change: &AlertChange) -> f64 {
        match &change.alert().detail {
            AlertDetail::MemoryNearLimit { percent, .. } => *percent,
            other => panic!("not a memory alert: {other:?}"),
        }
    }

    #[test]
    fn memory_hovering_around_the_threshold_raises_once() {
        let mut r = Recording::new();
        let mut all = Vec::new();
        for percent in [
            80.0, 89.0, 90.5, 89.5, 91.0, 88.0, 92.0, 89.0, 90.2, 86.0, 93.0, 87.0,
        ] {
            let changes = r.memory_percent(percent).tick();
            if changes.is_empty() {
                assert_eq!(changes.capacity(), 0, "no allocation without a change");
            }
            all.extend(changes);
        }
        assert_eq!(kinds(&all), [("raised", Condition::MemoryNearLimit)]);
        assert!((percent_of(&all[0]) - 90.5).abs() < 0.01);
        let AlertDetail::MemoryNearLimit {
            limit, boundary, ..
        } = all[0].alert().detail
        else {
            unreachable!()
        };
        assert_eq!((limit, boundary), (Bytes(4 * GIB), MemoryBoundary::Max));
        assert_eq!(all[0].alert().app_name, "Firefox");
        assert_eq!(all[0].alert().app_id.as_deref(), Some("firefox"));

        // A dip below the clear level is not the end of it; 5 s below is.
        assert!(r.memory_percent(80.0).tick().is_empty());
        assert!(
            r.memory_percent(88.0).tick().is_empty(),
            "back above: the dip is over"
        );
        for _ in 0..5 {
            assert!(
                r.memory_percent(84.0).tick().is_empty(),
                "below for less than 5 s"
            );
        }
        let cleared = r.memory_percent(84.0).tick();
        assert_eq!(kinds(&cleared), [("cleared", Condition::MemoryNearLimit)]);
        assert!(r.memory_percent(84.5).tick().is_empty());
        assert!(r.memory_percent(89.9).tick().is_empty());
        let again = r.memory_percent(90.1).tick();
        assert_eq!(kinds(&again), [("raised", Condition::MemoryNearLimit)]);
    }

    #[test]
    fn memory_updates_only_on_a_material_change() {
        let mut r = Recording::new();
        assert_eq!(r.memory_percent(90.5).tick().len(), 1);
        assert!(r.memory_percent(93.0).tick().is_empty());
        let updated = r.memory_percent(97.0).tick();
        assert_eq!(kinds(&updated), [("updated", Condition::MemoryNearLimit)]);
        assert!((percent_of(&updated[0]) - 97.0).abs() < 0.01);
        assert!(r.memory_percent(98.0).tick().is_empty());
        // The limit is raised a little: still near it, so the alert is updated with the new limit.
        r.cgroup().memory_max = Some(Limit::Value(4 * GIB + 200 * Bytes::MIB));
        let updated = r.tick();
        assert_eq!(kinds(&updated), [("updated", Condition::MemoryNearLimit)]);
        assert_eq!(
            updated[0].alert().limits.memory_max,
            Some(Bytes(4 * GIB + 200 * Bytes::MIB))
        );
        // Raised a lot: cleared.
        r.cgroup().memory_max = Some(Limit::Value(8 * GIB));
        assert_eq!(kinds(&r.tick()), [("cleared", Condition::MemoryNearLimit)]);
        // No limit at all: nothing to be near.
        r.cgroup().memory_max = Some(Limit::Max);
        r.memory_percent(400.0);
        assert!(r.tick().is_empty());
    }

    #[test]
    fn memory_high_is_the_limit_when_there_is_no_max() {
        let mut r = Recording::new();
        r.cgroup().memory_max = Some(Limit::Max);
        r.cgroup().memory_high = Some(Limit::Value(2 * GIB));
        r.cgroup().memory_current = Some(2 * GIB - 100 * Bytes::MIB);
        let changes = r.tick();
        assert_eq!(kinds(&changes), [("raised", Condition::MemoryNearLimit)]);
        let AlertDetail::MemoryNearLimit {
            boundary, limit, ..
        } = changes[0].alert().detail
        else {
            unreachable!()
        };
        assert_eq!((boundary, limit), (MemoryBoundary::High, Bytes(2 * GIB)));
    }

    #[test]
    fn memory_high_throttling_must_last_and_clears_after_a_quiet_spell() {
        let mut r = Recording::new();
        r.cgroup().memory_high = Some(Limit::Value(3 * GIB));
        assert!(r.tick().is_empty(), "baseline");
        // A single burst of reclaim is not worth a notification.
        r.events().high = Some(40);
        assert!(r.tick().is_empty());
        for _ in 0..10 {
            assert!(r.tick().is_empty());
        }
        // Sustained: events rise every second (with one quiet second); raised after 2 s.
        let mut all = Vec::new();
        for (second, high) in [(1, 100), (2, 200), (3, 300), (4, 300), (5, 400), (6, 500)] {
            r.events().high = Some(high);
            let changes = r.tick();
            if second == 3 {
                assert_eq!(kinds(&changes), [("raised", Condition::MemoryThrottled)]);
            }
            all.extend(changes);
        }
        assert_eq!(all.len(), 1, "{all:?}");
        let AlertDetail::MemoryThrottled { events, high, .. } = all[0].alert().detail else {
            unreachable!()
        };
        assert_eq!((events, high), (260, Bytes(3 * GIB)));
        // Quiet for 10 s: cleared on the tenth.
        for second in 1..=10 {
            let changes = r.tick();
            if second < 10 {
                assert!(changes.is_empty(), "second {second}: {changes:?}");
            } else {
                assert_eq!(kinds(&changes), [("cleared", Condition::MemoryThrottled)]);
            }
        }
    }

    #[test]
    fn cpu_held_at_its_quota_for_three_seconds() {
        let mut r = Recording::new();
        r.cgroup().cpu_max = Some(CpuMax {
            quota: Limit::Value(100_000),
            period_usec: 100_000,
        });
        assert!(r.tick().is_empty(), "baseline");
        // Throttled in 8 of 10 periods every second: raised on the fourth such second (3 s
        // after the first).
        let mut raised_at = None;
        for second in 1..=6 {
            let cpu = r.cpu();
            cpu.nr_periods = Some(cpu.nr_periods.unwrap() + 10);
            cpu.nr_throttled = Some(cpu.nr_throttled.unwrap() + 8);
            let changes = r.tick();
            if !changes.is_empty() {
                assert_eq!(kinds(&changes), [("raised", Condition::CpuThrottled)]);
                let AlertDetail::CpuThrottled {
                    throttled_percent,
                    quota,
                    ..
                } = changes[0].alert().detail
                else {
                    unreachable!()
                };
                assert_eq!(quota, CpuQuota::Percent(100));
                assert!((throttled_percent - 80.0).abs() < 1e-9);
                assert!(raised_at.is_none());
                raised_at = Some(second);
            }
        }
        assert_eq!(raised_at, Some(4));
        // Back to light use: cleared after 10 s.
        let mut cleared_after = None;
        for second in 1..=12 {
            let cpu = r.cpu();
            cpu.nr_periods = Some(cpu.nr_periods.unwrap() + 10);
            cpu.nr_throttled = Some(cpu.nr_throttled.unwrap() + 1);
            if !r.tick().is_empty() {
                cleared_after.get_or_insert(second);
            }
        }
        assert_eq!(cleared_after, Some(10));
    }

    #[test]
    fn cpu_alternating_around_the_quota_never_raises() {
        let mut r = Recording::new();
        r.cgroup().cpu_max = Some(CpuMax {
            quota: Limit::Value(50_000),
            period_usec: 100_000,
        });
        r.tick();
        for second in 0..30 {
            let cpu = r.cpu();
            cpu.nr_periods = Some(cpu.nr_periods.unwrap() + 10);
            let throttled = if second % 2 == 0 { 9 } else { 2 };
            cpu.nr_throttled = Some(cpu.nr_throttled.unwrap() + throttled);
            assert!(r.tick().is_empty());
        }
    }

    #[test]
    fn cpu_falls_back_to_throttled_time_over_wall_time() {
        let before = CpuStat {
            throttled_usec: Some(0),
            ..CpuStat::default()
        };
        let now = CpuStat {
            throttled_usec: Some(600_000),
            ..CpuStat::default()
        };
        let share = throttled_share(&before, &now, Duration::from_secs(1));
        assert!((share.unwrap() - 60.0).abs() < 1e-9);
        assert_eq!(throttled_share(&before, &now, Duration::ZERO), None);
        assert_eq!(throttled_share(&now, &before, Duration::from_secs(1)), None);
    }

    #[test]
    fn sustained_memory_pressure_with_hysteresis() {
        let mut r = Recording::new();
        // 25 % for 9 s: not yet; at 10 s: raised.
        let mut raised_at = None;
        for second in 0..=12 {
            if !r.pressure(25.0).tick().is_empty() {
                raised_at.get_or_insert(second);
            }
        }
        assert_eq!(raised_at, Some(10));
        // Hovering between the clear level (15) and just above the warning: no spam.
        for avg10 in [19.0, 21.0, 16.0, 22.0, 18.0, 20.5] {
            assert!(r.pressure(avg10).tick().is_empty(), "{avg10}");
        }
        // A big rise is news.
        let updated = r.pressure(45.0).tick();
        assert_eq!(kinds(&updated), [("updated", Condition::MemoryPressure)]);
        let cleared = r.pressure(14.0).tick();
        assert_eq!(kinds(&cleared), [("cleared", Condition::MemoryPressure)]);
        // It must hold again for 10 s before it is raised again.
        for _ in 0..10 {
            assert!(r.pressure(30.0).tick().is_empty());
        }
        assert_eq!(r.pressure(30.0).tick().len(), 1);
    }

    #[test]
    fn oom_kills_before_corral_watched_do_not_alert() {
        let mut r = Recording::new();
        r.events().oom_kill = Some(2);
        assert!(r.tick().is_empty());
        assert!(r.tick().is_empty());
        r.memory_percent(99.0);
        r.cgroup().memory_peak = Some(4 * GIB);
        r.events().oom_kill = Some(3);
        let changes = r.tick();
        assert_eq!(
            kinds(&changes),
            [
                ("raised", Condition::MemoryNearLimit),
                ("raised", Condition::OomKilled)
            ]
        );
        assert_eq!(
            changes[1].alert().detail,
            AlertDetail::OomKilled {
                kills: 1,
                limit: Some(Bytes(4 * GIB)),
                peak: Some(Bytes(4 * GIB)),
                unit_ended: false,
                victim: None,
            }
        );
        assert!(r.tick().is_empty(), "the count did not rise again");
        r.events().oom_kill = Some(5);
        let updated = r.tick();
        assert_eq!(kinds(&updated), [("updated", Condition::OomKilled)]);
        assert!(matches!(
            updated[0].alert().detail,
            AlertDetail::OomKilled { kills: 3, .. }
        ));

        // The unit then ends with Result=oom-kill: its live alerts are withdrawn and the OOM
        // alert says it ended.
        let ended = r.engine.unit_ended(&info(), Some("oom-kill"));
        assert_eq!(
            kinds(&ended),
            [
                ("cleared", Condition::MemoryNearLimit),
                ("updated", Condition::OomKilled)
            ]
        );
        assert!(matches!(
            ended[1].alert().detail,
            AlertDetail::OomKilled {
                kills: 3,
                unit_ended: true,
                ..
            }
        ));
        assert_eq!(r.engine.all_active().count(), 0, "the unit is forgotten");
    }

    #[test]
    fn a_unit_killed_whole_before_any_counter_was_read() {
        let mut r = Recording::new();
        r.memory_percent(70.0);
        r.cgroup().memory_peak = Some(4 * GIB);
        assert!(r.tick().is_empty());
        let ended = r.engine.unit_ended(&info(), Some("oom-kill"));
        assert_eq!(kinds(&ended), [("raised", Condition::OomKilled)]);
        assert_eq!(
            ended[0].alert().detail,
            AlertDetail::OomKilled {
                kills: 1,
                limit: Some(Bytes(4 * GIB)),
                peak: Some(Bytes(4 * GIB)),
                unit_ended: true,
                victim: None,
            }
        );
        // Never observed at all: still reported, with what is known.
        let ended = AlertEngine::default().unit_ended(&info(), Some("oom-kill"));
        assert_eq!(kinds(&ended), [("raised", Condition::OomKilled)]);
    }

    #[test]
    fn a_unit_ending_normally_withdraws_its_alerts() {
        let mut r = Recording::new();
        r.memory_percent(95.0).tick();
        assert_eq!(r.engine.active(&info().unit).count(), 1);
        let ended = r.engine.unit_ended(&info(), Some("success"));
        assert_eq!(kinds(&ended), [("cleared", Condition::MemoryNearLimit)]);
        assert!(r.engine.unit_ended(&info(), None).is_empty());
    }

    #[test]
    fn an_app_that_went_on_after_an_oom_kill_and_ended_well_was_not_killed() {
        // OOMPolicy=continue: a process is killed, the unit runs on, and later stops cleanly.
        let mut r = Recording::new();
        r.events().oom_kill = Some(0);
        r.tick();
        r.events().oom_kill = Some(1);
        assert_eq!(kinds(&r.tick()), [("raised", Condition::OomKilled)]);
        let ended = r.engine.unit_ended(&info(), Some("success"));
        assert_eq!(kinds(&ended), [("cleared", Condition::OomKilled)]);
    }

    #[test]
    fn thresholds_come_from_the_config() {
        let general = General {
            memory_warning: 80.0,
            pressure_warning: 40.0,
            pressure_seconds: 5.0,
            ..General::default()
        };
        let t = AlertThresholds::from_general(&general);
        assert_eq!((t.memory_warning, t.memory_clear), (80.0, 75.0));
        assert_eq!((t.pressure_warning, t.pressure_clear), (40.0, 30.0));
        assert_eq!(t.pressure_after, Duration::from_secs(5));
        let mut r = Recording::new();
        r.engine.set_thresholds(t);
        assert_eq!(r.memory_percent(81.0).tick().len(), 1);
    }

    #[test]
    fn a_snapshot_without_a_cgroup_changes_nothing() {
        let mut r = Recording::new();
        r.memory_percent(95.0).tick();
        r.snapshot.cgroup = None;
        assert!(r.tick().is_empty());
        assert_eq!(r.engine.all_active().count(), 1);
    }
}
