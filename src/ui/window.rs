//! The main window: the live list of contained apps on the left, the selected app's details on
//! the right. It renders the monitor's state and sends every action through the controller.

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use adw::prelude::*;
use relm4::prelude::*;

use crate::apps::AppCatalog;
use crate::config::{Config, ConfigEditor, Settings};
use crate::controller::{ControlError, Controller, LimitCheck};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::launch::{self, LaunchRequest};
use crate::monitor::service::{Monitor, MonitorState, SharedHistory, lock_history};
use crate::systemd::ManagerKind;
use crate::ui::details::{Details, DetailsAction};
use crate::ui::launcher::Launcher;
use crate::ui::unit_list::UnitList;

/// How the window starts.
#[derive(Debug, Clone)]
pub struct WindowInit {
    pub manager: ManagerKind,
    /// Show every contained app rather than Corral's own.
    pub show_all: bool,
    /// The process's systemd connection, controller and monitor (shared with the tray); `None`
    /// in tests that feed fixture states.
    pub engine: Option<crate::engine::Engine>,
}

#[derive(Debug)]
pub enum Msg {
    Selected(Option<String>),
    Search(String),
    ShowAll(bool),
    Details(DetailsAction),
    ConfirmedKill(String),
    OpenLauncher,
    Launch(Box<LaunchRequest>),
    OpenPreferences,
    Present,
    /// The window was shown: it renders the last state, which it skipped while hidden.
    Shown,
}

pub enum Cmd {
    Connected(crate::engine::Connected),
    Update(Arc<MonitorState>),
    Done(Result<String, String>),
    LimitsApplied(Result<Vec<LimitCheck>, String>),
    Launched(Result<String, String>),
}

pub struct Widgets {
    units: UnitList,
    list_stack: gtk::Stack,
    details_stack: gtk::Stack,
    details: Rc<Details>,
    banner: gtk::Revealer,
    banner_label: gtk::Label,
    toasts: adw::ToastOverlay,
}

pub struct MainWindow {
    ctl: Option<Arc<Controller>>,
    monitor: Option<Monitor>,
    catalog: AppCatalog,
    config_problem: Option<String>,
    state: Arc<MonitorState>,
    /// The monitor's history once connected (empty until then).
    history: SharedHistory,
    launcher: Option<Rc<Launcher>>,
}

/// relm4 wants command output printable for its debug logs; the connection is opaque.
impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Connected(r) => write!(f, "Connected(ok: {})", r.is_ok()),
            Cmd::Update(s) => write!(f, "Update({} units)", s.units.len()),
            Cmd::Done(r) => write!(f, "Done({r:?})"),
            Cmd::LimitsApplied(r) => write!(f, "LimitsApplied({r:?})"),
            Cmd::Launched(r) => write!(f, "Launched({r:?})"),
        }
    }
}

impl MainWindow {
    fn toast(widgets: &Widgets, text: &str) {
        widgets.toasts.add_toast(adw::Toast::new(text));
    }

    fn render(&mut self, widgets: &mut Widgets) {
        let state = Arc::clone(&self.state);
        let now = state.sampled_at.unwrap_or_else(SystemTime::now);
        let banner = banner_text(
            &state,
            self.monitor.is_some(),
            self.config_problem.as_deref(),
        );
        widgets.banner_label.set_text(banner.unwrap_or(""));
        widgets.banner.set_reveal_child(banner.is_some());
        let catalog = &self.catalog;
        widgets
            .units
            .show(&state.units, |snap| icon_for(catalog, snap));
        // A search that matches nothing is not the same as having no apps.
        let page = if widgets.units.visible_count() > 0 {
            "list"
        } else if widgets.units.is_empty() {
            "empty"
        } else {
            "no-match"
        };
        widgets.list_stack.set_visible_child_name(page);

        // The details follow the selected unit; an ended unit's details close.
        match widgets.details.unit() {
            Some(unit) => match state.units.iter().find(|s| s.info.unit == unit) {
                Some(snap) => widgets
                    .details
                    .update(snap, &lock_history(&self.history), now),
                None => widgets.details_stack.set_visible_child_name("none"),
            },
            None => widgets.details_stack.set_visible_child_name("none"),
        }
    }
}

