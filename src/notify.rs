//! Desktop notifications (org.freedesktop.Notifications, spec 1.2): a typed client, what each
//! alert says and offers, and the delivery that keeps one notification per unit and condition.

use std::collections::HashMap;
use std::fmt;

use futures_util::{Stream, StreamExt, stream};
use zbus::proxy;
use zbus::zvariant::Value;

use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::{Bytes, CpuQuota};
use crate::monitor::alerts::{Alert, AlertChange, AlertDetail, Condition, MemoryBoundary};
use crate::policy::{LimitRaise, raise_step};

/// The interface as the specification defines it ("D-Bus Protocol").
#[proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
pub trait Notifications {
    /// `actions` alternates keys and labels; `expire_timeout` -1 lets the server decide.
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    fn close_notification(&self, id: u32) -> zbus::Result<()>;

    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

    /// name, vendor, version, spec version.
    fn get_server_information(&self) -> zbus::Result<(String, String, String, String)>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String);

    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32);
}

/// The server's id for a notification it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotificationId(pub u32);

/// The specification's "urgency" hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Low = 0,
    Normal = 1,
    /// Servers keep critical notifications until the person dismisses them.
    Critical = 2,
}

/// What a notification's buttons do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationAction {
    Freeze,
    /// Offered when a policy froze the app.
    Thaw,
    RaiseLimit,
    Kill,
    /// Show Corral's window on the app; also what clicking the notification itself does.
    Open,
}

impl NotificationAction {
    /// The action key sent to the server and returned in ActionInvoked.
    pub fn key(self) -> &'static str {
        match self {
            NotificationAction::Freeze => "freeze",
            NotificationAction::Thaw => "thaw",
            NotificationAction::RaiseLimit => "raise",
            NotificationAction::Kill => "kill",
            NotificationAction::Open => "open",
        }
    }

    /// The action for a key from ActionInvoked. "default" is the spec's key for clicking the
    /// notification's body.
    pub fn from_key(key: &str) -> Option<NotificationAction> {
        match key {
            "freeze" => Some(NotificationAction::Freeze),
            "thaw" => Some(NotificationAction::Thaw),
            "raise" => Some(NotificationAction::RaiseLimit),
            "kill" => Some(NotificationAction::Kill),
            "open" | "default" => Some(NotificationAction::Open),
            _ => None,
        }
    }
}

/// What a notification says and offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub summary: String,
    pub body: String,
    /// Buttons in order, with their labels.
    pub actions: Vec<(NotificationAction, String)>,
    pub urgency: Urgency,
    /// What the "Raise limit" button sets, when it is offered.
    pub raise: Option<LimitRaise>,
}

fn percent(value: f64) -> String {
    format!("{value:.0} %")
}

impl Notification {
    /// The notification for an alert, in plain words naming the app and the figures.
    pub fn for_alert(alert: &Alert) -> Notification {
        let app = &alert.app_name;
        let raise = raise_step(alert);
        let (summary, body) = match alert.detail {
            AlertDetail::MemoryNearLimit {
                used,
                limit,
                boundary: MemoryBoundary::Max,
                percent: p,
            } => (
                gettext_f("{app} is close to its memory limit", &[("app", app)]),
                gettext_f(
                    "{app} uses {used} of its {limit} limit ({percent}). If it reaches the limit, the kernel kills it.",
                    &[
                        ("app", app),
                        ("used", &used),
                        ("limit", &limit),
                        ("percent", &percent(p)),
                    ],
                ),
            ),
            AlertDetail::MemoryNearLimit {
                used,
                limit,
                boundary: MemoryBoundary::High,
                percent: p,
            } => (
                gettext_f("{app} is close to its soft memory limit", &[("app", app)]),
                gettext_f(
                    "{app} uses {used} of its {limit} soft limit ({percent}). Above it, the kernel slows it down to reclaim memory.",
                    &[
                        ("app", app),
                        ("used", &used),
                        ("limit", &limit),
                        ("percent", &percent(p)),
                    ],
                ),
            ),
            AlertDetail::MemoryThrottled { used, high, .. } => (
                gettext_f("{app} is slowed down for lack of memory", &[("app", app)]),
                match used {
                    Some(used) => gettext_f(
                        "{app} uses {used} and keeps hitting its {limit} soft limit, so the kernel slows it down to reclaim memory.",
                        &[("app", app), ("used", &used), ("limit", &high)],
                    ),
                    None => gettext_f(
                        "{app} keeps hitting its {limit} soft limit, so the kernel slows it down to reclaim memory.",
                        &[("app", app), ("limit", &high)],
                    ),
                },
            ),
            AlertDetail::CpuThrottled { quota, .. } => (
                gettext_f("{app} is held at its CPU limit", &[("app", app)]),
                match quota {
                    CpuQuota::Percent(p) => gettext_f(
                        "{app} keeps using all the CPU time it is allowed ({percent} % of one CPU), so it runs slower than it could.",
                        &[("app", app), ("percent", &p)],
                    ),
                    CpuQuota::Unlimited => gettext_f(
                        "{app} keeps using all the CPU time it is allowed.",
                        &[("app", app)],
                    ),
                },
            ),
            AlertDetail::MemoryPressure {
                some_avg10, held, ..
            } => (
                gettext_f("{app} is stalling for memory", &[("app", app)]),
                gettext_f(
                    "{app}'s tasks waited for memory {percent} of the time for {seconds} s. It may be slow to respond.",
                    &[
                        ("app", app),
                        ("percent", &percent(some_avg10)),
                        ("seconds", &held.as_secs()),
                    ],
                ),
            ),
            AlertDetail::OomKilled {
                kills,
                limit,
                peak,
                unit_ended,
                ref victim,
            } => oom_killed_words(app, kills, limit, peak, unit_ended, victim.as_ref()),
        };
        let unit_gone = matches!(
            alert.detail,
            AlertDetail::OomKilled {
                unit_ended: true,
                ..
            }
        );
        let mut actions = Vec::new();
        if !unit_gone {
            // Freezing an app that is being OOM-killed would only stop it mid-kill.
            if alert.condition() != Condition::OomKilled {
                actions.push((NotificationAction::Freeze, gettext("Freeze")));
            }
            if let Some(step) = &raise {
                actions.push((NotificationAction::RaiseLimit, step.label()));
            }
            actions.push((NotificationAction::Kill, gettext("Kill")));
        }
        actions.push((NotificationAction::Open, gettext("Open Corral")));
        Notification {
            summary,
            body,
            actions,
            urgency: if alert.condition() == Condition::OomKilled {
                Urgency::Critical
            } else {
                Urgency::Normal
            },
            raise: raise.filter(|_| !unit_gone),
        }
    }
}

