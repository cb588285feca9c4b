//! Preferences: a window of pages, each a component (General: the refresh interval and alert
//! thresholds; Presets: create, edit, delete). Every change goes through the `ConfigStore`,
//! which writes off the main loop, once per burst, and never over a malformed file.

use std::time::Duration;

use adw::prelude::*;
use relm4::prelude::*;

use crate::config::{Config, General, PolicyAction, Preset, SETTINGS, Settings};
use crate::engine::config_store::Saved;
use crate::engine::{ConfigEdit, ConfigStore};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::monitor::service::Monitor;
use crate::ui::A11yLabel;

pub struct PreferencesInit {
    pub store: ConfigStore,
    pub monitor: Option<Monitor>,
}

#[derive(Debug)]
pub enum PreferencesInput {
    Toast(String),
}

#[derive(Debug)]
pub enum PreferencesCmd {
    Loaded(Result<Config, String>),
}

pub struct Preferences {
    store: ConfigStore,
    monitor: Option<Monitor>,
    general: Option<Controller<GeneralPage>>,
    presets: Option<Controller<PresetsPage>>,
}

#[relm4::component(pub)]
impl Component for Preferences {
    type Init = PreferencesInit;
    type Input = PreferencesInput;
    type Output = ();
    type CommandOutput = PreferencesCmd;

    view! {
        #[root]
        adw::PreferencesWindow {
            set_modal: true,
            set_search_enabled: false,
        }
    }

    fn init(
        init: PreferencesInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let store = init.store.clone();
        // The file is read on the store's thread, after any edit still queued.
        sender.oneshot_command(async move { PreferencesCmd::Loaded(store.load().await) });
        let model = Preferences {
            store: init.store,
            monitor: init.monitor,
            general: None,
            presets: None,
        };
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: PreferencesInput, _: ComponentSender<Self>, root: &Self::Root) {
        match message {
            PreferencesInput::Toast(text) => root.add_toast(crate::ui::toast(&text)),
        }
    }

    fn update_cmd(
        &mut self,
        message: PreferencesCmd,
        sender: ComponentSender<Self>,
        root: &Self::Root,
    ) {
        let PreferencesCmd::Loaded(loaded) = message;
        let config = match loaded {
            Ok(config) => config,
            Err(e) => {
                // A malformed file is shown, never overwritten.
                root.add(&mistake_page(&e));
                return;
            }
        };
        let toast = |PageOutput::Toast(text)| PreferencesInput::Toast(text);
        let general = GeneralPage::builder()
            .launch(GeneralInit {
                general: config.general,
                store: self.store.clone(),
                monitor: self.monitor.clone(),
            })
            .forward(sender.input_sender(), toast);
        let presets = PresetsPage::builder()
            .launch(PresetsInit {
                presets: config.presets(),
                store: self.store.clone(),
            })
            .forward(sender.input_sender(), toast);
        root.add(general.widget());
        root.add(presets.widget());
        self.general = Some(general);
        self.presets = Some(presets);
    }
}

fn mistake_page(error: &str) -> adw::PreferencesPage {
    let page = adw::PreferencesPage::new();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("The config file has a mistake"))
        .description(crate::ui::plain(&format!(
            "{error}\n\n{}",
            gettext("Fix it in a text editor; Corral will not change it until it loads again.")
        )))
        .build();
    page.add(&group);
    page
}

/// What a page tells its window.
#[derive(Debug)]
pub enum PageOutput {
    Toast(String),
}

/// A number of `[general]`, declared once: its row and where its value is.
struct GeneralSetting {
    key: &'static str,
    title: &'static str,
    subtitle: &'static str,
    range: (f64, f64),
    step: f64,
    digits: u32,
    value: fn(&General) -> f64,
}

