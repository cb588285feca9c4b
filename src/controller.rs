//! The one place user actions go through, whether they come from the CLI, the window or the
//! tray: find the unit meant, act on it through systemd, and read back from the cgroup what
//! the kernel actually did.

use std::time::Duration;

use serde::Serialize;

use crate::cgroup::{CgroupFs, CgroupSample, Layout, Limit};
use crate::config::Settings;
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::limits::{Bytes, CpuQuota, MemoryLimit, TasksLimit};
use crate::monitor::{self, UnitInfo};
use crate::systemd::properties::limit_properties;
use crate::systemd::{Systemd, SystemdError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("{}", gettext_f("no running app matches “{target}”; `corral ps --all` lists what runs", &[("target", .0)]))]
    NotFound(String),
    #[error("{}", gettext_f("“{target}” matches several apps: {units}; name one of these units instead", &[("target", .target), ("units", &.units.join(", "))]))]
    Ambiguous { target: String, units: Vec<String> },
    #[error("{}", gettext_f("“{unit}” has no cgroup (it has no processes left); there is nothing to act on", &[("unit", .0)]))]
    NoCgroup(String),
    #[error("{0}")]
    NotApplied(String),
}

/// Whether one setting reached the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitCheck {
    /// The setting as a person names it in English: "memory max", "CPU quota", ...
    /// ([`LimitCheck::setting_label`] translates it).
    pub setting: &'static str,
    /// The cgroup file it was read back from.
    pub file: &'static str,
    pub wanted: String,
    /// What the kernel's file says now; `None` when the file does not exist.
    pub actual: Option<String>,
    /// `None` when applied; otherwise why not, in plain words.
    pub problem: Option<String>,
}

impl LimitCheck {
    pub fn applied(&self) -> bool {
        self.problem.is_none()
    }

    /// The setting's name in the person's language.
    pub fn setting_label(&self) -> String {
        gettext(self.setting)
    }
}

pub struct Controller {
    pub systemd: Systemd,
    pub cgroups: CgroupFs,
}

impl Controller {
    pub fn new(systemd: Systemd, cgroups: CgroupFs) -> Controller {
        Controller { systemd, cgroups }
    }

    /// Finds the one running unit `target` names: a unit name (with or without its
    /// .service/.scope suffix), an app id, or an app's name, in any letter case.
    pub async fn find(&self, target: &str) -> Result<UnitInfo, ControlError> {
        let units = monitor::list_units(&self.systemd, true).await?;
        pick_unit(units, target)
    }

    pub async fn freeze(&self, unit: &UnitInfo) -> Result<(), ControlError> {
        self.systemd.freeze(&unit.unit).await?;
        self.expect_frozen(unit, true).await
    }

    pub async fn thaw(&self, unit: &UnitInfo) -> Result<(), ControlError> {
        self.systemd.thaw(&unit.unit).await?;
        self.expect_frozen(unit, false).await
    }

    pub async fn stop(&self, unit: &UnitInfo) -> Result<(), ControlError> {
        Ok(self.systemd.stop(&unit.unit).await?)
    }

    pub async fn kill(&self, unit: &UnitInfo, signal: i32) -> Result<(), ControlError> {
        Ok(self.systemd.kill(&unit.unit, signal).await?)
    }

    /// Sends `signal` and waits until systemd says the unit has ended, at most `timeout`;
    /// returns whether it ended in time.
    pub async fn kill_and_wait(
        &self,
        unit: &UnitInfo,
        signal: i32,
        timeout: Duration,
    ) -> Result<bool, ControlError> {
        Ok(self
            .systemd
            .kill_and_wait(&unit.unit, signal, timeout)
            .await?)
    }

    /// Changes limits at runtime, then reads them back from the cgroup.
    pub async fn set_limits(
        &self,
        unit: &UnitInfo,
        settings: &Settings,
    ) -> Result<Vec<LimitCheck>, ControlError> {
        let props = limit_properties(settings);
        self.systemd.set_properties(&unit.unit, &props).await?;
        let control_group = unit
            .control_group
            .as_deref()
            .ok_or_else(|| ControlError::NoCgroup(unit.unit.clone()))?;
        Ok(self.verify_limits(control_group, settings))
    }

