//! Presets and per-app rules: the built-in presets, the user's `config.toml` (found per the XDG
//! Base Directory spec), validation with line and column, and edits that keep the user's
//! comments and are saved atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::i18n::{gettext, gettext_f, gettext_noop, ngettext_f, pgettext};
use crate::limits::{CpuQuota, CpuWeight, MemoryLimit, Percent, SwapLimit, TasksLimit};

/// The preset used when neither the caller nor a rule picks one.
pub const DEFAULT_PRESET: &str = "relaxed";

/// Every setting key a preset or rule may carry, in the order they are listed and written.
pub const SETTING_KEYS: [&str; 16] = [
    "mode",
    "memory-high",
    "memory-max",
    "memory-swap-max",
    "cpu-quota",
    "cpu-weight",
    "tasks-max",
    "no-new-privileges",
    "private-tmp",
    "protect-system",
    "protect-home",
    "environment",
    "on-memory-near-limit",
    "on-memory-throttled",
    "on-cpu-throttled",
    "on-memory-pressure",
];

/// The policy keys: what Corral does by itself when an alert of that kind is raised.
pub const POLICY_KEYS: [&str; 4] = [
    "on-memory-near-limit",
    "on-memory-throttled",
    "on-cpu-throttled",
    "on-memory-pressure",
];

// ---------------------------------------------------------------------------------------------
// Small value types

/// A word that is not one of the accepted choices for a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", gettext_f("“{input}” is not a valid {what}; use {accepted}", &[("input", .input), ("what", &gettext(.what)), ("accepted", &gettext(.accepted))]))]
pub struct InvalidChoice {
    pub input: String,
    pub what: &'static str,
    pub accepted: &'static str,
}

/// How systemd runs the app (systemd.service(5) vs systemd.scope(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// systemd starts the app itself; sandboxing settings apply. Works from inside Flatpak.
    #[default]
    Service,
    /// Corral forks the app and systemd adopts it; keeps the terminal and environment, but
    /// takes resource limits only.
    Scope,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Service => "service",
            Mode::Scope => "scope",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = InvalidChoice;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim().to_ascii_lowercase().as_str() {
            "service" => Ok(Mode::Service),
            "scope" => Ok(Mode::Scope),
            _ => Err(InvalidChoice {
                input: input.to_owned(),
                what: gettext_noop("mode"),
                accepted: gettext_noop("service or scope"),
            }),
        }
    }
}

/// systemd `ProtectSystem=` (systemd.exec(5)): which system directories are read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectSystem {
    No,
    /// /usr, /boot and /efi read-only.
    Yes,
    /// As `Yes`, plus /etc.
    Full,
    /// The whole file system read-only except /dev, /proc, /sys and the unit's own dirs.
    Strict,
}

impl ProtectSystem {
    /// The value as systemd takes it on D-Bus and in unit files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectSystem::No => "no",
            ProtectSystem::Yes => "yes",
            ProtectSystem::Full => "full",
            ProtectSystem::Strict => "strict",
        }
    }
}

impl From<bool> for ProtectSystem {
    fn from(on: bool) -> Self {
        if on {
            ProtectSystem::Yes
        } else {
            ProtectSystem::No
        }
    }
}

impl FromStr for ProtectSystem {
    type Err = InvalidChoice;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(ProtectSystem::Full),
            "strict" => Ok(ProtectSystem::Strict),
            word => parse_bool(word)
                .map(ProtectSystem::from)
                .ok_or(InvalidChoice {
                    input: input.to_owned(),
                    what: gettext_noop("protect-system value"),
                    accepted: gettext_noop("no, yes, full or strict"),
                }),
        }
    }
}

/// systemd `ProtectHome=` (systemd.exec(5)): what the app sees of /home, /root and /run/user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectHome {
    No,
    /// Home directories appear empty and inaccessible.
    Yes,
    ReadOnly,
    /// Home directories are empty tmpfs mounts.
    Tmpfs,
}

impl ProtectHome {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtectHome::No => "no",
            ProtectHome::Yes => "yes",
            ProtectHome::ReadOnly => "read-only",
            ProtectHome::Tmpfs => "tmpfs",
        }
    }
}

impl From<bool> for ProtectHome {
    fn from(on: bool) -> Self {
        if on {
            ProtectHome::Yes
        } else {
            ProtectHome::No
        }
    }
}

impl FromStr for ProtectHome {
    type Err = InvalidChoice;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim().to_ascii_lowercase().as_str() {
            "read-only" => Ok(ProtectHome::ReadOnly),
            "tmpfs" => Ok(ProtectHome::Tmpfs),
            word => parse_bool(word)
                .map(ProtectHome::from)
                .ok_or(InvalidChoice {
                    input: input.to_owned(),
                    what: gettext_noop("protect-home value"),
                    accepted: gettext_noop("no, yes, read-only or tmpfs"),
                }),
        }
    }
}

/// What Corral does by itself when a runaway-watch rule fires for a unit (the `on-…` policy
/// settings of a preset or rule). Whatever it does, it says so in the alert's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PolicyAction {
    /// Only notify (what happens without a policy).
    #[default]
    Notify,
    /// Freeze the unit until the person thaws it.
    Freeze,
    /// Raise the limit the alert is about by one step, as the notification's button does.
    RaiseLimit,
    /// Halve the unit's CPU quota (one CPU if it has none), slowing a runaway down.
    LowerCpu,
}

impl PolicyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyAction::Notify => "notify",
            PolicyAction::Freeze => "freeze",
            PolicyAction::RaiseLimit => "raise-limit",
            PolicyAction::LowerCpu => "lower-cpu",
        }
    }
}

impl FromStr for PolicyAction {
    type Err = InvalidChoice;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.trim().to_ascii_lowercase().as_str() {
            "notify" => Ok(PolicyAction::Notify),
            "freeze" => Ok(PolicyAction::Freeze),
            "raise-limit" => Ok(PolicyAction::RaiseLimit),
            "lower-cpu" => Ok(PolicyAction::LowerCpu),
            _ => Err(InvalidChoice {
                input: input.to_owned(),
                what: gettext_noop("policy"),
                accepted: gettext_noop("notify, freeze, raise-limit or lower-cpu"),
            }),
        }
    }
}

impl fmt::Display for PolicyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// A word only: unlike systemd's settings, a policy has no boolean spelling.
impl<'de> Deserialize<'de> for PolicyAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = String::deserialize(d)?;
        word.parse().map_err(de::Error::custom)
    }
}

macro_rules! display_and_serde_as_word {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        // systemd takes a boolean as well as the words, so the file may too.
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(BoolOrWord(std::marker::PhantomData))
            }
        }
    )*};
}

display_and_serde_as_word!(ProtectSystem, ProtectHome);

struct BoolOrWord<T>(std::marker::PhantomData<T>);

impl<T> Visitor<'_> for BoolOrWord<T>
where
    T: From<bool> + FromStr<Err = InvalidChoice>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gettext(
            "true, false or one of the words listed for this setting",
        ))
    }

    fn visit_bool<E: de::Error>(self, on: bool) -> Result<T, E> {
        Ok(T::from(on))
    }

    fn visit_str<E: de::Error>(self, word: &str) -> Result<T, E> {
        word.parse().map_err(E::custom)
    }
}

/// systemd's boolean words (parse_boolean() in systemd's src/basic/parse-util.c).
fn parse_bool(word: &str) -> Option<bool> {
    match word.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

/// Limits and sandboxing for one launch. Every field is optional so that presets, rules and
/// command-line flags can each say only what they change; see [`Settings::overlay`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub mode: Option<Mode>,
    /// Soft limit (`MemoryHigh=`): above it the kernel throttles and reclaims.
    pub memory_high: Option<MemoryLimit>,
    /// Hard limit (`MemoryMax=`): above it the OOM killer ends the app.
    pub memory_max: Option<MemoryLimit>,
    pub memory_swap_max: Option<SwapLimit>,
    pub cpu_quota: Option<CpuQuota>,
    pub cpu_weight: Option<CpuWeight>,
    pub tasks_max: Option<TasksLimit>,
    /// systemd applies `NoNewPrivileges=` to services only; for a scope the launcher has to set
    /// PR_SET_NO_NEW_PRIVS in the child itself (prctl(2)), which needs no privileges.
    pub no_new_privileges: Option<bool>,
    /// Needs a mount namespace, so services only.
    pub private_tmp: Option<bool>,
    /// Needs a mount namespace, so services only.
    pub protect_system: Option<ProtectSystem>,
    /// Needs a mount namespace, so services only.
    pub protect_home: Option<ProtectHome>,
    /// Extra environment variables. A map rather than an `Option`: "nothing set" is the empty
    /// map, and layers merge variable by variable.
    pub environment: BTreeMap<String, String>,
    /// Policies: what Corral does by itself when the runaway watch raises that alert.
    pub on_memory_near_limit: Option<PolicyAction>,
    pub on_memory_throttled: Option<PolicyAction>,
    pub on_cpu_throttled: Option<PolicyAction>,
    pub on_memory_pressure: Option<PolicyAction>,
}

