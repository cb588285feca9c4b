//! The monitor when the bus goes away under it, against a stand-in systemd manager on a private
//! dbus-daemon: the manager re-executes (leaves the bus, comes back under a new unique name,
//! here having forgotten its subscribers), and the bus daemon itself stops and a new one starts
//! on the same socket. Each time the monitor must say so, subscribe again, list again, and
//! follow new units by their signals; while the bus is away it retries with a growing delay
//! and keeps the units it knows. The real thing is checked in the guest (tests/vm/guest/faults.sh).
//!
//! One test in this binary: the session bus is named by DBUS_SESSION_BUS_ADDRESS, set once,
//! before any other thread runs.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Reaped, announce_end, private_bus};
use corral::cgroup::CgroupFs;
use corral::controller::Controller;
use corral::limits::{Bytes, CpuQuota};
use corral::monitor::alerts::{Alert, AlertChange, AlertDetail, MemoryBoundary, UnitLimits};
use corral::monitor::service::{Monitor, MonitorOptions, MonitorState};
use corral::notify::{Notifier, deliver_alerts};
use corral::systemd::{ManagerKind, Systemd};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

/// What the stand-in manager knows: its units and who subscribed.
#[derive(Default)]
struct Books {
    units: Vec<String>,
    subscribers: HashSet<String>,
    subscribe_calls: usize,
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum ManagerError {
    #[zbus(error)]
    ZBus(zbus::Error),
    AlreadySubscribed(String),
    NoSuchUnit(String),
}

struct Manager {
    books: Arc<Mutex<Books>>,
}

fn unit_path(unit: &str) -> OwnedObjectPath {
    let escaped: String = unit
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("_{b:02x}"),
        })
        .collect();
    ObjectPath::try_from(format!("/org/freedesktop/systemd1/unit/{escaped}"))
        .unwrap()
        .into()
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) -> Result<(), ManagerError> {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let mut books = self.books.lock().unwrap();
        books.subscribe_calls += 1;
        if books.subscribers.insert(sender) {
            Ok(())
        } else {
            Err(ManagerError::AlreadySubscribed(
                "Client is already subscribed.".into(),
            ))
        }
    }

    async fn list_units_by_patterns(
        &self,
        _states: Vec<String>,
        _patterns: Vec<String>,
    ) -> Vec<Row> {
        let root: OwnedObjectPath = ObjectPath::try_from("/").unwrap().into();
        self.books
            .lock()
            .unwrap()
            .units
            .iter()
            .map(|unit| {
                (
                    unit.clone(),
                    format!("{unit} [corral: test]"),
                    "loaded".into(),
                    "active".into(),
                    "running".into(),
                    String::new(),
                    unit_path(unit),
                    0,
                    String::new(),
                    root.clone(),
                )
            })
            .collect()
    }

    async fn get_unit(&self, name: &str) -> Result<OwnedObjectPath, ManagerError> {
        if self.books.lock().unwrap().units.iter().any(|u| u == name) {
            Ok(unit_path(name))
        } else {
            Err(ManagerError::NoSuchUnit(format!("Unit {name} not loaded.")))
        }
    }

    /// Stopping takes a moment, and 100 other jobs end while the call is answered: more than
    /// a zbus signal queue holds (64).
    async fn stop_unit(
        &self,
        name: String,
        _mode: &str,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let fail = |e: zbus::Error| zbus::fdo::Error::Failed(e.to_string());
        for i in 0..100u32 {
            let other = ObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{}", 1000 + i))
                .unwrap();
            Manager::job_removed(&emitter, 1000 + i, other, "other.service", "done")
                .await
                .map_err(fail)?;
        }
        let job: OwnedObjectPath = ObjectPath::try_from("/org/freedesktop/systemd1/job/7")
            .unwrap()
            .into();
        let emitter = emitter.into_owned();
        let path = job.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = Manager::job_removed(&emitter, 7, path.as_ref(), &name, "done").await;
        });
        Ok(job)
    }

    #[zbus(signal)]
    async fn unit_new(
        emitter: &SignalEmitter<'_>,
        id: &str,
        unit: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn unit_removed(
        emitter: &SignalEmitter<'_>,
        id: &str,
        unit: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A unit's cgroup path, as its Service interface gives it.
struct Service {
    control_group: String,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl Service {
    #[zbus(property)]
    async fn control_group(&self) -> String {
        self.control_group.clone()
    }
}

/// One incarnation of the manager: a connection owning org.freedesktop.systemd1.
struct FakeSystemd {
    connection: zbus::Connection,
    books: Arc<Mutex<Books>>,
}

impl FakeSystemd {
    /// Starts a manager with `units`, each with a cgroup below `cgroups`.
    async fn start(address: &str, units: &[&str], cgroups: &Path) -> FakeSystemd {
        let books = Arc::new(Mutex::new(Books::default()));
        let connection = zbus::connection::Builder::address(address)
            .unwrap()
            .serve_at(
                "/org/freedesktop/systemd1",
                Manager {
                    books: Arc::clone(&books),
                },
            )
            .unwrap()
            .build()
            .await
            .unwrap();
        let fake = FakeSystemd { connection, books };
        for unit in units {
            fake.add_unit(unit, cgroups, false).await;
        }
        fake.connection
            .request_name("org.freedesktop.systemd1")
            .await
            .unwrap();
        fake
    }

    /// Adds a unit with a cgroup directory; `announce` sends UnitNew, as systemd does only
    /// while someone is subscribed.
    async fn add_unit(&self, unit: &str, cgroups: &Path, announce: bool) {
        let control_group = format!("/app.slice/{unit}");
        let dir = cgroups.join(control_group.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.current"), "1048576\n").unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        self.connection
            .object_server()
            .at(unit_path(unit), Service { control_group })
            .await
            .unwrap();
        let subscribed = {
            let mut books = self.books.lock().unwrap();
            books.units.push(unit.to_owned());
            !books.subscribers.is_empty()
        };
        if announce && subscribed {
            let emitter =
                SignalEmitter::new(&self.connection, "/org/freedesktop/systemd1").unwrap();
            Manager::unit_new(&emitter, unit, unit_path(unit).as_ref())
                .await
                .unwrap();
        }
    }

    /// Many units end at once: each is announced by UnitRemoved, all before the next listing.
    async fn end_units(&self, units: &[String]) {
        self.books
            .lock()
            .unwrap()
            .units
            .retain(|u| !units.contains(u));
        let emitter = SignalEmitter::new(&self.connection, "/org/freedesktop/systemd1").unwrap();
        for unit in units {
            Manager::unit_removed(&emitter, unit, unit_path(unit).as_ref())
                .await
                .unwrap();
        }
    }

    fn subscribers(&self) -> usize {
        self.books.lock().unwrap().subscribers.len()
    }
}

fn units_of(state: &MonitorState) -> Vec<String> {
    state.units.iter().map(|s| s.info.unit.clone()).collect()
}

/// Waits up to `limit` for the monitor's state to satisfy `check`; returns it and how long
/// that took.
async fn wait_state(
    monitor: &Monitor,
    limit: Duration,
    what: &str,
    check: impl Fn(&MonitorState) -> bool,
) -> (Arc<MonitorState>, Duration) {
    let start = Instant::now();
    let mut updates = monitor.subscribe();
    loop {
        let state = updates.borrow_and_update().clone();
        if check(&state) {
            return (state, start.elapsed());
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() || tokio::time::timeout(left, updates.changed()).await.is_err() {
            panic!(
                "{what}: not within {limit:?}; last state: units {:?}, problem {:?}",
                units_of(&state),
                state.problem
            );
        }
    }
}

/// A new dbus-daemon listening where the old one did.
fn restart_bus(dir: &Path) -> Reaped {
    let _ = std::fs::remove_file(dir.join("bus"));
    private_bus(dir).0
}

fn notified(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"call\":\"Notify\""))
        .count()
}

fn near_limit(unit: &str) -> Alert {
    Alert {
        unit: unit.to_owned(),
        app_name: "A".to_owned(),
        app_id: Some("a".to_owned()),
        preset: None,
        limits: UnitLimits {
            memory_high: None,
            memory_max: Some(Bytes(Bytes::GIB)),
            cpu_quota: Some(CpuQuota::Percent(100)),
        },
        detail: AlertDetail::MemoryNearLimit {
            used: Bytes(Bytes::GIB / 100 * 95),
            limit: Bytes(Bytes::GIB),
            boundary: MemoryBoundary::Max,
            percent: 95.0,
        },
    }
}

const A: &str = "app-corral-a-00000001.service";
const B: &str = "app-corral-b-00000002.service";
const C: &str = "app-corral-c-00000003.service";
const D: &str = "app-corral-d-00000004.service";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_survives_a_reexecuting_manager_and_a_restarted_bus() {
    let dir = tempfile::tempdir().unwrap();
    let cgroups: PathBuf = dir.path().join("cgroup");
    let (bus, _) = private_bus(dir.path());
    // As systemd's user bus gives it: a path and no guid=, so a new bus daemon on the same
    // socket is the same address.
    let address = format!("unix:path={}", dir.path().join("bus").display());
    // SAFETY: the only test in this binary, before any thread of ours reads the environment.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address) };

    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[general]\nmemory-warning = 70\n").unwrap();
    let first = FakeSystemd::start(&address, &[A], &cgroups).await;
    let systemd = Systemd::connect(ManagerKind::User).await.unwrap();
    assert_eq!(first.subscribers(), 1, "connect subscribes");
    let monitor = Monitor::spawn_with(
        systemd.clone(),
        CgroupFs::new(&cgroups),
        Duration::from_millis(100),
        MonitorOptions {
            config_file: Some(config.clone()),
            ..MonitorOptions::default()
        },
    );
    wait_state(&monitor, Duration::from_secs(5), "the first listing", |s| {
        units_of(s) == [A] && s.problem.is_none()
    })
    .await;
    // Alerts go to a notification server on the same bus.
    let first_server_log = dir.path().join("first-server.jsonl");
    let first_server = common::start_recorder(&first_server_log, None, &[]);
    let (alerts, changes) = tokio::sync::broadcast::channel(16);
    let (open, _opened) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(deliver_alerts(
        Some(Notifier::connect().await.unwrap()),
        changes,
        tokio::sync::watch::channel(Default::default()).1,
        Controller::new(systemd.clone(), CgroupFs::new(&cgroups)),
        open,
    ));
    alerts.send(AlertChange::Raised(near_limit(A))).unwrap();
    let start = Instant::now();
    while notified(&first_server_log) == 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(notified(&first_server_log), 1, "notified on the first bus");

    // The manager re-executes: its connection goes, and a new one (that forgot its
    // subscribers) takes the name with one more unit.
    first.connection.close().await.unwrap();
    let second = FakeSystemd::start(&address, &[A, B], &cgroups).await;
    let (_, took) = wait_state(
        &monitor,
        Duration::from_secs(3),
        "relisted after the re-execution",
        |s| units_of(s) == [A, B] && s.problem.is_none(),
    )
    .await;
    println!("relisted {took:?} after the manager came back");
    let start = Instant::now();
    while second.subscribers() == 0 && start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(second.subscribers(), 1, "the monitor subscribed again");
    // A unit that appears now is announced by UnitNew, which only subscribers cause: it shows
    // well before the 10 s safety-net listing.
    second.add_unit(C, &cgroups, true).await;
    let (_, took) = wait_state(
        &monitor,
        Duration::from_secs(3),
        "a new unit after the re-execution",
        |s| units_of(s) == [A, B, C],
    )
    .await;
    println!("a unit started after the re-execution was listed in {took:?}");

    // The config file gets a mistake while the monitor runs: it says where, and the last good
    // config stays in force.
    std::fs::write(&config, "[general]\nmemory-warning = 700\n").unwrap();
    let (state, _) = wait_state(
        &monitor,
        Duration::from_secs(3),
        "the mistake is reported",
        |s| s.config_problem.is_some(),
    )
    .await;
    let problem = state.config_problem.as_deref().unwrap();
    assert!(problem.contains("config.toml:2:18"), "{problem}");
    assert_eq!(state.config.general.memory_warning, 70.0);
    std::fs::write(&config, "[general]\nmemory-warning = 75\n").unwrap();
    wait_state(
        &monitor,
        Duration::from_secs(3),
        "the fixed file applies",
        |s| s.config_problem.is_none() && s.config.general.memory_warning == 75.0,
    )
    .await;

    // A unit's end is seen the moment the manager announces it (this subscribes to every
    // unit's changes on this connection).
    let mut end = systemd.watch_end(C).await.unwrap();
    announce_end(&second.connection, C).await;
    assert!(
        end.ended(Some(Duration::from_secs(2))).await,
        "the end announced on the first bus is seen"
    );

    // The bus daemon stops: the monitor says so, keeps what it knows, and keeps sampling.
    drop(bus);
    let (state, took) = wait_state(
        &monitor,
        Duration::from_secs(3),
        "the lost bus is reported",
        |s| {
            s.problem
                .as_deref()
                .is_some_and(|p| p.contains("Lost the connection to the session bus"))
        },
    )
    .await;
    println!("reported the lost bus in {took:?}: {:?}", state.problem);
    assert_eq!(units_of(&state), [A, B, C], "the known units stay listed");
    let sampled = state.sampled_at;
    // Reconnection fails while there is no bus: attempts 1, 2, 3 at 0.5 s, +1 s, +2 s.
    let (state, _) = wait_state(&monitor, Duration::from_secs(6), "repeated attempts", |s| {
        s.problem
            .as_deref()
            .is_some_and(|p| p.contains("attempt 3 failed"))
    })
    .await;
    assert!(
        state.problem.as_deref().unwrap().contains("next in 4 s"),
        "the delay grows: {:?}",
        state.problem
    );
    assert!(
        state.sampled_at > sampled,
        "sampling went on without the bus"
    );

    // A new bus on the same socket, and the manager on it with another unit.
    let _bus = restart_bus(dir.path());
    let third = FakeSystemd::start(&address, &[A, B, C, D], &cgroups).await;
    drop(first_server);
    let (_, took) = wait_state(
        &monitor,
        Duration::from_secs(8),
        "reconnected and relisted",
        |s| units_of(s) == [A, B, C, D] && s.problem.is_none(),
    )
    .await;
    println!("reconnected and relisted {took:?} after the new bus started");
    assert_eq!(third.subscribers(), 1, "subscribed on the new bus");
    // Notifications go to the server on the new bus: the next alert reconnects them.
    let second_server_log = dir.path().join("second-server.jsonl");
    let _second_server = common::start_recorder(&second_server_log, None, &[]);
    alerts.send(AlertChange::Raised(near_limit(B))).unwrap();
    let start = Instant::now();
    while notified(&second_server_log) == 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(notified(&second_server_log), 1, "notified on the new bus");

    // The new connection subscribes to the units' changes anew: an end announced on the new
    // bus is seen at once, not at the next re-check of a watch on the old connection.
    let mut end = systemd.watch_end(D).await.unwrap();
    announce_end(&third.connection, D).await;
    assert!(
        end.ended(Some(Duration::from_secs(2))).await,
        "the end announced on the new bus is seen"
    );

    // Every clone of the client uses the new connection: the controller's calls work again.
    let rows = systemd.list_units(&["app-*.service"]).await.unwrap();
    assert_eq!(rows.len(), 4);

    // Load: 300 units, then all but one end at once. Their 299 UnitRemoved signals arrive
    // while the monitor lists; a signal queue left unread would stop the connection.
    let many: Vec<String> = (0..300)
        .map(|i| format!("app-corral-many{i:03}-{i:08x}.service"))
        .collect();
    for unit in &many {
        third.add_unit(unit, &cgroups, true).await;
    }
    let (_, took) = wait_state(&monitor, Duration::from_secs(20), "300 more units", |s| {
        s.units.len() == 304
    })
    .await;
    println!("300 more units listed within {took:?}");
    third.end_units(&many[1..]).await;
    let (_, took) = wait_state(
        &monitor,
        Duration::from_secs(10),
        "299 units ended at once",
        |s| s.units.len() == 5 && s.problem.is_none(),
    )
    .await;
    println!("299 units that ended at once left the list within {took:?}");
    // A stop waits for its job's JobRemoved while 100 other jobs end: it completes.
    tokio::time::timeout(Duration::from_secs(10), systemd.stop(&many[0]))
        .await
        .expect("the stop job's end arrived")
        .unwrap();
}
