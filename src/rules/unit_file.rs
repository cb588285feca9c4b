//! A rule's settings in unit-file syntax (systemd.resource-control(5), systemd.exec(5),
//! systemd.service(5) "OOMPolicy="), for the drop-ins of [`super`].

use crate::config::Settings;
use crate::limits::{CpuQuota, MemoryLimit, TasksLimit};
use crate::systemd::ManagerKind;

/// The first words of every file Corral writes: what tells its files from a person's.
pub const MARKER: &str = "# Corral wrote this file";

/// The section a drop-in's settings go under: the unit type of the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Service,
    Scope,
    Slice,
}

impl Section {
    /// The section of a drop-in folder such as `app-gnome-x-.scope.d`.
    pub fn of_folder(folder: &str) -> Option<Section> {
        let unit = folder.strip_suffix(".d")?;
        Some(match unit.rsplit_once('.')?.1 {
            "service" => Section::Service,
            "scope" => Section::Scope,
            "slice" => Section::Slice,
            _ => return None,
        })
    }

    fn header(self) -> &'static str {
        match self {
            Section::Service => "[Service]",
            Section::Scope => "[Scope]",
            Section::Slice => "[Slice]",
        }
    }
}

/// What goes into one folder's file: which of the settings a unit of that kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    pub section: Section,
    /// Sandboxing and environment (services started by others only: a scope runs what its
    /// launcher forked, and Corral's own services get them at launch, where a person's choice
    /// for that one launch must win).
    pub exec: bool,
    /// OOMPolicy= (services and scopes that others start: Corral sets it at launch).
    pub oom_policy: bool,
}

/// The file: a header that says who wrote it from what, then the section and its settings.
/// `None` when none of the settings goes into this kind of unit.
pub fn render(
    origin: &str,
    content: Content,
    settings: &Settings,
    manager: ManagerKind,
) -> Option<String> {
    let mut lines = resource_lines(settings);
    if content.oom_policy
        && let Some(policy) = settings.oom_policy
    {
        lines.push(format!("OOMPolicy={}", policy.as_str()));
    }
    if content.exec {
        lines.extend(exec_lines(settings, manager));
    }
    if lines.is_empty() {
        return None;
    }
    let mut text = format!(
        "{MARKER} from {origin},\n\
         # and rewrites or removes it when that changes: change it there (or with `corral rules`\n\
         # and `corral budget`), not here. Corral leaves every other file in this folder alone.\n{}\n",
        content.section.header()
    );
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    Some(text)
}

/// The limits, which scopes, services and slices all take, and which can also change while
/// a unit runs.
pub fn resource_lines(s: &Settings) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, limit) in [
        ("MemoryHigh", s.memory_high),
        ("MemoryMax", s.memory_max),
        ("MemorySwapMax", s.memory_swap_max.map(|swap| swap.0)),
    ] {
        if let Some(limit) = limit {
            lines.push(format!("{name}={}", memory_value(limit)));
        }
    }
    match s.cpu_quota {
        // An empty assignment lifts the quota.
        Some(CpuQuota::Unlimited) => lines.push("CPUQuota=".to_owned()),
        Some(CpuQuota::Percent(p)) => lines.push(format!("CPUQuota={p}%")),
        None => {}
    }
    if let Some(weight) = s.cpu_weight {
        lines.push(format!("CPUWeight={weight}"));
    }
    match s.tasks_max {
        Some(TasksLimit::Unlimited) => lines.push("TasksMax=infinity".to_owned()),
        Some(TasksLimit::Count(n)) => lines.push(format!("TasksMax={n}")),
        None => {}
    }
    lines
}

/// `infinity`, a byte count, or a share of RAM with up to two decimals ("12.5%"), which
/// systemd resolves against physical memory as the `*Scale` properties do.
fn memory_value(limit: MemoryLimit) -> String {
    match limit {
        MemoryLimit::Unlimited => "infinity".to_owned(),
        MemoryLimit::Bytes(bytes) => bytes.0.to_string(),
        MemoryLimit::Percent(p) => p.to_string(),
    }
}

