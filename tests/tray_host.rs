//! `corral --tray` in a real tray host: Debian's status-notifier-watcher and
//! gtk-sni-tray-standalone on a private D-Bus, on the X display the tests run under (Xvfb in
//! `xvfb-run -a cargo test`). The item must register with the watcher, the host must draw its
//! icon, and a right click must open its menu; both screenshots are saved in
//! target/tray-host/ for a person to look at.
//!
//! Needs status-notifier-watcher, gtk-sni-tray-standalone, xdotool and ImageMagick
//! (tests/setup-host.sh installs them) and a display, so it is `#[ignore]`d: a plain `cargo
//! test` lists it as ignored, with that reason. tests/run runs it (`--include-ignored`) with
//! CORRAL_REQUIRE_TRAY_HOST=1: there, and whenever it is asked for, a missing tool fails it.

mod common;

use common::{Reaped, private_bus, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn missing_tools() -> Vec<&'static str> {
    let mut missing: Vec<&str> = [
        "status-notifier-watcher",
        "gtk-sni-tray-standalone",
        "xdotool",
        "import",
        "convert",
    ]
    .into_iter()
    .filter(|tool| corral::apps::find_in_path(tool).is_none())
    .collect();
    if std::env::var_os("DISPLAY").is_none() {
        missing.push("an X display (run under xvfb-run -a)");
    }
    missing
}

