//! The long-running monitor the window, the tray and `corral watch` render: keeps the list of
//! contained units current from systemd's UnitNew/UnitRemoved/JobRemoved signals, samples their cgroups at
//! the refresh interval and whenever a unit's cgroup signals a change (inotify on
//! memory.events/cgroup.events, a PSI trigger on memory.pressure: see [`super::wakeup`]; and
//! every 100 ms for units close to their memory warning, which no kernel event announces), runs
//! the runaway rules on every sample, keeps the usage history, records post-mortems of apps
//! that were OOM-killed or failed, and publishes each result on a watch channel and each alert
//! change on a broadcast channel. One per process.
//!
//! Why a unit ended comes from systemd's Result while the unit is still loaded
//! (org.freedesktop.systemd1(5)); once it is gone, from the memory.events oom_kill count seen
//! just before (Documentation/admin-guide/cgroup-v2.rst), or else from its parent slice's
//! oom_kill count, which counts its children's kills and outlives them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::cgroup::CgroupFs;
use crate::monitor::alerts::{Alert, AlertChange, AlertEngine, AlertThresholds};
use crate::monitor::history::History;
use crate::monitor::postmortem::{EventLog, PostMortem};
use crate::monitor::wakeup::UnitWakeup;
use crate::monitor::{self, Sampler, UnitInfo, UnitSnapshot};
use crate::presets::Config;
use crate::systemd::{Systemd, UnitOutcome};

/// Units that might be apps; other units' signals do not trigger a new listing.
fn may_be_app_unit(name: &str) -> bool {
    (name.starts_with("app-") || name.starts_with("run-"))
        && (name.ends_with(".service") || name.ends_with(".scope"))
}

/// Even without signals, list again this often: a safety net for missed signals.
const RELIST_EVERY: Duration = Duration::from_secs(10);

/// Units within this many percentage points below the memory warning, or growing fast enough
/// to get there by the next tick, are sampled every [`NEAR_SAMPLING`] too: crossing the warning
/// below memory.high changes no memory.events counter and causes no pressure, so no inotify or
/// PSI wakeup would announce it.
const NEAR_MARGIN: f64 = 10.0;
const NEAR_SAMPLING: Duration = Duration::from_millis(100);

/// Whether a unit using `used` bytes of `limit`, and `previous` at the last tick, is near
/// enough to its memory warning (percent of the limit) to be sampled between ticks: within
/// [`NEAR_MARGIN`] of it now, or as far from it as it grew since the last tick.
fn is_near(used: u64, limit: u64, previous: Option<u64>, warning: f64) -> bool {
    if limit == 0 {
        return false;
    }
    let growth = previous.map_or(0, |p| used.saturating_sub(p));
    let projected = used.saturating_add(growth);
    projected as f64 * 100.0 / limit as f64 >= warning - NEAR_MARGIN
}

/// Alert changes a slow subscriber may fall behind by before it misses some.
const CHANGES_BACKLOG: usize = 256;

/// What the views show: every contained unit's latest snapshot and the alerts raised.
#[derive(Debug, Clone, Default)]
pub struct MonitorState {
    pub units: Vec<UnitSnapshot>,
    pub sampled_at: Option<SystemTime>,
    /// Set while systemd cannot be listed; the views show it instead of failing.
    pub problem: Option<String>,
    /// Every alert currently raised, by unit then condition. The window shows these whether or
    /// not a notification server shows them too.
    pub alerts: Vec<Alert>,
}

/// How the monitor judges and records what it sees.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    pub thresholds: AlertThresholds,
    /// Where post-mortems go; `None` keeps them in memory only (the alerts still say it).
    pub event_log: Option<EventLog>,
}

impl MonitorOptions {
    /// The thresholds of the user's config and the default journal. A broken config or a
    /// missing state directory is reported once on stderr and the defaults stand in: the
    /// monitor must run regardless.
    pub fn from_config() -> MonitorOptions {
        let thresholds = match Config::load() {
            Ok(config) => AlertThresholds::from_general(&config.general),
            Err(e) => {
                eprintln!(
                    "corral: {}",
                    crate::i18n::gettext_f(
                        "warning: using the default alert thresholds: {error}",
                        &[("error", &e)]
                    )
                );
                AlertThresholds::default()
            }
        };
        let event_log = match EventLog::open_default() {
            Ok(log) => Some(log),
            Err(e) => {
                eprintln!(
                    "corral: {}",
                    crate::i18n::gettext_f(
                        "warning: post-mortems will not be kept: {error}",
                        &[("error", &e)]
                    )
                );
                None
            }
        };
        MonitorOptions {
            thresholds,
            event_log,
        }
    }
}

