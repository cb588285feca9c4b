//! Rules on a live system: the drop-ins synced with the config, one daemon-reload for the
//! whole change (which applies changed limits to running units as well), and each running
//! instance read back from its cgroup, with why a limit did not take.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::store::{DropInStore, StoreError, SyncReport};
use super::{BUDGET_SLICE, DROPIN_NAME, budget_settings, resource_part, rule_for_unit};
use crate::config::Config;
use crate::controller::{ControlError, Controller, LimitCheck};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::monitor::{self, UnitInfo};
use crate::systemd::{Launcher, ManagerKind, Systemd};

/// What bringing the drop-ins in line with a config did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub files: SyncReport,
    /// How long systemd took to reload, when anything changed and it could be reached.
    #[serde(serialize_with = "seconds")]
    pub reload: Option<Duration>,
    /// Why systemd could not be told: the files are in place and apply at its next reload.
    pub reload_problem: Option<String>,
}

fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs_f64()).serialize(s)
}

/// Writes and removes drop-ins until they match `config`, without telling systemd.
pub fn sync_files(
    store: &DropInStore,
    config: &Config,
    config_path: &Path,
) -> Result<SyncReport, StoreError> {
    store.sync(&super::desired(config, config_path, ManagerKind::User))
}

/// Writes and removes drop-ins until they match `config`, then reloads systemd once if any
/// file changed. A reload that fails is reported, not an error: the files stand either way.
pub async fn apply(
    systemd: &Systemd,
    store: &DropInStore,
    config: &Config,
    config_path: &Path,
) -> Result<Applied, StoreError> {
    let desired = super::desired(config, config_path, ManagerKind::User);
    let files = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.sync(&desired))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
    };
    let mut applied = Applied {
        files,
        ..Applied::default()
    };
    if applied.files.changed() {
        let started = Instant::now();
        match systemd.reload().await {
            Ok(()) => applied.reload = Some(started.elapsed()),
            Err(e) => applied.reload_problem = Some(e.to_string()),
        }
    }
    Ok(applied)
}

/// One running unit a rule reaches, and whether each of the rule's limits holds there.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub unit: String,
    pub name: String,
    pub rule: String,
    pub checks: Vec<LimitCheck>,
}

/// Every running unit that a rule reaches (only `rule`'s when given), each read back.
pub async fn instances(
    ctl: &Controller,
    config: &Config,
    rule: Option<&str>,
) -> Result<Vec<Instance>, ControlError> {
    let units = monitor::list_units(&ctl.systemd, true).await?;
    let mut found = Vec::new();
    for unit in units.iter().filter(|u| u.active_state == "active") {
        let Some((key, _)) = rule_for_unit(config, &unit.unit) else {
            continue;
        };
        if rule.is_some_and(|r| r != key) {
            continue;
        }
        found.push(check_instance(ctl, config, unit, key).await);
    }
    Ok(found)
}

async fn check_instance(ctl: &Controller, config: &Config, unit: &UnitInfo, key: &str) -> Instance {
    let settings = super::rule_settings(config, key).unwrap_or_default();
    let mut checks = match &unit.control_group {
        Some(cg) => ctl.verify_limits(cg, &resource_part(&settings)),
        None => Vec::new(),
    };
    // Corral sets the OOM policy of its own units at launch; others get it from the rule.
    if let Some(wanted) = settings.oom_policy
        && unit.launcher != Launcher::Corral
    {
        let actual = ctl.systemd.oom_policy(&unit.unit).await;
        let problem = match &actual {
            None => Some(gettext(
                "this systemd takes an OOM policy for services only (scopes need systemd 253 or newer)",
            )),
            Some(a) if a == wanted.as_str() => None,
            Some(_) => Some(gettext_f(
                "systemd kept a different value than {value}",
                &[("value", &wanted.as_str())],
            )),
        };
        checks.push(LimitCheck {
            setting: gettext_noop("OOM policy"),
            file: "OOMPolicy",
            wanted: wanted.as_str().to_owned(),
            actual,
            problem,
        });
    }
    explain_failures(&ctl.systemd, &unit.unit, &mut checks).await;
    Instance {
        unit: unit.unit.clone(),
        name: unit.name.clone(),
        rule: key.to_owned(),
        checks,
    }
}