impl Settings {
    /// Takes every setting that `other` has, keeping ours where `other` says nothing.
    /// Environment variables merge by name, `other` winning.
    pub fn overlay(&mut self, other: &Settings) {
        fn take<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        }
        let Settings {
            mode,
            memory_high,
            memory_max,
            memory_swap_max,
            cpu_quota,
            cpu_weight,
            tasks_max,
            no_new_privileges,
            private_tmp,
            protect_system,
            protect_home,
            environment,
            on_memory_near_limit,
            on_memory_throttled,
            on_cpu_throttled,
            on_memory_pressure,
        } = other;
        take(&mut self.mode, mode);
        take(&mut self.memory_high, memory_high);
        take(&mut self.memory_max, memory_max);
        take(&mut self.memory_swap_max, memory_swap_max);
        take(&mut self.cpu_quota, cpu_quota);
        take(&mut self.cpu_weight, cpu_weight);
        take(&mut self.tasks_max, tasks_max);
        take(&mut self.no_new_privileges, no_new_privileges);
        take(&mut self.private_tmp, private_tmp);
        take(&mut self.protect_system, protect_system);
        take(&mut self.protect_home, protect_home);
        take(&mut self.on_memory_near_limit, on_memory_near_limit);
        take(&mut self.on_memory_throttled, on_memory_throttled);
        take(&mut self.on_cpu_throttled, on_cpu_throttled);
        take(&mut self.on_memory_pressure, on_memory_pressure);
        for (name, value) in environment {
            self.environment.insert(name.clone(), value.clone());
        }
    }

    /// True when no setting is given at all.
    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
    }

    /// Sets one setting from text as a person types it ("4G", "70%", "yes", "scope").
    /// `environment` takes one `NAME=value` pair and adds it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        fn parsed<T: FromStr>(key: &str, value: &str) -> Result<Option<T>, ConfigError>
        where
            T::Err: fmt::Display,
        {
            value
                .parse()
                .map(Some)
                .map_err(|e: T::Err| ConfigError::InvalidSetting {
                    key: key.to_owned(),
                    message: e.to_string(),
                })
        }
        let boolean = || match parse_bool(value) {
            Some(on) => Ok(Some(on)),
            None => Err(ConfigError::InvalidSetting {
                key: key.to_owned(),
                message: gettext_f(
                    "“{value}” is not yes or no; use true or false",
                    &[("value", &value)],
                ),
            }),
        };
        match key {
            "mode" => self.mode = parsed(key, value)?,
            "memory-high" => self.memory_high = parsed(key, value)?,
            "memory-max" => self.memory_max = parsed(key, value)?,
            "memory-swap-max" => self.memory_swap_max = parsed(key, value)?,
            "cpu-quota" => self.cpu_quota = parsed(key, value)?,
            "cpu-weight" => self.cpu_weight = parsed(key, value)?,
            "tasks-max" => self.tasks_max = parsed(key, value)?,
            "no-new-privileges" => self.no_new_privileges = boolean()?,
            "private-tmp" => self.private_tmp = boolean()?,
            "protect-system" => self.protect_system = parsed(key, value)?,
            "protect-home" => self.protect_home = parsed(key, value)?,
            "on-memory-near-limit" => self.on_memory_near_limit = parsed(key, value)?,
            "on-memory-throttled" => self.on_memory_throttled = parsed(key, value)?,
            "on-cpu-throttled" => self.on_cpu_throttled = parsed(key, value)?,
            "on-memory-pressure" => self.on_memory_pressure = parsed(key, value)?,
            "environment" => {
                let Some((name, val)) = value.split_once('=') else {
                    return Err(ConfigError::InvalidSetting {
                        key: key.to_owned(),
                        message: gettext_f(
                            "“{value}” is not of the form NAME=value",
                            &[("value", &value)],
                        ),
                    });
                };
                check_environment(name, val).map_err(|message| ConfigError::InvalidSetting {
                    key: key.to_owned(),
                    message,
                })?;
                self.environment.insert(name.to_owned(), val.to_owned());
            }
            _ => return Err(unknown_setting(key)),
        }
        Ok(())
    }

    /// Clears one setting (all environment variables for `environment`).
    pub fn unset(&mut self, key: &str) -> Result<(), ConfigError> {
        match key {
            "mode" => self.mode = None,
            "memory-high" => self.memory_high = None,
            "memory-max" => self.memory_max = None,
            "memory-swap-max" => self.memory_swap_max = None,
            "cpu-quota" => self.cpu_quota = None,
            "cpu-weight" => self.cpu_weight = None,
            "tasks-max" => self.tasks_max = None,
            "no-new-privileges" => self.no_new_privileges = None,
            "private-tmp" => self.private_tmp = None,
            "protect-system" => self.protect_system = None,
            "protect-home" => self.protect_home = None,
            "on-memory-near-limit" => self.on_memory_near_limit = None,
            "on-memory-throttled" => self.on_memory_throttled = None,
            "on-cpu-throttled" => self.on_cpu_throttled = None,
            "on-memory-pressure" => self.on_memory_pressure = None,
            "environment" => self.environment.clear(),
            _ => return Err(unknown_setting(key)),
        }
        Ok(())
    }

    /// One setting as it would be written in the file; `None` when not set or unknown.
    pub fn toml_value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "mode" => Value::from(self.mode?.as_str()),
            "memory-high" => Value::from(self.memory_high?.to_string()),
            "memory-max" => Value::from(self.memory_max?.to_string()),
            "memory-swap-max" => Value::from(self.memory_swap_max?.to_string()),
            "cpu-quota" => Value::from(self.cpu_quota?.to_string()),
            "cpu-weight" => Value::from(i64::from(self.cpu_weight?.get())),
            "tasks-max" => match self.tasks_max? {
                // TOML integers are i64; a larger count still round-trips as a string.
                TasksLimit::Count(n) => i64::try_from(n)
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(n.to_string())),
                TasksLimit::Unlimited => Value::from("max"),
            },
            "no-new-privileges" => Value::from(self.no_new_privileges?),
            "private-tmp" => Value::from(self.private_tmp?),
            "protect-system" => Value::from(self.protect_system?.as_str()),
            "protect-home" => Value::from(self.protect_home?.as_str()),
            "on-memory-near-limit" => Value::from(self.on_memory_near_limit?.as_str()),
            "on-memory-throttled" => Value::from(self.on_memory_throttled?.as_str()),
            "on-cpu-throttled" => Value::from(self.on_cpu_throttled?.as_str()),
            "on-memory-pressure" => Value::from(self.on_memory_pressure?.as_str()),
            "environment" if !self.environment.is_empty() => {
                let mut table = InlineTable::new();
                for (name, value) in &self.environment {
                    table.insert(name, Value::from(value.as_str()));
                }
                Value::InlineTable(table)
            }
            _ => return None,
        })
    }

    /// The settings that are set, as (key, value) in the file's spelling, in [`SETTING_KEYS`]
    /// order. Environment variables are shown as `NAME=value` separated by spaces.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        SETTING_KEYS
            .iter()
            .filter_map(|&key| {
                let text = if key == "environment" {
                    if self.environment.is_empty() {
                        return None;
                    }
                    let pairs: Vec<String> = self
                        .environment
                        .iter()
                        .map(|(name, value)| format!("{name}={value}"))
                        .collect();
                    pairs.join(" ")
                } else {
                    match self.toml_value(key)? {
                        Value::String(s) => s.value().clone(),
                        other => other.to_string().trim().to_owned(),
                    }
                };
                Some((key, text))
            })
            .collect()
    }

    /// A one-line summary such as `memory-high=50%, memory-max=60%, cpu-quota=300%`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .entries()
            .into_iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        parts.join(", ")
    }

    /// What the settings do, in plain words for the launcher and Preferences: "killed above
    /// 64 MiB, at most 2 CPUs, private /tmp". Empty when nothing is set.
    pub fn plain_words(&self) -> String {
        fn memory(limit: MemoryLimit) -> String {
            match limit {
                MemoryLimit::Unlimited => gettext("no limit"),
                MemoryLimit::Bytes(bytes) => bytes.to_string(),
                MemoryLimit::Percent(p) => gettext_f(
                    "{percent} % of RAM",
                    &[("percent", &p.to_string().trim_end_matches('%'))],
                ),
            }
        }
        let mut parts = Vec::new();
        match self.memory_high {
            Some(MemoryLimit::Unlimited) | None => {}
            Some(high) => parts.push(gettext_f(
                "slowed down above {size}",
                &[("size", &memory(high))],
            )),
        }
        match self.memory_max {
            Some(MemoryLimit::Unlimited) | None => {}
            Some(max) => parts.push(gettext_f("killed above {size}", &[("size", &memory(max))])),
        }
        match self.memory_swap_max.map(|s| s.0) {
            Some(MemoryLimit::Bytes(b)) if b.0 == 0 => parts.push(gettext("no swap")),
            Some(MemoryLimit::Unlimited) | None => {}
            Some(swap) => parts.push(gettext_f(
                "at most {size} of swap",
                &[("size", &memory(swap))],
            )),
        }
        match self.cpu_quota {
            Some(CpuQuota::Percent(p)) if p % 100 == 0 && p > 100 => {
                let n = p / 100;
                parts.push(ngettext_f(
                    "at most {n} CPU",
                    "at most {n} CPUs",
                    u64::from(n),
                    &[("n", &n)],
                ))
            }
            Some(CpuQuota::Percent(100)) => parts.push(gettext("at most one CPU")),
            Some(CpuQuota::Percent(50)) => parts.push(gettext("at most half a CPU")),
            Some(CpuQuota::Percent(p)) => parts.push(gettext_f(
                "at most {percent} % of one CPU",
                &[("percent", &p)],
            )),
            Some(CpuQuota::Unlimited) | None => {}
        }
        match self.cpu_weight.map(CpuWeight::get) {
            Some(w) if w < 100 => parts.push(gettext("gives way to other apps")),
            Some(w) if w > 100 => parts.push(gettext("gets more CPU time than other apps")),
            _ => {}
        }
        if let Some(TasksLimit::Count(n)) = self.tasks_max {
            parts.push(ngettext_f(
                "at most {n} process",
                "at most {n} processes",
                n,
                &[("n", &n)],
            ));
        }
        if self.no_new_privileges == Some(true) {
            parts.push(gettext("cannot gain privileges"));
        }
        if self.private_tmp == Some(true) {
            parts.push(gettext("private /tmp"));
        }
        match self.protect_system {
            Some(ProtectSystem::Yes | ProtectSystem::Full) => {
                parts.push(gettext("system files read-only"))
            }
            Some(ProtectSystem::Strict) => parts.push(gettext("only its own files writable")),
            _ => {}
        }
        match self.protect_home {
            Some(ProtectHome::Yes | ProtectHome::Tmpfs) => {
                parts.push(gettext("home folders hidden"))
            }
            Some(ProtectHome::ReadOnly) => parts.push(gettext("home folders read-only")),
            _ => {}
        }
        // TRANSLATORS: "{done} when {when}" reads e.g. "frozen when near its memory limit".
        let policies = [
            (
                self.on_memory_near_limit,
                gettext_noop("near its memory limit"),
            ),
            (self.on_memory_throttled, gettext_noop("slowed for memory")),
            (self.on_cpu_throttled, gettext_noop("held at its CPU limit")),
            (self.on_memory_pressure, gettext_noop("stalling for memory")),
        ];
        for (action, when) in policies {
            let done = match action {
                Some(PolicyAction::Freeze) => pgettext("policy done", "frozen"),
                Some(PolicyAction::RaiseLimit) => pgettext("policy done", "limit raised"),
                Some(PolicyAction::LowerCpu) => pgettext("policy done", "CPU lowered"),
                Some(PolicyAction::Notify) | None => continue,
            };
            parts.push(gettext_f(
                "{done} when {when}",
                &[("done", &done), ("when", &gettext(when))],
            ));
        }
        let mut text = parts.join(", ");
        if let Some(first) = text.get(..1) {
            let upper = first.to_uppercase();
            text.replace_range(..1, &upper);
        }
        text
    }

    /// The sandboxing settings that are switched on but that a scope cannot honour, because
    /// they need a mount namespace that only systemd's own service setup creates.
    pub fn service_only_settings(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.private_tmp == Some(true) {
            keys.push("private-tmp");
        }
        if self.protect_system.is_some_and(|p| p != ProtectSystem::No) {
            keys.push("protect-system");
        }
        if self.protect_home.is_some_and(|p| p != ProtectHome::No) {
            keys.push("protect-home");
        }
        keys
    }

    /// Settings that contradict each other; the key named first is the one to fix.
    fn problem(&self) -> Option<Problem> {
        self.memory_problem().or_else(|| self.scope_problem())
    }

    /// A soft memory limit above the hard one: never what anyone means.
    fn memory_problem(&self) -> Option<Problem> {
        if let (Some(high), Some(max)) = (self.memory_high, self.memory_max) {
            // Only comparable when both are bytes or both are shares of RAM; a share needs the
            // machine's RAM to compare against bytes, and that is the launcher's business.
            let above = match (high, max) {
                (MemoryLimit::Bytes(h), MemoryLimit::Bytes(m)) => h > m,
                (MemoryLimit::Percent(h), MemoryLimit::Percent(m)) => h > m,
                _ => false,
            };
            if above {
                return Some(Problem {
                    keys: ["memory-high", "memory-max"],
                    message: gettext_f(
                        "memory-high {high} is above memory-max {max}: the soft limit must not exceed the hard limit; lower memory-high or raise memory-max",
                        &[("high", &high), ("max", &max)],
                    ),
                });
            }
        }
        None
    }

    /// Sandboxing on a scope. Refused in the file, where it is a standing mistake; a one-off
    /// launch leaves it to the caller, which may warn and go on (see `service_only_settings`).
    fn scope_problem(&self) -> Option<Problem> {
        if self.mode == Some(Mode::Scope)
            && let Some(key) = self.service_only_settings().first()
        {
            return Some(Problem {
                keys: [key, "mode"],
                message: gettext_f(
                    "it runs as a scope (mode = \"scope\"), and systemd applies {key} only to services; remove {key} or set mode = \"service\"",
                    &[("key", key)],
                ),
            });
        }
        None
    }
}

