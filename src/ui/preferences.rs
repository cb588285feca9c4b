//! Preferences: a window of pages, each a component (General: the refresh interval, alert
//! thresholds and the memory budget of all apps; Presets: create, edit, delete; Rules: review,
//! edit and remove the apps' rules). Every change goes through the `ConfigStore`,
//! which writes off the main loop, once per burst, and never over a malformed file.

use std::time::Duration;

use adw::prelude::*;
use relm4::prelude::*;

use crate::config::{Config, General, PolicyAction, Preset, SETTINGS, Settings};
use crate::controller::LimitCheck;
use crate::engine::config_store::Saved;
use crate::engine::rules::{Budget, RuleDraft, RuleOutcome, RuleService, check_line};
use crate::engine::{ConfigEdit, ConfigStore};
use crate::i18n::{gettext, gettext_f, gettext_noop, ngettext_f};
use crate::limits::MemoryLimit;
use crate::monitor::service::Monitor;
use crate::rules::live::Instance;
use crate::ui::A11yLabel;
use crate::ui::rule_dialog::{self, RuleForm};

pub struct PreferencesInit {
    pub store: ConfigStore,
    pub monitor: Option<Monitor>,
    /// Rules and the budget, saved and applied through the engine.
    pub rules: RuleService,
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
    rules: RuleService,
    general: Option<Controller<GeneralPage>>,
    presets: Option<Controller<PresetsPage>>,
    rule_page: Option<Controller<RulesPage>>,
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
            rules: init.rules,
            general: None,
            presets: None,
            rule_page: None,
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
                rules: self.rules.clone(),
            })
            .forward(sender.input_sender(), toast);
        let presets = PresetsPage::builder()
            .launch(PresetsInit {
                presets: config.presets(),
                store: self.store.clone(),
            })
            .forward(sender.input_sender(), toast);
        let rule_page = RulesPage::builder()
            .launch(RulesInit {
                config,
                rules: self.rules.clone(),
            })
            .forward(sender.input_sender(), toast);
        root.add(general.widget());
        root.add(presets.widget());
        root.add(rule_page.widget());
        self.general = Some(general);
        self.presets = Some(presets);
        self.rule_page = Some(rule_page);
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
    pub rules: RuleService,
}

