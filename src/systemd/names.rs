//! Unit names: systemd's escaping (systemd.unit(5), "String Escaping for Inclusion in Unit
//! Names") and the desktop-environment naming convention for apps
//! (https://systemd.io/DESKTOP_ENVIRONMENTS/): `app-<launcher>-<app id>-<random>.<type>`.

use std::fmt;

use serde::Serialize;

/// The kind of transient unit an app runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    /// Started by systemd itself from ExecStart=; takes sandboxing properties.
    Service,
    /// Adopts processes Corral forked; keeps the caller's terminal, takes resource limits only.
    Scope,
}

impl UnitKind {
    pub fn suffix(self) -> &'static str {
        match self {
            UnitKind::Service => "service",
            UnitKind::Scope => "scope",
        }
    }
}

/// Who started a unit, judged from its name per the desktop-environment convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    Corral,
    Gnome,
    Kde,
    Flatpak,
    /// Any other `app-*` unit (another launcher) or a plain `systemd-run` (`run-*`).
    Other,
}

impl Launcher {
    pub fn of_unit(name: &str) -> Launcher {
        if name.starts_with(CORRAL_PREFIX) {
            Launcher::Corral
        } else if name.starts_with("app-gnome-") {
            Launcher::Gnome
        } else if name.starts_with("app-flatpak-") {
            Launcher::Flatpak
        } else if name.starts_with("app-kde-") || name.starts_with("app-org.kde.") {
            // Plasma names units after the app id alone (app-org.kde.konsole@….service).
            Launcher::Kde
        } else {
            Launcher::Other
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Launcher::Corral => "Corral",
            Launcher::Gnome => "GNOME",
            Launcher::Kde => "KDE",
            Launcher::Flatpak => "Flatpak",
            Launcher::Other => "other",
        }
    }
}

/// The label in the person's language ("other" is the only word among the names).
impl fmt::Display for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Launcher::Other => f.write_str(&crate::i18n::pgettext("launcher", "other")),
            _ => f.write_str(self.label()),
        }
    }
}

pub const CORRAL_PREFIX: &str = "app-corral-";

/// Longest unit name systemd accepts (UNIT_NAME_MAX).
const UNIT_NAME_MAX: usize = 255;

/// Escapes a string for use as one component of a unit name, as `systemd-escape` does:
/// `/` becomes `-`, and anything but ASCII letters, digits, `:`, `_` and `.` (and a leading
/// `.`) becomes `\xNN`, byte by byte. `-` is escaped too, since it separates name components.
pub fn escape(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for (i, byte) in component.bytes().enumerate() {
        push_escaped(&mut out, byte, i == 0);
    }
    out
}

fn push_escaped(out: &mut String, byte: u8, first: bool) {
    match byte {
        b'/' => out.push('-'),
        b'.' if first => out.push_str("\\x2e"),
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b':' | b'_' | b'.' => out.push(byte as char),
        _ => out.push_str(&format!("\\x{byte:02x}")),
    }
}

