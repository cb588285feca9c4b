//! Rules that hold however an app is started: each app rule of config.toml becomes systemd
//! drop-ins (`40-corral.conf`) for every unit name the app can run under; see ARCHITECTURE.md.

pub mod live;
pub mod store;
pub mod unit_file;

use std::path::Path;

use serde::Serialize;

use crate::config::{AppRule, Config, Settings};
use crate::limits::{CpuQuota, CpuWeight, MemoryLimit, SwapLimit, TasksLimit};
use crate::systemd::ManagerKind;
use crate::systemd::names::{app_dropin_folders, app_unit_patterns, dropin_folders_of};
use unit_file::{Content, Section};

/// The name of Corral's file in every drop-in folder it writes to.
pub const DROPIN_NAME: &str = "40-corral.conf";

/// One drop-in file Corral wants on disk: `<folder>/40-corral.conf` holding `text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropIn {
    /// A folder name below the unit search path, such as `app-gnome-x-.scope.d`.
    pub folder: String,
    pub text: String,
}

/// Whether `rule` asks for anything: a table that only remembers the launcher's last choice
/// (`last-preset`) is not a rule, and writes no drop-ins.
pub fn is_rule(rule: &AppRule) -> bool {
    rule.preset.is_some() || !rule.settings.is_empty()
}

/// The settings a rule stands for: its preset (or the default one) with its own on top.
pub fn rule_settings(config: &Config, key: &str) -> Option<Settings> {
    config
        .resolve(key, None, None, &Settings::default())
        .ok()
        .map(|resolved| resolved.settings)
}

/// The rules that ask for something, by key.
pub fn rules(config: &Config) -> impl Iterator<Item = (&str, &AppRule)> {
    config.rules().filter(|(_, rule)| is_rule(rule))
}

/// Every drop-in the config calls for, in a stable order. `config_path` is named in each
/// file's header, so that a person who finds the file knows where it comes from.
pub fn desired(config: &Config, config_path: &Path, manager: ManagerKind) -> Vec<DropIn> {
    let mut dropins = Vec::new();
    for (key, _) in rules(config) {
        let Some(settings) = rule_settings(config, key) else {
            continue;
        };
        let origin = format!(
            "the rule for \"{key}\" ([apps] of {})",
            config_path.display()
        );
        for folder in app_dropin_folders(key) {
            let Some(section) = Section::of_folder(&folder) else {
                continue;
            };
            // Corral's own units get sandboxing, environment and OOM policy at launch, where
            // a choice made for one launch must win; what can change while they run is theirs
            // by drop-in too, so a changed rule reaches them.
            let corral = folder.starts_with(crate::systemd::names::CORRAL_PREFIX);
            let content = Content {
                section,
                exec: section == Section::Service && !corral,
                oom_policy: !corral,
            };
            if let Some(text) = unit_file::render(&origin, content, &settings, manager) {
                dropins.push(DropIn { folder, text });
            }
        }
    }
    if let Some(text) = budget_text(config, config_path) {
        dropins.push(DropIn {
            folder: BUDGET_FOLDER.to_owned(),
            text,
        });
    }
    dropins
}

/// The slice every app of the desktop convention runs in, whose limits are the budget for all
/// of them together.
pub const BUDGET_SLICE: &str = "app.slice";
const BUDGET_FOLDER: &str = "app.slice.d";

/// The budget's settings, as `[general]` keeps them.
pub fn budget_settings(config: &Config) -> Settings {
    Settings {
        memory_high: config.general.apps_memory_high,
        memory_max: config.general.apps_memory_max,
        ..Settings::default()
    }
}

fn budget_text(config: &Config, config_path: &Path) -> Option<String> {
    let origin = format!(
        "apps-memory-high and apps-memory-max ([general] of {})",
        config_path.display()
    );
    let content = Content {
        section: Section::Slice,
        exec: false,
        oom_policy: false,
    };
    unit_file::render(
        &origin,
        content,
        &budget_settings(config),
        ManagerKind::User,
    )
}

/// Which rule's drop-ins reach `unit`, if any: the one whose folders systemd reads for it.
pub fn rule_for_unit<'a>(config: &'a Config, unit: &str) -> Option<(&'a str, &'a AppRule)> {
    let read = dropin_folders_of(unit);
    rules(config).find(|(key, _)| {
        app_dropin_folders(key)
            .iter()
            .any(|folder| read.contains(folder))
    })
}

/// The unit names a rule reaches, as shell globs for people to read.
pub fn patterns(key: &str) -> Vec<String> {
    app_unit_patterns(key)
}

