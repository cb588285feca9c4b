//! The launcher: pick an installed app (a recycled list, searched and ranked as `corral apps`
//! does), pick a preset (shown in plain words), optionally adjust limits, launch.

use std::sync::Arc;

use adw::prelude::*;
use relm4::prelude::*;
use relm4::typed_view::list::{RelmListItem, TypedListView};

use crate::apps::{AppCatalog, DesktopEntry};
use crate::config::{Config, Settings};
use crate::i18n::gettext;
use crate::launch::LaunchRequest;
use crate::ui::A11yLabel;

/// Items added to the list at a time, one batch per main-loop turn, until the list view has
/// made all the rows it makes. GTK 4.8's list view makes a row for each of up to 200 items from
/// the top (`GTK_LIST_VIEW_MAX_LIST_ITEMS` in gtklistview.c), however few of them show: made
/// in one go when the launcher opens on a large catalog, they were a stall of a second and more
/// in the emulated guest (BENCHMARKS.md). The items past those get no row and go in at once.
const ROWS_PER_TURN: usize = 12;
const ROWS_MADE: usize = 200;

/// An app of the picker.
#[derive(Debug, Clone, PartialEq)]
pub struct AppItem {
    id: String,
    name: String,
    comment: String,
    icon: String,
}

impl AppItem {
    fn of(app: &DesktopEntry) -> AppItem {
        AppItem {
            id: app.id.clone(),
            name: app.name.clone(),
            comment: app.comment.clone().unwrap_or_else(|| app.id.clone()),
            icon: app
                .icon
                .clone()
                .unwrap_or_else(|| "application-x-executable".to_owned()),
        }
    }
}

pub struct AppItemWidgets {
    icon: gtk::Image,
    name: gtk::Label,
    comment: gtk::Label,
}

impl RelmListItem for AppItem {
    type Root = gtk::Box;
    type Widgets = AppItemWidgets;

    fn setup(_: &gtk::ListItem) -> (gtk::Box, AppItemWidgets) {
        relm4::view! {
            root = gtk::Box {
                set_spacing: 12,
                set_margin_all: 6,
                #[name = "icon"]
                gtk::Image { set_pixel_size: 32 },
                gtk::Box {
                    set_orientation: gtk::Orientation::Vertical,
                    set_spacing: 2,
                    #[name = "name"]
                    gtk::Label { set_xalign: 0.0, set_css_classes: &["heading"] },
                    #[name = "comment"]
                    gtk::Label {
                        set_xalign: 0.0,
                        set_ellipsize: gtk::pango::EllipsizeMode::End,
                        set_css_classes: &["dim-label", "caption"],
                    },
                },
            }
        }
        (
            root,
            AppItemWidgets {
                icon,
                name,
                comment,
            },
        )
    }

    fn bind(&mut self, widgets: &mut AppItemWidgets, root: &mut gtk::Box) {
        widgets.icon.set_icon_name(Some(&self.icon));
        widgets.name.set_label(&self.name);
        widgets.comment.set_label(&self.comment);
        // The list's row (the box's parent) is what a screen reader lists: the app's name.
        if let Some(row) = root.parent() {
            row.set_a11y_label(&self.name);
        }
    }
}

pub struct LauncherInit {
    pub catalog: Arc<AppCatalog>,
    /// The config in force.
    pub config: Config,
}

#[derive(Debug)]
pub enum LauncherInput {
    Search(String),
    /// The desktop entries, read again.
    Catalog(Arc<AppCatalog>),
    /// The next items of the list, a main-loop turn after the last ones.
    Fill,
    AppSelected,
    PresetSelected,
    Launch,
    /// The launch failed: why, shown in the dialog, and another try allowed.
    Failed(String),
}

#[derive(Debug)]
pub enum LauncherOutput {
    Launch(Box<LaunchRequest>),
}

pub struct Launcher {
    apps: TypedListView<AppItem, gtk::SingleSelection>,
    catalog: Arc<AppCatalog>,
    /// The ids of the catalog's apps (`AppCatalog::apps`: installed, shown here, by name),
    /// taken when the catalog comes: each keystroke searches these.
    installed: Vec<String>,
    config: Config,
    preset_names: Vec<String>,
    presets: adw::ComboRow,
    overrides: Vec<(&'static str, adw::EntryRow)>,
    adjust: adw::ExpanderRow,
    error: Option<String>,
    /// The apps the search finds, in order; the list holds the first `shown` of them.
    found: Vec<AppItem>,
    shown: usize,
    /// A [`LauncherInput::Fill`] is on its way.
    filling: bool,
    /// The search text.
    query: String,
    /// A launch is on its way.
    launching: bool,
}

impl Launcher {
    /// The ids of the apps listed, in order.
    pub fn listed(&self) -> Vec<String> {
        (0..self.apps.selection_model.n_items())
            .filter_map(|i| self.apps.get_visible(i))
            .map(|item| item.borrow().id.clone())
            .collect()
    }