/// The items the watcher has registered, read with zbus over the private bus.
fn registered_items(address: &str) -> Vec<String> {
    let read = async {
        let conn = zbus::connection::Builder::address(address)?.build().await?;
        let proxy = zbus::Proxy::new(
            &conn,
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.kde.StatusNotifierWatcher",
        )
        .await?;
        proxy
            .get_property::<Vec<String>>("RegisteredStatusNotifierItems")
            .await
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(read)
        .unwrap_or_default()
}

/// What the tray host has fetched of an item's menu, as seen by a monitor on the bus.
///
/// gtk-sni-tray draws the icon from its own D-Bus connection, while libdbusmenu fetches the
/// menu over another: first GetLayout, then, for the items the layout names, their properties
/// (GetGroupProperties); an item goes into the host's GTK menu only once its properties came.
/// A right click before the layout came pops up an empty menu, which stays empty when the
/// layout arrives: with Corral stopped (SIGSTOP) just before it answered GetLayout and let go
/// 3 s later, the icon was drawn meanwhile and the test failed as it once did in CI ("no menu
/// under the tray icon"). So the icon being drawn says nothing of the menu; this says when the
/// host holds it.
#[derive(Default)]
struct MenuFetches {
    /// Numbers each message seen, in order.
    seen: u64,
    /// When the item last said its layout changed (LayoutUpdated): fetched before, stale.
    layout_changed: u64,
    /// When the host last got a layout, and properties.
    layout_got: u64,
    properties_got: u64,
    /// dbusmenu calls not yet answered: (caller, serial) → method.
    pending: std::collections::HashMap<(String, u32), String>,
}

impl MenuFetches {
    /// Watches the bus at `address` from a thread of its own until the bus goes away.
    fn watch(address: &str) -> std::sync::Arc<std::sync::Mutex<Self>> {
        use futures_util::StreamExt;
        use zbus::message::Type;
        let fetches = std::sync::Arc::new(std::sync::Mutex::new(Self::default()));
        let shared = fetches.clone();
        let address = address.to_owned();
        let (ready, monitoring) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let watch = async move {
                let conn = zbus::connection::Builder::address(address.as_str())?
                    .build()
                    .await?;
                let rules = [
                    zbus::MatchRule::builder()
                        .interface("com.canonical.dbusmenu")?
                        .build(),
                    zbus::MatchRule::builder()
                        .msg_type(Type::MethodReturn)
                        .build(),
                    zbus::MatchRule::builder().msg_type(Type::Error).build(),
                ];
                zbus::fdo::MonitoringProxy::new(&conn)
                    .await?
                    .become_monitor(&rules, 0)
                    .await?;
                let _ = ready.send(());
                let mut messages = zbus::MessageStream::from(conn);
                while let Some(message) = messages.next().await {
                    if let Ok(message) = message {
                        shared.lock().unwrap().note(&message);
                    }
                }
                zbus::Result::Ok(())
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = runtime.block_on(watch) {
                panic!("cannot monitor the test's bus: {e}");
            }
        });
        monitoring
            .recv_timeout(Duration::from_secs(30))
            .expect("the bus monitor did not start");
        fetches
    }

    fn note(&mut self, message: &zbus::Message) {
        use zbus::message::Type;
        self.seen += 1;
        let header = message.header();
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        match header.message_type() {
            Type::Signal if member == "LayoutUpdated" => self.layout_changed = self.seen,
            Type::MethodCall => {
                let no_reply = header
                    .primary()
                    .flags()
                    .contains(zbus::message::Flags::NoReplyExpected);
                if let (Some(caller), false) = (header.sender(), no_reply) {
                    let serial = header.primary().serial_num().get();
                    self.pending.insert((caller.to_string(), serial), member);
                }
            }
            Type::MethodReturn | Type::Error => {
                let (Some(caller), Some(serial)) = (header.destination(), header.reply_serial())
                else {
                    return;
                };
                let answered = self.pending.remove(&(caller.to_string(), serial.get()));
                let ok = header.message_type() == Type::MethodReturn;
                match answered.as_deref() {
                    Some("GetLayout") if ok => self.layout_got = self.seen,
                    Some("GetGroupProperties") if ok => self.properties_got = self.seen,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The host got the layout since it last changed, then its items' properties, and waits
    /// for nothing more.
    fn host_holds_the_menu(&self) -> bool {
        self.layout_got > self.layout_changed
            && self.properties_got > self.layout_got
            && self.pending.is_empty()
    }
}

/// The mean brightness (0 black … 1 white) of a region of a screenshot.
fn brightness(image: &Path, geometry: &str) -> f64 {
    let out = Command::new("convert")
        .arg(image)
        .args(["-crop", geometry, "+repage", "-colorspace", "Gray"])
        .args(["-format", "%[fx:mean]", "info:"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ImageMagick said {:?}", out))
}

fn screenshot(path: &Path) {
    let status = Command::new("import")
        .args(["-window", "root"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "import could not take {}", path.display());
}

/// Where the tray host is expected (tests/run sets CORRAL_REQUIRE_TRAY_HOST=1), its tools
/// must be there: a machine without them would otherwise only ever skip the test below.
#[test]
fn the_tray_host_tools_are_there_where_they_are_required() {
    if std::env::var_os("CORRAL_REQUIRE_TRAY_HOST").is_some_and(|v| v == "1") {
        let missing = missing_tools();
        assert!(
            missing.is_empty(),
            "CORRAL_REQUIRE_TRAY_HOST=1, but missing: {} (tests/setup-host.sh installs them)",
            missing.join(", ")
        );
    }
}

#[test]
#[ignore = "needs a tray host (status-notifier-watcher, gtk-sni-tray-standalone), xdotool, ImageMagick and an X display; tests/run runs it"]
fn a_real_tray_host_shows_the_icon_and_its_menu() {
    let missing = missing_tools();
    assert!(
        missing.is_empty(),
        "the tray host test cannot run: missing {} (tests/setup-host.sh installs them)",
        missing.join(", ")
    );
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, address) = private_bus(dir.path());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tray-host");
    std::fs::create_dir_all(&out).unwrap();
    let log = |name: &str| std::fs::File::create(out.join(name)).unwrap();
    // Every process on the private bus, with a home of its own (Corral reads its config).
    let spawn = |address: &str, program: &str, args: &[&str], log_name: &str| {
        let err = log(log_name);
        Reaped(
            Command::new(program)
                .args(args)
                .env("DBUS_SESSION_BUS_ADDRESS", address)
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("XDG_STATE_HOME", dir.path().join("state"))
                .env("NO_AT_BRIDGE", "1")
                .env("GTK_A11Y", "none")
                .stdout(err.try_clone().unwrap())
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}")),
        )
    };

    let menu_fetches = MenuFetches::watch(&address);
    let _watcher = spawn(&address, "status-notifier-watcher", &[], "watcher.log");
    let _host = spawn(
        &address,
        "gtk-sni-tray-standalone",
        &["-m", "0", "--top", "-s", "40", "-c", "white"],
        "host.log",
    );
    // `corral --tray`, once it has registered its item with the watcher.
    let start_tray = |log_name: &str| {
        let corral = spawn(
            &address,
            env!("CARGO_BIN_EXE_corral"),
            &["--tray"],
            log_name,
        );
        let registered = wait_for(Duration::from_secs(30), || {
            is_registered(&address, corral.0.id())
        });
        assert!(
            registered,
            "corral --tray did not register with status-notifier-watcher (items: {:?}); see {}",
            registered_items(&address),
            out.join(log_name).display()
        );
        corral
    };
    // Every wait below is a bound, not a timing: it ends as soon as what it waits for is
    // there. On a loaded machine the menu once took more than 5 s to be drawn.
    let corral = start_tray("corral.log");

    // The host fetches the icon and draws it in its bar at the top left.
    let icon = out.join("icon.png");
    let mut bar = 1.0;
    let drawn = wait_for(Duration::from_secs(30), || {
        screenshot(&icon);
        bar = brightness(&icon, "40x40+0+0");
        bar < 0.97
    });
    assert!(
        drawn,
        "the bar's first slot is plain (brightness {bar}): no icon in {}",
        icon.display()
    );
    // Nothing below the bar yet: the window waits to be asked for.
    let below = brightness(&icon, "200x100+0+45");
    assert!(
        below < 0.05,
        "something is drawn under the bar before any click ({below}): {}",
        icon.display()
    );

    // A right click opens the menu (dbusmenu, drawn by the host) under the bar, once the host
    // has fetched it (see MenuFetches).
    assert!(
        wait_for(Duration::from_secs(30), || menu_fetches
            .lock()
            .unwrap()
            .host_holds_the_menu()),
        "the tray host did not fetch the menu (layout, then its items' properties): {}",
        out.display()
    );
    let clicked = Command::new("xdotool")
        .args(["mousemove", "20", "20", "click", "3"])
        .status()
        .unwrap();
    assert!(clicked.success());
    let menu = out.join("menu.png");
    let opened = wait_for(Duration::from_secs(30), || {
        screenshot(&menu);
        brightness(&menu, "200x100+0+45") > 0.5
    });
    assert!(
        opened,
        "no menu under the tray icon after a right click: {}",
        menu.display()
    );

    // "Open Corral" (the menu's first item) shows the window.
    let visible_window = || {
        Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", "^Corral$"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    assert!(
        !visible_window(),
        "the window showed before it was asked for"
    );
    let clicked = Command::new("xdotool")
        .args(["mousemove", "60", "56", "click", "1"])
        .status()
        .unwrap();
    assert!(clicked.success());
    assert!(
        wait_for(Duration::from_secs(30), visible_window),
        "“Open Corral” did not show the window"
    );
    // Mapped is not yet drawn: wait for the window's light background.
    let window = out.join("window.png");
    let drawn = wait_for(Duration::from_secs(30), || {
        screenshot(&window);
        brightness(&window, "400x300+100+100") > 0.5
    });
    assert!(drawn, "the window is not drawn: {}", window.display());

    // Closing the window (its own close button: no window manager here) keeps Corral
    // running with the tray; "Open Corral" shows the same window again.
    close_window();
    assert!(
        wait_for(Duration::from_secs(30), || !visible_window()),
        "the window's close button did not close it: {}",
        window.display()
    );
    // Still there to answer: the tray shows the same window again, from the same process.
    let mut corral = corral;
    click_item(&address, corral.0.id(), "Open Corral");
    assert!(
        wait_for(Duration::from_secs(30), visible_window),
        "“Open Corral” did not show the window again after it was closed"
    );
    assert!(
        corral.0.try_wait().unwrap().is_none(),
        "closing the window ended corral --tray"
    );

    // Quit, clicked through dbusmenu as a host would, ends the process.
    click_item(&address, corral.0.id(), "Quit");
    let quit = wait_for(Duration::from_secs(30), || {
        corral.0.try_wait().ok().flatten().is_some()
    });
    assert!(quit, "Quit in the tray menu did not end corral --tray");
    assert!(
        wait_for(Duration::from_secs(30), || !visible_window()),
        "the window outlived Quit"
    );

    // Started again with the tray: a second `corral` shows the first one's window and ends.
    let corral = start_tray("corral-again.log");
    assert!(
        !visible_window(),
        "the window showed before it was asked for"
    );
    let mut second = spawn(&address, env!("CARGO_BIN_EXE_corral"), &[], "second.log");
    let ended = wait_for(Duration::from_secs(30), || {
        second.0.try_wait().ok().flatten().is_some()
    });
    assert!(
        ended,
        "a second `corral` did not hand over to the first and end"
    );
    assert!(
        wait_for(Duration::from_secs(30), visible_window),
        "a second `corral` did not show the first one's window"
    );
    drop(corral);
    assert!(
        wait_for(Duration::from_secs(30), || !visible_window()),
        "the window outlived its process"
    );

    // "Choose App…" on a tray that has not built its window yet: the window is built and
    // shown, and opens the launcher.
    let corral = start_tray("corral-launcher.log");
    click_item(&address, corral.0.id(), "Choose App…");
    let launcher = || {
        Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", "^Launch an App$"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    assert!(
        wait_for(Duration::from_secs(30), launcher),
        "“Choose App…” did not open the launcher"
    );
    assert!(visible_window(), "the launcher opened without the window");
    drop(corral);

    // Without a StatusNotifierWatcher: said once, the window shows, and closing it ends Corral.
    std::fs::create_dir(dir.path().join("bare")).unwrap();
    let (_bare_daemon, bare_bus) = private_bus(&dir.path().join("bare"));
    let mut alone = spawn(
        &bare_bus,
        env!("CARGO_BIN_EXE_corral"),
        &["--tray"],
        "alone.log",
    );
    assert!(
        wait_for(Duration::from_secs(30), visible_window),
        "without a tray, corral --tray did not show its window"
    );
    // Mapped is not yet drawn (nor its close button clickable): wait for its background.
    let alone_shot = out.join("alone.png");
    assert!(
        wait_for(Duration::from_secs(30), || {
            screenshot(&alone_shot);
            brightness(&alone_shot, "400x300+100+100") > 0.5
        }),
        "without a tray, the window is not drawn: {}",
        alone_shot.display()
    );
    close_window();
    assert!(
        wait_for(Duration::from_secs(30), || alone
            .0
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "without a tray, closing the window did not end corral --tray"
    );
    let said = std::fs::read_to_string(out.join("alone.log")).unwrap();
    assert_eq!(
        said.matches("corral: no tray:").count(),
        1,
        "the missing tray is said once: {said}"
    );

    eprintln!(
        "screenshots: {}, {} and {}",
        icon.display(),
        menu.display(),
        window.display()
    );
}

/// Clicks the close button in the visible Corral window's own title bar (client-side
/// decorations: there is no window manager under Xvfb).
fn close_window() {
    let geometry = Command::new("xdotool")
        .args([
            "search",
            "--onlyvisible",
            "--name",
            "^Corral$",
            "getwindowgeometry",
            "--shell",
        ])
        .output()
        .unwrap();
    let geometry = String::from_utf8_lossy(&geometry.stdout).into_owned();
    let field = |key: &str| -> i32 {
        geometry
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in xdotool's {geometry:?}"))
    };
    let (x, y, width) = (field("X"), field("Y"), field("WIDTH"));
    let closed = Command::new("xdotool")
        .args([
            "mousemove",
            &(x + width - 29).to_string(),
            &(y + 27).to_string(),
        ])
        .args(["click", "1"])
        .status()
        .unwrap();
    assert!(closed.success());
}

/// Finds the top-level menu item labelled `wanted` on the tray of process `pid` and sends it
/// a click, as a host does.
/// A dbusmenu layout node: id, properties, children (each a variant holding a node).
type RawNode = (
    i32,
    std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
    Vec<zbus::zvariant::OwnedValue>,
);

/// The id of the item labelled `wanted` among `children` and their submenus, depth first.
fn find_item(children: &[zbus::zvariant::OwnedValue], wanted: &str) -> Option<i32> {
    use zbus::zvariant::{OwnedValue, Value};
    children.iter().find_map(|child| {
        let node = match &**child {
            Value::Value(inner) => inner.as_ref(),
            other => other,
        };
        let Value::Structure(node) = node else {
            return None;
        };
        let id = i32::try_from(&node.fields()[0]).ok()?;
        let props = std::collections::HashMap::<String, OwnedValue>::try_from(
            node.fields()[1].try_clone().ok()?,
        )
        .ok()?;
        let label = props
            .get("label")
            .and_then(|l| String::try_from(l.try_clone().ok()?).ok());
        if label.as_deref() == Some(wanted) {
            return Some(id);
        }
        let Value::Array(grandchildren) = &node.fields()[2] else {
            return None;
        };
        let grandchildren: Vec<OwnedValue> = grandchildren
            .iter()
            .filter_map(|c| OwnedValue::try_from(c.try_clone().ok()?).ok())
            .collect();
        find_item(&grandchildren, wanted)
    })
}

/// Whether the process `pid` has an item registered with the watcher on `address`.
fn is_registered(address: &str, pid: u32) -> bool {
    registered_items(address)
        .iter()
        .any(|item| item.contains(&format!("StatusNotifierItem-{pid}-")))
}

fn click_item(address: &str, pid: u32, wanted: &str) {
    use zbus::zvariant::Value;
    let item = registered_items(address)
        .into_iter()
        .find(|i| i.contains(&format!("StatusNotifierItem-{pid}-")))
        .expect("the item is registered");
    let service = item.split('/').next().unwrap_or(&item).to_owned();
    let click = async move {
        let conn = zbus::connection::Builder::address(address)?.build().await?;
        let menu = zbus::Proxy::new(&conn, service, "/MenuBar", "com.canonical.dbusmenu").await?;
        // The whole menu (depth -1): an item may be in a submenu ("Launch" › "Choose App…").
        let reply = menu
            .call_method("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
            .await?;
        let (_, root): (u32, RawNode) = reply.body().deserialize()?;
        let quit =
            find_item(&root.2, wanted).unwrap_or_else(|| panic!("the menu has no {wanted:?} item"));
        match menu
            .call_method("Event", &(quit, "clicked", Value::from(0i32), 0u32))
            .await
        {
            // Quit may end the process before its reply is sent: that is the click working.
            Err(zbus::Error::MethodError(name, _, _))
                if wanted == "Quit" && name.as_str() == "org.freedesktop.DBus.Error.NoReply" =>
            {
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => zbus::Result::Ok(()),
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(click)
        .unwrap_or_else(|e| panic!("the click on {wanted:?} did not go through: {e}"));
}
