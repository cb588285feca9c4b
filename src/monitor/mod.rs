//! What runs and how much it uses: the list of contained units from systemd, a sampler that
//! turns each unit's cgroup files into snapshots with rates, and what is made of the snapshots:
//! bounded per-unit history (`history`), runaway alerts (`alerts`) and post-mortems of apps
//! that were OOM-killed or failed (`postmortem`).

pub mod alerts;
pub mod doctor;
pub mod history;
pub mod postmortem;
pub mod rates;
pub mod service;
pub mod wakeup;

use std::collections::HashMap;
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;

use crate::cgroup::{CgroupFs, CgroupSample, UnitCgroup};
use crate::systemd::names::{self, Launcher, UnitKind};
use crate::systemd::{Systemd, SystemdError};
use rates::CpuReading;

/// Units an app can live in: Corral's own, other launchers' (`app-*`) and `systemd-run`'s (`run-*`).
const APP_UNIT_PATTERNS: [&str; 4] = [
    "app-*.service",
    "app-*.scope",
    "run-*.service",
    "run-*.scope",
];
const CORRAL_UNIT_PATTERNS: [&str; 2] = ["app-corral-*.service", "app-corral-*.scope"];

/// A contained app's unit as systemd describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitInfo {
    pub unit: String,
    pub kind: Option<UnitKind>,
    pub launcher: Launcher,
    /// The app's name: Corral's description without the preset tag, or systemd's description.
    pub name: String,
    pub app_id: Option<String>,
    /// The preset a unit was launched with, when Corral launched it.
    pub preset: Option<String>,
    pub active_state: String,
    pub sub_state: String,
    /// Path below the cgroup root; `None` if systemd reports none (the unit has no processes).
    pub control_group: Option<String>,
}

impl UnitInfo {
    /// Builds the info from a unit's name, description and states.
    pub fn new(
        unit: String,
        description: &str,
        active_state: String,
        sub_state: String,
        control_group: Option<String>,
    ) -> UnitInfo {
        let parsed = names::parse_unit_name(&unit);
        let launcher = Launcher::of_unit(&unit);
        let (name, preset) = names::parse_description(description);
        let (name, preset) = match launcher {
            Launcher::Corral => (name.to_owned(), preset.map(str::to_owned)),
            _ => (description.to_owned(), None),
        };
        UnitInfo {
            kind: parsed.kind,
            launcher,
            name,
            app_id: parsed.app_id,
            preset,
            active_state,
            sub_state,
            control_group,
            unit,
        }
    }
}

/// The running app units: Corral's own, or with `all` every `app-*`/`run-*` service and scope.
/// Units that end while they are being listed are left out, not reported as errors.
pub async fn list_units(systemd: &Systemd, all: bool) -> Result<Vec<UnitInfo>, SystemdError> {
    list_units_knowing(systemd, all, &[]).await
}

/// [`list_units`], taking the control group of units in `known` from there: a unit's cgroup
/// path does not change while it runs, and asking for each one took a second for 300 units in
/// the guest (one property read per unit), every time the monitor lists.
pub async fn list_units_knowing(
    systemd: &Systemd,
    all: bool,
    known: &[UnitInfo],
) -> Result<Vec<UnitInfo>, SystemdError> {
    let known: HashMap<&str, &str> = known
        .iter()
        .filter_map(|u| Some((u.unit.as_str(), u.control_group.as_deref()?)))
        .collect();
    let patterns: &[&str] = if all {
        &APP_UNIT_PATTERNS
    } else {
        &CORRAL_UNIT_PATTERNS
    };
    let rows = systemd.list_units(patterns).await?;
    let rows = rows
        .into_iter()
        .filter(|row| row.3 != "inactive" && row.2 == "loaded");
    // One Get per unit, all in flight at once on the one connection.
    let known = &known;
    let units = join_all(rows.map(|row| async move {
        let (unit, description, _, active, sub, _, path, ..) = row;
        let control_group = match known.get(unit.as_str()) {
            Some(cg) => Ok((*cg).to_owned()),
            None => systemd.control_group(&unit, &path).await,
        };
        match control_group {
            Ok(cg) => Some(UnitInfo::new(
                unit,
                &description,
                active,
                sub,
                (!cg.is_empty()).then_some(cg),
            )),
            Err(SystemdError::NoSuchUnit(_)) => None,
            Err(_) => Some(UnitInfo::new(unit, &description, active, sub, None)),
        }
    }))
    .await;
    let mut units: Vec<UnitInfo> = units.into_iter().flatten().collect();
    units.sort_by(|a, b| a.name.cmp(&b.name).then(a.unit.cmp(&b.unit)));
    Ok(units)
}

/// One unit's usage at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitSnapshot {
    #[serde(flatten)]
    pub info: UnitInfo,
    /// `None` when the unit has no cgroup or it vanished before it could be read.
    pub cgroup: Option<CgroupSample>,
    /// CPU use since the previous sample, in percent of one CPU.
    pub cpu_percent: Option<f64>,
}

struct Tracked {
    cgroup: UnitCgroup,
    control_group: String,
    last_cpu: Option<CpuReading>,
}

/// Samples the cgroups of a set of units, keeping each unit's files open between samples.
pub struct Sampler {
    fs: CgroupFs,
    tracked: HashMap<String, Tracked>,
}

impl Sampler {
    pub fn new(fs: CgroupFs) -> Sampler {
        Sampler {
            fs,
            tracked: HashMap::new(),
        }
    }

    /// Reads every unit's cgroup once; units no longer listed are forgotten.
    pub fn sample(&mut self, units: &[UnitInfo]) -> Vec<UnitSnapshot> {
        self.tracked
            .retain(|unit, _| units.iter().any(|u| &u.unit == unit));
        units.iter().map(|info| self.sample_one(info)).collect()
    }

    /// Reads one unit's cgroup now (an inotify or PSI wakeup), leaving the other units alone.
    pub fn sample_one(&mut self, info: &UnitInfo) -> UnitSnapshot {
        let Some(control_group) = &info.control_group else {
            return UnitSnapshot {
                info: info.clone(),
                cgroup: None,
                cpu_percent: None,
            };
        };
        let tracked = match self.tracked.get_mut(&info.unit) {
            Some(t) if &t.control_group == control_group => t,
            _ => {
                self.tracked.insert(
                    info.unit.clone(),
                    Tracked {
                        cgroup: self.fs.unit(control_group),
                        control_group: control_group.clone(),
                        last_cpu: None,
                    },
                );
                self.tracked
                    .get_mut(&info.unit)
                    .expect("inserted just above")
            }
        };
        // A unit that ended between listing and reading simply has no sample.
        let sample = tracked.cgroup.sample().ok();
        let now = Instant::now();
        let reading = sample
            .as_ref()
            .and_then(|s| s.cpu_stat.as_ref())
            .and_then(|c| c.usage_usec)
            .map(|usage_usec| CpuReading {
                at: now,
                usage_usec,
            });
        let cpu_percent = match (tracked.last_cpu, reading) {
            (Some(prev), Some(cur)) => rates::cpu_percent(prev, cur),
            _ => None,
        };
        if reading.is_some() {
            tracked.last_cpu = reading;
        }
        UnitSnapshot {
            info: info.clone(),
            cgroup: sample,
            cpu_percent,
        }
    }
}
