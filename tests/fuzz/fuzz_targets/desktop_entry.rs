//! A whole desktop file from bytes (`DesktopEntry::from_bytes`), then the argv a launch would
//! use (`DesktopEntry::command`). Beyond "no panic": errors name a line that exists, a
//! non-UTF-8 file is always refused as such, and a file name passed to the app stays one
//! argument, never split or merged with the author's text outside its own argument.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use corral::apps::{DesktopEntry, EntryError, Locale, ParsedFile};
use libfuzzer_sys::fuzz_target;

/// Contains every kind of character that a shell or the parser might treat specially.
const TARGET: &str = "/tmp/a b;$(id)`x`\"'%f\\";

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/usr/share/applications/org.example.Fuzz.desktop");
    let lines = 1 + data.iter().filter(|&&b| b == b'\n').count();
    let locale = Locale::parse("de_DE.UTF-8@euro");
    for locale in [None, locale.as_ref()] {
        match DesktopEntry::from_bytes("org.example.Fuzz", path, data, locale) {
            Err(EntryError::NotUtf8 { line, .. }) => {
                assert!(std::str::from_utf8(data).is_err());
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
            Err(EntryError::Malformed { line, .. }) => {
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
            Err(error) => {
                assert!(std::str::from_utf8(data).is_ok(), "{error}");
                assert!(error.to_string().contains("org.example.Fuzz.desktop"));
            }
            Ok(ParsedFile::Application(entry)) => check_command(&entry),
            Ok(ParsedFile::Hidden | ParsedFile::OtherType(_)) => {}
        }
    }
});

fn check_command(entry: &DesktopEntry) {
    // Nothing that reaches execve or D-Bus holds a NUL (such a file is refused).
    for text in [&entry.exec, &entry.name, &entry.id] {
        assert!(!text.contains('\0'), "{text:?}");
    }
    let mut allowed: HashSet<char> = entry.exec.chars().collect();
    for text in [&entry.name, &entry.path.to_string_lossy().into_owned()] {
        allowed.extend(text.chars());
    }
    allowed.extend(entry.icon.iter().flat_map(|icon| icon.chars()));
    allowed.extend("--icon".chars());
    for targets in [vec![], vec![TARGET.to_owned()]] {
        let Ok(argv) = entry.command(&targets) else {
            continue;
        };
        assert!(!argv.is_empty() && !argv[0].is_empty(), "{:?}", entry.exec);
        let with_target = argv.iter().filter(|arg| arg.contains(TARGET)).count();
        let author_wrote_it = [&entry.exec, &entry.name]
            .into_iter()
            .chain(entry.icon.as_ref())
            .any(|text| text.contains(TARGET));
        if !targets.is_empty() && !author_wrote_it {
            // Opening a file through an Exec line that accepts it: it is in exactly one
            // argument, whole.
            assert_eq!(with_target, 1, "{:?} -> {argv:?}", entry.exec);
        }
        for arg in &argv {
            let rest = arg.replace(TARGET, "");
            for c in rest.chars() {
                assert!(
                    allowed.contains(&c),
                    "{c:?} in {arg:?} from {:?}",
                    entry.exec
                );
            }
        }
    }
}
