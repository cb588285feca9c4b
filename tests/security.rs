//! Security properties that are pure enough to check on the host (issue 8, item 4): launched
//! apps get the session's environment without Corral's own variables; a unit is never asked
//! to run as anyone but the caller, and its command is the argv itself, never a shell line;
//! the files Corral writes are 0600 in 0700 directories whatever the umask; every process
//! Corral starts is one of a known few. The real-systemd side is in tests/vm: the environment
//! a unit's program really gets, read by the program itself (user.sh, "the environment a unit
//! really gets"), what of the caller reaches a unit of the system manager and polkit allowing
//! and refusing a user (system.sh).
//!
//! The environment and the umask belong to the whole process, so every test here takes
//! PROCESS_STATE first: no other test thread reads either while one is changed.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use corral::config::{Config, ConfigEditor, Mode, Settings};
use corral::launch::session_environment;
use corral::systemd::UnitKind;
use corral::systemd::properties::{ManagerKind, TransientSpec};
use zbus::zvariant::Value;

static PROCESS_STATE: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    PROCESS_STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// -------------------------------------------------------------------------------------------
// Environment

#[test]
fn launched_apps_get_the_session_environment_without_corrals_own_variables() {
    let _guard = lock();
    // What systemd sets for Corral's own process (systemd.exec(5), "Environment Variables in
    // Spawned Processes"), single-use startup tokens meant for Corral's window, and Corral's
    // own settings.
    let own = [
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "SYSTEMD_EXEC_PID",
        "MANAGERPID",
        "NOTIFY_SOCKET",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "MEMORY_PRESSURE_WATCH",
        "MEMORY_PRESSURE_WRITE",
        "DESKTOP_STARTUP_ID",
        "XDG_ACTIVATION_TOKEN",
        "CORRAL_CONFIG",
        "CORRAL_LOG",
    ];
    // The person's session: kept exactly, including a value that is not UTF-8 and names that
    // only look like Corral's.
    let session: Vec<(&str, OsString)> = vec![
        ("DISPLAY", ":0".into()),
        ("WAYLAND_DISPLAY", "wayland-0".into()),
        (
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/run/user/1000/bus".into(),
        ),
        ("XDG_RUNTIME_DIR", "/run/user/1000".into()),
        ("LANG", "de_DE.UTF-8".into()),
        ("MY_CORRAL_NOTE", "kept".into()),
        ("corral_lowercase", "kept".into()),
        ("CORRALX", "kept".into()),
        ("BYTES", OsString::from_vec(b"caf\xe9".to_vec())),
    ];
    // SAFETY: every test in this binary holds PROCESS_STATE, so no other thread reads the
    // environment meanwhile.
    unsafe {
        for name in own {
            std::env::set_var(name, "corral's own");
        }
        for (name, value) in &session {
            std::env::set_var(name, value);
        }
    }
    let env = session_environment();
    unsafe {
        for name in own {
            std::env::remove_var(name);
        }
        for (name, _) in &session {
            std::env::remove_var(name);
        }
    }
    for name in own {
        assert!(
            !env.iter().any(|(key, _)| key == name),
            "{name} was passed on"
        );
    }
    for (name, value) in &session {
        let got: Vec<_> = env.iter().filter(|(key, _)| key == name).collect();
        assert_eq!(got.len(), 1, "{name}");
        assert_eq!(&got[0].1, value, "{name}");
    }
    // The rest of the test process's environment is there too (PATH at least).
    assert!(env.iter().any(|(key, _)| key == "PATH"));
}

// -------------------------------------------------------------------------------------------
// Units: never another user, never a shell

fn spec(kind: UnitKind, manager: ManagerKind, settings: Settings) -> TransientSpec {
    TransientSpec {
        name: "app-corral-hostile-00000000.service".into(),
        kind,
        description: "Hostile [corral: strict]".into(),
        command: vec![
            "/usr/bin/hostile".into(),
            "a; b && c".into(),
            "$(id)".into(),
            "`id`".into(),
            "|".into(),
        ],
        pids: vec![4242],
        settings,
        environment: vec!["A=1".into()],
        working_directory: None,
        manager,
        add_ref: true,
    }
}

