//! A small typed client over the systemd manager: start transient units and wait for the start
//! job, stop, kill, freeze, thaw, change limits, list units and read their state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, Message};

use crate::i18n::{gettext_f, pgettext};
use crate::systemd::names;
use crate::systemd::properties::{ManagerKind, Property, TransientSpec};
use crate::systemd::proxy::{ManagerProxy, UnitRow};

/// How long to wait for a start or stop job. Generous: on the system manager the job only
/// starts once the person has answered polkit's password prompt.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("{}", .manager.unreachable(.source))]
    Unreachable {
        manager: ManagerKind,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("{}", gettext_f("there is no unit “{unit}” (it may have ended); `corral ps --all` lists running apps", &[("unit", .0)]))]
    NoSuchUnit(String),
    #[error("{}", gettext_f("not allowed to {action} “{unit}”: {message}. The system's polkit rules do not let you manage the system manager's units; nothing was started or changed. Ask an administrator, or leave out --system to use your own user manager", &[("action", &action_label(.action)), ("unit", .unit), ("message", .message)]))]
    AccessDenied {
        action: &'static str,
        unit: String,
        message: String,
    },
    #[error("{}", gettext_f("not allowed to {action} “{unit}” without an administrator's password, and no polkit agent is running to ask for it ({message}); nothing was started or changed. Run Corral from a desktop session, or start `pkttyagent` in this terminal first", &[("action", &action_label(.action)), ("unit", .unit), ("message", .message)]))]
    AuthorizationRequired {
        action: &'static str,
        unit: String,
        message: String,
    },
    #[error("{}", gettext_f("a unit named “{unit}” exists already; try again (names are random)", &[("unit", .0)]))]
    UnitExists(String),
    #[error("{}", gettext_f("systemd refused to {action} “{unit}”: {message}", &[("action", &action_label(.action)), ("unit", .unit), ("message", .message)]))]
    Refused {
        action: &'static str,
        unit: String,
        message: String,
    },
    #[error("{}", gettext_f("the {action} job for “{unit}” ended with result “{result}”", &[("action", &action_label(.action)), ("unit", .unit), ("result", .result)]))]
    JobFailed {
        action: &'static str,
        unit: String,
        result: String,
    },
    #[error("{}", gettext_f("systemd did not finish the {action} job for “{unit}” within {seconds} s", &[("action", &action_label(.action)), ("unit", .unit), ("seconds", &JOB_TIMEOUT.as_secs())]))]
    JobTimeout { action: &'static str, unit: String },
    #[error("{}", gettext_f("the bus connection closed while waiting to {action} “{unit}”; is systemd restarting?", &[("action", &action_label(.action)), ("unit", .unit)]))]
    Disconnected { action: &'static str, unit: String },
    #[error("{}", gettext_f("could not {action} “{unit}”: the connection to systemd was lost; Corral reconnects by itself, try again in a moment", &[("action", &action_label(.action)), ("unit", .unit)]))]
    ConnectionLost {
        action: &'static str,
        unit: String,
        manager: ManagerKind,
    },
    #[error("{}", gettext_f("could not {action} “{unit}”: systemd is not on the bus or did not answer (it may be restarting, e.g. after `systemctl --user daemon-reexec`); try again in a moment", &[("action", &action_label(.action)), ("unit", .unit)]))]
    ManagerAway {
        action: &'static str,
        unit: String,
        manager: ManagerKind,
    },
    #[error("{}", gettext_f("D-Bus error while trying to {action} “{unit}”: {error}", &[("action", &action_label(.action)), ("unit", .unit), ("error", .source)]))]
    Bus {
        action: &'static str,
        unit: String,
        #[source]
        source: Box<zbus::Error>,
    },
}

impl ManagerKind {
    /// Why this manager could not be reached, and what to check.
    fn unreachable(self, error: &dyn std::fmt::Display) -> String {
        match self {
            ManagerKind::User => gettext_f(
                "cannot reach the user's systemd manager: {error}. Corral talks to your own systemd (systemd --user) over the session bus; run it inside a desktop or `systemd --user` login session (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR must be set) (`corral doctor` checks the whole setup)",
                &[("error", error)],
            ),
            ManagerKind::System => gettext_f(
                "cannot reach the system systemd manager: {error}. is the system bus running (systemctl status dbus)? (`corral doctor` checks the whole setup)",
                &[("error", error)],
            ),
        }
    }
}

/// What a call was for, as the errors above name it ("not allowed to freeze …"), translated.
fn action_label(action: &str) -> String {
    // TRANSLATORS: these fill {action} in the systemd error messages ("systemd refused to
    // {action} “{unit}”", "the {action} job for “{unit}”"); a noun may fit your language better.
    match action {
        "start" => pgettext("systemd action", "start"),
        "stop" => pgettext("systemd action", "stop"),
        "kill" => pgettext("systemd action", "kill"),
        "freeze" => pgettext("systemd action", "freeze"),
        "thaw" => pgettext("systemd action", "thaw"),
        "change the limits of" => pgettext("systemd action", "change the limits of"),
        "list" => pgettext("systemd action", "list"),
        "look up" => pgettext("systemd action", "look up"),
        "read" => pgettext("systemd action", "read"),
        "watch" => pgettext("systemd action", "watch"),
        other => other.to_owned(),
    }
}

/// Maps a failed call to an error that names the action and the unit.
fn call_error(action: &'static str, unit: &str, err: zbus::Error) -> SystemdError {
    let zbus::Error::MethodError(name, message, _) = &err else {
        return SystemdError::Bus {
            action,
            unit: unit.to_owned(),
            source: Box::new(err),
        };
    };
    let message = message.clone().unwrap_or_default();
    match name.as_str() {
        "org.freedesktop.systemd1.NoSuchUnit" | "org.freedesktop.systemd1.LoadFailed" => {
            SystemdError::NoSuchUnit(unit.to_owned())
        }
        "org.freedesktop.systemd1.UnitExists" => SystemdError::UnitExists(unit.to_owned()),
        "org.freedesktop.DBus.Error.AccessDenied" => SystemdError::AccessDenied {
            action,
            unit: unit.to_owned(),
            message,
        },
        // polkit wanted to ask (auth_admin) but found no agent to ask with.
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
            SystemdError::AuthorizationRequired {
                action,
                unit: unit.to_owned(),
                message,
            }
        }
        // A freeze or kill of a unit that stopped a moment ago.
        "org.freedesktop.systemd1.UnitInactive" | "org.freedesktop.systemd1.NoUnitForPID" => {
            SystemdError::NoSuchUnit(unit.to_owned())
        }
        _ => SystemdError::Refused {
            action,
            unit: unit.to_owned(),
            message: if message.is_empty() {
                name.to_string()
            } else {
                message
            },
        },
    }
}

