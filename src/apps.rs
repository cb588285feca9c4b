//! Installed apps from XDG desktop entries (Desktop Entry Specification 1.5; § numbers in
//! comments are its sections): `Exec` parsed into an argv by its §7 rules, never a shell.
//! Loading reads the file system: call it off the GLib main loop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::i18n::{gettext, gettext_f, ngettext_f};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a desktop file was skipped. [`AppCatalog`] collects these as warnings; none is fatal.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("{}", gettext_f("could not read {path}: {error} — check its permissions, or remove it", &[("path", &.path.display()), ("error", .source)]))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}", gettext_f("{path}: line {line} is not valid UTF-8, which desktop entries must be (§3) — re-save the file as UTF-8", &[("path", &.path.display()), ("line", .line)]))]
    NotUtf8 { path: PathBuf, line: usize },
    #[error("{}", gettext_f("{path}: the path is not valid UTF-8, so the entry has no usable desktop file ID — rename the file", &[("path", &.path.display())]))]
    NonUtf8Path { path: PathBuf },
    #[error("{}", gettext_f("{path}: line {line}: {problem} — fix the file or remove it", &[("path", &.path.display()), ("line", .line), ("problem", .problem)]))]
    Malformed {
        path: PathBuf,
        line: usize,
        problem: FileProblem,
    },
    #[error("{}", gettext_f("{path}: there is no [Desktop Entry] group — fix the file or remove it", &[("path", &.path.display())]))]
    NoDesktopEntryGroup { path: PathBuf },
    #[error("{}", gettext_f("{path}: the required key {key}= is missing from [Desktop Entry] — add it or remove the file", &[("path", &.path.display()), ("key", .key)]))]
    MissingKey { path: PathBuf, key: &'static str },
    #[error("{}", gettext_f("{path}: the app has no Exec= line (it can only be D-Bus activated), so Corral cannot launch it in a unit", &[("path", &.path.display())]))]
    NoExec { path: PathBuf },
}

/// What is wrong with one line of a desktop file (§3 "Basic format of the file").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("{}", gettext("a key=value line comes before any [group] header"))]
    KeyOutsideGroup,
    #[error("{}", gettext_f("the line is neither a comment, a [group] header nor key=value: {line}", &[("line", &format!("{:?}", .0))]))]
    NotKeyValue(String),
    #[error("{}", gettext_f("the group header is not of the form [name]: {line}", &[("line", &format!("{:?}", .0))]))]
    BadGroupHeader(String),
    #[error("{}", gettext_f("the group [{group}] appears twice", &[("group", .0)]))]
    DuplicateGroup(String),
    #[error("{}", gettext_f("the key {key} appears twice in [Desktop Entry]", &[("key", .0)]))]
    DuplicateKey(String),
    #[error("{}", gettext_f("{key}={value} is not a boolean (true or false)", &[("key", .key), ("value", &format!("{:?}", .value))]))]
    NotBoolean { key: String, value: String },
    #[error(
        "{}",
        gettext("the line holds a NUL byte, which no value may (§4), so the file is damaged")
    )]
    NulByte,
}

/// What is wrong with an `Exec` command line (§7 "The Exec key").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecSyntax {
    // TRANSLATORS: these complete "Exec line …" (the line of a desktop file that says what to
    // run), as in "Exec line is empty: `…`".
    #[error("{}", gettext("is empty"))]
    Empty,
    #[error("{}", gettext("has an unterminated quote"))]
    UnterminatedQuote,
    #[error("{}", gettext("ends in a lone backslash"))]
    TrailingBackslash,
    #[error("{}", gettext_f("has the reserved character {character} outside double quotes (the spec requires quoting it, and Corral runs no shell to interpret it)", &[("character", &format!("{:?}", .0))]))]
    UnquotedReserved(char),
    #[error("{}", gettext_f("has the unknown field code `%{code}` (the spec says such a line must not be run)", &[("code", .0)]))]
    UnknownFieldCode(char),
    #[error("{}", gettext_f("has `{code}` inside a longer argument, but it must be an argument on its own", &[("code", .0)]))]
    FieldCodeNotAlone(FieldCode),
    #[error(
        "{}",
        gettext("has more than one of %f, %F, %u, %U (the spec allows at most one)")
    )]
    SeveralFileFieldCodes,
    #[error("{}", gettext("starts with a field code instead of a program"))]
    ProgramIsFieldCode,
    #[error("{}", gettext("has an empty program name"))]
    EmptyProgram,
    #[error(
        "{}",
        gettext(
            "has `=` in the program name, which the spec forbids (to set a variable, use `env NAME=value program`)"
        )
    )]
    EqualsInProgram,
}

/// Why an app's command line could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// From [`parse_exec`], which does not know which app the line belongs to.
    #[error("{}", gettext_f("Exec line {problem}: `{exec}`", &[("problem", .problem), ("exec", .exec)]))]
    Syntax { exec: String, problem: ExecSyntax },
    #[error("{}", gettext_f("{id}: Exec line {problem}: `{exec}` — fix the .desktop file at {path}", &[("id", .id), ("problem", .problem), ("exec", .exec), ("path", &.path.display())]))]
    InvalidExec {
        id: String,
        path: PathBuf,
        exec: String,
        problem: ExecSyntax,
    },
    #[error("{}", gettext_f("{id}: not installed: its TryExec program `{program}` is missing or not executable — install the app, or delete the stale entry at {path}", &[("id", .id), ("program", .try_exec), ("path", &.path.display())]))]
    NotInstalled {
        id: String,
        path: PathBuf,
        try_exec: String,
    },
    #[error("{}", ngettext_f("{id}: its Exec line takes a single file or URL ({code}) but {count} was given — open them one at a time", "{id}: its Exec line takes a single file or URL ({code}) but {count} were given — open them one at a time", *.count as u64, &[("id", .id), ("code", .code), ("count", .count)]))]
    TooManyTargets {
        id: String,
        path: PathBuf,
        code: FieldCode,
        count: usize,
    },
    #[error("{}", ngettext_f("{id}: its Exec line has no %f, %F, %u or %U, so it cannot open the {count} file or URL given — launch it without them", "{id}: its Exec line has no %f, %F, %u or %U, so it cannot open the {count} files or URLs given — launch it without them", *.count as u64, &[("id", .id), ("count", .count)]))]
    TargetsNotAccepted {
        id: String,
        path: PathBuf,
        count: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Locale matching (§5 "Localized values for keys")
// ---------------------------------------------------------------------------------------------

/// A POSIX locale as §5 matches it: `lang_COUNTRY.ENCODING@MODIFIER`, the encoding dropped
/// because §5 ignores it when matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Locale {
    pub lang: String,
    pub country: Option<String>,
    pub modifier: Option<String>,
}

impl Locale {
    /// Parses `lang[_COUNTRY][.ENCODING][@MODIFIER]`. `C` and `POSIX` (with any encoding) are the
    /// untranslated locale and give `None`, as does an empty string.
    pub fn parse(value: &str) -> Option<Locale> {
        let (rest, modifier) = match value.split_once('@') {
            Some((rest, modifier)) => (rest, Some(modifier)),
            None => (value, None),
        };
        let rest = rest
            .split_once('.')
            .map_or(rest, |(before, _encoding)| before);
        let (lang, country) = match rest.split_once('_') {
            Some((lang, country)) => (lang, Some(country)),
            None => (rest, None),
        };
        if lang.is_empty() || lang == "C" || lang == "POSIX" {
            return None;
        }
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        Some(Locale {
            lang: lang.to_owned(),
            country: non_empty(country),
            modifier: non_empty(modifier),
        })
    }

    /// The locale used for messages, from `LC_ALL`, `LC_MESSAGES`, `LANG` and `LANGUAGE`.
    pub fn from_env() -> Option<Locale> {
        let var = |name: &str| std::env::var(name).ok();
        Locale::from_vars(
            var("LC_ALL").as_deref(),
            var("LC_MESSAGES").as_deref(),
            var("LANG").as_deref(),
            var("LANGUAGE").as_deref(),
        )
    }

    /// [`Locale::from_env`] over given values, so the rules can be tested without touching the
    /// process environment.
    ///
    /// POSIX precedence picks the LC_MESSAGES category: `LC_ALL`, then `LC_MESSAGES`, then
    /// `LANG` (the first set and non-empty). As in GNU gettext, `LANGUAGE` overrides that — we
    /// take its first entry only — except when the category is the `C` locale, where gettext
    /// ignores `LANGUAGE` and so do we.
    pub fn from_vars(
        lc_all: Option<&str>,
        lc_messages: Option<&str>,
        lang: Option<&str>,
        language: Option<&str>,
    ) -> Option<Locale> {
        let category = [lc_all, lc_messages, lang]
            .into_iter()
            .flatten()
            .find(|value| !value.is_empty())?;
        let category = Locale::parse(category)?;
        let preferred = language
            .and_then(|list| list.split(':').find(|entry| !entry.is_empty()))
            .and_then(Locale::parse);
        Some(preferred.unwrap_or(category))
    }

    /// The `[LOCALE]` postfixes to try, best first (§5, and its table of matches): a part the
    /// locale lacks is never matched, so `de_DE` never picks `Name[de@euro]`.
    fn candidates(&self) -> Vec<String> {
        let lang = &self.lang;
        let mut out = Vec::with_capacity(4);
        if let (Some(country), Some(modifier)) = (&self.country, &self.modifier) {
            out.push(format!("{lang}_{country}@{modifier}"));
        }
        if let Some(country) = &self.country {
            out.push(format!("{lang}_{country}"));
        }
        if let Some(modifier) = &self.modifier {
            out.push(format!("{lang}@{modifier}"));
        }
        out.push(lang.clone());
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Values (§4 "Possible value types")
// ---------------------------------------------------------------------------------------------

/// Undoes the §4 escapes of a string, localestring or iconstring value: `\s` `\n` `\t` `\r` `\\`.
///
/// Any other backslash pair is kept as written rather than refused: §4 defines no other escape,
/// and files rely on this for `Exec` (the spec itself writes a literal `$` in a quoted argument
/// as `\\$` only because `\$` depends on this pass-through). A trailing lone backslash is kept.
pub fn unescape_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next) => push_unescaped(&mut out, next),
            None => out.push('\\'),
        }
    }
    out
}

fn push_unescaped(out: &mut String, after_backslash: char) {
    match after_backslash {
        's' => out.push(' '),
        'n' => out.push('\n'),
        't' => out.push('\t'),
        'r' => out.push('\r'),
        '\\' => out.push('\\'),
        other => {
            out.push('\\');
            out.push(other);
        }
    }
}

