//! Wakeups between ticks: inotify on memory.events/cgroup.events and PSI triggers on
//! memory.pressure (cgroup-v2.rst, psi.rst), all units on one inotify instance.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use rustix::fs::inotify::{self, WatchFlags};
use rustix::fs::{Mode, OFlags};

use crate::cgroup::watch::{new_inotify, read_inotify_events};
use crate::cgroup::{parse_cgroup_events, parse_memory_events};

/// PSI triggers to try, most responsive first: stalls of 150 ms within 1 s, then the same share
/// in a 2 s window, because since Linux 6.5 ("sched/psi: Allow unprivileged polling of N*2s
/// period") unprivileged triggers must have a window that is a multiple of 2 s, and before it
/// creating any trigger needed CAP_SYS_RESOURCE (EPERM): then the sampler covers pressure.
const PSI_TRIGGERS: [&str; 2] = ["some 150000 1000000", "some 300000 2000000"];

/// Fires come in bursts (memory.events "high" counts every reclaim at memory.high); one wakeup
/// per unit per this long is plenty, and keeps a throttled unit from keeping the monitor busy.
/// Two changes never wait for it (see [`WatchedFile::is_urgent`]): an OOM kill, and the cgroup
/// emptying. A unit at its hard limit fires memory.events at every reclaim right up to the
/// kill, so the kill's own event nearly always fell within the spacing and waited for it.
const MIN_SPACING: Duration = Duration::from_millis(100);

/// Which event sources a unit's watch could set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WakeupSources {
    /// Files watched with inotify (memory.events, cgroup.events), 0 to 2.
    pub inotify_files: u8,
    /// The PSI trigger written to memory.pressure, if the kernel took one.
    pub psi_trigger: Option<&'static str>,
}

/// Watch descriptors of the shared inotify instance, and the file each stands for.
type WatchedFiles = Arc<Mutex<HashMap<i32, WatchedFile>>>;

/// A watched events file of a unit's cgroup.
#[derive(Debug)]
struct WatchedFile {
    unit: String,
    path: PathBuf,
    /// For memory.events: its oom_kill count when last read; `None` for cgroup.events.
    oom_kills: Option<u64>,
}

impl WatchedFile {
    /// Whether the file says something that must not wait for [`MIN_SPACING`]: a new OOM kill
    /// in memory.events, or an empty cgroup in cgroup.events (the unit is ending). Read only
    /// for a unit woken moments ago, so a unit throttled at memory.high costs one small read
    /// per burst here rather than a sample of all its files.
    fn is_urgent(&mut self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return false;
        };
        match self.oom_kills {
            Some(before) => {
                let now = parse_memory_events(&text).oom_kill.unwrap_or(0);
                self.oom_kills = Some(now);
                now > before
            }
            None => parse_cgroup_events(&text).populated == Some(false),
        }
    }
}

/// The shared inotify instance and the task that reads it. Dropping it stops the task; the
/// descriptor closes once the last unit's watch is dropped too.
#[derive(Debug)]
pub struct WakeupHub {
    inotify: Option<Arc<OwnedFd>>,
    files: WatchedFiles,
    wakeups: mpsc::Sender<String>,
    reader: Option<JoinHandle<()>>,
}

impl WakeupHub {
    /// Wakeups will send the unit's name on `wakeups`. Must be called inside a tokio runtime.
    /// Without inotify (none left for this user), units rely on the sampler's ticks.
    pub fn new(wakeups: mpsc::Sender<String>) -> WakeupHub {
        WakeupHub::with_spacing(wakeups, MIN_SPACING)
    }

    /// [`WakeupHub::new`] with inotify wakeups of a unit at least `spacing` apart.
    fn with_spacing(wakeups: mpsc::Sender<String>, spacing: Duration) -> WakeupHub {
        let files = WatchedFiles::default();
        let inotify = new_inotify().map(Arc::new);
        let reader = inotify.as_ref().and_then(|fd| {
            // SAFETY: the Arc keeps the OwnedFd, and so its one descriptor, open and unchanged
            // for as long as the AsyncFd holds it.
            let fd = unsafe { AsyncFd::register_with_interest(Arc::clone(fd), Interest::READABLE) }
                .ok()?;
            Some(tokio::spawn(read_inotify(
                fd,
                Arc::clone(&files),
                wakeups.clone(),
                spacing,
            )))
        });
        WakeupHub {
            inotify: if reader.is_some() { inotify } else { None },
            files,
            wakeups,
            reader,
        }
    }