/// How a service's main process ended (org.freedesktop.systemd1.Service ExecMain*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitOutcome {
    /// systemd's Result: "success", "exit-code", "signal", "oom-kill", ...
    pub result: String,
    /// Exit status, or the signal number when `killed` is true.
    pub status: Option<i32>,
    pub killed: bool,
}

/// Connection to one systemd manager, subscribed to its job and unit signals. Clones share
/// the connection, and [`Systemd::reconnect`] replaces it for all of them: the long-running
/// monitor reconnects after the bus went away, and the controller's next call uses the new
/// connection.
#[derive(Clone)]
pub struct Systemd {
    link: Arc<RwLock<Link>>,
    kind: ManagerKind,
    /// Subscribed to every unit's and job's signals (Subscribe()), or only hearing about the
    /// jobs it queues and the units it holds: see [`Systemd::connect_for_launch`].
    subscribed: bool,
}

/// Every unit's PropertiesChanged on one connection, forwarded to any number of watches.
type UnitChanges = Arc<broadcast::Sender<Message>>;

/// Every JobRemoved on one connection, as (job, result), forwarded to every job waiting.
type JobRemovals = Arc<broadcast::Sender<(OwnedObjectPath, String)>>;

/// JobRemoved signals a waiting job may fall behind by before it may miss its own (then it
/// asks systemd: see [`Systemd::missed_job_result`]).
const JOB_BACKLOG: usize = 1024;

/// One bus connection and the manager's proxy on it.
#[derive(Clone)]
struct Link {
    connection: Connection,
    manager: ManagerProxy<'static>,
    /// Subscribed on this connection's first [`Systemd::watch_end`] and shared by all later
    /// ones, which then cost no AddMatch round trip to the bus. A new connection starts
    /// without: the old one's subscription went with it.
    unit_changes: Arc<tokio::sync::OnceCell<UnitChanges>>,
    /// Subscribed on this connection's first job and shared by all later ones, like
    /// `unit_changes`: a launch then costs no AddMatch and RemoveMatch round trips.
    job_removals: Arc<tokio::sync::OnceCell<JobRemovals>>,
}

