//! The main window: the live list of contained apps and the selected app's details, with the
//! launcher, preferences and events on demand. It renders the monitor's state and sends every
//! action through the controller.

use std::sync::Arc;
use std::time::SystemTime;

use adw::prelude::*;
use relm4::prelude::*;

use crate::apps::AppCatalog;
use crate::config::{Config, Settings};
use crate::controller::{ControlError, LimitCheck};
use crate::engine::rules::{BudgetUsage, RuleDraft, RuleOutcome, RuleService};
use crate::engine::{ConfigEdit, ConfigStore, Connected, Engine, Services};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::launch::{self, LaunchRequest};
use crate::monitor::service::{CloseWatch, MonitorState};
use crate::systemd::ManagerKind;
use crate::ui::A11yLabel;
use crate::ui::details::{Details, DetailsInput, DetailsOutput};
use crate::ui::events::Events;
use crate::ui::launcher::{Launcher, LauncherInit, LauncherInput, LauncherOutput};
use crate::ui::preferences::{Preferences, PreferencesInit};
use crate::ui::rule_dialog::{self, RuleForm};
use crate::ui::unit_list::{UnitList, UnitListInput, UnitListOutput, icon_for};

/// How the window starts.
#[derive(Debug, Clone)]
pub struct WindowInit {
    pub manager: ManagerKind,
    /// Show every contained app rather than Corral's own.
    pub show_all: bool,
    /// The process's engine (shared with the tray); `None` in tests that feed states.
    pub engine: Option<Engine>,
    /// Where preferences and remembered limits are written.
    pub store: ConfigStore,
}

#[derive(Debug)]
pub enum Msg {
    Selected(Option<String>),
    Search(String),
    ShowAll(bool),
    Details(DetailsOutput),
    ConfirmedKill(String),
    OpenLauncher,
    Launch(Box<LaunchRequest>),
    OpenPreferences,
    OpenEvents,
    /// Read the desktop entries again (off the main loop), as the launcher does when it opens.
    ReloadCatalog,
    ToggleSearch,
    /// The window was shown: it renders the last state, which it skipped while hidden.
    Shown,
    /// The window was hidden (closed while the tray runs): the monitor may sleep.
    Hidden,
    /// A state to render, as the monitor would publish it (tests without systemd).
    State(Arc<MonitorState>),
    /// The rule dialog was saved.
    SaveRule(RuleDraft),
    /// Move a process of a unit into a contained app of its own, with this preset.
    Contain {
        app: String,
        pid: u32,
        preset: String,
    },
}

pub enum Cmd {
    /// The desktop entries and the config file, read off the main loop at start.
    Started {
        catalog: Arc<AppCatalog>,
        config_problem: Option<String>,
    },
    /// The desktop entries read again (when the launcher opens: apps installed since).
    Catalog(Arc<AppCatalog>),
    Connected(Connected),
    Update(Arc<MonitorState>),
    Done(Result<String, String>),
    LimitsApplied(Result<Vec<LimitCheck>, String>),
    Remembered(Result<String, String>),
    Launched(Result<String, String>),
    RuleSaved(Result<RuleOutcome, String>),
    /// What all apps use against their budget; `None` when it cannot be read.
    Budget(Option<BudgetUsage>),
    Contained(Result<String, String>),
}

/// relm4 wants command output printable for its debug logs; the connection is opaque.
impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Started { catalog, .. } => write!(f, "Started({} apps)", catalog.len()),
            Cmd::Catalog(catalog) => write!(f, "Catalog({} apps)", catalog.len()),
            Cmd::Connected(r) => write!(f, "Connected(ok: {})", r.is_ok()),
            Cmd::Update(s) => write!(f, "Update({} units)", s.units.len()),
            Cmd::Done(r) => write!(f, "Done({r:?})"),
            Cmd::LimitsApplied(r) => write!(f, "LimitsApplied({r:?})"),
            Cmd::Remembered(r) => write!(f, "Remembered({r:?})"),
            Cmd::Launched(r) => write!(f, "Launched({r:?})"),
            Cmd::RuleSaved(r) => write!(f, "RuleSaved({:?})", r.as_ref().map(|o| &o.app_id)),
            Cmd::Budget(b) => write!(f, "Budget({b:?})"),
            Cmd::Contained(r) => write!(f, "Contained({r:?})"),
        }
    }
}

pub struct MainWindow {
    manager: ManagerKind,
    /// How many times the desktop entries were read.
    catalog_reads: usize,
    services: Option<Services>,
    store: ConfigStore,
    catalog: Arc<AppCatalog>,
    config_problem: Option<String>,
    state: Arc<MonitorState>,
    /// The unit whose details show.
    selected: Option<String>,
    unit_list: Controller<UnitList>,
    details: Controller<Details>,
    launcher: Option<Controller<Launcher>>,
    preferences: Option<Controller<Preferences>>,
    events: Option<Controller<Events>>,
    toasts: adw::ToastOverlay,
    /// Rules and the budget, through the store (and systemd, once connected).
    rules: RuleService,
    /// What all apps use against their budget: read at each monitor update while a budget is
    /// in force, else when the window is shown and when the config changes (see
    /// [`MainWindow::budget_followed`]).
    budget: Option<BudgetUsage>,
    budget_reading: bool,
    /// Held while the window is shown: the monitor keeps its refresh interval for it.
    close_watch: Option<CloseWatch>,
}