/// The usage history the monitor keeps, shared with whoever draws it (the window's graphs):
/// one copy per process, however many views read it.
pub type SharedHistory = Arc<std::sync::Mutex<History>>;

/// Locks a shared history; a panic elsewhere while it was held leaves it usable, since every
/// update leaves it consistent.
pub fn lock_history(history: &SharedHistory) -> std::sync::MutexGuard<'_, History> {
    history
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running monitor: its latest state, and ways to nudge it.
#[derive(Clone)]
pub struct Monitor {
    state: watch::Receiver<Arc<MonitorState>>,
    history: SharedHistory,
    refresh: Arc<Notify>,
    interval: watch::Sender<Duration>,
    changes: broadcast::Sender<AlertChange>,
}

impl Monitor {
    /// Starts the monitor on the current tokio runtime, with the config's thresholds.
    pub fn spawn(systemd: Systemd, cgroups: CgroupFs, interval: Duration) -> Monitor {
        Monitor::spawn_with(systemd, cgroups, interval, MonitorOptions::from_config())
    }

    /// The same with given options.
    pub fn spawn_with(
        systemd: Systemd,
        cgroups: CgroupFs,
        interval: Duration,
        options: MonitorOptions,
    ) -> Monitor {
        let (state_tx, state) = watch::channel(Arc::new(MonitorState::default()));
        let refresh = Arc::new(Notify::new());
        let (interval_tx, interval_rx) = watch::channel(interval);
        let (changes, _) = broadcast::channel(CHANGES_BACKLOG);
        let history = SharedHistory::default();
        tokio::spawn(run(
            systemd,
            cgroups,
            options,
            Arc::clone(&history),
            Outputs {
                state: state_tx,
                changes: changes.clone(),
            },
            Arc::clone(&refresh),
            interval_rx,
        ));
        Monitor {
            state,
            history,
            refresh,
            interval: interval_tx,
            changes,
        }
    }

    /// A receiver that wakes on every new state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MonitorState>> {
        self.state.clone()
    }

    /// Every alert raised, updated or cleared from now on, in order.
    pub fn alert_changes(&self) -> broadcast::Receiver<AlertChange> {
        self.changes.subscribe()
    }

    /// The usage history of every unit seen, recent and long views.
    pub fn history(&self) -> SharedHistory {
        Arc::clone(&self.history)
    }

    pub fn latest(&self) -> Arc<MonitorState> {
        self.state.borrow().clone()
    }

    /// Lists and samples again now, e.g. right after an action changed something.
    pub fn refresh(&self) {
        self.refresh.notify_one();
    }

    pub fn set_interval(&self, interval: Duration) {
        let _ = self.interval.send(interval);
    }
}

struct Outputs {
    state: watch::Sender<Arc<MonitorState>>,
    changes: broadcast::Sender<AlertChange>,
}

/// Everything the monitor holds between samples.
struct Watcher {
    systemd: Systemd,
    cgroups: CgroupFs,
    sampler: Sampler,
    engine: AlertEngine,
    history: SharedHistory,
    event_log: Option<EventLog>,
    units: Vec<UnitInfo>,
    snapshots: Vec<UnitSnapshot>,
    wakeups: HashMap<String, UnitWakeup>,
    wakeup_tx: mpsc::Sender<String>,
    /// Units whose end was already handled (a failed unit stays listed until it is collected).
    ended: HashSet<String>,
    /// Units this monitor holds loaded (RefUnit) so that their end can be read: why it ended
    /// (systemd's Result), which makes their post-mortem. Let go once read.
    held: HashSet<String>,
    problem: Option<String>,
    /// Alert changes made while handling ended units, published with the next state.
    pending: Vec<AlertChange>,
    /// OOM kills counted by each parent of a watched unit (its slice's memory.events, which
    /// counts its descendants' kills: cgroup-v2.rst, "memory.events"), as of the last tick.
    parent_oom_kills: HashMap<PathBuf, u64>,
    /// Each unit's memory.current at the previous tick: how fast it grows.
    previous_memory: HashMap<String, u64>,
}

/// The oom_kill count of a cgroup directory's memory.events, if readable.
fn oom_kills_in(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.events")).ok()?;
    crate::cgroup::parse_memory_events(&text).oom_kill
}

