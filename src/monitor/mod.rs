//! What runs and how much it uses: the contained units from systemd and a sampler that turns
//! their cgroup files into snapshots with rates; history, alerts and post-mortems below.

pub mod alerts;
pub mod doctor;
pub mod history;
pub mod postmortem;
pub mod processes;
pub mod rates;
pub mod service;
pub mod ticker;
pub mod wakeup;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;

use crate::cgroup::{
    CgroupFs, CgroupSample, ChangeWatch, ParentStalls, SLOW_EVERY, SharedParent, UnitCgroup,
};
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

/// [`list_units`], taking the cgroup of each unit that is still active from `known` (the
/// previous listing) instead of asking systemd: a running unit's cgroup path follows from its
/// slice and name and never changes, and a long-running monitor lists again every few seconds.
/// Only new units (and units not simply active) cost a Get.
pub async fn list_units_knowing(
    systemd: &Systemd,
    all: bool,
    known: &[UnitInfo],
) -> Result<Vec<UnitInfo>, SystemdError> {
    let known: HashMap<&str, &str> = known
        .iter()
        .filter(|u| u.active_state == "active")
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
        if active == "active"
            && let Some(cg) = known.get(unit.as_str())
        {
            let cg = (*cg).to_owned();
            return Some(UnitInfo::new(unit, &description, active, sub, Some(cg)));
        }
        let control_group = systemd.control_group(&unit, &path).await;
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
    /// Shared by the snapshots of the unit as long as systemd reports the same: a sweep copies
    /// no strings.
    #[serde(flatten)]
    pub info: Arc<UnitInfo>,
    /// `None` when the unit has no cgroup or it vanished before it could be read.
    pub cgroup: Option<CgroupSample>,
    /// CPU use since the previous sample, in percent of one CPU.
    pub cpu_percent: Option<f64>,
}

struct Tracked {
    cgroup: UnitCgroup,
    control_group: String,
    last_cpu: Option<CpuReading>,
    /// The info of the last snapshot, handed out again while the listing says the same.
    info: Arc<UnitInfo>,
    /// The last sweep that listed the unit.
    swept: u64,
}

/// Samples the cgroups of a set of units, keeping each unit's files open between samples.
///
/// A unit's limits, cgroup.freeze, memory.events and cgroup.events are read again only when
/// inotify reported a change to them (see [`crate::cgroup::ChangeWatch`]): they change rarely,
/// and reading them was more than a third of a sweep's reads. The samples are the same.
/// Its pressure files and memory.peak are read every [`SLOW_EVERY`] in a sweep, more often
/// while its memory is under pressure, and in every sample of a single unit (see
/// [`UnitCgroup::sample_at`]); each unit reads them in a different sweep of the period.
/// Units in the same parent cgroup share its stall totals, read once per sweep, which spare
/// them their memory and io pressure reads while nothing below the parent stalls (see
/// [`ParentStalls`]).
pub struct Sampler {
    fs: CgroupFs,
    tracked: HashMap<String, Tracked>,
    /// One inotify instance for every unit's watch.
    changes: ChangeWatch,
    /// The parent cgroups of the tracked units, held by the units.
    parents: Vec<Weak<std::sync::Mutex<ParentStalls>>>,
    /// Units tracked so far: spreads their slow reads over the sweeps of [`SLOW_EVERY`].
    added: u32,
    /// Sweeps so far: a unit that the last one did not list is forgotten.
    sweeps: u64,
}

/// In how many sweeps of the default 1 s interval the units' slow reads are spread.
const SLOW_PHASES: u32 = 5;

impl Sampler {
    pub fn new(fs: CgroupFs) -> Sampler {
        Sampler::with_changes(fs, ChangeWatch::new())
    }

    /// A sampler whose units learn of changes to their settled files from `changes`;
    /// [`ChangeWatch::unavailable`] makes every sample read every file.
    pub fn with_changes(fs: CgroupFs, changes: ChangeWatch) -> Sampler {
        Sampler {
            fs,
            tracked: HashMap::new(),
            changes,
            parents: Vec::new(),
            added: 0,
            sweeps: 0,
        }
    }

    /// Reads every unit's cgroup once; units no longer listed are forgotten.
    pub fn sample(&mut self, units: &[UnitInfo]) -> Vec<UnitSnapshot> {
        // One clock reading for the sweep: its reads all fall within a few milliseconds, and
        // a clock read is not free everywhere (a VM without a usable TSC traps it).
        self.sample_at(units, Instant::now())
    }

    /// [`Sampler::sample`] as of `now`: which slow files are due, and the CPU rates, follow
    /// it. A benchmark passes the times of sweeps a second apart to measure the real pace.
    pub fn sample_at(&mut self, units: &[UnitInfo], now: Instant) -> Vec<UnitSnapshot> {
        self.sweeps += 1;
        self.changes.drain();
        let snapshots = units
            .iter()
            .map(|info| self.sample_one_at(info, now, false))
            .collect();
        let sweep = self.sweeps;
        self.tracked.retain(|_, tracked| tracked.swept == sweep);
        snapshots
    }