/// Splits a `string(s)` value on `;`, with `\;` standing for a literal semicolon (§4). Empty
/// items are dropped: a trailing `;` is optional and an empty category or keyword means nothing.
fn unescape_list(raw: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            ';' => items.push(std::mem::take(&mut current)),
            '\\' => match chars.next() {
                Some(';') => current.push(';'),
                Some(next) => push_unescaped(&mut current, next),
                None => current.push('\\'),
            },
            other => current.push(other),
        }
    }
    items.push(current);
    items.retain(|item| !item.is_empty());
    items
}

// ---------------------------------------------------------------------------------------------
// File format (§3 "Basic format of the file")
// ---------------------------------------------------------------------------------------------

/// The `[Desktop Entry]` group of one file: key (with a `[LOCALE]` postfix, encoding stripped)
/// to the raw value and its line number.
struct DesktopGroup<'a> {
    path: &'a Path,
    values: HashMap<String, (&'a str, usize)>,
}

impl<'a> DesktopGroup<'a> {
    fn parse(text: &'a str, path: &'a Path) -> Result<Self, EntryError> {
        let malformed = |line: usize, problem: FileProblem| EntryError::Malformed {
            path: path.to_owned(),
            line,
            problem,
        };
        let mut values = HashMap::new();
        let mut groups_seen: HashSet<&str> = HashSet::new();
        let mut current_group: Option<&str> = None;
        // §3: "a series of lines that are separated by linefeed characters".
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            // Lenient: a CR before the LF (a file saved on Windows) and indentation are dropped,
            // as GLib does; neither can be meant as part of a key, header or comment.
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = line.trim_start_matches([' ', '\t']);
            // §3.1: lines beginning with # and blank lines are comments.
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                // §3.2: "[groupname]"; names exclude [ ] and control characters.
                let header = line.trim_end_matches([' ', '\t']);
                let name = header
                    .strip_prefix('[')
                    .and_then(|rest| rest.strip_suffix(']'))
                    .filter(|name| !name.contains(['[', ']']) && !name.contains(char::is_control))
                    .ok_or_else(|| malformed(number, FileProblem::BadGroupHeader(line.into())))?;
                // §3.2: "Multiple groups may not have the same name."
                if !groups_seen.insert(name) {
                    return Err(malformed(number, FileProblem::DuplicateGroup(name.into())));
                }
                current_group = Some(name);
                continue;
            }
            // §3.2: nothing but comments may precede the first group.
            let Some(group) = current_group else {
                return Err(malformed(number, FileProblem::KeyOutsideGroup));
            };
            // Only [Desktop Entry] is read; actions and extension groups are not checked.
            if group != "Desktop Entry" {
                continue;
            }
            // §3.3: "Key=Value"; "Space before and after the equals sign should be ignored".
            // Trailing blanks are dropped too (lenient, as GLib): `\s` exists to keep one.
            let Some((key, value)) = line.split_once('=') else {
                return Err(malformed(number, FileProblem::NotKeyValue(line.into())));
            };
            let key = key.trim_end_matches([' ', '\t']);
            if key.is_empty() {
                return Err(malformed(number, FileProblem::NotKeyValue(line.into())));
            }
            let value = value.trim_matches([' ', '\t']);
            // §5: the postfix is matched "with the .ENCODING part stripped".
            let key = normalise_locale_postfix(key);
            // §3.3: "Multiple keys in the same group may not have the same name."
            if values.insert(key.clone(), (value, number)).is_some() {
                return Err(malformed(number, FileProblem::DuplicateKey(key)));
            }
        }
        if !groups_seen.contains("Desktop Entry") {
            return Err(EntryError::NoDesktopEntryGroup {
                path: path.to_owned(),
            });
        }
        Ok(DesktopGroup { path, values })
    }

    fn raw(&self, key: &str) -> Option<&'a str> {
        self.values.get(key).map(|(value, _)| *value)
    }

    fn string(&self, key: &str) -> Option<String> {
        self.raw(key).map(unescape_string)
    }

    /// A string that is absent when empty: `Icon=` means no icon (§7 on `%i`), and so on.
    fn non_empty_string(&self, key: &str) -> Option<String> {
        self.string(key).filter(|value| !value.is_empty())
    }

    /// The raw value of a localestring or iconstring key for the locale (§5).
    fn localised_raw(&self, key: &str, locale: Option<&Locale>) -> Option<&'a str> {
        locale
            .into_iter()
            .flat_map(Locale::candidates)
            .find_map(|postfix| self.raw(&format!("{key}[{postfix}]")))
            .or_else(|| self.raw(key))
    }

    fn localised_string(&self, key: &str, locale: Option<&Locale>) -> Option<String> {
        self.localised_raw(key, locale)
            .map(unescape_string)
            .filter(|value| !value.is_empty())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.raw(key).map(unescape_list).unwrap_or_default()
    }

    fn localised_list(&self, key: &str, locale: Option<&Locale>) -> Vec<String> {
        self.localised_raw(key, locale)
            .map(unescape_list)
            .unwrap_or_default()
    }

    /// §4: booleans "must either be the string true or false". Lenient: `1`/`0` too, which old
    /// KDE files wrote and GLib still reads; their meaning is not in doubt.
    fn boolean(&self, key: &str) -> Result<Option<bool>, EntryError> {
        let Some((value, line)) = self.values.get(key) else {
            return Ok(None);
        };
        match *value {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            other => Err(EntryError::Malformed {
                path: self.path.to_owned(),
                line: *line,
                problem: FileProblem::NotBoolean {
                    key: key.to_owned(),
                    value: other.to_owned(),
                },
            }),
        }
    }
}

/// `Name[de_DE.UTF-8@euro]` → `Name[de_DE@euro]`; keys without a postfix are unchanged.
fn normalise_locale_postfix(key: &str) -> String {
    let Some((base, postfix)) = key
        .strip_suffix(']')
        .and_then(|inner| inner.split_once('['))
    else {
        return key.to_owned();
    };
    let (before_modifier, modifier) = match postfix.split_once('@') {
        Some((before, modifier)) => (before, Some(modifier)),
        None => (postfix, None),
    };
    let without_encoding = before_modifier
        .split_once('.')
        .map_or(before_modifier, |(before, _)| before);
    match modifier {
        Some(modifier) => format!("{base}[{without_encoding}@{modifier}]"),
        None => format!("{base}[{without_encoding}]"),
    }
}

// ---------------------------------------------------------------------------------------------
// Desktop entries (§6 "Recognized desktop entry keys")
// ---------------------------------------------------------------------------------------------

/// An installed application, from the `[Desktop Entry]` group of its file. Localestring keys
/// hold the value for the locale the catalog was loaded with; all string values have their §4
/// escapes undone.
#[derive(Debug, Clone, Serialize)]
pub struct DesktopEntry {
    /// Desktop file ID without ".desktop", e.g. "org.mozilla.firefox" or "kde4-foo".
    pub id: String,
    pub path: PathBuf,
    /// `Name`, translated.
    pub name: String,
    pub generic_name: Option<String>,
    pub comment: Option<String>,
    /// `Icon`: a theme icon name or an absolute path.
    pub icon: Option<String>,
    /// The `Exec` command line, §4 escapes undone but §7 quoting and field codes still in place:
    /// the input of [`parse_exec`]. Use [`DesktopEntry::command`] to get an argv.
    pub exec: String,
    pub try_exec: Option<String>,
    /// `Path`: the working directory to run the program in.
    pub working_dir: Option<PathBuf>,
    pub terminal: bool,
    pub no_display: bool,
    pub categories: Vec<String>,
    pub keywords: Vec<String>,
    pub mime_types: Vec<String>,
    pub startup_wm_class: Option<String>,
    pub only_show_in: Vec<String>,
    pub not_show_in: Vec<String>,
    /// Ids of the `[Desktop Action <id>]` groups named by `Actions` (§11); not parsed further.
    pub actions: Vec<String>,
}

/// What one desktop file turned out to be.
#[derive(Debug, Clone)]
pub enum ParsedFile {
    Application(Box<DesktopEntry>),
    /// `Hidden=true`: §6 says this is "strictly equivalent to the .desktop file not existing".
    Hidden,
    /// Link, Directory or an unknown type, which §6 says to ignore.
    OtherType(String),
}

impl DesktopEntry {
    /// Parses one desktop file's bytes. `id` is its desktop file ID without ".desktop".
    pub fn from_bytes(
        id: &str,
        path: &Path,
        bytes: &[u8],
        locale: Option<&Locale>,
    ) -> Result<ParsedFile, EntryError> {
        // §3: "Desktop entry files are encoded in UTF-8"; refuse the file, naming the line.
        let text = std::str::from_utf8(bytes).map_err(|error| {
            let valid = bytes.get(..error.valid_up_to()).unwrap_or_default();
            EntryError::NotUtf8 {
                path: path.to_owned(),
                line: 1 + valid.iter().filter(|&&byte| byte == b'\n').count(),
            }
        })?;
        // A NUL can reach neither execve nor D-Bus (whose strings may not hold one: sent in a
        // unit's Description or ExecStart it would get the connection dropped), so a file
        // with one is refused here, once, rather than at each use of a value.
        if let Some(nul) = text.find('\0') {
            return Err(EntryError::Malformed {
                path: path.to_owned(),
                line: 1 + text[..nul].matches('\n').count(),
                problem: FileProblem::NulByte,
            });
        }
        let group = DesktopGroup::parse(text, path)?;
        // Hidden first: a user's "deleted" override often carries nothing else, not even Type.
        if group.boolean("Hidden")?.unwrap_or(false) {
            return Ok(ParsedFile::Hidden);
        }
        let kind = group.string("Type").ok_or(EntryError::MissingKey {
            path: path.to_owned(),
            key: "Type",
        })?;
        if kind != "Application" {
            return Ok(ParsedFile::OtherType(kind));
        }
        let name = group
            .localised_raw("Name", locale)
            .map(unescape_string)
            .ok_or(EntryError::MissingKey {
                path: path.to_owned(),
                key: "Name",
            })?;
        // §6: Exec may be absent only with DBusActivatable=true; either way we cannot run it.
        let exec = group.string("Exec").ok_or(EntryError::NoExec {
            path: path.to_owned(),
        })?;
        let entry = DesktopEntry {
            id: id.to_owned(),
            path: path.to_owned(),
            name,
            generic_name: group.localised_string("GenericName", locale),
            comment: group.localised_string("Comment", locale),
            icon: group.localised_string("Icon", locale),
            exec,
            try_exec: group.non_empty_string("TryExec"),
            working_dir: group.non_empty_string("Path").map(PathBuf::from),
            terminal: group.boolean("Terminal")?.unwrap_or(false),
            no_display: group.boolean("NoDisplay")?.unwrap_or(false),
            categories: group.list("Categories"),
            keywords: group.localised_list("Keywords", locale),
            mime_types: group.list("MimeType"),
            startup_wm_class: group.non_empty_string("StartupWMClass"),
            only_show_in: group.list("OnlyShowIn"),
            not_show_in: group.list("NotShowIn"),
            actions: group.list("Actions"),
        };
        Ok(ParsedFile::Application(Box::new(entry)))
    }