impl Watcher {
    /// Lists the units again; handles those that ended and watches those that are new.
    async fn relist(&mut self) {
        let list = match monitor::list_units_knowing(&self.systemd, true, &self.units).await {
            Ok(list) => list,
            Err(e) => {
                self.problem = Some(e.to_string());
                return;
            }
        };
        self.problem = None;
        let previous = std::mem::take(&mut self.units);
        for info in &previous {
            if !list.iter().any(|u| u.unit == info.unit) && !self.ended.contains(&info.unit) {
                self.unit_ended(info).await;
            }
        }
        for info in &list {
            if info.active_state == "failed" && !self.ended.contains(&info.unit) {
                self.unit_ended(info).await;
                self.ended.insert(info.unit.clone());
            }
        }
        self.ended
            .retain(|unit| list.iter().any(|u| &u.unit == unit));
        // Hold every running app unit, all calls in flight at once on the one connection.
        let systemd = &self.systemd;
        let newly_held = join_all(
            list.iter()
                .filter(|u| u.active_state != "failed" && !self.held.contains(&u.unit))
                .map(|u| async move { systemd.hold(&u.unit).await.then(|| u.unit.clone()) }),
        )
        .await;
        self.held.extend(newly_held.into_iter().flatten());
        self.wakeups.retain(|unit, _| {
            list.iter()
                .any(|u| &u.unit == unit && u.active_state != "failed")
        });
        for info in &list {
            if info.active_state == "failed" || self.wakeups.contains_key(&info.unit) {
                continue;
            }
            if let Some(cg) = &info.control_group {
                let dir = self.cgroups.path_of(cg);
                let wakeup = UnitWakeup::start(&info.unit, &dir, self.wakeup_tx.clone());
                self.wakeups.insert(info.unit.clone(), wakeup);
            }
        }
        self.units = list;
    }

    /// Samples every unit: a tick.
    fn sample_all(&mut self) -> Vec<AlertChange> {
        let at = SystemTime::now();
        let now = Instant::now();
        self.previous_memory = self
            .snapshots
            .iter()
            .filter_map(|s| Some((s.info.unit.clone(), s.cgroup.as_ref()?.memory_current?)))
            .collect();
        self.snapshots = self.sampler.sample(&self.units);
        lock_history(&self.history).record(&self.snapshots, at);
        let mut changes = Vec::new();
        for snapshot in &self.snapshots {
            changes.extend(self.engine.observe(snapshot, now));
        }
        // A unit whose cgroup vanished since the last tick may have been OOM-killed, and its
        // end is not handled yet: its parent's count stays as it was before, or the kill would
        // already be in the baseline that parent_saw_oom_kill compares with.
        let ending: HashSet<PathBuf> = self
            .snapshots
            .iter()
            .filter(|s| s.cgroup.is_none() && self.previous_memory.contains_key(&s.info.unit))
            .filter_map(|s| self.parent_of(&s.info))
            .collect();
        self.parent_oom_kills
            .retain(|parent, _| ending.contains(parent));
        let parents: Vec<PathBuf> = self
            .units
            .iter()
            .filter_map(|u| self.parent_of(u))
            .collect();
        for parent in parents {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.parent_oom_kills.entry(parent)
                && let Some(kills) = oom_kills_in(slot.key())
            {
                slot.insert(kills);
            }
        }
        changes
    }

    fn parent_of(&self, info: &UnitInfo) -> Option<PathBuf> {
        let cg = info.control_group.as_deref()?;
        self.cgroups.path_of(cg).parent().map(Path::to_path_buf)
    }

    /// Whether the unit's parent slice counted an OOM kill since the last tick: the unit's own
    /// cgroup may be gone before its memory.events could be read. Claimed once, so a second
    /// unit ending in the same slice is not blamed for the same kill.
    fn parent_saw_oom_kill(&mut self, info: &UnitInfo) -> bool {
        let Some(parent) = self.parent_of(info) else {
            return false;
        };
        let (Some(&before), Some(now)) =
            (self.parent_oom_kills.get(&parent), oom_kills_in(&parent))
        else {
            return false;
        };
        if now > before {
            self.parent_oom_kills.insert(parent, before + 1);
            return true;
        }
        false
    }

    /// Units close enough to their memory warning to be sampled between ticks.
    fn near_limit(&self) -> Vec<String> {
        let warning = self.engine.thresholds().memory_warning;
        self.snapshots
            .iter()
            .filter(|s| {
                let Some(sample) = &s.cgroup else {
                    return false;
                };
                let limit = sample
                    .memory_max
                    .and_then(crate::cgroup::Limit::value)
                    .or_else(|| sample.memory_high.and_then(crate::cgroup::Limit::value));
                match (sample.memory_current, limit) {
                    (Some(used), Some(limit)) => {
                        let previous = self.previous_memory.get(&s.info.unit).copied();
                        is_near(used, limit, previous, warning)
                    }
                    _ => false,
                }
            })
            .map(|s| s.info.unit.clone())
            .collect()
    }