    fn selected_app(&self) -> Option<DesktopEntry> {
        let position = self.apps.selection_model.selected();
        let item = self.apps.get_visible(position)?;
        let id = item.borrow().id.clone();
        self.catalog.get(&id).cloned()
    }

    fn selected_preset(&self) -> Option<&str> {
        self.preset_names
            .get(self.presets.selected() as usize)
            .map(String::as_str)
    }

    fn can_launch(&self) -> bool {
        !self.launching && self.apps.selection_model.selected_item().is_some()
    }

    /// The preset in plain words, under its name.
    fn preset_description(&self) -> String {
        self.selected_preset()
            .and_then(|name| self.config.preset(name).ok())
            .map(|p| {
                let words = p.settings.plain_words();
                match (p.description.is_empty(), words.is_empty()) {
                    (_, true) => p.description.clone(),
                    (true, false) => words,
                    (false, false) => format!("{}\n{words}", p.description),
                }
            })
            .unwrap_or_default()
    }

    /// The app's remembered preset, else its rule's, else the default.
    fn preselect_preset(&self, app: &DesktopEntry) {
        let rule = self.config.rule_for(&app.id, None);
        let wanted = rule
            .and_then(|r| r.last_preset.clone().or_else(|| r.preset.clone()))
            .unwrap_or_else(|| crate::config::DEFAULT_PRESET.to_owned());
        if let Some(i) = self.preset_names.iter().position(|n| *n == wanted) {
            self.presets.set_selected(i as u32);
        }
    }

    /// The apps the search finds, ranked as `corral apps QUERY` ranks them. The list is left
    /// alone when they are the same (the entries read again as the launcher opens, with no app
    /// installed or removed since); else it is filled again, a batch at a time.
    fn list(&mut self, query: &str, sender: &ComponentSender<Self>) {
        let apps = self
            .installed
            .iter()
            .filter_map(|id| self.catalog.get(id))
            .collect();
        let found = if query.trim().is_empty() {
            apps
        } else {
            crate::apps::search_among(apps, query)
        };
        let found: Vec<AppItem> = found.into_iter().map(AppItem::of).collect();
        if found == self.found {
            return;
        }
        self.found = found;
        self.shown = 0;
        self.apps.clear();
        self.fill(ROWS_PER_TURN, sender);
    }

    /// Adds up to `count` more of the found apps to the list (all that are left once the list
    /// view has made its rows), and asks for the next batch after GTK has drawn these: the idle
    /// priority runs below GTK's layout and drawing.
    fn fill(&mut self, count: usize, sender: &ComponentSender<Self>) {
        let end = if self.shown >= ROWS_MADE {
            self.found.len()
        } else {
            (self.shown + count).min(self.found.len())
        };
        self.apps
            .extend_from_iter(self.found[self.shown..end].iter().cloned());
        self.shown = end;
        if self.shown < self.found.len() && !self.filling {
            self.filling = true;
            // The launcher may be gone by then (closed and opened again): nothing to fill.
            let input = sender.input_sender().clone();
            gtk::glib::idle_add_local_once(move || {
                let _ = input.send(LauncherInput::Fill);
            });
        }
    }

    fn request(&self) -> Result<LaunchRequest, String> {
        let app = self
            .selected_app()
            .ok_or_else(|| gettext("Choose an app to launch."))?;
        let mut overrides = Settings::default();
        for (key, row) in &self.overrides {
            let text = row.text();
            if !text.trim().is_empty() {
                overrides.set(key, text.trim()).map_err(|e| e.to_string())?;
            }
        }
        crate::launch::desktop_app_request(
            &app,
            &self.config,
            self.selected_preset(),
            &overrides,
            &[],
        )
        .map_err(|e| format!("{}: {e}", app.name))
    }
}

/// The ids of the apps the launcher lists, in their order.
fn ids_of(catalog: &AppCatalog) -> Vec<String> {
    catalog
        .apps()
        .into_iter()
        .map(|app| app.id.clone())
        .collect()
}

#[relm4::component(pub)]
impl SimpleComponent for Launcher {
    type Init = LauncherInit;
    type Input = LauncherInput;
    type Output = LauncherOutput;