impl Link {
    async fn open(kind: ManagerKind, subscribed: bool) -> Result<Link, SystemdError> {
        let unreachable = |source| SystemdError::Unreachable {
            manager: kind,
            source: Box::new(source),
        };
        let connection = match kind {
            ManagerKind::User => Connection::session().await,
            ManagerKind::System => Connection::system().await,
        }
        .map_err(unreachable)?;
        let manager = ManagerProxy::new(&connection).await.map_err(unreachable)?;
        // Subscribe() also proves the manager is there (a bus without systemd answers
        // ServiceUnknown), and without it systemd sends only the signals of the client's own
        // jobs and held units (see `connect_for_launch`).
        if subscribed {
            subscribe(&manager).await.map_err(unreachable)?;
        }
        Ok(Link {
            connection,
            manager,
            unit_changes: Arc::default(),
            job_removals: Arc::default(),
        })
    }
}

/// Subscribe(), where a manager that still knows us is fine: systemd 252 keeps its
/// subscribers across `daemon-reexec` and answers a second Subscribe with AlreadySubscribed.
async fn subscribe(manager: &ManagerProxy<'static>) -> zbus::Result<()> {
    match manager.subscribe().await {
        Err(zbus::Error::MethodError(name, ..))
            if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" =>
        {
            Ok(())
        }
        other => other,
    }
}

impl Systemd {
    pub async fn connect(kind: ManagerKind) -> Result<Systemd, SystemdError> {
        Ok(Systemd {
            link: Arc::new(RwLock::new(Link::open(kind, true).await?)),
            kind,
            subscribed: true,
        })
    }

    /// A connection for a command that launches a unit and follows that unit alone (`corral
    /// run`, `corral launch`), set up in one round trip's wait instead of five. No Subscribe():
    /// systemd sends a job's JobRemoved to the client that queued it, and a unit's
    /// PropertiesChanged to the clients holding a reference to it (AddRef=, which every launch
    /// sets), subscribed or not (`bus_foreach_bus()` in systemd's src/core/dbus.c); a
    /// subscription would only make systemd announce every other unit's changes to the bus
    /// while the launch waits. The JobRemoved and unit-change matches a launch listens to are
    /// added at once, not one after the other. Not for watching units it did not start.
    pub async fn connect_for_launch(kind: ManagerKind) -> Result<Systemd, SystemdError> {
        let link = Link::open(kind, false).await?;
        let (changes, jobs) = tokio::join!(
            link.unit_changes
                .get_or_try_init(|| subscribe_unit_changes(&link.connection)),
            link.job_removals
                .get_or_try_init(|| subscribe_job_removals(&link.connection)),
        );
        if let Err(source) = changes.and(jobs) {
            return Err(SystemdError::Unreachable {
                manager: kind,
                source: Box::new(source),
            });
        }
        Ok(Systemd {
            link: Arc::new(RwLock::new(link)),
            kind,
            subscribed: false,
        })
    }

    pub fn kind(&self) -> ManagerKind {
        self.kind
    }

    fn link(&self) -> Link {
        // A panic while holding the lock cannot leave a Link half-written: take it regardless.
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current bus connection (a new one after [`Systemd::reconnect`]).
    pub fn connection(&self) -> Connection {
        self.link().connection
    }

    pub fn manager(&self) -> ManagerProxy<'static> {
        self.link().manager
    }

    /// Whether the bus connection is gone (the bus daemon stopped or dropped us).
    pub fn is_disconnected(&self) -> bool {
        self.link().connection.is_closed()
    }

    /// Opens a new bus connection and subscribes again, for every clone of this client.
    pub async fn reconnect(&self) -> Result<(), SystemdError> {
        let link = Link::open(self.kind, self.subscribed).await?;
        *self.link.write().unwrap_or_else(|e| e.into_inner()) = link;
        Ok(())
    }

    /// Subscribes again on the current connection, e.g. once the manager is back on the bus
    /// under a new unique name. A manager that kept the subscription is fine too.
    pub async fn resubscribe(&self) -> Result<(), SystemdError> {
        subscribe(&self.manager())
            .await
            .map_err(|e| self.call_error("subscribe to", "org.freedesktop.systemd1", e))
    }