struct Problem {
    /// The keys involved, the one most likely to be the mistake first.
    keys: [&'static str; 2],
    message: String,
}

fn check_environment(name: &str, value: &str) -> Result<(), String> {
    // systemd.exec(5) "Environment=": names are shell-style variable names.
    let mut chars = name.chars();
    let valid_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(gettext_f(
            "“{name}” is not a valid environment variable name; use letters, digits and _, not starting with a digit",
            &[("name", &name)],
        ));
    }
    if value.contains('\0') {
        return Err(gettext_f(
            "the value of {name} contains a NUL character, which no environment can hold",
            &[("name", &name)],
        ));
    }
    Ok(())
}

fn unknown_setting(key: &str) -> ConfigError {
    ConfigError::UnknownSetting {
        key: key.to_owned(),
        suggestion: closest(key, SETTING_KEYS).map(str::to_owned),
    }
}

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
}

impl Default for General {
    fn default() -> Self {
        General {
            refresh_interval: 1.0,
            memory_warning: 90.0,
            pressure_warning: 20.0,
            pressure_seconds: 10.0,
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

struct Builtin {
    name: &'static str,
    description: &'static str,
    settings: fn() -> Settings,
}

fn share(percent: u32) -> Option<MemoryLimit> {
    Percent::from_permyriad(percent * 100).map(MemoryLimit::Percent)
}

// Sorted by name, so listings and error messages come out in a stable order.
const BUILTINS: [Builtin; 5] = [
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
            "For web browsers: slows down and frees memory above 50% of RAM, killed at 60%, at most 3 CPUs",
        ),
        settings: || Settings {
            memory_high: share(50),
            memory_max: share(60),
            cpu_quota: Some(CpuQuota::Percent(300)),
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
            "For shells and terminal programs: keeps the terminal, at most 70% of RAM",
        ),
        settings: || Settings {
            mode: Some(Mode::Scope),
            memory_max: share(70),
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

fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

fn valid_preset_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

// ---------------------------------------------------------------------------------------------
// The file as serde reads it

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    general: General,
    #[serde(default)]
    presets: BTreeMap<String, PresetTable>,
    #[serde(default)]
    apps: BTreeMap<String, RuleTable>,
}

/// Declares a table with some fields of its own plus every setting, and `into_parts` to split
/// them. Spelled out per table rather than `#[serde(flatten)]`, because flatten turns off
/// `deny_unknown_fields` and loses the line and column of bad values.
macro_rules! settings_table {
    ($name:ident { $($own:ident: $own_ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        struct $name {
            $($own: $own_ty,)*
            mode: Option<Mode>,
            memory_high: Option<MemoryLimit>,
            memory_max: Option<MemoryLimit>,
            memory_swap_max: Option<SwapLimit>,
            cpu_quota: Option<CpuQuota>,
            cpu_weight: Option<CpuWeight>,
            tasks_max: Option<TasksLimit>,
            no_new_privileges: Option<bool>,
            private_tmp: Option<bool>,
            protect_system: Option<ProtectSystem>,
            protect_home: Option<ProtectHome>,
            #[serde(default)]
            environment: BTreeMap<String, String>,
            on_memory_near_limit: Option<PolicyAction>,
            on_memory_throttled: Option<PolicyAction>,
            on_cpu_throttled: Option<PolicyAction>,
            on_memory_pressure: Option<PolicyAction>,
        }

        impl $name {
            fn into_parts(self) -> (($($own_ty,)*), Settings) {
                let $name {
                    $($own,)*
                    mode,
                    memory_high,
                    memory_max,
                    memory_swap_max,
                    cpu_quota,
                    cpu_weight,
                    tasks_max,
                    no_new_privileges,
                    private_tmp,
                    protect_system,
                    protect_home,
                    environment,
                    on_memory_near_limit,
                    on_memory_throttled,
                    on_cpu_throttled,
                    on_memory_pressure,
                } = self;
                let settings = Settings {
                    mode,
                    memory_high,
                    memory_max,
                    memory_swap_max,
                    cpu_quota,
                    cpu_weight,
                    tasks_max,
                    no_new_privileges,
                    private_tmp,
                    protect_system,
                    protect_home,
                    environment,
                    on_memory_near_limit,
                    on_memory_throttled,
                    on_cpu_throttled,
                    on_memory_pressure,
                };
                (($($own,)*), settings)
            }
        }
    };
}

settings_table!(PresetTable {
    description: Option<String>,
});
settings_table!(RuleTable {
    preset: Option<String>,
    last_preset: Option<String>,
});

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

    #[error("{}", gettext_f("unknown preset “{name}”: known presets are {known}{suggestion}", &[("name", .name), ("known", &.known.join(", ")), ("suggestion", &did_you_mean(.suggestion))]))]
    UnknownPreset {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },

    #[error("{}", invalid_preset_name(.name))]
    InvalidPresetName { name: String },

    #[error("{}", gettext_f("unknown setting “{key}”{suggestion}; settings are {settings}", &[("key", .key), ("suggestion", &did_you_mean(.suggestion)), ("settings", &SETTING_KEYS.join(", "))]))]
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

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| gettext_f("; did you mean “{name}”?", &[("name", s)]))
        .unwrap_or_default()
}

fn invalid_preset_name(name: &str) -> String {
    gettext_f(
        "“{name}” is not a valid preset name; use lowercase letters, digits, - and _",
        &[("name", &name)],
    )
}

/// The candidate that `input` is most likely a typo of.
fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    let input_length = input_lower.chars().count();
    candidates
        .into_iter()
        // The distance is at least the difference in length, and neither test below passes
        // when that reaches the candidate's length: skip the quadratic work, which for a
        // 10 MB key took minutes.
        .filter(|c| input_length.abs_diff(c.chars().count()) < c.chars().count())
        .map(|c| (edit_distance(&input_lower, c), c))
        .filter(|&(distance, c)| {
            distance <= 2.max(input.chars().count() / 4) && distance < c.chars().count()
                || (input.len() >= 3 && c.starts_with(&input_lower))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Messages quote the file's own text, which can be huge: a 10 MB key must not make a 10 MB
/// message. Any run of more than 60 characters without a space is cut there, and the whole
/// message at 1000 characters; the line and column still point at the exact spot.
fn shortened(message: String) -> String {
    const LONG_WORD: usize = 60;
    const MAX: usize = 1000;
    if message.len() <= LONG_WORD {
        return message;
    }
    let mut out = String::with_capacity(message.len().min(4 * MAX));
    let (mut word, mut kept) = (0, 0);
    for c in message.chars() {
        word = if c == ' ' { 0 } else { word + 1 };
        if kept == MAX {
            out.push('…');
            break;
        }
        if word <= LONG_WORD {
            out.push(c);
            kept += 1;
        } else if word == LONG_WORD + 1 {
            out.push('…');
            kept += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Finding keys and values in the text, for messages with line and column

/// The file's text with a span-keeping parse, to point errors at the exact key or value.
struct SourceMap<'a> {
    text: &'a str,
    /// Parsed on first use: only an error needs a position, and a valid file (the usual case,
    /// read at every launch) is then parsed once instead of twice.
    doc: std::cell::OnceCell<Option<toml_edit::Document<&'a str>>>,
}

enum Spot {
    Key,
    Value,
}

impl<'a> SourceMap<'a> {
    fn new(text: &'a str) -> Self {
        SourceMap {
            text,
            doc: std::cell::OnceCell::new(),
        }
    }

    fn doc(&self) -> Option<&toml_edit::Document<&'a str>> {
        self.doc
            .get_or_init(|| toml_edit::Document::parse(self.text).ok())
            .as_ref()
    }

    fn entry(&self, path: &[&str]) -> Option<(&toml_edit::Key, &Item)> {
        let (last, parents) = path.split_last()?;
        let mut table: &dyn TableLike = self.doc()?.as_table();
        for part in parents {
            table = table.get(part)?.as_table_like()?;
        }
        table.get_key_value(last)
    }

    fn span(&self, path: &[&str], spot: Spot) -> Option<Range<usize>> {
        let (key, item) = self.entry(path)?;
        match spot {
            Spot::Key => key.span().or_else(|| item.span()),
            Spot::Value => item.span().or_else(|| key.span()),
        }
    }

    /// 1-based line and character column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The key path of the key (`true`) or value (`false`) that starts exactly at `span`.
    fn path_at(&self, span: &Range<usize>) -> Option<(Vec<String>, bool)> {
        fn walk(
            table: &dyn TableLike,
            span: &Range<usize>,
            prefix: &mut Vec<String>,
        ) -> Option<(Vec<String>, bool)> {
            for (name, item) in table.iter() {
                prefix.push(name.to_owned());
                if table.key(name).and_then(toml_edit::Key::span).as_ref() == Some(span) {
                    return Some((prefix.clone(), true));
                }
                if item.is_value() && item.span().as_ref() == Some(span) {
                    return Some((prefix.clone(), false));
                }
                if let Some(inner) = item.as_table_like()
                    && let Some(found) = walk(inner, span, prefix)
                {
                    return Some(found);
                }
                prefix.pop();
            }
            None
        }
        walk(self.doc()?.as_table(), span, &mut Vec::new())
    }
}

/// A key path as TOML writes it: `apps."org.mozilla.firefox".memory-max`.
fn dotted<S: AsRef<str>>(path: &[S]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|part| {
            let part = part.as_ref();
            let bare = !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if bare {
                part.to_owned()
            } else {
                format!("{part:?}")
            }
        })
        .collect();
    parts.join(".")
}

/// The names between backticks in a serde message ("expected one of `a`, `b`").
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Turns toml's and serde's wording into Corral's: says which table, suggests a spelling.
fn explain(message: &str, found: Option<(Vec<String>, bool)>, at_span: &str) -> String {
    let (path, is_key) = found.unwrap_or_default();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known = backticked(expected);
        let table = match path.split_last() {
            Some((_, parents)) if !parents.is_empty() => {
                gettext_f(" in [{table}]", &[("table", &dotted(parents))])
            }
            _ => String::new(),
        };
        let hint = closest(field, known.iter().copied())
            .map(|s| gettext_f(" (did you mean “{name}”?)", &[("name", &s)]))
            .unwrap_or_default();
        let listed = if known.is_empty() {
            String::new()
        } else {
            gettext_f(
                "; the keys allowed here are {keys}",
                &[("keys", &known.join(", "))],
            )
        };
        return gettext_f(
            "unknown key “{key}”{table}{suggestion}{keys}",
            &[
                ("key", &field),
                ("table", &table),
                ("suggestion", &hint),
                ("keys", &listed),
            ],
        );
    }
    let prefix = if path.is_empty() || is_key {
        String::new()
    } else {
        format!("{}: ", dotted(&path))
    };
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known = backticked(expected);
        let hint = closest(word, known.iter().copied())
            .map(|s| gettext_f(" (did you mean “{name}”?)", &[("name", &s)]))
            .unwrap_or_default();
        return prefix
            + &gettext_f(
                "“{word}” is not one of {words}{suggestion}",
                &[
                    ("word", &word),
                    ("words", &known.join(", ")),
                    ("suggestion", &hint),
                ],
            );
    }
    if message.ends_with("expected a boolean") {
        return prefix
            + &gettext_f(
                "write true or false, without quotes (found {value})",
                &[("value", &at_span)],
            );
    }
    if message == "duplicate key" && !at_span.is_empty() {
        return prefix + &gettext_f("the key “{key}” appears twice", &[("key", &at_span)]);
    }
    format!("{prefix}{message}")
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

    /// Reads [`Config::path`]; a missing file means the built-ins only.
    pub fn load() -> Result<Config, ConfigError> {
        Self::load_from(&Self::path())
    }

    pub fn load_from(path: &Path) -> Result<Config, ConfigError> {
        match read_if_exists(path)? {
            Some(text) => Self::parse(&text, path),
            None => Ok(Config::default()),
        }
    }

    /// Parses and validates the file's text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let source = SourceMap::new(text);
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = source.position(span.map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: shortened(message),
            }
        };

        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let found = span.as_ref().and_then(|s| source.path_at(s));
            let at_span = span.clone().and_then(|s| text.get(s)).unwrap_or("");
            at(span, explain(e.message(), found, at_span))
        })?;

