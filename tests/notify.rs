//! Corral's notification client against a real notification server over a real D-Bus: a
//! private dbus-daemon and the notification recorder (examples/notification_recorder.rs), which
//! implements org.freedesktop.Notifications and logs every call. No mocks: what is checked is
//! what went over the bus.

mod common;

use common::{Reaped, private_bus};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use corral::monitor::alerts::Alert;
use corral::notify::{
    CloseReason, Notification, NotificationAction, NotificationEvent, Notifier, NotifyError,
};
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// A session bus of our own, with no activatable services: nothing answers but what the test
/// starts.
struct PrivateBus {
    _daemon: Reaped,
    address: String,
    dir: tempfile::TempDir,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        let dir = tempfile::tempdir().unwrap();
        let (daemon, address) = private_bus(dir.path());
        PrivateBus {
            _daemon: daemon,
            address,
            dir,
        }
    }

    async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts the recorder on this bus and waits until it owns the name.
    fn start_recorder(&self) -> Reaped {
        self.start_recorder_with(&[])
    }

    /// The same, with more arguments for the recorder (`--body-markup`).
    fn start_recorder_with(&self, more: &[&str]) -> Reaped {
        let invoke = self.path("invoke");
        let mut args = vec![OsStr::new("--invoke-file"), invoke.as_os_str()];
        args.extend(more.iter().map(OsStr::new));
        common::start_recorder(&self.path("calls.jsonl"), Some(&self.address), &args)
    }

    /// The calls the recorder logged so far.
    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn near_limit(percent: f64) -> Alert {
    Alert {
        app_id: Some("firefox".to_owned()),
        preset: Some("browser".to_owned()),
        ..common::near_limit_alert("app-corral-firefox-1a2b3c4d.service", "Firefox", percent)
    }
}

async fn next_event(
    events: &mut (impl Stream<Item = NotificationEvent> + Unpin),
) -> NotificationEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("no signal from the server within 5 s")
        .expect("the signal stream ended")
}

#[tokio::test]
async fn without_a_server_the_client_says_so() {
    let bus = PrivateBus::start();
    let connection = bus.connect().await;
    match Notifier::on(&connection).await {
        Err(error @ NotifyError::NoServer(_)) => {
            assert!(
                error.to_string().contains("in its window instead"),
                "{error}"
            );
        }
        other => panic!("expected NoServer, got {other:?}"),
    }
}

#[tokio::test]
async fn sends_replaces_closes_and_hears_actions() {
    let bus = PrivateBus::start();
    let _recorder = bus.start_recorder();
    let connection = bus.connect().await;
    let notifier = Notifier::on(&connection)
        .await
        .unwrap()
        .with_desktop_entry("io.github.corral");
    assert!(notifier.supports_actions());
    let mut events = notifier.events().await.unwrap();

    // Raised: a new notification.
    let first = Notification::for_alert(&near_limit(91.0));
    let id = notifier.show(&first, None).await.unwrap();
    let calls = bus.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["call"], "Notify");
    assert_eq!(call["id"], id.0);
    assert_eq!(call["app_name"], "Corral");
    assert_eq!(call["replaces_id"], 0);
    assert_eq!(call["summary"], "Firefox is close to its memory limit");
    assert_eq!(
        call["body"],
        "Firefox uses 3.6 GiB of its 4.0 GiB limit (91 %). If it reaches the limit, the kernel \
         kills it."
    );
    assert_eq!(
        call["actions"],
        serde_json::json!([
            "default",
            "Open Corral",
            "freeze",
            "Freeze",
            "raise",
            "Raise limit to 5.0 GiB",
            "kill",
            "Kill",
            "open",
            "Open Corral"
        ])
    );
    assert_eq!(call["hints"]["urgency"], 1);
    assert_eq!(call["hints"]["desktop-entry"], "io.github.corral");

    // Updated: replaced in place, same id.
    let update = Notification::for_alert(&near_limit(97.0));
    let same = notifier.show(&update, Some(id)).await.unwrap();
    assert_eq!(same, id);
    let calls = bus.calls();
    assert_eq!(calls[1]["replaces_id"], id.0);
    assert_eq!(calls[1]["id"], id.0);
    assert!(calls[1]["body"].as_str().unwrap().contains("(97 %)"));

    // The person presses Freeze.
    std::fs::write(bus.path("invoke"), "freeze\n").unwrap();
    assert_eq!(
        next_event(&mut events).await,
        NotificationEvent::ActionInvoked {
            id,
            action: Some(NotificationAction::Freeze),
            key: "freeze".to_owned(),
        }
    );

    // Cleared: withdrawn.
    notifier.close(id).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        NotificationEvent::Closed {
            id,
            reason: CloseReason::Closed,
        }
    );
    let calls = bus.calls();
    assert_eq!(calls.last().unwrap()["call"], "CloseNotification");
    assert_eq!(calls.last().unwrap()["id"], id.0);

    // A later alert gets a new notification; SIGUSR1 presses its first button ("default",
    // a click on the notification), which means Open.
    let again = notifier.show(&first, None).await.unwrap();
    assert_ne!(again, id);
    // SAFETY: sending a signal to the child we started.
    unsafe { libc::kill(_recorder.0.id() as i32, libc::SIGUSR1) };
    assert_eq!(
        next_event(&mut events).await,
        NotificationEvent::ActionInvoked {
            id: again,
            action: Some(NotificationAction::Open),
            key: "default".to_owned(),
        }
    );
}

#[tokio::test]
async fn an_apps_name_is_text_in_a_body_the_server_reads_as_markup() {
    let mut alert = near_limit(91.0);
    alert.app_name = "Tom & Jerry <a href='https://example.org'>".to_owned();
    let notification = Notification::for_alert(&alert);
    for markup in [true, false] {
        let bus = PrivateBus::start();
        let _recorder = bus.start_recorder_with(if markup { &["--body-markup"] } else { &[] });
        let connection = bus.connect().await;
        let notifier = Notifier::on(&connection).await.unwrap();
        notifier.show(&notification, None).await.unwrap();
        let calls = bus.calls();
        let body = calls[0]["body"].as_str().unwrap();
        // The summary is never markup (the spec): as written either way.
        assert_eq!(
            calls[0]["summary"],
            "Tom & Jerry <a href='https://example.org'> is close to its memory limit"
        );
        if markup {
            assert!(
                body.starts_with(
                    "Tom &amp; Jerry &lt;a href=&apos;https://example.org&apos;&gt; uses"
                ),
                "{body}"
            );
        } else {
            assert!(
                body.starts_with("Tom & Jerry <a href='https://example.org'> uses"),
                "{body}"
            );
        }
    }
}
