//! Reads the cgroup v2 files of the units Corral watches (Documentation/admin-guide/cgroup-v2.rst)
//! on an injectable root; every value optional, no D-Bus, no GTK.

mod parse;
mod stalls;
mod unit;
pub(crate) mod watch;

#[cfg(test)]
pub(crate) mod tests;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use parse::{
    CgroupEvents, Controllers, CpuMax, CpuStat, Limit, MemoryEvents, ParseError, Pressure,
    PressureLine, parse_bool, parse_cgroup_events, parse_controllers, parse_cpu_max,
    parse_cpu_stat, parse_flat_keyed, parse_limit, parse_memory_events, parse_pressure, parse_u64,
};
pub use stalls::{ParentStalls, SharedParent};
pub use unit::{CgroupSample, FilePace, SLOW_EVERY, UnitCgroup, file_paces};
pub use watch::ChangeWatch;

/// Where systemd mounts the cgroup hierarchy.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The cgroup directory no longer exists: the unit stopped and systemd removed it.
    #[error("{}: {}", .0.display(), crate::i18n::gettext("the cgroup no longer exists (the unit has stopped)"))]
    Gone(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// How cgroups are mounted under the root. Corral needs `V2`: only the unified hierarchy has
/// the files it reads, and systemd delegates controllers to a user manager only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Layout {
    /// The unified hierarchy is mounted at the root.
    V2,
    /// systemd's hybrid mode: v1 controller hierarchies, with the unified one (holding no
    /// controllers) at `unified/`.
    Hybrid,
    /// Only v1 controller hierarchies.
    V1,
    /// No cgroup filesystem found at the root.
    Missing,
}

/// The cgroup filesystem, rooted at [`DEFAULT_ROOT`] or at a fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupFs {
    root: PathBuf,
}

impl Default for CgroupFs {
    fn default() -> CgroupFs {
        CgroupFs::system()
    }
}

impl CgroupFs {
    pub fn new(root: impl Into<PathBuf>) -> CgroupFs {
        CgroupFs { root: root.into() }
    }

    /// The machine's own hierarchy at [`DEFAULT_ROOT`].
    pub fn system() -> CgroupFs {
        CgroupFs::new(DEFAULT_ROOT)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a control group given as systemd's `ControlGroup` property, e.g.
    /// "/user.slice/user-1000.slice/user@1000.service/app.slice/x.service".
    pub fn path_of(&self, control_group: &str) -> PathBuf {
        // Path::join would replace the root with an absolute path instead of appending it.
        self.root.join(control_group.trim_start_matches('/'))
    }

    /// A handle for sampling a unit's cgroup; see [`CgroupFs::path_of`] for `control_group`.
    pub fn unit(&self, control_group: &str) -> UnitCgroup {
        UnitCgroup::new(self.path_of(control_group))
    }

    pub fn layout(&self) -> Layout {
        if self.root.join("cgroup.controllers").is_file() {
            Layout::V2
        } else if self.root.join("unified/cgroup.controllers").is_file() {
            Layout::Hybrid
        } else if self.has_v1_hierarchy() {
            Layout::V1
        } else {
            Layout::Missing
        }
    }

    /// Every v1 hierarchy's root has a "tasks" file, which v2 dropped.
    fn has_v1_hierarchy(&self) -> bool {
        let Ok(entries) = self.root.read_dir() else {
            return false;
        };
        entries
            .flatten()
            .any(|entry| entry.path().join("tasks").is_file())
    }

    /// The controllers available in a control group (cgroup.controllers): what its parent
    /// enabled for it.
    pub fn controllers(&self, control_group: &str) -> Result<Controllers, CgroupError> {
        self.read_controllers(control_group, "cgroup.controllers")
    }

    /// The controllers a control group enables for its children (cgroup.subtree_control).
    /// A unit's limits only apply when its slice lists the controller here.
    pub fn subtree_control(&self, control_group: &str) -> Result<Controllers, CgroupError> {
        self.read_controllers(control_group, "cgroup.subtree_control")
    }

    fn read_controllers(
        &self,
        control_group: &str,
        name: &str,
    ) -> Result<Controllers, CgroupError> {
        let dir = self.path_of(control_group);
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(parse_controllers(&text)),
            Err(error) if error.kind() == io::ErrorKind::NotFound && !dir.exists() => {
                Err(CgroupError::Gone(dir))
            }
            Err(source) => Err(CgroupError::Io { path, source }),
        }
    }
}
