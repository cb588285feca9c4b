//! The launcher: pick an installed app, pick a preset (shown in plain words), optionally adjust
//! limits, launch. Errors are shown in the dialog; the last preset per app is remembered.

use std::cell::RefCell;
use std::rc::Rc;

use adw::prelude::*;

use crate::apps::{AppCatalog, DesktopEntry};
use crate::config::{Config, Settings};
use crate::i18n::gettext;
use crate::launch::LaunchRequest;

pub struct Launcher {
    pub window: adw::Window,
    list: gtk::ListBox,
    presets: adw::ComboRow,
    preset_names: Vec<String>,
    overrides: Vec<(&'static str, adw::EntryRow)>,
    error: gtk::Label,
    launch: gtk::Button,
    apps: Vec<DesktopEntry>,
    config: Config,
}

impl Launcher {
    /// Builds the dialog; `on_launch` receives the request the person confirmed.
    pub fn new(
        parent: &impl IsA<gtk::Window>,
        catalog: &AppCatalog,
        config: Config,
        on_launch: impl Fn(LaunchRequest) + 'static,
    ) -> Rc<Launcher> {
        let apps: Vec<DesktopEntry> = catalog.apps().into_iter().cloned().collect();
        let search = gtk::SearchEntry::builder()
            .placeholder_text(gettext("Search apps"))
            .build();
        crate::ui::set_accessible_label(&search, &gettext("Search apps"));
        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::Single)
            .css_classes(["boxed-list"])
            .build();
        crate::ui::set_accessible_label(&list, &gettext("Installed apps"));
        for app in &apps {
            list.append(&app_row(app));
        }
        let scroller = gtk::ScrolledWindow::builder()
            .child(&list)
            .vexpand(true)
            .min_content_height(240)
            .hscrollbar_policy(gtk::PolicyType::Never)
            .build();

        let preset_names = config.preset_names();
        let model =
            gtk::StringList::new(&preset_names.iter().map(String::as_str).collect::<Vec<_>>());
        let presets = adw::ComboRow::builder()
            .title(gettext("Preset"))
            .model(&model)
            .build();
        let group = adw::PreferencesGroup::new();
        group.add(&presets);
        let adjust = adw::ExpanderRow::builder()
            .title(gettext("Adjust Limits"))
            .subtitle(gettext("Optional: overrides the preset for this launch"))
            .build();
        let overrides: Vec<(&'static str, adw::EntryRow)> = [
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
        group.add(&adjust);

        let error = gtk::Label::builder()
            .xalign(0.0)
            .wrap(true)
            .css_classes(["error"])
            .visible(false)
            .build();
        let content = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(12)
            .margin_top(12)
            .margin_bottom(12)
            .margin_start(12)
            .margin_end(12)
            .build();
        content.append(&search);
        content.append(&scroller);
        content.append(&group);
        content.append(&error);

        let cancel = gtk::Button::with_label(&gettext("Cancel"));
        let launch = gtk::Button::builder()
            .label(gettext("Launch"))
            .css_classes(["suggested-action"])
            .sensitive(false)
            .build();
        crate::ui::set_accessible_label(&cancel, &gettext("Cancel"));
        crate::ui::set_accessible_label(&launch, &gettext("Launch"));
        let header = adw::HeaderBar::builder()
            .show_end_title_buttons(false)
            .title_widget(&adw::WindowTitle::new(&gettext("Launch an App"), ""))
            .build();
        header.pack_start(&cancel);
        header.pack_end(&launch);
        let body = gtk::Box::new(gtk::Orientation::Vertical, 0);
        body.append(&header);
        body.append(&content);
        let window = adw::Window::builder()
            .transient_for(parent)
            .modal(true)
            .default_width(520)
            .default_height(680)
            .content(&body)
            .title(gettext("Launch an App"))
            .build();

        let launcher = Rc::new(Launcher {
            window,
            list,
            presets,
            preset_names,
            overrides,
            error,
            launch,
            apps,
            config,
        });

        let filter_text = Rc::new(RefCell::new(String::new()));
        {
            let weak = Rc::downgrade(&launcher);
            let text = Rc::clone(&filter_text);
            launcher.list.set_filter_func(move |row| {
                let query = text.borrow();
                let Some(l) = weak.upgrade() else { return true };
                let Some(app) = l.apps.get(row.index() as usize) else {
                    return true;
                };
                query.is_empty() || matches_query(app, &query)
            });
        }
        {
            let weak = Rc::downgrade(&launcher);
            search.connect_search_changed(move |entry| {
                *filter_text.borrow_mut() = entry.text().to_lowercase();
                if let Some(l) = weak.upgrade() {
                    l.list.invalidate_filter();
                }
            });
        }
        {
            let weak = Rc::downgrade(&launcher);
            launcher.list.connect_row_selected(move |_, row| {
                let Some(l) = weak.upgrade() else { return };
                l.launch.set_sensitive(row.is_some());
                if let Some(app) = row.and_then(|r| l.apps.get(r.index() as usize)) {
                    l.preselect_preset(app);
                }
            });
        }
        {
            let weak = Rc::downgrade(&launcher);
            launcher.presets.connect_selected_notify(move |_| {
                if let Some(l) = weak.upgrade() {
                    l.describe_preset();
                }
            });
        }
        launcher.describe_preset();
        {
            let window = launcher.window.clone();
            cancel.connect_clicked(move |_| window.close());
        }
        {
            let weak = Rc::downgrade(&launcher);
            launcher.launch.connect_clicked(move |_| {
                let Some(l) = weak.upgrade() else { return };
                match l.request() {
                    Ok(request) => {
                        l.launch.set_sensitive(false);
                        l.error.set_visible(false);
                        on_launch(request);
                    }
                    Err(e) => l.show_error(&e),
                }
            });
        }
        launcher
    }

