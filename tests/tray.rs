//! The tray over a real D-Bus: a private dbus-daemon, a StatusNotifierWatcher written here with
//! zbus (the org.kde.StatusNotifierWatcher interface, as panels implement it), and Corral's
//! tray item. What is checked is what a panel sees: the registration, the item's properties,
//! the dbusmenu layout, and that clicks (dbusmenu `Event`) arrive as `TrayAction`s.
//!
//! One test in this binary: ksni connects to the session bus named by
//! DBUS_SESSION_BUS_ADDRESS, which is set once, before any other thread runs.

mod common;

use common::private_bus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral::cgroup::{CgroupEvents, CgroupSample, CpuMax, Limit};
use corral::limits::{Bytes, MemoryLimit};
use corral::monitor::service::MonitorState;
use corral::monitor::{UnitInfo, UnitSnapshot};
use corral::tray::{CorralTray, TrayAction, TrayLauncher, TrayModel};
use ksni::TrayMethods;
use tokio::sync::mpsc::UnboundedReceiver;
use zbus::zvariant::{OwnedValue, Value};

const GIB: u64 = Bytes::GIB;
const FIREFOX: &str = "app-corral-firefox-1a2b3c4d.service";
const CODE: &str = "app-corral-code-5e6f7a8b.service";
const OTHER: &str = "app-corral-other-9c0d1e2f.service";

/// The watcher side of the StatusNotifierItem spec: items register here, and a host is said
/// to be present (otherwise items know they will not be shown).
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: &str,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        // Items register by bus name, or (some implementations) by object path only.
        let name = if service.starts_with('/') {
            header.sender().map(|s| s.to_string()).unwrap_or_default()
        } else {
            service.to_owned()
        };
        self.items.lock().unwrap().push(name);
    }

    async fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }
}

fn snapshot(
    unit: &str,
    description: &str,
    used: u64,
    memory_max: Limit,
    cpu: f64,
    frozen: bool,
) -> UnitSnapshot {
    UnitSnapshot {
        info: UnitInfo::new(
            unit.to_owned(),
            description,
            "active".to_owned(),
            "running".to_owned(),
            Some(format!("/user.slice/app.slice/{unit}")),
        )
        .into(),
        cgroup: Some(CgroupSample {
            memory_current: Some(used),
            memory_max: Some(memory_max),
            cpu_max: Some(CpuMax {
                quota: Limit::Value(100_000),
                period_usec: 100_000,
            }),
            events: Some(CgroupEvents {
                populated: Some(true),
                frozen: Some(frozen),
            }),
            ..CgroupSample::default()
        }),
        cpu_percent: Some(cpu),
    }
}

fn fixture_model() -> TrayModel {
    model_with_second("Code", CODE)
}

/// Firefox, and a second app with Code's figures (the same submenu shape) under another name.
fn model_with_second(name: &str, unit: &str) -> TrayModel {
    let state = MonitorState {
        units: vec![
            snapshot(
                FIREFOX,
                "Firefox [corral: browser]",
                2254857830,
                Limit::Value(4 * GIB),
                35.0,
                false,
            ),
            snapshot(
                unit,
                &format!("{name} [corral: relaxed]"),
                GIB,
                Limit::Value(3 * GIB),
                0.0,
                true,
            ),
        ],
        sampled_at: None,
        problem: None,
        alerts: Vec::new(),
        ..MonitorState::default()
    };
    let launchers = vec![TrayLauncher {
        app_id: "org.mozilla.firefox".into(),
        name: "Firefox".into(),
        preset: "browser".into(),
    }];
    TrayModel::from_state(&state, launchers, false, 16 * GIB, false)
}

/// A dbusmenu layout node on the wire: (ia{sv}av).
type RawNode = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);
/// The item's ToolTip property: (icon name, pixmaps (iiay), title, description).
type ToolTip = (String, Vec<(i32, i32, Vec<u8>)>, String, String);

/// A dbusmenu node: (id, properties, children), as GetLayout returns it.
#[derive(Debug)]
struct Node {
    id: i32,
    props: HashMap<String, OwnedValue>,
    children: Vec<Node>,
}

impl Node {
    fn parse(value: &Value<'_>) -> Node {
        let value = match value {
            Value::Value(inner) => inner.as_ref(),
            other => other,
        };
        let Value::Structure(s) = value else {
            panic!("a layout node is a structure, not {value:?}")
        };
        let fields = s.fields();
        let id = i32::try_from(&fields[0]).unwrap();
        let props: HashMap<String, OwnedValue> =
            HashMap::try_from(fields[1].try_clone().unwrap()).expect("node properties are a{sv}");
        let Value::Array(children) = &fields[2] else {
            panic!("node children are av")
        };
        Node {
            id,
            props,
            children: children.iter().map(Node::parse).collect(),
        }
    }

    fn label(&self) -> String {
        self.props
            .get("label")
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
            .unwrap_or_default()
    }

