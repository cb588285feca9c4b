//! Wakeups between ticks: inotify on memory.events/cgroup.events and PSI triggers on
//! memory.pressure (cgroup-v2.rst, psi.rst), all units on one inotify instance.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::Path;
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

/// PSI triggers to try, most responsive first: stalls of 150 ms within 1 s, then the same share
/// in a 2 s window, because since Linux 6.5 ("sched/psi: Allow unprivileged polling of N*2s
/// period") unprivileged triggers must have a window that is a multiple of 2 s, and before it
/// creating any trigger needed CAP_SYS_RESOURCE (EPERM): then the sampler covers pressure.
const PSI_TRIGGERS: [&str; 2] = ["some 150000 1000000", "some 300000 2000000"];

/// Fires come in bursts (memory.events "high" counts every reclaim at memory.high); one wakeup
/// per unit per this long is plenty, and keeps a throttled unit from keeping the monitor busy.
const MIN_SPACING: Duration = Duration::from_millis(100);

/// Which event sources a unit's watch could set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WakeupSources {
    /// Files watched with inotify (memory.events, cgroup.events), 0 to 2.
    pub inotify_files: u8,
    /// The PSI trigger written to memory.pressure, if the kernel took one.
    pub psi_trigger: Option<&'static str>,
}

/// Watch descriptors of the shared inotify instance, and the unit each belongs to.
type WatchedFiles = Arc<Mutex<HashMap<i32, String>>>;

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
                if let Ok(wd) = inotify::add_watch(&**fd, dir.join(name), WatchFlags::MODIFY) {
                    files.insert(wd, unit.to_owned());
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
/// and a unit woken less than [`MIN_SPACING`] ago is woken again when that time is up.
async fn read_inotify(
    fd: AsyncFd<Arc<OwnedFd>>,
    files: WatchedFiles,
    wakeups: mpsc::Sender<String>,
) {
    let mut last_woken: HashMap<String, Instant> = HashMap::new();
    let mut pending: HashSet<String> = HashSet::new();
    loop {
        let flush_at = pending
            .iter()
            .map(|u| {
                last_woken
                    .get(u)
                    .map_or_else(Instant::now, |t| *t + MIN_SPACING)
            })
            .min();
        let mut fired: HashSet<String> = HashSet::new();
        tokio::select! {
            ready = fd.readable() => {
                let Ok(mut guard) = ready else { return };
                {
                    let files = files.lock().unwrap_or_else(|e| e.into_inner());
                    // An error here is a read that failed for good: what was read stands.
                    let _ = read_inotify_events(&**guard.get_inner(), |wd, _, _| {
                        if let Some(unit) = files.get(&wd) {
                            fired.insert(unit.clone());
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
        last_woken.retain(|_, at| now.duration_since(*at) < MIN_SPACING);
        for unit in fired {
            if last_woken.contains_key(&unit) {
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