    fn selected_app(&self) -> Option<&DesktopEntry> {
        self.list
            .selected_row()
            .and_then(|r| self.apps.get(r.index() as usize))
    }

    fn selected_preset(&self) -> Option<&str> {
        self.preset_names
            .get(self.presets.selected() as usize)
            .map(String::as_str)
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

    fn describe_preset(&self) {
        let text = self
            .selected_preset()
            .and_then(|name| self.config.preset(name).ok())
            .map(|p| {
                let words = p.settings.plain_words();
                match (p.description.is_empty(), words.is_empty()) {
                    (_, true) => p.description.clone(),
                    (true, false) => words,
                    (false, false) => format!("{}\n{words}", p.description),
                }
            })
            .unwrap_or_default();
        self.presets.set_subtitle(&crate::ui::plain(&text));
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
            app,
            &self.config,
            self.selected_preset(),
            &overrides,
            &[],
        )
        .map_err(|e| format!("{}: {e}", app.name))
    }

    /// Shows why a launch failed, in the dialog, and lets the person try again.
    pub fn show_error(&self, message: &str) {
        self.error.set_text(message);
        self.error.set_visible(true);
        self.launch.set_sensitive(self.selected_app().is_some());
    }
}

fn matches_query(app: &DesktopEntry, query: &str) -> bool {
    app.name.to_lowercase().contains(query)
        || app.id.to_lowercase().contains(query)
        || app
            .keywords
            .iter()
            .any(|k| k.to_lowercase().contains(query))
        || app
            .generic_name
            .as_deref()
            .is_some_and(|g| g.to_lowercase().contains(query))
}

fn app_row(app: &DesktopEntry) -> gtk::ListBoxRow {
    let icon = gtk::Image::builder()
        .icon_name(app.icon.as_deref().unwrap_or("application-x-executable"))
        .pixel_size(32)
        .build();
    let name = gtk::Label::builder()
        .label(&app.name)
        .xalign(0.0)
        .css_classes(["heading"])
        .build();
    let comment = gtk::Label::builder()
        .label(app.comment.as_deref().unwrap_or(&app.id))
        .xalign(0.0)
        .ellipsize(gtk::pango::EllipsizeMode::End)
        .css_classes(["dim-label", "caption"])
        .build();
    let texts = gtk::Box::new(gtk::Orientation::Vertical, 2);
    texts.append(&name);
    texts.append(&comment);
    let content = gtk::Box::builder()
        .spacing(12)
        .margin_top(6)
        .margin_bottom(6)
        .margin_start(6)
        .margin_end(6)
        .build();
    content.append(&icon);
    content.append(&texts);
    let row = gtk::ListBoxRow::builder().child(&content).build();
    crate::ui::set_accessible_label(&row, &app.name);
    row
}
