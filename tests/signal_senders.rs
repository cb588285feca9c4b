//! Only systemd may tell Corral that a unit ended, or that a job finished: every signal Corral
//! acts on must come from the manager's unique name. On a private dbus-daemon, a stand-in
//! manager owns org.freedesktop.systemd1, and an impostor (another client of the bus, as any
//! user is on the system bus) broadcasts the very signals the manager would: a unit's
//! PropertiesChanged saying "inactive", and JobRemoved for a job Corral waits for. Corral must
//! hear the manager and ignore the impostor. The real system bus is tried in the guest
//! (tests/vm/guest/system.sh, "only systemd may announce that a unit ended").
//!
//! One test in this binary: the session bus is named by DBUS_SESSION_BUS_ADDRESS, set once,
//! before any other thread runs.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::announce_end;
use corral::systemd::{ManagerKind, Systemd, SystemdError};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

const UNIT: &str = "app-corral-victim-1a2b3c4d.service";

fn unit_path() -> OwnedObjectPath {
    ObjectPath::try_from(corral::systemd::names::object_path(UNIT))
        .unwrap()
        .into()
}

fn job_path() -> OwnedObjectPath {
    ObjectPath::try_from("/org/freedesktop/systemd1/job/7")
        .unwrap()
        .into()
}

/// What the stand-in was asked to do.
#[derive(Default)]
struct Calls {
    kills: Vec<(String, i32)>,
}

struct Manager {
    calls: Arc<Mutex<Calls>>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {}

    async fn get_unit(&self, _name: &str) -> OwnedObjectPath {
        unit_path()
    }

    /// The unit ignores the signal: it keeps running.
    async fn kill_unit(&self, name: String, _whom: &str, signal: i32) {
        self.calls.lock().unwrap().kills.push((name, signal));
    }

    /// The stop job really ends 300 ms after it was queued.
    async fn stop_unit(
        &self,
        name: String,
        _mode: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> OwnedObjectPath {
        let emitter = emitter.into_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = Manager::job_removed(&emitter, 7, job_path().as_ref(), &name, "done").await;
        });
        job_path()
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// The unit, still running whatever anyone announces.
struct Unit;

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    async fn active_state(&self) -> String {
        "active".to_owned()
    }
}

/// The impostor announcing the unit's end every 20 ms until dropped.
fn keep_announcing_end(connection: zbus::Connection) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            announce_end(&connection, UNIT).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[test]
fn only_the_managers_own_signals_count() {
    common::on_private_session_bus(|address, _dir| {
        only_the_managers_own_signals_count_async(address)
    });
}

async fn only_the_managers_own_signals_count_async(address: String) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let manager = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at(
            "/org/freedesktop/systemd1",
            Manager {
                calls: Arc::clone(&calls),
            },
        )
        .unwrap()
        .serve_at(unit_path(), Unit)
        .unwrap()
        .build()
        .await
        .unwrap();
    let impostor = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let systemd = Systemd::connect(ManagerKind::User).await.unwrap();

    // A watch on the unit's end hears no impostor, and does hear the manager.
    let mut end = systemd.watch_end(UNIT).await.unwrap();
    for _ in 0..10 {
        announce_end(&impostor, UNIT).await;
    }
    assert!(
        !end.ended(Some(Duration::from_millis(500))).await,
        "another client's PropertiesChanged ended the watch of {UNIT}"
    );
    announce_end(&manager, UNIT).await;
    assert!(
        end.ended(Some(Duration::from_secs(5))).await,
        "the manager's own PropertiesChanged did not end the watch"
    );

    // `corral kill`: the unit ignores SIGKILL here, and an impostor keeps saying it ended;
    // Corral must not report a kill.
    let spoofing = keep_announcing_end(impostor.clone());
    let ended = systemd
        .kill_and_wait(UNIT, libc::SIGKILL, Duration::from_secs(1))
        .await
        .unwrap();
    spoofing.abort();
    assert_eq!(calls.lock().unwrap().kills, [(UNIT.to_owned(), 9)]);
    assert!(
        !ended,
        "kill_and_wait believed another client that the unit had ended"
    );

    // A job's end (JobRemoved, read through zbus's proxy, which follows the name's owner):
    // an impostor's "failed" for our job is not the job's result.
    let spoofing = tokio::spawn({
        let impostor = impostor.clone();
        async move {
            loop {
                impostor
                    .emit_signal(
                        None::<()>,
                        "/org/freedesktop/systemd1",
                        "org.freedesktop.systemd1.Manager",
                        "JobRemoved",
                        &(7u32, job_path(), UNIT, "failed"),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let stopped = systemd.stop(UNIT).await;
    spoofing.abort();
    assert!(
        stopped.is_ok(),
        "the stop job's result came from another client: {:?}",
        stopped.map_err(|e: SystemdError| e.to_string())
    );
}