const GENERAL_SETTINGS: [GeneralSetting; 4] = [
    GeneralSetting {
        key: "refresh-interval",
        title: gettext_noop("Refresh Interval"),
        subtitle: gettext_noop("Seconds between usage samples"),
        range: (0.1, 60.0),
        step: 0.5,
        digits: 1,
        value: |g| g.refresh_interval,
    },
    GeneralSetting {
        key: "memory-warning",
        title: gettext_noop("Memory Warning"),
        subtitle: gettext_noop("Warn when an app uses this share of its memory limit (%)"),
        range: (1.0, 100.0),
        step: 1.0,
        digits: 0,
        value: |g| g.memory_warning,
    },
    GeneralSetting {
        key: "pressure-warning",
        title: gettext_noop("Memory Pressure Warning"),
        subtitle: gettext_noop("Warn when an app waits for memory this share of the time (%)…"),
        range: (1.0, 100.0),
        step: 1.0,
        digits: 0,
        value: |g| g.pressure_warning,
    },
    GeneralSetting {
        key: "pressure-seconds",
        title: gettext_noop("Pressure Duration"),
        subtitle: gettext_noop("…for at least this many seconds"),
        range: (1.0, 600.0),
        step: 1.0,
        digits: 0,
        value: |g| g.pressure_seconds,
    },
];

pub struct GeneralInit {
    pub general: General,
    pub store: ConfigStore,
    pub monitor: Option<Monitor>,
}

#[derive(Debug)]
pub enum GeneralInput {
    Changed(&'static str, f64),
}

#[derive(Debug)]
pub enum GeneralCmd {
    /// The write of edit number `.0` went this way.
    Saved(u64, Saved),
}

/// The General page: each change is queued at once and written once the person stops.
pub struct GeneralPage {
    store: ConfigStore,
    monitor: Option<Monitor>,
    /// Edits sent, to report only the latest one's result.
    edits: u64,
}

#[relm4::component(pub)]
impl Component for GeneralPage {
    type Init = GeneralInit;
    type Input = GeneralInput;
    type Output = PageOutput;
    type CommandOutput = GeneralCmd;

    view! {
        #[root]
        adw::PreferencesPage {
            set_title: &gettext("General"),
            set_icon_name: Some("preferences-system-symbolic"),
            #[local_ref]
            add = group -> adw::PreferencesGroup {
                set_title: &gettext("Monitoring"),
            },
        }
    }

    fn init(
        init: GeneralInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let group = adw::PreferencesGroup::new();
        for setting in &GENERAL_SETTINGS {
            group.add(&spin_row(setting, (setting.value)(&init.general), &sender));
        }
        let model = GeneralPage {
            store: init.store,
            monitor: init.monitor,
            edits: 0,
        };
        let group = &group;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: GeneralInput, sender: ComponentSender<Self>, _: &Self::Root) {
        let GeneralInput::Changed(key, value) = message;
        if key == "refresh-interval"
            && let Some(monitor) = &self.monitor
        {
            monitor.set_interval(Duration::from_secs_f64(value));
        }
        self.edits += 1;
        let (edit, store) = (self.edits, self.store.clone());
        sender.oneshot_command(async move {
            GeneralCmd::Saved(edit, store.save(ConfigEdit::General { key, value }).await)
        });
    }