impl MainWindow {
    /// How many installed apps the window knows (0 until the catalog is read).
    pub fn apps_known(&self) -> usize {
        self.catalog.len()
    }

    /// How many times the window has read the desktop entries (at start, then each time the
    /// launcher opens).
    pub fn catalog_reads(&self) -> usize {
        self.catalog_reads
    }

    /// Reads the desktop entries again, in a blocking task.
    fn reload_catalog(&self, sender: &ComponentSender<Self>) {
        let manager = self.manager;
        sender.oneshot_command(async move {
            let catalog = tokio::task::spawn_blocking(move || AppCatalog::load_for(manager))
                .await
                .unwrap_or_default();
            Cmd::Catalog(Arc::new(catalog))
        });
    }

    fn take_catalog(&mut self, catalog: Arc<AppCatalog>) {
        self.catalog = catalog;
        self.catalog_reads += 1;
        self.unit_list
            .emit(UnitListInput::Catalog(Arc::clone(&self.catalog)));
        if let Some(launcher) = &self.launcher {
            launcher.emit(LauncherInput::Catalog(Arc::clone(&self.catalog)));
        }
    }

    /// What the banner says, if anything.
    fn banner(&self) -> Option<&str> {
        banner_text(
            &self.state,
            self.services.is_some(),
            self.config_problem.as_deref(),
        )
    }

    fn showing_details(&self) -> bool {
        self.selected
            .as_ref()
            .is_some_and(|unit| self.state.units.iter().any(|s| &s.info.unit == unit))
    }

    fn snapshot(&self, unit: &str) -> Option<&crate::monitor::UnitSnapshot> {
        self.state.units.iter().find(|s| s.info.unit == unit)
    }

    fn toast(&self, text: &str) {
        self.toasts.add_toast(crate::ui::toast(text));
    }

    /// Shows the state held: the list, and the details of the selected unit.
    fn render(&self) {
        self.unit_list
            .emit(UnitListInput::Show(Arc::clone(&self.state)));
        if let Some(snap) = self.selected.as_deref().and_then(|u| self.snapshot(u)) {
            self.update_details(snap);
        }
    }

    /// Gives the details the selected unit's latest figures and the rule that reaches it.
    fn update_details(&self, snap: &crate::monitor::UnitSnapshot) {
        self.details.emit(DetailsInput::Update {
            snapshot: Box::new(snap.clone()),
            now: self.state.sampled_at.unwrap_or_else(SystemTime::now),
        });
        self.details.emit(DetailsInput::Rule(self.rules.rule_of(
            &self.state.config,
            &snap.info,
            self.manager,
        )));
    }

    /// Whether the budget line shows: only when a budget is in force.
    fn budget_shown(&self) -> bool {
        self.budget.is_some_and(|b| b.budget().is_some())
    }

    /// Whether the budget is read at every monitor update: while one is in force, in the
    /// config or found on app.slice. Without one, each reading wakes two threads and the main
    /// loop for a line that does not show; a budget set through Corral changes the config,
    /// which brings a reading at once, and one set on app.slice by hand shows when the window
    /// is next shown.
    fn budget_followed(&self) -> bool {
        let general = &self.state.config.general;
        self.budget_shown()
            || general.apps_memory_high.is_some()
            || general.apps_memory_max.is_some()
    }

    /// Reads what all apps use against their budget, unless a reading is under way.
    fn read_budget(&mut self, sender: &ComponentSender<Self>) {
        if self.budget_reading || self.services.is_none() {
            return;
        }
        self.budget_reading = true;
        let rules = self.rules.clone();
        sender.oneshot_command(async move { Cmd::Budget(rules.budget_usage().await) });
    }