#[test]
fn units_never_change_user_and_run_the_argv_itself() {
    let _guard = lock();
    // Properties that would run a unit as someone else, or with more than the caller has.
    const FORBIDDEN: [&str; 10] = [
        "User",
        "Group",
        "DynamicUser",
        "SupplementaryGroups",
        "PAMName",
        "AmbientCapabilities",
        "CapabilityBoundingSet",
        "SecureBits",
        "RootDirectory",
        "RootImage",
    ];
    let config = Config::default();
    for preset in config.presets() {
        let resolved = config
            .resolve("hostile", None, Some(&preset.name), &Settings::default())
            .unwrap();
        for manager in [ManagerKind::User, ManagerKind::System] {
            let kind = match resolved.mode() {
                Mode::Service => UnitKind::Service,
                Mode::Scope => UnitKind::Scope,
            };
            let spec = spec(kind, manager, resolved.settings.clone());
            let props = spec.properties();
            for (name, _) in &props {
                assert!(
                    !FORBIDDEN.contains(name),
                    "preset {} sets {name}",
                    preset.name
                );
            }
            let exec_start: Vec<_> = props.iter().filter(|(n, _)| *n == "ExecStart").collect();
            match kind {
                UnitKind::Service => {
                    // One command: the program, then the argv exactly, no "sh -c" around it.
                    let expected: Vec<(String, Vec<String>, bool)> =
                        vec![(spec.command[0].clone(), spec.command.clone(), false)];
                    assert_eq!(exec_start.len(), 1, "{}", preset.name);
                    assert_eq!(exec_start[0].1, Value::from(expected), "{}", preset.name);
                }
                // A scope runs nothing itself: it adopts the process Corral forked.
                UnitKind::Scope => assert!(exec_start.is_empty(), "{}", preset.name),
            }
        }
    }
    // The strict preset asks for no new privileges, and a private /tmp that an unprivileged
    // user manager can only set up inside a user namespace.
    let strict = config
        .resolve("hostile", None, Some("strict"), &Settings::default())
        .unwrap();
    let props = spec(UnitKind::Service, ManagerKind::User, strict.settings).properties();
    for (name, value) in [
        ("NoNewPrivileges", Value::from(true)),
        ("PrivateTmp", Value::from(true)),
        ("PrivateUsers", Value::from(true)),
    ] {
        assert!(
            props.iter().any(|(n, v)| *n == name && *v == value),
            "strict lacks {name}"
        );
    }
}

/// Rust source files of the library and binary, without the test-only parts: the text after
/// a file's first `#[cfg(test)]`, and test-only files (`tests.rs`).
fn production_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                let text = fs::read_to_string(&path).unwrap();
                let production = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
                out.push((path, production));
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    assert!(out.len() > 10, "found the sources");
    out
}

#[test]
fn no_code_runs_a_shell_or_a_privilege_helper() {
    let _guard = lock();
    // Corral starts programs only through systemd (ExecStart= with an argv) or by execve of an
    // argv in a scope. A shell or sudo/pkexec anywhere would be a way around both.
    let shells = [
        "sh",
        "bash",
        "dash",
        "zsh",
        "fish",
        "/bin/sh",
        "/usr/bin/sh",
    ];
    let helpers = ["sudo", "pkexec", "su", "doas", "runuser", "setpriv"];
    for (path, text) in production_sources() {
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for program in shells.iter().chain(&helpers) {
                for call in [
                    format!("Command::new(\"{program}\")"),
                    format!("execvp(\"{program}\""),
                ] {
                    assert!(
                        !code.contains(&call),
                        "{}:{}: {line}",
                        path.display(),
                        number + 1
                    );
                }
            }
            assert!(
                !code.contains("\"-c\""),
                "{}:{}: a shell's -c: {line}",
                path.display(),
                number + 1
            );
            assert!(
                !code.contains("setuid(") && !code.contains("seteuid("),
                "{}:{}: {line}",
                path.display(),
                number + 1
            );
        }
    }
}

/// Every place in `sources` that starts a process: std's Command, and libc's fork, exec*,
/// posix_spawn, system and popen. Found by the call, whatever the program is: a program in a
/// variable (`Command::new(shell)`) is found as surely as a literal one. Comments are skipped.
fn process_starts(sources: &[(PathBuf, String)]) -> Vec<(PathBuf, usize, String)> {
    /// The C library's ways to start a program or a process (a call to one of these names,
    /// bare or as `libc::name`, not `Something::system(`).
    const LIBC: [&str; 13] = [
        "fork",
        "vfork",
        "clone",
        "clone3",
        "execve",
        "execv",
        "execvp",
        "execvpe",
        "execl",
        "execlp",
        "execle",
        "posix_spawn",
        "posix_spawnp",
    ];
    const SHELLS: [&str; 2] = ["system", "popen"];
    let libc_call = |code: &str| {
        LIBC.iter().chain(&SHELLS).any(|name| {
            let call = format!("{name}(");
            code.match_indices(&call).any(|(at, _)| {
                let before = &code[..at];
                // `fn system(` defines a function of that name; it calls nothing.
                let defines = before.trim_end().ends_with("fn");
                !defines
                    && (before.ends_with("libc::")
                        || !before.chars().last().is_some_and(|c| {
                            c.is_alphanumeric() || c == '_' || c == ':' || c == '.'
                        }))
            })
        })
    };
    let mut found = Vec::new();
    for (path, text) in sources {
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("Command::new(") || code.contains(".exec()") || libc_call(code) {
                found.push((path.clone(), number + 1, code.trim().to_owned()));
            }
        }
    }
    found
}