    /// Starts watching the cgroup directory `dir` of `unit`.
    pub fn watch(&self, unit: &str, dir: &Path) -> UnitWakeup {
        let mut watches = Vec::new();
        if let Some(fd) = &self.inotify {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            for name in ["memory.events", "cgroup.events"] {
                let path = dir.join(name);
                if let Ok(wd) = inotify::add_watch(&**fd, &path, WatchFlags::MODIFY) {
                    // The kills counted before the watch began are the baseline.
                    let oom_kills = (name == "memory.events").then(|| {
                        std::fs::read_to_string(&path)
                            .ok()
                            .and_then(|text| parse_memory_events(&text).oom_kill)
                            .unwrap_or(0)
                    });
                    let unit = unit.to_owned();
                    files.insert(
                        wd,
                        WatchedFile {
                            unit,
                            path,
                            oom_kills,
                        },
                    );
                    watches.push(wd);
                }
            }
        }
        let psi = psi_trigger(&dir.join("memory.pressure"));
        let sources = WakeupSources {
            inotify_files: watches.len() as u8,
            psi_trigger: psi.as_ref().map(|(_, t)| *t),
        };
        let psi_task = psi
            .map(|(fd, _)| tokio::spawn(watch_pressure(unit.to_owned(), fd, self.wakeups.clone())));
        UnitWakeup {
            inotify: (!watches.is_empty())
                .then(|| self.inotify.clone())
                .flatten()
                .map(|fd| (fd, watches, Arc::clone(&self.files))),
            psi_task,
            sources,
        }
    }
}

impl Drop for WakeupHub {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// A unit's watch; dropping it removes its inotify watches and stops its PSI task.
#[derive(Debug)]
pub struct UnitWakeup {
    inotify: Option<(Arc<OwnedFd>, Vec<i32>, WatchedFiles)>,
    psi_task: Option<JoinHandle<()>>,
    sources: WakeupSources,
}

impl UnitWakeup {
    pub fn sources(&self) -> WakeupSources {
        self.sources
    }
}

impl Drop for UnitWakeup {
    fn drop(&mut self) {
        if let Some((fd, watches, files)) = &self.inotify {
            let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
            for wd in watches {
                files.remove(wd);
                // A removed cgroup's watches are gone already (EINVAL): nothing to undo.
                let _ = inotify::remove_watch(&**fd, *wd);
            }
        }
        if let Some(task) = &self.psi_task {
            task.abort();
        }
    }
}

/// Reads the shared inotify instance: each burst of events wakes each unit concerned once,
/// and a unit woken less than `spacing` ago is woken again when that time is up, unless what
/// changed is urgent (an OOM kill, the cgroup emptying): that wakes it at once.
async fn read_inotify(
    fd: AsyncFd<Arc<OwnedFd>>,
    files: WatchedFiles,
    wakeups: mpsc::Sender<String>,
    spacing: Duration,
) {
    let mut last_woken: HashMap<String, Instant> = HashMap::new();
    let mut pending: HashSet<String> = HashSet::new();
    loop {
        let flush_at = pending
            .iter()
            .map(|u| {
                last_woken
                    .get(u)
                    .map_or_else(Instant::now, |t| *t + spacing)
            })
            .min();
        let mut fired: HashSet<String> = HashSet::new();
        let mut urgent: HashSet<String> = HashSet::new();
        tokio::select! {
            ready = fd.readable() => {
                let Ok(mut guard) = ready else { return };
                {
                    let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
                    let now = Instant::now();
                    let spaced = |unit: &str| {
                        last_woken
                            .get(unit)
                            .is_some_and(|at| now.duration_since(*at) < spacing)
                    };
                    // An error here is a read that failed for good: what was read stands.
                    let _ = read_inotify_events(&**guard.get_inner(), |wd, _, _| {
                        if let Some(file) = files.get_mut(&wd) {
                            if spaced(&file.unit) && file.is_urgent() {
                                urgent.insert(file.unit.clone());
                            }
                            fired.insert(file.unit.clone());
                        }
                    });
                }
                guard.clear_ready();
            }
            () = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                fired.extend(pending.drain());
            }
        }
        let now = Instant::now();
        last_woken.retain(|_, at| now.duration_since(*at) < spacing);
        for unit in fired {
            if last_woken.contains_key(&unit) && !urgent.contains(&unit) {
                pending.insert(unit);
                continue;
            }
            pending.remove(&unit);
            if wakeups.send(unit.clone()).await.is_err() {
                return; // the monitor is gone
            }
            last_woken.insert(unit, now);
        }
    }
}

/// Waits on a unit's PSI trigger and wakes the unit at most once per [`MIN_SPACING`].
async fn watch_pressure(unit: String, psi: AsyncFd<OwnedFd>, wakeups: mpsc::Sender<String>) {
    loop {
        let Ok(mut guard) = psi.ready(Interest::PRIORITY).await else {
            return;
        };
        guard.clear_ready();
        if wakeups.send(unit.clone()).await.is_err() {
            return; // the monitor is gone
        }
        tokio::time::sleep(MIN_SPACING).await;
    }
}

