//! Hostile and absurd input, through the public API a launch or a config load takes: desktop
//! entries whose Exec lines try shell syntax, app ids that systemd must escape, nonsense limits,
//! and huge or deeply nested config files. Each input either becomes exactly what the spec
//! says or is refused with a clear error; none crashes, hangs or changes a file. RELIABILITY.md
//! lists every case and the test that checks it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use corral::apps::{DesktopEntry, EntryError, ExecError, ExecSyntax, FieldCode, ParsedFile};
use corral::config::{Config, ConfigEditor, ConfigError};
use corral::limits::{Bytes, CpuQuota, CpuWeight, MemoryLimit, SwapLimit, TasksLimit};
use corral::systemd::names::{UnitKind, escape, new_unit_name, parse_unit_name, unescape};

// -------------------------------------------------------------------------------------------
// Exec lines

const DESKTOP_PATH: &str = "/home/u/.local/share/applications/org.example.Hostile.desktop";
const NAME: &str = "Evil; rm -rf ~ $(id)";

/// The file as a launch reads it: §4 escapes, then §7 quoting, then field codes for `targets`.
fn launch_argv(exec_in_file: &str, targets: &[&str]) -> Result<Vec<String>, ExecError> {
    let file = format!(
        "[Desktop Entry]\nType=Application\nName={NAME}\nIcon=hostile\nExec={exec_in_file}\n"
    );
    let parsed = DesktopEntry::from_bytes(
        "org.example.Hostile",
        Path::new(DESKTOP_PATH),
        file.as_bytes(),
        None,
    );
    let entry = match parsed {
        Ok(ParsedFile::Application(entry)) => entry,
        other => panic!("{exec_in_file:?}: {other:?}"),
    };
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    entry.command(&targets)
}

enum Expect {
    /// Launched as exactly this argv, no shell in between.
    Argv(&'static [&'static str]),
    /// Refused, for this reason.
    Refused(ExecSyntax),
}
use Expect::{Argv, Refused};

