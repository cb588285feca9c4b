//! Settings: what one launch gets (limits, sandboxing, environment, policies), each declared
//! once below with its key and value type, and how each is read from text as a person types
//! it, read from the file and written back.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use toml_edit::{InlineTable, Value};

use super::ConfigError;
use super::declare::{choices, settings};
use super::file::{closest, did_you_mean};
use crate::i18n::{gettext, gettext_f, gettext_noop, ngettext_f, pgettext};
use crate::limits::{CpuQuota, CpuWeight, MemoryLimit, SwapLimit, TasksLimit};
use crate::monitor::alerts::Condition;

// ---------------------------------------------------------------------------------------------
// The settings

// Every setting a preset or rule may carry, declared once. An entry is the setting's field in
// `Settings` (doc, name, type) and its key in the file; `title:` gives it a row in Preferences
// (a choice for a policy, a text entry otherwise); `policy:` makes it what Corral does by
// itself on that alert, which `plain_words` reads as "frozen when {when}". `settings!`
// (declare.rs) derives the rest: the struct, overlay, set, unset, toml_value, entries,
// SETTING_KEYS, POLICY_KEYS, the file's tables (`tables`: their own keys come first), the
// policy lookup and the Preferences rows.
//
// To add a setting, add one entry here and, if its values are of a new kind, their type: for a
// few words a `choices!` like `Mode`'s, otherwise a type with a `SettingValue` implementation.
// E.g. `oom_policy: Option<OomPolicy> = "oom-policy";` and a `choices!` `OomPolicy` with
// `Stop = "stop", Continue = "continue", Kill = "kill"`. (The tests that list every setting,
// and systemd's property for it in systemd/properties.rs, are then to be extended by hand.)
settings! {
    tables {
        PresetTable { description: Option<String> }
        RuleTable { preset: Option<String>, last_preset: Option<String> }
    }
    settings {
        /// How systemd runs the app: as a service or a scope (systemd.service(5),
        /// systemd.scope(5)).
        mode: Option<Mode> = "mode";
        /// Soft limit (`MemoryHigh=`): above it the kernel throttles and reclaims.
        memory_high: Option<MemoryLimit> = "memory-high", title: gettext_noop("Memory high");
        /// Hard limit (`MemoryMax=`): above it the OOM killer ends the app.
        memory_max: Option<MemoryLimit> = "memory-max", title: gettext_noop("Memory max");
        memory_swap_max: Option<SwapLimit> = "memory-swap-max", title: gettext_noop("Swap max");
        cpu_quota: Option<CpuQuota> = "cpu-quota", title: gettext_noop("CPU quota");
        cpu_weight: Option<CpuWeight> = "cpu-weight", title: gettext_noop("CPU weight");
        tasks_max: Option<TasksLimit> = "tasks-max", title: gettext_noop("Tasks max");
        /// What happens to the rest of the app when the kernel kills one of its processes for
        /// memory (`OOMPolicy=`).
        oom_policy: Option<OomPolicy> = "oom-policy";
        /// systemd applies `NoNewPrivileges=` to services only; for a scope the launcher has to
        /// set PR_SET_NO_NEW_PRIVS in the child itself (prctl(2)), which needs no privileges.
        no_new_privileges: Option<bool> = "no-new-privileges";
        /// Needs a mount namespace, so services only.
        private_tmp: Option<bool> = "private-tmp";
        /// Needs a mount namespace, so services only.
        protect_system: Option<ProtectSystem> = "protect-system";
        /// Needs a mount namespace, so services only.
        protect_home: Option<ProtectHome> = "protect-home";
        /// Extra environment variables. A map rather than an `Option`: "nothing set" is the
        /// empty map, and layers merge variable by variable.
        environment: BTreeMap<String, String> = "environment";
        /// Policies: what Corral does by itself when the runaway watch raises that alert.
        on_memory_near_limit: Option<PolicyAction> = "on-memory-near-limit",
            title: gettext_noop("When Near Its Memory Limit"),
            policy: MemoryNearLimit, when: gettext_noop("near its memory limit");
        on_memory_throttled: Option<PolicyAction> = "on-memory-throttled",
            title: gettext_noop("When Slowed for Memory"),
            policy: MemoryThrottled, when: gettext_noop("slowed for memory");
        on_cpu_throttled: Option<PolicyAction> = "on-cpu-throttled",
            title: gettext_noop("When Held at Its CPU Limit"),
            policy: CpuThrottled, when: gettext_noop("held at its CPU limit");
        on_memory_pressure: Option<PolicyAction> = "on-memory-pressure",
            title: gettext_noop("When Stalling for Memory"),
            policy: MemoryPressure, when: gettext_noop("stalling for memory");
    }
}

