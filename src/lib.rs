//! Corral: launch desktop apps in systemd transient units with resource limits, and watch them.
//! The layers and what may use what: ARCHITECTURE.md (enforced by tests/layers.rs).

pub mod adopt;
pub mod app;
pub mod apps;
pub mod cgroup;
pub mod cli;
pub mod cli_docs;
pub mod config;
pub mod controller;
pub mod desktop;
pub mod engine;
pub mod i18n;
pub mod identity;
pub mod launch;
pub mod limits;
pub mod monitor;
pub mod notify;
pub mod paths;
pub mod policy;
pub mod procfs;
pub mod rules;
pub mod systemd;
pub mod tray;
pub mod ui;

/// The soft limit on open files Corral started with, restored for the apps it starts.
pub static ORIGINAL_FD_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Raises the soft limit on open files to the hard limit: the sampler keeps every watched
/// unit's cgroup files open (about 19 each), which the usual soft limit of 1024 cannot hold
/// for more than ~50 units. Programs that still use select() break above 1024, so children
/// get the original limit back (as systemd does for its own children).
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(max)) = (limit.current, limit.maximum)
        && current < max
    {
        ORIGINAL_FD_LIMIT.store(current, std::sync::atomic::Ordering::Relaxed);
        let raised = rustix::process::Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        // Failing only leaves the usual limit: fewer units watched without reading again.
        let _ = setrlimit(Resource::Nofile, raised);
    }
}