#[derive(Debug)]
pub enum GeneralInput {
    Changed(&'static str, f64),
    /// Enter (or the apply button) in a budget row: save and apply both limits.
    Budget,
}

#[derive(Debug)]
pub enum GeneralCmd {
    /// The write of edit number `.0` went this way.
    Saved(u64, Saved),
    /// The budget was saved and applied: app.slice's limits read back, or why not.
    BudgetSet(bool, Result<Vec<LimitCheck>, String>),
}

/// The General page: each change is queued at once and written once the person stops; the
/// budget when the person presses Enter in its rows (half-typed sizes are never applied to
/// every app of the desktop).
pub struct GeneralPage {
    store: ConfigStore,
    monitor: Option<Monitor>,
    rules: RuleService,
    /// Edits sent, to report only the latest one's result.
    edits: u64,
    budget_high: adw::EntryRow,
    budget_max: adw::EntryRow,
}

/// A budget row's text as a limit: empty or `max` is none.
fn budget_limit(row: &adw::EntryRow, title: &str) -> Result<Option<MemoryLimit>, String> {
    let text = row.text();
    let text = text.trim();
    if text.is_empty() || text == "max" {
        return Ok(None);
    }
    let limit = text.parse::<MemoryLimit>().map_err(|e| {
        gettext_f(
            "{setting}: {error}. Type a size like 12G or a share of RAM like 80 %, or leave it empty for none.",
            &[("setting", &title), ("error", &e)],
        )
    })?;
    check_budget(limit, crate::controller::physical_memory(), title)?;
    Ok(Some(limit))
}

/// The least a budget of all apps may be: less would hold the whole desktop at a crawl (a
/// "8" typed for "80%" is 8 bytes). Not a limit of systemd's, a guard against a slip.
const BUDGET_FLOOR: u64 = 256 * crate::limits::Bytes::MIB;

fn check_budget(limit: MemoryLimit, total_ram: u64, title: &str) -> Result<(), String> {
    match limit.resolve(total_ram) {
        Some(bytes) if bytes < BUDGET_FLOOR => Err(gettext_f(
            "{setting}: {value} is too little for all apps together (at least {floor}); type a size like 12G or a share of RAM like 80 %.",
            &[
                ("setting", &title),
                ("value", &limit),
                ("floor", &crate::limits::Bytes(BUDGET_FLOOR)),
            ],
        )),
        _ => Ok(()),
    }
}

/// What a saved budget did, for a toast.
fn budget_words(removed: bool, checks: &[LimitCheck]) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.applied())
        .map(check_line)
        .collect();
    if !failed.is_empty() {
        return failed.join("\n");
    }
    if removed {
        gettext("All apps have no memory budget now.")
    } else {
        gettext("The memory budget of all apps is saved and holds now.")
    }
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
            add = &adw::PreferencesGroup {
                set_title: &gettext("Memory for All Apps"),
                set_description: Some(&gettext("One budget for every app of the desktop together (app.slice), however they were started, so that the shell and the session keep what they need. Sizes like 12G or a share of RAM like 80 %; empty for none. Enter applies it.")),
                #[local_ref]
                add = budget_high -> adw::EntryRow {
                    set_title: &gettext("Soft limit (all apps slow down above)"),
                    set_show_apply_button: true,
                    connect_apply => GeneralInput::Budget,
                },
                #[local_ref]
                add = budget_max -> adw::EntryRow {
                    set_title: &gettext("Hard limit (the kernel kills above)"),
                    set_show_apply_button: true,
                    connect_apply => GeneralInput::Budget,
                },
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
        let text = |limit: Option<MemoryLimit>| limit.map(|l| l.to_string()).unwrap_or_default();
        let budget_high = adw::EntryRow::new();
        budget_high.set_text(&text(init.general.apps_memory_high));
        let budget_max = adw::EntryRow::new();
        budget_max.set_text(&text(init.general.apps_memory_max));
        let model = GeneralPage {
            store: init.store,
            monitor: init.monitor,
            rules: init.rules,
            edits: 0,
            budget_high,
            budget_max,
        };
        let group = &group;
        let budget_high = &model.budget_high;
        let budget_max = &model.budget_max;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: GeneralInput, sender: ComponentSender<Self>, _: &Self::Root) {
        let (key, value) = match message {
            GeneralInput::Changed(key, value) => (key, value),
            GeneralInput::Budget => return self.set_budget(&sender),
        };
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
        match message {
            GeneralCmd::Saved(edit, saved) => {
                if let (true, Err(e)) = (edit == self.edits, saved) {
                    let _ = sender.output(PageOutput::Toast(e));
                }
            }
            GeneralCmd::BudgetSet(removed, result) => {
                let text = match result {
                    Ok(checks) => budget_words(removed, &checks),
                    Err(e) => gettext_f(
                        "Could not set the memory budget of all apps: {error}",
                        &[("error", &e)],
                    ),
                };
                let _ = sender.output(PageOutput::Toast(text));
            }
        }
    }
}

