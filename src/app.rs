//! `corral-desktop`'s application: the window and the tray as two faces of one engine, in one
//! GTK application that lives on with its window closed while the tray is up.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use adw::prelude::*;
use relm4::{ComponentController, RelmApp};

use crate::config::Config;
use crate::engine::Engine;
use crate::identity::{APP_ID, RESOURCE_BASE};
use crate::systemd::ManagerKind;
use crate::ui::window::{MainWindow, WindowInit};

/// GDK loads the GL drivers as it opens the display (Mesa and LLVM for llvmpipe: about 60 MB
/// resident, BENCHMARKS.md), whether or not anything will render with GL. A process that
/// renders nothing with GL does without them: the tray, which shows no window (a window opened
/// from it renders with cairo), and a window whose renderer was set to cairo
/// (`GSK_RENDERER=cairo`, as where GL is software or broken). A person who set GDK_DEBUG, or a
/// tray asked for another renderer, keeps their choice. The apps Corral launches get the
/// session's GDK_DEBUG, not this one (`crate::launch::keep_own_variable`). Must run before GTK
/// starts, while the process has one thread.
fn without_unused_gl(tray: bool) {
    let renders_with_gl = match std::env::var_os("GSK_RENDERER") {
        Some(renderer) => renderer != "cairo",
        None => !tray,
    };
    if std::env::var_os("GDK_DEBUG").is_none() && !renders_with_gl {
        // SAFETY: called from main's thread before GTK, tokio or relm4 start any thread, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var("GDK_DEBUG", "gl-disable") };
        crate::launch::keep_own_variable("GDK_DEBUG");
    }
}

/// The engine of this process: an "Open Corral" pressed on a notification activates the
/// application, which presents the window.
fn engine(manager: ManagerKind, interval: Duration) -> Engine {
    Engine::new(manager, interval, |_| {
        gtk::glib::MainContext::default().invoke(|| {
            if let Some(app) = gtk::gio::Application::default() {
                app.activate();
            }
        });
    })
}

/// Runs the window, or with `tray` the tray icon with the window on demand; returns when the
/// application quits. A second start only raises the first instance's window (GApplication's
/// uniqueness on the session bus).
pub fn run(manager: ManagerKind, show_all: bool, tray: bool) -> i32 {
    // main() has set the locale (crate::i18n::init); GTK's own setlocale(LC_ALL, "") would undo
    // its LANGUAGE fallback for a session without LANG.
    gtk::disable_setlocale();
    without_unused_gl(tray);
    crate::ui::register_resources();
    let app = adw::Application::builder()
        .application_id(crate::ui::application_id(manager))
        .build();
    let interval = Config::load().unwrap_or_default().general.refresh_period();
    let engine = engine(manager, interval);
    if tray {
        add_window_actions(&app);
        attach_tray(&app, &engine, show_all);
    }
    {
        let quit = gtk::gio::SimpleAction::new("quit", None);
        let app_ref = app.clone();
        quit.connect_activate(move |_, _| app_ref.quit());
        app.add_action(&quit);
    }
    app.connect_startup(startup);
    // Activation (also from a second start) raises the window; with the tray, the first
    // activation is the start itself, and the window waits to be asked for.
    let quiet_start = Cell::new(tray);
    app.connect_activate(move |app| {
        if quiet_start.replace(false) {
            return;
        }
        if tray {
            show_window(None);
        } else if let Some(window) = app.windows().first() {
            window.present();
        }
    });
    let_a_second_start_end(&app);
    if tray {
        RelmApp::from_app(app)
            .visible_on_activate(false)
            .with_args(Vec::new())
            .with_broker(&TRAY_APP)
            .run::<TrayApp>(TrayInit {
                manager,
                show_all,
                engine,
            });
    } else {
        RelmApp::from_app(app)
            .visible_on_activate(false)
            .with_args(Vec::new())
            .run::<MainWindow>(WindowInit {
                manager,
                show_all,
                engine: Some(engine),
                store: crate::engine::ConfigStore::user(),
            });
    }
    0
}

/// Shows the window, building it first if the tray has not yet: for a second start and a
/// notification's "Open Corral". `then` names a window action to activate once it shows.
fn show_window(then: Option<String>) {
    // Refused only once the application has ended.
    let _ = TRAY_APP.sender().send(TrayMsg::Show { then });
}