    /// [`call_error`], told apart when the connection or the manager is gone.
    fn call_error(&self, action: &'static str, unit: &str, err: zbus::Error) -> SystemdError {
        if self.is_disconnected() {
            return SystemdError::ConnectionLost {
                action,
                unit: unit.to_owned(),
                manager: self.kind,
            };
        }
        if let zbus::Error::MethodError(name, ..) = &err
            && matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    // A manager that re-executes drops the calls it has not answered yet.
                    | "org.freedesktop.DBus.Error.NoReply"
            )
        {
            return SystemdError::ManagerAway {
                action,
                unit: unit.to_owned(),
                manager: self.kind,
            };
        }
        call_error(action, unit, err)
    }

    /// Starts a transient unit and waits for its start job. `extra` carries properties that
    /// the pure builder cannot hold, such as file descriptors.
    pub async fn start_transient(
        &self,
        spec: &TransientSpec,
        extra: Vec<Property>,
    ) -> Result<(), SystemdError> {
        let mut props = spec.properties();
        props.extend(extra);
        let name = spec.name.as_str();
        self.run_job("start", name, async {
            self.manager()
                .start_transient_unit(name, "fail", &props, &[])
                .await
        })
        .await
    }

    /// Stops a unit (SIGTERM, then SIGKILL after its stop timeout) and waits until it has.
    pub async fn stop(&self, unit: &str) -> Result<(), SystemdError> {
        self.run_job("stop", unit, async {
            self.manager().stop_unit(unit, "replace").await
        })
        .await
    }

    /// Sends `signal` to every process of the unit.
    pub async fn kill(&self, unit: &str, signal: i32) -> Result<(), SystemdError> {
        self.manager()
            .kill_unit(unit, "all", signal)
            .await
            .map_err(|e| self.call_error("kill", unit, e))
    }

    /// Sends `signal` to every process of the unit and waits, up to `timeout`, until systemd
    /// reports the unit inactive or failed. Returns whether it ended in time. Event-driven: the
    /// unit's end is watched from before the kill (see [`Systemd::watch_end`]).
    pub async fn kill_and_wait(
        &self,
        unit: &str,
        signal: i32,
        timeout: Duration,
    ) -> Result<bool, SystemdError> {
        let mut end = self.watch_end(unit).await?;
        self.kill(unit, signal).await?;
        if end.ended(Some(timeout)).await {
            return Ok(true);
        }
        // No announcement seen (a unit that was stopping already): ask once.
        Ok(matches!(
            self.active_state(unit).await.as_deref(),
            None | Some("inactive" | "failed")
        ))
    }

    /// Starts watching for the unit's end: its PropertiesChanged announcing ActiveState
    /// "inactive" or "failed" (org.freedesktop.systemd1(5): ActiveState emits change signals).
    /// Set up before whatever ends the unit, the end is seen the moment systemd says it,
    /// without polling. One subscription to every unit's changes serves all watches of this
    /// connection: the first watch pays for the AddMatch, later ones are free.
    pub async fn watch_end(&self, unit: &str) -> Result<EndWatch, SystemdError> {
        Ok(self.watch_ends(unit).await?.of(unit))
    }

    /// Starts watching every unit's end, for a unit whose name is not known yet (one about to
    /// be started): [`EndWatches::of`] then picks it, with nothing missed in between. `unit`
    /// names what the watch is for in an error.
    pub async fn watch_ends(&self, unit: &str) -> Result<EndWatches, SystemdError> {
        let link = self.link();
        let changes = link
            .unit_changes
            .get_or_try_init(|| subscribe_unit_changes(&link.connection))
            .await
            .map_err(|e| call_error("watch", unit, e))?;
        Ok(EndWatches(changes.subscribe()))
    }

    /// Freezes the unit's whole cgroup (cgroup.freeze), which no process can notice or resist,
    /// unlike SIGSTOP.
    pub async fn freeze(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager()
            .freeze_unit(unit)
            .await
            .map_err(|e| self.call_error("freeze", unit, e))
    }

    pub async fn thaw(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager()
            .thaw_unit(unit)
            .await
            .map_err(|e| self.call_error("thaw", unit, e))
    }

    /// Changes properties of a running unit until it ends (runtime=true: nothing is written
    /// to the persistent configuration).
    pub async fn set_properties(&self, unit: &str, props: &[Property]) -> Result<(), SystemdError> {
        self.manager()
            .set_unit_properties(unit, true, props)
            .await
            .map_err(|e| self.call_error("change the limits of", unit, e))
    }

    /// Makes systemd read its unit files and drop-ins again (daemon-reload), which also
    /// applies changed limits to running units.
    pub async fn reload(&self) -> Result<(), SystemdError> {
        self.manager()
            .reload()
            .await
            .map_err(|e| self.call_error("reload", "the manager", e))
    }

    /// The drop-in files systemd applied to a loaded unit, in the order it applied them.
    pub async fn drop_in_paths(&self, unit: &str) -> Result<Vec<String>, SystemdError> {
        let path = self.unit_path(unit).await?;
        let value = self
            .property(&path, "org.freedesktop.systemd1.Unit", "DropInPaths")
            .await
            .map_err(|e| self.call_error("read", unit, e))?;
        Vec::<String>::try_from(value).map_err(|e| self.call_error("read", unit, e.into()))
    }

    /// The unit's OOMPolicy= ("stop", "continue", "kill"); `None` where the unit's type has no
    /// such property (scopes before systemd 253, unless the distribution backported it).
    pub async fn oom_policy(&self, unit: &str) -> Option<String> {
        let path = self.unit_path(unit).await.ok()?;
        let value = self
            .property(&path, unit_interface(unit), "OOMPolicy")
            .await
            .ok()?;
        String::try_from(value).ok()
    }

    /// Keeps a unit loaded after it ends, until [`Systemd::unref`] or until this connection
    /// closes (systemd tracks the reference by bus name), so that why it ended can still be
    /// read: an app unit (CollectMode=inactive-or-failed) is otherwise unloaded at once.
    /// `false` when the unit is gone already.
    pub async fn hold(&self, unit: &str) -> bool {
        self.manager().ref_unit(unit).await.is_ok()
    }

    /// Lets go of the reference taken with AddRef= or [`Systemd::hold`], so an ended unit can
    /// be collected.
    pub async fn unref(&self, unit: &str) {
        // No reply is asked for or awaited: a failure would only mean the unit is gone already,
        // and a command about to exit need not wait a round trip to learn that. systemd handles
        // one connection's calls in order, so a later call of this client finds it released.
        let sent = async {
            let message = Message::method_call("/org/freedesktop/systemd1", "UnrefUnit")?
                .destination(MANAGER_NAME)?
                .interface("org.freedesktop.systemd1.Manager")?
                .with_flags(zbus::message::Flags::NoReplyExpected)?
                .build(&(unit,))?;
            self.connection().send(&message).await
        };
        let _ = sent.await;
    }

    /// Loaded units whose names match any of `patterns` (shell globs).
    pub async fn list_units(&self, patterns: &[&str]) -> Result<Vec<UnitRow>, SystemdError> {
        self.manager()
            .list_units_by_patterns(&[], patterns)
            .await
            .map_err(|e| self.call_error("list", &patterns.join(" "), e))
    }

    async fn unit_path(&self, unit: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.manager()
            .get_unit(unit)
            .await
            .map_err(|e| self.call_error("look up", unit, e))
    }

    /// One property of a unit, read without setting up a caching proxy.
    pub async fn property(
        &self,
        path: &OwnedObjectPath,
        interface: &str,
        name: &str,
    ) -> Result<OwnedValue, zbus::Error> {
        let reply = self
            .connection()
            .call_method(
                Some("org.freedesktop.systemd1"),
                path.as_ref(),
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(interface, name),
            )
            .await?;
        reply.body().deserialize::<OwnedValue>()
    }

    /// The unit's cgroup path relative to the cgroup root ("" while it has none).
    pub async fn control_group(
        &self,
        unit: &str,
        path: &OwnedObjectPath,
    ) -> Result<String, SystemdError> {
        let interface = unit_interface(unit);
        let value = self
            .property(path, interface, "ControlGroup")
            .await
            .map_err(|e| self.call_error("read", unit, e))?;
        String::try_from(value).map_err(|e| self.call_error("read", unit, e.into()))
    }

    /// Waits until the unit is inactive or failed, then reads how it ended. Needs the unit to
    /// stay loaded after it ends (AddRef=) to read the outcome.
    pub async fn wait_for_end(&self, unit: &str) -> Result<UnitOutcome, SystemdError> {
        // Watch first, then look: an end between the two is seen either way.
        let mut end = self.watch_end(unit).await?;
        let path = held_unit_path(unit).map_err(|e| self.call_error("watch", unit, e.into()))?;
        loop {
            let state = self
                .property(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
                .await
                .map_err(|e| self.call_error("watch", unit, e))?;
            if matches!(<&str>::try_from(&state), Ok("inactive" | "failed")) {
                break;
            }
            // Look again now and then: a watch that fell behind may have missed the end.
            if end.ended(Some(Duration::from_secs(5))).await {
                break;
            }
        }
        self.outcome(unit, &path).await
    }

    /// How a loaded, ended unit finished.
    pub async fn outcome(
        &self,
        unit: &str,
        path: &OwnedObjectPath,
    ) -> Result<UnitOutcome, SystemdError> {
        let interface = unit_interface(unit);
        let read = |name: &'static str| async move {
            self.property(path, interface, name)
                .await
                .map_err(|e| self.call_error("read", unit, e))
        };
        if interface == SCOPE_INTERFACE {
            let result = String::try_from(read("Result").await?).unwrap_or_default();
            return Ok(UnitOutcome {
                result,
                status: None,
                killed: false,
            });
        }
        // Three independent Gets in flight at once: one round trip's wait, not three.
        let (result, code, status) =
            futures_util::try_join!(read("Result"), read("ExecMainCode"), read("ExecMainStatus"))?;
        let result = String::try_from(result).unwrap_or_default();
        let code = i32::try_from(code).unwrap_or(0);
        let status = i32::try_from(status).ok();
        Ok(UnitOutcome {
            result,
            status,
            // CLD_KILLED (2) and CLD_DUMPED (3): ExecMainStatus holds the signal.
            killed: code == 2 || code == 3,
        })
    }

    /// The Result of a unit this connection holds (AddRef=, [`Systemd::hold`]), which is then
    /// loaded: its object path is its escaped name, and no GetUnit round trip looks it up.
    pub async fn result_of_held(&self, unit: &str) -> Option<String> {
        let path = held_unit_path(unit).ok()?;
        let value = self
            .property(&path, unit_interface(unit), "Result")
            .await
            .ok()?;
        String::try_from(value).ok()
    }

    /// The unit's ActiveState, or `None` if it is not loaded.
    pub async fn active_state(&self, unit: &str) -> Option<String> {
        let path = self.unit_path(unit).await.ok()?;
        let value = self
            .property(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
            .await
            .ok()?;
        String::try_from(value).ok()
    }

    pub async fn object_path(&self, unit: &str) -> Result<OwnedObjectPath, SystemdError> {
        self.unit_path(unit).await
    }

    /// Every JobRemoved of this connection from now on, through the connection's one
    /// subscription (made by its first job).
    async fn job_removals(&self) -> zbus::Result<broadcast::Receiver<(OwnedObjectPath, String)>> {
        let link = self.link();
        let sender = link
            .job_removals
            .get_or_try_init(|| subscribe_job_removals(&link.connection))
            .await?;
        Ok(sender.subscribe())
    }

    /// What became of a job whose JobRemoved this listener may have missed, having fallen
    /// behind a burst of other jobs' signals: `None` while systemd still has the job; once it
    /// is gone, "failed" if its unit is in the failed state, else "done". systemd keeps no
    /// record of a finished job, so a job that failed on a unit already collected reads as
    /// done here; the caller's next step (reading the unit) then finds the unit gone.
    async fn missed_job_result(&self, job: &OwnedObjectPath, unit: &str) -> Option<String> {
        if self
            .property(job, "org.freedesktop.systemd1.Job", "State")
            .await
            .is_ok()
        {
            return None;
        }
        let failed = match self.unit_path(unit).await {
            Ok(path) => self
                .property(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
                .await
                .is_ok_and(|state| <&str>::try_from(&state) == Ok("failed")),
            Err(_) => false,
        };
        Some(if failed { "failed" } else { "done" }.to_owned())
    }

    /// Makes the call that queues a job and waits for systemd's JobRemoved for that job.
    async fn run_job(
        &self,
        action: &'static str,
        unit: &str,
        call: impl Future<Output = zbus::Result<OwnedObjectPath>>,
    ) -> Result<(), SystemdError> {
        // Listen before calling: a fast job can finish before the call's reply arrives.
        let mut removed = self
            .job_removals()
            .await
            .map_err(|e| self.call_error(action, unit, e))?;
        // The signals are read while the call waits for its reply, too, so that the shared
        // backlog does not fill up with other jobs' ends (300 units stopping). Results of jobs
        // that end before our job's path is known are kept, a bounded number of them.
        let call = async { call.await.map_err(|e| self.call_error(action, unit, e)) };
        let wait = async {
            tokio::pin!(call);
            let mut job: Option<OwnedObjectPath> = None;
            let mut early: std::collections::VecDeque<(OwnedObjectPath, String)> =
                std::collections::VecDeque::new();
            // Whether this listener fell behind and may have missed signals.
            let mut lagged = false;
            // The time allowed starts with the job: the call may wait for a polkit prompt.
            let mut deadline = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
            loop {
                tokio::select! {
                    reply = &mut call, if job.is_none() => {
                        let path = reply?;
                        if let Some((_, result)) = early.iter().find(|(j, _)| *j == path) {
                            return Ok(Some(result.clone()));
                        }
                        if lagged && let Some(result) = self.missed_job_result(&path, unit).await {
                            return Ok(Some(result));
                        }
                        job = Some(path);
                        deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
                    }
                    () = tokio::time::sleep_until(deadline) => return Err(SystemdError::JobTimeout {
                        action,
                        unit: unit.to_owned(),
                    }),
                    received = removed.recv() => {
                        let (ended, result) = match received {
                            Ok(removal) => removal,
                            Err(broadcast::error::RecvError::Closed) => return Ok(None),
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                lagged = true;
                                if let Some(job) = &job
                                    && let Some(result) = self.missed_job_result(job, unit).await
                                {
                                    return Ok(Some(result));
                                }
                                continue;
                            }
                        };
                        match &job {
                            Some(job) if ended == *job => return Ok(Some(result)),
                            Some(_) => {}
                            None => {
                                if early.len() == JOB_BACKLOG {
                                    early.pop_front();
                                }
                                early.push_back((ended, result));
                            }
                        }
                    }
                }
            }
        };
        match wait.await? {
            Some(result) if result == "done" => Ok(()),
            Some(result) => Err(SystemdError::JobFailed {
                action,
                unit: unit.to_owned(),
                result,
            }),
            None => Err(SystemdError::Disconnected {
                action,
                unit: unit.to_owned(),
            }),
        }
    }
}

