//! Which of a unit's settled cgroup files (limits, cgroup.freeze, memory.events, cgroup.events)
//! changed since the last sample, from one inotify instance per sampler (inotify(7)).
//! Why inotify can be trusted here: ARCHITECTURE.md, "cgroup".

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::inotify::{self, ReadFlags, WatchFlags};
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
    inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).ok()
}

/// Reads every event pending on a non-blocking inotify descriptor, without waiting, and hands
/// each to `event` as its watch descriptor, mask and name (empty for an event on the watched
/// file itself). `Err` when reading failed with anything but "nothing more now": events may
/// have been lost.
pub(crate) fn read_inotify_events(
    fd: impl AsFd,
    mut event: impl FnMut(i32, ReadFlags, &[u8]),
) -> Result<(), rustix::io::Errno> {
    // Holds at least one event with the longest name.
    let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    loop {
        match reader.next() {
            Ok(e) => event(
                e.wd(),
                e.events(),
                e.file_name().map_or(&[][..], |name| name.to_bytes()),
            ),
            Err(rustix::io::Errno::AGAIN) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
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
        let read = read_inotify_events(&shared.inotify, |wd, mask, name| {
            let mut units = shared.lock_units();
            if mask.contains(ReadFlags::QUEUE_OVERFLOW) {
                mark(units.values().flatten(), SETTLED_KNOBS);
            } else if mask
                .intersects(ReadFlags::IGNORED | ReadFlags::DELETE_SELF | ReadFlags::UNMOUNT)
            {
                // The watch is gone (IN_IGNORED follows the others): the wd may be handed out
                // again, and this unit's changes are no longer reported.
                if let Some(lost) = units.remove(&wd) {
                    mark(&lost, SETTLED_KNOBS | WATCH_LOST);
                }
            } else if let Some(changed) = units.get(&wd) {
                mark(changed, settled_knobs_of_file(name));
            }
        });
        if read.is_err() {
            // Events may have been lost: trust nothing cached.
            shared.mark_all(SETTLED_KNOBS);
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
        // IN_MODIFY on a directory reports its files' modifications; IN_IGNORED comes anyway.
        let mask = WatchFlags::MODIFY | WatchFlags::DELETE_SELF | WatchFlags::ONLYDIR;
        let wd = inotify::add_watch(&shared.inotify, dir, mask).ok()?;
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
            let _ = inotify::remove_watch(&shared.inotify, *wd);
        }
    }
}

impl Drop for UnitWatch {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}