    /// Samples one unit its cgroup woke us for. Returns its changes, and whether the unit
    /// looks like it is ending (its cgroup emptied or vanished), so the caller lists again.
    fn sample_woken(&mut self, unit: &str) -> (Vec<AlertChange>, bool) {
        let Some(info) = self.units.iter().find(|u| u.unit == unit) else {
            return (Vec::new(), false);
        };
        let snapshot = self.sampler.sample_one(info);
        let ending = match &snapshot.cgroup {
            None => true,
            Some(sample) => sample.events.and_then(|e| e.populated) == Some(false),
        };
        lock_history(&self.history).note(&snapshot, SystemTime::now());
        let changes = self.engine.observe(&snapshot, Instant::now());
        if let Some(slot) = self.snapshots.iter_mut().find(|s| s.info.unit == unit) {
            *slot = snapshot;
        }
        (changes, ending)
    }

    /// A unit ended: read why while systemd still has it, tell the alert engine, and record a
    /// post-mortem when it was OOM-killed or failed.
    async fn unit_ended(&mut self, info: &UnitInfo) {
        let at = SystemTime::now();
        self.wakeups.remove(&info.unit);
        // A last look, in case the cgroup is still there: a kill whose inotify wakeup has not
        // been handled yet still shows in its memory.events.
        let last = self.sampler.sample_one(info);
        lock_history(&self.history).note(&last, at);
        let loaded = match self.systemd.object_path(&info.unit).await {
            Ok(path) => self.systemd.outcome(&info.unit, &path).await.ok(),
            Err(_) => None,
        };
        if self.held.remove(&info.unit) {
            self.systemd.unref(&info.unit).await;
        }
        let oom_seen = lock_history(&self.history)
            .latest(&info.unit)
            .and_then(|s| s.cgroup.as_ref())
            .and_then(|s| s.memory_events)
            .and_then(|e| e.oom_kill)
            .is_some_and(|kills| kills > 0);
        let oom_seen = oom_seen || self.parent_saw_oom_kill(info);
        // Without systemd's word, the kernel's kill count is the only cause we can vouch for;
        // an app that merely exited leaves no post-mortem.
        let outcome = loaded.or_else(|| {
            oom_seen.then(|| UnitOutcome {
                result: "oom-kill".to_owned(),
                status: None,
                killed: false,
            })
        });
        let result = outcome.as_ref().map(|o| o.result.as_str());
        lock_history(&self.history).mark_ended(&info.unit, at, result == Some("oom-kill"));
        let changes = self.engine.unit_ended(info, result);
        self.pending.extend(changes);
        let Some(outcome) = &outcome else {
            return;
        };
        let record = lock_history(&self.history)
            .latest(&info.unit)
            .and_then(|status| PostMortem::from_history(status, outcome, None, at));
        let Some(record) = record else {
            return;
        };
        if let Some(log) = &self.event_log {
            match log.append_unless_recorded(&record) {
                Ok(_) => {}
                Err(e) => eprintln!("corral: warning: {e}"),
            }
        }
    }
}

impl Watcher {
    fn state(&self) -> MonitorState {
        let mut alerts: Vec<Alert> = self.engine.all_active().cloned().collect();
        alerts.sort_by(|a, b| a.unit.cmp(&b.unit).then(a.condition().cmp(&b.condition())));
        MonitorState {
            units: self.snapshots.clone(),
            sampled_at: Some(SystemTime::now()),
            problem: self.problem.clone(),
            alerts,
        }
    }
}

