//! Translations. The catalogs: po/POTFILES.in lists exactly the files with translatable strings,
//! po/corral.pot is what po/update-pot.sh makes of them today, every string the Rust code marks
//! is in it as Rust reads the literal (xgettext reads Rust as C), and every language in
//! po/LINGUAS translates every string, keeping its {placeholders}. The binary: with
//! `LANGUAGE=de` it speaks German, whether LANG is unset, C or C.UTF-8, and `LC_ALL=C` still
//! gets English.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SOURCE: &str = env!("CARGO_MANIFEST_DIR");

/// The functions of src/i18n.rs that mark a string, with the number of string arguments.
const MARKERS: [(&str, usize); 6] = [
    ("gettext", 1),
    ("ngettext", 2),
    ("pgettext", 2),
    ("gettext_f", 1),
    ("ngettext_f", 2),
    ("gettext_noop", 1),
];

fn source(path: &str) -> PathBuf {
    Path::new(SOURCE).join(path)
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Source files (relative, `/`-separated) and their text: Rust under src/, UI files under
/// resources/ui/. src/i18n.rs defines the markers and is no source of strings.
fn sources() -> Vec<(String, String)> {
    let mut paths = Vec::new();
    files_below(&source("src"), &mut paths);
    files_below(&source("resources/ui"), &mut paths);
    let mut out: Vec<(String, String)> = paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs" || e == "ui"))
        .map(|p| {
            let relative = p.strip_prefix(SOURCE).unwrap().to_str().unwrap().to_owned();
            (relative, fs::read_to_string(&p).unwrap())
        })
        .filter(|(path, _)| path != "src/i18n.rs")
        .collect();
    out.sort();
    out
}

fn potfiles() -> Vec<String> {
    fs::read_to_string(source("po/POTFILES.in"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A marked string: (context, msgid, plural).
type Key = (Option<String>, String, Option<String>);

/// Reads a Rust string literal at the start of `text` (after whitespace): its value and the
/// rest. `None` when the argument is not a literal (a variable msgid, marked elsewhere).
fn rust_literal(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                '0' => value.push('\0'),
                '\\' => value.push('\\'),
                '"' => value.push('"'),
                '\'' => value.push('\''),
                'u' => {
                    let rest: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '}')
                        .collect();
                    let code = u32::from_str_radix(rest.trim_start_matches('{'), 16).ok()?;
                    value.push(char::from_u32(code)?);
                }
                // A line continuation: Rust skips the newline and the next line's indent.
                '\n' => {
                    while chars.clone().next().is_some_and(|(_, c)| c.is_whitespace()) {
                        chars.next();
                    }
                }
                other => panic!("unexpected escape \\{other} in a marked string"),
            },
            c => value.push(c),
        }
    }
    None
}

/// Every string the Rust sources mark, where each is (file:line).
fn marked_in_rust() -> BTreeMap<Key, String> {
    let mut out = BTreeMap::new();
    for (path, text) in sources().iter().filter(|(p, _)| p.ends_with(".rs")) {
        for (start, _) in text.match_indices('(') {
            let before = &text[..start];
            let Some(&(name, strings)) = MARKERS.iter().find(|(name, _)| {
                before.ends_with(name)
                    && !before[..before.len() - name.len()]
                        .ends_with(|c: char| c.is_alphanumeric() || c == '_')
            }) else {
                continue;
            };
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            if before[line_start..].contains("//") || before.ends_with("fn ") {
                continue; // a comment, or a definition
            }
            let mut rest = &text[start + 1..];
            let mut literals = Vec::new();
            for _ in 0..strings {
                let Some((value, after)) = rust_literal(rest) else {
                    break;
                };
                literals.push(value);
                rest = after.trim_start().strip_prefix(',').unwrap_or(after);
            }
            if literals.len() < strings {
                continue;
            }
            let key = match (name, literals.as_slice()) {
                ("pgettext", [context, msgid]) => (Some(context.clone()), msgid.clone(), None),
                (_, [one, many]) => (None, one.clone(), Some(many.clone())),
                (_, [msgid]) => (None, msgid.clone(), None),
                _ => unreachable!(),
            };
            let line = before.matches('\n').count() + 1;
            out.entry(key).or_insert_with(|| format!("{path}:{line}"));
        }
    }
    out
}

/// One message of a PO file.
#[derive(Debug, Default, Clone)]
struct Message {
    context: Option<String>,
    id: String,
    plural: Option<String>,
    translations: Vec<String>,
    fuzzy: bool,
}

impl Message {
    fn key(&self) -> Key {
        (self.context.clone(), self.id.clone(), self.plural.clone())
    }
}

