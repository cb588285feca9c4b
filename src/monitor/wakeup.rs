//! Wakeups that let the monitor notice a runaway unit between sampling ticks: inotify on the
//! unit's memory.events and cgroup.events, which the kernel "modifies" (IN_MODIFY) whenever a
//! counter or state in them changes (Documentation/admin-guide/cgroup-v2.rst, "memory.events":
//! "A value change in this file generates a file modified event"), and a PSI trigger on
//! memory.pressure, which raises POLLPRI when tasks stall for memory longer than a threshold
//! within a window (Documentation/accounting/psi.rst, "Monitoring for pressure thresholds").
//!
//! Each watched unit gets one task that owns its descriptors and sends the unit's name on a
//! channel when either source fires. Where a source cannot be set up (no memory controller,
//! a kernel that refuses unprivileged PSI triggers) the unit simply relies on the sampler's
//! ticks, which the monitor keeps running anyway.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// A unit's running watch; dropping it stops the task and closes its descriptors.
#[derive(Debug)]
pub struct UnitWakeup {
    task: JoinHandle<()>,
    sources: WakeupSources,
}

impl UnitWakeup {
    /// Starts watching the cgroup directory `dir` of `unit`; wakeups send `unit` on `wakeups`.
    /// Must be called inside a tokio runtime.
    pub fn start(unit: &str, dir: &Path, wakeups: mpsc::Sender<String>) -> UnitWakeup {
        let inotify = watch_files(dir, &["memory.events", "cgroup.events"]);
        let psi = psi_trigger(&dir.join("memory.pressure"));
        let sources = WakeupSources {
            inotify_files: inotify.as_ref().map_or(0, |(_, n)| *n),
            psi_trigger: psi.as_ref().map(|(_, t)| *t),
        };
        let unit = unit.to_owned();
        let task = tokio::spawn(run(
            unit,
            inotify.map(|(fd, _)| fd),
            psi.map(|(fd, _)| fd),
            wakeups,
        ));
        UnitWakeup { task, sources }
    }

    pub fn sources(&self) -> WakeupSources {
        self.sources
    }
}

impl Drop for UnitWakeup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    unit: String,
    inotify: Option<AsyncFd<OwnedFd>>,
    psi: Option<AsyncFd<OwnedFd>>,
    wakeups: mpsc::Sender<String>,
) {
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            ready = readable(&inotify) => {
                let Ok(mut guard) = ready else { return };
                // Drain the queued events: only the fact that something changed matters.
                loop {
                    // SAFETY: reading into a buffer we own, of the length given.
                    let n = unsafe {
                        libc::read(guard.get_inner().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                    };
                    if n <= 0 {
                        break;
                    }
                }
                guard.clear_ready();
            }
            ready = priority(&psi) => {
                let Ok(mut guard) = ready else { return };
                guard.clear_ready();
            }
        }
        if wakeups.send(unit.clone()).await.is_err() {
            return; // the monitor is gone
        }
        tokio::time::sleep(MIN_SPACING).await;
    }
}

async fn readable(
    fd: &Option<AsyncFd<OwnedFd>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>> {
    match fd {
        Some(fd) => fd.readable().await,
        None => std::future::pending().await,
    }
}

async fn priority(
    fd: &Option<AsyncFd<OwnedFd>>,
) -> io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>> {
    match fd {
        Some(fd) => fd.ready(Interest::PRIORITY).await,
        None => std::future::pending().await,
    }
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

/// One inotify instance watching `names` in `dir` for IN_MODIFY, with how many it watches;
/// `None` when none of the files can be watched.
fn watch_files(dir: &Path, names: &[&str]) -> Option<(AsyncFd<OwnedFd>, u8)> {
    // SAFETY: plain syscall; the returned descriptor is owned right below.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut watched = 0u8;
    for name in names {
        let Some(path) = c_path(&dir.join(name)) else {
            continue;
        };
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_MODIFY) };
        if wd >= 0 {
            watched += 1;
        }
    }
    if watched == 0 {
        return None;
    }
    // SAFETY: an OwnedFd keeps its one descriptor open, unchanged, until it is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .ok()
        .map(|fd| (fd, watched))
}

/// memory.pressure opened for writing with the first trigger the kernel accepts. The trigger
/// lives as long as the descriptor (psi.rst: "the trigger is removed when the file descriptor
/// is closed").
fn psi_trigger(path: &Path) -> Option<(AsyncFd<OwnedFd>, &'static str)> {
    let c = c_path(path)?;
    for trigger in PSI_TRIGGERS {
        // SAFETY: `c` is a valid NUL-terminated path; the descriptor is owned right below.
        let raw = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return None; // no such file (no memory controller) or not ours to write
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // psi.rst: the trigger is written with its terminating NUL.
        let bytes = CString::new(trigger).ok()?;
        let bytes = bytes.as_bytes_with_nul();
        // SAFETY: writing `bytes.len()` bytes from a live buffer.
        let written = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            // EINVAL: this window is not allowed here (unprivileged, not a multiple of 2 s);
            // try the next. EPERM/EACCES and others: no triggers for us at all.
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                continue;
            }
            return None;
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
        let watch = UnitWakeup::start("app-x.service", dir.path(), tx);
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
}