    /// The shared stall totals of the cgroup above `control_group`, if it has a parent.
    fn parent_of(&mut self, control_group: &str) -> Option<SharedParent> {
        let (parent, _) = control_group.rsplit_once('/')?;
        let path = self.fs.path_of(parent);
        self.parents.retain(|p| p.strong_count() > 0);
        let known = self
            .parents
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.lock().unwrap_or_else(|e| e.into_inner()).path().eq(&path));
        known.or_else(|| {
            let shared = ParentStalls::shared(UnitCgroup::new(path));
            self.parents.push(Arc::downgrade(&shared));
            Some(shared)
        })
    }

    /// Reads one unit's cgroup now (an inotify or PSI wakeup), leaving the other units alone.
    /// Every file is read: the wakeup may have come from a change that this sampler's own
    /// inotify instance has not been told of yet.
    pub fn sample_one(&mut self, info: &UnitInfo) -> UnitSnapshot {
        self.sample_one_at(info, Instant::now(), true)
    }

    /// [`Sampler::sample_one`], with the CPU rate computed as of `now`.
    fn sample_one_at(&mut self, info: &UnitInfo, now: Instant, everything: bool) -> UnitSnapshot {
        let Some(control_group) = &info.control_group else {
            return UnitSnapshot {
                info: Arc::new(info.clone()),
                cgroup: None,
                cpu_percent: None,
            };
        };
        let tracked = match self.tracked.get_mut(&info.unit) {
            Some(t) if &t.control_group == control_group => t,
            _ => {
                let phase = SLOW_EVERY * (self.added % SLOW_PHASES) / SLOW_PHASES;
                self.added = self.added.wrapping_add(1);
                let mut cgroup = self
                    .fs
                    .unit(control_group)
                    .watched_by(&self.changes)
                    .with_slow_phase(phase);
                if let Some(parent) = self.parent_of(control_group) {
                    cgroup = cgroup.beside(parent);
                }
                self.tracked.insert(
                    info.unit.clone(),
                    Tracked {
                        cgroup,
                        control_group: control_group.clone(),
                        last_cpu: None,
                        info: Arc::new(info.clone()),
                        swept: 0,
                    },
                );
                self.tracked
                    .get_mut(&info.unit)
                    .expect("inserted just above")
            }
        };
        tracked.swept = self.sweeps;
        if everything {
            tracked.cgroup.read_everything_next();
        }
        // A unit that ended between listing and reading simply has no sample.
        let sample = tracked.cgroup.sample_at(now).ok();
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
        if *tracked.info != *info {
            tracked.info = Arc::new(info.clone());
        }
        UnitSnapshot {
            info: Arc::clone(&tracked.info),
            cgroup: sample,
            cpu_percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Limit;
    use std::path::Path;

    fn unit_info(i: usize) -> UnitInfo {
        let unit = format!("app-corral-test-{i}.service");
        UnitInfo::new(
            unit.clone(),
            "test (preset relaxed)",
            "active".to_owned(),
            "running".to_owned(),
            Some(format!("/app.slice/{unit}")),
        )
    }

    fn write_unit(root: &Path, info: &UnitInfo) -> std::path::PathBuf {
        let dir = CgroupFs::new(root).path_of(info.control_group.as_deref().unwrap());
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            ("memory.current", "1000\n"),
            ("memory.max", "4096\n"),
            ("cpu.stat", "usage_usec 10\n"),
            ("cgroup.events", "populated 1\nfrozen 0\n"),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    /// Replaces memory.max's bytes through a shared mapping: inotify never reports it.
    fn change_memory_max_unnoticed(dir: &Path, text: &str) {
        crate::cgroup::tests::change_unnoticed(&dir.join("memory.max"), text);
    }

    fn memory_max(snapshot: &UnitSnapshot) -> Option<Limit> {
        snapshot.cgroup.as_ref()?.memory_max
    }

    #[test]
    fn a_sweep_sees_a_limit_written_since_the_last_one() {
        let root = tempfile::tempdir().unwrap();
        let units: Vec<UnitInfo> = (0..3).map(unit_info).collect();
        let dirs: Vec<_> = units.iter().map(|u| write_unit(root.path(), u)).collect();
        let mut sampler = Sampler::new(CgroupFs::new(root.path()));
        let first = sampler.sample(&units);
        assert!(
            first
                .iter()
                .all(|s| memory_max(s) == Some(Limit::Value(4096)))
        );
        std::fs::write(dirs[1].join("memory.max"), "max\n").unwrap();
        let second = sampler.sample(&units);
        assert_eq!(memory_max(&second[0]), Some(Limit::Value(4096)));
        assert_eq!(memory_max(&second[1]), Some(Limit::Max));
        assert_eq!(memory_max(&second[2]), Some(Limit::Value(4096)));
    }

    #[test]
    fn a_unit_keeps_its_info_across_sweeps_until_systemd_says_otherwise() {
        let root = tempfile::tempdir().unwrap();
        let mut units: Vec<UnitInfo> = (0..2).map(unit_info).collect();
        for unit in &units {
            write_unit(root.path(), unit);
        }
        let mut sampler = Sampler::new(CgroupFs::new(root.path()));
        let first = sampler.sample(&units);
        let second = sampler.sample(&units);
        assert!(
            first
                .iter()
                .zip(&second)
                .all(|(a, b)| Arc::ptr_eq(&a.info, &b.info))
        );
        units[1].active_state = "deactivating".to_owned();
        let third = sampler.sample(&units);
        assert!(Arc::ptr_eq(&second[0].info, &third[0].info));
        assert!(!Arc::ptr_eq(&second[1].info, &third[1].info));
        assert_eq!(third[1].info.active_state, "deactivating");
    }

    #[test]
    fn a_wakeup_sample_reads_everything() {
        let root = tempfile::tempdir().unwrap();
        let info = unit_info(0);
        let dir = write_unit(root.path(), &info);
        let mut sampler = Sampler::new(CgroupFs::new(root.path()));
        sampler.sample(std::slice::from_ref(&info));
        change_memory_max_unnoticed(&dir, "8192\n");
        // A sweep trusts the watch, which heard of nothing...
        let swept = sampler.sample(std::slice::from_ref(&info));
        assert_eq!(memory_max(&swept[0]), Some(Limit::Value(4096)));
        // ...while a sample for a wakeup reads every file.
        let woken = sampler.sample_one(&info);
        assert_eq!(memory_max(&woken), Some(Limit::Value(8192)));
        // Without inotify, every sweep reads every file.
        let mut plain =
            Sampler::with_changes(CgroupFs::new(root.path()), ChangeWatch::unavailable());
        plain.sample(std::slice::from_ref(&info));
        change_memory_max_unnoticed(&dir, "2048\n");
        let swept = plain.sample(std::slice::from_ref(&info));
        assert_eq!(memory_max(&swept[0]), Some(Limit::Value(2048)));
    }

    #[test]
    fn units_in_a_parent_without_stalls_share_it_and_skip_their_memory_pressure() {
        use std::time::Duration;
        let root = tempfile::tempdir().unwrap();
        let pressure = |avg10: f64, total: u64| {
            format!(
                "some avg10={avg10:.2} avg60=0.00 avg300=0.00 total={total}\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total={total}\n"
            )
        };
        let slice = root.path().join("app.slice");
        std::fs::create_dir_all(&slice).unwrap();
        std::fs::write(slice.join("memory.pressure"), pressure(0.0, 100)).unwrap();
        let units: Vec<UnitInfo> = (0..2).map(unit_info).collect();
        let dirs: Vec<_> = units.iter().map(|u| write_unit(root.path(), u)).collect();
        for dir in &dirs {
            std::fs::write(dir.join("memory.pressure"), pressure(0.0, 50)).unwrap();
        }
        let mut sampler = Sampler::new(CgroupFs::new(root.path()));
        assert_eq!(sampler.parents.len(), 0);
        let start = Instant::now();
        let avg10 = |s: &UnitSnapshot| s.cgroup.as_ref()?.memory_pressure.map(|p| p.some.avg10);
        // The sweeps of a second each from `seconds`, and the last one's snapshots.
        let mut sweeps = |seconds: std::ops::RangeInclusive<u64>| {
            seconds
                .map(|n| sampler.sample_at(&units, start + Duration::from_secs(n)))
                .last()
                .unwrap()
        };
        // Read at the start and 5 s later, the same: all zero, no stall since.
        sweeps(0..=10);
        // A read now would show a stall; none is read while the slice shows none.
        for dir in &dirs {
            std::fs::write(dir.join("memory.pressure"), pressure(5.0, 90_000)).unwrap();
        }
        let quiet = sweeps(11..=20);
        assert!(quiet.iter().all(|s| avg10(s) == Some(0.0)));
        // The slice's total moved: at their next slow read, both units read theirs again.
        std::fs::write(slice.join("memory.pressure"), pressure(1.0, 90_100)).unwrap();
        let stalled = sweeps(21..=25);
        assert!(stalled.iter().all(|s| avg10(s) == Some(5.0)));
        assert_eq!(sampler.parents.len(), 1, "one parent for both units");
    }

    #[test]
    fn three_hundred_units_share_one_inotify_instance() {
        let root = tempfile::tempdir().unwrap();
        let units: Vec<UnitInfo> = (0..300).map(unit_info).collect();
        let dirs: Vec<_> = units.iter().map(|u| write_unit(root.path(), u)).collect();
        let before = crate::cgroup::tests::inotify_instances();
        let mut sampler = Sampler::new(CgroupFs::new(root.path()));
        sampler.sample(&units);
        // Other tests of this binary may hold instances meanwhile.
        let instances = crate::cgroup::tests::inotify_instances();
        assert!(
            instances <= before + 2,
            "{instances} instances, {before} before"
        );
        std::fs::write(dirs[250].join("memory.max"), "max\n").unwrap();
        let swept = sampler.sample(&units);
        assert_eq!(memory_max(&swept[250]), Some(Limit::Max));
        assert_eq!(memory_max(&swept[249]), Some(Limit::Value(4096)));
    }
}
