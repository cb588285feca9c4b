//! Which of a unit's settled cgroup files (limits, cgroup.freeze, memory.events, cgroup.events)
//! changed since the last sample, from one inotify instance per sampler (inotify(7)).
//! Why inotify can be trusted here: ARCHITECTURE.md, "cgroup".

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::unit::{SETTLED_KNOBS, settled_knobs_of_file};

/// A bit in a unit's [`Changes`] that no knob uses: the kernel dropped the unit's watch, so no
/// later change would be reported.
const WATCH_LOST: u32 = 1 << 31;

/// The knobs (bits as in `unit::Knob::bit`) of one unit that changed since the unit last took
/// them, set by [`ChangeWatch::drain`].
type Changes = Arc<AtomicU32>;

/// The shared inotify instance of a sampler's units. Without one (none left for this user, or
/// [`ChangeWatch::unavailable`]), units watched by it read every file on every sample.
#[derive(Debug, Clone)]
pub struct ChangeWatch {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    inotify: OwnedFd,
    /// Each watch descriptor's units: usually one, but two handles on the same directory get
    /// the same descriptor (inotify_add_watch(2) returns the existing watch of an inode).
    units: Mutex<HashMap<i32, Vec<Changes>>>,
    /// Makes every new watch fail, as ENOSPC would.
    #[cfg(test)]
    refuse_watches: std::sync::atomic::AtomicBool,
}

impl Default for ChangeWatch {
    fn default() -> ChangeWatch {
        ChangeWatch::new()
    }
}

/// A new inotify instance that never blocks a read, or `None` when the user has none left.
pub(crate) fn new_inotify() -> Option<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor is owned right below.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The events in what one read(2) of an inotify descriptor returned: each `struct
/// inotify_event` (wd, mask, cookie, len, then `len` bytes of NUL-padded name) as its watch
/// descriptor, mask and name (empty for an event on the watched file itself).
pub(crate) fn inotify_events(bytes: &[u8]) -> impl Iterator<Item = (i32, u32, &[u8])> {
    const HEADER: usize = 16;
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at + HEADER)?;
        let field = |offset: usize| -> [u8; 4] {
            header[offset..offset + 4].try_into().unwrap_or_default()
        };
        let len = u32::from_ne_bytes(field(12)) as usize;
        let name = bytes
            .get(at + HEADER..at + HEADER + len)
            .unwrap_or_default();
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        at += HEADER + len;
        Some((
            i32::from_ne_bytes(field(0)),
            u32::from_ne_bytes(field(4)),
            name,
        ))
    })
}

impl ChangeWatch {
    pub fn new() -> ChangeWatch {
        let shared = new_inotify().map(|inotify| {
            Arc::new(Shared {
                inotify,
                units: Mutex::default(),
                #[cfg(test)]
                refuse_watches: Default::default(),
            })
        });
        ChangeWatch { shared }
    }

    /// No inotify at all: every unit reads every file on every sample.
    pub fn unavailable() -> ChangeWatch {
        ChangeWatch { shared: None }
    }

    pub fn is_available(&self) -> bool {
        self.shared.is_some()
    }

    /// Reads every pending event without waiting and marks the files they name changed on
    /// their units. Call it before each round of samples: a change is seen by the first
    /// sample after the drain that reads its event.
    pub fn drain(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        // Holds at least one event with the longest name.
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: reading into a buffer we own, of the length given.
            let n = unsafe {
                libc::read(
                    shared.inotify.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    Some(libc::EINTR) => continue,
                    // Events may have been lost: trust nothing cached.
                    _ => return shared.mark_all(SETTLED_KNOBS),
                }
            }
            if n == 0 {
                return;
            }
            let mut units = shared.lock_units();
            for (wd, mask, name) in inotify_events(&buf[..n as usize]) {
                if mask & libc::IN_Q_OVERFLOW != 0 {
                    mark(units.values().flatten(), SETTLED_KNOBS);
                } else if mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_UNMOUNT) != 0 {
                    // The watch is gone (IN_IGNORED follows the others): the wd may be handed
                    // out again, and this unit's changes are no longer reported.
                    if let Some(lost) = units.remove(&wd) {
                        mark(&lost, SETTLED_KNOBS | WATCH_LOST);
                    }
                } else if let Some(changed) = units.get(&wd) {
                    mark(changed, settled_knobs_of_file(name));
                }
            }
        }
    }

    /// Starts watching `dir` for `UnitWatch`: its changes, or `None` when no watch could be
    /// added.
    fn subscribe(&self, dir: &Path) -> Option<(Arc<Shared>, i32, Changes)> {
        let shared = self.shared.as_ref()?;
        #[cfg(test)]
        if shared.refuse_watches.load(Ordering::Relaxed) {
            return None;
        }
        let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // IN_MODIFY on a directory reports its files' modifications; IN_IGNORED comes anyway.
        let mask = libc::IN_MODIFY | libc::IN_DELETE_SELF | libc::IN_ONLYDIR;
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        let wd =
            unsafe { libc::inotify_add_watch(shared.inotify.as_raw_fd(), path.as_ptr(), mask) };
        if wd < 0 {
            return None;
        }
        let changes = Changes::default();
        shared
            .lock_units()
            .entry(wd)
            .or_default()
            .push(Arc::clone(&changes));
        Some((Arc::clone(shared), wd, changes))
    }

    /// Makes every watch added from now on fail, as when the user's watches are used up.
    #[cfg(test)]
    pub(crate) fn refuse_watches(&self) {
        if let Some(shared) = &self.shared {
            shared.refuse_watches.store(true, Ordering::Relaxed);
        }
    }
}