    fn int(&self, key: &str) -> Option<i32> {
        self.props.get(key).and_then(|v| i32::try_from(v).ok())
    }

    fn is_submenu(&self) -> bool {
        self.props
            .get("children-display")
            .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
            .as_deref()
            == Some("submenu")
    }

    fn child(&self, label: &str) -> &Node {
        self.children
            .iter()
            .find(|c| c.label() == label)
            .unwrap_or_else(|| {
                let labels: Vec<String> = self.children.iter().map(Node::label).collect();
                panic!("no item {label:?} in {labels:?}")
            })
    }

    fn child_starting(&self, prefix: &str) -> &Node {
        self.children
            .iter()
            .find(|c| c.label().starts_with(prefix))
            .unwrap_or_else(|| panic!("no item starting with {prefix:?}"))
    }
}

async fn proxy<'a>(
    conn: &zbus::Connection,
    dest: &'a str,
    path: &'a str,
    interface: &'a str,
) -> zbus::Proxy<'a> {
    zbus::proxy::Builder::new(conn)
        .destination(dest)
        .unwrap()
        .path(path)
        .unwrap()
        .interface(interface)
        .unwrap()
        // Properties are read fresh each time: the item signals changes with NewStatus etc.,
        // not PropertiesChanged.
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap()
}

async fn layout(menu: &zbus::Proxy<'_>) -> Node {
    let reply = menu
        .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
        .await
        .unwrap();
    let (_revision, (id, props, children)): (u32, RawNode) = reply.body().deserialize().unwrap();
    Node {
        id,
        props,
        children: children.iter().map(|c| Node::parse(c)).collect(),
    }
}

async fn click(menu: &zbus::Proxy<'_>, node: &Node) {
    menu.call_method("Event", &(node.id, "clicked", Value::from(0i32), 0u32))
        .await
        .unwrap();
}

async fn next_action(rx: &mut UnboundedReceiver<TrayAction>) -> TrayAction {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a click sends a TrayAction within 5 s")
        .expect("the tray keeps its sender")
}

#[test]
fn the_tray_over_dbus() {
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, address) = private_bus(dir.path());
    // SAFETY: the only test in this binary, and no other thread has started yet.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(the_tray_over_dbus_async(address));
}