/// What the banner says, if anything: why the monitor cannot list apps, else what is wrong
/// with the config file. Once the monitor runs it follows the file, so its word replaces what
/// the window found when it opened (`own_config_problem`).
fn banner_text<'a>(
    state: &'a MonitorState,
    monitor_runs: bool,
    own_config_problem: Option<&'a str>,
) -> Option<&'a str> {
    let config_problem = if monitor_runs {
        state.config_problem.as_deref()
    } else {
        own_config_problem
    };
    state.problem.as_deref().or(config_problem)
}

/// The icon of the app a unit runs, from its desktop entry.
fn icon_for(catalog: &AppCatalog, snap: &crate::monitor::UnitSnapshot) -> Option<String> {
    let id = snap.info.app_id.as_deref()?;
    catalog.get(id).and_then(|app| app.icon.clone())
}

fn control_error(e: ControlError) -> String {
    e.to_string()
}

impl Component for MainWindow {
    type Init = WindowInit;
    type Input = Msg;
    type Output = ();
    type CommandOutput = Cmd;
    type Root = adw::ApplicationWindow;
    type Widgets = Widgets;

    fn init_root() -> Self::Root {
        adw::ApplicationWindow::builder()
            .title(crate::identity::APP_NAME)
            .default_width(1100)
            .default_height(720)
            .build()
    }

