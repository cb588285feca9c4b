//! Containing what escaped: a running process and its descendants moved into a new scope
//! `app-corral-<id>-<random>.scope` with limits; see ARCHITECTURE.md.

use std::path::Path;

use crate::apps::AppCatalog;
use crate::config::{Config, ConfigError, Mode, Settings};
use crate::i18n::{gettext_f, ngettext_f};
use crate::procfs::ProcFs;
use crate::systemd::names::{self, UnitKind};
use crate::systemd::properties::TransientSpec;
use crate::systemd::{Systemd, SystemdError};

/// Why a process cannot be adopted; each says what to do instead. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("{}", gettext_f("there is no process {pid} (it may have ended); `corral ps APP --processes` lists an app's processes", &[("pid", .0)]))]
    NoProcess(u32),
    #[error("{}", gettext_f("process {pid} is the system's init (or its own process tree's root) and stays where it is; name one of your app's processes", &[("pid", .0)]))]
    Init(u32),
    #[error("{}", gettext_f("process {pid} belongs to user {uid}, not to you; Corral moves only your own processes, as your user manager does", &[("pid", .pid), ("uid", .uid)]))]
    NotYours { pid: u32, uid: u32 },
    #[error("{}", gettext_f("process {pid} is a kernel thread, which no unit can hold", &[("pid", .0)]))]
    KernelThread(u32),
    #[error("{}", gettext_f("process {pid} is this corral command itself; name the app's process", &[("pid", .0)]))]
    Ourselves(u32),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
}

/// A process tree to move, and how to contain it.
#[derive(Debug, Clone)]
pub struct AdoptRequest {
    /// The process named, then its descendants, parents first.
    pub pids: Vec<u32>,
    pub app_id: String,
    pub app_name: String,
    pub preset: String,
    pub settings: Settings,
}

/// Checks `pid` and works out what the scope will be: the app named after the process (its
/// desktop entry when one runs this executable), the preset and limits resolved as for a
/// launch of it (its rule included). A scope takes no sandboxing; any is left out.
pub fn request(
    proc: &ProcFs,
    pid: u32,
    config: &Config,
    catalog: &AppCatalog,
    preset: Option<&str>,
    overrides: &Settings,
) -> Result<AdoptRequest, AdoptError> {
    if pid <= 1 {
        return Err(AdoptError::Init(pid));
    }
    let process = proc.process(pid).ok_or(AdoptError::NoProcess(pid))?;
    // Kernel threads are children of kthreadd (PID 2), and have no command line.
    if pid == 2 || (process.ppid == 2 && process.command.is_empty()) {
        return Err(AdoptError::KernelThread(pid));
    }
    let me = std::process::id();
    if pid == me {
        return Err(AdoptError::Ourselves(pid));
    }
    let uid = proc.uid(pid).ok_or(AdoptError::NoProcess(pid))?;
    if uid != rustix::process::getuid().as_raw() {
        return Err(AdoptError::NotYours { pid, uid });
    }
    // This command, when it runs inside the tree (`corral adopt $$`), stays out of it.
    let pids: Vec<u32> = proc.tree(pid).into_iter().filter(|&p| p != me).collect();

    let executable = proc
        .executable(pid)
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| process.name.clone());
    let entry = catalog.find_by_executable(&executable).into_iter().next();
    let (app_id, app_name) = match entry {
        Some(entry) => (entry.id.clone(), entry.name.clone()),
        None => (executable.clone(), executable.clone()),
    };
    let mut overrides = overrides.clone();
    overrides.mode = Some(Mode::Scope);
    let resolved = config.resolve(&app_id, Some(&executable), preset, &overrides)?;
    let mut settings = resolved.settings;
    // A scope holds processes that already run: sandboxing can no longer apply.
    settings.no_new_privileges = None;
    settings.private_tmp = None;
    settings.protect_system = None;
    settings.protect_home = None;
    settings.environment.clear();
    Ok(AdoptRequest {
        pids,
        app_id,
        app_name,
        preset: resolved.preset,
        settings,
    })
}

/// What moved where.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub unit: String,
    /// The processes now in the scope's cgroup.
    pub moved: Vec<u32>,
    /// Processes of the tree that are elsewhere: started while the move happened, or that
    /// systemd did not move. Named, so the person can adopt them too.
    pub left_behind: Vec<u32>,
}

impl Adopted {
    /// What moved where, in one sentence: `app` as the face shows a name (escaped for a
    /// terminal, as written for a toast), `pid` the process asked for.
    pub fn words(&self, app: &str, pid: u32, preset: &str) -> String {
        ngettext_f(
            "Moved {app} ({n} process: {pid} and its children) into {unit}, preset {preset}",
            "Moved {app} ({n} processes: {pid} and its children) into {unit}, preset {preset}",
            self.moved.len() as u64,
            &[
                ("app", &app),
                ("n", &self.moved.len()),
                ("pid", &pid),
                ("unit", &self.unit),
                ("preset", &preset),
            ],
        )
    }

    /// The processes left behind, comma-separated; `None` when every one moved.
    pub fn left_behind_list(&self) -> Option<String> {
        let pids: Vec<String> = self.left_behind.iter().map(u32::to_string).collect();
        (!pids.is_empty()).then(|| pids.join(", "))
    }
}

/// Starts the scope with the tree's processes. A refused start leaves no unit behind.
pub async fn adopt(
    systemd: &Systemd,
    proc: &ProcFs,
    req: &AdoptRequest,
) -> Result<Adopted, AdoptError> {
    let spec = TransientSpec {
        name: names::new_unit_name(&req.app_id, UnitKind::Scope),
        kind: UnitKind::Scope,
        description: names::description(&req.app_name, &req.preset),
        command: Vec::new(),
        pids: req.pids.clone(),
        settings: req.settings.clone(),
        environment: Vec::new(),
        working_directory: None,
        manager: systemd.kind(),
        add_ref: false,
    };
    match systemd.start_transient(&spec, Vec::new()).await {
        Err(e) if spec.settings.oom_policy.is_some() && crate::launch::refuses_oom_policy(&e) => {
            let mut spec = spec.clone();
            spec.settings.oom_policy = None;
            systemd.start_transient(&spec, Vec::new()).await?;
        }
        other => other?,
    }
    // Where each process of the tree is now: the scope's cgroup ends with its name.
    let mut moved = Vec::new();
    let mut left_behind = Vec::new();
    for &pid in &proc.tree(req.pids[0]) {
        match proc.cgroup_of(pid) {
            Some(cg) if Path::new(&cg).file_name().and_then(|n| n.to_str()) == Some(&spec.name) => {
                moved.push(pid)
            }
            Some(_) if pid != std::process::id() => left_behind.push(pid),
            _ => {}
        }
    }
    Ok(Adopted {
        unit: spec.name,
        moved,
        left_behind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_moved_is_said_once_for_the_window_and_the_command_line() {
        let adopted = Adopted {
            unit: "app-corral-firefox-1a2b.scope".into(),
            moved: vec![40, 41, 42],
            left_behind: Vec::new(),
        };
        assert_eq!(
            adopted.words("Firefox", 40, "browser"),
            "Moved Firefox (3 processes: 40 and its children) into app-corral-firefox-1a2b.scope, preset browser"
        );
        assert_eq!(adopted.left_behind_list(), None);
        let partly = Adopted {
            moved: vec![40],
            left_behind: vec![43, 44],
            ..adopted
        };
        assert!(
            partly
                .words("Firefox", 40, "browser")
                .contains("(1 process: 40")
        );
        assert_eq!(partly.left_behind_list().as_deref(), Some("43, 44"));
    }
}
