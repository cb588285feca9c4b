//! Preferences: the refresh interval and alert thresholds, and the presets (create, edit,
//! delete) with their limits and policies. Every change goes through the config editor, which keeps the person's comments and
//! formatting and refuses to touch a malformed file.

use adw::prelude::*;

use crate::config::{Config, ConfigEditor, PolicyAction, Preset, SETTINGS, Settings};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::monitor::service::Monitor;

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

pub fn show(parent: &adw::ApplicationWindow, monitor: Option<Monitor>) {
    let window = adw::PreferencesWindow::builder()
        .transient_for(parent)
        .modal(true)
        .search_enabled(false)
        .build();
    let editor = ConfigEditor::open(Config::path());
    let config = Config::load();
    let (editor, config) = match (editor, config) {
        (Ok(editor), Ok(config)) => (editor, config),
        (Err(e), _) | (_, Err(e)) => {
            // A malformed file is shown, never overwritten.
            let page = adw::PreferencesPage::new();
            let group = adw::PreferencesGroup::builder()
                .title(gettext("The config file has a mistake"))
                .description(crate::ui::plain(&format!(
                    "{e}\n\n{}",
                    gettext(
                        "Fix it in a text editor; Corral will not change it until it loads again."
                    )
                )))
                .build();
            page.add(&group);
            window.add(&page);
            window.present();
            return;
        }
    };
    let editor = std::rc::Rc::new(std::cell::RefCell::new(editor));
    window.add(&general_page(&window, &config, &editor, monitor));
    window.add(&presets_page(&window, &config, &editor));
    window.present();
}

/// Saves the editor's document, or shows why not as a toast.
fn save(window: &adw::PreferencesWindow, editor: &std::cell::RefCell<ConfigEditor>) -> bool {
    match editor.borrow_mut().save() {
        Ok(()) => true,
        Err(e) => {
            window.add_toast(crate::ui::toast(&gettext_f(
                "Not saved: {error}",
                &[("error", &e)],
            )));
            false
        }
    }
}

fn general_page(
    window: &adw::PreferencesWindow,
    config: &Config,
    editor: &std::rc::Rc<std::cell::RefCell<ConfigEditor>>,
    monitor: Option<Monitor>,
) -> adw::PreferencesPage {
    let page = adw::PreferencesPage::builder()
        .title(gettext("General"))
        .icon_name("preferences-system-symbolic")
        .build();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Monitoring"))
        .build();
    let spin_row =
        |title: &str, subtitle: &str, value: f64, min: f64, max: f64, step: f64, digits: u32| {
            let spin = gtk::SpinButton::with_range(min, max, step);
            spin.set_digits(digits);
            spin.set_value(value);
            spin.set_valign(gtk::Align::Center);
            crate::ui::set_accessible_label(&spin, title);
            let row = adw::ActionRow::builder()
                .title(title)
                .subtitle(subtitle)
                .build();
            row.add_suffix(&spin);
            row.set_activatable_widget(Some(&spin));
            group.add(&row);
            spin
        };
    let interval = spin_row(
        &gettext("Refresh Interval"),
        &gettext("Seconds between usage samples"),
        config.general.refresh_interval,
        0.1,
        60.0,
        0.5,
        1,
    );
    let warning = spin_row(
        &gettext("Memory Warning"),
        &gettext("Warn when an app uses this share of its memory limit (%)"),
        config.general.memory_warning,
        1.0,
        100.0,
        1.0,
        0,
    );
    {
        let (window, editor) = (window.clone(), std::rc::Rc::clone(editor));
        interval.connect_value_changed(move |spin| {
            let value = spin.value();
            // The edit's borrow must end before save() borrows the editor again.
            let edited = editor.borrow_mut().set_general("refresh-interval", value);
            if edited.is_ok()
                && save(&window, &editor)
                && let Some(m) = &monitor
            {
                m.set_interval(std::time::Duration::from_secs_f64(value));
            }
        });
    }
    let pressure = spin_row(
        &gettext("Memory Pressure Warning"),
        &gettext("Warn when an app waits for memory this share of the time (%)…"),
        config.general.pressure_warning,
        1.0,
        100.0,
        1.0,
        0,
    );
    let pressure_seconds = spin_row(
        &gettext("Pressure Duration"),
        &gettext("…for at least this many seconds"),
        config.general.pressure_seconds,
        1.0,
        600.0,
        1.0,
        0,
    );
    for (spin, key) in [
        (&warning, "memory-warning"),
        (&pressure, "pressure-warning"),
        (&pressure_seconds, "pressure-seconds"),
    ] {
        let (window, editor) = (window.clone(), std::rc::Rc::clone(editor));
        spin.connect_value_changed(move |spin| {
            // The edit's borrow must end before save() borrows the editor again.
            let edited = editor.borrow_mut().set_general(key, spin.value());
            if edited.is_ok() {
                save(&window, &editor);
            }
        });
    }
    page.add(&group);
    page
}

