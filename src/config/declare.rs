//! The macros behind `settings.rs`: `settings!` makes the Settings struct, its key-by-key
//! methods and serde tables from one list; `choices!` makes a value type of a few words.

/// See the declaration in `settings.rs` for the grammar. Generates, at the place it is used:
/// - `Settings`, one field per setting, with the doc comments given;
/// - `SETTINGS` (a [`Setting`](super::settings::Setting) per setting, in order) and
///   `SETTING_KEYS`;
/// - `Settings::{overlay, set, unset, toml_value, entries}`, which go through each field's
///   [`SettingField`](super::settings::SettingField) implementation;
/// - a serde table per name in `tables`, with that table's own keys first and then every
///   setting, and `into_parts` to split it into the two. Spelled out field by field rather than
///   `#[serde(flatten)]`, because flatten turns off `deny_unknown_fields` and loses the line and
///   column of bad values.
macro_rules! settings {
    (
        tables { $($table:ident { $($own:ident: $own_ty:ty),* $(,)? })* }
        settings $list:tt
    ) => {
        settings!(@settings $list);
        $(settings!(@table $table { $($own: $own_ty),* } $list);)*
    };

    (@settings {
        $(
            $(#[$meta:meta])*
            $field:ident: $ty:ty = $key:literal
            $(, title: $title:expr)?
            $(, policy: $condition:ident, when: $when:expr)?
            ;
        )*
    }) => {
        /// Limits and sandboxing for one launch. Every field is optional so that presets, rules
        /// and command-line flags can each say only what they change; see
        /// [`Settings::overlay`].
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Settings {
            $($(#[$meta])* pub $field: $ty,)*
        }

        /// Every setting, in the order they are listed and written.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: $key,
            title: settings!(@option $($title)?),
            policy: settings!(@policy $field $(, $condition, $when)?),
        },)*];

        /// Every setting key a preset or rule may carry, in the order they are listed and
        /// written.
        pub const SETTING_KEYS: [&str; SETTINGS.len()] = [$($key),*];

        impl Settings {
            /// Takes every setting that `other` has, keeping ours where `other` says nothing.
            /// Environment variables merge by name, `other` winning.
            pub fn overlay(&mut self, other: &Settings) {
                $(SettingField::overlay(&mut self.$field, &other.$field);)*
            }

            /// Sets one setting from text as a person types it ("4G", "70%", "yes", "scope").
            /// `environment` takes one `NAME=value` pair and adds it.
            pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
                let set = match key {
                    $($key => SettingField::set_text(&mut self.$field, value),)*
                    _ => return Err(unknown_setting(key)),
                };
                set.map_err(|message| ConfigError::InvalidSetting {
                    key: key.to_owned(),
                    message,
                })
            }

            /// Clears one setting (all environment variables for `environment`).
            pub fn unset(&mut self, key: &str) -> Result<(), ConfigError> {
                match key {
                    $($key => self.$field = Default::default(),)*
                    _ => return Err(unknown_setting(key)),
                }
                Ok(())
            }

            /// One setting as it would be written in the file; `None` when not set or
            /// unknown.
            pub fn toml_value(&self, key: &str) -> Option<Value> {
                match key {
                    $($key => SettingField::to_toml(&self.$field),)*
                    _ => None,
                }
            }

            /// The settings that are set, as (key, value) in the file's spelling, in
            /// [`SETTING_KEYS`] order. Environment variables are shown as `NAME=value`
            /// separated by spaces.
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                let mut entries = Vec::new();
                $(if let Some(text) = SettingField::to_text(&self.$field) {
                    entries.push(($key, text));
                })*
                entries
            }
        }
    };

    (@option) => { None };
    (@option $value:expr) => { Some($value) };

    (@policy $field:ident) => { None };
    (@policy $field:ident, $condition:ident, $when:expr) => {
        Some(SettingPolicy {
            condition: Condition::$condition,
            when: $when,
            action: |settings: &Settings| settings.$field,
        })
    };

    (@table $table:ident { $($own:ident: $own_ty:ty),* } {
        $(
            $(#[$meta:meta])*
            $field:ident: $ty:ty = $key:literal
            $(, $name:ident: $value:expr)*
            ;
        )*
    }) => {
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub(super) struct $table {
            $($own: $own_ty,)*
            $(
                #[serde(rename = $key, default, deserialize_with = "SettingField::from_file")]
                $field: $ty,
            )*
        }

        impl $table {
            /// The table's own keys, and its settings.
            pub(super) fn into_parts(self) -> (($($own_ty,)*), Settings) {
                let $table { $($own,)* $($field,)* } = self;
                (($($own,)*), Settings { $($field,)* })
            }
        }
    };
}

pub(super) use settings;

/// Declares a setting's value type that is one of a few words, given as `Variant = "word"`,
/// with `invalid:` the (untranslated) name of the value and the list of words for the message
/// when none fits, and optionally `booleans: No, Yes;` for a systemd setting that also takes
/// a boolean. Generates the enum, `WORDS`, `as_str`, `Display`, `FromStr` (case-insensitive,
/// and with systemd's boolean words for `booleans`), serde (the word, or a boolean) and
/// `SettingValue`, so that a setting can hold it.
macro_rules! choices {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)*
        }
        invalid: $what:expr, $accepted:expr;
        $(booleans: $no:ident, $yes:ident;)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every word, in the order declared.
            pub const WORDS: &[&str] = &[$($word),*];

            /// The word as the file has it; for systemd's settings also as systemd takes it,
            /// on D-Bus and in unit files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidChoice;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                match input.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)*
                    _other => {
                        $(if let Some(on) = parse_bool(_other) {
                            return Ok(if on { $name::$yes } else { $name::$no });
                        })?
                        Err(InvalidChoice::new(input, $what, $accepted, $name::WORDS))
                    }
                }
            }
        }

        $(impl From<bool> for $name {
            fn from(on: bool) -> Self {
                if on { $name::$yes } else { $name::$no }
            }
        })?

        impl SettingValue for $name {}

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                choices!(@deserialize d $(, $no, $yes)?)
            }
        }
    };

    (@deserialize $d:ident) => {
        String::deserialize($d)?.parse().map_err(de::Error::custom)
    };
    // systemd takes a boolean as well as the words, so the file may too.
    (@deserialize $d:ident, $no:ident, $yes:ident) => {
        $d.deserialize_any(BoolOrWord(std::marker::PhantomData))
    };
}

pub(super) use choices;