/// What an OOM kill's notification says: the whole app ended, a named process of it was
/// killed, or some of its processes were.
fn oom_killed_words(
    app: &str,
    kills: u64,
    limit: Option<Bytes>,
    peak: Option<Bytes>,
    unit_ended: bool,
    victim: Option<&crate::monitor::processes::KilledProcess>,
) -> (String, String) {
    let app = &app;
    match (unit_ended, victim) {
        (true, _) => {
            let at = limit
                .map(|l| gettext_f(" at its {limit} limit", &[("limit", &l)]))
                .unwrap_or_default();
            let peak = peak
                .map(|p| gettext_f(" It used at most {size}.", &[("size", &p)]))
                .unwrap_or_default();
            (
                gettext_f("{app} was killed: out of memory", &[("app", app)]),
                gettext_f(
                    "The kernel's OOM killer ended {app}{at}.{peak}",
                    &[("app", app), ("at", &at), ("peak", &peak)],
                ),
            )
        }
        (false, Some(victim)) => {
            let at = limit
                .map(|l| gettext_f(" at its {limit} limit", &[("limit", &l)]))
                .unwrap_or_default();
            let memory = victim
                .memory_bytes
                .map(|m| gettext_f(", using {size}", &[("size", &Bytes(m))]))
                .unwrap_or_default();
            (
                gettext_f("Part of {app} was killed: out of memory", &[("app", app)]),
                gettext_f(
                    "The kernel's OOM killer killed its process {process} (PID {pid}{memory}){at}; the rest of {app} still runs.",
                    &[
                        ("app", app),
                        ("process", &victim.name),
                        ("pid", &victim.pid),
                        ("memory", &memory),
                        ("at", &at),
                    ],
                ),
            )
        }
        (false, None) => {
            let at = limit
                .map(|l| gettext_f(" at its {limit} limit", &[("limit", &l)]))
                .unwrap_or_default();
            let processes = if kills == 1 {
                gettext("one of its processes")
            } else {
                ngettext_f(
                    "{n} of its processes",
                    "{n} of its processes",
                    kills,
                    &[("n", &kills)],
                )
            };
            (
                gettext_f("Part of {app} was killed: out of memory", &[("app", app)]),
                gettext_f(
                    "The kernel's OOM killer killed {processes}{at}; the rest of {app} still runs.",
                    &[("app", app), ("processes", &processes), ("at", &at)],
                ),
            )
        }
    }
}

impl Notification {
    /// The alert's notification once a policy has acted on it: what was done comes first. A
    /// frozen app is offered Thaw instead of Freeze; a changed limit needs no Raise button.
    pub fn after_policy(alert: &Alert, outcome: &crate::policy::PolicyOutcome) -> Notification {
        let mut n = Notification::for_alert(alert);
        n.body = format!("{} {}", outcome.message, n.body);
        if outcome.failed {
            return n;
        }
        if outcome.froze {
            n.summary = gettext_f("{app} was frozen", &[("app", &alert.app_name)]);
            for (action, label) in &mut n.actions {
                if *action == NotificationAction::Freeze {
                    *action = NotificationAction::Thaw;
                    *label = gettext("Thaw");
                }
            }
        } else {
            n.actions
                .retain(|(a, _)| *a != NotificationAction::RaiseLimit);
            n.raise = None;
        }
        n
    }
}

/// Why the server closed a notification (NotificationClosed's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Expired,
    DismissedByUser,
    /// By a CloseNotification call.
    Closed,
    Other(u32),
}