fn presets_page(
    window: &adw::PreferencesWindow,
    config: &Config,
    editor: &std::rc::Rc<std::cell::RefCell<ConfigEditor>>,
) -> adw::PreferencesPage {
    let page = adw::PreferencesPage::builder()
        .title(gettext("Presets"))
        .icon_name("view-list-symbolic")
        .build();
    let group = adw::PreferencesGroup::builder()
        .title(gettext("Presets"))
        .description(gettext(
            "Sizes like 4G or 70 %, CPU like 150 %, or max. Empty means not limited by the preset.",
        ))
        .build();
    for preset in config.presets() {
        group.add(&preset_row(window, &preset, editor));
    }
    let new_row = adw::EntryRow::builder()
        .title(gettext("New preset name"))
        .build();
    new_row.set_show_apply_button(true);
    {
        let (window, editor, group) = (window.clone(), std::rc::Rc::clone(editor), group.clone());
        new_row.connect_apply(move |row| {
            let name = row.text().trim().to_owned();
            let created = editor.borrow_mut().set_preset(&name, &Settings::default());
            match created {
                Ok(()) if save(&window, &editor) => {
                    let preset = Preset {
                        name: name.clone(),
                        description: String::new(),
                        builtin: false,
                        in_file: true,
                        settings: Settings::default(),
                    };
                    group.add(&preset_row(&window, &preset, &editor));
                    row.set_text("");
                }
                Ok(()) => {}
                Err(e) => window.add_toast(crate::ui::toast(&e.to_string())),
            }
        });
    }
    let add_group = adw::PreferencesGroup::new();
    add_group.add(&new_row);
    page.add(&group);
    page.add(&add_group);
    page
}

fn preset_row(
    window: &adw::PreferencesWindow,
    preset: &Preset,
    editor: &std::rc::Rc<std::cell::RefCell<ConfigEditor>>,
) -> adw::ExpanderRow {
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
    // The settings with a title get a row: a choice for a policy (what Corral does by itself
    // on an alert), a text entry for the others (limits).
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
        .build();
    delete_button.set_tooltip_text(Some(&if preset.builtin {
        gettext("Forget your changes to this built-in preset")
    } else {
        gettext("Delete this preset")
    }));
    let buttons = adw::ActionRow::new();
    buttons.add_suffix(&delete_button);
    buttons.add_suffix(&save_button);
    row.add_row(&buttons);

    let name = preset.name.clone();
    let base = preset.settings.clone();
    {
        let (window, editor, name) = (window.clone(), std::rc::Rc::clone(editor), name.clone());
        save_button.connect_clicked(move |_| {
            let mut settings = base.clone();
            for (key, entry) in &entries {
                let text = entry.text();
                let result = if text.trim().is_empty() {
                    settings.unset(key)
                } else {
                    settings.set(key, text.trim())
                };
                if let Err(e) = result {
                    window.add_toast(crate::ui::toast(&e.to_string()));
                    return;
                }
            }
            for (key, combo) in &policies {
                // "Only notify" is what no policy means: the key is left out of the file.
                let result = match POLICY_CHOICES.get(combo.selected() as usize) {
                    Some((action, _)) if *action != PolicyAction::Notify => {
                        settings.set(key, action.as_str())
                    }
                    _ => settings.unset(key),
                };
                if let Err(e) = result {
                    window.add_toast(crate::ui::toast(&e.to_string()));
                    return;
                }
            }
            match editor.borrow_mut().set_preset(&name, &settings) {
                Ok(()) => {}
                Err(e) => {
                    window.add_toast(crate::ui::toast(&e.to_string()));
                    return;
                }
            }
            if save(&window, &editor) {
                window.add_toast(crate::ui::toast(&gettext_f(
                    "Saved preset {preset}",
                    &[("preset", &name)],
                )));
            }
        });
    }
    {
        let (window, editor, row_ref) = (window.clone(), std::rc::Rc::clone(editor), row.clone());
        delete_button.connect_clicked(move |_| {
            let removed = editor.borrow_mut().remove_preset(&name);
            match removed {
                Ok(_) if save(&window, &editor) => {
                    row_ref.set_sensitive(false);
                    window.add_toast(crate::ui::toast(&gettext_f(
                        "Removed {preset} from the config file",
                        &[("preset", &name)],
                    )));
                }
                Ok(_) => {}
                Err(e) => window.add_toast(crate::ui::toast(&e.to_string())),
            }
        });
    }
    row
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
        let dir = tempfile::tempdir().unwrap();
        let editor = ConfigEditor::open(dir.path().join("config.toml")).unwrap();
        let editor = std::rc::Rc::new(std::cell::RefCell::new(editor));
        let window = adw::PreferencesWindow::new();
        let preset = Config::default().preset("browser").unwrap();
        let row = preset_row(&window, &preset, &editor);
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
        let editor = std::rc::Rc::new(std::cell::RefCell::new(ConfigEditor::open(&path).unwrap()));
        let window = adw::PreferencesWindow::new();
        let row = preset_row(&window, &preset, &editor);
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