/// The application's actions with which the tray asks for the window (it knows no `ui` type):
/// `app.show-window`, whose string names a window action to activate once it shows
/// ("win.launch", or "" for none), and `app.run-as-window` for when no tray host took the icon.
fn add_window_actions(app: &adw::Application) {
    let show = gtk::gio::SimpleAction::new("show-window", Some(gtk::glib::VariantTy::STRING));
    show.connect_activate(|_, parameter| {
        let then = parameter
            .and_then(|p| p.get::<String>())
            .filter(|action| !action.is_empty());
        show_window(then);
    });
    app.add_action(&show);
    let as_window = gtk::gio::SimpleAction::new("run-as-window", None);
    as_window.connect_activate(|_, _| {
        let _ = TRAY_APP.sender().send(TrayMsg::RunAsWindow);
    });
    app.add_action(&as_window);
}

static TRAY_APP: relm4::MessageBroker<TrayMsg> = relm4::MessageBroker::new();

/// What the window is built with, when it is first asked for.
struct TrayInit {
    manager: ManagerKind,
    show_all: bool,
    engine: Engine,
}

/// The application's root while the tray runs: the window, built only when it is first asked
/// for. Until then the tray costs no widgets, no desktop-entry catalog of the window's own and
/// no config-writer thread (BENCHMARKS.md, the tray's peak RSS). relm4 needs a root window: an
/// empty one, never shown.
struct TrayApp {
    init: TrayInit,
    window: Option<relm4::Controller<MainWindow>>,
}

#[derive(Debug)]
enum TrayMsg {
    /// Show the window, then activate the window action named, if any.
    Show { then: Option<String> },
    /// From now on Corral runs as a window: closing it ends Corral.
    RunAsWindow,
}

impl relm4::Component for TrayApp {
    type Init = TrayInit;
    type Input = TrayMsg;
    type Output = ();
    type CommandOutput = ();
    type Root = gtk::Window;
    type Widgets = ();

    fn init_root() -> gtk::Window {
        gtk::Window::new()
    }

    fn init(
        init: TrayInit,
        _root: gtk::Window,
        _sender: relm4::ComponentSender<Self>,
    ) -> relm4::ComponentParts<Self> {
        relm4::ComponentParts {
            model: TrayApp { init, window: None },
            widgets: (),
        }
    }

    fn update(&mut self, msg: TrayMsg, _sender: relm4::ComponentSender<Self>, root: &gtk::Window) {
        let window = self.window();
        match msg {
            TrayMsg::Show { then } => {
                window.present();
                if let Some(action) = then {
                    let _ = WidgetExt::activate_action(&window, &action, None);
                }
            }
            TrayMsg::RunAsWindow => {
                window.present();
                // Closing the window ends Corral, as it does without the tray: it must be the
                // application's last window.
                window.set_hide_on_close(false);
                relm4::main_application().remove_window(root);
            }
        }
    }
}

impl TrayApp {
    /// The window, built at the first call.
    fn window(&mut self) -> adw::ApplicationWindow {
        let init = &self.init;
        let window = self.window.get_or_insert_with(|| {
            let window = <MainWindow as relm4::Component>::builder()
                .launch(WindowInit {
                    manager: init.manager,
                    show_all: init.show_all,
                    engine: Some(init.engine.clone()),
                    store: crate::engine::ConfigStore::user(),
                })
                .detach();
            relm4::main_application().add_window(window.widget());
            window
        });
        window.widget().clone()
    }
}

/// While the tray runs, closing the window hides it: the tray's "Open Corral" shows it again,
/// and the process lives on (held) until the tray's Quit.
fn attach_tray(app: &adw::Application, engine: &Engine, show_all: bool) {
    app.connect_window_added(|_, window| {
        if window.is::<adw::ApplicationWindow>() {
            window.set_hide_on_close(true);
        }
    });
    let hold = Rc::new(RefCell::new(None));
    let engine = engine.clone();
    app.connect_startup(move |app| {
        *hold.borrow_mut() = Some(app.hold());
        crate::tray::service::attach(app, engine.clone(), show_all, Rc::clone(&hold));
    });
}

fn startup(app: &adw::Application) {
    // GIO's shared session-bus connection raises SIGTERM when the bus goes away
    // (GDBusConnection:exit-on-close), which would end Corral with its tray while the monitor
    // is reconnecting. The session's end still ends Corral: the display goes away with it.
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
}

/// A second start hands its activation to the first instance and returns from run(); relm4
/// then waits for one more main-loop event, which never comes in a process with no windows.
/// A tick until startup, which only the first instance sees, lets it end.
fn let_a_second_start_end(app: &adw::Application) {
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
}
