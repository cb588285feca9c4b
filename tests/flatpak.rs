//! The Flatpak manifest cannot be built here (no runtimes offline; see flatpak/README.md), so
//! this checks what can be: it parses, names the app as the desktop files do, builds with the
//! install script, and grants exactly the permissions its README explains — no more.

use std::collections::BTreeSet;
use std::path::Path;

const SOURCE: &str = env!("CARGO_MANIFEST_DIR");

fn manifest() -> serde_json::Value {
    let path = Path::new(SOURCE).join("flatpak/io.github.corral.Corral.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn manifest_builds_the_app_with_the_install_script() {
    let m = manifest();
    assert_eq!(m["id"], "io.github.corral.Corral");
    assert_eq!(m["command"], "corral");
    assert_eq!(m["runtime"], "org.gnome.Platform");
    let module = &m["modules"][0];
    let commands: Vec<&str> = module["build-commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("--offline build --release"))
    );
    assert!(commands.iter().any(|c| c.contains("resources/install.sh")));
    let sources = module["sources"].as_array().unwrap();
    assert!(sources.iter().any(|s| s == "cargo-sources.json"));
    for file in [
        "resources/io.github.corral.Corral.desktop",
        "resources/io.github.corral.Corral.metainfo.xml",
    ] {
        assert!(Path::new(SOURCE).join(file).exists(), "{file}");
    }
}

#[test]
fn manifest_grants_only_the_documented_permissions() {
    let m = manifest();
    let granted: BTreeSet<&str> = m["finish-args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "--socket=wayland",
        "--socket=fallback-x11",
        "--share=ipc",
        "--device=dri",
        "--talk-name=org.freedesktop.systemd1",
        "--talk-name=org.kde.StatusNotifierWatcher",
        "--talk-name=org.freedesktop.Notifications",
        "--filesystem=/sys/fs/cgroup:ro",
    ]
    .into();
    assert_eq!(granted, expected);
    let readme = std::fs::read_to_string(Path::new(SOURCE).join("flatpak/README.md")).unwrap();
    for arg in &granted {
        assert!(
            readme.contains(&format!("`{arg}`")),
            "flatpak/README.md does not explain {arg}"
        );
    }
}
