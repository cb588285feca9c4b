//! The user manager's window and the system manager's are two applications: each registers an
//! application id of its own on the session bus, so that starting one never raises (nor hands
//! its command line to) the other. GApplication is unique per id: with one id for both, a
//! plain `corral` started while `corral --system` ran brought up the system window, and the
//! reverse. On a private session bus, under the X display the tests run on (xvfb-run).

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{Reaped, private_bus, wait_for};

const USER_ID: &str = "io.github.corral.Corral";
const SYSTEM_ID: &str = "io.github.corral.Corral.System";

/// The process that owns `name` on the bus, if any.
fn owner_pid(address: &str, name: &str) -> Option<u32> {
    let ask = async {
        let conn = zbus::connection::Builder::address(address)?.build().await?;
        let bus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(name.to_owned())?;
        zbus::Result::Ok(bus.get_connection_unix_process_id(name).await?)
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(ask)
        .ok()
}

fn ended(child: &mut Child) -> bool {
    child.try_wait().ok().flatten().is_some()
}

#[test]
fn the_user_and_the_system_window_are_two_applications() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "the windows need an X display: run the tests under xvfb-run -a, as tests/run does"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, address) = private_bus(dir.path());
    let start = |args: &[&str], log: &str| {
        let log = std::fs::File::create(dir.path().join(log)).unwrap();
        Reaped(
            Command::new(env!("CARGO_BIN_EXE_corral-desktop"))
                .args(args)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                // Neither manager is reachable here: each window shows that in its banner.
                .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("XDG_STATE_HOME", dir.path().join("state"))
                .env("GSK_RENDERER", "cairo")
                .env("NO_AT_BRIDGE", "1")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };

    let mut system = start(&["--system"], "system.log");
    assert!(
        wait_for(Duration::from_secs(20), || owner_pid(&address, SYSTEM_ID)
            == Some(system.0.id())),
        "corral --system does not own {SYSTEM_ID} (owner of {USER_ID}: {:?})",
        owner_pid(&address, USER_ID)
    );
    // A plain `corral` now: its own window, not the system's.
    let mut user = start(&[], "user.log");
    assert!(
        wait_for(Duration::from_secs(20), || owner_pid(&address, USER_ID)
            == Some(user.0.id())),
        "a plain corral did not become the user's window: {USER_ID} is owned by {:?} \
         (the system window is {}; the plain corral {})",
        owner_pid(&address, USER_ID),
        system.0.id(),
        if ended(&mut user.0) { "ended" } else { "runs" }
    );
    assert!(!ended(&mut system.0), "the system window ended");

    // A second start of either hands over to the running window of its kind, and ends.
    let mut again = start(&["--system"], "system-again.log");
    assert!(
        wait_for(Duration::from_secs(20), || ended(&mut again.0)),
        "a second corral --system did not hand over to the first"
    );
    let mut again = start(&[], "user-again.log");
    assert!(
        wait_for(Duration::from_secs(20), || ended(&mut again.0)),
        "a second corral did not hand over to the first"
    );
    assert!(!ended(&mut user.0) && !ended(&mut system.0));
}
