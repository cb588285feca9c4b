//! `parse_exec` (Desktop Entry Specification §7) on any text. Beyond "no panic": the parse
//! never invents characters (every character of every argument was in the line), hostile
//! shell syntax outside double quotes is refused, a parsed line always has a literal
//! program, and the result is the same every time.
#![no_main]

use std::collections::HashSet;

use corral::apps::{ArgPiece, ExecArg, parse_exec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(args) = parse_exec(line) else {
        return;
    };
    assert_eq!(parse_exec(line).ok(), Some(args.clone()), "deterministic");
    let seen: HashSet<char> = line.chars().collect();
    let check = |text: &str| {
        for c in text.chars() {
            assert!(seen.contains(&c), "{c:?} in {text:?} is not in {line:?}");
        }
    };
    match args.first() {
        Some(ExecArg::Literal(program)) => {
            assert!(!program.is_empty() && !program.contains('='), "{line:?}")
        }
        other => panic!("{line:?}: program is {other:?}"),
    }
    for arg in &args {
        match arg {
            ExecArg::Literal(text) => check(text),
            ExecArg::Field(_) => {}
            ExecArg::Template(pieces) => {
                assert!(pieces.len() >= 2, "{line:?}: {pieces:?}");
                for piece in pieces {
                    if let ArgPiece::Text(text) = piece {
                        check(text);
                    }
                }
            }
        }
    }
    // No shell: a line that parses has no unescaped, unquoted shell metacharacter. Scan it
    // the way §7 reads it (quotes toggle, a backslash takes the next character as itself).
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => quoted = !quoted,
            ';' | '&' | '|' | '$' | '`' | '<' | '>' | '(' | ')' | '\'' | '*' | '?' | '~' | '#'
            | '\n' | '\t'
                if !quoted =>
            {
                panic!("{line:?} parsed although it has an unquoted {c:?}")
            }
            _ => {}
        }
    }
});
