//! Compiles resources/ (CSS, UI files, icons) into the GResource bundle the binary embeds, and
//! the translations in po/ (every language in po/LINGUAS) into gettext catalogs under
//! `$OUT_DIR/locale`, which a binary run from its build folder uses (src/i18n.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    glib_build_tools::compile_resources(
        &["resources"],
        "resources/corral.gresource.xml",
        "corral.gresource",
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let locale = out.join("locale");
    compile_catalogs(Path::new("po"), &locale);
    println!(
        "cargo:rustc-env=CORRAL_BUILD_LOCALEDIR={}",
        locale.display()
    );
}

/// `msgfmt --check -o $OUT_DIR/locale/LANG/LC_MESSAGES/corral.mo po/LANG.po` for each language.
fn compile_catalogs(po: &Path, locale: &Path) {
    let linguas = po.join("LINGUAS");
    println!("cargo:rerun-if-changed={}", linguas.display());
    let Ok(list) = std::fs::read_to_string(&linguas) else {
        return;
    };
    for language in list
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .flat_map(str::split_whitespace)
    {
        let source = po.join(format!("{language}.po"));
        println!("cargo:rerun-if-changed={}", source.display());
        let dir = locale.join(language).join("LC_MESSAGES");
        std::fs::create_dir_all(&dir).expect("create the catalog folder in OUT_DIR");
        let status = Command::new("msgfmt")
            .arg("--check")
            .arg("-o")
            .arg(dir.join("corral.mo"))
            .arg(&source)
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => panic!(
                "msgfmt could not compile {} ({status}); fix the errors it printed above",
                source.display()
            ),
            Err(e) => panic!(
                "msgfmt is needed to compile the translations in po/ ({e}); install GNU \
                 gettext (Debian: apt install gettext, or run tests/setup-host.sh)"
            ),
        }
    }
}
