//! The layers of ARCHITECTURE.md, enforced: reads every `crate::…` path in src/ (the `use`
//! lines and paths written out in code) and fails when a module uses one it may not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of the library, its layer (higher may use lower) and its family:
/// the faces (ui, tray, cli) share a layer but never use one another.
const LAYERS: &[(&str, u8, &str)] = &[
    // The base: no knowledge of systemd, the monitor or any face.
    ("identity", 0, ""),
    ("i18n", 0, ""),
    ("limits", 0, ""),
    ("paths", 0, ""),
    ("procfs", 0, ""),
    ("cgroup", 1, ""),
    ("config", 1, ""),
    ("systemd", 2, ""),
    // The domain: installed apps, watching, deciding, acting.
    ("apps", 3, ""),
    ("desktop", 3, ""),
    ("monitor", 3, ""),
    ("rules", 3, ""),
    ("controller", 3, ""),
    ("launch", 3, ""),
    ("adopt", 3, ""),
    ("policy", 3, ""),
    ("notify", 4, ""),
    // The services the faces share.
    ("engine", 5, ""),
    // The faces.
    ("ui", 6, "ui"),
    ("tray", 6, "tray"),
    ("cli", 6, "cli"),
    ("cli_docs", 6, "cli"),
    // What puts the faces together: the desktop application and the executables.
    ("app", 7, ""),
];

/// Uses that break the layers and are known, each with why it stands for now.
const KNOWN: &[(&str, &str, &str)] = &[(
    "config",
    "monitor",
    "config/settings.rs declares each policy setting with the alert condition it is for \
     (monitor::alerts::Condition); the enum belongs below both",
)];

/// Crates only the window and the tray may link.
const GUI_CRATES: [&str; 4] = ["gtk::", "adw::", "relm4::", "ksni::"];

fn layer(module: &str) -> Option<(u8, &'static str)> {
    LAYERS
        .iter()
        .find(|(name, ..)| *name == module)
        .map(|&(_, rank, family)| (rank, family))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of src/ belongs to; `None` for lib.rs, main.rs and bin/.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main" | "bin")).then(|| name.to_owned())
}

/// Code lines, without comments: doc links in comments are not dependencies.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("");
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// The modules a line names as `crate::name`.
fn crate_paths(line: &str) -> Vec<&str> {
    line.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `corral_crate::` or the like.
            line[..*at]
                .chars()
                .last()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        })
        .map(|(at, _)| {
            let rest = &line[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn every_module_uses_only_the_layers_below_it_or_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    for module in &modules {
        assert!(
            layer(module).is_some(),
            "src/{module} has no layer: add it to ARCHITECTURE.md and to LAYERS here"
        );
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let (rank, family) = layer(&from).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        for (line_no, line) in code_lines(&text) {
            for to in crate_paths(line) {
                if to == from || !modules.contains(to) {
                    continue; // its own, or an item of the crate root
                }
                let (to_rank, to_family) = layer(to).unwrap();
                let allowed = to_rank < rank || (to_rank == rank && to_family == family);
                let known = KNOWN.iter().any(|(a, b, _)| *a == from && *b == to);
                if !allowed && !known {
                    broken.push(format!(
                        "{}:{line_no}: {from} (layer {rank}) uses {to} (layer {to_rank})",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
            if rank < 6 || family == "cli" {
                for gui in GUI_CRATES {
                    if line.contains(gui) && !line.contains(&format!("_{gui}")) {
                        broken.push(format!(
                            "{}:{line_no}: {from} uses {gui} (only ui, tray and app may)",
                            file.strip_prefix(&src).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "uses against the layers of ARCHITECTURE.md:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_check_sees_a_use_against_the_layers() {
    assert_eq!(
        crate_paths("use crate::ui::SharedConnection; crate::tray::x(); my_crate::ui"),
        ["ui", "tray"]
    );
    let (tray, _) = layer("tray").unwrap();
    let (ui, ui_family) = layer("ui").unwrap();
    assert!(
        tray == ui && ui_family != "tray",
        "the faces never use each other"
    );
    assert!(layer("policy").unwrap().0 < layer("notify").unwrap().0);
}

#[test]
fn architecture_md_names_every_layer() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    for (module, ..) in LAYERS {
        assert!(
            doc.contains(&format!("`{module}")),
            "ARCHITECTURE.md does not place `{module}`"
        );
    }
}