/// Reverses [`escape`]; `None` if the result is not UTF-8 or an escape is malformed.
pub fn unescape(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' => {
                out.push(b'/');
                i += 1;
            }
            b'\\' => {
                let hex = escaped.get(i + 2..i + 4)?;
                // Exactly two hex digits: from_str_radix alone would also take "+f".
                if bytes.get(i + 1) != Some(&b'x') || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A fresh unit name for an app Corral launches: `app-corral-<escaped app id>-<8 hex>.<kind>`.
/// A very long app id is cut so the name stays within systemd's limit: at a character, never
/// inside the escapes of one, so that the name still unescapes to (the start of) the app id.
pub fn new_unit_name(app_id: &str, kind: UnitKind) -> String {
    let random: u32 = rand::random();
    let room = UNIT_NAME_MAX - CORRAL_PREFIX.len() - "-12345678.service".len();
    let mut id = String::with_capacity(app_id.len().min(room));
    let mut escaped_char = String::with_capacity(16);
    let mut utf8 = [0; 4];
    for (index, c) in app_id.char_indices() {
        escaped_char.clear();
        for (offset, byte) in c.encode_utf8(&mut utf8).bytes().enumerate() {
            push_escaped(&mut escaped_char, byte, index + offset == 0);
        }
        if id.len() + escaped_char.len() > room {
            break;
        }
        id.push_str(&escaped_char);
    }
    format!("{CORRAL_PREFIX}{id}-{random:08x}.{}", kind.suffix())
}

/// The D-Bus object path systemd gives a unit, `/org/freedesktop/systemd1/unit/<label>`, where
/// the label keeps ASCII letters (and digits after the first byte) and writes every other byte
/// as `_` and two lowercase hex digits (systemd's `unit_dbus_path_from_name` and
/// `bus_label_escape`). Knowing it saves a GetUnit round trip before watching a unit.
pub fn object_path(unit: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    if unit.is_empty() {
        path.push('_');
    }
    for (i, byte) in unit.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (i > 0 && byte.is_ascii_digit()) {
            path.push(byte as char);
        } else {
            path.push_str(&format!("_{byte:02x}"));
        }
    }
    path
}

/// What a unit name tells: the app id inside a name Corral made, and the unit kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    pub app_id: Option<String>,
    pub kind: Option<UnitKind>,
}

pub fn parse_unit_name(name: &str) -> ParsedName {
    let (stem, kind) = match name.rsplit_once('.') {
        Some((stem, "service")) => (stem, Some(UnitKind::Service)),
        Some((stem, "scope")) => (stem, Some(UnitKind::Scope)),
        _ => (name, None),
    };
    let app_id = stem
        .strip_prefix(CORRAL_PREFIX)
        .and_then(|rest| rest.rsplit_once('-'))
        .filter(|(_, random)| random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|(id, _)| unescape(id));
    ParsedName { app_id, kind }
}

/// Corral writes the preset into the unit's Description ("Firefox [corral: browser]"), so that a
/// new Corral process can tell which preset a running app was started with.
pub fn description(app_name: &str, preset: &str) -> String {
    format!("{app_name} [corral: {preset}]")
}