async fn run(
    systemd: Systemd,
    cgroups: CgroupFs,
    options: MonitorOptions,
    history: SharedHistory,
    outputs: Outputs,
    refresh: Arc<Notify>,
    mut interval: watch::Receiver<Duration>,
) {
    let manager = systemd.manager().clone();
    let (mut new_units, mut removed_units) = match (
        manager.receive_unit_new().await,
        manager.receive_unit_removed().await,
    ) {
        (Ok(new), Ok(removed)) => (Some(new), Some(removed)),
        _ => (None, None),
    };
    // UnitNew comes as the unit is created, which can be before its start job has run: a
    // listing then finds it inactive and leaves it out. Its start job's end (JobRemoved) says
    // it is running now, with a cgroup to watch.
    let mut finished_jobs = manager.receive_job_removed().await.ok();
    let (wakeup_tx, mut wakeup_rx) = mpsc::channel(64);
    let mut watcher = Watcher {
        systemd,
        sampler: Sampler::new(cgroups.clone()),
        cgroups,
        engine: AlertEngine::new(options.thresholds),
        history,
        event_log: options.event_log,
        units: Vec::new(),
        snapshots: Vec::new(),
        wakeups: HashMap::new(),
        wakeup_tx,
        ended: HashSet::new(),
        held: HashSet::new(),
        problem: None,
        pending: Vec::new(),
        parent_oom_kills: HashMap::new(),
        previous_memory: HashMap::new(),
    };
    let mut listed_at: Option<tokio::time::Instant> = None;
    let mut must_list = true;
    let mut ticker = tokio::time::interval(*interval.borrow());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if must_list || listed_at.is_none_or(|t| t.elapsed() >= RELIST_EVERY) {
            watcher.relist().await;
            listed_at = Some(tokio::time::Instant::now());
            must_list = false;
        }
        let mut changes = std::mem::take(&mut watcher.pending);
        changes.extend(watcher.sample_all());
        for change in changes {
            // Nobody listening for changes is fine: the state carries the alerts too.
            let _ = outputs.changes.send(change);
        }
        if outputs.state.send(Arc::new(watcher.state())).is_err() {
            return; // nobody watches any more
        }
        let mut near = watcher.near_limit();
        let mut near_ticker = tokio::time::interval(NEAR_SAMPLING);
        near_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        near_ticker.reset(); // the first tick would fire at once: these units were just sampled
        // Wait for the next tick, or earlier when units come or go.
        loop {
            tokio::select! {
                _ = ticker.tick() => break,
                _ = near_ticker.tick(), if !near.is_empty() => {
                    let mut changed = false;
                    for unit in &near {
                        let (changes, _) = watcher.sample_woken(unit);
                        changed |= !changes.is_empty();
                        for change in changes {
                            let _ = outputs.changes.send(change);
                        }
                    }
                    if changed && outputs.state.send(Arc::new(watcher.state())).is_err() {
                        return;
                    }
                    near = watcher.near_limit();
                }
                _ = refresh.notified() => { must_list = true; break }
                Ok(()) = interval.changed() => {
                    ticker = tokio::time::interval(*interval.borrow());
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                Some(unit) = wakeup_rx.recv() => {
                    // Between ticks: judge this unit now rather than up to a tick later.
                    let (changes, ending) = watcher.sample_woken(&unit);
                    let changed = !changes.is_empty();
                    for change in changes {
                        let _ = outputs.changes.send(change);
                    }
                    if ending {
                        must_list = true;
                        break;
                    }
                    if changed && outputs.state.send(Arc::new(watcher.state())).is_err() {
                        return;
                    }
                }
                Some(signal) = next(&mut new_units) => {
                    if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                        must_list = true;
                        break;
                    }
                }
                Some(signal) = next(&mut removed_units) => {
                    if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                        must_list = true;
                        break;
                    }
                }
                Some(signal) = next(&mut finished_jobs) => {
                    if signal.args().is_ok_and(|a| may_be_app_unit(&a.unit)) {
                        must_list = true;
                        break;
                    }
                }
            }
        }
    }
}

/// The next item of an optional stream; never ready when there is no stream.
async fn next<S: futures_util::Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_near_their_warning_or_growing_towards_it_are_sampled_between_ticks() {
        const MIB: u64 = 1 << 20;
        // Warning at 90 %: within 10 points of it is near.
        assert!(is_near(82 * MIB, 100 * MIB, None, 90.0));
        assert!(!is_near(70 * MIB, 100 * MIB, None, 90.0));
        // 60 % and grew 25 points since the last tick: it may pass 80 % before the next one.
        assert!(is_near(60 * MIB, 100 * MIB, Some(35 * MIB), 90.0));
        // Steady or shrinking: only where it is counts.
        assert!(!is_near(60 * MIB, 100 * MIB, Some(60 * MIB), 90.0));
        assert!(!is_near(60 * MIB, 100 * MIB, Some(90 * MIB), 90.0));
        assert!(!is_near(MIB, 0, None, 90.0));
    }

    #[test]
    fn only_app_units_trigger_a_listing() {
        assert!(may_be_app_unit("app-corral-firefox-12345678.service"));
        assert!(may_be_app_unit("run-u12.scope"));
        assert!(!may_be_app_unit("app.slice"));
        assert!(!may_be_app_unit("dbus.service"));
        assert!(!may_be_app_unit("app-gnome-x.slice"));
    }
}
