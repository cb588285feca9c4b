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

/// Reads a unit name of the desktop convention. The app id is found whoever launched the
/// unit: `app-corral-<id>-<8 hex>.<kind>` (Corral's own, checked strictly), and
/// `app[-<launcher>]-<id>@<random>.service`, `app[-<launcher>]-<id>-<random>.scope` (GNOME,
/// KDE, Flatpak, any other), whose id has every `-` escaped and so ends at the first `@` or
/// the last `-`.
pub fn parse_unit_name(name: &str) -> ParsedName {
    let (stem, kind) = match name.rsplit_once('.') {
        Some((stem, "service")) => (stem, Some(UnitKind::Service)),
        Some((stem, "scope")) => (stem, Some(UnitKind::Scope)),
        _ => (name, None),
    };
    let app_id = if let Some(rest) = stem.strip_prefix(CORRAL_PREFIX) {
        rest.rsplit_once('-')
            .filter(|(_, random)| {
                random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .and_then(|(id, _)| unescape(id))
    } else {
        kind.and_then(|kind| app_id_of_desktop_unit(stem, kind))
    };
    ParsedName { app_id, kind }
}

/// The app id of another launcher's unit (see [`parse_unit_name`]); `stem` is the name without
/// its type suffix.
fn app_id_of_desktop_unit(stem: &str, kind: UnitKind) -> Option<String> {
    let rest = stem.strip_prefix("app-")?;
    let rest = LAUNCHER_PARTS
        .iter()
        .filter(|part| !part.is_empty())
        .find_map(|part| rest.strip_prefix(part))
        .unwrap_or(rest);
    let id = match (kind, rest.split_once('@')) {
        (UnitKind::Service, Some((id, _))) => id,
        // A service without an instance part is named after the app alone.
        (UnitKind::Service, None) => rest,
        (UnitKind::Scope, _) => rest.rsplit_once('-')?.0,
    };
    if id.is_empty() {
        return None;
    }
    unescape(id)
}

/// The launcher part of desktop-convention names (`app-<launcher>-<app id>…`), and the empty
/// one of launchers that name none (KDE Plasma: `app-org.kde.konsole@….service`).
const LAUNCHER_PARTS: [&str; 4] = ["", "gnome-", "kde-", "flatpak-"];

/// The drop-in folders (below a unit search path such as `~/.config/systemd/user/`) that reach
/// every unit an app can run in, whoever starts it, per the desktop naming convention
/// (https://systemd.io/DESKTOP_ENVIRONMENTS/): `app[-<launcher>]-<id>@.service.d` (every
/// instance of the app's services) and `app[-<launcher>]-<id>-.scope.d` (a prefix ending at a
/// dash: every scope whose name continues with a random part) for GNOME, KDE, Flatpak and no
/// launcher, and Corral's own `app-corral-<id>-.service.d` and `app-corral-<id>-.scope.d`.
/// The id is escaped as systemd escapes it, so a `-` in it (`\x2d`) does not end a prefix.
///
/// An id that is itself a launcher's name (`gnome`, …) gets no launcher-less folders: those
/// would be `app-gnome-.scope.d`, which reaches every app GNOME starts.
pub fn app_dropin_folders(app_id: &str) -> Vec<String> {
    let id = escape(app_id);
    let names_a_launcher = LAUNCHER_PARTS
        .iter()
        .chain([&"corral-"])
        .any(|part| part.strip_suffix('-') == Some(app_id));
    let mut folders = Vec::with_capacity(10);
    for part in LAUNCHER_PARTS {
        if part.is_empty() && names_a_launcher {
            continue;
        }
        folders.push(format!("app-{part}{id}@.service.d"));
        folders.push(format!("app-{part}{id}-.scope.d"));
    }
    folders.push(format!("{CORRAL_PREFIX}{id}-.service.d"));
    folders.push(format!("{CORRAL_PREFIX}{id}-.scope.d"));
    folders
}

/// Shell globs for the unit names that [`app_dropin_folders`] reach, for people to read
/// (`app-gnome-org.mozilla.firefox-*.scope`, …), in the same order.
pub fn app_unit_patterns(app_id: &str) -> Vec<String> {
    app_dropin_folders(app_id)
        .iter()
        .map(|folder| {
            let unit = folder.strip_suffix(".d").unwrap_or(folder);
            match unit.rsplit_once('.') {
                Some((stem, suffix)) => format!("{stem}*.{suffix}"),
                None => unit.to_owned(),
            }
        })
        .collect()
}

/// The drop-in folders systemd reads for `unit` besides the type-wide one (systemd.unit(5),
/// "Drop-in"): `<unit>.d`, for an instance `a@x.service` also its template's `a@.service.d`,
/// and for each of them every prefix that ends at a `-`: `app-gnome-x-42.scope` reads
/// `app-gnome-x-.scope.d`, `app-gnome-.scope.d` and `app-.scope.d`. Most specific first.
pub fn dropin_folders_of(unit: &str) -> Vec<String> {
    let Some((stem, suffix)) = unit.rsplit_once('.') else {
        return Vec::new();
    };
    let mut stems = vec![stem.to_owned()];
    if let Some((template, _instance)) = stem.split_once('@') {
        stems.push(format!("{template}@"));
    }
    let mut folders: Vec<String> = Vec::new();
    for stem in stems {
        let mut prefix = stem.as_str();
        folders.push(format!("{prefix}.{suffix}.d"));
        // Every shorter prefix that ends at a dash, longest first.
        while let Some(dash) = prefix[..prefix.len().saturating_sub(1)].rfind('-') {
            prefix = &prefix[..=dash];
            folders.push(format!("{prefix}.{suffix}.d"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    folders.retain(|f| seen.insert(f.clone()));
    folders
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
    fn app_ids_of_every_launcher() {
        let id = |name: &str| parse_unit_name(name).app_id;
        assert_eq!(
            id("app-gnome-org.mozilla.firefox-4242.scope").as_deref(),
            Some("org.mozilla.firefox")
        );
        assert_eq!(
            id("app-flatpak-org.mozilla.firefox-5151.scope").as_deref(),
            Some("org.mozilla.firefox")
        );
        assert_eq!(
            id("app-org.kde.konsole@a1b2.service").as_deref(),
            Some("org.kde.konsole")
        );
        assert_eq!(
            id("app-kde-org.kde.dolphin-77.scope").as_deref(),
            Some("org.kde.dolphin")
        );
        assert_eq!(
            id("app-gnome-google\\x2dchrome-9.scope").as_deref(),
            Some("google-chrome")
        );
        assert_eq!(
            id("app-org.gnome.Maps.service").as_deref(),
            Some("org.gnome.Maps")
        );
        // Corral's own names are read strictly; other units have no app id.
        assert_eq!(id("app-corral-x-notrandom.service"), None);
        assert_eq!(id("run-u7.service"), None);
        assert_eq!(id("app-.scope"), None);
        assert_eq!(id("app.slice"), None);
    }

    #[test]
    fn an_apps_drop_in_folders_reach_its_units_and_no_others() {
        let folders = app_dropin_folders("org.mozilla.firefox");
        assert_eq!(folders.len(), 10);
        let reaches = |unit: &str| dropin_folders_of(unit).iter().any(|f| folders.contains(f));
        for unit in [
            "app-gnome-org.mozilla.firefox-4242.scope",
            "app-flatpak-org.mozilla.firefox-5151.scope",
            "app-org.mozilla.firefox@a1b2.service",
            "app-org.mozilla.firefox-99.scope",
            "app-kde-org.mozilla.firefox@x.service",
            "app-corral-org.mozilla.firefox-1a2b3c4d.service",
            "app-corral-org.mozilla.firefox-1a2b3c4d.scope",
        ] {
            assert!(reaches(unit), "{unit}");
        }
        for unit in [
            "app-gnome-org.mozilla.firefox.beta-1.scope",
            "app-gnome-org.mozilla-1.scope",
            "app-gnome-xorg.mozilla.firefox-1.scope",
            "app-gnome-org.mozilla.firefox.scope",
            "org.mozilla.firefox.service",
        ] {
            assert!(!reaches(unit), "{unit}");
        }
        // A dash inside the id is escaped, and so does not end a prefix: `google` does not
        // reach `google-chrome`, and `google-chrome` does.
        let chrome = app_dropin_folders("google-chrome");
        assert!(chrome.contains(&"app-gnome-google\\x2dchrome-.scope.d".to_owned()));
        let unit = "app-gnome-google\\x2dchrome-12.scope";
        assert!(dropin_folders_of(unit).iter().any(|f| chrome.contains(f)));
        let google = app_dropin_folders("google");
        assert!(!dropin_folders_of(unit).iter().any(|f| google.contains(f)));
        // An id named like a launcher must not reach every app of that launcher.
        assert!(!app_dropin_folders("gnome").contains(&"app-gnome-.scope.d".to_owned()));
        assert_eq!(app_dropin_folders("gnome").len(), 8);
    }

    #[test]
    fn drop_in_folders_of_a_unit_follow_systemd() {
        assert_eq!(
            dropin_folders_of("app-gnome-x-42.scope"),
            [
                "app-gnome-x-42.scope.d",
                "app-gnome-x-.scope.d",
                "app-gnome-.scope.d",
                "app-.scope.d"
            ]
        );
        assert_eq!(
            dropin_folders_of("app-org.kde.konsole@a1b2.service"),
            [
                "app-org.kde.konsole@a1b2.service.d",
                "app-.service.d",
                "app-org.kde.konsole@.service.d"
            ]
        );
        assert_eq!(dropin_folders_of("app.slice"), ["app.slice.d"]);
        assert_eq!(
            app_unit_patterns("firefox")[..2],
            ["app-firefox@*.service", "app-firefox-*.scope"]
        );
    }

    #[test]
    fn descriptions() {
        let d = description("Firefox", "browser");
        assert_eq!(parse_description(&d), ("Firefox", Some("browser")));
        assert_eq!(parse_description("/usr/bin/true"), ("/usr/bin/true", None));
    }
}
