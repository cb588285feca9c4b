//! Reading `config.toml`: the file as serde reads it, and messages for a file that cannot be
//! used that say what is wrong, at which line and column, and what to do.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use toml_edit::{Item, TableLike};

use super::settings::{PresetTable, RuleTable, Settings, check_environment};
use super::{
    AppRule, Config, ConfigError, DEFAULT_PRESET, General, PresetDef, invalid_preset_name,
    valid_preset_name,
};
use crate::i18n::{gettext, gettext_f};

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

// ---------------------------------------------------------------------------------------------
// Did you mean, and messages of a sensible length

/// "; did you mean “x”?" to end a message with, or nothing.
pub(super) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| gettext_f("; did you mean “{name}”?", &[("name", &s)]))
        .unwrap_or_default()
}

/// The candidate that `input` is most likely a typo of.
pub(super) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
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
pub(super) struct SourceMap<'a> {
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
    pub(super) fn new(text: &'a str) -> Self {
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
    pub(super) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The key path of the value that the parser's `span` points at, if it points at one.
    fn value_path_at(&self, span: &Range<usize>) -> Option<Vec<String>> {
        fn walk(table: &dyn TableLike, span: &Range<usize>, path: &mut Vec<String>) -> bool {
            for (name, item) in table.iter() {
                path.push(name.to_owned());
                if item.is_value() && item.span().as_ref() == Some(span) {
                    return true;
                }
                if item
                    .as_table_like()
                    .is_some_and(|inner| walk(inner, span, path))
                {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        walk(self.doc()?.as_table(), span, &mut path).then_some(path)
    }

    /// What to say when the parser's `span` points at a key that its table does not allow.
    /// The keys allowed are the ones serde takes (see [`keys_of`]): this finds the key that
    /// `deny_unknown_fields` refused, and its table, to say so in the person's words.
    fn unknown_key_at(&self, span: &Range<usize>) -> Option<String> {
        let root = self.doc()?.as_table();
        let mut tables: Vec<(&dyn TableLike, Vec<&str>, &[&str])> =
            vec![(root, Vec::new(), keys_of::<ConfigFile>())];
        if let Some(general) = root.get("general").and_then(Item::as_table_like) {
            tables.push((general, vec!["general"], keys_of::<General>()));
        }
        for (section, allowed) in [
            ("presets", keys_of::<PresetTable>()),
            ("apps", keys_of::<RuleTable>()),
        ] {
            let Some(entries) = root.get(section).and_then(Item::as_table_like) else {
                continue;
            };
            for (name, item) in entries.iter() {
                if let Some(table) = item.as_table_like() {
                    tables.push((table, vec![section, name], allowed));
                }
            }
        }
        tables.into_iter().find_map(|(table, path, allowed)| {
            let (key, _) = table.iter().find(|(key, _)| {
                !allowed.contains(key)
                    && table.key(key).and_then(toml_edit::Key::span).as_ref() == Some(span)
            })?;
            Some(unknown_key_message(key, &path, allowed))
        })
    }
}

/// "unknown key “x” in [presets.y] (did you mean “z”?); the keys allowed here are …".
fn unknown_key_message(key: &str, table: &[&str], allowed: &[&str]) -> String {
    let table = if table.is_empty() {
        String::new()
    } else {
        gettext_f(" in [{table}]", &[("table", &dotted(table))])
    };
    let hint = closest(key, allowed.iter().copied())
        .map(|s| gettext_f(" (did you mean “{name}”?)", &[("name", &s)]))
        .unwrap_or_default();
    let listed = gettext_f(
        "; the keys allowed here are {keys}",
        &[("keys", &allowed.join(", "))],
    );
    gettext_f(
        "unknown key “{key}”{table}{suggestion}{keys}",
        &[
            ("key", &key),
            ("table", &table),
            ("suggestion", &hint),
            ("keys", &listed),
        ],
    )
}

/// The keys a struct deriving `Deserialize` takes, as serde itself knows them: its derive hands
/// them to `Deserializer::deserialize_struct`, and this deserializer returns them as its error.
/// The same trick as serde-aux's `serde_introspect`.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Keys(&'static [&'static str]);

    impl fmt::Display for Keys {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0.join(", "))
        }
    }

    impl std::error::Error for Keys {}

    impl de::Error for Keys {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Keys(&[])
        }
    }

    struct CatchKeys;

    impl<'de> Deserializer<'de> for CatchKeys {
        type Error = Keys;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Keys> {
            Err(Keys(&[]))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            keys: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Keys> {
            Err(Keys(keys))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    match T::deserialize(CatchKeys) {
        Err(Keys(keys)) => keys,
        Ok(_) => &[],
    }
}

/// A key path as TOML writes it: `apps."org.mozilla.firefox".memory-max`.
pub(super) fn dotted<S: AsRef<str>>(path: &[S]) -> String {
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

/// Where a file that toml or serde refused is wrong, and what to say: an unknown key with its
/// table, the keys allowed there and the likeliest one; a bad value with its key path and the
/// value type's own message (see `SettingValue`); a syntax error in the parser's words.
fn explain(source: &SourceMap<'_>, error: &toml::de::Error) -> (Option<Range<usize>>, String) {
    let Some(span) = error.span() else {
        return (None, error.message().to_owned());
    };
    let message = if let Some(message) = source.unknown_key_at(&span) {
        message
    } else if let Some(path) = source.value_path_at(&span) {
        format!("{}: {}", dotted(&path), error.message())
    } else if error.message() == "duplicate key" && !span.is_empty() {
        // The parser's errors carry no kind, only their description: a repeated key, the
        // likeliest of them in a hand-edited file, gets a message that names it.
        let key = source.text.get(span.clone()).unwrap_or("");
        gettext_f("the key “{key}” appears twice", &[("key", &key)])
    } else {
        error.message().to_owned()
    };
    (Some(span), message)
}

// ---------------------------------------------------------------------------------------------
// Config

impl Config {
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
            let (span, message) = explain(&source, &e);
            at(span, message)
        })?;

        let mut config = Config {
            general: file.general,
            ..Config::default()
        };
        if let (Some(high), Some(max)) = (
            config.general.apps_memory_high,
            config.general.apps_memory_max,
        ) && super::settings::soft_above_hard(high, max)
        {
            return Err(at(
                source.span(&["general", "apps-memory-high"], Spot::Value),
                gettext_f(
                    "apps-memory-high {high} is above apps-memory-max {max}: the budget's soft limit must not exceed its hard limit; lower apps-memory-high or raise apps-memory-max",
                    &[("high", &high), ("max", &max)],
                ),
            ));
        }
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

pub(super) fn read_if_exists(path: &Path) -> Result<Option<String>, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::SETTING_KEYS;
    use crate::config::testing::{parse, refused};
    use crate::config::{PolicyAction, ProtectHome, ProtectSystem};
    use crate::limits::{MemoryLimit, SwapLimit, TasksLimit};

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
oom-policy = \"kill\"
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
    fn unknown_keys_are_found_in_every_table_at_the_parsers_spans() {
        let (line, column, message) = refused("[general]\nrefresh-intervall = 2\n");
        assert_eq!((line, column), (2, 1));
        assert_eq!(
            message,
            "unknown key “refresh-intervall” in [general] (did you mean “refresh-interval”?); \
             the keys allowed here are refresh-interval, memory-warning, pressure-warning, \
             pressure-seconds, apps-memory-high, apps-memory-max"
        );
        // Inline tables and dotted keys are found at their place too.
        let (line, column, message) = refused("apps = { x = { presett = \"shell\" } }\n");
        assert_eq!((line, column), (1, 16));
        assert!(
            message.starts_with("unknown key “presett” in [apps.x] (did you mean “preset”?)"),
            "{message}"
        );
        let (line, column, message) = refused("[presets]\nx.memroy-max = \"1G\"\n");
        assert_eq!((line, column), (2, 3));
        assert!(
            message.starts_with("unknown key “memroy-max” in [presets.x] (did you mean"),
            "{message}"
        );
        // The keys allowed are serde's own, in its order.
        assert_eq!(keys_of::<ConfigFile>(), ["general", "presets", "apps"]);
        assert_eq!(
            keys_of::<RuleTable>()[..3],
            ["preset", "last-preset", "mode"]
        );
        assert_eq!(keys_of::<PresetTable>()[1..], SETTING_KEYS);
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
            "presets.x.mode: “servce” is not a valid mode; use service or scope; did you mean \
             “service”?"
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
    fn quoted_booleans_get_a_clear_message() {
        let (line, column, message) = refused("[presets.x]\nno-new-privileges = \"yes\"\n");
        assert_eq!((line, column), (2, 21));
        assert_eq!(
            message,
            "presets.x.no-new-privileges: write true or false, without quotes (found \"yes\")"
        );
        let (_, _, message) = refused("[presets.x]\nprivate-tmp = 1\n");
        assert_eq!(
            message,
            "presets.x.private-tmp: write true or false, without quotes (found 1)"
        );
        let (_, _, message) = refused("[presets.x]\nprivate-tmp = [true]\n");
        assert!(message.ends_with("(found […])"), "{message}");
    }

    #[test]
    fn huge_keys_and_values_give_short_messages_quickly() {
        // Found by tests/hostile_input.rs: a 10 MB unknown key took 100 s (edit distances to
        // every known key) and gave a 10 MB message.
        // The CPU time of this thread, not the time on the clock: a loaded machine (a build
        // beside the tests) stretched the wall time of the same work past the bound.
        fn cpu_time() -> std::time::Duration {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes the timespec it is given.
            assert_eq!(
                unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) },
                0
            );
            std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
        }
        let key = "k".repeat(10 << 20);
        let start = cpu_time();
        assert_eq!(closest(&key, SETTING_KEYS), None);
        let (line, column, message) = refused(&format!("[presets.x]\n{key} = 1\n"));
        let spent = cpu_time() - start;
        assert!(spent < std::time::Duration::from_secs(10), "{spent:?}");
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