impl CloseReason {
    fn from_code(code: u32) -> CloseReason {
        match code {
            1 => CloseReason::Expired,
            2 => CloseReason::DismissedByUser,
            3 => CloseReason::Closed,
            other => CloseReason::Other(other),
        }
    }
}

/// A signal from the server about one of the notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationEvent {
    /// A button was pressed; `action` is `None` for a key Corral does not know.
    ActionInvoked {
        id: NotificationId,
        action: Option<NotificationAction>,
        key: String,
    },
    Closed {
        id: NotificationId,
        reason: CloseReason,
    },
}

/// What went wrong talking to the notification server.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No notification server runs (or can be started) on the session bus.
    #[error("{}", gettext_f("no desktop notification server is running ({error}); Corral shows its alerts in its window instead — start your desktop's notification daemon to get them as notifications", &[("error", .0)]))]
    NoServer(String),
    #[error("{}", gettext_f("cannot connect to the session bus to show notifications: {error}", &[("error", .0)]))]
    Bus(#[source] zbus::Error),
    #[error("{}", gettext_f("the notification server failed {call}: {error}", &[("call", .call), ("error", .source)]))]
    Call {
        call: &'static str,
        #[source]
        source: zbus::Error,
    },
}

fn is_no_server(error: &zbus::Error) -> bool {
    match error {
        zbus::Error::MethodError(name, _, _) => matches!(
            name.as_str(),
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"
        ),
        zbus::Error::FDO(e) => matches!(
            **e,
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
        ),
        _ => false,
    }
}

fn call_error(call: &'static str) -> impl Fn(zbus::Error) -> NotifyError {
    move |source| {
        if is_no_server(&source) {
            NotifyError::NoServer(source.to_string())
        } else {
            NotifyError::Call { call, source }
        }
    }
}

/// A connection to the notification server.
#[derive(Debug, Clone)]
pub struct Notifier {
    proxy: NotificationsProxy<'static>,
    capabilities: Vec<String>,
    app_name: String,
    desktop_entry: Option<String>,
}

impl Notifier {
    /// Connects to the session bus and checks that a notification server answers (starting it
    /// if the bus can activate one).
    pub async fn connect() -> Result<Notifier, NotifyError> {
        let connection = zbus::Connection::session()
            .await
            .map_err(NotifyError::Bus)?;
        Notifier::on(&connection).await
    }

    /// The same on a given connection (a private bus in tests).
    pub async fn on(connection: &zbus::Connection) -> Result<Notifier, NotifyError> {
        let proxy = NotificationsProxy::new(connection)
            .await
            .map_err(NotifyError::Bus)?;
        let capabilities = proxy
            .get_capabilities()
            .await
            .map_err(call_error("GetCapabilities"))?;
        Ok(Notifier {
            proxy,
            capabilities,
            app_name: "Corral".to_owned(),
            desktop_entry: None,
        })
    }

    /// Whether the bus connection is gone (the session bus stopped or dropped us).
    pub fn is_disconnected(&self) -> bool {
        self.proxy.inner().connection().is_closed()
    }

    /// The unique bus name of the server now, `None` if no server runs. Ids and signals are
    /// that server's: a restarted one starts numbering again.
    pub async fn server(&self) -> Option<String> {
        let bus = zbus::fdo::DBusProxy::new(self.proxy.inner().connection())
            .await
            .ok()?;
        let name =
            zbus::names::BusName::try_from(self.proxy.inner().destination().to_string()).ok()?;
        bus.get_name_owner(name).await.ok().map(|o| o.to_string())
    }

    /// A new connection to the server, named as this one, after the bus went away.
    pub async fn reconnect(&self) -> Result<Notifier, NotifyError> {
        let mut fresh = Notifier::connect().await?;
        fresh.app_name.clone_from(&self.app_name);
        fresh.desktop_entry.clone_from(&self.desktop_entry);
        Ok(fresh)
    }

    /// The desktop entry (app id) servers use to find Corral's icon and settings.
    pub fn with_desktop_entry(mut self, app_id: impl Into<String>) -> Notifier {
        self.desktop_entry = Some(app_id.into());
        self
    }

    /// Whether the server shows action buttons; without them the window's banners carry the
    /// actions.
    pub fn supports_actions(&self) -> bool {
        self.capabilities.iter().any(|c| c == "actions")
    }

    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Shows a notification, or replaces the one `replaces` names in place.
    pub async fn show(
        &self,
        notification: &Notification,
        replaces: Option<NotificationId>,
    ) -> Result<NotificationId, NotifyError> {
        let mut actions: Vec<&str> = Vec::with_capacity(notification.actions.len() * 2 + 2);
        // Clicking the notification opens Corral, as its "Open Corral" button does.
        let open = gettext("Open Corral");
        actions.extend(["default", open.as_str()]);
        for (action, label) in &notification.actions {
            actions.extend([action.key(), label.as_str()]);
        }
        let mut hints = HashMap::new();
        hints.insert("urgency", Value::U8(notification.urgency as u8));
        if let Some(entry) = &self.desktop_entry {
            hints.insert("desktop-entry", Value::from(entry.as_str()));
        }
        // A server with "body-markup" reads the body as markup (the spec's "Markup"): an app
        // named `Tom & Jerry` would blank it, one named `<a href=…>` would put a link in a
        // Corral notification. The summary is plain text for every server.
        let body = if self.capabilities.iter().any(|c| c == "body-markup") {
            markup_escape(&notification.body)
        } else {
            notification.body.clone()
        };
        let id = self
            .proxy
            .notify(
                &self.app_name,
                replaces.map_or(0, |id| id.0),
                "",
                &notification.summary,
                &body,
                &actions,
                hints,
                -1,
            )
            .await
            .map_err(call_error("Notify"))?;
        Ok(NotificationId(id))
    }