/// The object path of a unit this client holds (AddRef=, [`Systemd::hold`]): loaded, so its
/// path is its escaped name, with no GetUnit round trip to look it up.
pub fn held_unit_path(unit: &str) -> Result<OwnedObjectPath, zbus::zvariant::Error> {
    OwnedObjectPath::try_from(names::object_path(unit))
}

/// The manager's well-known name on the bus.
const MANAGER_NAME: &str = "org.freedesktop.systemd1";

/// The manager's signals that match `rule` on `connection`, from the manager alone.
///
/// Any client may send a signal with a unit's path and interface (on the system bus, any user),
/// and one saying "inactive" would end a `corral run --wait` or make `corral kill` report a kill
/// that did not happen. The rule names the manager as sender, which the bus matches against the
/// name's current owner; the stream checks the sender's unique name too, since another rule of
/// this connection could let others through. The match and the question of who owns the name
/// go out together: one round trip's wait, not two.
async fn manager_signals(
    connection: &Connection,
    rule: zbus::MatchRule<'static>,
) -> zbus::Result<impl futures_util::Stream<Item = Message> + use<>> {
    let bus = zbus::fdo::DBusProxy::new(connection).await?;
    let manager_name = zbus::names::BusName::try_from(MANAGER_NAME)?;
    let owner_of_manager = move || {
        let (bus, name) = (bus.clone(), manager_name.clone());
        async move { bus.get_name_owner(name).await.ok().map(|o| o.to_string()) }
    };
    let (stream, manager) = tokio::join!(
        zbus::MessageStream::for_match_rule(rule, connection, Some(64)),
        owner_of_manager()
    );
    let stream = stream?;
    Ok(futures_util::stream::unfold(
        (stream, manager, owner_of_manager),
        |(mut stream, mut manager, owner_of_manager)| async move {
            while let Some(Ok(message)) = stream.next().await {
                let from = message.header().sender().map(|s| s.to_string());
                if from.is_none() || from != manager {
                    // The manager may be back under a new unique name (daemon-reexec): ask once.
                    manager = owner_of_manager().await;
                    if from.is_none() || from != manager {
                        continue;
                    }
                }
                return Some((message, (stream, manager, owner_of_manager)));
            }
            None
        },
    ))
}