/// app.slice's limits read back against the budget in `config`; `None` without a budget.
pub async fn budget_check(ctl: &Controller, config: &Config) -> Option<Instance> {
    let settings = budget_settings(config);
    if settings.is_empty() {
        return None;
    }
    let cg = budget_cgroup(&ctl.systemd).await?;
    let mut checks = ctl.verify_limits(&cg, &settings);
    explain_failures(&ctl.systemd, BUDGET_SLICE, &mut checks).await;
    Some(Instance {
        unit: BUDGET_SLICE.to_owned(),
        name: gettext("All apps"),
        rule: "[general]".to_owned(),
        checks,
    })
}

/// Names, for each limit that did not take, the drop-in that overrides Corral's (see
/// [`overridden_by`]); the other reasons (a missing controller) stay as the read-back gave them.
async fn explain_failures(systemd: &Systemd, unit: &str, checks: &mut [LimitCheck]) {
    if checks.iter().all(LimitCheck::applied) {
        return;
    }
    let dropins = systemd.drop_in_paths(unit).await.unwrap_or_default();
    for check in checks.iter_mut().filter(|c| !c.applied()) {
        if let Some(why) = overridden_by(check.file, &dropins, |p| std::fs::read_to_string(p).ok())
        {
            check.problem = Some(why);
        }
    }
}

/// app.slice's cgroup: below the user manager's own.
pub async fn budget_cgroup(systemd: &Systemd) -> Option<String> {
    let manager = systemd.manager().control_group().await.ok()?;
    Some(format!("{}/{BUDGET_SLICE}", manager.trim_end_matches('/')))
}

/// The unit property behind a checked cgroup file, as systemd names the drop-in it writes for
/// a change made while the unit runs (`50-<name>.conf`).
fn property_of(file: &str) -> Option<&'static str> {
    Some(match file {
        "memory.high" => "MemoryHigh",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "cpu.max" => "CPUQuota",
        "cpu.weight" => "CPUWeight",
        "pids.max" => "TasksMax",
        "OOMPolicy" => "OOMPolicy",
        _ => return None,
    })
}

/// Why a limit of Corral's drop-in did not take, when another drop-in that systemd applied
/// after it sets the same property: a change made while the unit ran (`50-<name>.conf`, kept
/// on purpose) or a person's own file. `dropins` are the unit's DropInPaths.
pub fn overridden_by(
    file: &str,
    dropins: &[String],
    read: impl Fn(&Path) -> Option<String>,
) -> Option<String> {
    let property = property_of(file)?;
    let runtime = format!("50-{property}.conf");
    let key = format!("{property}=");
    let later = dropins.iter().map(PathBuf::from).filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n > DROPIN_NAME)
    });
    for path in later {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == runtime {
            return Some(gettext_f(
                "it was changed while the app ran ({path}); that change stays until the app ends, and the rule applies to its next start",
                &[("path", &path.display())],
            ));
        }
        if read(&path).is_some_and(|text| text.lines().any(|l| l.trim_start().starts_with(&key))) {
            return Some(gettext_f(
                "{path} sets it too, and systemd applies that file after Corral's",
                &[("path", &path.display())],
            ));
        }
    }
    if !dropins.iter().any(|p| p.ends_with(DROPIN_NAME)) {
        return Some(gettext(
            "systemd has not loaded Corral's drop-in for this unit; run `corral rules` to write it again",
        ));
    }
    None
}

