//! A notification server for tests: implements org.freedesktop.Notifications (Desktop
//! Notifications Specification 1.2) on the session bus and records every Notify and
//! CloseNotification call as one JSON line in a file, so tests can check what Corral sent.
//!
//! ```text
//! notification_recorder LOG [--invoke-file PATH] [--body-markup]
//! ```
//!
//! With `--body-markup` it says it reads bodies as markup (the "body-markup" capability), as
//! GNOME Shell, dunst and mako do.
//!
//! It prints "ready" on stdout once it owns the name. To press a button of the last
//! notification: write an action key ("freeze") to PATH (the file is read and removed), or
//! send SIGUSR1 to press its first action; "freeze 3" presses it on notification 3 instead. Either emits ActionInvoked, as a real server does
//! when a person clicks, and is recorded too. It runs until killed.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value as Json, json};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedValue, Value};

const PATH: &str = "/org/freedesktop/Notifications";

/// What the recorder remembers between calls.
struct State {
    log: File,
    next_id: u32,
    /// Ids of the notifications still shown.
    shown: HashSet<u32>,
    /// The last notification shown: its id and action keys.
    last: Option<(u32, Vec<String>)>,
}

impl State {
    fn record(&mut self, line: Json) {
        // A test that cannot see a line fails on its own; the server keeps answering.
        let _ = writeln!(self.log, "{line}");
        let _ = self.log.flush();
    }
}

struct Recorder {
    state: Arc<Mutex<State>>,
    body_markup: bool,
}

/// Hints as JSON: the few types servers get, the rest as their D-Bus text form.
fn hint_json(value: &Value<'_>) -> Json {
    match value {
        Value::U8(v) => json!(v),
        Value::Bool(v) => json!(v),
        Value::I32(v) => json!(v),
        Value::U32(v) => json!(v),
        Value::Str(v) => json!(v.as_str()),
        other => json!(other.to_string()),
    }
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let Ok(mut state) = self.state.lock() else {
            return 0;
        };
        // Per the spec, a known replaces_id keeps its id; otherwise a new one (never 0).
        let id = if state.shown.contains(&replaces_id) {
            replaces_id
        } else {
            state.next_id += 1;
            state.next_id
        };
        state.shown.insert(id);
        let keys = actions.iter().step_by(2).cloned().collect();
        state.last = Some((id, keys));
        let hints: serde_json::Map<String, Json> = hints
            .iter()
            .map(|(k, v)| (k.clone(), hint_json(v)))
            .collect();
        // When it arrived, to measure how fast a sender reacts (milliseconds since the epoch).
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        state.record(json!({
            "call": "Notify",
            "at_ms": at_ms,
            "id": id,
            "app_name": app_name,
            "replaces_id": replaces_id,
            "app_icon": app_icon,
            "summary": summary,
            "body": body,
            "actions": actions,
            "hints": hints,
            "expire_timeout": expire_timeout,
        }));
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        if let Ok(mut state) = self.state.lock() {
            state.shown.remove(&id);
            state.record(json!({"call": "CloseNotification", "id": id}));
        }
        // Reason 3: closed by a call to CloseNotification.
        Recorder::notification_closed(&emitter, id, 3).await?;
        Ok(())
    }

    fn get_capabilities(&self) -> Vec<String> {
        let mut capabilities = ["actions", "body", "persistence"]
            .map(str::to_owned)
            .to_vec();
        if self.body_markup {
            capabilities.push("body-markup".to_owned());
        }
        capabilities
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "corral-notification-recorder".to_owned(),
            "Corral".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
            "1.2".to_owned(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// Presses `key` (or the first action) on notification `on`, or else the last one.
async fn invoke(
    state: &Arc<Mutex<State>>,
    emitter: &SignalEmitter<'_>,
    key: Option<String>,
    on: Option<u32>,
) -> Result<()> {
    let target = {
        let Ok(mut state) = state.lock() else {
            bail!("the recorder's state is poisoned");
        };
        let target = match on {
            Some(id) => Some((id, Vec::new())),
            None => state.last.clone(),
        };
        let Some((id, keys)) = target else {
            eprintln!("notification_recorder: no notification to invoke an action on");
            return Ok(());
        };
        let Some(key) = key.or_else(|| keys.first().cloned()) else {
            eprintln!("notification_recorder: the last notification has no actions");
            return Ok(());
        };
        state.record(json!({"call": "ActionInvoked", "id": id, "action_key": key}));
        (id, key)
    };
    Recorder::action_invoked(emitter, target.0, &target.1)
        .await
        .context("emitting ActionInvoked")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let mut log_path = None;
    let mut invoke_file: Option<PathBuf> = None;
    let mut body_markup = false;
    while let Some(arg) = args.next() {
        if arg == "--body-markup" {
            body_markup = true;
        } else if arg == "--invoke-file" {
            invoke_file = Some(args.next().context("--invoke-file needs a path")?.into());
        } else if log_path.is_none() {
            log_path = Some(PathBuf::from(arg));
        } else {
            bail!("usage: notification_recorder LOG [--invoke-file PATH] [--body-markup]");
        }
    }
    let log_path = log_path.context("usage: notification_recorder LOG [--invoke-file PATH]")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let state = Arc::new(Mutex::new(State {
        log,
        next_id: 0,
        shown: HashSet::new(),
        last: None,
    }));
    let connection = zbus::connection::Builder::session()?
        .name("org.freedesktop.Notifications")?
        .serve_at(
            PATH,
            Recorder {
                state: state.clone(),
                body_markup,
            },
        )?
        .build()
        .await
        .context("taking org.freedesktop.Notifications on the session bus")?;
    let emitter = SignalEmitter::new(&connection, PATH)?;
    println!("ready");
    std::io::stdout().flush()?;

    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = usr1.recv() => invoke(&state, &emitter, None, None).await?,
            _ = poll.tick() => {
                let Some(path) = &invoke_file else { continue };
                let Ok(text) = std::fs::read_to_string(path) else { continue };
                // A writer may not have finished: wait for the newline that ends the key.
                if !text.ends_with('\n') {
                    continue;
                }
                std::fs::remove_file(path).context("removing the invoke file")?;
                let mut words = text.split_whitespace();
                let key = words.next().map(str::to_owned);
                let on = words.next().and_then(|id| id.parse().ok());
                invoke(&state, &emitter, key, on).await?;
            }
        }
    }
}
