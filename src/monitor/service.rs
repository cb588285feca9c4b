//! The long-running monitor every face renders: keeps the unit list current from systemd's
//! signals, samples cgroups on ticks and wakeups, raises alerts, keeps history and post-mortems,
//! and publishes its state; one per process. How it copes with a lost bus: ARCHITECTURE.md.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::cgroup::CgroupFs;
use crate::config::Config;
use crate::monitor::alerts::{Alert, AlertChange, AlertDetail, AlertEngine, AlertThresholds};
use crate::monitor::history::History;
use crate::monitor::postmortem::{EventLog, PostMortem};
use crate::monitor::processes::{KilledProcess, OomGuard};
use crate::monitor::ticker::Ticker;
use crate::monitor::wakeup::{UnitWakeup, WakeupHub};
use crate::monitor::{self, Sampler, UnitInfo, UnitSnapshot};
use crate::systemd::{ManagerKind, Systemd, UnitOutcome};

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
/// How often near units are sampled while one of them grows: the warning is crossed between
/// two samples, and said at the second, so this halves how late it is said for an app that
/// is running away, at twice the reads only while it does.
const NEAR_GROWING: Duration = Duration::from_millis(50);

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

/// How often a guarded unit's processes are read whole when they did not change, and how often
/// at most while it is near its limit (when the kill the guard must explain may come).
const GUARD_LOOK_EVERY: Duration = Duration::from_secs(5);
const GUARD_LOOK_NEAR: Duration = Duration::from_millis(250);

/// How long the monitor keeps its full pace after something happened (a cgroup event, a unit
/// that came or went, a refresh asked for, a menu opened) before it may sleep again.
const BUSY_AFTER_EVENT: Duration = Duration::from_secs(30);

/// While sleeping, the safety-net listing comes every this many sweeps rather than every
/// [`RELIST_EVERY`]: systemd's signals keep the list current meanwhile.
const IDLE_RELIST_SWEEPS: u32 = 6;

/// Who needs the monitor's full pace: see [`Monitor::sleep_when_unwatched`] and
/// [`Monitor::watch_closely`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Viewing {
    /// The interval while nobody watches closely and nothing is going on; `None`: never slower.
    idle: Option<Duration>,
    /// Views showing the monitor's figures now.
    viewers: usize,
}

/// The interval between sweeps: the refresh interval, or the idle one (never shorter) while
/// no view shows the figures and `quiet` (no alert raised, no unit near its memory warning,
/// nothing happened lately).
fn sweep_period(configured: Duration, viewing: Viewing, quiet: bool) -> Duration {
    match viewing.idle {
        Some(idle) if quiet && viewing.viewers == 0 => idle.max(configured),
        _ => configured,
    }
}

/// A view that shows the monitor's figures as they change (a shown window, an open menu):
/// while one is held, a monitor told to [`sleep_when_unwatched`](Monitor::sleep_when_unwatched)
/// keeps its refresh interval. Dropping it lets the monitor sleep again.
#[derive(Debug)]
pub struct CloseWatch {
    viewing: watch::Sender<Viewing>,
}

impl Drop for CloseWatch {
    fn drop(&mut self) {
        self.viewing
            .send_modify(|v| v.viewers = v.viewers.saturating_sub(1));
    }
}

/// Alert changes a slow subscriber may fall behind by before it misses some.
const CHANGES_BACKLOG: usize = 256;

/// Delays between attempts to reconnect, or to list again after listing failed: quick at
/// first (a restarted bus or manager is back within a second), then one attempt every 30 s at
/// most, so a bus that stays away costs nothing.
const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(30),
];

/// The delay before retry number `attempt` (0-based).
fn retry_delay(attempt: u32) -> Duration {
    RETRY_DELAYS[(attempt as usize).min(RETRY_DELAYS.len() - 1)]
}

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
    /// Set while the config file has a mistake: where, what, and that the last good config
    /// stays in force.
    pub config_problem: Option<String>,
    /// The config in force: the file as last loaded without a mistake (built-ins if none).
    pub config: Arc<Config>,
}

/// How the monitor judges and records what it sees.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    /// The thresholds used when there is no config file to follow.
    pub thresholds: AlertThresholds,
    /// Where post-mortems go; `None` keeps them in memory only (the alerts still say it).
    pub event_log: Option<EventLog>,
    /// The config file to take thresholds from and to follow as it changes; `None` uses
    /// `thresholds` throughout.
    pub config_file: Option<PathBuf>,
    /// Keep the rules' drop-ins in line with the config file as it changes (user manager
    /// only: see [`crate::rules::live::spawn_keeper`]).
    pub keep_rules: bool,
}

impl MonitorOptions {
    /// The user's config file and the default journal. A broken config or a missing state
    /// directory is reported once on stderr and the defaults stand in: the monitor must run
    /// regardless.
    pub fn from_config() -> MonitorOptions {
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
            thresholds: AlertThresholds::default(),
            event_log,
            config_file: Some(Config::path()),
            keep_rules: true,
        }
    }
}

/// The config file as last loaded without a mistake, checked for changes with one stat(2) per
/// tick. Editors save in place or rename a new file over the old one: the inode, size and
/// modification time together notice both.
#[derive(Debug)]
struct ConfigWatch {
    path: Option<PathBuf>,
    stamp: Option<FileStamp>,
    config: Arc<Config>,
    problem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    /// `None` when there is no file (built-ins only) or it cannot be looked at.
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        })
    }
}