    view! {
        #[root]
        adw::Window {
            set_title: Some(&gettext("Launch an App")),
            set_modal: true,
            set_default_width: 520,
            set_default_height: 680,

            gtk::Box {
                set_orientation: gtk::Orientation::Vertical,
                adw::HeaderBar {
                    set_show_end_title_buttons: false,
                    #[wrap(Some)]
                    set_title_widget = &adw::WindowTitle::new(&gettext("Launch an App"), ""),
                    pack_start = &gtk::Button {
                        set_label: &gettext("Cancel"),
                        set_a11y_label: &gettext("Cancel"),
                        connect_clicked[root] => move |_| root.close(),
                    },
                    pack_end = &gtk::Button {
                        set_label: &gettext("Launch"),
                        set_a11y_label: &gettext("Launch"),
                        set_css_classes: &["suggested-action"],
                        #[watch]
                        set_sensitive: model.can_launch(),
                        connect_clicked => LauncherInput::Launch,
                    },
                },
                gtk::Box {
                    set_orientation: gtk::Orientation::Vertical,
                    set_spacing: 12,
                    set_margin_all: 12,
                    gtk::SearchEntry {
                        set_placeholder_text: Some(&gettext("Search apps")),
                        set_a11y_label: &gettext("Search apps"),
                        connect_search_changed[sender] => move |entry| {
                            sender.input(LauncherInput::Search(entry.text().to_string()));
                        },
                    },
                    gtk::ScrolledWindow {
                        set_vexpand: true,
                        set_min_content_height: 240,
                        set_hscrollbar_policy: gtk::PolicyType::Never,
                        #[local_ref]
                        app_list -> gtk::ListView {
                            set_css_classes: &["boxed-list"],
                            set_a11y_label: &gettext("Installed apps"),
                        },
                    },
                    adw::PreferencesGroup {
                        #[local_ref]
                        add = presets -> adw::ComboRow {
                            set_title: &gettext("Preset"),
                            #[watch]
                            set_subtitle: &crate::ui::plain(&model.preset_description()),
                            connect_selected_notify => LauncherInput::PresetSelected,
                        },
                        #[local_ref]
                        add = adjust -> adw::ExpanderRow {
                            set_title: &gettext("Adjust Limits"),
                            set_subtitle: &gettext("Optional: overrides the preset for this launch"),
                        },
                    },
                    gtk::Label {
                        set_xalign: 0.0,
                        set_wrap: true,
                        set_css_classes: &["error"],
                        #[watch]
                        set_visible: model.error.is_some(),
                        #[watch]
                        set_text: model.error.as_deref().unwrap_or(""),
                    },
                },
            },
        }
    }

