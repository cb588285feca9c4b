//! Helpers shared by the integration tests that need a D-Bus of their own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process that is killed and reaped when the test ends, pass or fail.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A session bus of our own with nothing activatable on it; its socket lives in `dir`.
pub fn private_bus(dir: &Path) -> (Reaped, String) {
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--print-address", "--nofork"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start dbus-daemon ({e}); install it with tests/setup-host.sh")
        });
    let mut address = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let address = address.trim().to_owned();
    assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
    (Reaped(daemon), address)
}

/// The notification recorder (examples/notification_recorder.rs), which `cargo test` builds
/// next to the test binaries' folder.
#[allow(dead_code)] // not every test binary records notifications
pub fn notification_recorder() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let recorder = exe
        .parent()
        .and_then(Path::parent)
        .map(|debug| debug.join("examples/notification_recorder"))
        .unwrap();
    assert!(
        recorder.exists(),
        "{} is missing: run the whole `cargo test` (it builds the examples) or \
         `cargo build --example notification_recorder` first",
        recorder.display()
    );
    recorder
}

/// Broadcasts from `connection` what systemd says when a unit ends: the PropertiesChanged of its
/// Unit interface with ActiveState "inactive". The stand-in managers send it as systemd; a test's
/// impostor sends it as any other client could.
#[allow(dead_code)] // not every test binary announces ends
pub async fn announce_end(connection: &zbus::Connection, unit: &str) {
    let path = zbus::zvariant::ObjectPath::try_from(corral::systemd::names::object_path(unit))
        .expect("a unit's object path");
    let changed = std::collections::HashMap::from([
        ("ActiveState", zbus::zvariant::Value::from("inactive")),
        ("SubState", zbus::zvariant::Value::from("dead")),
    ]);
    connection
        .emit_signal(
            None::<zbus::names::BusName<'_>>,
            path,
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
            &(
                "org.freedesktop.systemd1.Unit",
                changed,
                Vec::<String>::new(),
            ),
        )
        .await
        .unwrap();
}

/// Starts the notification recorder (examples/notification_recorder.rs) with `args` after its
/// log, on the bus at `address` (`None`: the process's session bus), and waits until it owns
/// org.freedesktop.Notifications.
#[allow(dead_code)] // not every test binary records notifications
pub fn start_recorder(log: &Path, address: Option<&str>, args: &[&std::ffi::OsStr]) -> Reaped {
    let mut command = Command::new(notification_recorder());
    command.arg(log).args(args).stdout(Stdio::piped());
    if let Some(address) = address {
        command.env("DBUS_SESSION_BUS_ADDRESS", address);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "the recorder did not start");
    Reaped(child)
}

/// Runs `test` with a private dbus-daemon as the process's session bus (its address and a
/// folder of the test's own are passed in), on a multi-threaded tokio runtime. For a test
/// binary with this one test: the environment variable is set before any other thread runs.
#[allow(dead_code)] // not every test binary needs a session bus of its own
pub fn on_private_session_bus<F, Fut>(test: F)
where
    F: FnOnce(String, PathBuf) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, address) = private_bus(dir.path());
    // SAFETY: the only test in its binary, and no other thread has started yet.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address) };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test(address, dir.path().to_owned()));
}

/// A runaway alert: `app` (unit `unit`) uses `percent` of its 4 GiB memory.max.
#[allow(dead_code)] // not every test binary raises alerts
pub fn near_limit_alert(unit: &str, app: &str, percent: f64) -> corral::monitor::alerts::Alert {
    use corral::limits::{Bytes, CpuQuota};
    use corral::monitor::alerts::{Alert, AlertDetail, MemoryBoundary, UnitLimits};
    Alert {
        unit: unit.to_owned(),
        app_name: app.to_owned(),
        app_id: None,
        preset: None,
        limits: UnitLimits {
            memory_high: None,
            memory_max: Some(Bytes(4 * Bytes::GIB)),
            cpu_quota: Some(CpuQuota::Percent(300)),
        },
        detail: AlertDetail::MemoryNearLimit {
            used: Bytes((4.0 * Bytes::GIB as f64 * percent / 100.0) as u64),
            limit: Bytes(4 * Bytes::GIB),
            boundary: MemoryBoundary::Max,
            percent,
        },
    }
}

/// Polls `check` every 0.1 s until it holds (true) or `timeout` passes (false).
#[allow(dead_code)] // not every test binary polls
pub fn wait_for(timeout: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}