    /// False when `TryExec` names a program that is missing or not executable (§6 `TryExec`:
    /// an absolute path, or else looked up in `$PATH`). Checked on each call, so an app
    /// installed since the catalog was loaded counts.
    pub fn is_installed(&self) -> bool {
        self.try_exec
            .as_deref()
            .is_none_or(|program| try_exec_found(program, std::env::var_os("PATH").as_deref()))
    }

    /// Whether §6 `OnlyShowIn`/`NotShowIn` let the entry show in the given desktops (the
    /// `XDG_CURRENT_DESKTOP` list, see [`current_desktops`]).
    pub fn shown_in(&self, desktops: &[String]) -> bool {
        if !self.only_show_in.is_empty() {
            return desktops.iter().any(|d| self.only_show_in.contains(d));
        }
        !desktops.iter().any(|d| self.not_show_in.contains(d))
    }

    /// The code that takes the files or URLs to open (`%f`, `%F`, `%u` or `%U`), if the line
    /// has one and parses.
    pub fn target_code(&self) -> Option<FieldCode> {
        parse_command_line(&self.exec)
            .ok()?
            .into_iter()
            .find_map(|arg| match arg {
                ExecArg::Field(code) if code.takes_targets() => Some(code),
                ExecArg::Template(pieces) => pieces.into_iter().find_map(|piece| match piece {
                    ArgPiece::Field(code) if code.takes_targets() => Some(code),
                    _ => None,
                }),
                _ => None,
            })
    }

    /// The argv to run, with field codes expanded for `targets` (files or URLs to open).
    /// Never passed to a shell: every element is one argument, byte for byte.
    pub fn command(&self, targets: &[String]) -> Result<Vec<String>, ExecError> {
        if let Some(try_exec) = &self.try_exec
            && !self.is_installed()
        {
            return Err(ExecError::NotInstalled {
                id: self.id.clone(),
                path: self.path.clone(),
                try_exec: try_exec.clone(),
            });
        }
        let args = parse_command_line(&self.exec).map_err(|problem| ExecError::InvalidExec {
            id: self.id.clone(),
            path: self.path.clone(),
            exec: self.exec.clone(),
            problem,
        })?;
        self.expand(&args, targets)
    }

    /// §7 field codes → arguments.
    fn expand(&self, args: &[ExecArg], targets: &[String]) -> Result<Vec<String>, ExecError> {
        let file_code = args.iter().find_map(|arg| match arg {
            ExecArg::Field(code) if code.takes_targets() => Some(*code),
            ExecArg::Template(pieces) => pieces.iter().find_map(|piece| match piece {
                ArgPiece::Field(code) if code.takes_targets() => Some(*code),
                _ => None,
            }),
            _ => None,
        });
        match file_code {
            // Refused rather than dropped: opening nothing when asked to open something would
            // look like a launch that worked.
            None if !targets.is_empty() => {
                return Err(ExecError::TargetsNotAccepted {
                    id: self.id.clone(),
                    path: self.path.clone(),
                    count: targets.len(),
                });
            }
            // %f/%u take one target; §7 leaves it to the launcher to start one copy per file,
            // which is the caller's decision (each copy is its own unit), not ours.
            Some(code @ (FieldCode::File | FieldCode::Url)) if targets.len() > 1 => {
                return Err(ExecError::TooManyTargets {
                    id: self.id.clone(),
                    path: self.path.clone(),
                    code,
                    count: targets.len(),
                });
            }
            _ => {}
        }
        // %k: a local file name (§7). Paths in the catalog are UTF-8 (checked when loading).
        let location = self.path.to_string_lossy().into_owned();
        let mut argv = Vec::with_capacity(args.len() + targets.len());
        for arg in args {
            match arg {
                ExecArg::Literal(text) => argv.push(text.clone()),
                // %F/%U: one argument per target; none given removes the code (§7).
                ExecArg::Field(FieldCode::Files | FieldCode::Urls) => {
                    argv.extend(targets.iter().cloned())
                }
                ExecArg::Field(FieldCode::File | FieldCode::Url) => {
                    argv.extend(targets.first().cloned())
                }
                // §7 %i: "--icon" and the Icon value as two arguments, nothing without an icon.
                ExecArg::Field(FieldCode::Icon) => {
                    if let Some(icon) = &self.icon {
                        argv.push("--icon".to_owned());
                        argv.push(icon.clone());
                    }
                }
                ExecArg::Field(FieldCode::Name) => argv.push(self.name.clone()),
                ExecArg::Field(FieldCode::DesktopFile) => argv.push(location.clone()),
                ExecArg::Template(pieces) => {
                    let mut text = String::new();
                    for piece in pieces {
                        match piece {
                            ArgPiece::Text(part) => text.push_str(part),
                            // `--file=%f` with no file keeps `--file=`: the code is removed,
                            // the rest of the argument is the file author's text.
                            ArgPiece::Field(FieldCode::File | FieldCode::Url) => {
                                text.push_str(targets.first().map_or("", String::as_str))
                            }
                            ArgPiece::Field(FieldCode::Name) => text.push_str(&self.name),
                            ArgPiece::Field(FieldCode::DesktopFile) => text.push_str(&location),
                            // parse_command_line refuses these inside a longer argument.
                            ArgPiece::Field(
                                FieldCode::Files | FieldCode::Urls | FieldCode::Icon,
                            ) => {}
                        }
                    }
                    argv.push(text);
                }
            }
        }
        Ok(argv)
    }

    /// The program `Exec` runs, looking through an `env NAME=value …` prefix (snap and wine
    /// entries use one). `None` when the line does not parse.
    fn program(&self) -> Option<String> {
        let args = parse_command_line(&self.exec).ok()?;
        let mut literals = args.into_iter().map_while(|arg| match arg {
            ExecArg::Literal(text) => Some(text),
            _ => None,
        });
        let first = literals.next()?;
        if basename(&first) != "env" {
            return Some(first);
        }
        literals.find(|arg| !arg.contains('=') && !arg.starts_with('-'))
    }
}

/// `XDG_CURRENT_DESKTOP`, split on `:`, for [`DesktopEntry::shown_in`].
pub fn current_desktops() -> Vec<String> {
    std::env::var("XDG_CURRENT_DESKTOP")
        .unwrap_or_default()
        .split(':')
        .filter(|desktop| !desktop.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The Exec key (§7)
// ---------------------------------------------------------------------------------------------

/// A §7 field code that is expanded (deprecated ones are removed while parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum FieldCode {
    /// `%f`: a single file name.
    File,
    /// `%F`: a list of files.
    Files,
    /// `%u`: a single URL.
    Url,
    /// `%U`: a list of URLs.
    Urls,
    /// `%i`: `--icon <Icon>`.
    Icon,
    /// `%c`: the translated Name.
    Name,
    /// `%k`: the location of the desktop file.
    DesktopFile,
}

impl FieldCode {
    fn letter(self) -> char {
        match self {
            FieldCode::File => 'f',
            FieldCode::Files => 'F',
            FieldCode::Url => 'u',
            FieldCode::Urls => 'U',
            FieldCode::Icon => 'i',
            FieldCode::Name => 'c',
            FieldCode::DesktopFile => 'k',
        }
    }

    fn takes_targets(self) -> bool {
        matches!(
            self,
            FieldCode::File | FieldCode::Files | FieldCode::Url | FieldCode::Urls
        )
    }

    /// §7: "The %F and %U field codes may only be used as an argument on their own." `%i` too
    /// (our choice): it expands to two arguments, which cannot sit inside a third.
    fn must_stand_alone(self) -> bool {
        matches!(self, FieldCode::Files | FieldCode::Urls | FieldCode::Icon)
    }
}

impl fmt::Display for FieldCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.letter())
    }
}

enum FieldLetter {
    Code(FieldCode),
    /// §7: "Deprecated field codes should be removed from the command line and ignored."
    Deprecated,
    /// §7: a line with a field code not in the spec is "invalid and must not be processed".
    Unknown,
}

fn field_letter(letter: char) -> FieldLetter {
    match letter {
        'f' => FieldLetter::Code(FieldCode::File),
        'F' => FieldLetter::Code(FieldCode::Files),
        'u' => FieldLetter::Code(FieldCode::Url),
        'U' => FieldLetter::Code(FieldCode::Urls),
        'i' => FieldLetter::Code(FieldCode::Icon),
        'c' => FieldLetter::Code(FieldCode::Name),
        'k' => FieldLetter::Code(FieldCode::DesktopFile),
        'd' | 'D' | 'n' | 'N' | 'v' | 'm' => FieldLetter::Deprecated,
        _ => FieldLetter::Unknown,
    }
}

/// Part of an argument that mixes text and field codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgPiece {
    Text(String),
    Field(FieldCode),
}

/// One argument of a parsed `Exec` line, quoting undone and `%%` already `%`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecArg {
    /// Plain text: exactly one argument.
    Literal(String),
    /// A field code that is the whole argument: zero, one or several arguments.
    Field(FieldCode),
    /// Text with `%f`, `%u`, `%c` or `%k` inside, e.g. `--file=%f`: exactly one argument.
    Template(Vec<ArgPiece>),
}

/// §7 reserved characters, less those the tokenizer handles itself (space separates, `"`
/// quotes, `\` escapes). Outside double quotes these make the line invalid.
fn is_reserved(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\''
            | '>'
            | '<'
            | '~'
            | '|'
            | '&'
            | ';'
            | '$'
            | '*'
            | '?'
            | '#'
            | '('
            | ')'
            | '`'
    )
}

/// Parses an `Exec` command line (its §4 escapes already undone, as in [`DesktopEntry::exec`];
/// use [`unescape_string`] on a value taken straight from a file).
///
/// Strict where §7 says "must": reserved characters outside double quotes, unknown field
/// codes, unterminated quotes, more than one file code, `%F`/`%U`/`%i` inside a longer
/// argument and `=` in the program name are errors. Lenient only where the meaning is not in
/// doubt and real files depend on it, each matching GLib and KDE:
/// - quotes around part of an argument (`WINEPREFIX="/x y"`, written by wine) join with the
///   text around them, as if the whole argument were quoted;
/// - outside quotes, a backslash makes the next character literal (wine writes `C:\\\\dir` and
///   `Start\\ Menu`, relying on it);
/// - inside quotes, an unescaped `$` or backtick is kept as itself (the escape exists only for
///   launchers that use a shell), as is a backslash before any other character;
/// - runs of spaces separate like one space;
/// - a `%` not followed by a letter is a literal `%` (it cannot be a field code).
///
/// Inside double quotes field codes are *not* expanded (§7 leaves the result undefined): `%%`
/// still becomes `%`, every other `%x` stays as written. Expanding there would splice a file
/// name into text the file author quoted as a unit, e.g. a `sh -c "… %f"` script, which is the
/// classic way a crafted file name gets run as a command.
pub fn parse_exec(exec: &str) -> Result<Vec<ExecArg>, ExecError> {
    parse_command_line(exec).map_err(|problem| ExecError::Syntax {
        exec: exec.to_owned(),
        problem,
    })
}