impl GeneralPage {
    /// Saves the budget rows, writes app.slice's drop-in and applies it at once.
    fn set_budget(&mut self, sender: &ComponentSender<Self>) {
        let rows = [
            (&self.budget_high, gettext("Soft limit")),
            (&self.budget_max, gettext("Hard limit")),
        ];
        let mut limits = Vec::new();
        for (row, title) in rows {
            match budget_limit(row, &title) {
                Ok(limit) => {
                    row.remove_css_class("error");
                    limits.push(limit);
                }
                Err(e) => {
                    row.add_css_class("error");
                    let _ = sender.output(PageOutput::Toast(e));
                    return;
                }
            }
        }
        let budget = Budget {
            high: limits[0],
            max: limits[1],
        };
        let removed = budget.high.is_none() && budget.max.is_none();
        let rules = self.rules.clone();
        sender.oneshot_command(async move {
            GeneralCmd::BudgetSet(removed, rules.set_budget(budget).await)
        });
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

pub struct RulesInit {
    pub config: Config,
    pub rules: RuleService,
}

#[derive(Debug)]
pub enum RulesInput {
    Edit(String),
    Remove(String),
    ConfirmedRemove(String),
    Save(RuleDraft),
}

#[derive(Debug)]
pub enum RulesCmd {
    Loaded(Result<Config, String>),
    Running(Option<Vec<Instance>>),
    Saved(Result<RuleOutcome, String>),
}

/// The Rules page: every app rule of the file, with its preset, limits and running instances;
/// Edit opens the same dialog as the details' "Limit This App Everywhere…", Remove asks first.
pub struct RulesPage {
    rules: RuleService,
    config: Config,
    /// The running instances each rule reaches; `None` until read (or without systemd).
    running: Option<Vec<Instance>>,
    group: adw::PreferencesGroup,
    rows: Vec<adw::ActionRow>,
}

impl RulesPage {
    /// The rows of the rules, built again from the config and the running instances.
    fn render(&mut self, sender: &ComponentSender<Self>) {
        for row in self.rows.drain(..) {
            self.group.remove(&row);
        }
        for (key, rule) in crate::rules::rules(&self.config) {
            let row = adw::ActionRow::builder()
                .title(crate::ui::plain(key))
                .subtitle(crate::ui::plain(&rule_subtitle(
                    &self.config,
                    key,
                    rule.preset.as_deref(),
                    self.running.as_deref(),
                )))
                .build();
            let edit = gtk::Button::builder()
                .icon_name("document-edit-symbolic")
                .valign(gtk::Align::Center)
                .css_classes(["flat"])
                .tooltip_text(gettext_f("Edit the rule for {app}", &[("app", &key)]))
                .build();
            edit.set_a11y_label(&gettext_f("Edit the rule for {app}", &[("app", &key)]));
            let remove = gtk::Button::builder()
                .icon_name("user-trash-symbolic")
                .valign(gtk::Align::Center)
                .css_classes(["flat"])
                .tooltip_text(gettext_f("Remove the rule for {app}", &[("app", &key)]))
                .build();
            remove.set_a11y_label(&gettext_f("Remove the rule for {app}", &[("app", &key)]));
            {
                let (send, key) = (sender.input_sender().clone(), key.to_owned());
                edit.connect_clicked(move |_| send.emit(RulesInput::Edit(key.clone())));
            }
            {
                let (send, key) = (sender.input_sender().clone(), key.to_owned());
                remove.connect_clicked(move |_| send.emit(RulesInput::Remove(key.clone())));
            }
            row.add_suffix(&edit);
            row.add_suffix(&remove);
            self.group.add(&row);
            self.rows.push(row);
        }
        if self.rows.is_empty() {
            let row = adw::ActionRow::builder()
                .title(gettext("No rules yet"))
                .subtitle(gettext(
                    "“Limit This App Everywhere…” in an app’s details makes one.",
                ))
                .build();
            self.group.add(&row);
            self.rows.push(row);
        }
    }

    fn reload(&self, sender: &ComponentSender<Self>) {
        let rules = self.rules.clone();
        sender.oneshot_command(async move { RulesCmd::Loaded(rules.load().await) });
    }

    fn read_running(&self, sender: &ComponentSender<Self>) {
        let (rules, config) = (self.rules.clone(), self.config.clone());
        sender.oneshot_command(async move { RulesCmd::Running(rules.running(&config).await) });
    }
}

/// "preset browser · killed above 4.0 GiB · 2 running", "… · running: unknown".
pub fn rule_subtitle(
    config: &Config,
    key: &str,
    preset: Option<&str>,
    running: Option<&[Instance]>,
) -> String {
    let preset = preset.unwrap_or(crate::config::DEFAULT_PRESET);
    let words = crate::rules::rule_settings(config, key)
        .map(|s| s.plain_words())
        .unwrap_or_default();
    let running = match running {
        None => gettext("running: unknown"),
        Some(list) => {
            let n = list.iter().filter(|i| i.rule == key).count();
            let failed = list
                .iter()
                .filter(|i| i.rule == key)
                .flat_map(|i| &i.checks)
                .filter(|c| !c.applied())
                .count();
            let mut text = ngettext_f("{n} running", "{n} running", n as u64, &[("n", &n)]);
            if failed > 0 {
                text.push_str(" — ");
                text.push_str(&ngettext_f(
                    "{n} limit did not take",
                    "{n} limits did not take",
                    failed as u64,
                    &[("n", &failed)],
                ));
            }
            text
        }
    };
    gettext_f(
        "preset {preset} · {words} · {running}",
        &[
            ("preset", &preset),
            ("words", &words),
            ("running", &running),
        ],
    )
}

#[relm4::component(pub)]
impl Component for RulesPage {
    type Init = RulesInit;
    type Input = RulesInput;
    type Output = PageOutput;
    type CommandOutput = RulesCmd;

    view! {
        #[root]
        adw::PreferencesPage {
            set_title: &gettext("Rules"),
            set_icon_name: Some("emblem-system-symbolic"),
            #[local_ref]
            add = group -> adw::PreferencesGroup {
                set_title: &gettext("App Rules"),
                set_description: Some(&gettext("Each rule holds for its app however it is started (app grid, dock, Flatpak, terminal or Corral): Corral writes it as systemd drop-ins from config.toml.")),
            },
        }
    }

    fn init(
        init: RulesInit,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let mut model = RulesPage {
            rules: init.rules,
            config: init.config,
            running: None,
            group: adw::PreferencesGroup::new(),
            rows: Vec::new(),
        };
        model.render(&sender);
        model.read_running(&sender);
        let group = &model.group;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: RulesInput, sender: ComponentSender<Self>, root: &Self::Root) {
        let window = root.root().and_then(|r| r.downcast::<gtk::Window>().ok());
        match message {
            RulesInput::Edit(key) => {
                let Some((_, rule)) = self.config.rules().find(|(k, _)| *k == key) else {
                    return;
                };
                let Some(window) = window else { return };
                let form = RuleForm::from_rule(&key, rule);
                let presets = self.config.presets().into_iter().map(|p| p.name).collect();
                let send = sender.input_sender().clone();
                rule_dialog::open(&window, form, presets, move |draft| {
                    send.emit(RulesInput::Save(draft))
                });
            }
            RulesInput::Remove(key) => {
                let Some(window) = window else { return };
                let dialog = adw::MessageDialog::builder()
                    .transient_for(&window)
                    .modal(true)
                    .heading(gettext_f("Remove the Rule for {app}?", &[("app", &key)]))
                    .body(gettext(
                        "Its drop-ins go; running instances keep their limits until they end, and new ones start without them.",
                    ))
                    .build();
                dialog.add_response("cancel", &gettext("Cancel"));
                dialog.add_response("remove", &gettext("Remove"));
                dialog.set_response_appearance("remove", adw::ResponseAppearance::Destructive);
                dialog.set_default_response(Some("cancel"));
                dialog.set_close_response("cancel");
                let send = sender.input_sender().clone();
                dialog.connect_response(None, move |_, response| {
                    if response == "remove" {
                        send.emit(RulesInput::ConfirmedRemove(key.clone()));
                    }
                });
                dialog.present();
            }
            RulesInput::ConfirmedRemove(key) => {
                let rules = self.rules.clone();
                sender.oneshot_command(async move { RulesCmd::Saved(rules.remove(&key).await) });
            }
            RulesInput::Save(draft) => {
                let rules = self.rules.clone();
                sender.oneshot_command(async move { RulesCmd::Saved(rules.save(draft).await) });
            }
        }
    }

    fn update_cmd(&mut self, message: RulesCmd, sender: ComponentSender<Self>, _: &Self::Root) {
        match message {
            RulesCmd::Loaded(Ok(config)) => {
                self.config = config;
                self.render(&sender);
                self.read_running(&sender);
            }
            RulesCmd::Loaded(Err(e)) => {
                let _ = sender.output(PageOutput::Toast(e));
            }
            RulesCmd::Running(running) => {
                self.running = running;
                self.render(&sender);
            }
            RulesCmd::Saved(result) => {
                let text = match result {
                    Ok(outcome) => outcome.summary(),
                    Err(e) => gettext_f("Could not save the rule: {error}", &[("error", &e)]),
                };
                let _ = sender.output(PageOutput::Toast(text));
                self.reload(&sender);
            }
        }
    }
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

    #[test]
    fn a_budget_too_small_for_the_desktop_is_refused() {
        let ram = 16 * crate::limits::Bytes::GIB;
        let limit = |text: &str| text.parse::<MemoryLimit>().unwrap();
        let error = check_budget(limit("8"), ram, "Soft limit").unwrap_err();
        assert!(error.starts_with("Soft limit: 8"), "{error}");
        assert!(check_budget(limit("1%"), ram, "Soft limit").is_err());
        assert!(check_budget(limit("80%"), ram, "Soft limit").is_ok());
        assert!(check_budget(limit("12G"), ram, "Hard limit").is_ok());
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