async fn the_tray_over_dbus_async(address: String) {
    let items = Arc::new(Mutex::new(Vec::new()));
    let _watcher = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at(
            "/StatusNotifierWatcher",
            Watcher {
                items: Arc::clone(&items),
            },
        )
        .unwrap()
        .build()
        .await
        .unwrap();

    let (tx, mut actions) = tokio::sync::mpsc::unbounded_channel();
    let handle = CorralTray::new(fixture_model(), tx)
        .spawn()
        .await
        .expect("the tray registers with the watcher on the private bus");

    // The item registered under its own bus name.
    let service = items.lock().unwrap().first().cloned().expect("registered");
    assert!(
        service.starts_with("org.kde.StatusNotifierItem-"),
        "registered as {service}"
    );

    let client = zbus::connection::Builder::address(address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let item = proxy(
        &client,
        &service,
        "/StatusNotifierItem",
        "org.kde.StatusNotifierItem",
    )
    .await;
    assert_eq!(
        item.get_property::<String>("Id").await.unwrap(),
        "io.github.corral.Corral"
    );
    assert_eq!(
        item.get_property::<String>("Title").await.unwrap(),
        "Corral"
    );
    assert_eq!(
        item.get_property::<String>("Status").await.unwrap(),
        "Active"
    );
    assert_eq!(
        item.get_property::<String>("IconName").await.unwrap(),
        "io.github.corral.Corral-symbolic"
    );
    let pixmaps: Vec<(i32, i32, Vec<u8>)> = item.get_property("IconPixmap").await.unwrap();
    assert_eq!(
        pixmaps
            .iter()
            .map(|p| (p.0, p.1, p.2.len()))
            .collect::<Vec<_>>(),
        [(22, 22, 22 * 22 * 4), (44, 44, 44 * 44 * 4)]
    );
    let (_, _, title, _): ToolTip = item.get_property("ToolTip").await.unwrap();
    assert_eq!(title, "2 contained apps · 3.1 GiB");
    let menu_path: zbus::zvariant::OwnedObjectPath = item.get_property("Menu").await.unwrap();
    assert_eq!(menu_path.as_str(), "/MenuBar");

    // The menu: Open Corral, Launch ▸, one submenu per contained app, Quit.
    let menu = proxy(&client, &service, "/MenuBar", "com.canonical.dbusmenu").await;
    let root = layout(&menu).await;
    let labels: Vec<String> = root
        .children
        .iter()
        .map(Node::label)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        labels,
        [
            "Open Corral",
            "Launch",
            "Firefox — 2.1 GiB of 4.0 GiB · 35 % CPU",
            "Code — frozen · 1.0 GiB of 3.0 GiB",
            "Quit"
        ]
    );
    let launch = root.child("Launch");
    assert!(launch.is_submenu());
    assert_eq!(
        launch
            .children
            .iter()
            .map(Node::label)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>(),
        ["Firefox (browser)", "Choose App…"]
    );
    let firefox = root.child_starting("Firefox —");
    let code = root.child_starting("Code —");
    for app in [firefox, code] {
        assert!(app.is_submenu());
        for entry in ["Frozen", "Memory limit", "CPU limit", "Stop", "Kill…"] {
            app.child(entry);
        }
        // Kill is confirmed in a submenu naming the app.
        assert!(app.child("Kill…").is_submenu());
        assert_eq!(app.child("Kill…").children.len(), 1);
    }
    // Freeze is a checkmark showing the state; memory choices are radio items with the
    // current one on, and a custom value is shown as such.
    assert_eq!(firefox.child("Frozen").int("toggle-state"), Some(0));
    assert_eq!(code.child("Frozen").int("toggle-state"), Some(1));
    let firefox_memory = firefox.child("Memory limit");
    assert_eq!(firefox_memory.child("4.0 GiB").int("toggle-state"), Some(1));
    assert_eq!(firefox_memory.child("2.0 GiB").int("toggle-state"), Some(0));
    let code_memory = code.child("Memory limit");
    assert_eq!(
        code_memory.child("Custom: 3.0 GiB").int("toggle-state"),
        Some(1)
    );

    // Clicks arrive as actions, and nothing else happens in the tray.
    click(&menu, firefox.child("Frozen")).await;
    assert_eq!(
        next_action(&mut actions).await,
        TrayAction::Freeze {
            unit: FIREFOX.into()
        }
    );
    click(&menu, code.child("Frozen")).await;
    assert_eq!(
        next_action(&mut actions).await,
        TrayAction::Thaw { unit: CODE.into() }
    );
    click(&menu, firefox_memory.child("2.0 GiB")).await;
    assert_eq!(
        next_action(&mut actions).await,
        TrayAction::SetMemoryMax {
            unit: FIREFOX.into(),
            limit: MemoryLimit::Bytes(Bytes(2 * GIB)),
        }
    );
    // Choosing the custom value again asks for nothing: the next action is the Kill.
    click(&menu, code_memory.child("Custom: 3.0 GiB")).await;
    click(&menu, firefox.child("Kill…").child("Kill Firefox Now")).await;
    assert_eq!(
        next_action(&mut actions).await,
        TrayAction::Kill {
            unit: FIREFOX.into()
        }
    );
    click(&menu, launch.child("Firefox (browser)")).await;
    assert_eq!(
        next_action(&mut actions).await,
        TrayAction::Launch {
            app_id: "org.mozilla.firefox".into(),
            preset: "browser".into()
        }
    );
    click(&menu, root.child("Quit")).await;
    assert_eq!(next_action(&mut actions).await, TrayAction::Quit);

    // An alert: status and icon change for the panel.
    handle
        .update(|tray| tray.model.alert = true)
        .await
        .expect("the tray runs");
    assert_eq!(
        item.get_property::<String>("Status").await.unwrap(),
        "NeedsAttention"
    );
    assert_eq!(
        item.get_property::<String>("IconName").await.unwrap(),
        "io.github.corral.Corral-alert-symbolic"
    );
    // A unit that ended leaves the menu.
    handle
        .update(|tray| tray.model.units.retain(|u| u.unit != CODE))
        .await
        .expect("the tray runs");
    let root = layout(&menu).await;
    assert!(root.children.iter().all(|c| !c.label().starts_with("Code")));

    // A panel still showing Code's submenu when another app takes Code's place in the menu,
    // with a submenu of the same shape: the Kill it shows is Code's, and must not kill the
    // other app. (Before, ksni kept the ids of a menu whose shape had not changed, and the id
    // of Code's Kill became the other app's.)
    handle
        .update(|tray| tray.show(fixture_model()))
        .await
        .expect("the tray runs");
    let root = layout(&menu).await;
    let stale = root
        .child_starting("Code —")
        .child("Kill…")
        .child("Kill Code Now")
        .id;
    handle
        .update(|tray| tray.show(model_with_second("Other", OTHER)))
        .await
        .expect("the tray runs");
    let refused = menu
        .call_method("Event", &(stale, "clicked", Value::from(0i32), 0u32))
        .await;
    assert!(
        refused.is_err(),
        "a click on the id of Code's Kill was taken after Other replaced Code"
    );
    // Nothing was sent for it: the next action is the next click's.
    let root = layout(&menu).await;
    let other_kill = root
        .child_starting("Other —")
        .child("Kill…")
        .child("Kill Other Now");
    assert_ne!(
        other_kill.id, stale,
        "the new app's Kill has an id of its own"
    );
    click(&menu, root.child("Open Corral")).await;
    assert_eq!(next_action(&mut actions).await, TrayAction::OpenWindow);
    handle.shutdown().await;
}