/// The argument being read.
#[derive(Default)]
struct ArgBuilder {
    pieces: Vec<ArgPiece>,
    /// A quoted part was seen, so `""` is a (empty) argument.
    quoted: bool,
}

impl ArgBuilder {
    fn push_char(&mut self, c: char) {
        if let Some(ArgPiece::Text(text)) = self.pieces.last_mut() {
            text.push(c);
        } else {
            self.pieces.push(ArgPiece::Text(c.to_string()));
        }
    }

    fn finish(mut self) -> Option<ExecArg> {
        match self.pieces.len() {
            // Only deprecated codes, which are removed along with their argument.
            0 if !self.quoted => None,
            0 => Some(ExecArg::Literal(String::new())),
            1 => match self.pieces.pop() {
                Some(ArgPiece::Text(text)) => Some(ExecArg::Literal(text)),
                Some(ArgPiece::Field(code)) => Some(ExecArg::Field(code)),
                None => None,
            },
            _ => Some(ExecArg::Template(self.pieces)),
        }
    }
}

fn parse_command_line(line: &str) -> Result<Vec<ExecArg>, ExecSyntax> {
    let mut args = Vec::new();
    let mut current: Option<ArgBuilder> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // §7: "Arguments are separated by a space."
            ' ' => {
                if let Some(arg) = current.take().and_then(ArgBuilder::finish) {
                    args.push(arg);
                }
            }
            '"' => {
                let arg = current.get_or_insert_default();
                arg.quoted = true;
                read_quoted(&mut chars, arg)?;
            }
            '\\' => {
                let escaped = chars.next().ok_or(ExecSyntax::TrailingBackslash)?;
                current.get_or_insert_default().push_char(escaped);
            }
            '%' => {
                let arg = current.get_or_insert_default();
                match chars.peek().copied() {
                    // §7: "Literal percentage characters must be escaped as %%."
                    Some('%') => {
                        chars.next();
                        arg.push_char('%');
                    }
                    // §7: "the percentage character followed by an alpha character".
                    Some(letter) if letter.is_ascii_alphabetic() => {
                        chars.next();
                        match field_letter(letter) {
                            FieldLetter::Code(code) => arg.pieces.push(ArgPiece::Field(code)),
                            FieldLetter::Deprecated => {}
                            FieldLetter::Unknown => {
                                return Err(ExecSyntax::UnknownFieldCode(letter));
                            }
                        }
                    }
                    _ => arg.push_char('%'),
                }
            }
            c if is_reserved(c) => return Err(ExecSyntax::UnquotedReserved(c)),
            c => current.get_or_insert_default().push_char(c),
        }
    }
    if let Some(arg) = current.and_then(ArgBuilder::finish) {
        args.push(arg);
    }
    validate_command_line(&args)?;
    Ok(args)
}

/// Reads up to and including the closing `"`. §7: inside quotes `"`, backtick, `$` and `\` are
/// escaped with a backslash.
fn read_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    arg: &mut ArgBuilder,
) -> Result<(), ExecSyntax> {
    loop {
        match chars.next() {
            None => return Err(ExecSyntax::UnterminatedQuote),
            Some('"') => return Ok(()),
            Some('\\') => match chars.peek().copied() {
                Some(escaped @ ('"' | '`' | '$' | '\\')) => {
                    chars.next();
                    arg.push_char(escaped);
                }
                Some(_) => arg.push_char('\\'),
                None => return Err(ExecSyntax::UnterminatedQuote),
            },
            Some('%') => {
                if chars.peek() == Some(&'%') {
                    chars.next();
                }
                arg.push_char('%');
            }
            Some(other) => arg.push_char(other),
        }
    }
}

