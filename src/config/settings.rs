//! Settings: what one launch gets (limits, sandboxing, environment, policies), their value
//! types, and how each is read from text as a person types it and written to the file.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use toml_edit::{InlineTable, Value};

use super::ConfigError;
use super::file::closest;
use crate::i18n::{gettext, gettext_f, gettext_noop, ngettext_f, pgettext};
use crate::limits::{CpuQuota, CpuWeight, MemoryLimit, SwapLimit, TasksLimit};

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
    pub(super) fn problem(&self) -> Option<Problem> {
        self.memory_problem().or_else(|| self.scope_problem())
    }

    /// A soft memory limit above the hard one: never what anyone means.
    pub(super) fn memory_problem(&self) -> Option<Problem> {
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

pub(super) struct Problem {
    /// The keys involved, the one most likely to be the mistake first.
    pub(super) keys: [&'static str; 2],
    pub(super) message: String,
}

pub(super) fn check_environment(name: &str, value: &str) -> Result<(), String> {
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

pub(super) fn unknown_setting(key: &str) -> ConfigError {
    ConfigError::UnknownSetting {
        key: key.to_owned(),
        suggestion: closest(key, SETTING_KEYS).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::testing::mem;

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
}