/// What a check of the config file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConfigCheck {
    Unchanged,
    /// The file changed and loaded: its config is now in force.
    Applied,
    /// The file changed and has a mistake: the config in force stays.
    Refused,
}

impl ConfigWatch {
    /// Loads `path` now; a mistake leaves the built-ins in force, and is reported.
    fn start(path: Option<PathBuf>) -> ConfigWatch {
        let mut watch = ConfigWatch {
            path,
            stamp: None,
            config: Arc::default(),
            problem: None,
        };
        if let Some(path) = watch.path.clone() {
            watch.stamp = FileStamp::of(&path);
            match Config::load_from(&path) {
                Ok(config) => watch.config = Arc::new(config),
                Err(e) => {
                    let problem = crate::i18n::gettext_f(
                        "{error}. Until it is fixed, Corral uses the built-in presets and default settings.",
                        &[("error", &e)],
                    );
                    eprintln!("corral: warning: {problem}");
                    watch.problem = Some(problem);
                }
            }
        }
        watch
    }

    /// Loads the file again if it changed since it was last looked at.
    fn check(&mut self) -> ConfigCheck {
        let Some(path) = &self.path else {
            return ConfigCheck::Unchanged;
        };
        let stamp = FileStamp::of(path);
        if stamp == self.stamp {
            return ConfigCheck::Unchanged;
        }
        self.stamp = stamp;
        match Config::load_from(path) {
            Ok(config) => {
                if self.problem.take().is_some() {
                    eprintln!(
                        "corral: {} loads again; its settings are in use",
                        path.display()
                    );
                } else {
                    eprintln!("corral: reloaded {}", path.display());
                }
                self.config = Arc::new(config);
                ConfigCheck::Applied
            }
            Err(e) => {
                let problem = crate::i18n::gettext_f(
                    "{error}. Until it is fixed, Corral keeps using the settings it loaded before.",
                    &[("error", &e)],
                );
                eprintln!("corral: {problem}");
                self.problem = Some(problem);
                ConfigCheck::Refused
            }
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
    viewing: watch::Sender<Viewing>,
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
        let (viewing, viewing_rx) = watch::channel(Viewing::default());
        let (changes, _) = broadcast::channel(CHANGES_BACKLOG);
        let history = SharedHistory::default();
        if options.keep_rules
            && systemd.kind() == ManagerKind::User
            && let Some(path) = &options.config_file
        {
            match crate::rules::store::DropInStore::for_user() {
                Ok(store) => crate::rules::live::spawn_keeper(
                    systemd.clone(),
                    store,
                    path.clone(),
                    state.clone(),
                ),
                Err(e) => eprintln!("corral: {e}"),
            }
        }
        tokio::spawn(run(
            systemd,
            cgroups,
            options,
            Arc::clone(&history),
            Outputs {
                state: state_tx,
                changes: changes.clone(),
            },
            Inputs {
                refresh: Arc::clone(&refresh),
                interval: interval_rx,
                viewing: viewing_rx,
            },
        ));
        Monitor {
            state,
            history,
            refresh,
            interval: interval_tx,
            viewing,
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

    /// Lets the monitor sweep only every `idle` (never more often than its refresh interval)
    /// while no [`CloseWatch`] is held, no alert is raised, no unit is near its memory warning
    /// and nothing happened for a while: a tray with its window hidden. What makes alerts fast
    /// does not depend on the sweep: the kernel's events (inotify on memory.events and
    /// cgroup.events, PSI triggers) wake the monitor at once, a unit near its warning is
    /// sampled every 100 ms, and a unit growing towards it counts as near (its growth since
    /// the last sweep is projected over the next). Any such event brings the full pace back
    /// for [`BUSY_AFTER_EVENT`].
    pub fn sleep_when_unwatched(&self, idle: Duration) {
        self.viewing.send_modify(|v| v.idle = Some(idle));
    }

    /// Holds the monitor at its refresh interval while the returned guard lives: for a view
    /// that shows the figures (the window while shown, the tray's menu while open).
    pub fn watch_closely(&self) -> CloseWatch {
        self.viewing.send_modify(|v| v.viewers += 1);
        CloseWatch {
            viewing: self.viewing.clone(),
        }
    }
}

/// What the [`Monitor`] handles send the loop.
struct Inputs {
    refresh: Arc<Notify>,
    interval: watch::Receiver<Duration>,
    viewing: watch::Receiver<Viewing>,
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
    /// One inotify instance for all units (see [`super::wakeup`]).
    wakeup_hub: WakeupHub,
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
    config: ConfigWatch,
    /// Units under OOMPolicy=continue: their processes kept in the order the OOM killer
    /// should take them, and remembered to tell which one it took.
    oom_guard: OomGuard,
    /// Each unit's OOM policy as systemd said it (`None`: it did not say), asked once.
    oom_policies: HashMap<String, Option<String>>,
    /// The last process each guarded unit lost to the OOM killer, for the alerts in the state.
    victims: HashMap<String, KilledProcess>,
    /// Listings that failed in a row; the next is tried after [`retry_delay`].
    list_failures: u32,
    /// Set while the bus connection is closed: the next reconnection attempt.
    reconnect: Option<Retry>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    attempt: u32,
    at: tokio::time::Instant,
}

/// "session bus" or "system bus": where the manager is reached.
fn bus_name(kind: ManagerKind) -> String {
    match kind {
        ManagerKind::User => crate::i18n::gettext("session bus"),
        ManagerKind::System => crate::i18n::gettext("system bus"),
    }
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
                self.list_failures += 1;
                return;
            }
        };
        self.problem = None;
        self.list_failures = 0;
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
        // Which new units keep going when the OOM killer takes one of their processes: those
        // the monitor guards (see OomGuard).
        let asked: Vec<&UnitInfo> = list
            .iter()
            .filter(|u| u.active_state == "active" && u.control_group.is_some())
            .filter(|u| !self.oom_policies.contains_key(&u.unit))
            .collect();
        let policies = join_all(asked.iter().map(|u| systemd.oom_policy(&u.unit))).await;
        for (info, policy) in asked.into_iter().zip(policies) {
            if policy.as_deref() == Some("continue")
                && let Some(cg) = &info.control_group
            {
                self.oom_guard.guard(&info.unit, self.cgroups.path_of(cg));
            }
            self.oom_policies.insert(info.unit.clone(), policy);
        }
        self.oom_policies
            .retain(|unit, _| list.iter().any(|u| &u.unit == unit));
        self.oom_guard.retain(|unit| {
            list.iter()
                .any(|u| u.unit == unit && u.active_state == "active")
        });
        self.victims
            .retain(|unit, _| list.iter().any(|u| &u.unit == unit));
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
                let wakeup = self.wakeup_hub.watch(&info.unit, &dir);
                self.wakeups.insert(info.unit.clone(), wakeup);
            }
        }
        self.units = list;
    }

    /// Whether systemd ends the whole unit at its first OOM kill: its OOM policy is "stop" or
    /// "kill" (only "continue" lets it go on).
    fn ends_on_oom(&self, unit: &str) -> bool {
        matches!(self.oom_policies.get(unit), Some(Some(policy)) if policy != "continue")
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
        // Which process a kill took is judged from the last look, so before looking again.
        self.note_lost_processes(&mut changes, at);
        for snapshot in &self.snapshots {
            self.oom_guard
                .look(&snapshot.info.unit, now, GUARD_LOOK_EVERY);
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

    /// Units close enough to their memory warning to be sampled between ticks, with the
    /// memory they use.
    fn near_limit(&self) -> Vec<(String, u64)> {
        let warning = self.engine.thresholds().memory_warning;
        self.snapshots
            .iter()
            .filter_map(|s| {
                let sample = s.cgroup.as_ref()?;
                let limit = sample
                    .memory_max
                    .and_then(crate::cgroup::Limit::value)
                    .or_else(|| sample.memory_high.and_then(crate::cgroup::Limit::value))?;
                let used = sample.memory_current?;
                let previous = self.previous_memory.get(&s.info.unit).copied();
                is_near(used, limit, previous, warning).then(|| (s.info.unit.clone(), used))
            })
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
        let at = SystemTime::now();
        let now = Instant::now();
        lock_history(&self.history).note(&snapshot, at);
        let mut changes = self.engine.observe(&snapshot, now);
        self.note_lost_processes(&mut changes, at);
        // Near its limit, or woken by the kernel: its processes as they are now, for the
        // kill that may come next.
        self.oom_guard.look(unit, now, GUARD_LOOK_NEAR);
        if let Some(slot) = self.snapshots.iter_mut().find(|s| s.info.unit == unit) {
            *slot = snapshot;
        }
        (changes, ending)
    }

    /// For each guarded unit that lost a process to the OOM killer and went on: which process
    /// it was, in its alert (and so its notification), and a record in the event log.
    fn note_lost_processes(&mut self, changes: &mut [AlertChange], at: SystemTime) {
        for change in changes.iter_mut() {
            let alert = match change {
                AlertChange::Raised(a) | AlertChange::Updated(a) => a,
                AlertChange::Cleared(_) => continue,
            };
            let AlertDetail::OomKilled {
                unit_ended: unit_ended @ false,
                victim,
                ..
            } = &mut alert.detail
            else {
                continue;
            };
            // The kernel's count is the first word of the kill, before systemd stops the unit:
            // said at once, and in the words of the whole app's end.
            if self.ends_on_oom(&alert.unit) {
                *unit_ended = true;
                continue;
            }
            if !self.oom_guard.is_guarded(&alert.unit) {
                continue;
            }
            *victim = self.oom_guard.victim(&alert.unit, Instant::now());
            if let Some(v) = victim {
                self.victims.insert(alert.unit.clone(), v.clone());
            }
            let record = lock_history(&self.history)
                .latest(&alert.unit)
                .and_then(|status| PostMortem::process_killed(status, alert, at));
            if let (Some(record), Some(log)) = (record, &self.event_log)
                && let Err(e) = log.append_unless_recorded(&record)
            {
                eprintln!("corral: warning: {e}");
            }
        }
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
        // A unit that went on after losing processes (OOMPolicy=continue) had each loss
        // recorded as it happened: its kill count says nothing about how it ended.
        let went_on = self.oom_guard.is_guarded(&info.unit);
        // Without systemd's word, the kernel's kill count is the only cause we can vouch for;
        // an app that merely exited leaves no post-mortem.
        let outcome = loaded.or_else(|| {
            (oom_seen && !went_on).then(|| UnitOutcome {
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
        if went_on && outcome.result == "success" {
            return;
        }
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
        for alert in &mut alerts {
            if let AlertDetail::OomKilled {
                unit_ended: unit_ended @ false,
                victim,
                ..
            } = &mut alert.detail
            {
                *unit_ended = self.ends_on_oom(&alert.unit);
                victim.clone_from(&self.victims.get(&alert.unit).cloned());
            }
        }
        alerts.sort_by(|a, b| a.unit.cmp(&b.unit).then(a.condition().cmp(&b.condition())));
        MonitorState {
            units: self.snapshots.clone(),
            sampled_at: Some(SystemTime::now()),
            problem: self.problem.clone(),
            alerts,
            config_problem: self.config.problem.clone(),
            config: Arc::clone(&self.config.config),
        }
    }

    /// How long after the last listing to list again: the safety-net period, or sooner while
    /// listing fails.
    fn relist_after(&self) -> Duration {
        match self.list_failures {
            0 => RELIST_EVERY,
            n => retry_delay(n - 1).min(RELIST_EVERY),
        }
    }

    /// The bus connection closed: say so, and reconnect after the first delay.
    fn connection_lost(&mut self) {
        self.problem = Some(crate::i18n::gettext_f(
            "Lost the connection to the {bus}; reconnecting. The apps keep running, and their use is still read from their cgroups.",
            &[("bus", &bus_name(self.systemd.kind()))],
        ));
        // systemd let go of the units this connection held; hold them again once back.
        self.held.clear();
        self.reconnect = Some(Retry {
            attempt: 0,
            at: tokio::time::Instant::now() + retry_delay(0),
        });
    }

    /// A reconnection attempt failed: try again later, each time a little later.
    fn reconnect_failed(&mut self, error: &crate::systemd::SystemdError) {
        let attempt = self.reconnect.map_or(0, |r| r.attempt) + 1;
        let delay = retry_delay(attempt);
        let bus = bus_name(self.systemd.kind());
        // The bus's own words; the hint of an unreachable manager is for a first start.
        let reason = match error {
            crate::systemd::SystemdError::Unreachable { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        self.problem = Some(crate::i18n::gettext_f(
            "Lost the connection to the {bus}; reconnecting (attempt {attempt} failed: {reason}; next in {seconds} s). The apps keep running.",
            &[
                ("bus", &bus),
                ("attempt", &attempt),
                ("reason", &reason),
                ("seconds", &delay.as_secs_f64()),
            ],
        ));
        self.reconnect = Some(Retry {
            attempt,
            at: tokio::time::Instant::now() + delay,
        });
    }

    /// The manager left the bus (a re-execution, or it stopped): the list waits for it.
    fn manager_left(&mut self) {
        self.problem = Some(crate::i18n::gettext(
            "systemd left the bus (it may be restarting); the list resumes when it is back.",
        ));
    }

    /// Applies a config that was just reloaded: thresholds now, and its refresh interval if
    /// that changed (returned, for the caller's ticker).
    fn apply_config(&mut self, previous: &Config) -> Option<Duration> {
        let general = self.config.config.general;
        self.engine
            .set_thresholds(AlertThresholds::from_general(&general));
        (general.refresh_period() != previous.general.refresh_period())
            .then(|| general.refresh_period())
    }
}

/// The manager's signals on the current connection, read by a task of their own and passed on
/// as two facts: app units came or went (any number of signals, one wakeup), and the manager's
/// bus name changed hands. They must be read as they come: zbus stops reading the whole
/// connection, method replies included, while one of its signal queues is full (64 messages),
/// and the monitor awaits replies while it lists. 300 units stopping at once filled the
/// UnitRemoved queue during a listing and hung the monitor for good.
#[derive(Default)]
struct Signals {
    units_changed: Arc<Notify>,
    /// org.freedesktop.systemd1 changing hands: `Some` new owner (the manager is back after
    /// re-executing or restarting) or `None` (it left the bus).
    owners: Option<mpsc::UnboundedReceiver<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Signals {
    async fn of(systemd: &Systemd) -> Signals {
        let manager = systemd.manager();
        let mut new_units = manager.receive_unit_new().await.ok();
        let mut removed_units = manager.receive_unit_removed().await.ok();
        let mut owner_changes = manager.inner().receive_owner_changed().await.ok();
        // UnitNew comes as the unit is created, which can be before its start job has run: a
        // listing then finds it inactive and leaves it out. Its start job's end (JobRemoved)
        // says it is running now, with a cgroup to watch.
        let mut finished_jobs = manager.receive_job_removed().await.ok();
        let units_changed = Arc::new(Notify::new());
        let (owners_tx, owners) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let units_changed = Arc::clone(&units_changed);
            async move {
                loop {
                    tokio::select! {
                        Some(signal) = next(&mut new_units) => {
                            if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                                units_changed.notify_one();
                            }
                        }
                        Some(signal) = next(&mut removed_units) => {
                            if signal.args().is_ok_and(|a| may_be_app_unit(&a.id)) {
                                units_changed.notify_one();
                            }
                        }
                        Some(signal) = next(&mut finished_jobs) => {
                            if signal.args().is_ok_and(|a| may_be_app_unit(&a.unit)) {
                                units_changed.notify_one();
                            }
                        }
                        Some(owner) = next(&mut owner_changes) => {
                            if owners_tx.send(owner.is_some()).is_err() {
                                return;
                            }
                        }
                        else => return, // the connection is gone
                    }
                }
            }
        });
        Signals {
            units_changed,
            owners: Some(owners),
            task: Some(task),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Says on stderr what changed in the monitor's problem, once per change: the window shows it
/// in its banner, and `corral watch` and the tray have only stderr.
fn log_problem(previous: &Option<String>, now: &Option<String>) {
    if previous == now {
        return;
    }
    match now {
        Some(problem) => eprintln!("corral: {problem}"),
        None => eprintln!("corral: connected to systemd again; the list of apps is current"),
    }
}

async fn run(
    systemd: Systemd,
    cgroups: CgroupFs,
    options: MonitorOptions,
    history: SharedHistory,
    outputs: Outputs,
    inputs: Inputs,
) {
    let Inputs {
        refresh,
        interval,
        viewing,
    } = inputs;
    let (wakeup_tx, wakeups) = mpsc::channel(64);
    let config = ConfigWatch::start(options.config_file);
    let thresholds = match &config.path {
        Some(_) => AlertThresholds::from_general(&config.config.general),
        None => options.thresholds,
    };
    let watcher = Watcher {
        systemd: systemd.clone(),
        sampler: Sampler::new(cgroups.clone()),
        cgroups,
        engine: AlertEngine::new(thresholds),
        history,
        event_log: options.event_log,
        units: Vec::new(),
        snapshots: Vec::new(),
        wakeups: HashMap::new(),
        wakeup_hub: WakeupHub::new(wakeup_tx),
        ended: HashSet::new(),
        held: HashSet::new(),
        problem: None,
        pending: Vec::new(),
        parent_oom_kills: HashMap::new(),
        previous_memory: HashMap::new(),
        config,
        oom_guard: OomGuard::new(crate::procfs::ProcFs::system()),
        oom_policies: HashMap::new(),
        victims: HashMap::new(),
        list_failures: 0,
        reconnect: None,
    };
    let configured = *interval.borrow();
    let ticker = Ticker::new(configured);
    let mut monitor = MonitorLoop {
        signals: Signals::of(&systemd).await,
        connection: systemd.connection(),
        systemd,
        watcher,
        wakeups,
        outputs,
        refresh,
        interval,
        viewing,
        configured,
        pace: configured,
        busy_until: None,
        ticker,
        logged_problem: None,
        listed_at: None,
        must_list: true,
    };
    while monitor.round().await.is_some() {}
}

/// What woke the monitor while it waited between rounds.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// The refresh interval passed.
    Tick,
    /// Time to sample the units near their memory warning again.
    NearTick,
    /// Someone asked for a fresh listing (a launch, an action).
    Refresh,
    /// The refresh interval was changed.
    Interval(Duration),
    /// A view started or stopped showing the figures closely.
    Viewing,
    /// A unit's cgroup signalled a change (inotify, PSI).
    Woken(String),
    /// App units came or went.
    UnitsChanged,
    /// The manager's bus name changed hands: back (`true`) or gone.
    Manager(bool),
    ConnectionClosed,
    ReconnectDue,
    ListRetryDue,
}

/// What the loop does after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Keep waiting in this round.
    Wait,
    /// Start the next round (a sample of every unit), listing the units first if `list`.
    Round { list: bool },
}

/// Which events end the wait, and which make the next round list the units again. `ending`:
/// the woken unit's cgroup emptied or vanished; `reconnected`: a reconnection succeeded.
fn flow(event: &Event, ending: bool, reconnected: bool) -> Flow {
    match event {
        Event::Tick | Event::ConnectionClosed | Event::Manager(false) => {
            Flow::Round { list: false }
        }
        Event::NearTick | Event::Interval(_) => Flow::Wait,
        // A view just shown gets fresh figures; one that went leaves the pace to the round.
        Event::Viewing => Flow::Round { list: false },
        Event::Woken(_) if ending => Flow::Round { list: true },
        Event::Woken(_) => Flow::Wait,
        Event::Refresh | Event::UnitsChanged | Event::Manager(true) | Event::ListRetryDue => {
            Flow::Round { list: true }
        }
        Event::ReconnectDue => Flow::Round { list: reconnected },
    }
}

/// The monitor's loop: rounds of (follow the config, list if due, sample every unit,
/// publish), each followed by a wait for the next event.
struct MonitorLoop {
    systemd: Systemd,
    watcher: Watcher,
    signals: Signals,
    connection: zbus::Connection,
    wakeups: mpsc::Receiver<String>,
    outputs: Outputs,
    refresh: Arc<Notify>,
    interval: watch::Receiver<Duration>,
    viewing: watch::Receiver<Viewing>,
    /// The refresh interval (the config's, or as set).
    configured: Duration,
    /// The ticker's period now: `configured`, or longer while the monitor sleeps.
    pace: Duration,
    /// Until when the monitor keeps its full pace after an event.
    busy_until: Option<tokio::time::Instant>,
    ticker: Ticker,
    logged_problem: Option<String>,
    listed_at: Option<tokio::time::Instant>,
    must_list: bool,
}

impl MonitorLoop {
    /// One round; `None` once nobody watches any more.
    async fn round(&mut self) -> Option<()> {
        self.follow_config();
        // Without a connection there is nothing to list from; the known units are still
        // sampled from their cgroups.
        let relist_after = match self.watcher.list_failures {
            0 if self.pace > self.configured => RELIST_EVERY.max(self.pace * IDLE_RELIST_SWEEPS),
            _ => self.watcher.relist_after(),
        };
        let relist_due = self.listed_at.is_none_or(|t| t.elapsed() >= relist_after);
        if self.watcher.reconnect.is_none() && (self.must_list || relist_due) {
            self.watcher.relist().await;
            self.listed_at = Some(tokio::time::Instant::now());
            self.must_list = false;
        }
        let mut changes = std::mem::take(&mut self.watcher.pending);
        changes.extend(self.watcher.sample_all());
        self.publish_changes(changes);
        log_problem(&self.logged_problem, &self.watcher.problem);
        self.logged_problem.clone_from(&self.watcher.problem);
        self.publish_state()?;
        let mut near = Near::new(self.watcher.near_limit(), &self.watcher.previous_memory);
        self.follow_pace(near.units.is_empty());
        loop {
            let event = self.next_event(&mut near).await;
            let flow = self.handle(&event, &mut near).await?;
            if let Flow::Round { list } = flow {
                self.must_list |= list;
                return Some(());
            }
        }
    }

    /// A config file that changed and loads is applied; a new refresh interval restarts the
    /// ticker.
    fn follow_config(&mut self) {
        let previous = Arc::clone(&self.watcher.config.config);
        if self.watcher.config.check() == ConfigCheck::Applied
            && let Some(period) = self.watcher.apply_config(&previous)
        {
            self.configured = period;
            self.set_pace(period);
        }
    }

    /// Sets the ticker to `period` if it is not at it already: the next tick comes a whole
    /// period from now.
    fn set_pace(&mut self, period: Duration) {
        if period != self.pace {
            self.pace = period;
            self.ticker.set_period(period);
        }
    }

    /// After a round: the refresh interval, or the idle one when nobody watches closely and
    /// nothing is going on (see [`Monitor::sleep_when_unwatched`]). `no_near`: no unit is
    /// near its memory warning.
    fn follow_pace(&mut self, no_near: bool) {
        let busy = self
            .busy_until
            .is_some_and(|t| tokio::time::Instant::now() < t);
        let quiet = no_near && !busy && self.watcher.engine.all_active().next().is_none();
        let viewing = *self.viewing.borrow_and_update();
        self.set_pace(sweep_period(self.configured, viewing, quiet));
    }

    /// Something happened: the full pace for [`BUSY_AFTER_EVENT`], from the next tick on.
    fn wake_up(&mut self) {
        self.busy_until = Some(tokio::time::Instant::now() + BUSY_AFTER_EVENT);
        self.set_pace(self.configured);
    }

    fn publish_changes(&self, changes: Vec<AlertChange>) {
        for change in changes {
            // Nobody listening for changes is fine: the state carries the alerts too.
            let _ = self.outputs.changes.send(change);
        }
    }

    /// `None` when nobody watches the state any more.
    fn publish_state(&self) -> Option<()> {
        self.outputs.state.send(Arc::new(self.watcher.state())).ok()
    }

    /// Waits for whatever comes first; only names it.
    async fn next_event(&mut self, near: &mut Near) -> Event {
        let reconnect_at = self.watcher.reconnect.map(|r| r.at);
        let list_retry_at = (self.watcher.list_failures > 0)
            .then(|| self.listed_at.map(|t| t + self.watcher.relist_after()))
            .flatten();
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            _ = self.ticker.tick() => Event::Tick,
            () = near.tick() => Event::NearTick,
            _ = self.refresh.notified() => Event::Refresh,
            Ok(()) = self.interval.changed() => Event::Interval(*self.interval.borrow()),
            Ok(()) = self.viewing.changed() => Event::Viewing,
            Some(unit) = self.wakeups.recv() => Event::Woken(unit),
            () = self.signals.units_changed.notified() => Event::UnitsChanged,
            Some(back) = next_owner(&mut self.signals.owners) => Event::Manager(back),
            () = self.connection.closed(), if self.watcher.reconnect.is_none() => Event::ConnectionClosed,
            () = tokio::time::sleep_until(reconnect_at.unwrap_or(far)), if reconnect_at.is_some() => Event::ReconnectDue,
            () = tokio::time::sleep_until(list_retry_at.unwrap_or(far)), if list_retry_at.is_some() => Event::ListRetryDue,
        }
    }

    /// Does what an event asks; `None` when nobody watches any more.
    async fn handle(&mut self, event: &Event, near: &mut Near) -> Option<Flow> {
        let (mut ending, mut reconnected) = (false, false);
        match event {
            Event::NearTick => {
                let mut changed = false;
                for (unit, _) in &near.units {
                    let (changes, _) = self.watcher.sample_woken(unit);
                    changed |= !changes.is_empty();
                    self.publish_changes(changes);
                }
                if changed {
                    self.publish_state()?;
                }
                near.follow(self.watcher.near_limit());
            }
            Event::Interval(period) => {
                self.configured = *period;
                self.pace = *period;
                self.ticker = Ticker::new(*period);
            }
            Event::Woken(unit) => {
                self.wake_up();
                // Between ticks: judge this unit now rather than up to a tick later.
                let (changes, unit_ending) = self.watcher.sample_woken(unit);
                let changed = !changes.is_empty();
                self.publish_changes(changes);
                ending = unit_ending;
                if changed && !ending {
                    self.publish_state()?;
                }
            }
            Event::Manager(true) => {
                // Back under a new name: systemd 252 keeps its subscribers across a
                // re-execution, but a manager that restarted (or an older one) has
                // forgotten us, and without a subscriber it sends no signals at all.
                if let Err(e) = self.watcher.systemd.resubscribe().await {
                    eprintln!("corral: {e}");
                }
            }
            Event::Manager(false) => self.watcher.manager_left(),
            Event::ConnectionClosed => {
                self.signals = Signals::default();
                self.watcher.connection_lost();
            }
            Event::ReconnectDue => match self.systemd.reconnect().await {
                Ok(()) => {
                    self.connection = self.systemd.connection();
                    self.signals = Signals::of(&self.systemd).await;
                    self.watcher.reconnect = None;
                    reconnected = true;
                }
                Err(e) => self.watcher.reconnect_failed(&e),
            },
            Event::Refresh | Event::UnitsChanged => self.wake_up(),
            Event::Tick | Event::ListRetryDue | Event::Viewing => {}
        }
        Some(flow(event, ending, reconnected))
    }
}

/// The units sampled between ticks, and their ticker while there are any: a timer armed for
/// nothing still wakes the runtime's thread. Armed at every round, as it was, it made an idle
/// monitor wake twice more per sweep.
struct Near {
    /// Each unit near its warning, with the memory it used at its last sample.
    units: Vec<(String, u64)>,
    ticker: Option<Ticker>,
}

impl Near {
    /// The units a round found near, which `previous` (the last round's memory) tells
    /// whether they are growing.
    fn new(units: Vec<(String, u64)>, previous: &HashMap<String, u64>) -> Near {
        let mut near = Near {
            units: units
                .iter()
                .filter_map(|(unit, _)| Some((unit.clone(), *previous.get(unit)?)))
                .collect(),
            ticker: None,
        };
        near.follow(units);
        near
    }

    /// Samples these units between ticks from now on, every [`NEAR_GROWING`] while one of them
    /// grew since its last sample, else every [`NEAR_SAMPLING`]; none stops the ticker.
    fn follow(&mut self, units: Vec<(String, u64)>) {
        let growing = units.iter().any(|(unit, used)| {
            self.units
                .iter()
                .any(|(before, was)| before == unit && used > was)
        });
        let period = if growing { NEAR_GROWING } else { NEAR_SAMPLING };
        if units.is_empty() {
            self.ticker = None;
        } else if let Some(ticker) = &mut self.ticker {
            if ticker.period() != period {
                ticker.set_period(period);
            }
        } else {
            let mut ticker = Ticker::new(period);
            ticker.reset(); // the first tick would fire at once: these units were just sampled
            self.ticker = Some(ticker);
        }
        self.units = units;
    }

    /// The next tick; never, while no unit is near.
    async fn tick(&mut self) {
        match &mut self.ticker {
            Some(ticker) => ticker.tick().await,
            None => std::future::pending().await,
        }
    }
}

/// The next owner change; never ready without a connection.
async fn next_owner(owners: &mut Option<mpsc::UnboundedReceiver<bool>>) -> Option<bool> {
    match owners {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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

    #[tokio::test]
    async fn only_units_near_their_warning_keep_a_timer_armed() {
        let mut near = Near::new(Vec::new(), &HashMap::new());
        assert!(
            near.ticker.is_none(),
            "no unit is near: no timer to wake for"
        );
        let waited = tokio::time::timeout(Duration::from_millis(300), near.tick()).await;
        assert!(waited.is_err(), "no unit is near: no tick");
        let start = tokio::time::Instant::now();
        near.follow(vec![("app-corral-hog-1.service".to_owned(), 900)]);
        near.tick().await;
        // Not at once: the unit was just sampled by the round that found it near.
        assert!(start.elapsed() >= NEAR_SAMPLING);
        near.follow(Vec::new());
        assert!(
            near.ticker.is_none(),
            "the unit moved away: the timer is dropped"
        );
    }

    #[tokio::test]
    async fn near_units_are_sampled_twice_as_often_while_one_grows() {
        let hog = "app-corral-hog-1.service".to_owned();
        let period = |near: &Near| near.ticker.as_ref().map(Ticker::period);
        // The round saw it grow since the last one.
        let previous = HashMap::from([(hog.clone(), 800)]);
        let mut near = Near::new(vec![(hog.clone(), 900)], &previous);
        assert_eq!(period(&near), Some(NEAR_GROWING));
        near.follow(vec![(hog.clone(), 950)]);
        assert_eq!(period(&near), Some(NEAR_GROWING));
        // It stopped growing: back to the calm pace.
        near.follow(vec![(hog.clone(), 950)]);
        assert_eq!(period(&near), Some(NEAR_SAMPLING));
        // Near, but not growing since the last round.
        let near = Near::new(vec![(hog.clone(), 800)], &previous);
        assert_eq!(period(&near), Some(NEAR_SAMPLING));
        let near = Near::new(vec![(hog, 800)], &HashMap::new());
        assert_eq!(period(&near), Some(NEAR_SAMPLING));
    }

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
    fn a_config_with_a_mistake_keeps_the_last_good_one_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[general]\nmemory-warning = 70\n").unwrap();
        let mut watch = ConfigWatch::start(Some(path.clone()));
        assert_eq!(watch.config.general.memory_warning, 70.0);
        assert_eq!(watch.problem, None);
        assert_eq!(watch.check(), ConfigCheck::Unchanged);

        // Saved in place with a mistake: refused, located, and the 70 % stays.
        std::fs::write(&path, "[general]\nmemory-warning = \"lots\"\n").unwrap();
        let in_force = Arc::clone(&watch.config);
        assert_eq!(watch.check(), ConfigCheck::Refused);
        assert!(Arc::ptr_eq(&watch.config, &in_force));
        let problem = watch.problem.clone().unwrap();
        assert!(problem.contains("config.toml:2:18"), "{problem}");
        assert!(
            problem.contains("keeps using the settings it loaded before"),
            "{problem}"
        );
        // Looked at again unchanged: not reported again.
        assert_eq!(watch.check(), ConfigCheck::Unchanged);

        // Fixed the way editors save, by renaming a new file over it.
        let tmp = dir.path().join("config.toml~");
        std::fs::write(&tmp, "[general]\nmemory-warning = 80\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(watch.check(), ConfigCheck::Applied);
        assert_eq!(watch.config.general.memory_warning, 80.0);
        assert_eq!(watch.problem, None);

        // Removed: the built-ins.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(watch.check(), ConfigCheck::Applied);
        assert_eq!(watch.config.general.memory_warning, 90.0);
    }

    #[test]
    fn a_config_with_a_mistake_at_start_leaves_the_built_ins_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[general]\nrefresh-interval = 0\n").unwrap();
        let watch = ConfigWatch::start(Some(path));
        assert_eq!(watch.config.general.refresh_interval, 1.0);
        let problem = watch.problem.unwrap();
        assert!(problem.contains("config.toml:2:"), "{problem}");
        assert!(
            problem.contains("built-in presets and default settings"),
            "{problem}"
        );
        // No file to follow: nothing to check, the options' thresholds stay.
        let mut none = ConfigWatch::start(None);
        assert_eq!(none.check(), ConfigCheck::Unchanged);
        assert_eq!(none.problem, None);
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_half_a_minute() {
        let delays: Vec<f64> = (0..9).map(|n| retry_delay(n).as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
    }

    #[test]
    fn which_events_end_the_wait_and_which_list_the_units_again() {
        let round = |list| Flow::Round { list };
        assert_eq!(flow(&Event::Tick, false, false), round(false));
        assert_eq!(flow(&Event::NearTick, false, false), Flow::Wait);
        assert_eq!(flow(&Event::Viewing, false, false), round(false));
        assert_eq!(
            flow(&Event::Interval(Duration::from_secs(2)), false, false),
            Flow::Wait
        );
        // A woken unit is judged where it is; one whose cgroup emptied is listed again.
        assert_eq!(
            flow(&Event::Woken("a.service".into()), false, false),
            Flow::Wait
        );
        assert_eq!(
            flow(&Event::Woken("a.service".into()), true, false),
            round(true)
        );
        for listing in [
            Event::Refresh,
            Event::UnitsChanged,
            Event::Manager(true),
            Event::ListRetryDue,
        ] {
            assert_eq!(flow(&listing, false, false), round(true), "{listing:?}");
        }
        // Lost: the next round samples the cgroups it knows, with nothing to list from.
        assert_eq!(flow(&Event::Manager(false), false, false), round(false));
        assert_eq!(flow(&Event::ConnectionClosed, false, false), round(false));
        assert_eq!(flow(&Event::ReconnectDue, false, false), round(false));
        assert_eq!(flow(&Event::ReconnectDue, false, true), round(true));
    }

    #[test]
    fn the_monitor_sleeps_only_when_told_to_unwatched_and_quiet() {
        let second = Duration::from_secs(1);
        let idle = Duration::from_secs(5);
        let unwatched = Viewing {
            idle: Some(idle),
            viewers: 0,
        };
        assert_eq!(sweep_period(second, unwatched, true), idle);
        // Something going on, or someone looking: the refresh interval.
        assert_eq!(sweep_period(second, unwatched, false), second);
        let shown = Viewing {
            viewers: 1,
            ..unwatched
        };
        assert_eq!(sweep_period(second, shown, true), second);
        // Not told to sleep (`corral watch`): never slower.
        assert_eq!(sweep_period(second, Viewing::default(), true), second);
        // An interval longer than the idle one stands.
        let ten = Duration::from_secs(10);
        assert_eq!(sweep_period(ten, unwatched, true), ten);
    }

    #[test]
    fn a_close_watch_counts_while_held() {
        let (viewing, rx) = watch::channel(Viewing::default());
        let monitor_like = |viewing: &watch::Sender<Viewing>| {
            viewing.send_modify(|v| v.viewers += 1);
            CloseWatch {
                viewing: viewing.clone(),
            }
        };
        let first = monitor_like(&viewing);
        let second = monitor_like(&viewing);
        assert_eq!(rx.borrow().viewers, 2);
        drop(first);
        drop(second);
        assert_eq!(rx.borrow().viewers, 0);
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