    fn init(
        init: LauncherInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let preset_names = init.config.preset_names();
        let names: Vec<&str> = preset_names.iter().map(String::as_str).collect();
        let presets = adw::ComboRow::builder()
            .model(&gtk::StringList::new(&names))
            .build();
        let adjust = adw::ExpanderRow::new();
        let overrides = [
            ("memory-max", gettext("Memory max")),
            ("memory-high", gettext("Memory high")),
            ("cpu-quota", gettext("CPU quota")),
        ]
        .into_iter()
        .map(|(key, title)| {
            let row = adw::EntryRow::builder().title(title).build();
            adjust.add_row(&row);
            (key, row)
        })
        .collect();
        let apps = TypedListView::<AppItem, gtk::SingleSelection>::new();
        apps.selection_model.set_autoselect(false);
        apps.selection_model.set_can_unselect(true);
        {
            let sender = sender.clone();
            apps.selection_model
                .connect_selected_item_notify(move |_| sender.input(LauncherInput::AppSelected));
        }
        let mut model = Launcher {
            apps,
            installed: ids_of(&init.catalog),
            catalog: init.catalog,
            config: init.config,
            preset_names,
            presets,
            overrides,
            adjust,
            error: None,
            found: Vec::new(),
            shown: 0,
            filling: false,
            query: String::new(),
            launching: false,
        };
        model.list("", &sender);
        model.apps.selection_model.unselect_all();
        let app_list = &model.apps.view;
        let presets = &model.presets;
        let adjust = &model.adjust;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: LauncherInput, sender: ComponentSender<Self>) {
        match message {
            LauncherInput::Search(query) => {
                self.list(&query, &sender);
                self.query = query;
            }
            LauncherInput::Fill => {
                self.filling = false;
                self.fill(ROWS_PER_TURN, &sender);
            }
            LauncherInput::Catalog(catalog) => {
                // The selection is kept by id, if the app is still there.
                let selected = self.selected_app().map(|app| app.id);
                self.installed = ids_of(&catalog);
                self.catalog = catalog;
                let query = self.query.clone();
                self.list(&query, &sender);
                if let Some(position) =
                    selected.and_then(|id| self.found.iter().position(|app| app.id == id))
                {
                    // Listed up to the app, so that it can be selected.
                    if position >= self.shown {
                        self.fill(position + 1 - self.shown, &sender);
                    }
                    self.apps.selection_model.set_selected(position as u32);
                }
            }
            LauncherInput::AppSelected => {
                if let Some(app) = self.selected_app() {
                    self.preselect_preset(&app);
                }
            }
            LauncherInput::PresetSelected => {}
            LauncherInput::Launch => match self.request() {
                Ok(request) => {
                    self.launching = true;
                    self.error = None;
                    let _ = sender.output(LauncherOutput::Launch(Box::new(request)));
                }
                Err(e) => self.error = Some(e),
            },
            LauncherInput::Failed(message) => {
                self.launching = false;
                self.error = Some(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[gtk::test]
    fn the_launcher_lists_and_ranks_apps_as_corral_apps_does() {
        let _ = adw::init();
        let dir = tempfile::tempdir().unwrap();
        let entry = |file: &str, name: &str, extra: &str| {
            let text =
                format!("[Desktop Entry]\nType=Application\nName={name}\nExec=true\n{extra}");
            std::fs::write(dir.path().join(file), text).unwrap();
        };
        entry(
            "org.mozilla.firefox.desktop",
            "Firefox",
            "GenericName=Web Browser\n",
        );
        entry("org.gnome.Epiphany.desktop", "Web", "");
        entry("org.example.Cobweb.desktop", "cobweb tool", "");
        entry(
            "org.kde.konqueror.desktop",
            "Konqueror Web",
            "OnlyShowIn=KDE;\n",
        );
        let catalog = Arc::new(
            AppCatalog::load_from_with_locale(&[dir.path().to_owned()], None)
                .shown_in(vec!["GNOME".to_owned()]),
        );
        let launcher = Launcher::builder()
            .launch(LauncherInit {
                catalog: Arc::clone(&catalog),
                config: Config::default(),
            })
            .detach();
        let ids =
            |apps: Vec<&DesktopEntry>| apps.into_iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(launcher.model().listed(), ids(catalog.apps()));
        launcher.emit(LauncherInput::Search("web".into()));
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while launcher.model().listed() == ids(catalog.apps()) && std::time::Instant::now() < end {
            gtk::glib::MainContext::default().iteration(false);
        }
        let listed = launcher.model().listed();
        assert_eq!(
            listed,
            ids(catalog.search("web")),
            "the order of corral apps web"
        );
        assert_eq!(
            listed[0], "org.gnome.Epiphany",
            "a name starting with the query first"
        );
        assert!(
            !listed.iter().any(|id| id.contains("konqueror")),
            "KDE only"
        );
    }

    /// Runs the main loop until `done`, for at most `seconds`.
    fn iterate_until(seconds: f64, done: impl Fn() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
        while !done() && std::time::Instant::now() < end {
            gtk::glib::MainContext::default().iteration(false);
        }
        done()
    }

    #[gtk::test]
    fn a_large_catalog_is_listed_a_batch_at_a_time_and_kept_when_read_again() {
        let _ = adw::init();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..300 {
            let text = format!("[Desktop Entry]\nType=Application\nName=App {i:03}\nExec=true\n");
            std::fs::write(
                dir.path().join(format!("org.example.App{i:03}.desktop")),
                text,
            )
            .unwrap();
        }
        let read = || {
            Arc::new(AppCatalog::load_from_with_locale(
                &[dir.path().to_owned()],
                None,
            ))
        };
        let launcher = Launcher::builder()
            .launch(LauncherInit {
                catalog: read(),
                config: Config::default(),
            })
            .detach();
        assert_eq!(
            launcher.model().listed().len(),
            ROWS_PER_TURN,
            "the first rows at once, the others later"
        );
        assert!(
            iterate_until(10.0, || launcher.model().listed().len() == 300),
            "every app listed in the end"
        );
        launcher.model().apps.selection_model.set_selected(250);
        // The same entries read again, as when the launcher opens: the list stays as it is.
        launcher.emit(LauncherInput::Catalog(read()));
        iterate_until(0.5, || false);
        let model = launcher.model();
        assert_eq!(model.shown, 300, "not listed again");
        assert_eq!(
            model.selected_app().map(|app| app.id),
            Some("org.example.App250".to_owned())
        );
    }
}