impl Shared {
    fn lock_units(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Vec<Changes>>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_all(&self, bits: u32) {
        mark(self.lock_units().values().flatten(), bits);
    }
}

fn mark<'a>(units: impl IntoIterator<Item = &'a Changes>, bits: u32) {
    if bits != 0 {
        for changes in units {
            changes.fetch_or(bits, Ordering::Relaxed);
        }
    }
}

/// One unit directory's place in a [`ChangeWatch`].
#[derive(Debug)]
pub(super) struct UnitWatch {
    changes: ChangeWatch,
    state: WatchState,
}

#[derive(Debug)]
enum WatchState {
    /// Not watched yet: on first use, or after `reset`.
    Unwatched,
    Watching {
        shared: Arc<Shared>,
        wd: i32,
        changes: Changes,
    },
    /// No watch could be added, or the kernel dropped it: nothing cached is trusted.
    Failed,
}

impl UnitWatch {
    pub(super) fn new(changes: &ChangeWatch) -> UnitWatch {
        UnitWatch {
            changes: changes.clone(),
            state: WatchState::Unwatched,
        }
    }

    /// The settled knobs whose cached values must not be used: the ones reported changed since
    /// the last call, or all of them when the directory was not watched until now (the watch
    /// is added here, before the caller reads anything, so no change can fall between a read
    /// and the watch) or cannot be.
    pub(super) fn take_changes(&mut self, dir: &Path) -> u32 {
        match &self.state {
            WatchState::Unwatched => {
                self.state = match self.changes.subscribe(dir) {
                    Some((shared, wd, changes)) => WatchState::Watching {
                        shared,
                        wd,
                        changes,
                    },
                    None => WatchState::Failed,
                };
                SETTLED_KNOBS
            }
            WatchState::Watching { changes, .. } => {
                let changed = changes.swap(0, Ordering::Relaxed);
                if changed & WATCH_LOST != 0 {
                    self.unsubscribe();
                    self.state = WatchState::Failed;
                    return SETTLED_KNOBS;
                }
                changed & SETTLED_KNOBS
            }
            WatchState::Failed => SETTLED_KNOBS,
        }
    }

    /// Forgets the watch; the next `take_changes` adds it again.
    pub(super) fn reset(&mut self) {
        self.unsubscribe();
        self.state = WatchState::Unwatched;
    }

    fn unsubscribe(&mut self) {
        let WatchState::Watching {
            shared,
            wd,
            changes,
        } = &self.state
        else {
            return;
        };
        let mut units = shared.lock_units();
        // Absent when the kernel dropped the watch already (IN_IGNORED); then `wd` may belong
        // to another directory by now, and is not ours to remove.
        let Some(subscribers) = units.get_mut(wd) else {
            return;
        };
        let before = subscribers.len();
        subscribers.retain(|other| !Arc::ptr_eq(other, changes));
        if subscribers.len() < before && subscribers.is_empty() {
            units.remove(wd);
            // SAFETY: plain syscall on a descriptor kept open by the Arc.
            unsafe { libc::inotify_rm_watch(shared.inotify.as_raw_fd(), *wd) };
        }
    }
}

impl Drop for UnitWatch {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}