/// What a launch must set again as runtime changes right after its unit starts, so that the
/// app's rule drop-ins, which systemd applies over the launch's own properties when the unit
/// loads, do not override a choice made for this one launch (another preset, a flag). `None`
/// when the rule would apply the same limits anyway, or no rule reaches the unit.
pub fn pinned_limits(config: &Config, app_id: &str, launch: &Settings) -> Option<Settings> {
    let (key, _) = rules(config).find(|(key, _)| *key == app_id)?;
    let rule = rule_settings(config, key)?;
    let limits = resource_part(launch);
    if unit_file::resource_lines(&limits) == unit_file::resource_lines(&resource_part(&rule)) {
        return None;
    }
    // What the rule limits and the launch leaves open must be opened again explicitly.
    let mut pinned = limits;
    fn open<T>(mine: &mut Option<T>, rule: &Option<T>, unlimited: T) {
        if mine.is_none() && rule.is_some() {
            *mine = Some(unlimited);
        }
    }
    open(
        &mut pinned.memory_high,
        &rule.memory_high,
        MemoryLimit::Unlimited,
    );
    open(
        &mut pinned.memory_max,
        &rule.memory_max,
        MemoryLimit::Unlimited,
    );
    open(
        &mut pinned.memory_swap_max,
        &rule.memory_swap_max,
        SwapLimit(MemoryLimit::Unlimited),
    );
    open(&mut pinned.cpu_quota, &rule.cpu_quota, CpuQuota::Unlimited);
    open(
        &mut pinned.tasks_max,
        &rule.tasks_max,
        TasksLimit::Unlimited,
    );
    if let Ok(default) = CpuWeight::new(100) {
        open(&mut pinned.cpu_weight, &rule.cpu_weight, default);
    }
    Some(pinned)
}

/// Only the limits of `settings`: what can change while a unit runs.
pub fn resource_part(settings: &Settings) -> Settings {
    Settings {
        memory_high: settings.memory_high,
        memory_max: settings.memory_max,
        memory_swap_max: settings.memory_swap_max,
        cpu_quota: settings.cpu_quota,
        cpu_weight: settings.cpu_weight,
        tasks_max: settings.tasks_max,
        ..Settings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(text: &str) -> Config {
        Config::parse(text, &PathBuf::from("/home/u/.config/corral/config.toml")).unwrap()
    }

    const FIREFOX: &str = r#"
[apps."org.mozilla.firefox"]
preset = "browser"
memory-max = "4G"

[apps.code]
last-preset = "strict"

[apps.make]
cpu-weight = 20
"#;

    #[test]
    fn each_rule_reaches_every_launchers_units() {
        let c = config(FIREFOX);
        let dropins = desired(&c, Path::new("/c.toml"), ManagerKind::User);
        let folders: Vec<&str> = dropins.iter().map(|d| d.folder.as_str()).collect();
        // Ten folders for Firefox; code only remembers a preset, so it has no rule; make's
        // rule (relaxed with a CPU weight) gets every folder too.
        assert_eq!(folders.len(), 20, "{folders:#?}");
        assert!(folders.contains(&"app-gnome-org.mozilla.firefox-.scope.d"));
        assert!(folders.contains(&"app-flatpak-org.mozilla.firefox-.scope.d"));
        assert!(folders.contains(&"app-org.mozilla.firefox@.service.d"));
        assert!(folders.contains(&"app-corral-org.mozilla.firefox-.service.d"));
        assert!(!folders.iter().any(|f| f.contains("code")));

        let gnome = dropins
            .iter()
            .find(|d| d.folder == "app-gnome-org.mozilla.firefox-.scope.d")
            .unwrap();
        assert!(gnome.text.contains("[Scope]\n"), "{}", gnome.text);
        assert!(gnome.text.contains("MemoryHigh=50%\n"), "{}", gnome.text);
        assert!(
            gnome.text.contains("MemoryMax=4294967296\n"),
            "{}",
            gnome.text
        );
        assert!(
            gnome.text.contains("OOMPolicy=continue\n"),
            "{}",
            gnome.text
        );
        assert!(gnome.text.contains("/c.toml"), "{}", gnome.text);
        // Corral's own units get limits only: the rest is set at launch.
        let corral = dropins
            .iter()
            .find(|d| d.folder == "app-corral-org.mozilla.firefox-.service.d")
            .unwrap();
        assert!(corral.text.contains("[Service]\n"));
        assert!(!corral.text.contains("OOMPolicy"), "{}", corral.text);
    }

    #[test]
    fn a_running_unit_knows_its_rule() {
        let c = config(FIREFOX);
        let key = |unit: &str| rule_for_unit(&c, unit).map(|(k, _)| k);
        assert_eq!(
            key("app-gnome-org.mozilla.firefox-4242.scope"),
            Some("org.mozilla.firefox")
        );
        assert_eq!(key("app-make@1.service"), Some("make"));
        assert_eq!(key("app-gnome-code-1.scope"), None);
        assert_eq!(key("app-gnome-org.mozilla.firefox.beta-1.scope"), None);
    }

    #[test]
    fn a_launch_unlike_its_rule_is_pinned() {
        let c = config(FIREFOX);
        let rule = rule_settings(&c, "org.mozilla.firefox").unwrap();
        assert_eq!(pinned_limits(&c, "org.mozilla.firefox", &rule), None);
        // Launched as relaxed: 70 % and no soft limit, where the rule says 50 % / 4G.
        let relaxed = c
            .resolve("x", None, Some("relaxed"), &Settings::default())
            .unwrap()
            .settings;
        let pinned = pinned_limits(&c, "org.mozilla.firefox", &relaxed).unwrap();
        assert_eq!(pinned.memory_max, relaxed.memory_max);
        assert_eq!(pinned.memory_high, Some(MemoryLimit::Unlimited));
        assert_eq!(pinned.cpu_quota, Some(CpuQuota::Unlimited));
        // No rule for the app: nothing to pin.
        assert_eq!(pinned_limits(&c, "thunderbird", &relaxed), None);
    }
}