    /// Withdraws a notification.
    pub async fn close(&self, id: NotificationId) -> Result<(), NotifyError> {
        self.proxy
            .close_notification(id.0)
            .await
            .map_err(call_error("CloseNotification"))
    }

    /// The server's ActionInvoked and NotificationClosed signals, for every notification.
    /// Subscribe before showing anything, or the first signals may be missed.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = NotificationEvent> + Unpin + use<>, NotifyError> {
        let invoked = self
            .proxy
            .receive_action_invoked()
            .await
            .map_err(call_error("subscribing to ActionInvoked"))?;
        let closed = self
            .proxy
            .receive_notification_closed()
            .await
            .map_err(call_error("subscribing to NotificationClosed"))?;
        let invoked = invoked.filter_map(|signal| async move {
            let args = signal.args().ok()?;
            Some(NotificationEvent::ActionInvoked {
                id: NotificationId(args.id),
                action: NotificationAction::from_key(&args.action_key),
                key: args.action_key,
            })
        });
        let closed = closed.filter_map(|signal| async move {
            let args = signal.args().ok()?;
            Some(NotificationEvent::Closed {
                id: NotificationId(args.id),
                reason: CloseReason::from_code(args.reason),
            })
        });
        Ok(stream::select(Box::pin(invoked), Box::pin(closed)))
    }
}

/// Text for a body the server reads as markup: `&`, `<`, `>`, `'` and `"` as entities.
pub fn markup_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Which unit and condition a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub unit: String,
    pub condition: Condition,
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.unit, self.condition.as_str())
    }
}

/// What to do on the notification server for an alert change.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationStep {
    /// Show this, replacing `replaces` when the alert already has a notification.
    Show {
        notification: Notification,
        replaces: Option<NotificationId>,
    },
    Close(NotificationId),
}

/// One notification per unit and condition: which notification shows which alert, so that an
/// update replaces it in place, a clear withdraws it and a pressed button finds its unit.
///
/// Ids are the server's, and mean something only to the server that gave them: a restarted
/// server (dunst, mako, GNOME Shell) numbers from 1 again. So the book belongs to one server,
/// the unique bus name that owned org.freedesktop.Notifications when it was written, and is
/// started afresh for another; and an id the server gives anew drops whatever the book kept
/// under it.
#[derive(Debug, Default)]
pub struct NotificationBook {
    shown: HashMap<AlertKey, NotificationId>,
    /// The server the ids are from; `None` until the first is known.
    server: Option<String>,
}

impl NotificationBook {
    /// Makes the book that of `server` (the unique name owning the notification service now):
    /// forgets every id when it was another's. Returns whether it did.
    pub fn serve(&mut self, server: Option<&str>) -> bool {
        let changed = self.server.is_some() && self.server.as_deref() != server;
        if changed {
            self.shown.clear();
        }
        self.server = server.map(str::to_owned);
        changed
    }

    /// The step for an alert change; `None` when a cleared alert had no notification.
    pub fn step(&self, change: &AlertChange) -> Option<NotificationStep> {
        let alert = change.alert();
        let key = AlertKey {
            unit: alert.unit.clone(),
            condition: alert.condition(),
        };
        let shown = self.shown.get(&key).copied();
        match change {
            AlertChange::Raised(_) | AlertChange::Updated(_) => Some(NotificationStep::Show {
                notification: Notification::for_alert(alert),
                replaces: shown,
            }),
            AlertChange::Cleared(_) => shown.map(NotificationStep::Close),
        }
    }

    /// Records the id the server gave (or kept) for an alert's notification. Another alert
    /// kept under the same id is forgotten: the server says that id now shows this one.
    pub fn shown(&mut self, alert: &Alert, id: NotificationId) {
        self.shown.retain(|_, shown| *shown != id);
        self.shown.insert(
            AlertKey {
                unit: alert.unit.clone(),
                condition: alert.condition(),
            },
            id,
        );
    }

    /// Forgets a notification the server closed (or Corral withdrew); returns what it showed.
    pub fn closed(&mut self, id: NotificationId) -> Option<AlertKey> {
        let key = self.alert_for(id)?.clone();
        self.shown.remove(&key);
        Some(key)
    }