        let mut config = Config {
            general: file.general,
            ..Config::default()
        };
        for (name, table) in file.presets {
            if !valid_preset_name(&name) {
                return Err(at(
                    source.span(&["presets", &name], Spot::Key),
                    invalid_preset_name(&name),
                ));
            }
            let ((description,), settings) = table.into_parts();
            check_environment_table(&settings, &["presets", &name], &source, &at)?;
            config.presets.insert(
                name,
                PresetDef {
                    description,
                    settings,
                },
            );
        }
        for name in config.presets.keys() {
            let preset = config.preset(name)?;
            if let Some(problem) = preset.settings.problem() {
                let span = problem
                    .keys
                    .iter()
                    .find_map(|key| source.span(&["presets", name, key], Spot::Value))
                    .or_else(|| source.span(&["presets", name], Spot::Key));
                return Err(at(
                    span,
                    gettext_f(
                        "preset “{name}”: {problem}",
                        &[("name", name), ("problem", &problem.message)],
                    ),
                ));
            }
        }

        let known = config.preset_names();
        for (key, table) in file.apps {
            let ((preset, last_preset), settings) = table.into_parts();
            let here = ["apps", key.as_str()];
            if key.is_empty() {
                return Err(at(
                    source.span(&here, Spot::Key),
                    gettext("a rule needs an app id or executable name, not an empty key"),
                ));
            }
            check_environment_table(&settings, &here, &source, &at)?;
            let chosen = preset.as_deref().unwrap_or(DEFAULT_PRESET);
            let base = match config.preset(chosen) {
                Ok(base) => base,
                Err(unknown) => {
                    return Err(at(
                        source.span(&["apps", &key, "preset"], Spot::Value),
                        // TRANSLATORS: {error} is "unknown preset “x”: known presets are …".
                        gettext_f(
                            "the rule for “{key}” names an {error}",
                            &[("key", &key), ("error", &unknown)],
                        ),
                    ));
                }
            };
            let mut merged = base.settings;
            merged.overlay(&settings);
            if let Some(problem) = merged.problem() {
                let span = problem
                    .keys
                    .iter()
                    .find_map(|k| source.span(&["apps", &key, k], Spot::Value))
                    .or_else(|| source.span(&["apps", &key, "preset"], Spot::Value))
                    .or_else(|| source.span(&here, Spot::Key));
                return Err(at(
                    span,
                    gettext_f(
                        "the rule for “{key}” (preset “{preset}”): {problem}",
                        &[
                            ("key", &key),
                            ("preset", &chosen),
                            ("problem", &problem.message),
                        ],
                    ),
                ));
            }
            // A stale memory of a deleted preset is no reason to refuse the whole file.
            let last_preset = last_preset.filter(|p| known.contains(p));
            config.apps.insert(
                key,
                AppRule {
                    preset,
                    last_preset,
                    settings,
                },
            );
        }
        Ok(config)
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

fn check_environment_table(
    settings: &Settings,
    table: &[&str],
    source: &SourceMap<'_>,
    at: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (name, value) in &settings.environment {
        if let Err(message) = check_environment(name, value) {
            let mut path = table.to_vec();
            path.extend(["environment", name.as_str()]);
            return Err(at(source.span(&path, Spot::Key), message));
        }
    }
    Ok(())
}

fn read_if_exists(path: &Path) -> Result<Option<String>, ConfigError> {
    // Capped (crate::paths): a huge file or a FIFO is an error, not a hang.
    let read =
        crate::paths::read_capped(path, crate::paths::CONFIG_MAX_BYTES, true).and_then(|bytes| {
            String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        });
    match read {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Editing and saving

/// Changes to the file that keep everything else in it (comments, order, spacing) as it was.
/// Each change is checked at once and undone if it would make the file invalid.
#[derive(Debug)]
pub struct ConfigEditor {
    path: PathBuf,
    doc: DocumentMut,
    /// The text as read, to notice edits made by someone else before we overwrite them.
    on_disk: Option<String>,
}

impl ConfigEditor {
    /// Opens the file for editing; a missing file starts empty. A file that does not load as a
    /// [`Config`] is refused with the same error loading gives, and will not be written.
    pub fn open(path: impl Into<PathBuf>) -> Result<ConfigEditor, ConfigError> {
        let path = path.into();
        let on_disk = read_if_exists(&path)?;
        let text = on_disk.as_deref().unwrap_or("");
        Config::parse(text, &path)?;
        // toml and toml_edit share one parser, so this only fails if they ever diverge.
        let doc = text.parse::<DocumentMut>().map_err(|e| {
            let (line, column) = SourceMap::new(text).position(e.span().map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.clone(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        Ok(ConfigEditor { path, doc, on_disk })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration as it stands with the edits made so far.
    pub fn config(&self) -> Result<Config, ConfigError> {
        Config::parse(&self.doc.to_string(), &self.path)
    }

    /// The file's text as it stands with the edits made so far.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Makes `app_id` (or executable name) use `preset`.
    pub fn set_rule_preset(&mut self, app_id: &str, preset: &str) -> Result<(), ConfigError> {
        self.config()?.preset(preset)?;
        self.edit(|doc| {
            set_value(
                entry_table(doc, "apps", app_id)?,
                "preset",
                Value::from(preset),
            );
            Ok(())
        })
    }

    /// Remembers the preset last chosen for `app_id` in the launcher.
    pub fn set_last_preset(&mut self, app_id: &str, preset: &str) -> Result<(), ConfigError> {
        self.config()?.preset(preset)?;
        self.edit(|doc| {
            set_value(
                entry_table(doc, "apps", app_id)?,
                "last-preset",
                Value::from(preset),
            );
            Ok(())
        })
    }

    /// Sets one override in the rule for `app_id` from text as typed ("4G", "250%", "yes").
    /// `environment` takes `NAME=value` and adds that one variable.
    pub fn set_rule_setting(
        &mut self,
        app_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        let mut parsed = Settings::default();
        parsed.set(key, value)?;
        self.edit(|doc| {
            let table = entry_table(doc, "apps", app_id)?;
            if key == "environment" {
                let env = env_table(table)?;
                for (name, value) in &parsed.environment {
                    set_value(env, name, Value::from(value.as_str()));
                }
            } else if let Some(value) = parsed.toml_value(key) {
                set_value(table, key, value);
            }
            Ok(())
        })
    }

    /// Removes one override from the rule for `app_id`; false if it was not there.
    pub fn remove_rule_setting(&mut self, app_id: &str, key: &str) -> Result<bool, ConfigError> {
        if !SETTING_KEYS.contains(&key) {
            return Err(unknown_setting(key));
        }
        let mut removed = false;
        self.edit(|doc| {
            if let Some(table) = existing_table(doc, "apps", app_id) {
                removed = table.remove(key).is_some();
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Removes the whole rule for `app_id`; false if there was none.
    pub fn remove_rule(&mut self, app_id: &str) -> Result<bool, ConfigError> {
        let mut removed = false;
        self.edit(|doc| {
            if let Some(apps) = doc.get_mut("apps").and_then(Item::as_table_like_mut) {
                removed = apps.remove(app_id).is_some();
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Writes `settings` as the file's definition of preset `name`: keys set in `settings` are
    /// written, the others are removed from the file (for a built-in they fall back to the
    /// built-in values). The description is left alone.
    pub fn set_preset(&mut self, name: &str, settings: &Settings) -> Result<(), ConfigError> {
        if !valid_preset_name(name) {
            return Err(ConfigError::InvalidPresetName {
                name: name.to_owned(),
            });
        }
        self.edit(|doc| {
            let table = entry_table(doc, "presets", name)?;
            for key in SETTING_KEYS {
                if key == "environment" {
                    if settings.environment.is_empty() {
                        table.remove(key);
                        continue;
                    }
                    let env = env_table(table)?;
                    let stale: Vec<String> = env
                        .iter()
                        .map(|(name, _)| name.to_owned())
                        .filter(|name| !settings.environment.contains_key(name))
                        .collect();
                    for name in stale {
                        env.remove(&name);
                    }
                    for (name, value) in &settings.environment {
                        set_value(env, name, Value::from(value.as_str()));
                    }
                } else {
                    match settings.toml_value(key) {
                        Some(value) => set_value(table, key, value),
                        None => {
                            table.remove(key);
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Sets or (with `None`) removes the description of preset `name` in the file.
    pub fn set_preset_description(
        &mut self,
        name: &str,
        description: Option<&str>,
    ) -> Result<(), ConfigError> {
        if !valid_preset_name(name) {
            return Err(ConfigError::InvalidPresetName {
                name: name.to_owned(),
            });
        }
        self.edit(|doc| {
            let table = entry_table(doc, "presets", name)?;
            match description {
                Some(text) => set_value(table, "description", Value::from(text)),
                None => {
                    table.remove("description");
                }
            }
            Ok(())
        })
    }

    /// Removes preset `name` from the file (a built-in goes back to its shipped values);
    /// false if the file did not define it. Refused while a rule still uses a preset that
    /// would then no longer exist.
    pub fn remove_preset(&mut self, name: &str) -> Result<bool, ConfigError> {
        if builtin(name).is_none() {
            let users: Vec<String> = self
                .config()?
                .rules()
                .filter(|(_, rule)| rule.preset.as_deref() == Some(name))
                .map(|(key, _)| key.to_owned())
                .collect();
            if !users.is_empty() {
                return Err(ConfigError::PresetInUse {
                    name: name.to_owned(),
                    rules: users,
                });
            }
        }
        let mut removed = false;
        self.edit(|doc| {
            if let Some(presets) = doc.get_mut("presets").and_then(Item::as_table_like_mut) {
                removed = presets.remove(name).is_some();
            }
            Ok(())
        })?;
        Ok(removed)
    }

    /// Writes the file atomically (a temporary file in the same directory, fsync, rename), so
    /// a crash or a full disk leaves the old file whole. Refuses when the file changed on disk
    /// since it was opened or last saved.
    pub fn save(&mut self) -> Result<(), ConfigError> {
        let text = self.doc.to_string();
        // Every edit was checked already; this guards the file against a bug in the editing.
        Config::parse(&text, &self.path).map_err(invalid_edit)?;
        if read_if_exists(&self.path)? != self.on_disk {
            return Err(ConfigError::ChangedOnDisk {
                path: self.path.clone(),
            });
        }
        // Nothing changed: no write, and no empty file where there was none.
        if self.on_disk.as_deref().unwrap_or("") == text {
            return Ok(());
        }
        write_atomically(&self.path, &text)?;
        self.on_disk = Some(text);
        Ok(())
    }

    /// Sets one key of the `[general]` table, e.g. `refresh-interval` to 2.0; the edit is
    /// refused if the value is out of the key's range.
    pub fn set_general(&mut self, key: &str, value: f64) -> Result<(), ConfigError> {
        self.edit(|doc| {
            let general = doc
                .entry("general")
                .or_insert_with(|| Item::Table(Table::new()));
            let table = general
                .as_table_like_mut()
                .ok_or_else(|| ConfigError::InvalidEdit {
                    message: gettext("general in the file is not a table"),
                })?;
            set_value(table, key, Value::from(value));
            Ok(())
        })
    }

    /// Applies `change` to a copy of the document and keeps it only if the result is valid.
    fn edit(
        &mut self,
        change: impl FnOnce(&mut DocumentMut) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let mut doc = self.doc.clone();
        change(&mut doc)?;
        Config::parse(&doc.to_string(), &self.path).map_err(invalid_edit)?;
        self.doc = doc;
        Ok(())
    }
}

/// The file-position wording is for the user's own mistakes; for an edit it would mislead.
fn invalid_edit(error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Syntax { message, .. } => ConfigError::InvalidEdit { message },
        other => other,
    }
}

/// `[section.name]`, created (as a `[section.name]` header) if missing.
fn entry_table<'a>(
    doc: &'a mut DocumentMut,
    section: &str,
    name: &str,
) -> Result<&'a mut dyn TableLike, ConfigError> {
    let parent = doc.entry(section).or_insert_with(|| {
        // Implicit, so the file gets only `[apps."x"]` and no empty `[apps]` header.
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    let not_a_table = |what: String| ConfigError::InvalidEdit {
        message: gettext_f("{table} in the file is not a table", &[("table", &what)]),
    };
    let item = match parent {
        Item::Table(table) => table
            .entry(name)
            .or_insert_with(|| Item::Table(Table::new())),
        Item::Value(Value::InlineTable(table)) => {
            let value = table
                .entry(name)
                .or_insert_with(|| Value::InlineTable(InlineTable::new()));
            return value
                .as_inline_table_mut()
                .map(|t| t as &mut dyn TableLike)
                .ok_or_else(|| not_a_table(dotted(&[section, name])));
        }
        _ => return Err(not_a_table(section.to_owned())),
    };
    item.as_table_like_mut()
        .ok_or_else(|| not_a_table(dotted(&[section, name])))
}

fn existing_table<'a>(
    doc: &'a mut DocumentMut,
    section: &str,
    name: &str,
) -> Option<&'a mut dyn TableLike> {
    doc.get_mut(section)?
        .as_table_like_mut()?
        .get_mut(name)?
        .as_table_like_mut()
}

/// The `environment` table inside `table`, created inline if missing.
fn env_table(table: &mut dyn TableLike) -> Result<&mut dyn TableLike, ConfigError> {
    if !table.contains_key("environment") {
        table.insert(
            "environment",
            Item::Value(Value::InlineTable(InlineTable::new())),
        );
    }
    table
        .get_mut("environment")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| ConfigError::InvalidEdit {
            message: gettext("environment in the file is not a table"),
        })
}

/// Sets `key`, keeping the spacing and trailing comment of the value it replaces.
fn set_value(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(other) => *other = Item::Value(value),
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    write_atomically_as(path, text, crate::paths::effective_uid())
}

/// [`write_atomically`] for a process whose effective uid is `euid`.
fn write_atomically_as(path: &Path, text: &str, euid: u32) -> Result<(), ConfigError> {
    // Write through a symlink (dotfile managers link config files) instead of replacing it,
    // but only to a file of our own: a link to someone else's file was not made by us (root
    // given a user's HOME by sudo -E would otherwise write wherever that user points it).
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::canonicalize(path).map_err(|source| ConfigError::Write {
                path: path.to_owned(),
                source,
            })?;
            let owner = fs::metadata(&target).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
            if owner.is_ok_and(|uid| uid != euid) {
                return Err(ConfigError::Write {
                    path: path.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        crate::i18n::gettext_f(
                            "it is a link to {target}, a file of another user, which Corral does not write through",
                            &[("target", &target.display())],
                        ),
                    ),
                });
            }
            target
        }
        _ => path.to_owned(),
    };
    let write_error = |source| ConfigError::Write {
        path: target.clone(),
        source,
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    // The XDG Base Directory spec asks for 0700 on directories it makes us create.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(write_error)?;
    let mut tmp_name = target.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let write_tmp = || -> io::Result<()> {
        // A leftover from an interrupted save is removed, never reused: opened in place, a
        // symlink there would be followed (writing some other file) and then renamed over the
        // config. create_new (O_EXCL) does not follow a symlink that appears meanwhile.
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // `mode` is filtered through the umask: set it outright, so the file is the user's
        // alone whatever the umask.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        // Data on disk before the rename makes it visible, or a crash could leave it empty.
        file.sync_all()?;
        fs::rename(&tmp, &target)
    };
    if let Err(source) = write_tmp() {
        // Best effort: the old file is untouched either way, the tmp file is only litter.
        let _ = fs::remove_file(&tmp);
        return Err(write_error(source));
    }
    // Makes the rename itself durable; the new file is already in place, so a failure here
    // is not worth reporting as a failed save.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Bytes;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/home/u/.config/corral/config.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The (line, column, message) of a file that must be refused.
    fn refused(text: &str) -> (usize, usize, String) {
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

    fn mem(s: &str) -> Option<MemoryLimit> {
        Some(s.parse().unwrap())
    }

    fn names(config: &Config) -> Vec<String> {
        config.presets().into_iter().map(|p| p.name).collect()
    }

    const COMMENTED: &str = "\
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

    #[test]
    fn settings_read_in_plain_words() {
        let config = Config::default();
        let words = |name: &str| config.preset(name).unwrap().settings.plain_words();
        assert_eq!(
            words("browser"),
            "Slowed down above 50 % of RAM, killed above 60 % of RAM, at most 3 CPUs"
        );
        let mut settings = Settings::default();
        assert_eq!(settings.plain_words(), "");
        for (key, value) in [
            ("memory-max", "64M"),
            ("memory-swap-max", "0"),
            ("cpu-quota", "200%"),
            ("tasks-max", "100"),
            ("private-tmp", "yes"),
            ("on-memory-near-limit", "freeze"),
        ] {
            settings.set(key, value).unwrap();
        }
        assert_eq!(
            settings.plain_words(),
            "Killed above 64 MiB, no swap, at most 2 CPUs, at most 100 processes, private /tmp, \
             frozen when near its memory limit"
        );
    }

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
            "memory-high=50%, memory-max=60%, cpu-quota=300%"
        );
        assert_eq!(summary("shell"), "mode=scope, memory-max=70%");
        assert_eq!(
            summary("background"),
            "memory-high=30%, memory-max=40%, cpu-quota=50%, cpu-weight=20"
        );
    }

    #[test]
    fn missing_file_means_builtins_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load_from(&dir.path().join("nope/config.toml")).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.general, General::default());
        assert_eq!(config.rules().count(), 0);
    }

    #[test]
    fn unreadable_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading fails with something other than
        // "not found".
        let err = Config::load_from(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", dir.path().display())),
            "{err}"
        );
    }

    #[test]
    fn file_overrides_one_field_of_a_builtin_and_keeps_the_rest() {
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
    fn file_adds_a_preset() {
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
    fn every_setting_is_read_from_the_file() {
        let config = parse(
            "[presets.all]
mode = \"service\"
memory-high = \"1G\"
memory-max = \"2G\"
memory-swap-max = \"max\"
cpu-quota = \"250%\"
cpu-weight = 50
tasks-max = 512
no-new-privileges = true
private-tmp = false
protect-system = \"strict\"
protect-home = \"read-only\"
environment = { MOZ_ENABLE_WAYLAND = \"1\" }
on-memory-near-limit = \"freeze\"
on-memory-throttled = \"raise-limit\"
on-cpu-throttled = \"lower-cpu\"
on-memory-pressure = \"notify\"
",
        );
        let s = config.preset("all").unwrap().settings;
        assert_eq!(s.entries().len(), SETTING_KEYS.len());
        assert_eq!(s.tasks_max, Some(TasksLimit::Count(512)));
        assert_eq!(s.memory_swap_max, Some(SwapLimit(MemoryLimit::Unlimited)));
        assert_eq!(s.protect_home, Some(ProtectHome::ReadOnly));
        assert_eq!(s.environment["MOZ_ENABLE_WAYLAND"], "1");
        assert_eq!(s.on_cpu_throttled, Some(PolicyAction::LowerCpu));
        // systemd's booleans are accepted for the protect-* settings too.
        let s = parse("[presets.p]\nprotect-system = true\nprotect-home = false\n")
            .preset("p")
            .unwrap()
            .settings;
        assert_eq!(s.protect_system, Some(ProtectSystem::Yes));
        assert_eq!(s.protect_home, Some(ProtectHome::No));
    }

    #[test]
    fn resolution_order() {
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
    fn rules_match_app_ids_then_executable_names() {
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
    fn caller_overrides_that_contradict_are_refused() {
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
    fn syntax_error_has_line_and_column() {
        let (line, column, message) = refused("[presets.browser]\n# note\nmemory-max = 4G\n");
        assert_eq!((line, column), (3, 14));
        assert!(message.contains("must be quoted"), "{message}");

        let (line, column, message) = refused("[presets.browser\nmemory-max = \"4G\"\n");
        assert_eq!((line, column), (1, 17));
        assert!(!message.is_empty());
    }

    #[test]
    fn unknown_key_has_line_column_and_a_suggestion() {
        let text = "# mine\n[presets.compile]\ncpu-weight = 20\n  memroy-max = \"4G\"\n";
        let (line, column, message) = refused(text);
        assert_eq!((line, column), (4, 3));
        assert!(
            message.starts_with(
                "unknown key “memroy-max” in [presets.compile] (did you mean “memory-max”?); \
                 the keys allowed here are description, mode, memory-high,"
            ),
            "{message}"
        );

        let (line, column, message) = refused("[general]\n\n[preset.browser]\n");
        assert_eq!((line, column), (3, 2));
        assert!(
            message.starts_with("unknown key “preset” (did you mean “presets”?)"),
            "{message}"
        );
    }

    #[test]
    fn bad_value_has_line_column_and_the_limit_error() {
        let text = "[apps.\"org.mozilla.firefox\"]\npreset = \"browser\"\nmemory-max = \"4X\"\n";
        let err = Config::parse(text, Path::new("/home/u/.config/corral/config.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/u/.config/corral/config.toml:3:14: apps.\"org.mozilla.firefox\".memory-max: \
             “4X” is not a valid memory limit: the unit after the number is not one of K, M, G, \
             T; use a size such as 512M or 4G (K, M, G, T are powers of 1024), a share of RAM \
             such as 70%, or max — fix the file; Corral has not changed it"
        );

        let (line, column, message) = refused("[presets.x]\nmode = \"servce\"\n");
        assert_eq!((line, column), (2, 8));
        assert_eq!(
            message,
            "presets.x.mode: “servce” is not one of service, scope (did you mean “service”?)"
        );

        let (line, column, message) = refused("[presets.x]\nprotect-home = \"readonly\"\n");
        assert_eq!((line, column), (2, 16));
        assert!(
            message.contains("use no, yes, read-only or tmpfs"),
            "{message}"
        );

        let (line, column, message) = refused("[general]\nrefresh-interval = 0.01\n");
        assert_eq!((line, column), (2, 20));
        assert!(message.contains("use 0.1 to 60"), "{message}");

        let (line, column, message) = refused("[general]\nmemory-warning = \"120%\"\n");
        assert_eq!((line, column), (2, 18));
        assert!(message.contains("use 1 to 100"), "{message}");
        assert_eq!(
            parse("[general]\nmemory-warning = \"85%\"\n")
                .general
                .memory_warning,
            85.0
        );

        let (line, column, message) = refused("[general]\npressure-warning = 0\n");
        assert_eq!((line, column), (2, 20));
        assert!(message.contains("use 1 to 100"), "{message}");
        let (line, column, message) = refused("[general]\npressure-seconds = 0.5\n");
        assert_eq!((line, column), (2, 20));
        assert!(message.contains("use 1 to 600"), "{message}");
        let (_, _, message) = refused("[general]\npressure-warning = \"lots\"\n");
        assert!(message.contains("write it as 90 or"), "{message}");
        let general = parse(
            "[general]\nmemory-warning = 85\npressure-warning = \"30%\"\npressure-seconds = 5\n",
        )
        .general;
        assert_eq!(
            (
                general.memory_warning,
                general.pressure_warning,
                general.pressure_seconds
            ),
            (85.0, 30.0, 5.0)
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let (line, column, _) =
            refused("[presets.x]\ndescription = \"für Bücher\" ; memory-max = \"1G\"\n");
        assert_eq!((line, column), (2, 28));
    }

    #[test]
    fn unknown_preset_in_a_rule_names_the_rule_and_line() {
        let text = "[apps.firefox]\n\n[apps.\"org.gnome.Terminal\"]\npreset   = \"brwser\"\n";
        let (line, column, message) = refused(text);
        assert_eq!((line, column), (4, 12));
        assert_eq!(
            message,
            "the rule for “org.gnome.Terminal” names an unknown preset “brwser”: known presets \
             are background, browser, relaxed, shell, strict; did you mean “browser”?"
        );
        // A preset defined in the file is a known preset.
        parse("[apps.x]\npreset = \"mine\"\n[presets.mine]\ncpu-weight = 5\n");
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
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
    fn soft_limit_above_hard_limit_names_the_preset() {
        let (line, column, message) =
            refused("[presets.big]\nmemory-max = \"4G\"\nmemory-high = \"6G\"\n");
        assert_eq!((line, column), (3, 15));
        assert!(
            message.starts_with("preset “big”: memory-high 6G is above memory-max 4G"),
            "{message}"
        );
        // Lowering only the hard limit of a built-in collides with its soft limit.
        let (line, column, message) = refused("[presets.browser]\nmemory-max = \"40%\"\n");
        assert_eq!((line, column), (2, 14));
        assert!(
            message.contains("memory-high 50% is above memory-max 40%"),
            "{message}"
        );
        // Different kinds cannot be compared without knowing the RAM, so both are allowed.
        parse("[presets.x]\nmemory-high = \"6G\"\nmemory-max = \"50%\"\n");
        // In a rule, on top of its preset.
        let (line, column, message) =
            refused("[apps.firefox]\npreset = \"browser\"\nmemory-max = \"20%\"\n");
        assert_eq!((line, column), (3, 14));
        assert!(
            message.starts_with("the rule for “firefox” (preset “browser”): memory-high 50%"),
            "{message}"
        );
    }

    #[test]
    fn other_refusals_are_located() {
        let (line, column, message) = refused("[presets.\"My Preset\"]\ncpu-weight = 5\n");
        assert_eq!((line, column), (1, 10));
        assert!(message.contains("not a valid preset name"), "{message}");

        let (line, column, message) = refused("[presets.shell]\n\nprivate-tmp = true\n");
        assert_eq!((line, column), (3, 15));
        assert!(
            message.starts_with("preset “shell”: it runs as a scope"),
            "{message}"
        );

        let (line, column, message) =
            refused("[apps.x]\nenvironment = { GOOD = \"1\", 2BAD = \"x\" }\n");
        assert_eq!((line, column), (2, 29));
        assert!(
            message.contains("“2BAD” is not a valid environment"),
            "{message}"
        );

        let (line, column, message) = refused("[presets.a]\ncpu-weight = 1\ncpu-weight = 2\n");
        assert_eq!((line, column), (3, 1));
        assert!(message.contains("“cpu-weight” appears twice"), "{message}");
    }

    #[test]
    fn stale_last_preset_is_dropped_not_refused() {
        let config = parse("[apps.x]\nlast-preset = \"gone\"\n[apps.y]\nlast-preset = \"shell\"\n");
        assert_eq!(config.rule_for("x", None).unwrap().last_preset, None);
        assert_eq!(
            config.rule_for("y", None).unwrap().last_preset.as_deref(),
            Some("shell")
        );
    }

    #[test]
    fn config_path_follows_xdg() {
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

    #[test]
    fn settings_from_text() {
        let mut s = Settings::default();
        s.set("cpu-quota", "250%").unwrap();
        s.set("no-new-privileges", "on").unwrap();
        s.set("environment", "GDK_BACKEND=wayland").unwrap();
        assert_eq!(
            s.summary(),
            "cpu-quota=250%, no-new-privileges=true, environment=GDK_BACKEND=wayland"
        );
        assert_eq!(
            s.set("memroy-max", "1G").unwrap_err().to_string(),
            format!(
                "unknown setting “memroy-max”; did you mean “memory-max”?; settings are {}",
                SETTING_KEYS.join(", ")
            )
        );
        let err = s.set("cpu-quota", "2.5").unwrap_err().to_string();
        assert!(
            err.starts_with("cpu-quota: “2.5” is not a valid CPU quota"),
            "{err}"
        );
        assert!(s.set("private-tmp", "maybe").is_err());
        assert!(s.set("environment", "NOEQUALS").is_err());
        s.unset("cpu-quota").unwrap();
        assert_eq!(s.cpu_quota, None);

        let mut base = Config::default().preset("browser").unwrap().settings;
        let mut top = Settings::default();
        top.set("memory-max", "max").unwrap();
        top.set("environment", "A=1").unwrap();
        base.environment.insert("B".into(), "2".into());
        base.overlay(&top);
        assert_eq!(base.memory_max, Some(MemoryLimit::Unlimited));
        assert_eq!(base.memory_high, mem("50%"));
        assert_eq!(base.environment.len(), 2);
    }

    // ----- editing -----

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral/config.toml");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn editor_keeps_comments_and_formatting() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor
            .set_rule_setting("org.mozilla.firefox", "memory-high", "2.5G")
            .unwrap();
        editor
            .set_last_preset("org.mozilla.firefox", "strict")
            .unwrap();
        editor.set_rule_preset("code", "compile").unwrap();
        editor.save().unwrap();
        let expected = COMMENTED.replace(
            "memory-high = \"3G\"             # overrides on top of the preset\n",
            "memory-high = \"2560M\"             # overrides on top of the preset\n\
             last-preset = \"strict\"\n",
        ) + "\n[apps.code]\npreset = \"compile\"\n";
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
        let config = Config::load_from(&path).unwrap();
        let r = config
            .resolve("org.mozilla.firefox", None, None, &Settings::default())
            .unwrap();
        assert_eq!(r.settings.memory_high, mem("2560M"));
        assert_eq!(r.preset, "browser");
    }

    #[test]
    fn editor_changes_presets_in_place() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        let mut browser = Settings::default();
        browser.set("memory-max", "5G").unwrap();
        browser.set("tasks-max", "4096").unwrap();
        editor.set_preset("browser", &browser).unwrap();
        editor.save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            COMMENTED.replace(
                "memory-max   = \"4G\"          # hard cap\n",
                "memory-max   = \"5G\"          # hard cap\ntasks-max = 4096\n"
            )
        );

        // Removing the built-in's table brings back the shipped values; a new preset is added.
        let mut editor = ConfigEditor::open(&path).unwrap();
        assert!(editor.remove_preset("browser").unwrap());
        assert!(!editor.remove_preset("browser").unwrap());
        let mut video = Settings::default();
        video.set("cpu-weight", "200").unwrap();
        video.set("environment", "LIBVA_DRIVER_NAME=iHD").unwrap();
        editor.set_preset("video", &video).unwrap();
        editor
            .set_preset_description("video", Some("Video editing"))
            .unwrap();
        editor.save().unwrap();
        let config = Config::load_from(&path).unwrap();
        assert_eq!(
            config.preset("browser").unwrap(),
            Config::default().preset("browser").unwrap()
        );
        let video_back = config.preset("video").unwrap();
        assert_eq!(video_back.settings, video);
        assert_eq!(video_back.description, "Video editing");
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("# Builds\n[presets.compile]")
        );
    }

    #[test]
    fn every_setting_round_trips_through_the_editor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut all = Settings::default();
        for (key, value) in [
            ("mode", "service"),
            ("memory-high", "1.5G"),
            ("memory-max", "2G"),
            ("memory-swap-max", "12.5%"),
            ("cpu-quota", "max"),
            ("cpu-weight", "10000"),
            ("tasks-max", "max"),
            ("no-new-privileges", "yes"),
            ("private-tmp", "no"),
            ("protect-system", "strict"),
            ("protect-home", "tmpfs"),
            ("environment", "A=b c"),
            ("on-memory-near-limit", "raise-limit"),
            ("on-memory-throttled", "freeze"),
            ("on-cpu-throttled", "notify"),
            ("on-memory-pressure", "lower-cpu"),
        ] {
            all.set(key, value).unwrap();
        }
        assert_eq!(all.entries().len(), SETTING_KEYS.len());
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor.set_preset("all", &all).unwrap();
        editor.save().unwrap();
        assert_eq!(
            Config::load_from(&path)
                .unwrap()
                .preset("all")
                .unwrap()
                .settings,
            all
        );
    }

    #[test]
    fn editor_refuses_a_malformed_file_and_leaves_it_alone() {
        for bad in [
            "# mine\n[presets.browser\nmemory-max = \"4G\"\n",
            "[presets.browser]\nmemroy-max = \"4G\"\n",
        ] {
            let (_dir, path) = file_with(bad);
            let err = ConfigEditor::open(&path).unwrap_err();
            assert!(
                matches!(err, ConfigError::Syntax { line: 2, .. }),
                "{err:?}"
            );
            assert!(err.to_string().ends_with("Corral has not changed it"));
            assert_eq!(fs::read_to_string(&path).unwrap(), bad);
            let entries: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
            assert_eq!(entries.len(), 1, "no tmp file either");
        }
    }

    #[test]
    fn editor_refuses_invalid_edits_and_keeps_the_document() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        let before = editor.text();

        let err = editor
            .set_rule_setting("org.mozilla.firefox", "memory-max", "2G")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the rule for “org.mozilla.firefox” (preset “browser”): memory-high 3G is above \
             memory-max 2G: the soft limit must not exceed the hard limit; lower memory-high or \
             raise memory-max; Corral did not make the change"
        );
        let err = editor.set_rule_preset("x", "brwser").unwrap_err();
        assert!(err.to_string().contains("did you mean “browser”"), "{err}");
        let err = editor
            .set_rule_setting("x", "memory-max", "4X")
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidSetting { .. }), "{err:?}");
        let err = editor
            .set_preset("Big One", &Settings::default())
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidPresetName { .. }),
            "{err:?}"
        );
        assert_eq!(editor.text(), before);
    }

    #[test]
    fn removing_a_preset_in_use_is_refused() {
        let (_dir, path) =
            file_with("[presets.mine]\ncpu-weight = 5\n[apps.a]\npreset = \"mine\"\n");
        let mut editor = ConfigEditor::open(&path).unwrap();
        let err = editor.remove_preset("mine").unwrap_err();
        assert_eq!(
            err.to_string(),
            "preset “mine” is still used by the rules for a; change those rules first"
        );
        assert!(editor.remove_rule("a").unwrap());
        assert!(editor.remove_preset("mine").unwrap());
        editor.save().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn rule_settings_can_be_removed() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        assert!(
            editor
                .remove_rule_setting("org.mozilla.firefox", "memory-high")
                .unwrap()
        );
        assert!(!editor.remove_rule_setting("nobody", "memory-high").unwrap());
        assert!(editor.remove_rule_setting("x", "memory-hihg").is_err());
        let rule = editor.config().unwrap();
        let rule = rule.rule_for("org.mozilla.firefox", None).unwrap();
        assert!(rule.settings.is_empty());
    }

    #[test]
    fn editor_sets_general_keys_and_refuses_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n[general]\nrefresh-interval = 1.0 # keep\n").unwrap();
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor.set_general("refresh-interval", 2.5).unwrap();
        assert!(editor.set_general("refresh-interval", 0.0).is_err());
        editor.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("refresh-interval = 2.5 # keep"), "{text}");
        assert!(text.starts_with("# mine"), "{text}");
        assert_eq!(
            Config::load_from(&path).unwrap().general.refresh_interval,
            2.5
        );
    }

    #[test]
    fn save_creates_a_private_file_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh/corral/config.toml");
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor
            .set_rule_preset("org.mozilla.firefox", "browser")
            .unwrap();
        editor.save().unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[apps.\"org.mozilla.firefox\"]\npreset = \"browser\"\n"
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.toml"]);

        // A second save of more changes works from the saved state.
        editor
            .set_last_preset("org.mozilla.firefox", "strict")
            .unwrap();
        editor.save().unwrap();
        let config = Config::load_from(&path).unwrap();
        let rule = config.rule_for("org.mozilla.firefox", None).unwrap();
        assert_eq!(rule.last_preset.as_deref(), Some("strict"));
    }

    #[test]
    fn failed_save_leaves_the_old_file_intact() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor.set_rule_preset("code", "compile").unwrap();
        // Something in the way of the temporary file (a directory) makes the write fail,
        // even for root.
        let tmp = path.with_file_name("config.toml.tmp");
        fs::create_dir(&tmp).unwrap();
        let err = editor.save().unwrap_err();
        assert!(matches!(err, ConfigError::Write { .. }), "{err:?}");
        assert!(
            err.to_string().ends_with("the file on disk is unchanged"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), COMMENTED);
        fs::remove_dir(&tmp).unwrap();
        editor.save().unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("[apps.code]"));
        assert!(!tmp.exists());
    }

    #[test]
    fn save_never_writes_through_a_leftover_tmp_symlink() {
        // Before: the leftover config.toml.tmp was opened in place, so a symlink there had the
        // new config written into its target, and was then renamed over config.toml.
        let (dir, path) = file_with(COMMENTED);
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep me\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let tmp = path.with_file_name("config.toml.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor.set_rule_preset("code", "compile").unwrap();
        editor.save().unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&victim), 0o644);
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_eq!(mode(&path), 0o600);
        assert!(fs::read_to_string(&path).unwrap().contains("[apps.code]"));
        assert!(fs::symlink_metadata(&tmp).is_err(), "no tmp file is left");
    }

    #[test]
    fn a_config_too_large_to_be_one_is_refused_unread() {
        // Before, any size was read whole into memory (a 2 GB file, or a link to /dev/zero,
        // took the window with it); now more than 16 MiB is refused, saying why.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let file = fs::File::create(&path).unwrap();
        file.set_len(crate::paths::CONFIG_MAX_BYTES + 1).unwrap();
        let error = Config::load_from(&path).unwrap_err().to_string();
        assert!(error.contains("is larger than 16 MiB"), "{error}");
        let error = ConfigEditor::open(&path).unwrap_err().to_string();
        assert!(error.contains("is larger than"), "{error}");
    }

    #[test]
    fn save_never_writes_through_a_link_to_another_users_file() {
        // Root given a user's HOME (sudo -E) finds that user's config.toml, a link to a file
        // of root's: written through before, refused now. Here the file is ours and the
        // process pretends to be someone else, which needs no root.
        let (dir, real) = file_with(COMMENTED);
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let someone_else = crate::paths::effective_uid().wrapping_add(1);
        let error = write_atomically_as(&link, "[apps.code]\n", someone_else).unwrap_err();
        assert!(
            error.to_string().contains("a file of another user"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), COMMENTED);
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn save_refuses_to_overwrite_changes_made_meanwhile() {
        let (_dir, path) = file_with(COMMENTED);
        let mut editor = ConfigEditor::open(&path).unwrap();
        editor.set_rule_preset("code", "compile").unwrap();
        let theirs = format!("{COMMENTED}# added in a text editor\n");
        fs::write(&path, &theirs).unwrap();
        let err = editor.save().unwrap_err();
        assert!(matches!(err, ConfigError::ChangedOnDisk { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), theirs);
    }

    #[test]
    fn save_writes_through_a_symlink() {
        let (dir, real) = file_with(COMMENTED);
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut editor = ConfigEditor::open(&link).unwrap();
        editor.set_rule_preset("code", "compile").unwrap();
        editor.save().unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(fs::read_to_string(&real).unwrap().contains("[apps.code]"));
    }

    #[test]
    fn quoted_booleans_get_a_clear_message() {
        let (line, column, message) = refused("[presets.x]\nno-new-privileges = \"yes\"\n");
        assert_eq!((line, column), (2, 21));
        assert_eq!(
            message,
            "presets.x.no-new-privileges: write true or false, without quotes (found \"yes\")"
        );
    }

    #[test]
    fn saving_an_unchanged_missing_file_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral/config.toml");
        ConfigEditor::open(&path).unwrap().save().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn huge_keys_and_values_give_short_messages_quickly() {
        // Found by tests/hostile_input.rs: a 10 MB unknown key took 100 s (edit distances to
        // every known key) and gave a 10 MB message.
        let key = "k".repeat(10 << 20);
        let start = std::time::Instant::now();
        assert_eq!(closest(&key, SETTING_KEYS), None);
        let (line, column, message) = refused(&format!("[presets.x]\n{key} = 1\n"));
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!((line, column), (2, 1));
        assert!(
            message.starts_with(&format!("unknown key “{}…", &key[..59])),
            "{message}"
        );
        assert!(message.contains("the keys allowed here are"), "{message}");
        assert!(message.chars().count() < 1000, "{}", message.len());
        let value = format!("[presets.x]\nmemory-max = \"{}\"\n", "9".repeat(1 << 20));
        let (_, _, message) = refused(&value);
        assert!(message.contains("far too large"), "{message}");
        assert!(message.len() < 4000, "{}", message.len());
        // Ordinary messages are left alone, suggestions still work.
        assert_eq!(closest("memroy-max", SETTING_KEYS), Some("memory-max"));
        let short = "presets.x: “x” is not one of no, yes".to_owned();
        assert_eq!(shortened(short.clone()), short);
        assert_eq!(shortened("a".repeat(61)), format!("{}…", "a".repeat(60)));
        assert_eq!(shortened("a ".repeat(600)).chars().count(), 1001);
    }

    #[test]
    fn did_you_mean_is_picky() {
        let known = ["background", "browser", "relaxed", "shell", "strict"];
        assert_eq!(closest("brwser", known), Some("browser"));
        assert_eq!(closest("Strict", known), Some("strict"));
        assert_eq!(closest("back", known), Some("background"));
        assert_eq!(closest("gaming", known), None);
        assert_eq!(closest("x", known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
