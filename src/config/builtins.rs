//! The presets Corral ships: relaxed, strict, browser, shell and background (see DESIGN.md).

use super::settings::{Mode, OomPolicy, ProtectSystem, Settings};
use crate::i18n::gettext_noop;
use crate::limits::{CpuQuota, CpuWeight, MemoryLimit, Percent};

pub(super) struct Builtin {
    pub(super) name: &'static str,
    pub(super) description: &'static str,
    pub(super) settings: fn() -> Settings,
}

fn share(percent: u32) -> Option<MemoryLimit> {
    Percent::from_permyriad(percent * 100).map(MemoryLimit::Percent)
}

// Sorted by name, so listings and error messages come out in a stable order.
pub(super) const BUILTINS: [Builtin; 5] = [
    Builtin {
        name: "background",
        description: gettext_noop(
            "For batch jobs: gives way to other apps, at most half a CPU and 40% of RAM",
        ),
        settings: || Settings {
            cpu_weight: CpuWeight::new(20).ok(),
            cpu_quota: Some(CpuQuota::Percent(50)),
            memory_high: share(30),
            memory_max: share(40),
            ..Settings::default()
        },
    },
    Builtin {
        name: "browser",
        description: gettext_noop(
            "For web browsers: slows down and frees memory above 50% of RAM, at 60% loses the tab that uses the most, at most 3 CPUs",
        ),
        settings: || Settings {
            memory_high: share(50),
            memory_max: share(60),
            cpu_quota: Some(CpuQuota::Percent(300)),
            // A runaway page costs its tab's process, not the browser.
            oom_policy: Some(OomPolicy::Continue),
            ..Settings::default()
        },
    },
    Builtin {
        name: "relaxed",
        description: gettext_noop(
            "Memory cap only: the app may use up to 70% of RAM (the default)",
        ),
        settings: || Settings {
            memory_max: share(70),
            ..Settings::default()
        },
    },
    Builtin {
        name: "shell",
        description: gettext_noop(
            "For shells and terminal programs: keeps the terminal, at most 70% of RAM; a runaway command is killed, not the shell",
        ),
        settings: || Settings {
            mode: Some(Mode::Scope),
            memory_max: share(70),
            // A runaway command is killed, the shell goes on.
            oom_policy: Some(OomPolicy::Continue),
            ..Settings::default()
        },
    },
    Builtin {
        name: "strict",
        description: gettext_noop(
            "Memory cap and sandbox: at most 70% of RAM, no privilege gain, a private /tmp, system folders read-only",
        ),
        settings: || Settings {
            memory_max: share(70),
            no_new_privileges: Some(true),
            private_tmp: Some(true),
            // `full` makes /usr, /boot and /etc read-only: apps never write there, while
            // `strict` would also make the home directory read-only and break most of them.
            protect_system: Some(ProtectSystem::Full),
            ..Settings::default()
        },
    },
];

pub(super) fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::testing::names;

    #[test]
    fn builtins_are_present_described_and_consistent() {
        let config = Config::default();
        assert_eq!(
            names(&config),
            ["background", "browser", "relaxed", "shell", "strict"]
        );
        for preset in config.presets() {
            assert!(preset.builtin && !preset.in_file, "{}", preset.name);
            assert!(!preset.description.is_empty(), "{}", preset.name);
            assert!(!preset.description.contains('\n'), "{}", preset.name);
            assert!(preset.settings.problem().is_none(), "{}", preset.name);
            assert!(preset.settings.memory_max.is_some(), "{}", preset.name);
        }
        let summary = |name: &str| config.preset(name).unwrap().settings.summary();
        assert_eq!(summary("relaxed"), "memory-max=70%");
        assert_eq!(
            summary("strict"),
            "memory-max=70%, no-new-privileges=true, private-tmp=true, protect-system=full"
        );
        assert_eq!(
            summary("browser"),
            "memory-high=50%, memory-max=60%, cpu-quota=300%, oom-policy=continue"
        );
        assert_eq!(
            summary("shell"),
            "mode=scope, memory-max=70%, oom-policy=continue"
        );
        assert_eq!(
            summary("background"),
            "memory-high=30%, memory-max=40%, cpu-quota=50%, cpu-weight=20"
        );
    }
}
