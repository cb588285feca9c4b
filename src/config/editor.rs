//! Editing `config.toml` the way a person would: changes that keep every comment and the
//! formatting, each checked before it is kept, saved atomically and never over someone
//! else's edits.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use super::builtins::builtin;
use super::file::{SourceMap, dotted, read_if_exists};
use super::settings::{SETTING_KEYS, Settings, unknown_setting};
use super::{Config, ConfigError, valid_preset_name};
use crate::i18n::{gettext, gettext_f};

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

/// What an edit of a rule does to the rule's preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulePreset {
    /// Leaves it as it is.
    Keep,
    /// Removes it: the rule builds on the default preset.
    Default,
    Named(String),
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

    /// Changes the rule for `app_id` in one step, as a form edits it: its preset as `preset`
    /// says, and each setting of `keys` written when `settings` has it, removed when not. The
    /// rule's other settings stay. Checked once, at the end, so that limits moved together
    /// (memory-high and memory-max both raised) never fail on the order they were set in.
    pub fn set_rule(
        &mut self,
        app_id: &str,
        preset: &RulePreset,
        keys: &[&str],
        settings: &Settings,
    ) -> Result<(), ConfigError> {
        if let Some(key) = keys
            .iter()
            .find(|k| !SETTING_KEYS.contains(k) || **k == "environment")
        {
            return Err(unknown_setting(key));
        }
        if let RulePreset::Named(name) = preset {
            self.config()?.preset(name)?;
        }
        self.edit(|doc| {
            let table = entry_table(doc, "apps", app_id)?;
            match preset {
                RulePreset::Keep => {}
                RulePreset::Default => {
                    table.remove("preset");
                }
                RulePreset::Named(name) => set_value(table, "preset", Value::from(name.as_str())),
            }
            for key in keys {
                match settings.toml_value(key) {
                    Some(value) => set_value(table, key, value),
                    None => {
                        table.remove(key);
                    }
                }
            }
            Ok(())
        })
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

    /// Sets (or with `None` removes) one key of the `[general]` table that holds text, such
    /// as `apps-memory-high` = "80%"; refused when the value is not valid for the key.
    pub fn set_general_text(&mut self, key: &str, value: Option<&str>) -> Result<(), ConfigError> {
        self.set_general_texts(&[(key, value)])
    }

    /// [`Self::set_general_text`] for several keys at once, checked together: the budget's
    /// `apps-memory-high` and `apps-memory-max` raised together never fail on their order.
    pub fn set_general_texts(
        &mut self,
        values: &[(&str, Option<&str>)],
    ) -> Result<(), ConfigError> {
        self.edit(|doc| {
            let general = doc
                .entry("general")
                .or_insert_with(|| Item::Table(Table::new()));
            let table = general
                .as_table_like_mut()
                .ok_or_else(|| ConfigError::InvalidEdit {
                    message: gettext("general in the file is not a table"),
                })?;
            for (key, value) in values {
                match value {
                    Some(text) => set_value(table, key, Value::from(*text)),
                    None => {
                        table.remove(key);
                    }
                }
            }
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
    use crate::config::testing::{COMMENTED, mem};

    // ----- editing -----

    fn file_with(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral/config.toml");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_rule_is_edited_as_a_whole_and_keeps_what_the_form_does_not_show() {
        let (_dir, path) = file_with(
            "[apps.x]\npreset = \"browser\"\nmemory-high = \"1G\"\nmemory-max = \"2G\"\ncpu-weight = 20\n",
        );
        let mut editor = ConfigEditor::open(&path).unwrap();
        // Both limits raised past the old max: fine as one edit, whatever the order.
        let settings = Settings {
            memory_high: mem("3G"),
            memory_max: mem("4G"),
            ..Settings::default()
        };
        let keys = ["memory-high", "memory-max", "cpu-quota"];
        editor
            .set_rule("x", &RulePreset::Default, &keys, &settings)
            .unwrap();
        editor.save().unwrap();
        let config = Config::load_from(&path).unwrap();
        let (_, rule) = config.rules().find(|(k, _)| *k == "x").unwrap();
        assert_eq!(rule.preset, None);
        assert_eq!(rule.settings.memory_max, mem("4G"));
        assert_eq!(
            rule.settings.cpu_weight.map(|w| w.get()),
            Some(20),
            "not on the form"
        );
        // A soft limit above the hard one is refused as the file would refuse it.
        let wrong = Settings {
            memory_high: mem("5G"),
            ..settings
        };
        let error = editor
            .set_rule("x", &RulePreset::Keep, &keys, &wrong)
            .unwrap_err();
        assert!(error.to_string().contains("memory-high"), "{error}");
        assert!(matches!(
            editor.set_rule("x", &RulePreset::Named("nope".into()), &[], &wrong),
            Err(ConfigError::UnknownPreset { .. })
        ));
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
            ("oom-policy", "continue"),
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
    fn saving_an_unchanged_missing_file_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corral/config.toml");
        ConfigEditor::open(&path).unwrap().save().unwrap();
        assert!(!path.exists());
    }
}