fn exec_lines(s: &Settings, manager: ManagerKind) -> Vec<String> {
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let mut lines = Vec::new();
    if let Some(on) = s.no_new_privileges {
        lines.push(format!("NoNewPrivileges={}", yes_no(on)));
    }
    if let Some(on) = s.private_tmp {
        lines.push(format!("PrivateTmp={}", yes_no(on)));
        // As at launch: a user manager can only set up the mount namespace with a user
        // namespace (systemd.exec(5), "PrivateUsers=").
        if on && manager == ManagerKind::User {
            lines.push("PrivateUsers=yes".to_owned());
        }
    }
    if let Some(protect) = s.protect_system {
        lines.push(format!("ProtectSystem={}", protect.as_str()));
    }
    if let Some(protect) = s.protect_home {
        lines.push(format!("ProtectHome={}", protect.as_str()));
    }
    for (name, value) in &s.environment {
        lines.push(format!(
            "Environment={}",
            quoted(&format!("{name}={value}"))
        ));
    }
    lines
}

/// A value in double quotes as systemd unquotes it (C escapes, systemd.syntax(7)) with `%`
/// doubled, since unit files expand specifiers (systemd.unit(5), "Specifiers").
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OomPolicy, ProtectSystem};
    use crate::limits::{Bytes, CpuWeight, SwapLimit};

    fn browser() -> Settings {
        Settings {
            memory_high: Some("50%".parse().unwrap()),
            memory_max: Some("12.5%".parse().unwrap()),
            memory_swap_max: Some(SwapLimit(MemoryLimit::Bytes(Bytes(0)))),
            cpu_quota: Some(CpuQuota::Percent(300)),
            cpu_weight: Some(CpuWeight::new(20).unwrap()),
            tasks_max: Some(TasksLimit::Unlimited),
            oom_policy: Some(OomPolicy::Continue),
            no_new_privileges: Some(true),
            private_tmp: Some(true),
            protect_system: Some(ProtectSystem::Full),
            environment: [("MOZ_X".to_owned(), "a \"b\" 100% \\ c\n".to_owned())].into(),
            ..Settings::default()
        }
    }

    #[test]
    fn a_scope_gets_limits_and_its_oom_policy_only() {
        let content = Content {
            section: Section::Scope,
            exec: false,
            oom_policy: true,
        };
        let text = render(
            "the rule for “firefox” in /c.toml",
            content,
            &browser(),
            ManagerKind::User,
        )
        .unwrap();
        let body: Vec<&str> = text.lines().skip_while(|l| l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "[Scope]",
                "MemoryHigh=50%",
                "MemoryMax=12.5%",
                "MemorySwapMax=0",
                "CPUQuota=300%",
                "CPUWeight=20",
                "TasksMax=infinity",
                "OOMPolicy=continue",
            ]
        );
        assert!(text.starts_with(MARKER), "{text}");
        assert!(text.contains("/c.toml"), "{text}");
    }

    #[test]
    fn a_service_started_by_others_also_gets_sandboxing_and_environment() {
        let content = Content {
            section: Section::Service,
            exec: true,
            oom_policy: true,
        };
        let text = render("x", content, &browser(), ManagerKind::User).unwrap();
        for line in [
            "[Service]",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "PrivateUsers=yes",
            "ProtectSystem=full",
            r#"Environment="MOZ_X=a \"b\" 100%% \\ c\n""#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn nothing_to_say_writes_no_file() {
        let only_policy = Settings {
            on_memory_near_limit: Some(crate::config::PolicyAction::Freeze),
            ..Settings::default()
        };
        let content = Content {
            section: Section::Scope,
            exec: false,
            oom_policy: true,
        };
        assert_eq!(render("x", content, &only_policy, ManagerKind::User), None);
        let lifted = Settings {
            cpu_quota: Some(CpuQuota::Unlimited),
            memory_max: Some(MemoryLimit::Unlimited),
            ..Settings::default()
        };
        assert_eq!(resource_lines(&lifted), ["MemoryMax=infinity", "CPUQuota="]);
    }

    #[test]
    fn sections_follow_the_folder() {
        assert_eq!(
            Section::of_folder("app-gnome-x-.scope.d"),
            Some(Section::Scope)
        );
        assert_eq!(
            Section::of_folder("app-x@.service.d"),
            Some(Section::Service)
        );
        assert_eq!(Section::of_folder("app.slice.d"), Some(Section::Slice));
        assert_eq!(Section::of_folder("app.slice"), None);
        assert_eq!(Section::of_folder("x.socket.d"), None);
    }
}