    fn select(&mut self, unit: Option<String>) {
        self.selected = unit;
        let Some(snap) = self.selected.as_deref().and_then(|u| self.snapshot(u)) else {
            return;
        };
        self.details.emit(DetailsInput::Show {
            snapshot: Box::new(snap.clone()),
            icon: icon_for(&self.catalog, snap),
        });
        self.update_details(snap);
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

fn control_error(e: ControlError) -> String {
    e.to_string()
}

#[relm4::component(pub)]
impl Component for MainWindow {
    type Init = WindowInit;
    type Input = Msg;
    type Output = ();
    type CommandOutput = Cmd;

    view! {
        #[root]
        adw::ApplicationWindow {
            set_title: Some(&window_title(manager)),
            set_default_width: 1100,
            set_default_height: 720,
            connect_show => Msg::Shown,
            connect_hide => Msg::Hidden,

            gtk::Box {
                set_orientation: gtk::Orientation::Vertical,
                #[name = "header"]
                adw::HeaderBar {
                    pack_start = &gtk::Button {
                        set_icon_name: "list-add-symbolic",
                        set_tooltip_text: Some(&gettext("Launch an App (Ctrl+N)")),
                        set_a11y_label: &gettext("Launch an App"),
                        set_action_name: Some("win.launch"),
                    },
                    #[local_ref]
                    pack_start = filter -> gtk::DropDown {
                        set_tooltip_text: Some(&gettext("Which contained apps to show")),
                        // TRANSLATORS: the accessible name of the drop-down choosing which apps the list shows.
                        set_a11y_label: &gettext("Show"),
                        connect_selected_notify[sender] => move |d| {
                            sender.input(Msg::ShowAll(d.selected() == 1));
                        },
                    },
                    pack_end = &gtk::MenuButton {
                        set_icon_name: "open-menu-symbolic",
                        set_menu_model: Some(&main_menu()),
                        set_tooltip_text: Some(&gettext("Main Menu")),
                        set_a11y_label: &gettext("Main Menu"),
                    },
                    #[name = "search_button"]
                    pack_end = &gtk::ToggleButton {
                        set_icon_name: "system-search-symbolic",
                        set_tooltip_text: Some(&gettext("Search (Ctrl+F)")),
                        set_a11y_label: &gettext("Search"),
                    },
                },
                #[name = "search_bar"]
                gtk::SearchBar {
                    #[name = "search"]
                    #[wrap(Some)]
                    set_child = &gtk::SearchEntry {
                        set_placeholder_text: Some(&gettext("Search by name or unit")),
                        connect_search_changed[sender] => move |e| {
                            sender.input(Msg::Search(e.text().to_lowercase()));
                        },
                    },
                },
                gtk::Revealer {
                    #[watch]
                    set_reveal_child: model.banner().is_some(),
                    gtk::Box {
                        set_css_classes: &["banner"],
                        set_margin_top: 6,
                        set_margin_bottom: 6,
                        set_margin_start: 12,
                        set_margin_end: 12,
                        gtk::Label {
                            set_wrap: true,
                            set_xalign: 0.0,
                            #[watch]
                            set_text: model.banner().unwrap_or(""),
                        },
                    },
                },
                #[local_ref]
                toasts -> adw::ToastOverlay {
                    gtk::Paned {
                        set_orientation: gtk::Orientation::Horizontal,
                        set_position: 560,
                        set_shrink_start_child: false,
                        set_shrink_end_child: false,
                        set_vexpand: true,
                        #[wrap(Some)]
                        set_start_child = &gtk::Box {
                            set_orientation: gtk::Orientation::Vertical,
                            gtk::Box {
                                set_orientation: gtk::Orientation::Vertical,
                                set_spacing: 4,
                                set_margin_top: 6,
                                set_margin_bottom: 6,
                                set_margin_start: 12,
                                set_margin_end: 12,
                                #[watch]
                                set_visible: model.budget_shown(),
                                #[watch]
                                set_tooltip_text: model.budget.map(|b| b.explanation()).as_deref(),
                                gtk::Label {
                                    set_xalign: 0.0,
                                    set_ellipsize: gtk::pango::EllipsizeMode::End,
                                    set_css_classes: &["caption"],
                                    #[watch]
                                    set_text: &model.budget.map(|b| b.words()).unwrap_or_default(),
                                },
                                gtk::LevelBar {
                                    #[watch]
                                    set_value: model.budget.and_then(|b| b.fraction()).unwrap_or(0.0),
                                },
                            },
                            append: model.unit_list.widget(),
                        },
                        #[wrap(Some)]
                        set_end_child = &gtk::Stack {
                            add_named[Some("details")] = model.details.widget(),
                            add_named[Some("none")] = &adw::StatusPage {
                                set_icon_name: Some("view-list-symbolic"),
                                set_title: &gettext("Select an App"),
                                set_description: Some(&gettext("Its memory and CPU history, limits and actions appear here.")),
                            },
                            #[watch]
                            set_visible_child_name: if model.showing_details() { "details" } else { "none" },
                        },
                    },
                },
            },
        }
    }

    fn init(
        init: WindowInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        // The desktop entries and the config file are read off the main loop.
        let manager = init.manager;
        sender.oneshot_command(async move {
            tokio::task::spawn_blocking(move || Cmd::Started {
                catalog: Arc::new(AppCatalog::load_for(manager)),
                config_problem: Config::load().err().map(|e| {
                    gettext_f(
                        "Your config file has a mistake, so the built-in presets are in use: {error}",
                        &[("error", &e)],
                    )
                }),
            })
            .await
            .unwrap_or_else(|_| Cmd::Started {
                catalog: Arc::default(),
                config_problem: None,
            })
        });
        // Connect to systemd (or join the tray's connection), then follow the monitor.
        let engine = init.engine;
        sender.oneshot_command(async move {
            match engine {
                Some(engine) => Cmd::Connected(engine.get().await),
                None => Cmd::Connected(Err("not connected (test)".into())),
            }
        });
        let unit_list = UnitList::builder()
            .launch(init.show_all)
            .forward(sender.input_sender(), |UnitListOutput::Selected(unit)| {
                Msg::Selected(unit)
            });
        let details = Details::builder()
            .launch(())
            .forward(sender.input_sender(), Msg::Details);
        let model = MainWindow {
            manager,
            catalog_reads: 0,
            services: None,
            catalog: Arc::default(),
            config_problem: None,
            state: Arc::default(),
            selected: None,
            unit_list,
            details,
            launcher: None,
            preferences: None,
            events: None,
            toasts: adw::ToastOverlay::new(),
            rules: RuleService::for_user(init.store.clone(), None),
            budget: None,
            budget_reading: false,
            store: init.store,
            close_watch: None,
        };
        model.unit_list.widget().set_vexpand(true);
        let shown = [gettext("Corral’s Apps"), gettext("All Apps")];
        let filter = &gtk::DropDown::from_strings(&[&shown[0], &shown[1]]);
        filter.set_selected(u32::from(init.show_all));
        let toasts = &model.toasts;
        let widgets = view_output!();
        widgets
            .search_button
            .bind_property("active", &widgets.search_bar, "search-mode-enabled")
            .bidirectional()
            .build();
        widgets.search_bar.connect_entry(&widgets.search);
        widgets.search_bar.set_key_capture_widget(Some(&root));
        // Whose units these are, where it matters: the system manager's run as root.
        if let Some(subtitle) = header_subtitle(manager) {
            let title = adw::WindowTitle::new(crate::identity::APP_NAME, &subtitle);
            widgets.header.set_title_widget(Some(&title));
        }
        install_actions(&root, &sender);
        ComponentParts { model, widgets }
    }

    fn update_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        message: Msg,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match message {
            Msg::Shown => {
                self.close_watch = self.services.as_ref().map(|s| s.monitor.watch_closely());
                self.render();
                self.read_budget(&sender);
            }
            Msg::Hidden => self.close_watch = None,
            Msg::State(state) => {
                self.state = state;
                self.render();
            }
            Msg::Selected(unit) => self.select(unit),
            Msg::Search(text) => self.unit_list.emit(UnitListInput::Search(text)),
            Msg::ShowAll(all) => self.unit_list.emit(UnitListInput::ShowAll(all)),
            Msg::ToggleSearch => widgets
                .search_button
                .set_active(!widgets.search_button.is_active()),
            Msg::Details(DetailsOutput::Kill(unit)) => self.confirm_kill(unit, root, &sender),
            Msg::Details(DetailsOutput::Remember(unit, settings)) => {
                self.remember(&unit, settings, &sender)
            }
            Msg::Details(DetailsOutput::LimitEverywhere(unit)) => {
                self.limit_everywhere(&unit, root, &sender)
            }
            Msg::Details(DetailsOutput::Contain { unit, pid, command }) => {
                self.confirm_contain(&unit, pid, &command, root, &sender)
            }
            Msg::Details(action) => self.act(action, &sender),
            Msg::SaveRule(draft) => {
                let rules = self.rules.clone();
                sender.oneshot_command(async move { Cmd::RuleSaved(rules.save(draft).await) });
            }
            Msg::Contain { app, pid, preset } => self.contain(app, pid, preset, &sender),
            Msg::ConfirmedKill(unit) => self.act(DetailsOutput::Kill(unit), &sender),
            Msg::OpenLauncher => {
                let launcher = Launcher::builder()
                    .transient_for(root)
                    .launch(LauncherInit {
                        catalog: Arc::clone(&self.catalog),
                        // A file with a mistake: the last config that loaded stays in force.
                        config: (*self.state.config).clone(),
                    })
                    .forward(sender.input_sender(), |LauncherOutput::Launch(request)| {
                        Msg::Launch(request)
                    });
                launcher.widget().present();
                self.launcher = Some(launcher);
                // Apps installed since the last reading show up as the launcher opens.
                self.reload_catalog(&sender);
            }
            Msg::Launch(request) => self.launch(request, &sender),
            Msg::ReloadCatalog => self.reload_catalog(&sender),
            Msg::OpenPreferences => {
                let preferences = Preferences::builder()
                    .transient_for(root)
                    .launch(PreferencesInit {
                        rules: self.rules.clone(),
                        store: self.store.clone(),
                        monitor: self.services.as_ref().map(|s| s.monitor.clone()),
                    })
                    .detach();
                preferences.widget().present();
                self.preferences = Some(preferences);
            }
            Msg::OpenEvents => {
                let events = Events::builder().transient_for(root).launch(()).detach();
                events.widget().present();
                self.events = Some(events);
            }
        }
        self.update_view(widgets, sender);
    }

    fn update_cmd_with_view(
        &mut self,
        widgets: &mut Self::Widgets,
        message: Cmd,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        match message {
            Cmd::Started {
                catalog,
                config_problem,
            } => {
                self.config_problem = config_problem;
                self.take_catalog(catalog);
            }
            Cmd::Catalog(catalog) => self.take_catalog(catalog),
            Cmd::Connected(Ok(services)) => {
                if root.is_visible() {
                    self.close_watch = Some(services.monitor.watch_closely());
                }
                self.follow(services, &sender);
            }
            Cmd::Connected(Err(e)) => {
                self.state = Arc::new(MonitorState {
                    problem: Some(e),
                    ..(*self.state).clone()
                });
                self.render();
            }
            Cmd::Update(state) => {
                let config_changed = !Arc::ptr_eq(&state.config, &self.state.config);
                self.state = state;
                // A hidden window (the tray's, once closed: it is built when first opened) shows
                // nothing: updating its rows every tick would be work for nothing. It renders
                // the state it holds when it is shown (Msg::Shown).
                if root.is_visible() {
                    self.render();
                    if config_changed || self.budget_followed() {
                        self.read_budget(&sender);
                    }
                }
            }
            Cmd::Done(Ok(text)) => {
                self.toast(&text);
                if let Some(services) = &self.services {
                    services.monitor.refresh();
                }
            }
            Cmd::Done(Err(text)) => self.toast(&text),
            Cmd::LimitsApplied(Ok(checks)) => self.details.emit(DetailsInput::Checks(checks)),
            Cmd::LimitsApplied(Err(text)) | Cmd::Remembered(Err(text)) => self
                .details
                .emit(DetailsInput::Result { text, error: true }),
            Cmd::Remembered(Ok(text)) => self
                .details
                .emit(DetailsInput::Result { text, error: false }),
            Cmd::Launched(Ok(text)) => {
                if let Some(launcher) = self.launcher.take() {
                    launcher.widget().close();
                }
                self.toast(&text);
            }
            Cmd::RuleSaved(Ok(outcome)) => {
                self.toast(&outcome.summary());
                let error = outcome.problem.is_some() || outcome.failures() > 0;
                let mut lines = vec![outcome.summary()];
                lines.extend(outcome.lines());
                self.details.emit(DetailsInput::RuleResult { lines, error });
                if let Some(services) = &self.services {
                    services.monitor.refresh();
                }
            }
            Cmd::RuleSaved(Err(e)) => {
                let text = gettext_f("Could not save the rule: {error}", &[("error", &e)]);
                self.toast(&text);
                self.details.emit(DetailsInput::RuleResult {
                    lines: vec![text],
                    error: true,
                });
            }
            Cmd::Budget(budget) => {
                self.budget_reading = false;
                self.budget = budget;
            }
            Cmd::Contained(result) => {
                match result {
                    Ok(text) | Err(text) => self.toast(&text),
                }
                if let Some(services) = &self.services {
                    services.monitor.refresh();
                }
            }
            Cmd::Launched(Err(e)) => match &self.launcher {
                Some(launcher) => launcher.emit(LauncherInput::Failed(e)),
                None => self.toast(&e),
            },
        }
        self.update_view(widgets, sender);
    }
}

/// The main menu of the header bar.
fn main_menu() -> gtk::gio::Menu {
    let menu = gtk::gio::Menu::new();
    menu.append(Some(&gettext("_Events")), Some("win.events"));
    menu.append(Some(&gettext("_Preferences")), Some("win.preferences"));
    menu.append(
        Some(&gettext("_Keyboard Shortcuts")),
        Some("win.show-help-overlay"),
    );
    menu.append(Some(&gettext("_About Corral")), Some("win.about"));
    menu.append(Some(&gettext("_Quit")), Some("app.quit"));
    menu
}

/// The window's actions and their keyboard shortcuts.
fn install_actions(root: &adw::ApplicationWindow, sender: &ComponentSender<MainWindow>) {
    type Action = (&'static str, fn() -> Msg);
    let actions: [Action; 4] = [
        ("launch", || Msg::OpenLauncher),
        ("preferences", || Msg::OpenPreferences),
        ("events", || Msg::OpenEvents),
        ("search", || Msg::ToggleSearch),
    ];
    for (name, msg) in actions {
        let action = gtk::gio::SimpleAction::new(name, None);
        let sender = sender.clone();
        action.connect_activate(move |_, _| sender.input(msg()));
        root.add_action(&action);
    }
    let about = gtk::gio::SimpleAction::new("about", None);
    let window = root.clone();
    about.connect_activate(move |_, _| crate::ui::show_about(&window));
    root.add_action(&about);
    if let Some(app) = relm4::main_application().downcast_ref::<gtk::Application>() {
        app.set_accels_for_action("win.launch", &["<Control>n"]);
        app.set_accels_for_action("win.search", &["<Control>f"]);
        app.set_accels_for_action("win.events", &["<Control>e"]);
        app.set_accels_for_action("win.preferences", &["<Control>comma"]);
        app.set_accels_for_action("win.show-help-overlay", &["<Control>question"]);
        app.set_accels_for_action("app.quit", &["<Control>q"]);
    }
    crate::ui::install_shortcuts_window(root);
}

impl MainWindow {
    /// Takes the engine's services and follows the monitor's state.
    fn follow(&mut self, services: Services, sender: &ComponentSender<Self>) {
        let mut updates = services.monitor.subscribe();
        self.details
            .emit(DetailsInput::History(services.monitor.history()));
        self.rules =
            RuleService::for_user(self.store.clone(), Some(Arc::clone(&services.controller)));
        self.services = Some(services);
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

    fn confirm_kill(
        &self,
        unit: String,
        root: &adw::ApplicationWindow,
        sender: &ComponentSender<Self>,
    ) {
        let name = self
            .snapshot(&unit)
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

    /// Saves limits as the app's rule, through the store (off the main loop).
    fn remember(&self, unit: &str, settings: Settings, sender: &ComponentSender<Self>) {
        let Some(snap) = self.snapshot(unit) else {
            return;
        };
        let app_id = snap
            .info
            .app_id
            .clone()
            .unwrap_or_else(|| snap.info.name.clone());
        let name = snap.info.name.clone();
        let store = self.store.clone();
        sender.oneshot_command(async move {
            let keys = settings.entries().into_iter().map(|(k, _)| k).collect();
            let saved = store
                .save(ConfigEdit::Rule {
                    app_id,
                    preset: crate::config::RulePreset::Keep,
                    keys,
                    settings,
                })
                .await;
            Cmd::Remembered(
                saved
                    .map(|()| gettext_f("Saved these limits for {app}", &[("app", &name)]))
                    .map_err(|e| gettext_f("Could not save the rule: {error}", &[("error", &e)])),
            )
        });
    }

    /// "Limit This App Everywhere…": the rule dialog, prefilled with the unit's limits.
    fn limit_everywhere(
        &self,
        unit: &str,
        root: &adw::ApplicationWindow,
        sender: &ComponentSender<Self>,
    ) {
        let Some(snap) = self.snapshot(unit) else {
            return;
        };
        let rule = self
            .rules
            .rule_of(&self.state.config, &snap.info, self.manager);
        let Some(app_id) = rule.app_id() else {
            if let crate::engine::rules::UnitRule::Impossible(why) = &rule {
                self.toast(why);
            }
            return;
        };
        let form = RuleForm::from_unit(snap, app_id, &self.state.config);
        let presets = self
            .state
            .config
            .presets()
            .into_iter()
            .map(|p| p.name)
            .collect();
        let sender = sender.clone();
        rule_dialog::open(root, form, presets, move |draft| {
            sender.input(Msg::SaveRule(draft));
        });
    }

    /// "Contain…" on a process: asks for the preset, then moves it.
    fn confirm_contain(
        &self,
        unit: &str,
        pid: u32,
        command: &str,
        root: &adw::ApplicationWindow,
        sender: &ComponentSender<Self>,
    ) {
        let app = self
            .snapshot(unit)
            .map(|s| s.info.name.clone())
            .unwrap_or_else(|| unit.to_owned());
        let heading = gettext_f("Contain Process {pid}?", &[("pid", &pid)]);
        let dialog = adw::MessageDialog::builder()
            .transient_for(root)
            .modal(true)
            .title(&heading)
            .heading(&heading)
            .body(gettext_f(
                "“{command}” and its children move out of {app} into a contained app of their own, with the limits of the preset chosen here. The rest of {app} keeps running.",
                &[("command", &command), ("app", &app)],
            ))
            .build();
        let presets: Vec<String> = self
            .state
            .config
            .presets()
            .into_iter()
            .map(|p| p.name)
            .collect();
        let refs: Vec<&str> = presets.iter().map(String::as_str).collect();
        let combo = adw::ComboRow::builder()
            .title(gettext("Preset"))
            .model(&gtk::StringList::new(&refs))
            .selected(
                presets
                    .iter()
                    .position(|p| p == crate::config::DEFAULT_PRESET)
                    .unwrap_or(0) as u32,
            )
            .build();
        let group = adw::PreferencesGroup::new();
        group.add(&combo);
        dialog.set_extra_child(Some(&group));
        dialog.add_response("cancel", &gettext("Cancel"));
        dialog.add_response("contain", &gettext("Contain"));
        dialog.set_response_appearance("contain", adw::ResponseAppearance::Suggested);
        dialog.set_default_response(Some("contain"));
        dialog.set_close_response("cancel");
        let sender = sender.clone();
        dialog.connect_response(None, move |_, response| {
            if response == "contain"
                && let Some(preset) = presets.get(combo.selected() as usize)
            {
                sender.input(Msg::Contain {
                    app: app.clone(),
                    pid,
                    preset: preset.clone(),
                });
            }
        });
        dialog.present();
    }

    /// Moves process `pid` (of `app`) and its children into a scope of its own, as `corral
    /// adopt PID -p PRESET` does; the result is a toast.
    fn contain(&self, app: String, pid: u32, preset: String, sender: &ComponentSender<Self>) {
        let Some(ctl) = self.services.as_ref().map(|s| Arc::clone(&s.controller)) else {
            self.toast(&gettext("Corral is not connected to systemd yet."));
            return;
        };
        let config = (*self.state.config).clone();
        let catalog = Arc::clone(&self.catalog);
        sender.oneshot_command(async move {
            let fail = |error: String| {
                gettext_f(
                    "Could not contain process {pid} of {app}: {error}",
                    &[("pid", &pid), ("app", &app), ("error", &error)],
                )
            };
            let proc = crate::procfs::ProcFs::system();
            let request = {
                let proc = proc.clone();
                tokio::task::spawn_blocking(move || {
                    crate::adopt::request(
                        &proc,
                        pid,
                        &config,
                        &catalog,
                        Some(&preset),
                        &Settings::default(),
                    )
                })
                .await
            };
            let request = match request {
                Ok(Ok(request)) => request,
                Ok(Err(e)) => return Cmd::Contained(Err(fail(e.to_string()))),
                Err(e) => return Cmd::Contained(Err(fail(e.to_string()))),
            };
            let adopted = match crate::adopt::adopt(&ctl.systemd, &proc, &request).await {
                Ok(adopted) => adopted,
                Err(e) => return Cmd::Contained(Err(fail(e.to_string()))),
            };
            let mut text = adopted.words(&request.app_name, pid, &request.preset);
            if let Some(pids) = adopted.left_behind_list() {
                text.push_str(". ");
                text.push_str(&gettext_f(
                    "{pids} stayed where they were (started during the move, or not yours).",
                    &[("pids", &pids)],
                ));
            }
            Cmd::Contained(Ok(text))
        });
    }

    fn launch(&self, request: Box<LaunchRequest>, sender: &ComponentSender<Self>) {
        let Some(services) = self.services.clone() else {
            if let Some(launcher) = &self.launcher {
                launcher.emit(LauncherInput::Failed(gettext(
                    "Corral is not connected to systemd yet.",
                )));
            }
            return;
        };
        let store = self.store.clone();
        sender.oneshot_command(async move {
            let ctl = &services.controller;
            let result = match launch::launch_service(&ctl.systemd, &request, None).await {
                Ok(unit) => {
                    ctl.systemd.unref(&unit).await;
                    // Only a hint for next time: a file that cannot be written is logged.
                    store.submit(ConfigEdit::LastPreset {
                        app_id: request.app_id.clone(),
                        preset: request.preset.clone(),
                    });
                    services.monitor.refresh();
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

    /// Runs one action through the controller off the main loop; the result comes back as a
    /// toast (or, for limits, as the read-back shown in the details).
    fn act(&mut self, action: DetailsOutput, sender: &ComponentSender<Self>) {
        let Some(ctl) = self.services.as_ref().map(|s| Arc::clone(&s.controller)) else {
            return;
        };
        let unit = match &action {
            DetailsOutput::Freeze(u)
            | DetailsOutput::Thaw(u)
            | DetailsOutput::Stop(u)
            | DetailsOutput::Kill(u)
            | DetailsOutput::ApplyLimits(u, _)
            | DetailsOutput::Remember(u, _)
            | DetailsOutput::LimitEverywhere(u)
            | DetailsOutput::Contain { unit: u, .. } => u.clone(),
        };
        let Some(info) = self.snapshot(&unit).map(|s| s.info.clone()) else {
            self.selected = None;
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
                DetailsOutput::Freeze(_) => {
                    done(ctl.freeze(&info).await, gettext_noop("Froze {app}"))
                }
                DetailsOutput::Thaw(_) => done(ctl.thaw(&info).await, gettext_noop("Thawed {app}")),
                DetailsOutput::Stop(_) => {
                    done(ctl.stop(&info).await, gettext_noop("Stopped {app}"))
                }
                DetailsOutput::Kill(_) => done(
                    ctl.kill(&info, libc::SIGKILL).await,
                    gettext_noop("Killed {app}"),
                ),
                DetailsOutput::ApplyLimits(_, settings) => Cmd::LimitsApplied(
                    ctl.set_limits(&info, &settings)
                        .await
                        .map_err(control_error),
                ),
                // Handled by the window itself (the store, dialogs); never sent here.
                DetailsOutput::Remember(..)
                | DetailsOutput::LimitEverywhere(_)
                | DetailsOutput::Contain { .. } => Cmd::Done(Ok(unit)),
            }
        });
    }
}

/// The header's second line: said for the system manager only, whose apps run as root for
/// every user, so that a window of each kind is told apart at a glance.
fn header_subtitle(manager: ManagerKind) -> Option<String> {
    match manager {
        ManagerKind::User => None,
        ManagerKind::System => Some(gettext("System — apps run as root, for all users")),
    }
}

/// The window's title, as a window list or task switcher shows it.
fn window_title(manager: ManagerKind) -> String {
    match manager {
        ManagerKind::User => crate::identity::APP_NAME.to_owned(),
        // TRANSLATORS: the title of the window that manages the system manager's units.
        ManagerKind::System => gettext("Corral (System)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::UnitSnapshot;

    fn snapshot(name: &str, unit: &str, memory: u64) -> UnitSnapshot {
        crate::ui::unit_list::tests::unit(name, unit, memory, false)
    }

    /// Runs the main loop until `done` holds, for at most five seconds.
    fn until(what: &str, done: impl Fn() -> bool) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !done() {
            assert!(
                std::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
            gtk::glib::MainContext::default().iteration(false);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The text of every label below `widget`.
    fn labels(widget: &gtk::Widget, out: &mut Vec<String>) {
        if let Some(label) = widget.downcast_ref::<gtk::Label>() {
            out.push(label.text().to_string());
        }
        let mut child = widget.first_child();
        while let Some(c) = child {
            labels(&c, out);
            child = c.next_sibling();
        }
    }

    #[gtk::test]
    fn the_window_lists_the_apps_under_headers_and_shows_the_selected_ones_details() {
        let _ = adw::init();
        crate::ui::register_resources();
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::spawn(dir.path().join("config.toml"), std::time::Duration::ZERO);
        let window = MainWindow::builder()
            .launch(WindowInit {
                manager: ManagerKind::User,
                show_all: true,
                engine: None,
                store,
            })
            .detach();
        window.widget().present();
        // Without systemd the banner says so.
        until("the banner", || {
            window.model().banner() == Some("not connected (test)")
        });
        let firefox = "app-corral-firefox-00000001.service";
        let code = "app-corral-code-00000002.service";
        window.emit(Msg::State(Arc::new(MonitorState {
            units: vec![
                snapshot("Firefox", firefox, 1 << 30),
                snapshot("Code", code, 2 << 30),
            ],
            ..MonitorState::default()
        })));
        let rows = || window.model().unit_list.model().rows_shown();
        until("the rows", || rows().len() == 2);
        assert_eq!(rows(), [code, firefox], "most memory first");
        let model = window.model();
        let mut shown = Vec::new();
        labels(window.widget().upcast_ref(), &mut shown);
        for header in ["App", "Memory", "CPU", "Tasks", "Pressure"] {
            assert!(
                shown.iter().any(|t| t == header),
                "no {header} header: {shown:?}"
            );
        }
        assert!(!model.showing_details(), "nothing selected yet");
        drop(model);

        window.emit(Msg::Selected(Some(firefox.to_owned())));
        until("the details", || window.model().showing_details());
        until("the details' title", || {
            let mut shown = Vec::new();
            labels(window.model().details.widget().upcast_ref(), &mut shown);
            shown.iter().any(|t| t == "Firefox")
        });
        // A limit changed elsewhere (a rule, the tray) shows in an editor nobody touched; an
        // editor being typed into keeps what was typed.
        assert_eq!(window.model().details.model().editor_texts()[1], "4G");
        window.model().details.model().type_into_editor(4, "99");
        let mut changed = snapshot("Firefox", firefox, 1 << 30);
        if let Some(cgroup) = changed.cgroup.as_mut() {
            cgroup.memory_max = Some(crate::cgroup::Limit::Value(2 << 30));
            cgroup.pids_max = Some(crate::cgroup::Limit::Value(500));
        }
        window.emit(Msg::State(Arc::new(MonitorState {
            units: vec![changed, snapshot("Code", code, 2 << 30)],
            ..MonitorState::default()
        })));
        until("the new memory max in its editor", || {
            window.model().details.model().editor_texts()[1] == "2G"
        });
        assert_eq!(window.model().details.model().editor_texts()[4], "99");
        // Which rule reaches it (none: the test's config has no rules), and its processes.
        until("the rule section", || {
            let mut shown = Vec::new();
            labels(window.model().details.widget().upcast_ref(), &mut shown);
            shown.iter().any(|t| t == "No rule for firefox")
                && shown.iter().any(|t| t == "Processes")
        });

        // The app ends: its details close.
        window.emit(Msg::State(Arc::new(MonitorState {
            units: vec![snapshot("Code", code, 2 << 30)],
            ..MonitorState::default()
        })));
        until("the details to close", || !window.model().showing_details());
        window.widget().close();
    }

    #[test]
    fn the_system_window_says_so_in_its_header_and_title() {
        assert_eq!(header_subtitle(ManagerKind::User), None);
        assert_eq!(window_title(ManagerKind::User), "Corral");
        let subtitle = header_subtitle(ManagerKind::System).unwrap();
        assert!(subtitle.starts_with("System"), "{subtitle}");
        assert_eq!(window_title(ManagerKind::System), "Corral (System)");
    }

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