fn c_unescape(quoted: &str) -> String {
    let quoted = quoted.trim();
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The messages of a PO file, without the header; obsolete (`#~`) ones left out.
fn parse_po(text: &str) -> Vec<Message> {
    let mut messages = Vec::new();
    for block in text.split("\n\n") {
        let mut message = Message::default();
        let mut field: Option<(String, String)> = None;
        let mut fields = Vec::new();
        for line in block.lines() {
            if line.starts_with("#,") && line.contains("fuzzy") {
                message.fuzzy = true;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with('"') {
                if let Some((_, value)) = field.as_mut() {
                    value.push_str(&c_unescape(line));
                }
                continue;
            }
            if let Some(done) = field.take() {
                fields.push(done);
            }
            let (keyword, value) = line.split_once(' ').unwrap();
            field = Some((keyword.to_owned(), c_unescape(value)));
        }
        fields.extend(field);
        for (keyword, value) in fields {
            match keyword.as_str() {
                "msgctxt" => message.context = Some(value),
                "msgid" => message.id = value,
                "msgid_plural" => message.plural = Some(value),
                _ => message.translations.push(value),
            }
        }
        if !message.id.is_empty() {
            messages.push(message);
        }
    }
    messages
}

/// The `{name}` placeholders of a string.
fn placeholders(text: &str) -> BTreeSet<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect()
}

#[test]
fn potfiles_lists_exactly_the_files_with_translatable_strings() {
    let listed = potfiles();
    // The desktop entries and the metainfo are made to be translated.
    let installed_texts = fs::read_dir(source("resources"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".desktop") || name.ends_with(".metainfo.xml"))
        .map(|name| format!("resources/{name}"));
    let with_strings: Vec<String> = sources()
        .into_iter()
        .filter(|(path, text)| {
            if path.ends_with(".ui") {
                return text.contains("translatable=\"yes\"");
            }
            MARKERS.iter().any(|(name, _)| {
                text.match_indices(&format!("{name}("))
                    .any(|(i, _)| !text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
        })
        .map(|(path, _)| path)
        .chain(installed_texts)
        .collect();
    for path in &with_strings {
        assert!(
            listed.contains(path),
            "{path} has translatable strings but is not in po/POTFILES.in"
        );
    }
    for path in &listed {
        assert!(
            source(path).is_file(),
            "po/POTFILES.in lists {path}, which does not exist"
        );
        assert!(
            with_strings.contains(path),
            "po/POTFILES.in lists {path}, which has no translatable strings"
        );
    }
}

#[test]
fn the_template_is_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("corral.pot");
    let out = Command::new(source("po/update-pot.sh"))
        .arg("--pot")
        .arg(&fresh)
        .output()
        .expect("run po/update-pot.sh (it needs xgettext and perl: tests/setup-host.sh)");
    assert!(
        out.status.success(),
        "po/update-pot.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "xgettext warned about the sources:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = |text: &str| -> BTreeSet<Key> { parse_po(text).iter().map(Message::key).collect() };
    let committed = keys(&fs::read_to_string(source("po/corral.pot")).unwrap());
    let now = keys(&fs::read_to_string(&fresh).unwrap());
    let added: Vec<_> = now.difference(&committed).collect();
    let gone: Vec<_> = committed.difference(&now).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "po/corral.pot is out of date: run po/update-pot.sh and translate what is new.\n\
         new: {added:#?}\nno longer used: {gone:#?}"
    );
}

#[test]
fn every_marked_string_is_in_the_template_as_rust_reads_it() {
    let template: BTreeSet<Key> = parse_po(&fs::read_to_string(source("po/corral.pot")).unwrap())
        .iter()
        .map(Message::key)
        .collect();
    let marked = marked_in_rust();
    assert!(
        marked.len() > 400,
        "found only {} marked strings",
        marked.len()
    );
    let missing: Vec<String> = marked
        .iter()
        .filter(|(key, _)| !template.contains(*key))
        .map(|(key, at)| format!("{at}: {key:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "marked strings that xgettext did not extract as Rust reads them (a `\\` line \
         continuation, a raw string, or a file missing from po/POTFILES.in?):\n{}",
        missing.join("\n")
    );
}

fn linguas() -> Vec<String> {
    fs::read_to_string(source("po/LINGUAS"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_language_translates_every_string_and_keeps_its_placeholders() {
    let template: BTreeSet<Key> = parse_po(&fs::read_to_string(source("po/corral.pot")).unwrap())
        .iter()
        .map(Message::key)
        .collect();
    let languages = linguas();
    assert!(languages.contains(&"de".to_owned()), "{languages:?}");
    for language in languages {
        let po = source(&format!("po/{language}.po"));
        let out = Command::new("msgfmt")
            .args(["--check", "--statistics", "-o", "/dev/null"])
            .arg(&po)
            .env("LC_ALL", "C")
            .output()
            .expect("msgfmt (gettext) is installed");
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "msgfmt --check {language}.po:\n{report}"
        );
        assert!(
            !report.contains("untranslated") && !report.contains("fuzzy"),
            "{language}.po is incomplete: {report}"
        );
        let text = fs::read_to_string(&po).unwrap();
        assert!(
            text.contains("\"Plural-Forms: nplurals="),
            "{language}.po has no Plural-Forms header"
        );
        let messages = parse_po(&text);
        let keys: BTreeSet<Key> = messages.iter().map(Message::key).collect();
        assert_eq!(
            keys, template,
            "{language}.po and po/corral.pot have different strings: run po/update-pot.sh"
        );
        for m in &messages {
            assert!(!m.fuzzy, "{language}.po: fuzzy: {:?}", m.id);
            let mut wanted = placeholders(&m.id);
            wanted.extend(m.plural.as_deref().map(placeholders).unwrap_or_default());
            for translation in &m.translations {
                assert!(
                    !translation.is_empty(),
                    "{language}.po: untranslated {:?}",
                    m.id
                );
                let found = placeholders(translation);
                // A singular form may say "one" instead of {n}; nothing may be invented.
                assert!(
                    found.is_subset(&wanted)
                        && (m.plural.is_some() || found == placeholders(&m.id)),
                    "{language}.po: the placeholders of {:?} are {wanted:?}, its translation \
                     {translation:?} has {found:?}",
                    m.id
                );
            }
        }
    }
}

/// Runs the corral binary with a clean environment plus `vars`, in an empty home with no
/// reachable session bus.
fn corral(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corral"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_DATA_DIRS", home.join("system-data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/no-bus", home.display()),
        );
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_command_line_speaks_german_with_language_de() {
    let home = tempfile::tempdir().unwrap();
    // LANG unset, LANG=C and LANG=C.UTF-8: LANGUAGE alone chooses the language.
    for vars in [
        &[("LANGUAGE", "de")][..],
        &[("LANGUAGE", "de"), ("LANG", "C")],
        &[("LANGUAGE", "de:en"), ("LANG", "C.UTF-8")],
    ] {
        let presets = corral(home.path(), vars, &["presets"]);
        assert!(presets.status.success(), "{vars:?}: {}", text(&presets));
        let listing = text(&presets);
        assert!(
            listing.contains("Für Webbrowser") && listing.contains("Konfigurationsdatei: "),
            "{vars:?}: built-in presets in German:\n{listing}"
        );
        assert!(
            listing.contains("memory-max=60%"),
            "config keys stay as written: {listing}"
        );

        let unknown = corral(home.path(), vars, &["presets", "show", "brwoser"]);
        assert_eq!(unknown.status.code(), Some(1), "{vars:?}");
        let error = text(&unknown);
        assert!(
            error.contains("corral: Fehler: unbekannte Voreinstellung „brwoser“")
                && error.contains("meinten Sie „browser“?"),
            "{vars:?}: an error in German:\n{error}"
        );

        let help = text(&corral(home.path(), vars, &["run", "--help"]));
        for german in [
            "Einen Befehl in einer neuen eingehegten Unit ausführen",
            "Aufruf:",
            "Optionen:",
            "Argumente:",
            "Hartes Speicherlimit",
            "Hilfe anzeigen",
        ] {
            assert!(
                help.contains(german),
                "{vars:?}: `run --help` lacks {german:?}:\n{help}"
            );
        }
        assert!(help.contains("--memory-max"), "option names stay: {help}");

        let limit = text(&corral(
            home.path(),
            vars,
            &["run", "--memory-max", "4X", "--", "true"],
        ));
        assert!(
            limit.contains("„4X“ ist kein gültiges Speicherlimit"),
            "{vars:?}: a value error from clap's parser in German:\n{limit}"
        );
    }
}

#[test]
fn english_stays_the_default_and_lc_all_c_keeps_it() {
    let home = tempfile::tempdir().unwrap();
    for vars in [
        &[][..],
        &[("LANG", "C.UTF-8")],
        &[("LANGUAGE", "de"), ("LC_ALL", "C")],
    ] {
        let out = text(&corral(home.path(), vars, &["presets"]));
        assert!(
            out.contains("For web browsers") && out.contains("Config file: "),
            "{vars:?}: English:\n{out}"
        );
    }
}

#[test]
fn generated_docs_stay_english_whatever_the_language() {
    let home = tempfile::tempdir().unwrap();
    let man = text(&corral(home.path(), &[("LANGUAGE", "de")], &["man"]));
    assert!(
        man.contains("Hard memory limit") && !man.contains("Speicherlimit"),
        "{man}"
    );
    let fish = text(&corral(
        home.path(),
        &[("LANGUAGE", "de")],
        &["completions", "fish"],
    ));
    assert!(fish.contains("Hard memory limit"), "{fish}");
}
