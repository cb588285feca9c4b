//! `resources/install.sh` into a temporary DESTDIR: every expected file is there and nothing
//! else, a second install changes nothing, and `--uninstall` removes exactly what was installed,
//! leaving other packages' files alone.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = env!("CARGO_MANIFEST_DIR");

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file and folder below `root`, relative to it; folders end in `/`.
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.insert(format!("{relative}/"));
                walk(root, &path, out);
            } else {
                out.insert(relative);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn files(root: &Path) -> BTreeSet<String> {
    tree(root)
        .into_iter()
        .filter(|p| !p.ends_with('/'))
        .collect()
}

struct Source {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// A copy of the source tree's resources with a translation of two strings, so that the test
/// does not depend on which catalogs po/ has today: one of the binary's, one of its desktop entry.
fn source_with_a_translation() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corral");
    copy_dir(
        &Path::new(SOURCE).join("resources"),
        &root.join("resources"),
    );
    fs::create_dir_all(root.join("po")).unwrap();
    fs::write(root.join("po/LINGUAS"), "# one language per line\nde\n").unwrap();
    fs::write(
        root.join("po/de.po"),
        "msgid \"\"\nmsgstr \"\"\n\"Content-Type: text/plain; charset=UTF-8\\n\"\n\n\
         msgid \"Config file: {path}\"\nmsgstr \"Installierter Katalog: {path}\"\n\n\
         msgid \"Run apps with memory and CPU limits, and stop runaway apps before they freeze \
         the machine\"\nmsgstr \"Apps mit Limits ausführen\"\n",
    )
    .unwrap();
    Source { _dir: dir, root }
}

fn install_sh(source: &Path, destdir: &Path, args: &[&str]) {
    let out = Command::new(source.join("resources/install.sh"))
        .args(args)
        .env("DESTDIR", destdir)
        .env("PREFIX", "/usr")
        .env("CORRAL_BIN", env!("CARGO_BIN_EXE_corral"))
        .output()
        .expect("run resources/install.sh");
    assert!(
        out.status.success(),
        "install.sh {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const EXPECTED: [&str; 14] = [
    "usr/bin/corral",
    "usr/libexec/corral-desktop",
    "usr/share/applications/io.github.corral.Corral.desktop",
    "usr/share/metainfo/io.github.corral.Corral.metainfo.xml",
    "usr/share/icons/hicolor/scalable/apps/io.github.corral.Corral.svg",
    "usr/share/icons/hicolor/symbolic/apps/io.github.corral.Corral-symbolic.svg",
    "usr/share/icons/hicolor/symbolic/apps/io.github.corral.Corral-alert-symbolic.svg",
    "usr/share/corral/io.github.corral.Corral-autostart.desktop",
    "usr/share/corral/install-manifest",
    "usr/share/bash-completion/completions/corral",
    "usr/share/zsh/site-functions/_corral",
    "usr/share/fish/vendor_completions.d/corral.fish",
    "usr/share/man/man1/corral.1.gz",
    "usr/share/locale/de/LC_MESSAGES/corral.mo",
];

#[test]
fn install_puts_every_file_in_place_and_uninstall_removes_exactly_them() {
    let source = source_with_a_translation();
    let dest = tempfile::tempdir().unwrap();
    // Another package's file in a folder Corral also uses: it must survive the uninstall.
    let other = dest
        .path()
        .join("usr/share/applications/org.example.Other.desktop");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    fs::write(&other, "[Desktop Entry]\n").unwrap();
    let before = tree(dest.path());

    install_sh(&source.root, dest.path(), &[]);
    let expected: BTreeSet<String> = EXPECTED
        .iter()
        .map(|p| p.to_string())
        .chain(["usr/share/applications/org.example.Other.desktop".to_owned()])
        .collect();
    assert_eq!(files(dest.path()), expected, "installed files");

    let path = |p: &str| dest.path().join(p);
    let mode = fs::metadata(path("usr/bin/corral"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "the binary is executable");
    let man = fs::read(path("usr/share/man/man1/corral.1.gz")).unwrap();
    assert_eq!(&man[..2], &[0x1f, 0x8b], "the man page is gzipped");
    let mo = fs::read(path("usr/share/locale/de/LC_MESSAGES/corral.mo")).unwrap();
    assert_eq!(
        &mo[..4],
        &0x9504_12deu32.to_le_bytes(),
        "a compiled catalog"
    );
    // The translations reach the desktop entry, and the installed binary finds its catalog
    // next to it (PREFIX/share/locale) rather than the one it was built with.
    let entry = fs::read_to_string(path(
        "usr/share/applications/io.github.corral.Corral.desktop",
    ))
    .unwrap();
    assert!(
        entry.contains("\nComment[de]=Apps mit Limits ausführen\n")
            && entry.contains("\nComment=Run apps with memory"),
        "{entry}"
    );
    let home = tempfile::tempdir().unwrap();
    let presets = Command::new(path("usr/bin/corral"))
        .arg("presets")
        .env_clear()
        .env("HOME", home.path())
        .env("LANGUAGE", "de")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&presets.stdout);
    assert!(
        listing.contains("Installierter Katalog: "),
        "the installed catalog is used:\n{listing}"
    );
    // Without a command the installed `corral` hands over to the installed window executable,
    // which finds no display here and says so (only it knows what the window needs).
    let window = Command::new(path("usr/bin/corral"))
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&window.stderr);
    assert!(
        !window.status.success() && said.contains("need a graphical session"),
        "corral hands over to libexec/corral-desktop:\n{said}"
    );
    let bash = fs::read_to_string(path("usr/share/bash-completion/completions/corral")).unwrap();
    assert!(
        bash.contains("--memory-max"),
        "bash completion from the clap definition"
    );
    let manifest = fs::read_to_string(path("usr/share/corral/install-manifest")).unwrap();
    for file in EXPECTED {
        assert!(
            manifest.contains(&format!("file /{file}\n")),
            "{file} not in manifest:\n{manifest}"
        );
    }
    assert!(
        !manifest.contains("dir /usr/share/applications\n"),
        "a folder that existed before is not Corral's:\n{manifest}"
    );

    // Installing again over an install changes nothing and keeps the folders it created.
    let installed = tree(dest.path());
    install_sh(&source.root, dest.path(), &[]);
    assert_eq!(tree(dest.path()), installed, "second install");
    assert_eq!(
        fs::read_to_string(path("usr/share/corral/install-manifest")).unwrap(),
        manifest
    );

    install_sh(&source.root, dest.path(), &["--uninstall"]);
    assert_eq!(tree(dest.path()), before, "left after uninstall");
}

#[test]
fn uninstall_without_an_install_says_so() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new(Path::new(SOURCE).join("resources/install.sh"))
        .arg("--uninstall")
        .env("DESTDIR", dest.path())
        .env("PREFIX", "/usr")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no install found"), "{err}");
    assert!(tree(dest.path()).is_empty(), "nothing written");
}
