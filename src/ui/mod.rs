//! The GTK 4 / libadwaita window (relm4): one application instance, the list of contained apps
//! with their details, the launcher and preferences. Views only: the logic lives in the library.

pub mod details;
pub mod events;
pub mod graph;
pub mod launcher;
pub mod preferences;
pub mod unit_list;
pub mod unit_row;
pub mod window;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use adw::prelude::*;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use relm4::RelmApp;

use crate::cgroup::CgroupFs;
use crate::config::Config;
use crate::controller::Controller;
use crate::i18n::gettext;
use crate::identity::{APP_ID, APP_NAME, RESOURCE_BASE, VERSION};
use crate::monitor::service::Monitor;
use crate::systemd::{ManagerKind, Systemd};
use window::{MainWindow, WindowInit};

/// The process's one connection to systemd, its `Controller` and its `Monitor`, shared by the
/// window and the tray. It connects when first awaited; every later await gets the same pair.
#[derive(Clone)]
pub struct SharedConnection {
    connect: Shared<BoxFuture<'static, Connected>>,
    manager: ManagerKind,
}

/// The controller and monitor, or why systemd could not be reached.
type Connected = Result<(Arc<Controller>, Monitor), String>;

impl SharedConnection {
    pub fn new(manager: ManagerKind, interval: Duration) -> SharedConnection {
        let connect = async move {
            let systemd = Systemd::connect(manager).await.map_err(|e| e.to_string())?;
            let monitor = Monitor::spawn(systemd.clone(), CgroupFs::system(), interval);
            // Runaway alerts become desktop notifications, once per process; their "Open
            // Corral" activates the application, which presents the window.
            let controller = Controller::new(systemd.clone(), CgroupFs::system());
            let mut open = crate::notify::spawn_notifications(&monitor, controller);
            tokio::spawn(async move {
                while open.recv().await.is_some() {
                    gtk::glib::MainContext::default().invoke(|| {
                        if let Some(app) = gtk::gio::Application::default() {
                            app.activate();
                        }
                    });
                }
            });
            Ok((
                Arc::new(Controller::new(systemd, CgroupFs::system())),
                monitor,
            ))
        };
        SharedConnection {
            connect: connect.boxed().shared(),
            manager,
        }
    }

    pub async fn get(&self) -> Connected {
        self.connect.clone().await
    }

    /// Which manager this connection is to (the apps offered depend on it).
    pub fn manager(&self) -> ManagerKind {
        self.manager
    }
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedConnection")
    }
}

/// A tray that runs all session long should not carry the GL drivers: opening the display,
/// GDK loads them (Mesa, and llvmpipe's LLVM without a GPU) to choose a visual, about 60 MB of
/// resident memory for a process that shows no window (measured in BENCHMARKS.md). Without GL
/// a window opened from the tray draws with GTK's cairo renderer, which is plenty for Corral's.
/// A person who set GDK_DEBUG, or a GSK_RENDERER other than cairo, keeps their choice. Must
/// run before GTK starts, while the process has one thread.
fn tray_without_gl() {
    let renderer = std::env::var_os("GSK_RENDERER");
    let wants_gl = renderer.is_some_and(|r| r != "cairo");
    if std::env::var_os("GDK_DEBUG").is_none() && !wants_gl {
        // SAFETY: called from main's thread before GTK, tokio or relm4 start any thread, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var("GDK_DEBUG", "gl-disable") };
    }
}

/// Runs the window, or with `tray` the tray icon with the window on demand; returns when the
/// application quits. A second start only raises the first instance's window (GApplication's
/// uniqueness on the session bus).
pub fn run(manager: ManagerKind, show_all: bool, tray: bool) -> i32 {
    // main() has set the locale (crate::i18n::init); GTK's own setlocale(LC_ALL, "") would undo
    // its LANGUAGE fallback for a session without LANG.
    gtk::disable_setlocale();
    if tray {
        tray_without_gl();
    }
    register_resources();
    let app = adw::Application::builder()
        .application_id(application_id(manager))
        .build();
    let interval = Config::load().unwrap_or_default().general.refresh_period();
    let connection = SharedConnection::new(manager, interval);
    if tray {
        // While the tray runs, closing the window hides it: the tray's "Open Corral" shows
        // it again, and the process lives on (held below) until the tray's Quit.
        app.connect_window_added(|_, window| {
            if window.is::<adw::ApplicationWindow>() {
                window.set_hide_on_close(true);
            }
        });
        let hold = Rc::new(RefCell::new(None));
        let connection = connection.clone();
        app.connect_startup(move |app| {
            *hold.borrow_mut() = Some(app.hold());
            crate::tray::service::attach(app, connection.clone(), show_all, Rc::clone(&hold));
        });
    }
    {
        let quit = gtk::gio::SimpleAction::new("quit", None);
        let app_ref = app.clone();
        quit.connect_activate(move |_, _| app_ref.quit());
        app.add_action(&quit);
    }
    app.connect_startup(|app| {
        // GIO's shared session-bus connection raises SIGTERM when the bus goes away
        // (GDBusConnection:exit-on-close, set by g_bus_get), which would end Corral with its
        // tray while the monitor is reconnecting. The session's end still ends Corral: the
        // display goes away with it, and GTK exits then.
        if let Some(connection) = app.dbus_connection() {
            connection.set_exit_on_close(false);
        }
        let provider = gtk::CssProvider::new();
        provider.load_from_resource(&format!("{RESOURCE_BASE}/style.css"));
        if let Some(display) = gtk::gdk::Display::default() {
            gtk::style_context_add_provider_for_display(
                &display,
                &provider,
                gtk::STYLE_PROVIDER_PRIORITY_APPLICATION,
            );
        }
        gtk::Window::set_default_icon_name(APP_ID);
    });
    // Activation (also from a second start) raises the window; with the tray, the first
    // activation is the start itself, and the window waits to be asked for.
    let quiet_start = Cell::new(tray);
    app.connect_activate(move |app| {
        if quiet_start.replace(false) {
            return;
        }
        if let Some(window) = app.windows().first() {
            window.present();
        }
    });
    // A second start hands its activation to the first instance and returns from run(); relm4
    // then waits for one more main-loop event (MainContext::iteration(true)), which never
    // comes in a process with no windows, so the second start would hang. A tick until
    // startup, which only the first instance sees, lets it end.
    let started = Rc::new(Cell::new(false));
    {
        let started = Rc::clone(&started);
        app.connect_startup(move |_| started.set(true));
    }
    gtk::glib::timeout_add_local(Duration::from_millis(200), move || {
        if started.get() {
            gtk::glib::ControlFlow::Break
        } else {
            gtk::glib::ControlFlow::Continue
        }
    });
    RelmApp::from_app(app)
        .visible_on_activate(false)
        .with_args(Vec::new())
        .run::<MainWindow>(WindowInit {
            manager,
            show_all,
            connection: Some(connection),
        });
    0
}