#[test]
fn hostile_exec_lines_become_the_exact_argv_or_are_refused() {
    let cases: &[(&str, &[&str], Expect)] = &[
        // Shell syntax outside quotes: §7 says these must be quoted, and no shell would read it.
        (
            r"foo; rm -rf ~",
            &[],
            Refused(ExecSyntax::UnquotedReserved(';')),
        ),
        (
            r"foo && rm -rf ~",
            &[],
            Refused(ExecSyntax::UnquotedReserved('&')),
        ),
        (
            r"foo || bar",
            &[],
            Refused(ExecSyntax::UnquotedReserved('|')),
        ),
        (
            r"foo $(rm -rf ~)",
            &[],
            Refused(ExecSyntax::UnquotedReserved('$')),
        ),
        (
            r"foo ${HOME}",
            &[],
            Refused(ExecSyntax::UnquotedReserved('$')),
        ),
        (r"foo `id`", &[], Refused(ExecSyntax::UnquotedReserved('`'))),
        (
            r"foo 'a b'",
            &[],
            Refused(ExecSyntax::UnquotedReserved('\'')),
        ),
        (
            r"foo > /home/u/.bashrc",
            &[],
            Refused(ExecSyntax::UnquotedReserved('>')),
        ),
        (
            r"foo < /etc/shadow",
            &[],
            Refused(ExecSyntax::UnquotedReserved('<')),
        ),
        (r"foo *", &[], Refused(ExecSyntax::UnquotedReserved('*'))),
        (r"foo ?", &[], Refused(ExecSyntax::UnquotedReserved('?'))),
        (
            r"foo #comment",
            &[],
            Refused(ExecSyntax::UnquotedReserved('#')),
        ),
        (
            r"~/bin/foo",
            &[],
            Refused(ExecSyntax::UnquotedReserved('~')),
        ),
        (r"foo (x)", &[], Refused(ExecSyntax::UnquotedReserved('('))),
        // §4 escapes that make a tab or a newline: reserved outside quotes too.
        (
            r"foo\tbar",
            &[],
            Refused(ExecSyntax::UnquotedReserved('\t')),
        ),
        (
            r"foo\nrm -rf ~",
            &[],
            Refused(ExecSyntax::UnquotedReserved('\n')),
        ),
        // Inside double quotes it is all one argument, byte for byte.
        (
            r#"foo "a; b" "c && d" "$(id)" "`id`" "x | y > z" "'q'""#,
            &[],
            Argv(&["foo", "a; b", "c && d", "$(id)", "`id`", "x | y > z", "'q'"]),
        ),
        (
            r#"foo "line\none" "tab\there""#,
            &[],
            Argv(&["foo", "line\none", "tab\there"]),
        ),
        // The spec's own escapes inside quotes (\\$ and \\` in the file).
        (
            r#"foo "\\$(id)" "\\`id\\`""#,
            &[],
            Argv(&["foo", "$(id)", "`id`"]),
        ),
        // An escaped reserved character outside quotes is a literal (lenient, as GLib).
        (r"foo a\;b", &[], Argv(&["foo", "a;b"])),
        // A file name given to open is one argument whatever it holds...
        (
            "viewer %f",
            &["\"; rm -rf ~ #"],
            Argv(&["viewer", "\"; rm -rf ~ #"]),
        ),
        (
            "viewer --open=%u",
            &["$(id)"],
            Argv(&["viewer", "--open=$(id)"]),
        ),
        (
            "viewer %F",
            &["a b", "`c`", "-rf"],
            Argv(&["viewer", "a b", "`c`", "-rf"]),
        ),
        // ...and never lands inside a script the author quoted: %f in quotes is not expanded.
        (
            r#"sh -c "rm -rf %f""#,
            &[],
            Argv(&["sh", "-c", "rm -rf %f"]),
        ),
        // The name and icon codes are single arguments too.
        ("app %c %i", &[], Argv(&["app", NAME, "--icon", "hostile"])),
        // Field codes in odd places.
        ("%f viewer", &[], Refused(ExecSyntax::ProgramIsFieldCode)),
        ("%k", &[], Refused(ExecSyntax::ProgramIsFieldCode)),
        (
            "viewer %f%u",
            &[],
            Refused(ExecSyntax::SeveralFileFieldCodes),
        ),
        (
            "viewer %f %F",
            &[],
            Refused(ExecSyntax::SeveralFileFieldCodes),
        ),
        (
            "viewer a%Fb",
            &[],
            Refused(ExecSyntax::FieldCodeNotAlone(FieldCode::Files)),
        ),
        (
            "viewer %i%c",
            &[],
            Refused(ExecSyntax::FieldCodeNotAlone(FieldCode::Icon)),
        ),
        ("viewer %x", &[], Refused(ExecSyntax::UnknownFieldCode('x'))),
        ("viewer %", &[], Argv(&["viewer", "%"])),
        ("viewer 100%%", &[], Argv(&["viewer", "100%"])),
        ("viewer %%f", &[], Argv(&["viewer", "%f"])),
        (r#"viewer "%U""#, &[], Argv(&["viewer", "%U"])),
        ("viewer %d%D --x %m", &[], Argv(&["viewer", "--x"])),
        // Quotes and program names.
        (r#""/opt/a b/app" --x"#, &[], Argv(&["/opt/a b/app", "--x"])),
        (
            r#"app "unterminated"#,
            &[],
            Refused(ExecSyntax::UnterminatedQuote),
        ),
        (r"app \\", &[], Refused(ExecSyntax::TrailingBackslash)),
        ("FOO=bar app", &[], Refused(ExecSyntax::EqualsInProgram)),
        (r#""" app"#, &[], Refused(ExecSyntax::EmptyProgram)),
        ("", &[], Refused(ExecSyntax::Empty)),
        // Unicode, including a right-to-left override, is just text.
        (
            "écrire \"naïve café\" \u{202e}txt.exe",
            &[],
            Argv(&["écrire", "naïve café", "\u{202e}txt.exe"]),
        ),
    ];
    for (exec, targets, expect) in cases {
        let got = launch_argv(exec, targets);
        match (expect, got) {
            (Argv(argv), Ok(got)) => assert_eq!(got, *argv, "Exec={exec}"),
            (Refused(problem), Err(ExecError::InvalidExec { problem: got, .. })) => {
                assert_eq!(&got, problem, "Exec={exec}")
            }
            (_, got) => panic!("Exec={exec}: {got:?}"),
        }
    }
}

#[test]
fn refused_exec_lines_say_which_app_which_file_and_what_to_do() {
    let error = launch_argv("foo; rm -rf ~", &[]).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "org.example.Hostile: Exec line has the reserved character ';' outside double \
             quotes (the spec requires quoting it, and Corral runs no shell to interpret it): \
             `foo; rm -rf ~` — fix the .desktop file at {DESKTOP_PATH}"
        )
    );
}

#[test]
fn files_to_open_are_never_spliced_into_a_quoted_script() {
    // The classic attack: a crafted file name run by a `sh -c "… %f"` line. The quoted %f is
    // text, so the line takes no file at all, and asking it to open one is an error.
    let error = launch_argv(r#"sh -c "xdg-open %f""#, &["x; curl evil | sh"]).unwrap_err();
    assert!(
        matches!(error, ExecError::TargetsNotAccepted { count: 1, .. }),
        "{error:?}"
    );
    // One target for a single-file code, several given: refused rather than half-opened.
    let error = launch_argv("viewer %f", &["a", "b"]).unwrap_err();
    assert!(
        matches!(error, ExecError::TooManyTargets { count: 2, .. }),
        "{error:?}"
    );
}

#[test]
fn non_utf8_and_nul_bytes_in_a_desktop_file_are_refused_with_the_line() {
    let path = Path::new(DESKTOP_PATH);
    let cases: [(&[u8], usize); 4] = [
        (
            b"[Desktop Entry]\nType=Application\nName=A\nExec=app \xff\xfe\n",
            4,
        ),
        (
            b"[Desktop Entry]\nType=Application\nName=Caf\xe9\nExec=cafe\n",
            3,
        ),
        // An overlong encoding of NUL, as some Java tools write it.
        (
            b"[Desktop Entry]\nType=Application\nName=A\nExec=app \xc0\x80\n",
            4,
        ),
        (
            b"[Desktop Entry]\nType=Application\nName=A\nExec=app a\0b\n",
            4,
        ),
    ];
    for (bytes, line) in cases {
        let error = DesktopEntry::from_bytes("x", path, bytes, None).unwrap_err();
        let at = match &error {
            EntryError::NotUtf8 { line, .. } | EntryError::Malformed { line, .. } => *line,
            other => panic!("{other:?}"),
        };
        assert_eq!(at, line, "{error}");
        let text = error.to_string();
        assert!(text.contains(DESKTOP_PATH), "{text}");
        assert!(text.contains(&format!("line {line}")), "{text}");
    }
}

#[test]
fn huge_exec_lines_parse_quickly() {
    // 1 MB of arguments, and one 1 MB argument.
    let many = format!("app{}", " --flag".repeat(150_000));
    let long = format!("app \"{}\"", "x; ".repeat(350_000));
    for exec in [many, long] {
        let start = Instant::now();
        let argv = launch_argv(&exec, &[]).unwrap();
        let took = start.elapsed();
        assert!(argv.len() > 1);
        assert!(
            took < Duration::from_secs(5),
            "{} bytes took {took:?}",
            exec.len()
        );
    }
}

// -------------------------------------------------------------------------------------------
// Unit names

/// systemd's unit_name_is_valid() for a plain (non-template) name: at most 255 bytes, only
/// ASCII letters, digits and `:-_.\`, and a known suffix.
fn assert_valid_unit_name(name: &str, kind: UnitKind) {
    assert!(name.len() <= 255, "{} bytes: {name}", name.len());
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\".contains(&b)),
        "{name}"
    );
    assert!(name.ends_with(&format!(".{}", kind.suffix())), "{name}");
    assert!(name.starts_with("app-corral-"), "{name}");
}

#[test]
fn app_ids_systemd_must_escape_give_valid_names_that_round_trip() {
    let long_ascii = "a".repeat(300);
    let long_dashes = "-".repeat(300);
    let long_unicode = "ü".repeat(300);
    let long_cjk = "火".repeat(300);
    let ids: Vec<&str> = vec![
        "org.mozilla.firefox",
        "my app",
        "google-chrome",
        "a/b/c",
        "/usr/bin/firefox",
        "back\\slash",
        "ünïcödé",
        "火狐",
        "🐄",
        ".hidden",
        "..",
        ".",
        "",
        "app@instance",
        "x-12345678.service",
        "app-gnome-fake",
        "semi;colon && $(id)",
        "tab\tnewline\nnul\0",
        "%f %i",
        &long_ascii,
        &long_dashes,
        &long_unicode,
        &long_cjk,
    ];
    for id in ids {
        let escaped = escape(id);
        assert_eq!(unescape(&escaped).as_deref(), Some(id), "{escaped}");
        for kind in [UnitKind::Service, UnitKind::Scope] {
            let name = new_unit_name(id, kind);
            assert_valid_unit_name(&name, kind);
            let parsed = parse_unit_name(&name);
            assert_eq!(parsed.kind, Some(kind), "{name}");
            let back = parsed.app_id.unwrap_or_else(|| panic!("{name}: no app id"));
            if id.len() < 50 {
                assert_eq!(back, id, "{name}");
            } else {
                // 300 characters do not fit in 255 bytes: the start of the id is kept.
                assert!(id.starts_with(&back) && !back.is_empty(), "{back:?}");
            }
        }
    }
}

#[test]
fn escaping_matches_systemd_escape() {
    // Expected values from `systemd-escape` (systemd 252), inlined so the test runs anywhere.
    for (id, expected) in [
        ("my app", r"my\x20app"),
        ("a/b/c", "a-b-c"),
        ("back\\slash", r"back\x5cslash"),
        (".hidden", r"\x2ehidden"),
        ("app@instance", r"app\x40instance"),
        ("ünï", r"\xc3\xbcn\xc3\xaf"),
        ("semi;colon", r"semi\x3bcolon"),
        ("a-b", r"a\x2db"),
        ("火狐", r"\xe7\x81\xab\xe7\x8b\x90"),
        ("..", r"\x2e."),
        ("/usr/bin/firefox", "-usr-bin-firefox"),
        ("", ""),
    ] {
        assert_eq!(escape(id), expected, "{id}");
    }
}

// -------------------------------------------------------------------------------------------
// Limits

fn percent(text: &str) -> MemoryLimit {
    match text.parse::<MemoryLimit>() {
        Ok(limit @ MemoryLimit::Percent(_)) => limit,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn absurd_memory_limits_get_clear_errors_or_sane_values() {
    let refused = [
        ("0", "0 bytes would stop the app"),
        ("0%", "0% would stop the app"),
        ("-1", "negative"),
        ("-1G", "negative"),
        ("18446744073709551616", "far too large"),
        ("99999999999999999999%", "far too large"),
        ("20000000T", "far too large"),
        ("1e9%", "not a plain number"),
        ("1e9", "unit after the number"),
        ("101%", "more than 100%"),
        ("100.001%", "at most two decimals"),
        ("NaN", "does not start with a number"),
        ("inf", "does not start with a number"),
        ("∞", "does not start with a number"),
        ("0x10", "unit after the number"),
        ("4GG", "unit after the number"),
        ("4 G B", "unit after the number"),
        ("1.5.5G", "malformed"),
        (".5G", "malformed"),
        ("1.0000000001G", "too many decimals"),
        ("", "empty"),
        ("   ", "empty"),
        ("\t\n", "empty"),
        // Digits other than ASCII are not numbers here: Arabic-Indic, fullwidth, superscript.
        ("٤G", "does not start with a number"),
        ("４G", "does not start with a number"),
        ("²G", "does not start with a number"),
        ("4Ｇ", "unit after the number"),
    ];
    for (input, reason) in refused {
        let error = input.parse::<MemoryLimit>().unwrap_err();
        let text = error.to_string();
        assert!(text.contains(reason), "{input:?}: {text}");
        assert!(
            text.contains(&format!("“{input}”")),
            "quotes the input: {text}"
        );
        assert!(text.contains("512M or 4G"), "says what is accepted: {text}");
    }
    let accepted = [
        ("4 G", MemoryLimit::Bytes(Bytes(4 << 30))),
        (" 4G\n", MemoryLimit::Bytes(Bytes(4 << 30))),
        ("1", MemoryLimit::Bytes(Bytes(1))),
        ("100%", percent("100.00%")),
        ("MAX", MemoryLimit::Unlimited),
        ("Infinity", MemoryLimit::Unlimited),
        ("18446744073709551615", MemoryLimit::Unlimited),
        // 999999 TiB: more than any machine has, but a real size; systemd takes it.
        ("999999T", MemoryLimit::Bytes(Bytes(999_999 << 40))),
        ("16777215T", MemoryLimit::Bytes(Bytes(16_777_215 << 40))),
    ];
    for (input, expected) in accepted {
        assert_eq!(input.parse::<MemoryLimit>(), Ok(expected), "{input:?}");
    }
    // Swap alone may be 0 (no swap), and nothing else changes.
    assert_eq!(
        "0".parse::<SwapLimit>().unwrap().0,
        MemoryLimit::Bytes(Bytes(0))
    );
    assert!("-1".parse::<SwapLimit>().is_err());
}

#[test]
fn absurd_cpu_and_task_limits_get_clear_errors() {
    for (input, reason) in [
        ("0%", "0% would stop the app"),
        ("-1%", "negative"),
        ("1e9%", "not a plain number"),
        ("102401%", "more than 1024 CPUs"),
        ("18446744073709551616%", "far too large"),
        ("12.5%", "whole percent"),
        ("NaN%", "not a plain number"),
        ("inf", "no % sign"),
        ("50", "no % sign"),
        ("0x10%", "not a plain number"),
        ("٥٠%", "not a plain number"),
        ("", "empty"),
        (" ", "empty"),
    ] {
        let text = input.parse::<CpuQuota>().unwrap_err().to_string();
        assert!(text.contains(reason), "{input:?}: {text}");
        assert!(text.contains("percentage of one CPU"), "{text}");
    }
    assert_eq!(
        "102400%".parse::<CpuQuota>(),
        Ok(CpuQuota::Percent(102_400))
    );
    assert_eq!(" 50 % ".parse::<CpuQuota>(), Ok(CpuQuota::Percent(50)));

    for input in [
        "0",
        "-1",
        "10001",
        "1e3",
        "NaN",
        "",
        "0x10",
        "18446744073709551616",
    ] {
        let text = input.parse::<CpuWeight>().unwrap_err().to_string();
        assert!(text.contains("from 1 to 10000"), "{input:?}: {text}");
    }
    for input in [
        "0",
        "-1",
        "1e3",
        "NaN",
        "inf",
        "",
        " ",
        "0x10",
        "18446744073709551616",
    ] {
        let text = input.parse::<TasksLimit>().unwrap_err().to_string();
        assert!(
            text.contains("whole number of at least 1"),
            "{input:?}: {text}"
        );
    }
    assert_eq!("18446744073709551615".parse(), Ok(TasksLimit::Unlimited));
}

#[test]
fn absurd_limits_in_the_config_file_are_located() {
    for (text, position, words) in [
        ("[presets.x]\nmemory-max = -1\n", (2, 14), "negative"),
        ("[presets.x]\nmemory-max = 0\n", (2, 14), "0 bytes"),
        (
            "[presets.x]\nmemory-max = 18446744073709551616\n",
            (2, 14),
            "",
        ),
        (
            "[presets.x]\ncpu-quota = \"1e9%\"\n",
            (2, 13),
            "plain number",
        ),
        ("[presets.x]\ncpu-weight = 1e9\n", (2, 14), ""),
        ("[presets.x]\ntasks-max = nan\n", (2, 13), ""),
        ("[presets.x]\ntasks-max = inf\n", (2, 13), ""),
        (
            "[presets.x]\nmemory-high = \"999999T\"\nmemory-max = \"1G\"\n",
            (2, 15),
            "soft",
        ),
    ] {
        let error = Config::parse(text, Path::new("config.toml")).unwrap_err();
        match &error {
            ConfigError::Syntax {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((*line, *column), position, "{text:?}: {message}");
                assert!(message.contains(words), "{text:?}: {message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
        assert!(error.to_string().contains("Corral has not changed it"));
    }
}

// -------------------------------------------------------------------------------------------
// Huge and deeply nested config files

/// Loads `text` from a file the way Corral does (load, then open for editing and save with no
/// change), and checks the file is untouched afterwards. Returns the load's result and how
/// long it took.
fn load_file(text: &str) -> (Result<Config, ConfigError>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corral/config.toml");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    let before = fs::metadata(&path).unwrap();
    let start = Instant::now();
    let loaded = Config::load_from(&path);
    let took = start.elapsed();
    let edited = ConfigEditor::open(&path);
    assert_eq!(loaded.is_ok(), edited.is_ok(), "load and edit agree");
    if let Ok(mut editor) = edited {
        editor.save().unwrap(); // nothing changed: must not write
    }
    let after = fs::metadata(&path).unwrap();
    assert_eq!(
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        ),
        "the file was not touched"
    );
    assert!(fs::read(&path).unwrap() == text.as_bytes());
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.toml"], "nothing else was written");
    (loaded, took)
}

/// A bound for a debug build on a slow, shared machine; a release build takes a fraction of
/// it (RELIABILITY.md has the measured times).
const SLOW: Duration = Duration::from_secs(30);

fn expect_located_error(what: &str, text: &str) -> String {
    let (loaded, took) = load_file(text);
    match loaded {
        Err(ConfigError::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            assert!(line >= 1 && column >= 1, "{what}: {line}:{column}");
            eprintln!(
                "{what}: {} bytes refused in {took:?} at {line}:{column}: {}",
                text.len(),
                message.chars().take(120).collect::<String>()
            );
            assert!(took < SLOW, "{what}: {took:?}");
            message
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[test]
fn deeply_nested_config_files_are_refused_without_overflowing_the_stack() {
    // The toml parser stops at a depth of 80; this proves it does so here, for each way of
    // nesting, on a test thread's 2 MiB stack (Corral's main thread has 8 MiB).
    const DEPTH: usize = 10_000;
    let arrays = format!("x = {}{}\n", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let tables = format!("x = {}1{}\n", "{a = ".repeat(DEPTH), "}".repeat(DEPTH));
    let mixed = format!(
        "x = {}{}\n",
        "[{a = ".repeat(DEPTH / 2),
        "}]".repeat(DEPTH / 2)
    );
    let dotted = format!("{} = 1\n", vec!["a"; DEPTH].join("."));
    let header = format!("[{}]\n", vec!["a"; DEPTH].join("."));
    let unclosed = format!("x = {}\n", "[".repeat(DEPTH));
    let in_preset = format!(
        "[presets.x]\nenvironment = {{ A = {}\"x\"{} }}\n",
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    for (what, text) in [
        ("arrays", arrays),
        ("inline tables", tables),
        ("arrays of inline tables", mixed),
        ("dotted key", dotted),
        ("table header", header),
        ("unclosed arrays", unclosed),
        ("nested value in a preset", in_preset),
    ] {
        expect_located_error(what, &text);
    }
}

#[test]
fn ten_megabyte_config_files_load_or_are_refused_in_reasonable_time() {
    const SIZE: usize = 10 << 20;
    // Valid: 10 MB of rules. Loads, all of them.
    let mut rules = String::with_capacity(SIZE + 100);
    let mut count = 0;
    while rules.len() < SIZE {
        rules.push_str(&format!(
            "[apps.\"org.example.App{count}\"]\npreset = \"browser\"\nmemory-high = \"1G\"\n"
        ));
        count += 1;
    }
    let (loaded, took) = load_file(&rules);
    let config = loaded.unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{count} rules, {} bytes: loaded in {took:?}", rules.len());
    assert_eq!(config.rules().count(), count);
    assert!(
        config
            .rule_for(&format!("org.example.App{}", count - 1), None)
            .is_some()
    );
    assert!(took < SLOW, "{took:?}");

    // Valid: one 10 MB comment and one 10 MB string.
    let comment = format!("# {}\n[presets.x]\nmemory-max = \"1G\"\n", "x".repeat(SIZE));
    let (loaded, took) = load_file(&comment);
    eprintln!("10 MB comment: {took:?}");
    assert!(loaded.is_ok() && took < SLOW, "{took:?}");
    let string = format!("[presets.x]\ndescription = \"{}\"\n", "x".repeat(SIZE));
    let (loaded, took) = load_file(&string);
    eprintln!("10 MB string: {took:?}");
    assert!(loaded.is_ok() && took < SLOW, "{took:?}");

    // Invalid: the mistake in the last line of 10 MB is found and located.
    let late = format!("{rules}[presets.x]\nmemory-max = \"4X\"\n");
    let lines = late.lines().count();
    let (loaded, _) = load_file(&late);
    match loaded {
        Err(ConfigError::Syntax { line, column, .. }) => assert_eq!((line, column), (lines, 14)),
        other => panic!("{other:?}"),
    }
    // Invalid: a 10 MB unknown key, a 10 MB preset name, 10 MB of garbage.
    for (what, text) in [
        (
            "huge unknown key",
            format!("[presets.x]\n{} = 1\n", "k".repeat(SIZE)),
        ),
        (
            "huge preset name",
            format!("[presets.{}]\n", "N".repeat(SIZE)),
        ),
        ("garbage", "\u{1f404}=\0[".repeat(SIZE / 8)),
        ("10 MB of [", "[".repeat(SIZE)),
    ] {
        let message = expect_located_error(what, &text);
        eprintln!("{what}: message of {} bytes", message.len());
    }
}
