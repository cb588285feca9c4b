//! `corral doctor`: checks that this machine can contain apps (cgroup v2, a user manager with the
//! controllers delegated, PSI, the freezer) and says how to fix what is missing.

use std::path::Path;

use serde::Serialize;

use crate::cgroup::{CgroupFs, Layout};
use crate::i18n::{gettext, gettext_f, gettext_noop};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something Corral offers will be missing.
    Warning,
    /// Corral cannot contain apps until this is fixed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// In English; [`Check::label`] translates it.
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    /// The check's name in the person's language.
    pub fn label(&self) -> String {
        gettext(self.name)
    }

    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn problem(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The controllers Corral's limits need, and what each one is for.
const NEEDED: [(&str, &str); 3] = [
    ("memory", gettext_noop("memory limits")),
    ("cpu", gettext_noop("CPU quota and weight")),
    ("pids", gettext_noop("tasks limits")),
];

const DELEGATE_FIX: &str = gettext_noop(
    "let systemd delegate the controllers to user managers: create /etc/systemd/system/user@.service.d/delegate.conf containing \"[Service]\" and \"Delegate=cpu cpuset io memory pids\", run `sudo systemctl daemon-reload`, then log out and in",
);

// The names of the checks, shown before each result.
const CGROUP_V2: &str = gettext_noop("cgroup v2");
const DELEGATED: &str = gettext_noop("delegated controllers");
const PRESSURE: &str = gettext_noop("pressure (PSI)");
const FREEZER: &str = gettext_noop("freezer");

/// Checks the cgroup file system's layout, and when the manager's own cgroup is known
/// (`manager_cgroup`, systemd's ControlGroup of the manager), the controllers it may use,
/// pressure information and the freezer.
pub fn cgroup_checks(fs: &CgroupFs, manager_cgroup: Option<&str>) -> Vec<Check> {
    let mut checks = Vec::new();
    let root = fs.root().display();
    match fs.layout() {
        Layout::V2 => checks.push(Check::ok(
            CGROUP_V2,
            gettext_f("unified hierarchy at {path}", &[("path", &root)]),
        )),
        layout => {
            let what = match layout {
                Layout::Hybrid => gettext("hybrid (v1 controllers with a v2 tree beside them)"),
                Layout::V1 => gettext("legacy v1"),
                _ => gettext("not mounted"),
            };
            checks.push(Check::problem(
                CGROUP_V2,
                Status::Failed,
                gettext_f(
                    "cgroups at {path} are {layout}; systemd can only enforce Corral's limits on cgroup v2",
                    &[("path", &root), ("layout", &what)],
                ),
                gettext(
                    "boot with the unified hierarchy: add systemd.unified_cgroup_hierarchy=1 to GRUB_CMDLINE_LINUX in /etc/default/grub, run `sudo update-grub` and reboot",
                ),
            ));
            return checks;
        }
    }
    let Some(manager_cgroup) = manager_cgroup else {
        return checks;
    };
    match fs.controllers(manager_cgroup) {
        Ok(controllers) => {
            let missing: Vec<&str> = NEEDED
                .iter()
                .filter(|(c, _)| !controllers.contains(c))
                .map(|(c, _)| *c)
                .collect();
            if missing.is_empty() {
                checks.push(Check::ok(
                    DELEGATED,
                    gettext_f(
                        "the manager may use: {controllers}",
                        &[("controllers", &controllers)],
                    ),
                ));
            } else {
                let lost: Vec<String> = NEEDED
                    .iter()
                    .filter(|(c, _)| missing.contains(c))
                    .map(|(_, purpose)| gettext(purpose))
                    .collect();
                checks.push(Check::problem(
                    DELEGATED,
                    Status::Failed,
                    gettext_f(
                        "the manager may use only: {controllers} (missing {missing}): {purposes} will not apply",
                        &[
                            ("controllers", &controllers),
                            ("missing", &missing.join(", ")),
                            ("purposes", &lost.join(", ")),
                        ],
                    ),
                    gettext(DELEGATE_FIX),
                ));
            }
        }
        Err(e) => checks.push(Check::problem(
            DELEGATED,
            Status::Failed,
            gettext_f(
                "cannot read the manager's cgroup: {error}",
                &[("error", &e)],
            ),
            gettext("check that /sys/fs/cgroup is mounted and readable"),
        )),
    }
    let dir = fs.path_of(manager_cgroup);
    checks.push(if has(&dir, "memory.pressure") {
        Check::ok(
            PRESSURE,
            gettext("memory, CPU and IO pressure are reported"),
        )
    } else {
        Check::problem(
            PRESSURE,
            Status::Warning,
            gettext(
                "the kernel reports no pressure stall information: Corral cannot show pressure or warn early on it",
            ),
            gettext("boot with psi=1 on the kernel command line (GRUB_CMDLINE_LINUX), then reboot"),
        )
    });
    checks.push(if has(&dir, "cgroup.freeze") {
        Check::ok(FREEZER, gettext("apps can be frozen and thawed"))
    } else {
        Check::problem(
            FREEZER,
            Status::Warning,
            gettext("this kernel has no cgroup v2 freezer (cgroup.freeze): Freeze will not work"),
            gettext("use Linux 5.2 or newer"),
        )
    });
    checks
}

fn has(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(controllers: &str, extra: &[&str]) -> (tempfile::TempDir, CgroupFs) {
        let root = tempfile::tempdir().unwrap();
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpu memory pids io\n",
        )
        .unwrap();
        let manager = root.path().join("user.slice/user@1000.service");
        fs::create_dir_all(&manager).unwrap();
        fs::write(manager.join("cgroup.controllers"), controllers).unwrap();
        for f in extra {
            fs::write(manager.join(f), "").unwrap();
        }
        let cg = CgroupFs::new(root.path());
        (root, cg)
    }

    #[test]
    fn healthy_machine_passes() {
        let (_root, fs) = tree("cpu memory pids\n", &["memory.pressure", "cgroup.freeze"]);
        let checks = cgroup_checks(&fs, Some("/user.slice/user@1000.service"));
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    }

    #[test]
    fn missing_cpu_controller_is_explained() {
        let (_root, fs) = tree("memory pids\n", &["cgroup.freeze"]);
        let checks = cgroup_checks(&fs, Some("/user.slice/user@1000.service"));
        let delegated = &checks[1];
        assert_eq!(delegated.status, Status::Failed);
        assert!(
            delegated.detail.contains("missing cpu"),
            "{}",
            delegated.detail
        );
        assert!(
            delegated.detail.contains("CPU quota"),
            "{}",
            delegated.detail
        );
        assert!(delegated.fix.as_deref().unwrap().contains("Delegate="));
        assert_eq!(checks[2].status, Status::Warning, "no PSI");
    }

    #[test]
    fn v1_host_stops_early() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("memory")).unwrap();
        let checks = cgroup_checks(&CgroupFs::new(root.path()), Some("/x"));
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, Status::Failed);
        assert!(
            checks[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("unified_cgroup_hierarchy")
        );
    }
}
