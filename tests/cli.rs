//! The `corral` binary on the host, where no systemd runs: every mistake a person can make
//! before systemd is involved gets a clear error, and nothing is written. What needs a real
//! systemd is tested in the guest (tests/vm).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> std::path::PathBuf {
        self.path().join("config/corral/config.toml")
    }

    fn write_config(&self, text: &str) {
        fs::create_dir_all(self.config().parent().unwrap()).unwrap();
        fs::write(self.config(), text).unwrap();
    }

    /// Runs corral with this home, its own XDG folders and no reachable session bus.
    fn corral(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("XDG_DATA_DIRS", self.path().join("system-data"))
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("TZ", "UTC0")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/no-bus", self.path().display()),
            )
            .output()
            .unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn invalid_limits_name_the_value_and_what_is_accepted() {
    let home = Home::new();
    for (flag, value, expected) in [
        ("--memory-max", "4X", "“4X” is not a valid memory limit"),
        ("--memory-max", "0", "0 bytes would stop the app"),
        ("--memory-high", "-1G", "negative"),
        ("--cpu-quota", "1e9%", "not a plain number"),
        ("--cpu-quota", "50", "no % sign"),
        ("--tasks-max", "0", "0 tasks"),
        ("--cpu-weight", "99999", "out of range"),
    ] {
        let out = home.corral(&["run", flag, value, "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{flag} {value}: {err}");
    }
}

#[test]
fn missing_command_is_named_before_anything_else() {
    let home = Home::new();
    let out = home.corral(&["run", "--", "no-such-program-corral-test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("command not found: “no-such-program-corral-test”"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let home = Home::new();
    let out = home.corral(&["run", "-p", "brwser", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("unknown preset “brwser”"), "{err}");
    assert!(err.contains("browser"), "{err}");
}

#[test]
fn malformed_config_is_reported_with_line_and_column_and_never_written() {
    let home = Home::new();
    let text = "# my presets\n[presets.work]\nmemory-max = \"4X\"   # keep this comment\n";
    home.write_config(text);
    for args in [
        &["presets"][..],
        &["run", "--", "true"][..],
        &["doctor"][..],
    ] {
        let out = home.corral(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let all = stderr(&out) + &stdout(&out);
        assert!(all.contains("config.toml:3:14"), "{args:?}: {all}");
        assert!(all.contains("4X"), "{args:?}: {all}");
    }
    assert_eq!(fs::read_to_string(home.config()).unwrap(), text);
}

#[test]
fn unreachable_systemd_is_explained() {
    let home = Home::new();
    for args in [
        &["ps"][..],
        &["freeze", "firefox"][..],
        &["run", "--", "true"][..],
    ] {
        let out = home.corral(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("cannot reach the user's systemd manager"),
            "{args:?}: {err}"
        );
        assert!(err.contains("corral doctor"), "{args:?}: {err}");
    }
}

#[test]
fn presets_are_listed_and_shown() {
    let home = Home::new();
    home.write_config("[presets.compile]\ndescription = \"Builds\"\ncpu-weight = 20\n");
    let out = home.corral(&["presets"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in [
        "background",
        "browser",
        "relaxed",
        "shell",
        "strict",
        "compile",
    ] {
        assert!(text.contains(name), "{name}: {text}");
    }
    let out = home.corral(&["presets", "show", "browser"]);
    let text = stdout(&out);
    assert!(text.contains("memory-high = 50%"), "{text}");
    assert!(text.contains("memory-max = 60%"), "{text}");
}

#[test]
fn installed_apps_are_listed_from_xdg_folders() {
    let home = Home::new();
    let apps = home.path().join("data/applications");
    fs::create_dir_all(&apps).unwrap();
    fs::write(
        apps.join("org.example.Editor.desktop"),
        "[Desktop Entry]\nType=Application\nName=Example Editor\nExec=sh %F\n",
    )
    .unwrap();
    let out = home.corral(&["apps"]);
    assert!(
        stdout(&out).contains("org.example.Editor"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Example Editor"));
    let out = home.corral(&["apps", "--json", "editor"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["id"], "org.example.Editor");
    let out = home.corral(&["launch", "org.example.Nope"]);
    assert!(stderr(&out).contains("no installed app has the id “org.example.Nope”"));
}

#[test]
fn limit_without_a_limit_says_what_to_give() {
    let home = Home::new();
    let out = home.corral(&["limit", "firefox"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--memory-max 4G"), "{}", stderr(&out));
}

#[test]
fn events_lists_post_mortems_newest_last() {
    use corral::monitor::postmortem::{EndCause, EventLog, PostMortem, RecordedLimits};
    let home = Home::new();
    let out = home.corral(&["events"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("No events yet."),
        "{}",
        stdout(&out)
    );

    let log = EventLog::new(home.path().join("state/corral/events.jsonl"));
    let gib = 1u64 << 30;
    let firefox = PostMortem {
        app_name: "Firefox".to_owned(),
        app_id: Some("firefox".to_owned()),
        unit: "app-corral-firefox-1a2b3c4d.service".to_owned(),
        preset: Some("browser".to_owned()),
        limits: RecordedLimits {
            memory_high_bytes: Some(3 * gib),
            memory_max_bytes: Some(4 * gib),
            cpu_quota_percent: Some(300),
        },
        peak_memory_bytes: Some(4 * gib),
        started_at: Some(1_714_650_000),
        // 2024-05-02 14:02 UTC
        ended_at: 1_714_658_520,
        cause: EndCause::OomKill,
        result: "oom-kill".to_owned(),
        oom_kills: 1,
        killed_process: None,
    };
    let make = PostMortem {
        app_name: "make".to_owned(),
        app_id: Some("make".to_owned()),
        unit: "app-corral-make-00000001.service".to_owned(),
        preset: Some("relaxed".to_owned()),
        peak_memory_bytes: Some(gib / 2),
        ended_at: 1_714_658_580,
        cause: EndCause::ExitCode { code: 2 },
        result: "exit-code".to_owned(),
        oom_kills: 0,
        ..firefox.clone()
    };
    log.append(&firefox).unwrap();
    log.append(&make).unwrap();

    let out = home.corral(&["events"]);
    assert_eq!(
        stdout(&out),
        "2024-05-02 14:02 Firefox killed by the OOM killer at its 4.0 GiB limit (peak 4.0 GiB), \
         preset browser\n\
         2024-05-02 14:03 make failed with exit code 2 (peak 512 MiB), preset relaxed\n"
    );
    let out = home.corral(&["events", "--limit", "1"]);
    assert!(
        stdout(&out).starts_with("2024-05-02 14:03 make"),
        "{}",
        stdout(&out)
    );
    let out = home.corral(&["events", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["cause"]["kind"], "oom-kill");
    assert_eq!(json[0]["limits"]["memory_max_bytes"], 4 * gib);
    assert_eq!(
        json[1]["cause"],
        serde_json::json!({"kind": "exit-code", "code": 2})
    );
}

#[test]
fn names_from_desktop_entries_cannot_drive_the_terminal() {
    // A desktop entry anyone can install (~/.local/share/applications) whose Name and Comment
    // carry escape sequences: clear the screen, set the window title, ring the bell, move the
    // cursor up and overwrite the line above.
    let home = Home::new();
    let apps = home.path().join("data/applications");
    fs::create_dir_all(&apps).unwrap();
    fs::write(
        apps.join("org.example.Evil.desktop"),
        "[Desktop Entry]\nType=Application\nName=Evil\u{1b}[2J\u{1b}]0;owned\u{7}App\u{9b}1A\nExec=true\n",
    )
    .unwrap();
    let out = home.corral(&["apps"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains(['\u{1b}', '\u{7}', '\u{9b}']),
        "control characters reached the terminal: {text:?}"
    );
    assert!(
        text.contains("Evil\\x1b[2J\\x1b]0;owned\\x07App\\x9b1A"),
        "shown escaped instead: {text:?}"
    );
    // JSON is for programs: its strings escape them the JSON way.
    let out = home.corral(&["apps", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json[0]["name"],
        "Evil\u{1b}[2J\u{1b}]0;owned\u{7}App\u{9b}1A"
    );
}