/// Splits a Description written by [`description`] into app name and preset.
pub fn parse_description(description: &str) -> (&str, Option<&str>) {
    match description
        .strip_suffix(']')
        .and_then(|d| d.rsplit_once(" [corral: "))
    {
        Some((name, preset)) => (name, Some(preset)),
        None => (description, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_systemd_escape() {
        // Expected values from `systemd-escape`.
        assert_eq!(escape("org.mozilla.firefox"), "org.mozilla.firefox");
        assert_eq!(escape("google-chrome"), "google\\x2dchrome");
        assert_eq!(escape("a b/c"), "a\\x20b-c");
        assert_eq!(escape(".hidden"), "\\x2ehidden");
        assert_eq!(escape("ü"), "\\xc3\\xbc");
        for s in ["google-chrome", "a b/c", ".hidden", "ü", "x;y&&$(z)"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
        }
        assert_eq!(unescape("bad\\x4"), None);
    }

    #[test]
    fn object_paths_match_systemd() {
        // As `busctl --user call org.freedesktop.systemd1 /org/freedesktop/systemd1
        // org.freedesktop.systemd1.Manager GetUnit s NAME` answers.
        assert_eq!(
            object_path("app-corral-firefox-1a2b3c4d.service"),
            "/org/freedesktop/systemd1/unit/app_2dcorral_2dfirefox_2d1a2b3c4d_2eservice"
        );
        assert_eq!(
            object_path("app-corral-google\\x2dchrome-00ff.scope"),
            "/org/freedesktop/systemd1/unit/app_2dcorral_2dgoogle_5cx2dchrome_2d00ff_2escope"
        );
        assert_eq!(
            object_path("1x.service"),
            "/org/freedesktop/systemd1/unit/_31x_2eservice"
        );
        assert_eq!(object_path(""), "/org/freedesktop/systemd1/unit/_");
    }

    #[test]
    fn names_round_trip() {
        let name = new_unit_name("google-chrome", UnitKind::Service);
        assert!(name.starts_with("app-corral-google\\x2dchrome-"), "{name}");
        assert!(name.ends_with(".service"));
        let parsed = parse_unit_name(&name);
        assert_eq!(parsed.app_id.as_deref(), Some("google-chrome"));
        assert_eq!(parsed.kind, Some(UnitKind::Service));
        assert_eq!(Launcher::of_unit(&name), Launcher::Corral);

        let scope = new_unit_name("bash", UnitKind::Scope);
        assert_eq!(parse_unit_name(&scope).app_id.as_deref(), Some("bash"));
        assert_eq!(parse_unit_name("run-u42.service").app_id, None);
    }

    #[test]
    fn long_ids_are_cut_within_the_limit() {
        let long = "ü".repeat(200);
        let name = new_unit_name(&long, UnitKind::Service);
        assert!(name.len() <= UNIT_NAME_MAX, "{}", name.len());
        assert!(parse_unit_name(&name).app_id.is_some(), "{name}");
    }

    #[test]
    fn long_ids_are_cut_at_a_character_not_inside_its_escapes() {
        // Found by the unit_names fuzz target: a cut between the escapes of one multi-byte
        // character left a name that no longer unescaped to UTF-8, so a new Corral could not
        // tell which app the unit was.
        let crash = format!(
            "*r{}\t\0{}Ff$g{{{{{{{{{{{{{{ü{}){}o",
            "\\".repeat(16),
            "\\".repeat(27),
            "{".repeat(17),
            "{".repeat(17)
        );
        let crash = crash.as_str();
        for id in [crash, &"€".repeat(100), &"a€".repeat(100), &"🐄".repeat(80)] {
            for kind in [UnitKind::Service, UnitKind::Scope] {
                let name = new_unit_name(id, kind);
                assert!(name.len() <= UNIT_NAME_MAX, "{}", name.len());
                let back = parse_unit_name(&name)
                    .app_id
                    .unwrap_or_else(|| panic!("{name}"));
                assert!(!back.is_empty() && id.starts_with(&back), "{back:?}");
                // As much of the id as fits: one more character would not.
                let next = id[back.len()..].chars().next().unwrap();
                let longer = format!("{back}{next}");
                let room = UNIT_NAME_MAX - CORRAL_PREFIX.len() - "-12345678.service".len();
                assert!(escape(&longer).len() > room, "{name}");
            }
        }
    }

    #[test]
    fn unescape_takes_only_two_hex_digits() {
        assert_eq!(unescape("\\x41"), Some("A".to_owned()));
        assert_eq!(unescape("\\x+f"), None);
        assert_eq!(unescape("\\x4g"), None);
        assert_eq!(unescape("\\y41"), None);
        assert_eq!(unescape("\\x\u{e9}"), None);
        assert_eq!(unescape("\\"), None);
    }

    #[test]
    fn launchers() {
        assert_eq!(
            Launcher::of_unit("app-gnome-org.gnome.Terminal-1234.scope"),
            Launcher::Gnome
        );
        assert_eq!(
            Launcher::of_unit("app-flatpak-org.mozilla.firefox-99.scope"),
            Launcher::Flatpak
        );
        assert_eq!(
            Launcher::of_unit("app-org.kde.konsole@12ab.service"),
            Launcher::Kde
        );
        assert_eq!(Launcher::of_unit("run-u7.service"), Launcher::Other);
    }

    #[test]
    fn descriptions() {
        let d = description("Firefox", "browser");
        assert_eq!(parse_description(&d), ("Firefox", Some("browser")));
        assert_eq!(parse_description("/usr/bin/true"), ("/usr/bin/true", None));
    }
}
