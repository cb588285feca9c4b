//! The other direction of the Exec= parser: any argv, quoted as §7 says (each argument in
//! double quotes with `"` `` ` `` `$` `\` escaped, `%` written `%%`) and then escaped for the
//! file as §4 says, comes back out of a real .desktop file as exactly that argv — through
//! `DesktopEntry::from_bytes` and `DesktopEntry::command`, the path a launch takes. So any
//! argv at all can be launched from a desktop file, and nothing in it is ever interpreted.
#![no_main]

use std::path::Path;

use corral::apps::{DesktopEntry, EntryError, ExecArg, FileProblem, ParsedFile, parse_exec};
use libfuzzer_sys::fuzz_target;

/// §7: one argument as a quoted string.
fn quote(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// §4: a string value as written in the file.
fn escape_value(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|argv: Vec<String>| {
    let Some(program) = argv.first() else {
        return;
    };
    let quoted: Vec<String> = argv.iter().map(|a| quote(a)).collect();
    let exec = quoted.join(" ");
    let parsed = parse_exec(&exec);
    if program.is_empty() || program.contains('=') {
        assert!(parsed.is_err(), "{exec:?}");
        return;
    }
    let expected: Vec<ExecArg> = argv.iter().cloned().map(ExecArg::Literal).collect();
    assert_eq!(parsed.unwrap(), expected, "{exec:?}");

    let file = format!(
        "[Desktop Entry]\nType=Application\nName=Fuzz\nExec={}\n",
        escape_value(&exec)
    );
    let path = Path::new("/usr/share/applications/fuzz.desktop");
    match DesktopEntry::from_bytes("fuzz", path, file.as_bytes(), None) {
        // A NUL can reach neither execve nor D-Bus: such a file is refused, naming the line.
        Err(EntryError::Malformed {
            line: 4,
            problem: FileProblem::NulByte,
            ..
        }) if exec.contains('\0') => {}
        Ok(ParsedFile::Application(entry)) => {
            assert_eq!(entry.command(&[]).unwrap(), argv, "{file:?}");
        }
        other => panic!("{file:?}: {other:?}"),
    }
});
