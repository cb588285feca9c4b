//! What Corral wants of a unit as StartTransientUnit/SetUnitProperties `a(sv)` properties
//! (org.freedesktop.systemd1(5), systemd.resource-control(5), systemd.io/TRANSIENT-SETTINGS).

use std::path::PathBuf;

use zbus::zvariant::Value;

use crate::config::Settings;
use crate::limits::{CpuQuota, MemoryLimit, TasksLimit};
use crate::systemd::names::UnitKind;

/// One D-Bus unit property.
pub type Property = (&'static str, Value<'static>);

/// systemd's "infinity" for byte, task and time properties (CGROUP_LIMIT_MAX, USEC_INFINITY).
const INFINITY: u64 = u64::MAX;

/// Which systemd instance a unit goes to; some properties only work in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerKind {
    User,
    System,
}

/// Everything needed to start one transient unit.
#[derive(Debug, Clone)]
pub struct TransientSpec {
    pub name: String,
    pub kind: UnitKind,
    pub description: String,
    /// Services: the command, argv[0] an absolute path. Ignored for scopes.
    pub command: Vec<String>,
    /// Scopes: the processes to adopt. Ignored for services.
    pub pids: Vec<u32>,
    pub settings: Settings,
    /// `KEY=value` pairs for a service's environment.
    pub environment: Vec<String>,
    pub working_directory: Option<PathBuf>,
    pub manager: ManagerKind,
    /// Keep the unit loaded after it ends until the caller reads its result and lets go
    /// (systemd's AddRef=, released by UnrefUnit or when the bus connection closes).
    pub add_ref: bool,
}

impl TransientSpec {
    /// The properties for StartTransientUnit.
    pub fn properties(&self) -> Vec<Property> {
        let mut props: Vec<Property> = vec![
            ("Description", Value::from(self.description.clone())),
            // Failed units are dropped at once so no failed launch lingers (systemd.unit(5)).
            ("CollectMode", Value::from("inactive-or-failed")),
            ("MemoryAccounting", Value::from(true)),
            ("CPUAccounting", Value::from(true)),
            ("TasksAccounting", Value::from(true)),
        ];
        if self.manager == ManagerKind::User {
            // The desktop convention puts apps in app.slice; the system manager has no such slice.
            props.push(("Slice", Value::from("app.slice")));
        }
        if self.add_ref {
            props.push(("AddRef", Value::from(true)));
        }
        match self.kind {
            UnitKind::Service => self.push_service_properties(&mut props),
            UnitKind::Scope => props.push(("PIDs", Value::from(self.pids.clone()))),
        }
        props.extend(limit_properties(&self.settings));
        if let Some(policy) = self.settings.oom_policy {
            props.push(("OOMPolicy", Value::from(policy.as_str())));
        }
        props
    }

    fn push_service_properties(&self, props: &mut Vec<Property>) {
        let path = self.command.first().cloned().unwrap_or_default();
        let exec: Vec<(String, Vec<String>, bool)> = vec![(path, self.command.clone(), false)];
        // Type=exec: the start job fails when the binary cannot be executed, instead of
        // reporting success and failing a moment later (systemd.service(5)).
        props.push(("Type", Value::from("exec")));
        props.push(("ExecStart", Value::from(exec)));
        if !self.environment.is_empty() {
            props.push(("Environment", Value::from(self.environment.clone())));
        }
        if let Some(dir) = &self.working_directory {
            props.push((
                "WorkingDirectory",
                Value::from(dir.to_string_lossy().into_owned()),
            ));
        }
        let s = &self.settings;
        if let Some(nnp) = s.no_new_privileges {
            props.push(("NoNewPrivileges", Value::from(nnp)));
        }
        if let Some(private_tmp) = s.private_tmp {
            props.push(("PrivateTmp", Value::from(private_tmp)));
            // An unprivileged user manager cannot set up mount namespaces on its own: without
            // PrivateUsers= it silently skips PrivateTmp= (systemd.exec(5), "PrivateUsers=").
            if private_tmp && self.manager == ManagerKind::User {
                props.push(("PrivateUsers", Value::from(true)));
            }
        }
        if let Some(protect) = s.protect_system {
            props.push(("ProtectSystem", Value::from(protect.as_str())));
        }
        if let Some(protect) = s.protect_home {
            props.push(("ProtectHome", Value::from(protect.as_str())));
        }
    }
}

/// The resource-control properties for `settings`: the part that can also change at runtime
/// with SetUnitProperties. Unset fields are left alone; `max` lifts a limit.
pub fn limit_properties(s: &Settings) -> Vec<Property> {
    let mut props = Vec::new();
    for (name, limit) in [
        ("MemoryHigh", s.memory_high),
        ("MemoryMax", s.memory_max),
        ("MemorySwapMax", s.memory_swap_max.map(|swap| swap.0)),
    ] {
        let Some(limit) = limit else { continue };
        props.push(match limit {
            MemoryLimit::Unlimited => (name, Value::from(INFINITY)),
            MemoryLimit::Bytes(b) => (name, Value::from(b.0)),
            // Percentages go as a fraction of 2^32 in the *Scale twin, and systemd resolves
            // them against physical memory.
            MemoryLimit::Percent(p) => (scale_name(name), Value::from(p.to_u32_scale())),
        });
    }
    if let Some(quota) = s.cpu_quota {
        let usec = match quota {
            CpuQuota::Unlimited => INFINITY,
            CpuQuota::Percent(_) => quota.usec_per_sec().unwrap_or(INFINITY),
        };
        props.push(("CPUQuotaPerSecUSec", Value::from(usec)));
    }
    if let Some(weight) = s.cpu_weight {
        props.push(("CPUWeight", Value::from(u64::from(weight.get()))));
    }
    if let Some(tasks) = s.tasks_max {
        let count = match tasks {
            TasksLimit::Unlimited => INFINITY,
            TasksLimit::Count(n) => n,
        };
        props.push(("TasksMax", Value::from(count)));
    }
    props
}

