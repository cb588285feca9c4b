//! The window and the tray run in an executable of their own, `corral-desktop`, which `corral`
//! without a command (or with `--tray`) replaces itself with. The command line thus never loads
//! GTK: its seventy-odd shared libraries cost a command more to load than its own work.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::apps::is_executable_file;
use crate::i18n::gettext_f;

/// The file name of the window and tray executable.
pub const EXECUTABLE: &str = "corral-desktop";

/// Where `corral-desktop` is for the `corral` at `exe`: beside it (a cargo build, `cargo
/// install`), or in its prefix's libexec directory (`resources/install.sh`, the Flatpak).
pub fn locate(exe: &Path) -> Result<PathBuf, String> {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let beside = dir.join(EXECUTABLE);
    let libexec = dir
        .parent()
        .unwrap_or(Path::new("/"))
        .join("libexec")
        .join(EXECUTABLE);
    [&beside, &libexec]
        .into_iter()
        .find(|path| is_executable_file(path))
        .cloned()
        .ok_or_else(|| {
            gettext_f(
                "Corral's window is not installed: {executable} is neither in {dir} nor in {libexec}; install Corral with resources/install.sh, or build it with `cargo build`",
                &[
                    ("executable", &EXECUTABLE),
                    ("dir", &dir.display()),
                    ("libexec", &libexec.parent().unwrap_or(dir).display()),
                ],
            )
        })
}

/// The window and tray executable that belongs to this `corral`.
pub fn executable() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|error| {
        gettext_f(
            "cannot find Corral's own executable: {error}",
            &[("error", &error)],
        )
    })?;
    locate(&exe)
}

/// Replaces this process with `corral-desktop`, passing `args` on and keeping `arg0`, so the
/// process keeps its ID and its name. Returns only when that failed, with why.
pub fn exec(arg0: OsString, args: impl IntoIterator<Item = OsString>) -> String {
    let path = match executable() {
        Ok(path) => path,
        Err(message) => return message,
    };
    let error = std::process::Command::new(&path)
        .arg0(arg0)
        .args(args)
        .exec();
    gettext_f(
        "cannot start Corral's window ({path}): {error}",
        &[("path", &path.display()), ("error", &error)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn executable_file(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn found_beside_the_command_first_then_in_libexec() {
        let prefix = tempfile::tempdir().unwrap();
        let corral = prefix.path().join("bin/corral");
        executable_file(&corral);
        let libexec = prefix.path().join("libexec/corral-desktop");
        executable_file(&libexec);
        assert_eq!(locate(&corral).unwrap(), libexec);
        let beside = prefix.path().join("bin/corral-desktop");
        executable_file(&beside);
        assert_eq!(locate(&corral).unwrap(), beside);
    }

    #[test]
    fn missing_says_where_it_looked_and_what_to_do() {
        let prefix = tempfile::tempdir().unwrap();
        let corral = prefix.path().join("bin/corral");
        executable_file(&corral);
        // A file that is not executable does not count.
        fs::create_dir_all(prefix.path().join("libexec")).unwrap();
        fs::write(prefix.path().join("libexec/corral-desktop"), "").unwrap();
        let message = locate(&corral).unwrap_err();
        assert!(message.contains("corral-desktop"), "{message}");
        assert!(
            message.contains(&prefix.path().join("libexec").display().to_string()),
            "{message}"
        );
        assert!(message.contains("install.sh"), "{message}");
    }
}