    /// Compares what `settings` asked for with what the unit's cgroup files say.
    pub fn verify_limits(&self, control_group: &str, settings: &Settings) -> Vec<LimitCheck> {
        let mut cgroup = self.cgroups.unit(control_group);
        let sample = cgroup.sample().ok();
        let controllers = self
            .cgroups
            .controllers(control_group)
            .map(|c| c.to_string())
            .ok();
        let mut checks = verify(
            settings,
            sample.as_ref(),
            controllers.as_deref(),
            physical_memory(),
        );
        if self.cgroups.layout() != Layout::V2 {
            // On a v1 or hybrid host the v2 files are missing for a reason worth naming.
            for check in checks.iter_mut().filter(|c| c.problem.is_some()) {
                check.problem = Some(gettext(
                    "this machine does not use cgroup v2, so systemd cannot apply it; run `corral doctor` for the fix",
                ));
            }
        }
        checks
    }

    /// FreezeUnit replies once the freeze is done; the cgroup says whether it really is.
    async fn expect_frozen(&self, unit: &UnitInfo, frozen: bool) -> Result<(), ControlError> {
        let control_group = unit
            .control_group
            .as_deref()
            .ok_or_else(|| ControlError::NoCgroup(unit.unit.clone()))?;
        let mut cgroup = self.cgroups.unit(control_group);
        for _ in 0..20 {
            let events = cgroup.sample().ok().and_then(|s| s.events);
            if events.and_then(|e| e.frozen) == Some(frozen) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let message = if frozen {
            gettext_f(
                "systemd accepted the request, but {app} is still not frozen according to its cgroup.events",
                &[("app", &unit.name)],
            )
        } else {
            gettext_f(
                "systemd accepted the request, but {app} is still frozen according to its cgroup.events",
                &[("app", &unit.name)],
            )
        };
        Err(ControlError::NotApplied(message))
    }
}

fn pick_unit(units: Vec<UnitInfo>, target: &str) -> Result<UnitInfo, ControlError> {
    let lower = target.to_lowercase();
    let exact: Vec<&UnitInfo> = units
        .iter()
        .filter(|u| {
            u.unit == target
                || u.unit
                    .strip_suffix(".service")
                    .or_else(|| u.unit.strip_suffix(".scope"))
                    == Some(target)
        })
        .collect();
    let matches: Vec<&UnitInfo> = if exact.is_empty() {
        units
            .iter()
            .filter(|u| {
                u.app_id.as_deref().map(str::to_lowercase) == Some(lower.clone())
                    || u.name.to_lowercase() == lower
            })
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ControlError::NotFound(target.to_owned())),
        many => Err(ControlError::Ambiguous {
            target: target.to_owned(),
            units: many.iter().map(|u| u.unit.clone()).collect(),
        }),
    }
}

/// Total RAM as systemd sees it when it resolves percentages (its physical_memory(): the
/// kernel's total RAM, sysinfo(2)).
pub fn physical_memory() -> u64 {
    let info = rustix::system::sysinfo();
    // totalram is a C unsigned long: a u64 here, a u32 on 32-bit machines.
    #[allow(clippy::useless_conversion)]
    u64::from(info.totalram).saturating_mul(u64::from(info.mem_unit))
}

/// The kernel keeps memory limits in whole pages.
fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

fn show_limit(limit: Option<Limit>) -> Option<String> {
    limit.map(|l| match l {
        Limit::Max => "max".to_owned(),
        Limit::Value(v) => v.to_string(),
    })
}

/// The pure comparison behind [`Controller::verify_limits`]; `controllers` is the unit cgroup's
/// cgroup.controllers, which tells why a file is missing.
pub fn verify(
    settings: &Settings,
    sample: Option<&CgroupSample>,
    controllers: Option<&str>,
    total_ram: u64,
) -> Vec<LimitCheck> {
    let verifier = Verifier {
        sample,
        controllers,
        total_ram,
    };
    let mut checks = verifier.memory(settings);
    checks.extend(settings.cpu_quota.map(|quota| verifier.cpu_quota(quota)));
    if let Some(weight) = settings.cpu_weight {
        let actual = sample.map(|s| s.cpu_weight.map(Limit::Value));
        let ok = move |a: Limit| a == Limit::Value(u64::from(weight.get()));
        checks.push(verifier.check(
            gettext_noop("CPU weight"),
            "cpu.weight",
            weight.to_string(),
            actual,
            &ok,
            "cpu",
        ));
    }
    if let Some(tasks) = settings.tasks_max {
        let actual = sample.map(|s| s.pids_max);
        let ok = move |a: Limit| match (tasks, a) {
            (TasksLimit::Unlimited, Limit::Max) => true,
            (TasksLimit::Count(n), Limit::Value(v)) => n == v,
            _ => false,
        };
        checks.push(verifier.check(
            gettext_noop("tasks max"),
            "pids.max",
            tasks.to_string(),
            actual,
            &ok,
            "pids",
        ));
    }
    checks
}