/// memory.pressure opened for writing with the first trigger the kernel accepts. The trigger
/// lives as long as the descriptor (psi.rst: "the trigger is removed when the file descriptor
/// is closed").
fn psi_trigger(path: &Path) -> Option<(AsyncFd<OwnedFd>, &'static str)> {
    for trigger in PSI_TRIGGERS {
        // No such file (no memory controller), or not ours to write: no triggers.
        let fd = rustix::fs::open(
            path,
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        // psi.rst: the trigger is written with its terminating NUL.
        let mut bytes = trigger.as_bytes().to_vec();
        bytes.push(0);
        match rustix::io::write(&fd, &bytes) {
            Ok(_) => {}
            // This window is not allowed here (unprivileged, not a multiple of 2 s): the next.
            Err(rustix::io::Errno::INVAL) => continue,
            // EPERM/EACCES and others: no triggers for us at all.
            Err(_) => return None,
        }
        // SAFETY: an OwnedFd keeps its one descriptor open, unchanged, until it is dropped.
        return unsafe { AsyncFd::register_with_interest(fd, Interest::PRIORITY) }
            .ok()
            .map(|fd| (fd, trigger));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn a_modified_events_file_wakes_the_unit_once_per_burst() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("memory.events"), "high 0\n").unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let hub = WakeupHub::new(tx);
        let watch = hub.watch("app-x.service", dir.path());
        assert_eq!(watch.sources().inotify_files, 2);
        // No memory.pressure in a plain directory: no trigger, the sampler covers it.
        assert_eq!(watch.sources().psi_trigger, None);
        // Nothing changed yet: no wakeup.
        let quiet = tokio::time::timeout(Duration::from_millis(150), rx.recv()).await;
        assert!(quiet.is_err(), "woke without a change");
        // A burst of writes to both files gives one wakeup, not one per write.
        for i in 0..20 {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("memory.events"))
                .unwrap();
            writeln!(f, "high {i}").unwrap();
        }
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let unit = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        assert_eq!(unit.unwrap().as_deref(), Some("app-x.service"));
        let again = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(again.is_err(), "one burst, one wakeup: {again:?}");
        // A later change wakes it again; a dropped watch never does.
        std::fs::write(dir.path().join("memory.events"), "high 99\n").unwrap();
        let unit = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        assert_eq!(unit.unwrap().as_deref(), Some("app-x.service"));
        drop(watch);
        tokio::task::yield_now().await;
        std::fs::write(dir.path().join("memory.events"), "high 100\n").unwrap();
        let after = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(matches!(after, Ok(None) | Err(_)), "{after:?}");
    }

    #[tokio::test]
    async fn an_oom_kill_or_an_emptied_cgroup_does_not_wait_for_the_spacing() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "high 0\nmax 0\noom 0\noom_kill 2\n").unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        // A spacing no test waits for: any wakeup inside it came through as urgent.
        let hub = WakeupHub::with_spacing(tx, Duration::from_secs(600));
        async fn next(rx: &mut mpsc::Receiver<String>, wait_ms: u64) -> Option<String> {
            let wait = Duration::from_millis(wait_ms);
            tokio::time::timeout(wait, rx.recv()).await.ok().flatten()
        }
        let _watch = hub.watch("app-x.service", dir.path());
        // The unit at its limit: a first event wakes it, the next ones wait for the spacing.
        std::fs::write(&events, "high 0\nmax 1\noom 0\noom_kill 2\n").unwrap();
        assert_eq!(next(&mut rx, 2000).await.as_deref(), Some("app-x.service"));
        std::fs::write(&events, "high 0\nmax 2\noom 1\noom_kill 2\n").unwrap();
        assert_eq!(next(&mut rx, 300).await, None, "a reclaim is not urgent");
        // The kill: counted above the two of before the watch, it wakes the unit at once.
        std::fs::write(&events, "high 0\nmax 3\noom 2\noom_kill 3\n").unwrap();
        assert_eq!(next(&mut rx, 2000).await.as_deref(), Some("app-x.service"));
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        assert_eq!(next(&mut rx, 300).await, None, "freezing is not urgent");
        // The cgroup emptying: the unit is ending, at once too.
        std::fs::write(dir.path().join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
        assert_eq!(next(&mut rx, 2000).await.as_deref(), Some("app-x.service"));
    }

    #[tokio::test]
    async fn three_hundred_units_share_one_inotify_instance() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let before = crate::cgroup::tests::inotify_instances();
        let hub = WakeupHub::new(tx);
        let watches: Vec<UnitWakeup> = (0..300)
            .map(|i| {
                let unit = dir.path().join(format!("app-{i}.service"));
                std::fs::create_dir(&unit).unwrap();
                std::fs::write(unit.join("memory.events"), "high 0\n").unwrap();
                std::fs::write(unit.join("cgroup.events"), "populated 1\n").unwrap();
                hub.watch(&format!("app-{i}.service"), &unit)
            })
            .collect();
        assert!(watches.iter().all(|w| w.sources().inotify_files == 2));
        // The user's 128 instances are shared with every program they run: one is used here,
        // whatever the number of units (other tests of this binary may hold theirs meanwhile).
        let instances = crate::cgroup::tests::inotify_instances();
        assert!(
            instances <= before + 2,
            "{instances} instances, {before} before"
        );
        // Each unit is still told apart.
        std::fs::write(dir.path().join("app-250.service/memory.events"), "high 1\n").unwrap();
        let unit = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
        assert_eq!(unit.unwrap().as_deref(), Some("app-250.service"));
        // A dropped watch is silent; the others still wake.
        drop(watches);
        std::fs::write(dir.path().join("app-250.service/memory.events"), "high 2\n").unwrap();
        let after = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(after.is_err(), "{after:?}");
    }
}