/// Subscribes to PropertiesChanged of every unit's Unit interface on `connection` and forwards
/// them to a broadcast channel, for as long as the connection's `Link` is in use.
async fn subscribe_unit_changes(connection: &Connection) -> zbus::Result<UnitChanges> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(MANAGER_NAME)?
        .path_namespace("/org/freedesktop/systemd1/unit")?
        .interface("org.freedesktop.DBus.Properties")?
        .member("PropertiesChanged")?
        .arg(0, "org.freedesktop.systemd1.Unit")?
        .build();
    forward_manager_signals(connection, rule, 64, Some).await
}

/// Subscribes to the manager's JobRemoved on its connection and forwards (job, result) to a
/// broadcast channel, for as long as the connection's `Link` is in use. A plain match rule
/// rather than the proxy's signal stream, which would add a match on the name's owner changes
/// and ask for its owner before its own match: three round trips instead of one.
async fn subscribe_job_removals(connection: &Connection) -> zbus::Result<JobRemovals> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(MANAGER_NAME)?
        .path("/org/freedesktop/systemd1")?
        .interface("org.freedesktop.systemd1.Manager")?
        .member("JobRemoved")?
        .build();
    forward_manager_signals(connection, rule, JOB_BACKLOG, |message| {
        // JobRemoved(u id, o job, s unit, s result), org.freedesktop.systemd1(5).
        let (_, job, _, result) = message
            .body()
            .deserialize::<(u32, OwnedObjectPath, String, String)>()
            .ok()?;
        Some((job, result))
    })
    .await
}

