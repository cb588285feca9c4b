//! A notification server that restarts while Corral runs: dunst, mako or GNOME Shell come back
//! under a new bus name and number their notifications from 1 again, so the ids Corral kept
//! belong to nobody, or to other notifications. On a private dbus-daemon, Corral's delivery of
//! alerts (the one the window, the tray and `corral watch` run) talks to the notification
//! recorder (examples/notification_recorder.rs), which is then killed and started again; an
//! update of an alert shown by the first server must come up as a new notification on the
//! second, never replace whatever the second shows under the old id.
//!
//! One test in this binary: the session bus is named by DBUS_SESSION_BUS_ADDRESS, set once,
//! before any other thread runs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{near_limit_alert, start_recorder};
use corral::cgroup::CgroupFs;
use corral::controller::Controller;
use corral::monitor::alerts::AlertChange;
use corral::monitor::service::MonitorState;
use corral::notify::{Notifier, deliver_alerts};
use corral::systemd::{ManagerKind, Systemd};
use serde_json::Value;

/// Just enough of systemd for Corral to connect (the controller is not used here).
struct Manager;

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {}
}

/// The Notify calls a recorder logged, once there are `count` of them (5 s at most).
fn notify_calls(log: &Path, count: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let calls: Vec<Value> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|call| call["call"] == "Notify")
            .collect();
        if calls.len() >= count || start.elapsed() > Duration::from_secs(5) {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_restarted_server_gets_new_notifications_not_old_ids() {
    common::on_private_session_bus(restarted_server);
}

async fn restarted_server(address: String, dir: PathBuf) {
    let _manager = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", Manager)
        .unwrap()
        .build()
        .await
        .unwrap();
    let systemd = Systemd::connect(ManagerKind::User).await.unwrap();
    let controller = Controller::new(systemd, CgroupFs::system());

    let first_log = dir.join("first.jsonl");
    let first = start_recorder(&first_log, Some(&address), &[]);
    let notifier = Notifier::connect().await.unwrap();
    let (changes_tx, changes) = tokio::sync::broadcast::channel(16);
    let (_state_tx, state) = tokio::sync::watch::channel(Arc::new(MonitorState::default()));
    let (open, _open_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(deliver_alerts(
        Some(notifier),
        changes,
        state,
        controller,
        open,
    ));

    let firefox = "app-corral-firefox-1a2b3c4d.service";
    changes_tx
        .send(AlertChange::Raised(near_limit_alert(
            firefox, "Firefox", 91.0,
        )))
        .unwrap();
    let calls = notify_calls(&first_log, 1);
    assert_eq!(calls.len(), 1, "the first server shows Firefox's alert");
    assert_eq!(calls[0]["id"], 1);

    // The server restarts: a new process on the name, numbering from 1 again.
    drop(first);
    let second_log = dir.join("second.jsonl");
    let _second = start_recorder(&second_log, Some(&address), &[]);

    changes_tx
        .send(AlertChange::Updated(near_limit_alert(
            firefox, "Firefox", 97.0,
        )))
        .unwrap();
    let calls = notify_calls(&second_log, 1);
    assert_eq!(calls.len(), 1, "the update reaches the new server");
    assert_eq!(
        calls[0]["replaces_id"], 0,
        "an id of the old server was sent to the new one as its own: {}",
        calls[0]
    );
    assert!(calls[0]["body"].as_str().unwrap().contains("(97 %)"));

    // The new server's ids are the book's now: another app's alert gets another id, and a
    // further update of Firefox's replaces Firefox's notification.
    let code = "app-corral-code-5e6f7a8b.service";
    changes_tx
        .send(AlertChange::Raised(near_limit_alert(code, "Code", 92.0)))
        .unwrap();
    changes_tx
        .send(AlertChange::Updated(near_limit_alert(
            firefox, "Firefox", 98.0,
        )))
        .unwrap();
    let calls = notify_calls(&second_log, 3);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1]["summary"], "Code is close to its memory limit");
    assert_ne!(calls[1]["id"], calls[0]["id"]);
    assert_eq!(calls[2]["replaces_id"], calls[0]["id"]);
    assert!(calls[2]["body"].as_str().unwrap().contains("Firefox"));
}