    fn update_cmd(&mut self, message: GeneralCmd, sender: ComponentSender<Self>, _: &Self::Root) {
        let GeneralCmd::Saved(edit, saved) = message;
        if let (true, Err(e)) = (edit == self.edits, saved) {
            let _ = sender.output(PageOutput::Toast(e));
        }
    }
}

fn spin_row(
    setting: &GeneralSetting,
    value: f64,
    sender: &ComponentSender<GeneralPage>,
) -> adw::ActionRow {
    let title = gettext(setting.title);
    let spin = gtk::SpinButton::with_range(setting.range.0, setting.range.1, setting.step);
    spin.set_digits(setting.digits);
    spin.set_value(value);
    spin.set_valign(gtk::Align::Center);
    spin.set_a11y_label(&title);
    let key = setting.key;
    let sender = sender.clone();
    spin.connect_value_changed(move |spin| sender.input(GeneralInput::Changed(key, spin.value())));
    let row = adw::ActionRow::builder()
        .title(title)
        .subtitle(gettext(setting.subtitle))
        .build();
    row.add_suffix(&spin);
    row.set_activatable_widget(Some(&spin));
    row
}

/// The choices of a policy row, with their labels.
const POLICY_CHOICES: [(PolicyAction, &str); 4] = [
    (PolicyAction::Notify, gettext_noop("Only Notify")),
    (PolicyAction::Freeze, gettext_noop("Freeze It")),
    (
        PolicyAction::RaiseLimit,
        gettext_noop("Raise the Limit One Step"),
    ),
    (PolicyAction::LowerCpu, gettext_noop("Halve Its CPU Limit")),
];

pub struct PresetsInit {
    pub presets: Vec<Preset>,
    pub store: ConfigStore,
}

#[derive(Debug)]
pub enum PresetsInput {
    Save(String, Settings),
    Remove(String),
    Create(String),
    Toast(String),
}

#[derive(Debug)]
pub enum PresetsCmd {
    Saved(String, Saved),
    Removed(String, Saved),
    Created(String, Saved),
}

pub struct PresetsPage {
    store: ConfigStore,
    group: adw::PreferencesGroup,
    rows: std::collections::HashMap<String, adw::ExpanderRow>,
    new_name: adw::EntryRow,
}

impl PresetsPage {
    fn add_row(&mut self, preset: &Preset, sender: &ComponentSender<Self>) {
        let send = sender.input_sender().clone();
        let row = preset_row(preset, move |m| send.emit(m));
        self.group.add(&row);
        self.rows.insert(preset.name.clone(), row);
    }
}

#[relm4::component(pub)]
impl Component for PresetsPage {
    type Init = PresetsInit;
    type Input = PresetsInput;
    type Output = PageOutput;
    type CommandOutput = PresetsCmd;

    view! {
        #[root]
        adw::PreferencesPage {
            set_title: &gettext("Presets"),
            set_icon_name: Some("view-list-symbolic"),
            #[local_ref]
            add = group -> adw::PreferencesGroup {
                set_title: &gettext("Presets"),
                set_description: Some(&gettext("Sizes like 4G or 70 %, CPU like 150 %, or max. Empty means not limited by the preset.")),
            },
            add = &adw::PreferencesGroup {
                #[local_ref]
                add = new_name -> adw::EntryRow {
                    set_title: &gettext("New preset name"),
                    set_show_apply_button: true,
                    connect_apply[sender] => move |row| {
                        sender.input(PresetsInput::Create(row.text().trim().to_owned()));
                    },
                },
            },
        }
    }

    fn init(
        init: PresetsInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let mut model = PresetsPage {
            store: init.store,
            group: adw::PreferencesGroup::new(),
            rows: std::collections::HashMap::new(),
            new_name: adw::EntryRow::new(),
        };
        for preset in &init.presets {
            model.add_row(preset, &sender);
        }
        let group = &model.group;
        let new_name = &model.new_name;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: PresetsInput, sender: ComponentSender<Self>, _: &Self::Root) {
        let store = self.store.clone();
        match message {
            PresetsInput::Save(name, settings) => sender.oneshot_command(async move {
                let saved = store
                    .save(ConfigEdit::Preset {
                        name: name.clone(),
                        settings,
                    })
                    .await;
                PresetsCmd::Saved(name, saved)
            }),
            PresetsInput::Remove(name) => sender.oneshot_command(async move {
                let saved = store
                    .save(ConfigEdit::RemovePreset { name: name.clone() })
                    .await;
                PresetsCmd::Removed(name, saved)
            }),
            PresetsInput::Create(name) => sender.oneshot_command(async move {
                let saved = store
                    .save(ConfigEdit::Preset {
                        name: name.clone(),
                        settings: Settings::default(),
                    })
                    .await;
                PresetsCmd::Created(name, saved)
            }),
            PresetsInput::Toast(text) => {
                let _ = sender.output(PageOutput::Toast(text));
            }
        }
    }