    /// The alert a notification shows, to act on a pressed button.
    pub fn alert_for(&self, id: NotificationId) -> Option<&AlertKey> {
        self.shown
            .iter()
            .find_map(|(key, shown)| (*shown == id).then_some(key))
    }
}

/// What a pressed "Open Corral" asks of the app: show its window on this unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub unit: String,
}

/// Connects to the notification server and delivers the monitor's alerts there (see
/// [`deliver_alerts`]) on the current tokio runtime. Returns the "Open Corral" presses for
/// the app to present its window. No server: alerts stay in the monitor's state, logged once.
pub fn spawn_notifications(
    monitor: &crate::monitor::service::Monitor,
    controller: crate::controller::Controller,
) -> tokio::sync::mpsc::UnboundedReceiver<OpenRequest> {
    // Subscribed now, before anything awaits, so that no early alert is missed.
    let changes = monitor.alert_changes();
    let state = monitor.subscribe();
    let (open_tx, open_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let notifier = match Notifier::connect().await {
            Ok(n) => Some(n.with_desktop_entry(crate::identity::APP_ID)),
            Err(e) => {
                eprintln!("corral: {e}");
                None
            }
        };
        deliver_alerts(notifier, changes, state, controller, open_tx).await;
    });
    open_rx
}

/// Turns the monitor's alert changes into notifications, one per unit and condition (replaced
/// as the alert changes, withdrawn when it clears), and performs the buttons people press:
/// Freeze, Raise limit (one step of [`raise_step`]), Kill, and Open Corral, which is sent on
/// `open` for the app to present its window. Runs until the monitor stops.
///
/// Policies act on raised alerts with the config in force in the monitor's `state`.
///
/// Without a notification server (`notifier` is `None`, or it goes away), alerts only reach
/// the window's state: the failure is logged once, not per alert.
pub async fn deliver_alerts(
    notifier: Option<Notifier>,
    mut changes: tokio::sync::broadcast::Receiver<AlertChange>,
    state: tokio::sync::watch::Receiver<std::sync::Arc<crate::monitor::service::MonitorState>>,
    controller: crate::controller::Controller,
    open: tokio::sync::mpsc::UnboundedSender<OpenRequest>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let mut notifier = notifier;
    // Subscribe before the first notification, so that no button press is missed.
    let mut events = match &notifier {
        Some(n) => match n.events().await {
            Ok(events) => Some(events),
            Err(e) => {
                eprintln!("corral: notifications: {e}");
                notifier = None;
                None
            }
        },
        None => None,
    };
    let mut book = NotificationBook::default();
    let mut policies = crate::policy::Policies::default();
    // The latest alert behind each notification, for what its buttons do.
    let mut alerts: HashMap<AlertKey, Alert> = HashMap::new();
    let mut complained = false;
    loop {
        tokio::select! {
            change = changes.recv() => {
                let change = match change {
                    Ok(change) => change,
                    // Missed some: later changes still carry each alert's whole state.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let alert = change.alert();
                let key = AlertKey { unit: alert.unit.clone(), condition: alert.condition() };
                match &change {
                    AlertChange::Cleared(_) => { alerts.remove(&key); }
                    _ => { alerts.insert(key, alert.clone()); }
                }
                // Opt-in policies act when an alert is first raised, before anyone is told.
                let outcome = match &change {
                    AlertChange::Raised(alert) => {
                        // The monitor's config in force, not the file read again here.
                        let config = std::sync::Arc::clone(&state.borrow().config);
                        policies.enforce(&controller, &config, alert).await
                    }
                    _ => None,
                };
                if let Some(outcome) = &outcome {
                    eprintln!("corral: {}", outcome.message);
                }
                let Some(n) = &notifier else { continue };
                // A server that restarted since the book was written knows none of its ids.
                book.serve(n.server().await.as_deref());
                let mut failed = deliver(n, &mut book, &change, outcome.as_ref()).await;
                if failed.is_some() && n.is_disconnected() {
                    // The session bus went away and came back (or is coming back): the old
                    // server's notifications went with it, so start afresh on a new connection.
                    if let Ok(fresh) = n.reconnect().await {
                        eprintln!("corral: notifications: connected to the session bus again");
                        events = fresh.events().await.ok();
                        book = NotificationBook::default();
                        complained = false;
                        failed = deliver(&fresh, &mut book, &change, outcome.as_ref()).await;
                        notifier = Some(fresh);
                    }
                }
                if let Some(e) = failed {
                    if !complained {
                        eprintln!("corral: notifications: {e}");
                        complained = true;
                    }
                    if matches!(e, NotifyError::NoServer(_)) {
                        notifier = None;
                        events = None;
                    }
                }
            }
            Some(event) = next_event(&mut events) => {
                // The event is from the server that owns the name now (zbus follows the owner);
                // ids the book has from an earlier server mean other notifications.
                if let Some(n) = &notifier {
                    book.serve(n.server().await.as_deref());
                }
                match event {
                    NotificationEvent::Closed { id, .. } => {
                        book.closed(id);
                    }
                    NotificationEvent::ActionInvoked { id, action: Some(action), .. } => {
                        let Some(key) = book.alert_for(id).cloned() else { continue };
                        if action == NotificationAction::Open {
                            let _ = open.send(OpenRequest { unit: key.unit.clone() });
                            continue;
                        }
                        let Some(alert) = alerts.get(&key) else { continue };
                        if let Err(message) = perform(&controller, action, alert).await {
                            eprintln!("corral: {message}");
                            if let Some(n) = &notifier {
                                let failure = Notification {
                                    summary: gettext_f(
                                        "Corral could not act on {app}",
                                        &[("app", &alert.app_name)],
                                    ),
                                    body: message,
                                    actions: Vec::new(),
                                    urgency: Urgency::Normal,
                                    raise: None,
                                };
                                let _ = n.show(&failure, None).await;
                            }
                        }
                    }
                    NotificationEvent::ActionInvoked { action: None, .. } => {}
                }
            }
        }
    }
}

/// Shows, replaces or withdraws the notification of one alert change; the error if it failed.
/// Shows, replaces or withdraws an alert change's notification; after a policy acted, the
/// notification says what it did.
async fn deliver(
    notifier: &Notifier,
    book: &mut NotificationBook,
    change: &AlertChange,
    outcome: Option<&crate::policy::PolicyOutcome>,
) -> Option<NotifyError> {
    match book.step(change)? {
        NotificationStep::Show {
            notification,
            replaces,
        } => match notifier
            .show(
                &match outcome {
                    Some(outcome) => Notification::after_policy(change.alert(), outcome),
                    None => notification,
                },
                replaces,
            )
            .await
        {
            Ok(id) => {
                book.shown(change.alert(), id);
                None
            }
            Err(e) => Some(e),
        },
        NotificationStep::Close(id) => {
            book.closed(id);
            notifier.close(id).await.err()
        }
    }
}

async fn next_event<S: Stream<Item = NotificationEvent> + Unpin>(
    events: &mut Option<S>,
) -> Option<NotificationEvent> {
    match events {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Does what a button asks to the alert's unit; the error says what failed, in plain words.
async fn perform(
    controller: &crate::controller::Controller,
    action: NotificationAction,
    alert: &Alert,
) -> Result<(), String> {
    let app = &alert.app_name;
    let unit = controller.find(&alert.unit).await.map_err(|e| {
        gettext_f(
            "{app} ({unit}) is no longer running: {error}",
            &[("app", app), ("unit", &alert.unit), ("error", &e)],
        )
    })?;
    match action {
        NotificationAction::Freeze => controller.freeze(&unit).await.map_err(|e| {
            gettext_f(
                "freezing {app} failed: {error}",
                &[("app", app), ("error", &e)],
            )
        }),
        NotificationAction::Thaw => controller.thaw(&unit).await.map_err(|e| {
            gettext_f(
                "thawing {app} failed: {error}",
                &[("app", app), ("error", &e)],
            )
        }),
        NotificationAction::Kill => controller.kill(&unit, libc::SIGKILL).await.map_err(|e| {
            gettext_f(
                "killing {app} failed: {error}",
                &[("app", app), ("error", &e)],
            )
        }),
        NotificationAction::RaiseLimit => {
            let Some(raise) = raise_step(alert) else {
                return Err(gettext_f("{app} has no limit to raise", &[("app", app)]));
            };
            let checks = controller
                .set_limits(&unit, &raise.settings())
                .await
                .map_err(|e| {
                    gettext_f(
                        "raising the limit of {app} failed: {error}",
                        &[("app", app), ("error", &e)],
                    )
                })?;
            match checks
                .iter()
                .find_map(|c| c.problem.as_ref().map(|p| (c, p)))
            {
                None => Ok(()),
                Some((check, problem)) => Err(gettext_f(
                    "the new {setting} of {app} ({value}) did not apply: {problem}",
                    &[
                        ("setting", &check.setting_label()),
                        ("app", app),
                        ("value", &check.wanted),
                        ("problem", problem),
                    ],
                )),
            }
        }
        NotificationAction::Open => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MemoryLimit;
    use crate::monitor::alerts::UnitLimits;
    use std::time::Duration;

    const GIB: u64 = Bytes::GIB;
    const MIB: u64 = Bytes::MIB;

    fn alert(detail: AlertDetail) -> Alert {
        Alert {
            unit: "app-corral-firefox-1a2b3c4d.service".to_owned(),
            app_name: "Firefox".to_owned(),
            app_id: Some("firefox".to_owned()),
            preset: Some("browser".to_owned()),
            limits: UnitLimits {
                memory_high: Some(Bytes(3 * GIB)),
                memory_max: Some(Bytes(4 * GIB)),
                cpu_quota: Some(CpuQuota::Percent(300)),
            },
            detail,
        }
    }

    fn keys(n: &Notification) -> Vec<&'static str> {
        n.actions.iter().map(|(a, _)| a.key()).collect()
    }

    #[test]
    fn near_the_hard_limit() {
        let n = Notification::for_alert(&alert(AlertDetail::MemoryNearLimit {
            used: Bytes(3 * GIB + 700 * MIB),
            limit: Bytes(4 * GIB),
            boundary: MemoryBoundary::Max,
            percent: 92.1,
        }));
        assert_eq!(n.summary, "Firefox is close to its memory limit");
        assert_eq!(
            n.body,
            "Firefox uses 3.7 GiB of its 4.0 GiB limit (92 %). If it reaches the limit, the \
             kernel kills it."
        );
        assert_eq!(keys(&n), ["freeze", "raise", "kill", "open"]);
        assert_eq!(n.actions[1].1, "Raise limit to 5.0 GiB");
        assert_eq!(n.actions[3].1, "Open Corral");
        assert_eq!(n.urgency, Urgency::Normal);
        let raise = n.raise.unwrap();
        assert_eq!(
            raise,
            LimitRaise {
                memory_max: Some(Bytes(5 * GIB)),
                ..LimitRaise::default()
            }
        );
        let settings = raise.settings();
        assert_eq!(
            settings.memory_max,
            Some(MemoryLimit::Bytes(Bytes(5 * GIB)))
        );
        assert_eq!((settings.memory_high, settings.cpu_quota), (None, None));
    }

    #[test]
    fn throttled_at_the_soft_limit_raises_it_and_the_hard_one_if_needed() {
        let detail = AlertDetail::MemoryThrottled {
            used: Some(Bytes(3 * GIB)),
            high: Bytes(3 * GIB),
            events: 500,
        };
        let n = Notification::for_alert(&alert(detail));
        assert_eq!(n.summary, "Firefox is slowed down for lack of memory");
        assert_eq!(
            n.body,
            "Firefox uses 3.0 GiB and keeps hitting its 3.0 GiB soft limit, so the kernel slows \
             it down to reclaim memory."
        );
        // 3 GiB + 25 % = 3.75 GiB, still below the 4 GiB hard limit.
        assert_eq!(
            n.raise,
            Some(LimitRaise {
                memory_high: Some(Bytes(3 * GIB + 768 * MIB)),
                ..LimitRaise::default()
            })
        );
        assert_eq!(n.actions[1].1, "Raise soft limit to 3.8 GiB");
        // Soft limit at 3.5 GiB: the step passes the hard limit, which moves too.
        let mut close = alert(AlertDetail::MemoryThrottled {
            used: None,
            high: Bytes(3 * GIB + 512 * MIB),
            events: 1,
        });
        close.limits.memory_high = Some(Bytes(3 * GIB + 512 * MIB));
        assert_eq!(
            raise_step(&close),
            Some(LimitRaise {
                memory_high: Some(Bytes(4 * GIB + 512 * MIB)),
                memory_max: Some(Bytes(5 * GIB)),
                cpu_quota: None,
            })
        );
    }

    #[test]
    fn cpu_and_pressure() {
        let n = Notification::for_alert(&alert(AlertDetail::CpuThrottled {
            throttled_percent: 80.0,
            quota: CpuQuota::Percent(300),
            usage_percent: Some(299.0),
        }));
        assert_eq!(n.summary, "Firefox is held at its CPU limit");
        assert_eq!(
            n.body,
            "Firefox keeps using all the CPU time it is allowed (300 % of one CPU), so it runs \
             slower than it could."
        );
        assert_eq!(n.actions[1].1, "Raise CPU limit to 400 %");
        assert_eq!(n.raise.unwrap().cpu_quota, Some(CpuQuota::Percent(400)));

        let n = Notification::for_alert(&alert(AlertDetail::MemoryPressure {
            some_avg10: 34.6,
            full_avg10: Some(10.0),
            held: Duration::from_secs(12),
        }));
        assert_eq!(n.summary, "Firefox is stalling for memory");
        assert_eq!(
            n.body,
            "Firefox's tasks waited for memory 35 % of the time for 12 s. It may be slow to \
             respond."
        );
        assert_eq!(keys(&n), ["freeze", "raise", "kill", "open"]);

        // No limit to raise: no such button.
        let mut unlimited = alert(AlertDetail::MemoryPressure {
            some_avg10: 30.0,
            full_avg10: None,
            held: Duration::from_secs(10),
        });
        unlimited.limits = UnitLimits::default();
        let n = Notification::for_alert(&unlimited);
        assert_eq!(keys(&n), ["freeze", "kill", "open"]);
        assert_eq!(n.raise, None);
    }

    #[test]
    fn oom_kills_are_critical() {
        let n = Notification::for_alert(&alert(AlertDetail::OomKilled {
            kills: 1,
            limit: Some(Bytes(4 * GIB)),
            peak: Some(Bytes(4 * GIB)),
            unit_ended: true,
            victim: None,
        }));
        assert_eq!(n.summary, "Firefox was killed: out of memory");
        assert_eq!(
            n.body,
            "The kernel's OOM killer ended Firefox at its 4.0 GiB limit. It used at most 4.0 GiB."
        );
        assert_eq!(keys(&n), ["open"], "nothing left to freeze, raise or kill");
        assert_eq!(n.urgency, Urgency::Critical);
        assert_eq!(n.raise, None);

        let n = Notification::for_alert(&alert(AlertDetail::OomKilled {
            kills: 2,
            limit: Some(Bytes(4 * GIB)),
            peak: None,
            unit_ended: false,
            victim: None,
        }));
        assert_eq!(n.summary, "Part of Firefox was killed: out of memory");
        assert_eq!(
            n.body,
            "The kernel's OOM killer killed 2 of its processes at its 4.0 GiB limit; the rest \
             of Firefox still runs."
        );
        assert_eq!(keys(&n), ["raise", "kill", "open"]);
        assert_eq!(n.urgency, Urgency::Critical);

        // The monitor saw which process went: it is named.
        let n = Notification::for_alert(&alert(AlertDetail::OomKilled {
            kills: 1,
            limit: Some(Bytes(4 * GIB)),
            peak: None,
            unit_ended: false,
            victim: Some(crate::monitor::processes::KilledProcess {
                pid: 4242,
                name: "Web Content".to_owned(),
                command: "/usr/lib/firefox/firefox -contentproc".to_owned(),
                memory_bytes: Some(3 * GIB),
            }),
        }));
        assert_eq!(
            n.body,
            "The kernel's OOM killer killed its process Web Content (PID 4242, using 3.0 GiB) \
             at its 4.0 GiB limit; the rest of Firefox still runs."
        );
    }

    #[test]
    fn action_keys_round_trip() {
        for action in [
            NotificationAction::Freeze,
            NotificationAction::RaiseLimit,
            NotificationAction::Kill,
            NotificationAction::Open,
        ] {
            assert_eq!(NotificationAction::from_key(action.key()), Some(action));
        }
        assert_eq!(
            NotificationAction::from_key("default"),
            Some(NotificationAction::Open)
        );
        assert_eq!(NotificationAction::from_key("reboot"), None);
    }

    #[test]
    fn an_id_shows_one_alert_and_belongs_to_one_server() {
        let near = |unit: &str| {
            let mut a = alert(AlertDetail::MemoryNearLimit {
                used: Bytes(4 * GIB),
                limit: Bytes(4 * GIB),
                boundary: MemoryBoundary::Max,
                percent: 95.0,
            });
            a.unit = unit.to_owned();
            a
        };
        let (firefox, code) = (
            near("app-corral-firefox-1.service"),
            near("app-corral-code-2.service"),
        );
        let mut book = NotificationBook::default();
        assert!(!book.serve(Some(":1.10")), "the first server is no change");
        book.shown(&firefox, NotificationId(1));
        // The server gives id 1 to Code's notification: it no longer shows Firefox's, so a
        // button pressed on it acts on Code, and Firefox's next update is a new notification.
        book.shown(&code, NotificationId(1));
        assert_eq!(
            book.alert_for(NotificationId(1)).unwrap().unit,
            "app-corral-code-2.service"
        );
        let Some(NotificationStep::Show { replaces, .. }) =
            book.step(&AlertChange::Updated(firefox.clone()))
        else {
            panic!("an update is shown");
        };
        assert_eq!(replaces, None);
        // The same server again: nothing forgotten. Another server: every id forgotten.
        assert!(!book.serve(Some(":1.10")));
        assert!(book.alert_for(NotificationId(1)).is_some());
        assert!(book.serve(Some(":1.42")));
        assert!(book.alert_for(NotificationId(1)).is_none());
        assert!(
            book.serve(None),
            "no server now: nothing of the old one holds"
        );
    }

    #[test]
    fn one_notification_per_unit_and_condition() {
        let near = |percent: f64| {
            alert(AlertDetail::MemoryNearLimit {
                used: Bytes(4 * GIB),
                limit: Bytes(4 * GIB),
                boundary: MemoryBoundary::Max,
                percent,
            })
        };
        let mut book = NotificationBook::default();
        let raised = AlertChange::Raised(near(91.0));
        let Some(NotificationStep::Show { replaces, .. }) = book.step(&raised) else {
            panic!("a raised alert is shown");
        };
        assert_eq!(replaces, None);
        book.shown(raised.alert(), NotificationId(7));
        let updated = AlertChange::Updated(near(97.0));
        let Some(NotificationStep::Show {
            replaces,
            notification,
        }) = book.step(&updated)
        else {
            panic!("an update is shown in place");
        };
        assert_eq!(replaces, Some(NotificationId(7)));
        assert!(
            notification.body.contains("(97 %)"),
            "{}",
            notification.body
        );
        let key = book.alert_for(NotificationId(7)).unwrap();
        assert_eq!(key.condition, Condition::MemoryNearLimit);
        assert_eq!(
            key.to_string(),
            "app-corral-firefox-1a2b3c4d.service (memory-near-limit)"
        );
        let cleared = AlertChange::Cleared(near(84.0));
        assert_eq!(
            book.step(&cleared),
            Some(NotificationStep::Close(NotificationId(7)))
        );
        assert!(book.closed(NotificationId(7)).is_some());
        assert_eq!(book.step(&cleared), None, "nothing left to close");
        assert_eq!(book.closed(NotificationId(7)), None);
    }
}