    fn init(
        init: Self::Init,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let config_problem = Config::load().err().map(|e| {
            gettext_f(
                "Your config file has a mistake, so the built-in presets are in use: {error}",
                &[("error", &e)],
            )
        });

        // Header bar: launch, filter, search, menu.
        let launch = gtk::Button::from_icon_name("list-add-symbolic");
        launch.set_tooltip_text(Some(&gettext("Launch an App (Ctrl+N)")));
        crate::ui::set_accessible_label(&launch, &gettext("Launch an App"));
        launch.set_action_name(Some("win.launch"));
        let shown = [gettext("Corral’s Apps"), gettext("All Apps")];
        let filter = gtk::DropDown::from_strings(&[&shown[0], &shown[1]]);
        filter.set_selected(u32::from(init.show_all));
        filter.set_tooltip_text(Some(&gettext("Which contained apps to show")));
        // TRANSLATORS: the accessible name of the drop-down choosing which apps the list shows.
        crate::ui::set_accessible_label(&filter, &gettext("Show"));
        let search_button = gtk::ToggleButton::builder()
            .icon_name("system-search-symbolic")
            .tooltip_text(gettext("Search (Ctrl+F)"))
            .build();
        crate::ui::set_accessible_label(&search_button, &gettext("Search"));
        let menu = gtk::gio::Menu::new();
        menu.append(Some(&gettext("_Events")), Some("win.events"));
        menu.append(Some(&gettext("_Preferences")), Some("win.preferences"));
        menu.append(
            Some(&gettext("_Keyboard Shortcuts")),
            Some("win.show-help-overlay"),
        );
        menu.append(Some(&gettext("_About Corral")), Some("win.about"));
        menu.append(Some(&gettext("_Quit")), Some("app.quit"));
        let menu_button = gtk::MenuButton::builder()
            .icon_name("open-menu-symbolic")
            .menu_model(&menu)
            .tooltip_text(gettext("Main Menu"))
            .build();
        crate::ui::set_accessible_label(&menu_button, &gettext("Main Menu"));
        let header = adw::HeaderBar::new();
        header.pack_start(&launch);
        header.pack_start(&filter);
        header.pack_end(&menu_button);
        header.pack_end(&search_button);

        let search = gtk::SearchEntry::builder()
            .placeholder_text(gettext("Search by name or unit"))
            .build();
        let search_bar = gtk::SearchBar::builder().child(&search).build();
        search_bar.connect_entry(&search);
        search_bar.set_key_capture_widget(Some(&root));
        search_button
            .bind_property("active", &search_bar, "search-mode-enabled")
            .bidirectional()
            .build();

        let banner_label = gtk::Label::builder().wrap(true).xalign(0.0).build();
        let banner_box = gtk::Box::builder()
            .css_classes(["banner"])
            .margin_top(6)
            .margin_bottom(6)
            .margin_start(12)
            .margin_end(12)
            .build();
        banner_box.append(&banner_label);
        let banner = gtk::Revealer::builder().child(&banner_box).build();

        // The list, with an empty state inviting to launch an app.
        let units = UnitList::new(init.show_all);
        let list_scroller = gtk::ScrolledWindow::builder()
            .child(&units.list)
            .hscrollbar_policy(gtk::PolicyType::Never)
            .vexpand(true)
            .build();
        let launch_cta = gtk::Button::builder()
            .label(gettext("Launch an App…"))
            .halign(gtk::Align::Center)
            .css_classes(["pill", "suggested-action"])
            .action_name("win.launch")
            .build();
        let empty = adw::StatusPage::builder()
            .icon_name("io.github.corral.Corral-symbolic")
            .title(gettext("No Contained Apps"))
            .description(gettext(
                "Launch an app with a preset to keep it from eating the machine.",
            ))
            .child(&launch_cta)
            .build();
        let list_stack = gtk::Stack::new();
        list_stack.add_named(&list_scroller, Some("list"));
        list_stack.add_named(&empty, Some("empty"));
        let no_match = adw::StatusPage::builder()
            .icon_name("system-search-symbolic")
            .title(gettext("No Matching Apps"))
            .description(gettext(
                "No contained app matches the search or the filter.",
            ))
            .build();
        list_stack.add_named(&no_match, Some("no-match"));
        list_stack.set_visible_child_name("empty");
        list_stack.set_width_request(520);

        let details = {
            let sender = sender.clone();
            Details::new(move |action| sender.input(Msg::Details(action)))
        };
        let none = adw::StatusPage::builder()
            .icon_name("view-list-symbolic")
            .title(gettext("Select an App"))
            .description(gettext(
                "Its memory and CPU history, limits and actions appear here.",
            ))
            .build();
        let details_stack = gtk::Stack::new();
        details_stack.add_named(&details.root, Some("details"));
        details_stack.add_named(&none, Some("none"));
        details_stack.set_visible_child_name("none");

        let paned = gtk::Paned::builder()
            .orientation(gtk::Orientation::Horizontal)
            .start_child(&list_stack)
            .end_child(&details_stack)
            .position(560)
            .shrink_start_child(false)
            .shrink_end_child(false)
            .vexpand(true)
            .build();
        let toasts = adw::ToastOverlay::new();
        toasts.set_child(Some(&paned));
        let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
        content.append(&header);
        content.append(&search_bar);
        content.append(&banner);
        content.append(&toasts);
        root.set_content(Some(&content));

        // Window actions and their shortcuts.
        let add_action = |name: &str, msg: fn() -> Msg| {
            let action = gtk::gio::SimpleAction::new(name, None);
            let sender = sender.clone();
            action.connect_activate(move |_, _| sender.input(msg()));
            root.add_action(&action);
        };
        add_action("launch", || Msg::OpenLauncher);
        add_action("preferences", || Msg::OpenPreferences);
        {
            let action = gtk::gio::SimpleAction::new("events", None);
            let window = root.clone();
            action.connect_activate(move |_, _| crate::ui::events::show(&window));
            root.add_action(&action);
        }
        {
            let action = gtk::gio::SimpleAction::new("about", None);
            let window = root.clone();
            action.connect_activate(move |_, _| crate::ui::show_about(&window));
            root.add_action(&action);
        }
        {
            let action = gtk::gio::SimpleAction::new("search", None);
            let button = search_button.clone();
            action.connect_activate(move |_, _| button.set_active(!button.is_active()));
            root.add_action(&action);
        }
        if let Some(app) = relm4::main_application().downcast_ref::<gtk::Application>() {
            app.set_accels_for_action("win.launch", &["<Control>n"]);
            app.set_accels_for_action("win.search", &["<Control>f"]);
            app.set_accels_for_action("win.events", &["<Control>e"]);
            app.set_accels_for_action("win.preferences", &["<Control>comma"]);
            app.set_accels_for_action("win.show-help-overlay", &["<Control>question"]);
            app.set_accels_for_action("app.quit", &["<Control>q"]);
        }
        crate::ui::install_shortcuts_window(&root);

        {
            let sender = sender.clone();
            units.list.connect_row_selected(move |_, row| {
                sender.input(Msg::Selected(row.map(|r| r.widget_name().to_string())));
            });
        }
        {
            let sender = sender.clone();
            search.connect_search_changed(move |e| {
                sender.input(Msg::Search(e.text().to_lowercase()))
            });
        }
        {
            let sender = sender.clone();
            filter.connect_selected_notify(move |d| sender.input(Msg::ShowAll(d.selected() == 1)));
        }

        // Connect to systemd (or join the tray's connection), then follow the monitor.
        let connection = init.engine;
        sender.oneshot_command(async move {
            let Some(connection) = connection else {
                return Cmd::Connected(Err("not connected (test)".into()));
            };
            Cmd::Connected(connection.get().await)
        });

        let model = MainWindow {
            ctl: None,
            monitor: None,
            catalog: AppCatalog::load(),
            config_problem,
            state: Arc::default(),
            history: SharedHistory::default(),
            launcher: None,
        };
        let widgets = Widgets {
            units,
            list_stack,
            details_stack,
            details,
            banner,
            banner_label,
            toasts,
        };
        {
            let sender = sender.clone();
            root.connect_show(move |_| sender.input(Msg::Shown));
        }
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        msg: Self::Input,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match msg {
            Msg::Present => root.present(),
            Msg::Shown => self.render(widgets),
            Msg::Selected(None) => {
                widgets.details_stack.set_visible_child_name("none");
            }
            Msg::Selected(Some(unit)) => {
                if let Some(snap) = self.state.units.iter().find(|s| s.info.unit == unit) {
                    let icon = icon_for(&self.catalog, snap);
                    widgets.details.show_unit(snap, icon.as_deref());
                    let now = self.state.sampled_at.unwrap_or_else(SystemTime::now);
                    widgets
                        .details
                        .update(snap, &lock_history(&self.history), now);
                    widgets.details_stack.set_visible_child_name("details");
                }
            }
            Msg::Search(text) => {
                widgets.units.set_query(&text);
                self.render(widgets);
            }
            Msg::ShowAll(all) => {
                widgets.units.set_show_all(all);
                self.render(widgets);
            }
            Msg::Details(DetailsAction::Kill(unit)) => {
                let name = self
                    .state
                    .units
                    .iter()
                    .find(|s| s.info.unit == unit)
                    .map(|s| s.info.name.clone())
                    .unwrap_or_else(|| unit.clone());
                let dialog = adw::MessageDialog::builder()
                    .transient_for(root)
                    .modal(true)
                    .heading(gettext_f("Kill {app}?", &[("app", &name)]))
                    .body(gettext(
                        "Every process of the app ends at once. Unsaved work in it is lost.",
                    ))
                    .build();
                dialog.add_response("cancel", &gettext("Cancel"));
                dialog.add_response("kill", &gettext("Kill"));
                dialog.set_response_appearance("kill", adw::ResponseAppearance::Destructive);
                dialog.set_default_response(Some("cancel"));
                dialog.set_close_response("cancel");
                let sender = sender.clone();
                dialog.connect_response(None, move |_, response| {
                    if response == "kill" {
                        sender.input(Msg::ConfirmedKill(unit.clone()));
                    }
                });
                dialog.present();
            }
            Msg::Details(DetailsAction::Remember(unit, settings)) => {
                let Some(snap) = self.state.units.iter().find(|s| s.info.unit == unit) else {
                    return;
                };
                let app_id = snap
                    .info
                    .app_id
                    .clone()
                    .unwrap_or_else(|| snap.info.name.clone());
                let (text, failed) = match remember(&app_id, &settings) {
                    Ok(()) => (
                        gettext_f("Saved these limits for {app}", &[("app", &snap.info.name)]),
                        false,
                    ),
                    Err(e) => (e, true),
                };
                widgets.details.show_result(&text, failed);
            }
            Msg::Details(action) => self.act(action, &sender),
            Msg::ConfirmedKill(unit) => self.act(DetailsAction::Kill(unit), &sender),
            Msg::OpenLauncher => {
                // A file with a mistake: the last config that loaded stays in force.
                let config = Config::load().unwrap_or_else(|_| (*self.state.config).clone());
                let sender = sender.clone();
                let launcher = Launcher::new(root, &self.catalog, config, move |request| {
                    sender.input(Msg::Launch(Box::new(request)));
                });
                launcher.window.present();
                self.launcher = Some(launcher);
            }
            Msg::Launch(request) => {
                let Some(ctl) = self.ctl.clone() else {
                    if let Some(l) = &self.launcher {
                        l.show_error(&gettext("Corral is not connected to systemd yet."));
                    }
                    return;
                };
                let monitor = self.monitor.clone();
                sender.oneshot_command(async move {
                    let result = launch::launch_service(&ctl.systemd, &request, None).await;
                    let result = match result {
                        Ok(unit) => {
                            ctl.systemd.unref(&unit).await;
                            let _ = remember_last_preset(&request.app_id, &request.preset);
                            if let Some(m) = monitor {
                                m.refresh();
                            }
                            Ok(gettext_f(
                                "{app} runs with preset {preset}",
                                &[("app", &request.app_name), ("preset", &request.preset)],
                            ))
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    Cmd::Launched(result)
                });
            }
            Msg::OpenPreferences => {
                crate::ui::preferences::show(root, self.monitor.clone());
            }
        }
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        msg: Self::CommandOutput,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match msg {
            Cmd::Connected(Ok(crate::engine::Services {
                controller: ctl,
                monitor,
            })) => {
                let mut updates = monitor.subscribe();
                self.ctl = Some(ctl);
                self.history = monitor.history();
                self.monitor = Some(monitor);
                sender.command(move |out, shutdown| {
                    shutdown
                        .register(async move {
                            while updates.changed().await.is_ok() {
                                let state = updates.borrow_and_update().clone();
                                if out.send(Cmd::Update(state)).is_err() {
                                    break;
                                }
                            }
                        })
                        .drop_on_shutdown()
                });
            }
            Cmd::Connected(Err(e)) => {
                self.state = Arc::new(MonitorState {
                    problem: Some(e),
                    ..MonitorState::default()
                });
                self.render(widgets);
            }
            Cmd::Update(state) => {
                self.state = state;
                // A hidden window (the tray's, until it is opened, or closed again) shows
                // nothing: updating its rows every tick would be work for nothing. It renders
                // the state it holds when it is shown (Msg::Shown).
                if root.is_visible() {
                    self.render(widgets);
                }
            }
            Cmd::Done(Ok(text)) => {
                Self::toast(widgets, &text);
                if let Some(m) = &self.monitor {
                    m.refresh();
                }
            }
            Cmd::Done(Err(text)) => Self::toast(widgets, &text),
            Cmd::LimitsApplied(Ok(checks)) => widgets.details.show_checks(&checks),
            Cmd::LimitsApplied(Err(e)) => widgets.details.show_result(&e, true),
            Cmd::Launched(Ok(text)) => {
                if let Some(l) = self.launcher.take() {
                    l.window.close();
                }
                Self::toast(widgets, &text);
            }
            Cmd::Launched(Err(e)) => match &self.launcher {
                Some(l) => l.show_error(&e),
                None => Self::toast(widgets, &e),
            },
        }
    }
}

impl MainWindow {
    /// Runs one action through the controller off the main loop; the result comes back as a
    /// toast (or, for limits, as the read-back shown in the details).
    fn act(&self, action: DetailsAction, sender: &ComponentSender<Self>) {
        let Some(ctl) = self.ctl.clone() else { return };
        let find = |unit: &str| {
            self.state
                .units
                .iter()
                .find(|s| s.info.unit == unit)
                .map(|s| s.info.clone())
        };
        let (unit, info) = match &action {
            DetailsAction::Freeze(u)
            | DetailsAction::Thaw(u)
            | DetailsAction::Stop(u)
            | DetailsAction::Kill(u)
            | DetailsAction::ApplyLimits(u, _)
            | DetailsAction::Remember(u, _) => (u.clone(), find(u)),
        };
        let Some(info) = info else {
            sender.input(Msg::Selected(None));
            return;
        };
        let name = info.name.clone();
        sender.oneshot_command(async move {
            let done = |r: Result<(), ControlError>, what: &str| {
                Cmd::Done(
                    r.map(|()| gettext_f(what, &[("app", &name)]))
                        .map_err(control_error),
                )
            };
            match action {
                DetailsAction::Freeze(_) => {
                    done(ctl.freeze(&info).await, gettext_noop("Froze {app}"))
                }
                DetailsAction::Thaw(_) => done(ctl.thaw(&info).await, gettext_noop("Thawed {app}")),
                DetailsAction::Stop(_) => {
                    done(ctl.stop(&info).await, gettext_noop("Stopped {app}"))
                }
                DetailsAction::Kill(_) => done(
                    ctl.kill(&info, libc::SIGKILL).await,
                    gettext_noop("Killed {app}"),
                ),
                DetailsAction::ApplyLimits(_, settings) => Cmd::LimitsApplied(
                    ctl.set_limits(&info, &settings)
                        .await
                        .map_err(control_error),
                ),
                // Saved by the window itself; never sent here.
                DetailsAction::Remember(..) => Cmd::Done(Ok(unit)),
            }
        });
    }
}

/// Saves limits as the app's rule, keeping the rest of the file as the person wrote it.
fn remember(app_id: &str, settings: &Settings) -> Result<(), String> {
    let fail = |e: crate::config::ConfigError| {
        gettext_f("Could not save the rule: {error}", &[("error", &e)])
    };
    let mut editor = ConfigEditor::open(Config::path()).map_err(fail)?;
    for (key, value) in settings.entries() {
        editor.set_rule_setting(app_id, key, &value).map_err(fail)?;
    }
    editor.save().map_err(fail)
}

fn remember_last_preset(app_id: &str, preset: &str) -> Result<(), crate::config::ConfigError> {
    let mut editor = ConfigEditor::open(Config::path())?;
    editor.set_last_preset(app_id, preset)?;
    editor.save()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_follows_the_monitor_once_it_runs() {
        let fine = MonitorState::default();
        let broken = MonitorState {
            config_problem: Some("config.toml:3:14: bad".into()),
            ..MonitorState::default()
        };
        let lost = MonitorState {
            problem: Some("Lost the connection to the session bus".into()),
            ..broken.clone()
        };
        let at_open = Some("mistake found at open");
        // Before the monitor runs, the window's own reading of the file.
        assert_eq!(banner_text(&fine, false, at_open), at_open);
        // Then the monitor's: a file fixed meanwhile clears the banner, a new mistake shows.
        assert_eq!(banner_text(&fine, true, at_open), None);
        assert_eq!(
            banner_text(&broken, true, None),
            Some("config.toml:3:14: bad")
        );
        // A lost connection matters more than the config.
        assert_eq!(
            banner_text(&lost, true, None),
            Some("Lost the connection to the session bus")
        );
    }
}