/// The process starts Corral has, each with why it is safe. A new one fails the test below
/// until it is added here, with its reason, after a look at what it runs.
const KNOWN_PROCESS_STARTS: [(&str, &str, &str); 5] = [
    (
        "src/desktop.rs",
        "std::process::Command::new(&path)",
        "corral-desktop, found beside this corral or in its libexec (desktop::locate)",
    ),
    (
        "src/desktop.rs",
        ".exec();",
        "the same, replacing this process (`corral` without a command)",
    ),
    (
        "src/cli.rs",
        "std::process::Command::new(exe);",
        "corral-desktop again (desktop::executable), when `corral watch` opens the window",
    ),
    (
        "src/launch.rs",
        "let pid = unsafe { libc::fork() };",
        "the child a scope adopts; it only execs the checked argv",
    ),
    (
        "src/launch.rs",
        "libc::execve(",
        "the scope's program: the argv itself, argv[0] resolved to an executable file",
    ),
];

#[test]
fn every_process_corral_starts_is_a_known_one() {
    let _guard = lock();
    let starts = process_starts(&production_sources());
    for (path, line, code) in &starts {
        assert!(
            KNOWN_PROCESS_STARTS
                .iter()
                .any(|(file, known, _)| path.ends_with(file) && code.contains(known)),
            "{}:{line}: a process is started here that tests/security.rs does not know: {code}",
            path.display()
        );
    }
    for (file, known, why) in KNOWN_PROCESS_STARTS {
        assert!(
            starts
                .iter()
                .any(|(path, _, code)| path.ends_with(file) && code.contains(known)),
            "{file}: `{known}` ({why}) is gone: remove it from KNOWN_PROCESS_STARTS"
        );
    }
    // What the name-based checks above miss, this finds: a shell in a variable, a raw exec.
    let sneaky = [(
        PathBuf::from("src/sneaky.rs"),
        "let shell = \"sh\";\nlet flag = format!(\"-{}\", 'c');\nstd::process::Command::new(shell).arg(flag);\nunsafe { libc::execvp(prog, argv) };\nlet fs = CgroupFs::system();\nunsafe { libc::system(line) };\npub fn system() -> ProcFs {\nsystem(\"rm\");\n".to_owned(),
    )];
    let found = process_starts(&sneaky);
    // A function named `system` is defined on line 7, not called; line 8 calls one bare.
    assert_eq!(
        found.iter().map(|(_, line, _)| *line).collect::<Vec<_>>(),
        [3, 4, 6, 8],
        "{found:?}"
    );
}

// -------------------------------------------------------------------------------------------
// Files

/// Sets the process umask, returning the old one.
fn umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail; callers hold PROCESS_STATE.
    unsafe { libc::umask(mask) }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn saved_config_is_0600_in_0700_directories_whatever_the_umask() {
    let _guard = lock();
    for mask in [0o000, 0o002, 0o022, 0o027, 0o077] {
        let old = umask(mask);
        let result = std::panic::catch_unwind(|| {
            let home = tempfile::tempdir().unwrap();
            // Neither ~/.config nor ~/.config/corral exists yet.
            let config_home = home.path().join(".config");
            let path = config_home.join("corral/config.toml");
            let mut editor = ConfigEditor::open(&path).unwrap();
            editor.set_rule_preset("firefox", "browser").unwrap();
            editor.save().unwrap();
            assert_eq!(mode(&path), 0o600, "umask {mask:03o}: the file");
            assert_eq!(
                mode(path.parent().unwrap()),
                0o700,
                "umask {mask:03o}: corral/"
            );
            assert_eq!(mode(&config_home), 0o700, "umask {mask:03o}: .config/");

            // A file that was readable by others becomes the user's alone on the next save,
            // and a leftover temporary file of any mode is not reused.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let tmp = path.with_file_name("config.toml.tmp");
            fs::write(&tmp, "leftover").unwrap();
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o666)).unwrap();
            let mut editor = ConfigEditor::open(&path).unwrap();
            editor.set_rule_preset("firefox", "strict").unwrap();
            editor.save().unwrap();
            assert_eq!(mode(&path), 0o600, "umask {mask:03o}: after a second save");
            assert!(!tmp.exists(), "umask {mask:03o}: tmp file left");
        });
        umask(old);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