/// The application id the window registers on the session bus. GApplication is unique per id:
/// a second start with the same id hands its activation to the first and ends. The system
/// manager's window has an id of its own, so that `corral --system` neither raises the user's
/// window (leaving the person at the user manager's apps) nor does a plain `corral` raise the
/// system's (and drive the system manager after a polkit prompt).
pub fn application_id(manager: ManagerKind) -> String {
    match manager {
        ManagerKind::User => APP_ID.to_owned(),
        ManagerKind::System => format!("{APP_ID}.System"),
    }
}

/// `text` for a widget that reads Pango markup (toasts, preference rows' titles and subtitles,
/// group descriptions): an `&` would blank it, a `<b>` or `<a href>` would format it. Names,
/// descriptions and error messages come from desktop entries, the config and systemd.
pub fn plain(text: &str) -> String {
    gtk::glib::markup_escape_text(text).to_string()
}

/// A toast that shows `text` as written.
pub fn toast(text: &str) -> adw::Toast {
    adw::Toast::new(&plain(text))
}

/// Names a widget for screen readers and AT-SPI. GTK 4.8's C library has had
/// gtk_accessible_update_property_value since 4.0, but the Rust bindings only expose the
/// GtkAccessible interface from 4.10 on, so this one call is declared here.
pub fn set_accessible_label(widget: &impl IsA<gtk::Widget>, label: &str) {
    use gtk::glib::translate::ToGlibPtr;
    unsafe extern "C" {
        fn gtk_accessible_update_property_value(
            accessible: *mut std::ffi::c_void,
            n_properties: std::ffi::c_int,
            properties: *mut std::ffi::c_int,
            values: *const gtk::glib::gobject_ffi::GValue,
        );
    }
    /// GTK_ACCESSIBLE_PROPERTY_LABEL in gtkenums.h.
    const LABEL: std::ffi::c_int = 4;
    let value = gtk::glib::Value::from(label);
    let mut property = [LABEL];
    let widget: *mut gtk::ffi::GtkWidget = widget.as_ref().to_glib_none().0;
    // SAFETY: every GtkWidget is a GtkAccessible; one property, one GValue holding a string.
    unsafe {
        gtk_accessible_update_property_value(
            widget.cast(),
            1,
            property.as_mut_ptr(),
            value.to_glib_none().0,
        );
    }
}

/// Registers the GResource bundle (CSS, UI files, icons) compiled into the binary; once.
pub fn register_resources() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gtk::gio::resources_register_include!("corral.gresource")
            .expect("the GResource bundle is compiled into the binary");
    });
}

pub fn show_about(parent: &adw::ApplicationWindow) {
    let about = adw::AboutWindow::builder()
        .transient_for(parent)
        .application_name(APP_NAME)
        .application_icon(APP_ID)
        .version(VERSION)
        .developer_name(gettext("The Corral developers"))
        .license_type(gtk::License::Gpl30)
        .comments(gettext("Keep desktop apps from eating the machine: launch them with limits, watch what they use, freeze or stop them when they run away."))
        .website("https://github.com/corral-app/corral")
        .build();
    // TRANSLATORS: your names, one per line (shown in the About window's credits).
    let translators = gettext("translator-credits");
    if translators != "translator-credits" {
        about.set_translator_credits(&translators);
    }
    about.present();
}

/// The Ctrl+? window listing the keyboard shortcuts, from the GResource.
pub fn install_shortcuts_window(window: &adw::ApplicationWindow) {
    let builder = gtk::Builder::from_resource(&format!("{RESOURCE_BASE}/ui/shortcuts.ui"));
    if let Some(shortcuts) = builder.object::<gtk::ShortcutsWindow>("help_overlay") {
        window.set_help_overlay(Some(&shortcuts));
    }
}