/// What Corral knows about one setting besides its value (see [`SETTINGS`]).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The key in the file and on the command line, e.g. `memory-max`.
    pub key: &'static str,
    /// The title of its row in Preferences (untranslated); `None` for settings edited only in
    /// the file.
    pub title: Option<&'static str>,
    /// Set for the settings that say what Corral does by itself on an alert.
    pub policy: Option<SettingPolicy>,
}

/// The alert a policy setting answers.
#[derive(Debug, Clone, Copy)]
pub struct SettingPolicy {
    pub condition: Condition,
    /// How the person reads when it acts, untranslated: "near its memory limit" completes
    /// "frozen when …".
    pub when: &'static str,
    /// Reads the policy this setting holds in some `Settings`.
    pub action: fn(&Settings) -> Option<PolicyAction>,
}

impl Setting {
    /// The setting that holds the policy for `condition`, if any (an OOM kill has none: the
    /// app is dead or the kernel is mid-kill, there is nothing left to decide).
    pub fn for_condition(condition: Condition) -> Option<(&'static Setting, SettingPolicy)> {
        SETTINGS.iter().find_map(|setting| {
            let policy = setting.policy?;
            (policy.condition == condition).then_some((setting, policy))
        })
    }
}

/// The policy keys: what Corral does by itself when an alert of that kind is raised.
pub const POLICY_KEYS: [&str; POLICY_COUNT] = {
    let mut keys = [""; POLICY_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < SETTINGS.len() {
        if SETTINGS[i].policy.is_some() {
            keys[n] = SETTINGS[i].key;
            n += 1;
        }
        i += 1;
    }
    keys
};

const POLICY_COUNT: usize = {
    let (mut i, mut n) = (0, 0);
    while i < SETTINGS.len() {
        if SETTINGS[i].policy.is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};

// ---------------------------------------------------------------------------------------------
// How a setting's value is read and written

/// A type a setting holds: how it is read from text as a person types it (`corral run`, the
/// Preferences rows), read from the file, and written to the file. The defaults suit a type
/// written as one string ("4G", "scope"): parsed with `FromStr`, read with `Deserialize`,
/// written with `Display`.
pub trait SettingValue:
    Clone + fmt::Display + FromStr<Err: fmt::Display> + DeserializeOwned
{
    /// `Err` says what is wrong, without naming the setting.
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: Self::Err| e.to_string())
    }

    fn from_file<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::deserialize(d)
    }

    fn to_toml(&self) -> Value {
        Value::from(self.to_string())
    }
}

// The choices! types (Mode, ProtectSystem, …) are setting values by their declaration.
impl SettingValue for MemoryLimit {}
impl SettingValue for SwapLimit {}
impl SettingValue for CpuQuota {}

impl SettingValue for CpuWeight {
    fn to_toml(&self) -> Value {
        Value::from(i64::from(self.get()))
    }
}

impl SettingValue for TasksLimit {
    fn to_toml(&self) -> Value {
        match *self {
            // TOML integers are i64; a larger count still round-trips as a string.
            TasksLimit::Count(n) => i64::try_from(n)
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(n.to_string())),
            TasksLimit::Unlimited => Value::from("max"),
        }
    }
}