    fn update_cmd(&mut self, message: PresetsCmd, sender: ComponentSender<Self>, _: &Self::Root) {
        let toast = match message {
            PresetsCmd::Saved(name, Ok(())) => {
                gettext_f("Saved preset {preset}", &[("preset", &name)])
            }
            PresetsCmd::Removed(name, Ok(())) => {
                if let Some(row) = self.rows.get(&name) {
                    row.set_sensitive(false);
                }
                gettext_f(
                    "Removed {preset} from the config file",
                    &[("preset", &name)],
                )
            }
            PresetsCmd::Created(name, Ok(())) => {
                let preset = Preset {
                    name,
                    description: String::new(),
                    builtin: false,
                    in_file: true,
                    settings: Settings::default(),
                };
                self.add_row(&preset, &sender);
                self.new_name.set_text("");
                return;
            }
            PresetsCmd::Saved(_, Err(e))
            | PresetsCmd::Removed(_, Err(e))
            | PresetsCmd::Created(_, Err(e)) => e,
        };
        let _ = sender.output(PageOutput::Toast(toast));
    }
}

/// A preset's expander: a text row per limit and a choice per policy (the settings with a
/// title, in the declaration's order), then Delete (or Reset) and Save.
fn preset_row(preset: &Preset, send: impl Fn(PresetsInput) + Clone + 'static) -> adw::ExpanderRow {
    let row = adw::ExpanderRow::builder()
        .title(crate::ui::plain(&preset.name))
        .subtitle(crate::ui::plain(&if preset.description.is_empty() {
            preset.settings.plain_words()
        } else {
            preset.description.clone()
        }))
        .build();
    let values: std::collections::HashMap<&str, String> =
        preset.settings.entries().into_iter().collect();
    let titled = |policy: bool| {
        SETTINGS
            .iter()
            .filter(move |s| s.policy.is_some() == policy)
            .filter_map(|s| Some((s.key, s.title?)))
    };
    let entries: Vec<(&'static str, adw::EntryRow)> = titled(false)
        .map(|(key, title)| {
            let entry = adw::EntryRow::builder().title(gettext(title)).build();
            entry.set_text(values.get(key).map(String::as_str).unwrap_or(""));
            row.add_row(&entry);
            (key, entry)
        })
        .collect();
    let policies: Vec<(&'static str, adw::ComboRow)> = titled(true)
        .map(|(key, title)| {
            let labels = POLICY_CHOICES.map(|(_, label)| gettext(label));
            let choices = gtk::StringList::new(&labels.each_ref().map(String::as_str));
            let current = values.get(key).map(String::as_str).unwrap_or("notify");
            let combo = adw::ComboRow::builder()
                .title(gettext(title))
                .model(&choices)
                .selected(
                    POLICY_CHOICES
                        .iter()
                        .position(|(action, _)| action.as_str() == current)
                        .unwrap_or(0) as u32,
                )
                .build();
            row.add_row(&combo);
            (key, combo)
        })
        .collect();
    let save_button = gtk::Button::builder()
        .label(gettext("Save"))
        .css_classes(["suggested-action"])
        .valign(gtk::Align::Center)
        .build();
    let delete_button = gtk::Button::builder()
        .label(if preset.builtin {
            gettext("Reset")
        } else {
            gettext("Delete")
        })
        .css_classes(["destructive-action"])
        .valign(gtk::Align::Center)
        .sensitive(preset.in_file)
        .tooltip_text(if preset.builtin {
            gettext("Forget your changes to this built-in preset")
        } else {
            gettext("Delete this preset")
        })
        .build();
    let buttons = adw::ActionRow::new();
    buttons.add_suffix(&delete_button);
    buttons.add_suffix(&save_button);
    row.add_row(&buttons);

    let name = preset.name.clone();
    let base = preset.settings.clone();
    {
        let (send, name) = (send.clone(), name.clone());
        save_button.connect_clicked(move |_| match typed_settings(&base, &entries, &policies) {
            Ok(settings) => send(PresetsInput::Save(name.clone(), settings)),
            Err(e) => send(PresetsInput::Toast(e)),
        });
    }
    delete_button.connect_clicked(move |_| send(PresetsInput::Remove(name.clone())));
    row
}

/// The preset's settings with what the rows say: an empty text or "Only notify" unsets.
fn typed_settings(
    base: &Settings,
    entries: &[(&'static str, adw::EntryRow)],
    policies: &[(&'static str, adw::ComboRow)],
) -> Result<Settings, String> {
    let mut settings = base.clone();
    for (key, entry) in entries {
        let text = entry.text();
        let result = if text.trim().is_empty() {
            settings.unset(key)
        } else {
            settings.set(key, text.trim())
        };
        result.map_err(|e| e.to_string())?;
    }
    for (key, combo) in policies {
        let result = match POLICY_CHOICES.get(combo.selected() as usize) {
            Some((action, _)) if *action != PolicyAction::Notify => {
                settings.set(key, action.as_str())
            }
            _ => settings.unset(key),
        };
        result.map_err(|e| e.to_string())?;
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The titles of the text entry and choice rows below `widget`, in order.
    fn row_titles(widget: &gtk::Widget, titles: &mut Vec<String>) {
        if widget.is::<adw::EntryRow>() || widget.is::<adw::ComboRow>() {
            let row = widget.downcast_ref::<adw::PreferencesRow>().unwrap();
            titles.push(row.title().to_string());
        }
        let mut child = widget.first_child();
        while let Some(widget) = child {
            row_titles(&widget, titles);
            child = widget.next_sibling();
        }
    }

    #[gtk::test]
    fn a_preset_row_has_the_limits_then_the_policies_of_the_declaration() {
        let _ = adw::init();
        let preset = Config::default().preset("browser").unwrap();
        let row = preset_row(&preset, |_| {});
        let mut titles = Vec::new();
        row_titles(row.upcast_ref(), &mut titles);
        assert_eq!(
            titles,
            [
                "Memory high",
                "Memory max",
                "Swap max",
                "CPU quota",
                "CPU weight",
                "Tasks max",
                "When Near Its Memory Limit",
                "When Slowed for Memory",
                "When Held at Its CPU Limit",
                "When Stalling for Memory",
            ]
        );
    }

    /// The texts a widget's labels show (Pango's text, markup taken out), depth first.
    fn shown_texts(widget: &gtk::Widget) -> Vec<String> {
        let mut texts = Vec::new();
        if let Some(label) = widget.downcast_ref::<gtk::Label>() {
            texts.push(label.text().to_string());
        }
        let mut child = widget.first_child();
        while let Some(c) = child {
            texts.extend(shown_texts(&c));
            child = c.next_sibling();
        }
        texts
    }

    #[gtk::test]
    fn a_presets_description_shows_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let text = "[presets.builds]\ndescription = \"Builds & tests <a href='https://x'>fast</a>\"\nmemory-max = \"1G\"\n";
        std::fs::write(&path, text).unwrap();
        let config = Config::load_from(&path).unwrap();
        let preset = config.preset("builds").unwrap();
        let row = preset_row(&preset, |_| {});
        let texts = shown_texts(row.upcast_ref());
        // Before, the row took it as Pango markup: the `&` made it invalid markup, which GTK
        // shows as nothing at all. (Preset names are letters, digits, - and _.)
        assert!(texts.iter().any(|t| t == "builds"), "{texts:?}");
        assert!(
            texts
                .iter()
                .any(|t| t == "Builds & tests <a href='https://x'>fast</a>"),
            "{texts:?}"
        );
    }
}
