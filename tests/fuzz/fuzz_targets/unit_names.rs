//! Unit-name escaping (systemd.unit(5), "String Escaping") and Corral's unit names, for any
//! app id. Properties: escape/unescape round-trip; an escaped id holds only characters valid
//! in a unit name and never starts with a dot; a new unit name is valid, at most 255 bytes,
//! and parses back to its kind and to an app id that is the given id or a prefix of it (a
//! very long id is cut); unescape never panics on any text.
#![no_main]

use corral::systemd::Launcher;
use corral::systemd::names::{UnitKind, escape, new_unit_name, parse_unit_name, unescape};
use libfuzzer_sys::fuzz_target;

fn valid_unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\')
}

fuzz_target!(|data: &[u8]| {
    let Ok(id) = std::str::from_utf8(data) else {
        // Any bytes as a would-be escaped name: no panic.
        let _ = unescape(&String::from_utf8_lossy(data));
        return;
    };
    let _ = unescape(id);
    let escaped = escape(id);
    assert!(escaped.chars().all(valid_unit_char), "{escaped:?}");
    assert!(!escaped.starts_with('.'), "{escaped:?}");
    assert_eq!(unescape(&escaped).as_deref(), Some(id), "{escaped:?}");

    for kind in [UnitKind::Service, UnitKind::Scope] {
        let name = new_unit_name(id, kind);
        assert!(name.len() <= 255, "{} bytes: {name}", name.len());
        assert!(name.chars().all(valid_unit_char), "{name:?}");
        assert_eq!(Launcher::of_unit(&name), Launcher::Corral);
        let parsed = parse_unit_name(&name);
        assert_eq!(parsed.kind, Some(kind), "{name}");
        let back = parsed
            .app_id
            .unwrap_or_else(|| panic!("{name} gives no app id back for {id:?}"));
        assert!(id.starts_with(&back), "{back:?} is not a prefix of {id:?}");
        if escaped.len() <= 200 {
            assert_eq!(back, id, "{name}");
        }
    }
});
