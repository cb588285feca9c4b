//! A parent cgroup's stall counters, which tell its children's sweeps when their memory and io
//! pressure cannot have changed.
//!
//! The kernel counts a task's stall in the task's cgroup and in every ancestor
//! (kernel/sched/psi.c, `psi_group_change` walks up the hierarchy), and the `total=` of a
//! pressure file includes a stall still going on when it is read (`get_recent_times`). So while
//! a parent's memory.pressure and io.pressure show the same totals, none of its children stalled
//! on memory or io in between, and a child whose averages had settled at zero still reads zero.
//! One parent (app.slice, for most units) read per sweep replaces two reads per child.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::CgroupError;
use super::parse::Pressure;
use super::unit::UnitCgroup;

/// Which stall totals a parent showed, as numbers: two readings of the same number saw the
/// same totals, with no stall anywhere below the parent between them. `None`: the file could
/// not be read, which vouches for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct StallEpochs {
    pub(super) memory: Option<u64>,
    pub(super) io: Option<u64>,
}

/// A pressure file's stall totals in µs: `some`, and `full` where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StallTotals(u64, Option<u64>);

impl StallTotals {
    pub(super) fn of(pressure: &Pressure) -> StallTotals {
        StallTotals(
            pressure.some.total_usec,
            pressure.full.map(|full| full.total_usec),
        )
    }
}

/// One pressure file's totals and their number.
#[derive(Debug, Default)]
struct Counter {
    totals: Option<StallTotals>,
    epoch: u64,
}

impl Counter {
    fn update(&mut self, reading: Option<Pressure>) -> Option<u64> {
        let totals = reading.as_ref().map(StallTotals::of);
        if totals.is_none() || totals != self.totals {
            self.epoch += 1;
        }
        self.totals = totals;
        totals.map(|_| self.epoch)
    }
}

/// The memory and io stall totals of a cgroup whose children a [`Sampler`] sweeps, read at most
/// once per sweep and only when a child's pressure files are due. Shared by the children's
/// [`UnitCgroup`]s (see [`UnitCgroup::beside`]).
///
/// [`Sampler`]: crate::monitor::Sampler
#[derive(Debug)]
pub struct ParentStalls {
    cgroup: UnitCgroup,
    /// The sweep whose time the last reading was taken for.
    read_for: Option<Instant>,
    memory: Counter,
    io: Counter,
    epochs: StallEpochs,
}

/// A [`ParentStalls`] shared by the units below it.
pub type SharedParent = Arc<Mutex<ParentStalls>>;

impl ParentStalls {
    /// The parent cgroup at `cgroup`'s directory; nothing is read until a child asks.
    pub fn shared(cgroup: UnitCgroup) -> SharedParent {
        Arc::new(Mutex::new(ParentStalls {
            cgroup,
            read_for: None,
            memory: Counter::default(),
            io: Counter::default(),
            epochs: StallEpochs::default(),
        }))
    }

    pub fn path(&self) -> &std::path::Path {
        self.cgroup.path()
    }

    /// The parent's stall totals as of the sweep at `now`, read at the first call for that
    /// sweep. A file that cannot be read (no pressure files, or a parent that went away) gives
    /// `None`, and its children read their own. A parent that went away is looked up by its
    /// path again at the next sweep, in case a cgroup of the same name took its place.
    pub(super) fn epochs_at(&mut self, now: Instant) -> StallEpochs {
        if self.read_for != Some(now) {
            self.read_for = Some(now);
            let memory = self.cgroup.memory_pressure();
            let io = self.cgroup.io_pressure();
            let gone = |r: &Result<_, CgroupError>| matches!(r, Err(CgroupError::Gone(_)));
            if gone(&memory) || gone(&io) {
                self.cgroup.reopen();
            }
            self.epochs = StallEpochs {
                memory: self.memory.update(memory.ok().flatten()),
                io: self.io.update(io.ok().flatten()),
            };
        }
        self.epochs
    }
}

/// How many files the parent's reads took so far.
#[cfg(test)]
pub(super) fn reads(parent: &SharedParent) -> usize {
    lock(parent).cgroup.reads()
}

pub(super) fn lock(parent: &SharedParent) -> MutexGuard<'_, ParentStalls> {
    parent.lock().unwrap_or_else(|e| e.into_inner())
}