/// Keeps the drop-ins in line with the config the monitor has in force: once it has loaded
/// the file, and after every change that loads. A file with a mistake changes nothing (the
/// monitor keeps the last good config in force, and reports the mistake). Says on stderr what
/// it did, as the monitor does for the config.
pub fn spawn_keeper(
    systemd: Systemd,
    store: DropInStore,
    config_path: PathBuf,
    mut state: watch::Receiver<Arc<monitor::service::MonitorState>>,
) {
    tokio::spawn(async move {
        let mut synced: Option<Arc<Config>> = None;
        // The first value is the empty state from before the monitor loaded the file.
        while state.changed().await.is_ok() {
            let (config, problem) = {
                let s = state.borrow_and_update();
                (Arc::clone(&s.config), s.config_problem.is_some())
            };
            let fresh = synced.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &config));
            if !fresh || (problem && synced.is_none()) {
                continue;
            }
            synced = Some(Arc::clone(&config));
            match apply(&systemd, &store, &config, &config_path).await {
                Ok(applied) => log_applied(&applied, &store),
                Err(e) => eprintln!("corral: {e}"),
            }
        }
    });
}

fn log_applied(applied: &Applied, store: &DropInStore) {
    let files = &applied.files;
    if files.changed() {
        eprintln!(
            "corral: {}",
            gettext_f(
                "rules: wrote {written} and removed {removed} drop-ins in {folder}",
                &[
                    ("written", &files.written.len()),
                    ("removed", &files.removed.len()),
                    ("folder", &store.root().display()),
                ],
            )
        );
    }
    for folder in &files.foreign {
        eprintln!(
            "corral: {}",
            gettext_f(
                "rules: {path} was not written by Corral, so Corral leaves it as it is and the rule does not reach these units through it",
                &[("path", &store.path_of(folder).display())],
            )
        );
    }
    if let Some(problem) = &applied.reload_problem {
        eprintln!(
            "corral: {}",
            gettext_f(
                "rules: the drop-ins are written, but systemd could not reload them now ({problem}); they apply at its next reload",
                &[("problem", problem)],
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_made_while_the_app_ran_is_named() {
        let dropins = vec![
            "/home/u/.config/systemd/user/app-gnome-x-.scope.d/40-corral.conf".to_owned(),
            "/run/user/1000/systemd/transient/app-gnome-x-1.scope.d/50-MemoryMax.conf".to_owned(),
        ];
        let why = overridden_by("memory.max", &dropins, |_| None).unwrap();
        assert!(why.contains("50-MemoryMax.conf"), "{why}");
        assert!(why.contains("changed while the app ran"), "{why}");
        // Another property's runtime change does not explain this one.
        assert_eq!(overridden_by("cpu.max", &dropins, |_| None), None);
    }

    #[test]
    fn a_persons_later_drop_in_is_named() {
        let dropins = vec![
            "/u/app-gnome-x-.scope.d/40-corral.conf".to_owned(),
            "/u/app-gnome-.scope.d/override.conf".to_owned(),
        ];
        let read = |p: &Path| {
            p.ends_with("override.conf")
                .then(|| "[Scope]\n CPUQuota=5%\n".to_owned())
        };
        let why = overridden_by("cpu.max", &dropins, read).unwrap();
        assert!(why.contains("override.conf"), "{why}");
        assert_eq!(overridden_by("memory.max", &dropins, read), None);
        // Files that sort before Corral's do not override it.
        let earlier = vec![
            "/u/app-.scope.d/10-x.conf".to_owned(),
            "/u/app-gnome-x-.scope.d/40-corral.conf".to_owned(),
        ];
        assert_eq!(
            overridden_by("cpu.max", &earlier, |_| Some("CPUQuota=1%".into())),
            None
        );
        // Corral's own file missing from what systemd loaded.
        let why = overridden_by("memory.max", &[], |_| None).unwrap();
        assert!(why.contains("has not loaded"), "{why}");
    }
}