/// The §7 rules that concern the whole line rather than one character.
fn validate_command_line(args: &[ExecArg]) -> Result<(), ExecSyntax> {
    // §7: "A command line consists of an executable program optionally followed by one or
    // more arguments." A field code as the program would run whatever file was opened.
    match args.first() {
        None => return Err(ExecSyntax::Empty),
        Some(ExecArg::Literal(program)) if program.is_empty() => {
            return Err(ExecSyntax::EmptyProgram);
        }
        // §7: "The name or path of the executable program may not contain the equal sign".
        Some(ExecArg::Literal(program)) if program.contains('=') => {
            return Err(ExecSyntax::EqualsInProgram);
        }
        Some(ExecArg::Literal(_)) => {}
        Some(_) => return Err(ExecSyntax::ProgramIsFieldCode),
    }
    let mut file_codes = 0;
    for arg in args {
        match arg {
            ExecArg::Field(code) if code.takes_targets() => file_codes += 1,
            ExecArg::Template(pieces) => {
                for piece in pieces {
                    if let ArgPiece::Field(code) = piece {
                        if code.must_stand_alone() {
                            return Err(ExecSyntax::FieldCodeNotAlone(*code));
                        }
                        if code.takes_targets() {
                            file_codes += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    // §7: "A command line may contain at most one %f, %u, %F or %U field code."
    if file_codes > 1 {
        return Err(ExecSyntax::SeveralFileFieldCodes);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Finding programs
// ---------------------------------------------------------------------------------------------

/// Where `program` would be run from: a name with a `/` is taken as a path (as execvp does),
/// a bare name is looked up in `$PATH`. `None` unless it is a regular file with an execute bit.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    find_in_search_path(program, std::env::var_os("PATH").as_deref())
}

/// The default search path of execvp when `PATH` is unset (glibc's `confstr(_CS_PATH)`).
const DEFAULT_SEARCH_PATH: &str = "/bin:/usr/bin";

/// [`find_in_path`] with a given search path (`None`: execvp's default).
pub fn find_in_search_path(program: &str, search_path: Option<&OsStr>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable_file(&path).then_some(path);
    }
    search_path_dirs(search_path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// `$PATH` directories. Empty and relative entries (POSIX: the current directory) are skipped
/// so that what gets launched never depends on where Corral happened to be started.
fn search_path_dirs(search_path: Option<&OsStr>) -> impl Iterator<Item = PathBuf> {
    let search_path = search_path
        .filter(|value| !value.is_empty())
        .unwrap_or(OsStr::new(DEFAULT_SEARCH_PATH));
    std::env::split_paths(search_path)
        .filter(|dir| dir.is_absolute())
        .collect::<Vec<_>>()
        .into_iter()
}

/// §6 `TryExec`: "If the path is not an absolute path, the file is looked up in the $PATH".
fn try_exec_found(program: &str, search_path: Option<&OsStr>) -> bool {
    let path = Path::new(program);
    if path.is_absolute() {
        return is_executable_file(path);
    }
    !program.is_empty()
        && search_path_dirs(search_path).any(|dir| is_executable_file(&dir.join(program)))
}

/// A regular file (after symlinks) with any execute bit. This is the mode check, not
/// access(2): good enough to tell "installed" from "gone", and exec reports the rest.
pub fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

// ---------------------------------------------------------------------------------------------
// The catalog
// ---------------------------------------------------------------------------------------------

/// The `applications` directories in precedence order: `$XDG_DATA_HOME` (default
/// `~/.local/share`), then each of `$XDG_DATA_DIRS` (default `/usr/local/share:/usr/share`).
pub fn application_dirs() -> Vec<PathBuf> {
    application_dirs_from(
        std::env::var_os("XDG_DATA_HOME").as_deref(),
        std::env::var_os("XDG_DATA_DIRS").as_deref(),
        std::env::var_os("HOME").as_deref(),
    )
}

/// The `applications` directories an app run as root may come from: the system's own, which
/// only root can change. Not `$XDG_DATA_HOME` nor `$XDG_DATA_DIRS`, which are the caller's:
/// a desktop entry there (or one shadowing a system entry) would be any user's command run as
/// root.
pub fn system_application_dirs() -> Vec<PathBuf> {
    [
        "/usr/local/share/applications",
        "/usr/share/applications",
        // Flatpak apps installed system-wide (by root) export their entries here.
        "/var/lib/flatpak/exports/share/applications",
    ]
    .map(PathBuf::from)
    .to_vec()
}

fn application_dirs_from(
    data_home: Option<&OsStr>,
    data_dirs: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Vec<PathBuf> {
    // basedir: unset or empty means the default, and relative paths "should be considered
    // invalid and ignored".
    let absolute = |value: Option<&OsStr>| {
        value
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let data_home = absolute(data_home)
        .or_else(|| absolute(home).map(|home| home.join(".local").join("share")));
    let data_dirs: Vec<PathBuf> = match data_dirs.filter(|v| !v.is_empty()) {
        Some(value) => std::env::split_paths(value)
            .filter(|p| p.is_absolute())
            .collect(),
        None => vec![
            PathBuf::from("/usr/local/share"),
            PathBuf::from("/usr/share"),
        ],
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    for base in data_home.into_iter().chain(data_dirs) {
        let dir = base.join("applications");
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Subdirectories deeper than this are not scanned; real trees are one or two levels deep.
const MAX_SCAN_DEPTH: usize = 8;

/// The installed applications, by desktop file ID.
#[derive(Debug, Default)]
pub struct AppCatalog {
    entries: BTreeMap<String, DesktopEntry>,
    warnings: Vec<EntryError>,
    /// The desktops whose OnlyShowIn/NotShowIn the picker honours (§6); `None`: every entry.
    desktops: Option<Vec<String>>,
}

impl AppCatalog {
    /// Scans [`application_dirs`] with the locale from the environment.
    /// Its picker shows what the current desktop (`XDG_CURRENT_DESKTOP`) may show.
    pub fn load() -> AppCatalog {
        AppCatalog::load_from_with_locale(&application_dirs(), Locale::from_env().as_ref())
            .shown_in(current_desktops())
    }

    /// The same catalog, whose picker shows only what `desktops` may show (§6 `OnlyShowIn`,
    /// `NotShowIn`).
    pub fn shown_in(mut self, desktops: Vec<String>) -> AppCatalog {
        self.desktops = Some(desktops);
        self
    }

    /// The apps that can be launched on `manager`: the session's for the user manager, only
    /// the system-wide ones ([`system_application_dirs`]) for the system manager.
    pub fn load_for(manager: crate::systemd::ManagerKind) -> AppCatalog {
        match manager {
            crate::systemd::ManagerKind::User => AppCatalog::load(),
            crate::systemd::ManagerKind::System => AppCatalog::load_from_with_locale(
                &system_application_dirs(),
                Locale::from_env().as_ref(),
            )
            .shown_in(current_desktops()),
        }
    }

    /// Scans the given `applications` directories, highest precedence first.
    pub fn load_from(dirs: &[PathBuf]) -> AppCatalog {
        AppCatalog::load_from_with_locale(dirs, Locale::from_env().as_ref())
    }

    /// Scans the given `applications` directories, translating for `locale` (`None`: the
    /// untranslated values).
    pub fn load_from_with_locale(dirs: &[PathBuf], locale: Option<&Locale>) -> AppCatalog {
        let mut catalog = AppCatalog::default();
        // IDs taken by a higher-precedence directory: "If multiple files have the same desktop
        // file ID, the first one in the $XDG_DATA_DIRS precedence order is used" (§2). The
        // first file claims the ID even if it is broken, hidden or not an application, so a
        // user's override always shadows the system file.
        let mut claimed: HashSet<String> = HashSet::new();
        for dir in dirs {
            let mut files = Vec::new();
            let mut visited = HashSet::new();
            if let Ok(canonical) = fs::canonicalize(dir) {
                visited.insert(canonical);
            }
            collect_desktop_files(dir, dir, 0, &mut files, &mut catalog.warnings, &mut visited);
            for (id, path) in files {
                // Within one directory, `foo-bar.desktop` against `foo/bar.desktop` is left
                // undefined by §2; the scan order (sorted) decides.
                if !claimed.insert(id.clone()) {
                    continue;
                }
                let parsed =
                    crate::paths::read_capped(&path, crate::paths::DESKTOP_ENTRY_MAX_BYTES, true)
                        .map_err(|source| EntryError::Io {
                            path: path.clone(),
                            source,
                        })
                        .and_then(|bytes| DesktopEntry::from_bytes(&id, &path, &bytes, locale));
                match parsed {
                    Ok(ParsedFile::Application(entry)) => {
                        catalog.entries.insert(id, *entry);
                    }
                    Ok(ParsedFile::Hidden | ParsedFile::OtherType(_)) => {}
                    Err(error) => catalog.warnings.push(error),
                }
            }
        }
        catalog
    }

    /// Looks an app up by desktop file ID, with or without ".desktop" ("org.mozilla.firefox",
    /// "org.mozilla.firefox.desktop"), then ignoring case, then by the last dot-separated part
    /// of the ID ("firefox"). A lookup that matches several apps gives `None`.
    pub fn get(&self, query: &str) -> Option<&DesktopEntry> {
        let id = query.strip_suffix(".desktop").unwrap_or(query);
        if let Some(entry) = self.entries.get(id) {
            return Some(entry);
        }
        let lower = id.to_lowercase();
        only_match(
            self.entries
                .values()
                .filter(|entry| entry.id.to_lowercase() == lower),
        )
        .or_else(|| {
            only_match(self.entries.values().filter(|entry| {
                entry
                    .id
                    .rsplit('.')
                    .next()
                    .is_some_and(|last| last.to_lowercase() == lower)
            }))
        })
    }

    /// Every application entry, NoDisplay and not-installed ones included, by ID.
    pub fn all(&self) -> impl Iterator<Item = &DesktopEntry> {
        self.entries.values()
    }

    /// The apps for a picker, sorted by name: without NoDisplay entries (§6: "don't display
    /// it in the menus"), without entries whose TryExec is missing (§6: they "may be
    /// ignored (not be used in menus, for example)"), and without those OnlyShowIn/NotShowIn
    /// keep from this desktop (see [`shown_in`](Self::shown_in)). The window's launcher and
    /// `corral apps` both list these, and both search them with [`search`](Self::search).
    pub fn apps(&self) -> Vec<&DesktopEntry> {
        let mut apps: Vec<&DesktopEntry> = self
            .entries
            .values()
            .filter(|entry| !entry.no_display && entry.is_installed())
            .filter(|entry| self.desktops.as_ref().is_none_or(|d| entry.shown_in(d)))
            .collect();
        apps.sort_by_cached_key(|entry| (entry.name.to_lowercase(), entry.id.clone()));
        apps
    }

    /// The [`apps`](Self::apps) whose name, generic name, keywords or ID contain `query`,
    /// ignoring case: names starting with it first, then names containing it, then the rest.
    pub fn search(&self, query: &str) -> Vec<&DesktopEntry> {
        search_among(self.apps(), query)
    }

    /// Entries whose Exec program (past an `env VAR=value` prefix) or TryExec has the same
    /// file name as `executable`, e.g. "firefox" or "/usr/lib/firefox/firefox". By ID.
    pub fn find_by_executable(&self, executable: &str) -> Vec<&DesktopEntry> {
        let wanted = basename(executable);
        if wanted.is_empty() {
            return Vec::new();
        }
        self.entries
            .values()
            .filter(|entry| {
                entry.program().is_some_and(|p| basename(&p) == wanted)
                    || entry
                        .try_exec
                        .as_deref()
                        .is_some_and(|t| basename(t) == wanted)
            })
            .collect()
    }

    /// Files that were skipped, with why; for the caller to show or log.
    pub fn warnings(&self) -> &[EntryError] {
        &self.warnings
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The single item of `matches`, or `None` for none or several.
fn only_match<'a>(mut matches: impl Iterator<Item = &'a DesktopEntry>) -> Option<&'a DesktopEntry> {
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

/// [`AppCatalog::search`] among `apps`, sorted by name as [`AppCatalog::apps`] sorts them: for
/// a caller that keeps that list while the person types (a search per keystroke need not look
/// for every TryExec program again).
pub fn search_among<'a>(apps: Vec<&'a DesktopEntry>, query: &str) -> Vec<&'a DesktopEntry> {
    let query = query.trim().to_lowercase();
    let mut ranked: Vec<(u8, &DesktopEntry)> = apps
        .into_iter()
        .filter_map(|entry| search_rank(entry, &query).map(|rank| (rank, entry)))
        .collect();
    // The apps are sorted by name already, and the sort is stable.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, entry)| entry).collect()
}

fn search_rank(entry: &DesktopEntry, query: &str) -> Option<u8> {
    let name = entry.name.to_lowercase();
    if name.starts_with(query) {
        return Some(0);
    }
    if name.contains(query) {
        return Some(1);
    }
    let other_fields_match = entry
        .generic_name
        .iter()
        .chain(&entry.keywords)
        .chain(std::iter::once(&entry.id))
        .any(|field| field.to_lowercase().contains(query));
    other_fields_match.then_some(2)
}

/// Collects `(desktop file ID, path)` for every `.desktop` file under `dir`, sorted.
/// §2 "Desktop File ID": the path relative to the applications directory, `/` turned into `-`.
fn collect_desktop_files(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
    warnings: &mut Vec<EntryError>,
    visited: &mut HashSet<PathBuf>,
) {
    let read_dir = match fs::read_dir(dir) {
        Ok(read_dir) => read_dir,
        // A data directory without applications is normal.
        Err(error) if error.kind() == io::ErrorKind::NotFound && dir == root => return,
        Err(source) => {
            warnings.push(EntryError::Io {
                path: dir.to_owned(),
                source,
            });
            return;
        }
    };
    let mut paths = Vec::new();
    for item in read_dir {
        match item {
            Ok(item) => paths.push(item.path()),
            Err(source) => warnings.push(EntryError::Io {
                path: dir.to_owned(),
                source,
            }),
        }
    }
    paths.sort();
    for path in paths {
        let is_desktop_file = path.extension() == Some(OsStr::new("desktop"));
        // fs::metadata follows symlinks: distributions link .desktop files and directories.
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(source) => {
                // A dangling link to a .desktop file is worth a warning; other debris is not.
                if is_desktop_file {
                    warnings.push(EntryError::Io { path, source });
                }
                continue;
            }
        };
        if meta.is_dir() {
            // Symlinked directories can loop; visit each real directory once.
            let first_visit = fs::canonicalize(&path).is_ok_and(|real| visited.insert(real));
            if depth < MAX_SCAN_DEPTH && first_visit {
                collect_desktop_files(root, &path, depth + 1, out, warnings, visited);
            }
            continue;
        }
        if !meta.is_file() || !is_desktop_file {
            continue;
        }
        let (Some(relative), Some(_)) = (
            path.strip_prefix(root).ok().and_then(Path::to_str),
            path.to_str(),
        ) else {
            warnings.push(EntryError::NonUtf8Path { path });
            continue;
        };
        let stem = relative.strip_suffix(".desktop").unwrap_or(relative);
        out.push((stem.replace('/', "-"), path.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- helpers ------------------------------------------------------------------------------

    fn write(dir: &Path, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        path
    }

    fn app(name: &str, exec: &str) -> String {
        format!("[Desktop Entry]\nType=Application\nName={name}\nExec={exec}\n")
    }

    /// An entry parsed from file text (so the §4 layer applies), untranslated.
    fn entry_from(text: &str) -> DesktopEntry {
        let path = Path::new("/usr/share/applications/org.example.App.desktop");
        match DesktopEntry::from_bytes("org.example.App", path, text.as_bytes(), None).unwrap() {
            ParsedFile::Application(entry) => *entry,
            other => panic!("not an application: {other:?}"),
        }
    }

    fn entry_with_exec(exec: &str) -> DesktopEntry {
        entry_from(&app("Example App", exec))
    }

    /// Exec value as written in a file → argv.
    fn argv(exec_in_file: &str, targets: &[&str]) -> Result<Vec<String>, ExecError> {
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        entry_with_exec(exec_in_file).command(&targets)
    }

    fn syntax(exec: &str) -> ExecSyntax {
        match parse_exec(exec) {
            Err(ExecError::Syntax { problem, .. }) => problem,
            other => panic!("{exec:?} parsed: {other:?}"),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn make_executable(dir: &Path, name: &str) -> PathBuf {
        let path = write(dir, name, "#!/bin/sh\n");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    // -- Exec: quoting ------------------------------------------------------------------------

    #[test]
    fn exec_plain_arguments_split_on_spaces() {
        assert_eq!(
            argv("fooview --new-window  --x", &[]).unwrap(),
            strings(&["fooview", "--new-window", "--x"])
        );
    }

    #[test]
    fn exec_spec_example_fooview_with_file_list() {
        // Appendix A's example entry: `Exec=fooview %F`.
        assert_eq!(
            argv("fooview %F", &["/tmp/a b.png", "/tmp/c.png"]).unwrap(),
            strings(&["fooview", "/tmp/a b.png", "/tmp/c.png"])
        );
        assert_eq!(argv("fooview %F", &[]).unwrap(), strings(&["fooview"]));
    }

    #[test]
    fn exec_quoted_arguments_keep_spaces() {
        assert_eq!(
            argv(r#""/opt/My App/bin/app" --title "Hello World" """#, &[]).unwrap(),
            strings(&["/opt/My App/bin/app", "--title", "Hello World", ""])
        );
    }

    #[test]
    fn exec_escapes_inside_quotes() {
        // At the §7 layer (after §4): \" \` \$ \\ stand for the character.
        let args = parse_exec(r#"echo "a\"b" "c\$d" "e\\f" "g\`h""#).unwrap();
        assert_eq!(
            args,
            vec![
                ExecArg::Literal("echo".into()),
                ExecArg::Literal("a\"b".into()),
                ExecArg::Literal("c$d".into()),
                ExecArg::Literal("e\\f".into()),
                ExecArg::Literal("g`h".into()),
            ]
        );
    }

    #[test]
    fn exec_spec_double_escape_examples() {
        // §7: a literal backslash in a quoted argument is four backslashes in the file, and a
        // literal `$` is `\\$`: §4 unescaping comes first, then quoting.
        assert_eq!(
            argv(r#"printf "\\\\" "\\$HOME" "a\\\\b""#, &[]).unwrap(),
            strings(&["printf", "\\", "$HOME", "a\\b"])
        );
        // The §4 layer alone: `\s` is a space, which then separates arguments.
        assert_eq!(argv(r"foo\sbar", &[]).unwrap(), strings(&["foo", "bar"]));
        // And `\"` written directly in the file survives §4 as `\"`, then unquotes to `"`.
        assert_eq!(
            argv(r#"echo "say \"hi\"""#, &[]).unwrap(),
            strings(&["echo", "say \"hi\""])
        );
    }

    #[test]
    fn exec_hostile_text_stays_inside_its_argument() {
        assert_eq!(
            argv(r#"sh -c "a; b""#, &[]).unwrap(),
            strings(&["sh", "-c", "a; b"])
        );
        // Unescaped $ and backtick inside quotes are kept (lenient), and are just bytes.
        assert_eq!(
            argv(r#"foo "$(rm -rf ~)" "`id`" "x && y | z > w""#, &[]).unwrap(),
            strings(&["foo", "$(rm -rf ~)", "`id`", "x && y | z > w"])
        );
    }

    #[test]
    fn exec_real_world_emacsclient_line() {
        // GNU Emacs' emacsclient.desktop: a shell script as one quoted argument, with the
        // spec's `\\"` and `\\$` double escapes, and %F as an argument of its own.
        let exec = r#"sh -c "if [ -n \\"\\$*\\" ]; then exec emacsclient --alternate-editor= --display=\\"\\$DISPLAY\\" \\"\\$@\\"; else exec emacsclient --alternate-editor= --create-frame; fi" sh %F"#;
        assert_eq!(
            argv(exec, &["/tmp/a b.txt"]).unwrap(),
            strings(&[
                "sh",
                "-c",
                r#"if [ -n "$*" ]; then exec emacsclient --alternate-editor= --display="$DISPLAY" "$@"; else exec emacsclient --alternate-editor= --create-frame; fi"#,
                "sh",
                "/tmp/a b.txt",
            ])
        );
    }

    #[test]
    fn exec_hostile_unquoted_lines_are_refused() {
        assert_eq!(syntax("foo && bar"), ExecSyntax::UnquotedReserved('&'));
        assert_eq!(syntax("foo; bar"), ExecSyntax::UnquotedReserved(';'));
        assert_eq!(syntax("foo | bar"), ExecSyntax::UnquotedReserved('|'));
        assert_eq!(syntax("foo > /tmp/x"), ExecSyntax::UnquotedReserved('>'));
        assert_eq!(syntax("$(rm -rf ~)"), ExecSyntax::UnquotedReserved('$'));
        assert_eq!(syntax("foo `id`"), ExecSyntax::UnquotedReserved('`'));
        assert_eq!(syntax("foo 'a b'"), ExecSyntax::UnquotedReserved('\''));
        assert_eq!(syntax("~/bin/foo"), ExecSyntax::UnquotedReserved('~'));
        assert_eq!(syntax("foo *.txt"), ExecSyntax::UnquotedReserved('*'));
        assert_eq!(syntax("foo #bar"), ExecSyntax::UnquotedReserved('#'));
        assert_eq!(syntax("foo\tbar"), ExecSyntax::UnquotedReserved('\t'));
    }

    #[test]
    fn exec_unterminated_quote_names_app_and_file() {
        assert_eq!(syntax(r#"foo "bar"#), ExecSyntax::UnterminatedQuote);
        assert_eq!(syntax(r#"foo "bar\"#), ExecSyntax::UnterminatedQuote);
        let error = argv(r#"foo "bar"#, &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "org.example.App: Exec line has an unterminated quote: `foo \"bar` — fix the \
             .desktop file at /usr/share/applications/org.example.App.desktop"
        );
    }

    #[test]
    fn exec_lenient_partial_quotes_and_backslashes_like_wine() {
        // A wine entry as winemenubuilder writes it.
        let exec =
            r#"env WINEPREFIX="/home/u/.wine" wine C:\\\\ProgramData\\\\Start\\ Menu\\\\x.lnk"#;
        assert_eq!(
            argv(exec, &[]).unwrap(),
            strings(&[
                "env",
                "WINEPREFIX=/home/u/.wine",
                "wine",
                r"C:\ProgramData\Start Menu\x.lnk"
            ])
        );
        // An escaped reserved character outside quotes is a literal.
        assert_eq!(
            parse_exec(r"foo a\;b").unwrap()[1],
            ExecArg::Literal("a;b".into())
        );
        assert_eq!(syntax(r"foo bar\"), ExecSyntax::TrailingBackslash);
    }

    #[test]
    fn exec_program_rules() {
        assert_eq!(syntax(""), ExecSyntax::Empty);
        assert_eq!(syntax("   "), ExecSyntax::Empty);
        assert_eq!(syntax(r#""" --x"#), ExecSyntax::EmptyProgram);
        assert_eq!(syntax("FOO=1 app"), ExecSyntax::EqualsInProgram);
        assert_eq!(syntax("%f"), ExecSyntax::ProgramIsFieldCode);
        // `=` in later arguments is fine.
        assert!(parse_exec("env FOO=1 app").is_ok());
    }

    // -- Exec: field codes --------------------------------------------------------------------

    #[test]
    fn exec_single_file_and_url_codes() {
        assert_eq!(
            argv("viewer %f", &["/tmp/x y.txt"]).unwrap(),
            strings(&["viewer", "/tmp/x y.txt"])
        );
        assert_eq!(argv("viewer %u", &[]).unwrap(), strings(&["viewer"]));
        assert_eq!(
            argv("browser %U", &["https://a.example/;rm", "b"]).unwrap(),
            strings(&["browser", "https://a.example/;rm", "b"])
        );
    }

    #[test]
    fn exec_field_code_inside_an_argument() {
        // §7 only requires %F and %U to stand alone; `--x=%u` expands in place.
        assert_eq!(
            argv("app --x=%u", &["https://e.example"]).unwrap(),
            strings(&["app", "--x=https://e.example"])
        );
        assert_eq!(argv("app --x=%u", &[]).unwrap(), strings(&["app", "--x="]));
        assert_eq!(
            argv("app --name=%c --from=%k", &[]).unwrap(),
            strings(&[
                "app",
                "--name=Example App",
                "--from=/usr/share/applications/org.example.App.desktop"
            ])
        );
        assert_eq!(
            syntax("app --x=%U"),
            ExecSyntax::FieldCodeNotAlone(FieldCode::Urls)
        );
        assert_eq!(
            syntax("app --files=%F"),
            ExecSyntax::FieldCodeNotAlone(FieldCode::Files)
        );
        assert_eq!(
            syntax("app x%i"),
            ExecSyntax::FieldCodeNotAlone(FieldCode::Icon)
        );
    }

    #[test]
    fn exec_at_most_one_file_code() {
        assert_eq!(syntax("app %f %u"), ExecSyntax::SeveralFileFieldCodes);
        assert_eq!(syntax("app %F --x=%f"), ExecSyntax::SeveralFileFieldCodes);
    }

    #[test]
    fn exec_field_codes_in_quotes_are_not_expanded() {
        assert_eq!(
            argv(r#"sh -c "open %f; echo 100%%""#, &[]).unwrap(),
            strings(&["sh", "-c", "open %f; echo 100%"])
        );
        // Unknown codes in quotes are text too, not errors.
        assert_eq!(argv(r#"app "%z""#, &[]).unwrap(), strings(&["app", "%z"]));
        // So a quoted %f does not accept files.
        assert!(matches!(
            argv(r#"app "%f""#, &["/etc/passwd"]),
            Err(ExecError::TargetsNotAccepted { count: 1, .. })
        ));
    }

    #[test]
    fn exec_percent_escapes() {
        assert_eq!(
            argv("app --zoom=100%% %%f", &[]).unwrap(),
            strings(&["app", "--zoom=100%", "%f"])
        );
        // Lenient: a % that is not followed by a letter cannot be a field code.
        assert_eq!(
            argv("app 50% %1", &[]).unwrap(),
            strings(&["app", "50%", "%1"])
        );
    }

    #[test]
    fn exec_icon_code_with_and_without_icon() {
        let with_icon = entry_from(&format!("{}Icon=org.example.App\n", app("X", "app %i %u")));
        assert_eq!(
            with_icon.command(&[]).unwrap(),
            strings(&["app", "--icon", "org.example.App"])
        );
        assert_eq!(argv("app %i %u", &[]).unwrap(), strings(&["app"]));
        let empty_icon = entry_from(&format!("{}Icon=\n", app("X", "app %i")));
        assert_eq!(empty_icon.command(&[]).unwrap(), strings(&["app"]));
    }

    #[test]
    fn exec_unknown_and_deprecated_codes() {
        assert_eq!(syntax("app %z"), ExecSyntax::UnknownFieldCode('z'));
        assert_eq!(syntax("app --x=%Z"), ExecSyntax::UnknownFieldCode('Z'));
        assert_eq!(
            argv("app %d %D %n %N %v %m --dir=%d", &[]).unwrap(),
            strings(&["app", "--dir="])
        );
    }

    #[test]
    fn exec_targets_must_fit_the_line() {
        assert!(matches!(
            argv("app %f", &["a", "b"]),
            Err(ExecError::TooManyTargets {
                code: FieldCode::File,
                count: 2,
                ..
            })
        ));
        assert!(matches!(
            argv("app", &["a"]),
            Err(ExecError::TargetsNotAccepted { count: 1, .. })
        ));
    }

    #[test]
    fn exec_parse_result_shapes() {
        assert_eq!(
            parse_exec("app %U --x=%f %c").unwrap_err().to_string(),
            "Exec line has more than one of %f, %F, %u, %U (the spec allows at most one): \
             `app %U --x=%f %c`"
        );
        assert_eq!(
            parse_exec("app %U --title=%c").unwrap(),
            vec![
                ExecArg::Literal("app".into()),
                ExecArg::Field(FieldCode::Urls),
                ExecArg::Template(vec![
                    ArgPiece::Text("--title=".into()),
                    ArgPiece::Field(FieldCode::Name)
                ]),
            ]
        );
    }

    // -- file format --------------------------------------------------------------------------

    #[test]
    fn file_non_utf8_is_refused_with_its_name() {
        let path = Path::new("/x/bad.desktop");
        let bytes = b"[Desktop Entry]\nType=Application\nName=Caf\xe9\nExec=cafe\n";
        let error = DesktopEntry::from_bytes("bad", path, bytes, None).unwrap_err();
        assert!(
            matches!(error, EntryError::NotUtf8 { line: 3, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("/x/bad.desktop"));
    }

    #[test]
    fn file_with_a_nul_byte_is_refused_with_its_line() {
        let path = Path::new("/x/nul.desktop");
        for (bytes, line) in [
            (
                &b"[Desktop Entry]\nType=Application\nName=A\nExec=app a\0b\n"[..],
                4,
            ),
            (
                b"[Desktop Entry]\nType=Application\nName=A\0\nExec=app\n",
                3,
            ),
            (
                b"\0[Desktop Entry]\nType=Application\nName=A\nExec=app\n",
                1,
            ),
        ] {
            let error = DesktopEntry::from_bytes("nul", path, bytes, None).unwrap_err();
            assert!(
                matches!(&error, EntryError::Malformed { line: l, problem: FileProblem::NulByte, .. } if *l == line),
                "{error:?}"
            );
            assert!(error.to_string().contains("/x/nul.desktop"), "{error}");
            assert!(error.to_string().contains("NUL byte"), "{error}");
        }
    }

    #[test]
    fn file_comments_blank_lines_escapes_and_lists() {
        let text = "# a comment\n\n[Desktop Entry]\r\n  # indented comment\n\
                    Type = Application\nName=A\\sB\\\\C \nComment=line1\\nline2\\tx\n\
                    Exec=app\nCategories=Network;WebBrowser;\nKeywords=web;semi\\;colon;\n\
                    Actions=new-window;new-private-window;\nTerminal=false\nNoDisplay=0\n\
                    X-Vendor_Weird.Key=whatever\n\n\
                    [Desktop Action new-window]\nName=New Window\nExec=app --new-window\n";
        let entry = entry_from(text);
        assert_eq!(entry.name, "A B\\C");
        assert_eq!(entry.comment.as_deref(), Some("line1\nline2\tx"));
        assert_eq!(entry.exec, "app");
        assert_eq!(entry.categories, strings(&["Network", "WebBrowser"]));
        assert_eq!(entry.keywords, strings(&["web", "semi;colon"]));
        assert_eq!(
            entry.actions,
            strings(&["new-window", "new-private-window"])
        );
        assert!(!entry.terminal && !entry.no_display);
    }

    #[test]
    fn file_structure_errors() {
        let parse = |text: &str| {
            DesktopEntry::from_bytes("x", Path::new("/x.desktop"), text.as_bytes(), None)
        };
        assert!(matches!(
            parse("Name=x\n[Desktop Entry]\n"),
            Err(EntryError::Malformed {
                line: 1,
                problem: FileProblem::KeyOutsideGroup,
                ..
            })
        ));
        assert!(matches!(
            parse("[Desktop Action x]\nName=x\n"),
            Err(EntryError::NoDesktopEntryGroup { .. })
        ));
        assert!(matches!(
            parse(&format!("{}Name=again\n", app("x", "x"))),
            Err(EntryError::Malformed {
                line: 5,
                problem: FileProblem::DuplicateKey(_),
                ..
            })
        ));
        assert!(matches!(
            parse(&format!("{}Terminal=yes\n", app("x", "x"))),
            Err(EntryError::Malformed {
                problem: FileProblem::NotBoolean { .. },
                ..
            })
        ));
        assert!(matches!(
            parse("[Desktop Entry]\nType=Application\nName=x\nnot a pair\n"),
            Err(EntryError::Malformed {
                line: 4,
                problem: FileProblem::NotKeyValue(_),
                ..
            })
        ));
        assert!(matches!(
            parse("[Desktop Entry\nType=Application\n"),
            Err(EntryError::Malformed {
                problem: FileProblem::BadGroupHeader(_),
                ..
            })
        ));
        assert!(matches!(
            parse("[Desktop Entry]\nName=x\nExec=x\n"),
            Err(EntryError::MissingKey { key: "Type", .. })
        ));
        assert!(matches!(
            parse("[Desktop Entry]\nType=Application\nExec=x\n"),
            Err(EntryError::MissingKey { key: "Name", .. })
        ));
        assert!(matches!(
            parse("[Desktop Entry]\nType=Application\nName=x\nDBusActivatable=true\n"),
            Err(EntryError::NoExec { .. })
        ));
    }

    #[test]
    fn file_types_other_than_application_and_hidden() {
        let parse = |text: &str| {
            DesktopEntry::from_bytes("x", Path::new("/x.desktop"), text.as_bytes(), None).unwrap()
        };
        assert!(matches!(
            parse("[Desktop Entry]\nType=Link\nName=x\nURL=https://e.example\n"),
            ParsedFile::OtherType(kind) if kind == "Link"
        ));
        // A bare "deleted" override: nothing else is needed.
        assert!(matches!(
            parse("[Desktop Entry]\nHidden=true\n"),
            ParsedFile::Hidden
        ));
    }

    // -- locales ------------------------------------------------------------------------------

    #[test]
    fn locale_parse_and_spec_match_order() {
        let locale = Locale::parse("sr_YU.UTF-8@Latn").unwrap();
        assert_eq!(locale.lang, "sr");
        assert_eq!(locale.country.as_deref(), Some("YU"));
        assert_eq!(locale.modifier.as_deref(), Some("Latn"));
        // §5's table: lang_COUNTRY@MODIFIER, lang_COUNTRY, lang@MODIFIER, lang.
        assert_eq!(
            locale.candidates(),
            strings(&["sr_YU@Latn", "sr_YU", "sr@Latn", "sr"])
        );
        assert_eq!(
            Locale::parse("de_DE").unwrap().candidates(),
            strings(&["de_DE", "de"])
        );
        assert_eq!(Locale::parse("C.UTF-8"), None);
        assert_eq!(Locale::parse("POSIX"), None);
    }

    #[test]
    fn locale_from_environment_variables() {
        let parse = |all, messages, lang, language| {
            Locale::from_vars(all, messages, lang, language).map(|l| l.candidates()[0].clone())
        };
        assert_eq!(
            parse(Some("fr_FR.UTF-8"), Some("de_DE"), Some("en_US"), None),
            Some("fr_FR".into())
        );
        assert_eq!(
            parse(Some(""), Some("de_DE"), Some("en_US"), None),
            Some("de_DE".into())
        );
        assert_eq!(
            parse(None, None, Some("en_US.UTF-8"), None),
            Some("en_US".into())
        );
        assert_eq!(
            parse(None, None, Some("en_US.UTF-8"), Some("pt_BR:pt")),
            Some("pt_BR".into())
        );
        // gettext ignores LANGUAGE in the C locale.
        assert_eq!(parse(None, None, Some("C.UTF-8"), Some("pt_BR")), None);
        assert_eq!(parse(None, None, None, None), None);
    }

    #[test]
    fn localised_keys_follow_the_match_order() {
        let text = "[Desktop Entry]\nType=Application\nExec=app\nName=Files\n\
                    Name[de]=Dateien\nName[de_AT]=Dateien (AT)\nName[sr@latin]=Datoteke\n\
                    Name[fr_FR.UTF-8]=Fichiers\nGenericName=File Manager\nKeywords=folder;\n\
                    Keywords[de]=Ordner;Verzeichnis;\nIcon=files\nIcon[de]=dateien\n";
        let name_for = |locale: &str| {
            let locale = Locale::parse(locale);
            let path = Path::new("/a.desktop");
            match DesktopEntry::from_bytes("a", path, text.as_bytes(), locale.as_ref()).unwrap() {
                ParsedFile::Application(entry) => *entry,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(name_for("de_AT.UTF-8").name, "Dateien (AT)");
        assert_eq!(name_for("de_DE.UTF-8").name, "Dateien");
        assert_eq!(
            name_for("de_DE").keywords,
            strings(&["Ordner", "Verzeichnis"])
        );
        assert_eq!(name_for("de_DE").icon.as_deref(), Some("dateien"));
        assert_eq!(
            name_for("de_DE").generic_name.as_deref(),
            Some("File Manager")
        );
        assert_eq!(name_for("sr_RS@latin").name, "Datoteke");
        // No modifier in the locale: a key with a modifier is never matched.
        assert_eq!(name_for("sr_RS").name, "Files");
        // The key's .ENCODING is stripped before matching.
        assert_eq!(name_for("fr_FR").name, "Fichiers");
        assert_eq!(name_for("C").name, "Files");
    }

    // -- programs -----------------------------------------------------------------------------

    #[test]
    fn find_in_search_path_checks_execute_permission() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        make_executable(&bin, "tool");
        write(&bin, "data", "not a program");
        let search = std::env::join_paths(["relative/dir".as_ref(), bin.as_path()]).unwrap();
        assert_eq!(
            find_in_search_path("tool", Some(&search)),
            Some(bin.join("tool"))
        );
        assert_eq!(find_in_search_path("data", Some(&search)), None);
        assert_eq!(find_in_search_path("missing", Some(&search)), None);
        let absolute = bin.join("tool");
        assert_eq!(
            find_in_path(absolute.to_str().unwrap()),
            Some(absolute.clone())
        );
        assert!(try_exec_found(absolute.to_str().unwrap(), None));
        assert!(try_exec_found("tool", Some(&search)));
        assert!(!try_exec_found("data", Some(&search)));
    }

    // -- catalog ------------------------------------------------------------------------------

    #[test]
    fn application_dirs_defaults_and_overrides() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(
            application_dirs_from(None, None, os("/home/u")),
            vec![
                PathBuf::from("/home/u/.local/share/applications"),
                PathBuf::from("/usr/local/share/applications"),
                PathBuf::from("/usr/share/applications"),
            ]
        );
        assert_eq!(
            application_dirs_from(os("/d"), os("/a:relative:/b/:/a"), os("/home/u")),
            vec![
                PathBuf::from("/d/applications"),
                PathBuf::from("/a/applications"),
                PathBuf::from("/b/applications"),
            ]
        );
    }

    #[test]
    fn catalog_precedence_subdirectories_hidden_and_warnings() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home/applications");
        let system = tmp.path().join("system/applications");
        write(
            &home,
            "org.example.Editor.desktop",
            app("My Editor", "editor --mine"),
        );
        write(
            &system,
            "org.example.Editor.desktop",
            app("Editor", "editor"),
        );
        write(&system, "kde4/foo.desktop", app("Foo", "foo"));
        write(&system, "gone.desktop", app("Gone", "gone"));
        write(&home, "gone.desktop", "[Desktop Entry]\nHidden=true\n");
        write(
            &system,
            "link.desktop",
            "[Desktop Entry]\nType=Link\nName=L\nURL=x\n",
        );
        write(&system, "broken.desktop", b"[Desktop Entry]\nName=\xff\n");
        write(&system, "README", "not a desktop file");
        let missing = tmp.path().join("nowhere/applications");
        let catalog =
            AppCatalog::load_from_with_locale(&[home.clone(), missing, system.clone()], None);

        let editor = catalog.get("org.example.Editor").unwrap();
        assert_eq!(editor.name, "My Editor");
        assert_eq!(editor.path, home.join("org.example.Editor.desktop"));
        assert_eq!(
            catalog.get("kde4-foo").unwrap().path,
            system.join("kde4/foo.desktop")
        );
        assert!(catalog.get("gone").is_none());
        assert!(catalog.get("link").is_none());
        assert_eq!(catalog.len(), 2);
        assert_eq!(catalog.warnings().len(), 1);
        assert!(matches!(catalog.warnings()[0], EntryError::NotUtf8 { .. }));
        assert!(catalog.warnings()[0].to_string().contains("broken.desktop"));
    }

    #[test]
    fn catalog_refuses_a_desktop_file_too_large_to_be_one_unread() {
        let dir = tempfile::tempdir().unwrap();
        let comment = "x".repeat(2 << 20);
        write(
            dir.path(),
            "huge.desktop",
            format!("[Desktop Entry]\nType=Application\nName=Huge\nExec=true\nComment={comment}\n"),
        );
        write(dir.path(), "small.desktop", app("Small", "true"));
        let catalog = AppCatalog::load_from(&[dir.path().to_path_buf()]);
        assert!(
            catalog.get("huge").is_none(),
            "a 2 MiB desktop file was read"
        );
        assert!(catalog.get("small").is_some());
        let warning = catalog.warnings()[0].to_string();
        assert!(warning.contains("is larger than 1.0 MiB"), "{warning}");
    }

    #[test]
    fn catalog_broken_override_still_shadows_system_file() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let system = tmp.path().join("system");
        write(&home, "a.desktop", "[Desktop Entry]\nType=Application\n");
        write(&system, "a.desktop", app("A", "a"));
        let catalog = AppCatalog::load_from_with_locale(&[home, system], None);
        assert!(catalog.get("a").is_none());
        assert!(matches!(
            catalog.warnings(),
            [EntryError::MissingKey { key: "Name", .. }]
        ));
    }

    #[test]
    fn catalog_get_accepts_short_and_suffixed_ids() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "org.mozilla.firefox.desktop",
            app("Firefox", "firefox %u"),
        );
        write(
            tmp.path(),
            "org.example.Viewer.desktop",
            app("Viewer", "viewer"),
        );
        write(
            tmp.path(),
            "com.other.viewer.desktop",
            app("Other Viewer", "oviewer"),
        );
        let catalog = AppCatalog::load_from_with_locale(&[tmp.path().to_owned()], None);
        for query in [
            "org.mozilla.firefox",
            "org.mozilla.firefox.desktop",
            "firefox",
            "Firefox.desktop",
        ] {
            assert_eq!(
                catalog.get(query).map(|e| e.id.as_str()),
                Some("org.mozilla.firefox"),
                "{query}"
            );
        }
        // "viewer" names two apps: no guess.
        assert!(catalog.get("viewer").is_none());
        assert_eq!(
            catalog.get("org.example.viewer").unwrap().id,
            "org.example.Viewer"
        );
    }

    #[test]
    fn catalog_nodisplay_and_tryexec() {
        let tmp = tempfile::tempdir().unwrap();
        let apps_dir = tmp.path().join("applications");
        let program = make_executable(tmp.path(), "bin/present");
        write(
            &apps_dir,
            "helper.desktop",
            format!("{}NoDisplay=true\n", app("Helper", "helper")),
        );
        write(
            &apps_dir,
            "missing.desktop",
            format!(
                "{}TryExec=/nonexistent/corral-test-program\n",
                app("Missing", "missing")
            ),
        );
        write(
            &apps_dir,
            "present.desktop",
            format!(
                "{}TryExec={}\n",
                app("Present", "present"),
                program.display()
            ),
        );
        let catalog = AppCatalog::load_from_with_locale(&[apps_dir], None);
        let names: Vec<&str> = catalog.apps().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Present"]);
        assert!(catalog.get("helper").unwrap().no_display);
        let missing = catalog.get("missing").unwrap();
        assert!(!missing.is_installed());
        let error = missing.command(&[]).unwrap_err();
        assert!(matches!(error, ExecError::NotInstalled { .. }));
        assert!(error.to_string().starts_with("missing: not installed"));
        assert!(catalog.get("present").unwrap().is_installed());
        assert_eq!(
            catalog.get("present").unwrap().command(&[]).unwrap(),
            ["present"]
        );
    }

    #[test]
    fn catalog_localised_names() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "files.desktop",
            format!("{}Name[de]=Dateien\n", app("Files", "nautilus")),
        );
        let dirs = [tmp.path().to_owned()];
        let german =
            AppCatalog::load_from_with_locale(&dirs, Locale::parse("de_CH.UTF-8").as_ref());
        assert_eq!(german.get("files").unwrap().name, "Dateien");
        let untranslated = AppCatalog::load_from_with_locale(&dirs, None);
        assert_eq!(untranslated.get("files").unwrap().name, "Files");
    }

    #[test]
    fn catalog_search_and_sorting() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "org.mozilla.firefox.desktop",
            format!(
                "{}GenericName=Web Browser\nKeywords=Internet;WWW;\n",
                app("Firefox", "firefox %u")
            ),
        );
        write(
            tmp.path(),
            "org.gnome.Epiphany.desktop",
            format!("{}GenericName=Web Browser\n", app("Web", "epiphany")),
        );
        write(
            tmp.path(),
            "org.example.Cobweb.desktop",
            app("cobweb tool", "cobweb"),
        );
        write(
            tmp.path(),
            "hidden-web.desktop",
            format!("{}NoDisplay=true\n", app("Web Helper", "h")),
        );
        let catalog = AppCatalog::load_from_with_locale(&[tmp.path().to_owned()], None);
        let ids = |entries: Vec<&DesktopEntry>| {
            entries
                .into_iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(catalog.apps()),
            [
                "org.example.Cobweb",
                "org.mozilla.firefox",
                "org.gnome.Epiphany"
            ]
        );
        assert_eq!(
            ids(catalog.search("WEB")),
            [
                "org.gnome.Epiphany",
                "org.example.Cobweb",
                "org.mozilla.firefox"
            ]
        );
        assert_eq!(ids(catalog.search("www")), ["org.mozilla.firefox"]);
        assert_eq!(ids(catalog.search("gnome")), ["org.gnome.Epiphany"]);
        assert!(catalog.search("nothing-like-this").is_empty());
    }

    #[test]
    fn the_picker_honours_only_show_in_and_not_show_in() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "org.kde.dolphin.desktop",
            format!("{}OnlyShowIn=KDE;\n", app("Dolphin", "dolphin")),
        );
        write(
            tmp.path(),
            "org.gnome.Tweaks.desktop",
            format!("{}NotShowIn=KDE;\n", app("Tweaks", "gnome-tweaks")),
        );
        write(tmp.path(), "org.example.Any.desktop", app("Any", "any"));
        let dirs = [tmp.path().to_owned()];
        let ids = |catalog: &AppCatalog, query: &str| {
            let found = if query.is_empty() {
                catalog.apps()
            } else {
                catalog.search(query)
            };
            found.into_iter().map(|e| e.id.clone()).collect::<Vec<_>>()
        };
        let gnome =
            AppCatalog::load_from_with_locale(&dirs, None).shown_in(strings(&["ubuntu", "GNOME"]));
        assert_eq!(ids(&gnome, ""), ["org.example.Any", "org.gnome.Tweaks"]);
        assert!(ids(&gnome, "dolphin").is_empty(), "a KDE-only app on GNOME");
        let kde = AppCatalog::load_from_with_locale(&dirs, None).shown_in(strings(&["KDE"]));
        assert_eq!(ids(&kde, ""), ["org.example.Any", "org.kde.dolphin"]);
        // Looked up by id, every entry is still there (corral launch, rules).
        assert!(gnome.get("org.kde.dolphin").is_some());
    }

    #[test]
    fn catalog_find_by_executable() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "firefox_firefox.desktop",
            app(
                "Firefox",
                "env BAMF_DESKTOP_FILE_HINT=/var/x.desktop /snap/bin/firefox %u",
            ),
        );
        write(
            tmp.path(),
            "code.desktop",
            app("Code", "/usr/share/code/code --unity-launch %F"),
        );
        let catalog = AppCatalog::load_from_with_locale(&[tmp.path().to_owned()], None);
        let ids = |exe: &str| {
            catalog
                .find_by_executable(exe)
                .into_iter()
                .map(|e| e.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("firefox"), ["firefox_firefox"]);
        assert_eq!(ids("/usr/bin/code"), ["code"]);
        assert!(ids("env").is_empty());
    }

    #[test]
    fn shown_in_desktops() {
        let mut entry = entry_with_exec("app");
        let desktops = strings(&["ubuntu", "GNOME"]);
        assert!(entry.shown_in(&desktops));
        entry.only_show_in = strings(&["KDE"]);
        assert!(!entry.shown_in(&desktops));
        entry.only_show_in = strings(&["GNOME"]);
        assert!(entry.shown_in(&desktops));
        entry.only_show_in.clear();
        entry.not_show_in = strings(&["GNOME"]);
        assert!(!entry.shown_in(&desktops));
    }
}