/// The manager's signals matching `rule` (see [`manager_signals`]), each turned into a `T` by
/// `convert` (`None` skips it) and sent to a broadcast channel of `capacity`, for as long as
/// the connection's `Link` holds the sender.
async fn forward_manager_signals<T: Clone + Send + 'static>(
    connection: &Connection,
    rule: zbus::MatchRule<'static>,
    capacity: usize,
    convert: fn(Message) -> Option<T>,
) -> zbus::Result<Arc<broadcast::Sender<T>>> {
    let stream = manager_signals(connection, rule).await?;
    let sender = Arc::new(broadcast::channel(capacity).0);
    let forward = Arc::downgrade(&sender);
    tokio::spawn(async move {
        tokio::pin!(stream);
        while let Some(message) = stream.next().await {
            // The connection's Link is gone (every clone of the Systemd, or replaced after a
            // reconnect): end, and the subscription with it.
            let Some(sender) = forward.upgrade() else {
                return;
            };
            let Some(item) = convert(message) else {
                continue;
            };
            // Nobody listening right now is fine.
            let _ = sender.send(item);
        }
    });
    Ok(sender)
}

/// Every unit's changes being watched, from [`Systemd::watch_ends`].
pub struct EndWatches(broadcast::Receiver<Message>);

impl EndWatches {
    /// The watch of one unit's end, with every change since the watch began.
    pub fn of(self, unit: &str) -> EndWatch {
        EndWatch {
            path: names::object_path(unit),
            changes: self.0,
        }
    }
}