/// systemd's yes/no words when typed; only `true` and `false` in the file, as TOML has them.
impl SettingValue for bool {
    fn from_text(text: &str) -> Result<Self, String> {
        parse_bool(text).ok_or_else(|| {
            gettext_f(
                "“{value}” is not yes or no; use true or false",
                &[("value", &text)],
            )
        })
    }

    /// A TOML boolean. A quoted "yes" or a number says how to write it instead.
    fn from_file<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TrueOrFalse;

        impl<'de> Visitor<'de> for TrueOrFalse {
            type Value = bool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&gettext("true or false"))
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<bool, E> {
                Ok(on)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
                Err(write_true_or_false(format!("{text:?}")))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<bool, E> {
                Err(write_true_or_false(n))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<bool, E> {
                Err(write_true_or_false(n))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<bool, E> {
                Err(write_true_or_false(n))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
                Err(write_true_or_false("[…]"))
            }

            // A table, or a date and time (toml hands those over as a table too).
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
                Err(write_true_or_false("{…}"))
            }
        }

        fn write_true_or_false<E: de::Error>(found: impl fmt::Display) -> E {
            E::custom(gettext_f(
                "write true or false, without quotes (found {value})",
                &[("value", &found)],
            ))
        }

        d.deserialize_any(TrueOrFalse)
    }

    fn to_toml(&self) -> Value {
        Value::from(*self)
    }
}

/// How a field of [`Settings`] takes part in layering, typing in and the file: one value that
/// a later layer replaces (`Option<T>`), or the environment's variables, which layers merge by
/// name. Clearing a field is setting it to its `Default`.
pub trait SettingField: Default {
    fn overlay(&mut self, other: &Self);
    /// Sets it from text as typed; `Err` says what is wrong, without naming the setting.
    fn set_text(&mut self, text: &str) -> Result<(), String>;
    fn from_file<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// As written in the file; `None` when not set.
    fn to_toml(&self) -> Option<Value>;
    /// As shown to a person (`corral presets show`, Preferences); `None` when not set.
    fn to_text(&self) -> Option<String>;
}

impl<T: SettingValue> SettingField for Option<T> {
    fn overlay(&mut self, other: &Self) {
        if other.is_some() {
            self.clone_from(other);
        }
    }

    fn set_text(&mut self, text: &str) -> Result<(), String> {
        *self = Some(T::from_text(text)?);
        Ok(())
    }

    fn from_file<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::from_file(d).map(Some)
    }

    fn to_toml(&self) -> Option<Value> {
        self.as_ref().map(T::to_toml)
    }

    fn to_text(&self) -> Option<String> {
        Some(match self.to_toml()? {
            Value::String(s) => s.value().clone(),
            other => other.to_string().trim().to_owned(),
        })
    }
}

impl SettingField for BTreeMap<String, String> {
    fn overlay(&mut self, other: &Self) {
        for (name, value) in other {
            self.insert(name.clone(), value.clone());
        }
    }

    /// Adds one `NAME=value` variable.
    fn set_text(&mut self, text: &str) -> Result<(), String> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(gettext_f(
                "“{value}” is not of the form NAME=value",
                &[("value", &text)],
            ));
        };
        check_environment(name, value)?;
        self.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    fn from_file<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::deserialize(d)
    }

    fn to_toml(&self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        let mut table = InlineTable::new();
        for (name, value) in self {
            table.insert(name, Value::from(value.as_str()));
        }
        Some(Value::InlineTable(table))
    }

    fn to_text(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Some(pairs.join(" "))
    }
}

// ---------------------------------------------------------------------------------------------
// Small value types

/// A word that is not one of the accepted choices for a setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}", gettext_f("“{input}” is not a valid {what}; use {accepted}", &[("input", .input), ("what", &gettext(.what)), ("accepted", &gettext(.accepted))]), did_you_mean(*.suggestion))]
pub struct InvalidChoice {
    pub input: String,
    pub what: &'static str,
    pub accepted: &'static str,
    /// The word `input` is most likely a typo of.
    pub suggestion: Option<&'static str>,
}

