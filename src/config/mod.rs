//! The configuration: the built-in presets, the user's `config.toml` (found per the XDG Base
//! Directory spec) with its presets, per-app rules and `[general]` settings, and how they
//! combine into the settings of one launch.

mod builtins;
mod declare;
mod editor;
mod file;
mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::i18n::{gettext, gettext_f};
use crate::limits::MemoryLimit;

use builtins::{BUILTINS, builtin};
use file::{closest, did_you_mean};

pub use editor::{ConfigEditor, RulePreset};
pub use settings::{
    InvalidChoice, Mode, OomPolicy, POLICY_KEYS, PolicyAction, ProtectHome, ProtectSystem,
    SETTING_KEYS, SETTINGS, Setting, SettingPolicy, Settings,
};

/// The preset used when neither the caller nor a rule picks one.
pub const DEFAULT_PRESET: &str = "relaxed";

// ---------------------------------------------------------------------------------------------
// Presets, rules, general settings

/// A named set of settings, as shown by `corral presets` and the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: String,
    /// One line in plain words; empty when a preset from the file has none.
    pub description: String,
    /// Shipped with Corral (possibly changed by the file).
    pub builtin: bool,
    /// The file defines or changes this preset.
    pub in_file: bool,
    pub settings: Settings,
}

/// A per-app rule: which preset an app gets and what it changes on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRule {
    pub preset: Option<String>,
    /// The launcher's memory of the user's last choice. Only a hint for preselecting: it does
    /// not take part in [`Config::resolve`], and one naming a preset that no longer exists is
    /// dropped when the file is read.
    pub last_preset: Option<String>,
    pub settings: Settings,
}

/// The settings to launch with, after presets, rules and overrides are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub preset: String,
    /// The key of the rule that applied, if any.
    pub rule: Option<String>,
    /// `mode` is always set.
    pub settings: Settings,
}

impl Resolved {
    pub fn mode(&self) -> Mode {
        self.settings.mode.unwrap_or_default()
    }
}

/// The `[general]` table: app-wide behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct General {
    /// Seconds between usage samples, 0.1 to 60.
    #[serde(deserialize_with = "refresh_interval")]
    pub refresh_interval: f64,
    /// Warn when an app's memory reaches this percentage of its limit, 1 to 100.
    #[serde(deserialize_with = "memory_warning")]
    pub memory_warning: f64,
    /// Warn when an app's tasks wait for memory this share of the time (PSI "some" avg10 in
    /// memory.pressure), 1 to 100…
    #[serde(deserialize_with = "pressure_warning")]
    pub pressure_warning: f64,
    /// …for at least this many seconds, 1 to 600.
    #[serde(deserialize_with = "pressure_seconds")]
    pub pressure_seconds: f64,
    /// The budget for all apps together, on app.slice: above this they are slowed and their
    /// memory reclaimed (`MemoryHigh=`)…
    pub apps_memory_high: Option<MemoryLimit>,
    /// …and above this the kernel's OOM killer picks one of them (`MemoryMax=`).
    pub apps_memory_max: Option<MemoryLimit>,
}

impl Default for General {
    fn default() -> Self {
        General {
            refresh_interval: 1.0,
            memory_warning: 90.0,
            pressure_warning: 20.0,
            pressure_seconds: 10.0,
            apps_memory_high: None,
            apps_memory_max: None,
        }
    }
}

impl General {
    pub fn refresh_period(&self) -> Duration {
        Duration::from_secs_f64(self.refresh_interval)
    }
}

fn refresh_interval<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let seconds = f64::deserialize(d)?;
    if (0.1..=60.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(de::Error::custom(gettext_f(
            "a refresh interval of {seconds} seconds is out of range; use 0.1 to 60",
            &[("seconds", &seconds)],
        )))
    }
}

fn memory_warning<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let percent = percentage(d)?;
    if (1.0..=100.0).contains(&percent) {
        Ok(percent)
    } else {
        Err(de::Error::custom(gettext_f(
            "a memory warning at {percent}% of the limit is out of range; use 1 to 100",
            &[("percent", &percent)],
        )))
    }
}

fn pressure_warning<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let percent = percentage(d)?;
    if (1.0..=100.0).contains(&percent) {
        Ok(percent)
    } else {
        Err(de::Error::custom(gettext_f(
            "a pressure warning at {percent}% of the time is out of range; use 1 to 100",
            &[("percent", &percent)],
        )))
    }
}