fn scale_name(name: &str) -> &'static str {
    match name {
        "MemoryHigh" => "MemoryHighScale",
        "MemoryMax" => "MemoryMaxScale",
        _ => "MemorySwapMaxScale",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{Bytes, CpuWeight};

    fn spec(kind: UnitKind, settings: Settings) -> TransientSpec {
        TransientSpec {
            name: "app-corral-x-00000000.service".into(),
            kind,
            description: "X [corral: relaxed]".into(),
            command: vec!["/usr/bin/x".into(), "--flag".into()],
            pids: vec![42],
            settings,
            environment: vec!["A=1".into()],
            working_directory: Some("/home/u".into()),
            manager: ManagerKind::User,
            add_ref: false,
        }
    }

    fn get<'a>(props: &'a [Property], name: &str) -> Option<&'a Value<'static>> {
        props.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn service_with_limits_and_sandbox() {
        let settings = Settings {
            memory_high: Some("1G".parse().unwrap()),
            memory_max: Some("70%".parse().unwrap()),
            cpu_quota: Some(CpuQuota::Percent(20)),
            cpu_weight: Some(CpuWeight::new(20).unwrap()),
            tasks_max: Some(TasksLimit::Count(64)),
            no_new_privileges: Some(true),
            private_tmp: Some(true),
            protect_system: Some(crate::config::ProtectSystem::Full),
            ..Settings::default()
        };
        let props = spec(UnitKind::Service, settings).properties();
        assert_eq!(get(&props, "Type"), Some(&Value::from("exec")));
        assert_eq!(
            get(&props, "MemoryHigh"),
            Some(&Value::from(Bytes::GIB)),
            "bytes stay bytes"
        );
        assert_eq!(
            get(&props, "MemoryMax"),
            None,
            "a percentage uses the Scale twin"
        );
        assert_eq!(
            get(&props, "MemoryMaxScale"),
            Some(&Value::from(3_006_477_107u32))
        );
        assert_eq!(
            get(&props, "CPUQuotaPerSecUSec"),
            Some(&Value::from(200_000u64))
        );
        assert_eq!(get(&props, "CPUWeight"), Some(&Value::from(20u64)));
        assert_eq!(get(&props, "TasksMax"), Some(&Value::from(64u64)));
        assert_eq!(get(&props, "NoNewPrivileges"), Some(&Value::from(true)));
        assert_eq!(get(&props, "PrivateUsers"), Some(&Value::from(true)));
        assert_eq!(get(&props, "ProtectSystem"), Some(&Value::from("full")));
        assert_eq!(get(&props, "Slice"), Some(&Value::from("app.slice")));
        assert_eq!(
            get(&props, "CollectMode"),
            Some(&Value::from("inactive-or-failed"))
        );
        let exec = get(&props, "ExecStart").unwrap();
        assert_eq!(exec.value_signature().to_string(), "a(sasb)");
        assert_eq!(
            get(&props, "Environment")
                .unwrap()
                .value_signature()
                .to_string(),
            "as"
        );
        assert_eq!(get(&props, "PIDs"), None);
    }

    #[test]
    fn scope_takes_pids_and_no_sandbox() {
        let settings = Settings {
            private_tmp: Some(true),
            memory_max: Some("64M".parse().unwrap()),
            ..Settings::default()
        };
        let mut s = spec(UnitKind::Scope, settings);
        s.manager = ManagerKind::System;
        let props = s.properties();
        assert_eq!(get(&props, "PIDs"), Some(&Value::from(vec![42u32])));
        for absent in ["ExecStart", "Type", "PrivateTmp", "Environment", "Slice"] {
            assert_eq!(get(&props, absent), None, "{absent}");
        }
        assert_eq!(
            get(&props, "MemoryMax"),
            Some(&Value::from(64 * Bytes::MIB))
        );
    }

    #[test]
    fn max_lifts_limits_and_unset_fields_are_left_alone() {
        let settings = Settings {
            memory_max: Some(MemoryLimit::Unlimited),
            cpu_quota: Some(CpuQuota::Unlimited),
            tasks_max: Some(TasksLimit::Unlimited),
            ..Settings::default()
        };
        let props = limit_properties(&settings);
        assert_eq!(props.len(), 3);
        for name in ["MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"] {
            assert_eq!(get(&props, name), Some(&Value::from(u64::MAX)), "{name}");
        }
        assert!(limit_properties(&Settings::default()).is_empty());
    }
}
