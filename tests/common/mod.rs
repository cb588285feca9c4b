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