fn pressure_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let seconds = f64::deserialize(d)?;
    if (1.0..=600.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(de::Error::custom(gettext_f(
            "pressure lasting {seconds} seconds is out of range; use 1 to 600",
            &[("seconds", &seconds)],
        )))
    }
}

/// Accepts `90`, `87.5` or `"90%"`: people write percentages both ways.
fn percentage<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(f64),
        Text(String),
    }
    let percent = match NumberOrText::deserialize(d)? {
        NumberOrText::Number(n) => n,
        NumberOrText::Text(text) => text
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .ok_or_else(|| {
                de::Error::custom(gettext_f(
                    "“{text}” is not a percentage; write it as 90 or \"90%\"",
                    &[("text", &text)],
                ))
            })?,
    };
    Ok(percent)
}

fn valid_preset_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A preset as the file defines it; fields it leaves out come from the built-in, if any.
#[derive(Debug, Clone, Default, PartialEq)]
struct PresetDef {
    description: Option<String>,
    settings: Settings,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why the configuration could not be read, used or saved. Each message says what is wrong,
/// where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", gettext_f("cannot read {path}: {error}", &[("path", &.path.display()), ("error", .source)]))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{}", gettext_f("cannot save {path}: {error}; the file on disk is unchanged", &[("path", &.path.display()), ("error", .source)]))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file is not valid: bad TOML, an unknown key, a bad value, an unknown preset.
    /// `line` and `column` are 1-based; the column counts characters.
    #[error("{}:{line}:{column}: {}", path.display(), gettext_f("{message} — fix the file; Corral has not changed it", &[("message", .message)]))]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}", gettext_f("unknown preset “{name}”: known presets are {known}{suggestion}", &[("name", .name), ("known", &.known.join(", ")), ("suggestion", &did_you_mean(.suggestion.as_deref()))]))]
    UnknownPreset {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },

    #[error("{}", invalid_preset_name(.name))]
    InvalidPresetName { name: String },

    #[error("{}", gettext_f("unknown setting “{key}”{suggestion}; settings are {settings}", &[("key", .key), ("suggestion", &did_you_mean(.suggestion.as_deref())), ("settings", &SETTING_KEYS.join(", "))]))]
    UnknownSetting {
        key: String,
        suggestion: Option<String>,
    },

    #[error("{key}: {message}")]
    InvalidSetting { key: String, message: String },

    /// The combined settings for a launch contradict each other.
    #[error("{}", gettext_f("cannot launch {app} with preset “{preset}”: {message}", &[("app", .app), ("preset", .preset), ("message", .message)]))]
    Conflict {
        app: String,
        preset: String,
        message: String,
    },

    /// An edit would leave the file invalid; the edit was undone.
    #[error("{}", gettext_f("{message}; Corral did not make the change", &[("message", .message)]))]
    InvalidEdit { message: String },

    #[error("{}", gettext_f("{path} changed on disk since Corral read it; Corral did not save, so that your edits are not lost: reopen it and make the change again", &[("path", &.path.display())]))]
    ChangedOnDisk { path: PathBuf },

    #[error("{}", gettext_f("preset “{name}” is still used by the rules for {rules}; change those rules first", &[("name", .name), ("rules", &.rules.join(", "))]))]
    PresetInUse { name: String, rules: Vec<String> },
}

fn invalid_preset_name(name: &str) -> String {
    gettext_f(
        "“{name}” is not a valid preset name; use lowercase letters, digits, - and _",
        &[("name", &name)],
    )
}
// ---------------------------------------------------------------------------------------------
// Config

/// Built-in presets, the file's presets and rules, and `[general]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub general: General,
    /// Presets as the file writes them, before merging with the built-ins.
    presets: BTreeMap<String, PresetDef>,
    apps: BTreeMap<String, AppRule>,
}

impl Config {
    /// `$XDG_CONFIG_HOME/corral/config.toml`, or `~/.config/corral/config.toml`; as root,
    /// root's own (crate::paths).
    pub fn path() -> PathBuf {
        crate::paths::base_dirs().config_file()
    }

    /// [`Config::path`] from given variable values for a user other than root, so it can be
    /// tested without touching the process environment.
    pub fn path_from(
        xdg_config_home: Option<&std::ffi::OsStr>,
        home: Option<&std::ffi::OsStr>,
    ) -> PathBuf {
        crate::paths::user_dirs(
            &crate::paths::XdgEnv {
                home: home.map(Into::into),
                config_home: xdg_config_home.map(Into::into),
                ..Default::default()
            },
            std::env::home_dir(),
        )
        .config_file()
    }