/// What the kernel kept, compared with what was asked, for one unit's cgroup.
struct Verifier<'a> {
    sample: Option<&'a CgroupSample>,
    controllers: Option<&'a str>,
    total_ram: u64,
}

impl Verifier<'_> {
    /// Why a limit file of `controller` is missing.
    fn missing_reason(&self, controller: &str) -> String {
        match (self.sample, self.controllers) {
            (None, _) => gettext("the unit's cgroup is gone (the app has ended)"),
            (Some(_), Some(list)) if !list.split_whitespace().any(|c| c == controller) => {
                let given = if list.trim().is_empty() {
                    // TRANSLATORS: no cgroup controllers at all.
                    gettext("none")
                } else {
                    list.trim().to_owned()
                };
                gettext_f(
                    "the {controller} controller is not available to this unit (its manager was given only: {controllers}); run `corral doctor` for the fix",
                    &[("controller", &controller), ("controllers", &given)],
                )
            }
            _ => gettext_f(
                "the kernel shows no {controller} limit file for this unit",
                &[("controller", &controller)],
            ),
        }
    }

    /// One setting's check: `actual` is `None` without a cgroup, `Some(None)` without the file.
    fn check(
        &self,
        setting: &'static str,
        file: &'static str,
        wanted: String,
        actual: Option<Option<Limit>>,
        ok: &dyn Fn(Limit) -> bool,
        controller: &str,
    ) -> LimitCheck {
        let actual = actual.flatten();
        let problem = match actual {
            None => Some(self.missing_reason(controller)),
            Some(a) if ok(a) => None,
            Some(_) => Some(gettext_f(
                "the kernel kept a different value than {value}",
                &[("value", &wanted)],
            )),
        };
        LimitCheck {
            setting,
            file,
            wanted,
            actual: show_limit(actual),
            problem,
        }
    }

    /// memory.high, memory.max and memory.swap.max, as far as the settings ask for them.
    fn memory(&self, settings: &Settings) -> Vec<LimitCheck> {
        let total_ram = self.total_ram;
        let memory_ok = |wanted: MemoryLimit| {
            move |actual: Limit| match (wanted.resolve(total_ram), actual) {
                (None, Limit::Max) => true,
                (Some(w), Limit::Value(a)) => {
                    // The kernel keeps whole pages; systemd resolves percentages itself.
                    let tolerance = page_size().max(w / 200);
                    a.abs_diff(w) <= tolerance
                }
                _ => false,
            }
        };
        let sample = self.sample;
        [
            (
                gettext_noop("memory high"),
                "memory.high",
                settings.memory_high,
                sample.map(|s| s.memory_high),
            ),
            (
                gettext_noop("memory max"),
                "memory.max",
                settings.memory_max,
                sample.map(|s| s.memory_max),
            ),
            (
                gettext_noop("swap max"),
                "memory.swap.max",
                settings.memory_swap_max.map(|swap| swap.0),
                sample.map(|s| s.memory_swap_max),
            ),
        ]
        .into_iter()
        .filter_map(|(setting, file, wanted, actual)| {
            let w = wanted?;
            let text = match w.resolve(total_ram) {
                Some(bytes) if matches!(w, MemoryLimit::Percent(_)) => {
                    format!("{w} ({})", Bytes(bytes))
                }
                _ => w.to_string(),
            };
            Some(self.check(setting, file, text, actual, &memory_ok(w), "memory"))
        })
        .collect()
    }

    /// cpu.max, compared as percent of one CPU.
    fn cpu_quota(&self, quota: CpuQuota) -> LimitCheck {
        let actual = self.sample.map(|s| {
            s.cpu_max.map(|m| match m.quota {
                Limit::Max => Limit::Max,
                Limit::Value(q) => Limit::Value(q * 100 / m.period_usec.max(1)),
            })
        });
        let ok = move |a: Limit| match (quota, a) {
            (CpuQuota::Unlimited, Limit::Max) => true,
            (CpuQuota::Percent(p), Limit::Value(v)) => v.abs_diff(u64::from(p)) <= 1,
            _ => false,
        };
        let mut cpu = self.check(
            gettext_noop("CPU quota"),
            "cpu.max",
            quota.to_string(),
            actual,
            &ok,
            "cpu",
        );
        if let Some(a) = &mut cpu.actual
            && a != "max"
        {
            a.push('%');
        }
        cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CpuMax;
    use crate::systemd::Launcher;

    fn info(unit: &str, name: &str, app_id: Option<&str>) -> UnitInfo {
        UnitInfo {
            unit: unit.into(),
            kind: None,
            launcher: Launcher::of_unit(unit),
            name: name.into(),
            app_id: app_id.map(Into::into),
            preset: None,
            active_state: "active".into(),
            sub_state: "running".into(),
            control_group: Some(format!("/app.slice/{unit}")),
        }
    }

    #[test]
    fn targets_by_unit_app_id_or_name() {
        let units = vec![
            info(
                "app-corral-firefox-0000abcd.service",
                "Firefox",
                Some("firefox"),
            ),
            info("app-corral-bash-00001111.scope", "bash", Some("bash")),
            info("app-corral-bash-00002222.scope", "bash", Some("bash")),
            info("run-u5.service", "/usr/bin/sleep 100", None),
        ];
        let pick = |t: &str| pick_unit(units.clone(), t);
        assert_eq!(pick("firefox").unwrap().unit, units[0].unit);
        assert_eq!(pick("FIREFOX").unwrap().unit, units[0].unit);
        assert_eq!(pick("run-u5").unwrap().unit, "run-u5.service");
        assert_eq!(
            pick("app-corral-bash-00002222.scope").unwrap().unit,
            units[2].unit
        );
        let err = pick("bash").unwrap_err().to_string();
        assert!(
            err.contains("several apps") && err.contains("00001111"),
            "{err}"
        );
        assert!(matches!(
            pick("thunderbird"),
            Err(ControlError::NotFound(_))
        ));
    }

    fn sample() -> CgroupSample {
        CgroupSample {
            memory_max: Some(Limit::Value(64 * Bytes::MIB)),
            memory_high: Some(Limit::Max),
            cpu_max: Some(CpuMax {
                quota: Limit::Value(20_000),
                period_usec: 100_000,
            }),
            pids_max: Some(Limit::Value(10)),
            ..CgroupSample::default()
        }
    }

    #[test]
    fn applied_limits_read_back() {
        let settings = Settings {
            memory_max: Some("64M".parse().unwrap()),
            cpu_quota: Some(CpuQuota::Percent(20)),
            tasks_max: Some(TasksLimit::Count(10)),
            memory_high: Some(MemoryLimit::Unlimited),
            ..Settings::default()
        };
        let checks = verify(
            &settings,
            Some(&sample()),
            Some("cpu memory pids"),
            8 * Bytes::GIB,
        );
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(LimitCheck::applied), "{checks:#?}");
        let cpu = checks.iter().find(|c| c.file == "cpu.max").unwrap();
        assert_eq!(cpu.actual.as_deref(), Some("20%"));
    }

    #[test]
    fn percentages_resolve_against_ram() {
        let settings = Settings {
            memory_max: Some("50%".parse().unwrap()),
            ..Settings::default()
        };
        let s = CgroupSample {
            memory_max: Some(Limit::Value(Bytes::GIB - 4096)),
            ..CgroupSample::default()
        };
        let checks = verify(&settings, Some(&s), Some("memory"), 2 * Bytes::GIB);
        assert!(checks[0].applied(), "{checks:#?}");
        assert_eq!(checks[0].wanted, "50% (1.0 GiB)");
    }

    #[test]
    fn missing_controller_is_named() {
        let settings = Settings {
            cpu_quota: Some(CpuQuota::Percent(50)),
            memory_max: Some("1G".parse().unwrap()),
            ..Settings::default()
        };
        let s = CgroupSample {
            memory_max: Some(Limit::Value(Bytes::GIB)),
            ..CgroupSample::default()
        };
        let checks = verify(&settings, Some(&s), Some("memory pids"), 8 * Bytes::GIB);
        assert!(checks[0].applied());
        let problem = checks[1].problem.as_deref().unwrap();
        assert!(
            problem.contains("cpu controller") && problem.contains("memory pids"),
            "{problem}"
        );
        assert!(problem.contains("corral doctor"));
    }

    #[test]
    fn wrong_value_and_vanished_unit() {
        let settings = Settings {
            tasks_max: Some(TasksLimit::Count(99)),
            ..Settings::default()
        };
        let checks = verify(&settings, Some(&sample()), Some("pids"), 0);
        assert!(
            checks[0]
                .problem
                .as_deref()
                .unwrap()
                .contains("different value")
        );
        let checks = verify(&settings, None, None, 0);
        assert!(checks[0].problem.as_deref().unwrap().contains("ended"));
    }
}