/// A unit's end being watched, from [`Systemd::watch_end`].
pub struct EndWatch {
    /// The unit's object path: the changes of every unit arrive here.
    path: String,
    changes: broadcast::Receiver<Message>,
}

impl EndWatch {
    /// Waits until systemd announces the unit inactive or failed: true then; false when
    /// `timeout` passes first, the connection closes, or the watch fell so far behind that it
    /// may have missed the announcement (then ask systemd).
    pub async fn ended(&mut self, timeout: Option<Duration>) -> bool {
        let ended = async {
            while let Ok(message) = self.changes.recv().await {
                if message.header().path().map(|p| p.as_str()) != Some(self.path.as_str()) {
                    continue;
                }
                type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);
                let Ok((_, changed, _)) = message.body().deserialize::<Changed>() else {
                    continue;
                };
                let state = changed
                    .get("ActiveState")
                    .and_then(|v| <&str>::try_from(v).ok());
                if matches!(state, Some("inactive" | "failed")) {
                    return true;
                }
            }
            false
        };
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, ended).await == Ok(true),
            None => ended.await,
        }
    }
}

const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
const SCOPE_INTERFACE: &str = "org.freedesktop.systemd1.Scope";

fn unit_interface(unit: &str) -> &'static str {
    if unit.ends_with(".scope") {
        SCOPE_INTERFACE
    } else {
        SERVICE_INTERFACE
    }
}