    /// A preset by name: the built-in with the file's changes on top, or the file's own.
    pub fn preset(&self, name: &str) -> Result<Preset, ConfigError> {
        let builtin = builtin(name);
        let def = self.presets.get(name);
        if builtin.is_none() && def.is_none() {
            let known = self.preset_names();
            let suggestion = closest(name, known.iter().map(String::as_str)).map(str::to_owned);
            return Err(ConfigError::UnknownPreset {
                name: name.to_owned(),
                known,
                suggestion,
            });
        }
        let mut settings = builtin.map(|b| (b.settings)()).unwrap_or_default();
        if let Some(def) = def {
            settings.overlay(&def.settings);
        }
        let description = def
            .and_then(|d| d.description.clone())
            // Built-in descriptions in the person's language; the file's as written.
            .or_else(|| builtin.map(|b| gettext(b.description)))
            .unwrap_or_default();
        Ok(Preset {
            name: name.to_owned(),
            description,
            builtin: builtin.is_some(),
            in_file: def.is_some(),
            settings,
        })
    }

    /// Every preset name, built-in and from the file, sorted.
    pub fn preset_names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = BUILTINS
            .iter()
            .map(|b| b.name)
            .chain(self.presets.keys().map(String::as_str))
            .collect();
        names.into_iter().map(str::to_owned).collect()
    }

    /// Every preset, sorted by name.
    pub fn presets(&self) -> Vec<Preset> {
        self.preset_names()
            .iter()
            .filter_map(|name| self.preset(name).ok())
            .collect()
    }

    /// Every rule with its key, sorted by key.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &AppRule)> {
        self.apps.iter().map(|(key, rule)| (key.as_str(), rule))
    }

    /// The rule for an app: by its desktop app id first, then by its executable's file name.
    pub fn rule_for(&self, app_id: &str, executable: Option<&str>) -> Option<&AppRule> {
        self.rule_entry(app_id, executable).map(|(_, rule)| rule)
    }

    fn rule_entry(&self, app_id: &str, executable: Option<&str>) -> Option<(&str, &AppRule)> {
        let by_id = [app_id, app_id.strip_suffix(".desktop").unwrap_or(app_id)];
        // A rule names an executable by its file name, whatever path the app was started by.
        let by_exe = executable
            .and_then(|exe| Path::new(exe).file_name())
            .and_then(|name| name.to_str());
        by_id
            .into_iter()
            .chain(by_exe)
            .filter(|key| !key.is_empty())
            .find_map(|key| self.apps.get_key_value(key))
            .map(|(key, rule)| (key.as_str(), rule))
    }

    /// The settings to launch with: the chosen preset (explicit > the rule's preset >
    /// [`DEFAULT_PRESET`]), then the rule's overrides, then the caller's. A soft memory limit
    /// above the hard one is refused; sandboxing that a scope cannot honour is not, so check
    /// [`Settings::service_only_settings`] and tell the person.
    pub fn resolve(
        &self,
        app_id: &str,
        executable: Option<&str>,
        preset: Option<&str>,
        overrides: &Settings,
    ) -> Result<Resolved, ConfigError> {
        let rule = self.rule_entry(app_id, executable);
        let name = preset
            .or_else(|| rule.and_then(|(_, r)| r.preset.as_deref()))
            .unwrap_or(DEFAULT_PRESET);
        let mut settings = self.preset(name)?.settings;
        if let Some((_, rule)) = rule {
            settings.overlay(&rule.settings);
        }
        settings.overlay(overrides);
        if let Some(problem) = settings.memory_problem() {
            return Err(ConfigError::Conflict {
                app: app_id.to_owned(),
                preset: name.to_owned(),
                message: problem.message,
            });
        }
        settings.mode.get_or_insert(Mode::Service);
        Ok(Resolved {
            preset: name.to_owned(),
            rule: rule.map(|(key, _)| key.to_owned()),
            settings,
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use super::{Config, ConfigError};
    use crate::limits::MemoryLimit;

    pub(crate) fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/home/u/.config/corral/config.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The (line, column, message) of a file that must be refused.
    pub(crate) fn refused(text: &str) -> (usize, usize, String) {
        match Config::parse(text, Path::new("config.toml")) {
            Err(ConfigError::Syntax {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a located error, got {other:?}"),
        }
    }

    pub(crate) fn mem(s: &str) -> Option<MemoryLimit> {
        Some(s.parse().unwrap())
    }

    pub(crate) fn names(config: &Config) -> Vec<String> {
        config.presets().into_iter().map(|p| p.name).collect()
    }

    pub(crate) const COMMENTED: &str = "\
# Corral configuration
# (hand-written, keep my notes)

[general]
refresh-interval = 2.0   # slower laptop

[presets.browser]            # overrides the built-in
memory-max   = \"4G\"          # hard cap

# Builds
[presets.compile]
description = \"Builds: low priority\"
cpu-weight = 20
cpu-quota = \"150%\"
memory-max = \"50%\"

[apps.\"org.mozilla.firefox\"]   # the big one
preset = \"browser\"
memory-high = \"3G\"             # overrides on top of the preset
";
}

#[cfg(test)]
mod tests {
    use super::testing::{COMMENTED, mem, names, parse};
    use super::*;
    use crate::limits::{Bytes, CpuQuota, CpuWeight, MemoryLimit};

    #[test]
    pub(crate) fn file_overrides_one_field_of_a_builtin_and_keeps_the_rest() {
        let config = parse("[presets.browser]\nmemory-max = \"4G\"\n");
        let browser = config.preset("browser").unwrap();
        assert!(browser.builtin && browser.in_file);
        assert_eq!(
            browser.settings.memory_max,
            Some(MemoryLimit::Bytes(Bytes(4 * Bytes::GIB)))
        );
        assert_eq!(browser.settings.memory_high, mem("50%"));
        assert_eq!(browser.settings.cpu_quota, Some(CpuQuota::Percent(300)));
        assert!(browser.description.starts_with("For web browsers"));
        assert_eq!(
            config.preset("relaxed").unwrap(),
            Config::default().preset("relaxed").unwrap()
        );
    }

    #[test]
    pub(crate) fn file_adds_a_preset() {
        let config = parse(COMMENTED);
        let compile = config.preset("compile").unwrap();
        assert!(!compile.builtin && compile.in_file);
        assert_eq!(compile.description, "Builds: low priority");
        assert_eq!(compile.settings.cpu_weight.map(CpuWeight::get), Some(20));
        assert_eq!(compile.settings.cpu_quota, Some(CpuQuota::Percent(150)));
        assert_eq!(compile.settings.memory_max, mem("50%"));
        assert_eq!(compile.settings.mode, None);
        assert_eq!(
            names(&config),
            [
                "background",
                "browser",
                "compile",
                "relaxed",
                "shell",
                "strict"
            ]
        );
        assert_eq!(config.general.refresh_interval, 2.0);
        assert_eq!(config.general.memory_warning, 90.0);
        assert_eq!(config.general.refresh_period(), Duration::from_secs(2));
    }

    #[test]
    pub(crate) fn resolution_order() {
        let config = parse(
            "[apps.\"org.mozilla.firefox\"]
preset = \"browser\"
memory-high = \"3G\"
cpu-weight = 80

[apps.\"org.gnome.Terminal\"]
memory-max = \"8G\"
",
        );
        let none = Settings::default();

        // The rule's preset, then the rule's overrides.
        let r = config
            .resolve("org.mozilla.firefox", None, None, &none)
            .unwrap();
        assert_eq!(r.preset, "browser");
        assert_eq!(r.rule.as_deref(), Some("org.mozilla.firefox"));
        assert_eq!(r.settings.memory_high, mem("3G"));
        assert_eq!(r.settings.memory_max, mem("60%"));
        assert_eq!(r.settings.cpu_weight.map(CpuWeight::get), Some(80));
        assert_eq!(r.mode(), Mode::Service);
        assert_eq!(r.settings.mode, Some(Mode::Service));

        // An explicit preset beats the rule's, and the rule's overrides still apply.
        let r = config
            .resolve("org.mozilla.firefox", None, Some("strict"), &none)
            .unwrap();
        assert_eq!(r.preset, "strict");
        assert_eq!(r.settings.memory_high, mem("3G"));
        assert_eq!(r.settings.private_tmp, Some(true));

        // The caller's overrides win over everything.
        let mut flags = Settings::default();
        flags.set("memory-high", "2G").unwrap();
        flags.set("mode", "scope").unwrap();
        let r = config
            .resolve("org.mozilla.firefox", None, Some("relaxed"), &flags)
            .unwrap();
        assert_eq!(r.settings.memory_high, mem("2G"));
        assert_eq!(r.mode(), Mode::Scope);

        // A rule without a preset gets the default one.
        let r = config
            .resolve("org.gnome.Terminal", None, None, &none)
            .unwrap();
        assert_eq!(r.preset, DEFAULT_PRESET);
        assert_eq!(r.settings.memory_max, mem("8G"));

        // No rule at all.
        let r = config
            .resolve("org.example.App", None, None, &none)
            .unwrap();
        assert_eq!((r.preset.as_str(), r.rule), (DEFAULT_PRESET, None));
        assert_eq!(r.settings.memory_max, mem("70%"));

        let err = config
            .resolve("org.example.App", None, Some("brwser"), &none)
            .unwrap_err();
        assert!(matches!(err, ConfigError::UnknownPreset { .. }), "{err:?}");
    }

    #[test]
    pub(crate) fn rules_match_app_ids_then_executable_names() {
        let config = parse(
            "[apps.firefox]\npreset = \"browser\"\n\n[apps.\"org.mozilla.firefox\"]\npreset = \"strict\"\n",
        );
        let preset_of = |id: &str, exe: Option<&str>| {
            config
                .rule_for(id, exe)
                .and_then(|r| r.preset.clone())
                .unwrap_or_default()
        };
        assert_eq!(preset_of("org.mozilla.firefox", Some("firefox")), "strict");
        assert_eq!(preset_of("org.mozilla.firefox.desktop", None), "strict");
        assert_eq!(
            preset_of("firefox-esr", Some("/usr/bin/firefox")),
            "browser"
        );
        assert_eq!(preset_of("", Some("firefox")), "browser");
        assert!(config.rule_for("org.gnome.gedit", Some("gedit")).is_none());
        let r = config
            .resolve(
                "",
                Some("/usr/lib/firefox/firefox"),
                None,
                &Settings::default(),
            )
            .unwrap();
        assert_eq!(
            (r.preset.as_str(), r.rule.as_deref()),
            ("browser", Some("firefox"))
        );
    }

    #[test]
    pub(crate) fn caller_overrides_that_contradict_are_refused() {
        let mut flags = Settings::default();
        flags.set("memory-max", "30%").unwrap();
        let err = Config::default()
            .resolve("org.mozilla.firefox", None, Some("browser"), &flags)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot launch org.mozilla.firefox with preset “browser”: memory-high 50% is above \
             memory-max 30%: the soft limit must not exceed the hard limit; lower memory-high \
             or raise memory-max"
        );
        // Sandboxing on a scope is the caller's to warn about, not an error.
        let mut flags = Settings::default();
        flags.set("private-tmp", "yes").unwrap();
        let r = Config::default()
            .resolve("bash", None, Some("shell"), &flags)
            .unwrap();
        assert_eq!(r.mode(), Mode::Scope);
        assert_eq!(r.settings.service_only_settings(), ["private-tmp"]);
    }

    #[test]
    pub(crate) fn unknown_preset_lists_the_known_ones() {
        let err = parse(COMMENTED).preset("brwser").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown preset “brwser”: known presets are background, browser, compile, relaxed, \
             shell, strict; did you mean “browser”?"
        );
        let err = Config::default().preset("gaming").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown preset “gaming”: known presets are background, browser, relaxed, shell, strict"
        );
    }

    #[test]
    pub(crate) fn stale_last_preset_is_dropped_not_refused() {
        let config = parse("[apps.x]\nlast-preset = \"gone\"\n[apps.y]\nlast-preset = \"shell\"\n");
        assert_eq!(config.rule_for("x", None).unwrap().last_preset, None);
        assert_eq!(
            config.rule_for("y", None).unwrap().last_preset.as_deref(),
            Some("shell")
        );
    }

    #[test]
    pub(crate) fn config_path_follows_xdg() {
        use std::ffi::OsStr;
        let path = |xdg: Option<&str>, home: Option<&str>| {
            Config::path_from(xdg.map(OsStr::new), home.map(OsStr::new))
        };
        assert_eq!(
            path(Some("/x/conf"), Some("/home/u")),
            Path::new("/x/conf/corral/config.toml")
        );
        // A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
        assert_eq!(
            path(Some("conf"), Some("/home/u")),
            Path::new("/home/u/.config/corral/config.toml")
        );
        assert_eq!(
            path(None, Some("/home/u")),
            Path::new("/home/u/.config/corral/config.toml")
        );
    }
}