impl InvalidChoice {
    fn new(
        input: &str,
        what: &'static str,
        accepted: &'static str,
        words: &[&'static str],
    ) -> Self {
        InvalidChoice {
            input: input.to_owned(),
            what,
            accepted,
            suggestion: closest(input, words.iter().copied()),
        }
    }
}

choices! {
    /// How systemd runs the app (systemd.service(5) vs systemd.scope(5)).
    #[derive(Default)]
    pub enum Mode {
        /// systemd starts the app itself; sandboxing settings apply. Works from inside Flatpak.
        #[default]
        Service = "service",
        /// Corral forks the app and systemd adopts it; keeps the terminal and environment, but
        /// takes resource limits only.
        Scope = "scope",
    }
    invalid: gettext_noop("mode"), gettext_noop("service or scope");
}

choices! {
    /// What systemd does with the rest of a unit when the kernel's OOM killer ends one of its
    /// processes at the unit's memory limit (systemd.service(5), "OOMPolicy="). A browser under
    /// `continue` loses the runaway tab's process, not every tab.
    pub enum OomPolicy {
        /// Stop the whole unit (systemd's default for units of a user manager).
        Stop = "stop",
        /// Let the other processes run on.
        Continue = "continue",
        /// Kill every process of the unit at once (the kernel's memory.oom.group).
        Kill = "kill",
    }
    invalid: gettext_noop("OOM policy"), gettext_noop("stop, continue or kill");
}

choices! {
    /// systemd `ProtectSystem=` (systemd.exec(5)): which system directories are read-only.
    pub enum ProtectSystem {
        No = "no",
        /// /usr, /boot and /efi read-only.
        Yes = "yes",
        /// As `Yes`, plus /etc.
        Full = "full",
        /// The whole file system read-only except /dev, /proc, /sys and the unit's own dirs.
        Strict = "strict",
    }
    invalid: gettext_noop("protect-system value"), gettext_noop("no, yes, full or strict");
    booleans: No, Yes;
}

choices! {
    /// systemd `ProtectHome=` (systemd.exec(5)): what the app sees of /home, /root and
    /// /run/user.
    pub enum ProtectHome {
        No = "no",
        /// Home directories appear empty and inaccessible.
        Yes = "yes",
        ReadOnly = "read-only",
        /// Home directories are empty tmpfs mounts.
        Tmpfs = "tmpfs",
    }
    invalid: gettext_noop("protect-home value"), gettext_noop("no, yes, read-only or tmpfs");
    booleans: No, Yes;
}

choices! {
    /// What Corral does by itself when a runaway-watch rule fires for a unit (the `on-…`
    /// policy settings of a preset or rule). Whatever it does, it says so in the alert's
    /// notification. A word only: unlike systemd's settings, a policy has no boolean spelling.
    #[derive(Default)]
    pub enum PolicyAction {
        /// Only notify (what happens without a policy).
        #[default]
        Notify = "notify",
        /// Freeze the unit until the person thaws it.
        Freeze = "freeze",
        /// Raise the limit the alert is about by one step, as the notification's button does.
        RaiseLimit = "raise-limit",
        /// Halve the unit's CPU quota (one CPU if it has none), slowing a runaway down.
        LowerCpu = "lower-cpu",
    }
    invalid: gettext_noop("policy"), gettext_noop("notify, freeze, raise-limit or lower-cpu");
}

/// Reads a `booleans:` choice from the file: `true`, `false` or one of its words.
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
// Settings in plain words, and settings that contradict each other

impl Settings {
    /// True when no setting is given at all.
    pub fn is_empty(&self) -> bool {
        *self == Settings::default()
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
        match self.oom_policy {
            Some(OomPolicy::Continue) => {
                parts.push(gettext("loses only the process that runs out of memory"))
            }
            Some(OomPolicy::Kill) => {
                parts.push(gettext("all of it killed when it runs out of memory"))
            }
            Some(OomPolicy::Stop) | None => {}
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
        for policy in SETTINGS.iter().filter_map(|s| s.policy) {
            let done = match (policy.action)(self) {
                Some(PolicyAction::Freeze) => pgettext("policy done", "frozen"),
                Some(PolicyAction::RaiseLimit) => pgettext("policy done", "limit raised"),
                Some(PolicyAction::LowerCpu) => pgettext("policy done", "CPU lowered"),
                Some(PolicyAction::Notify) | None => continue,
            };
            parts.push(gettext_f(
                // TRANSLATORS: reads e.g. "frozen when near its memory limit".
                "{done} when {when}",
                &[("done", &done), ("when", &gettext(policy.when))],
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
        if let (Some(high), Some(max)) = (self.memory_high, self.memory_max)
            && soft_above_hard(high, max)
        {
            return Some(Problem {
                keys: ["memory-high", "memory-max"],
                message: gettext_f(
                    "memory-high {high} is above memory-max {max}: the soft limit must not exceed the hard limit; lower memory-high or raise memory-max",
                    &[("high", &high), ("max", &max)],
                ),
            });
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

/// Whether a soft memory limit is above the hard one. Only comparable when both are bytes or
/// both are shares of RAM; a share needs the machine's RAM to compare against bytes, and that
/// is the launcher's business.
pub(super) fn soft_above_hard(high: MemoryLimit, max: MemoryLimit) -> bool {
    match (high, max) {
        (MemoryLimit::Bytes(h), MemoryLimit::Bytes(m)) => h > m,
        (MemoryLimit::Percent(h), MemoryLimit::Percent(m)) => h > m,
        _ => false,
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
            "Slowed down above 50 % of RAM, killed above 60 % of RAM, at most 3 CPUs, loses only the process that runs out of memory"
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
    fn the_declaration_gives_the_key_lists_and_the_policies() {
        let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        assert_eq!(keys, SETTING_KEYS);
        assert_eq!(
            POLICY_KEYS,
            [
                "on-memory-near-limit",
                "on-memory-throttled",
                "on-cpu-throttled",
                "on-memory-pressure"
            ]
        );
        // Every alert but an OOM kill has exactly one policy setting.
        for condition in Condition::ALL {
            let policies = SETTINGS
                .iter()
                .filter(|s| s.policy.is_some_and(|p| p.condition == condition))
                .count();
            assert_eq!(
                policies,
                usize::from(condition != Condition::OomKilled),
                "{condition:?}"
            );
        }
        let mut settings = Settings::default();
        settings.set("on-memory-throttled", "freeze").unwrap();
        let (setting, policy) = Setting::for_condition(Condition::MemoryThrottled).unwrap();
        assert_eq!(setting.key, "on-memory-throttled");
        assert_eq!((policy.action)(&settings), Some(PolicyAction::Freeze));
    }

    #[test]
    fn choices_take_their_words_and_suggest_one() {
        assert_eq!(" Scope ".parse(), Ok(Mode::Scope));
        assert_eq!("read-only".parse(), Ok(ProtectHome::ReadOnly));
        assert_eq!("on".parse(), Ok(ProtectSystem::Yes));
        assert_eq!("0".parse(), Ok(ProtectHome::No));
        assert_eq!(Mode::WORDS, ["service", "scope"]);
        assert_eq!(PolicyAction::RaiseLimit.to_string(), "raise-limit");
        assert_eq!(
            "raise".parse::<PolicyAction>().unwrap_err().to_string(),
            "“raise” is not a valid policy; use notify, freeze, raise-limit or lower-cpu; did \
             you mean “raise-limit”?"
        );
        // A policy has no boolean spelling.
        assert!("yes".parse::<PolicyAction>().is_err());
        let err = "readonly".parse::<ProtectHome>().unwrap_err();
        assert_eq!(err.suggestion, Some("read-only"));
        assert_eq!(
            "explode".parse::<PolicyAction>().unwrap_err().suggestion,
            None
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
