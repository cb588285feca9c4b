//! The dialog that makes or edits an app's rule ("Limit This App Everywhere…" in the details,
//! Edit on the Rules page of the preferences): a preset, the limits and the OOM policy, checked
//! as they are typed; what it saves is a [`RuleDraft`] for [`crate::engine::rules`].

use adw::prelude::*;

use crate::cgroup::Limit;
use crate::config::{AppRule, Config, DEFAULT_PRESET, OomPolicy, RulePreset, Settings};
use crate::engine::rules::{RULE_KEYS, RuleDraft};
use crate::i18n::{gettext, gettext_f, gettext_noop};
use crate::limits::{Bytes, MemoryLimit};
use crate::monitor::UnitSnapshot;

/// The text fields of the form, by setting key, with their titles.
const FIELDS: [(&str, &str); 4] = [
    (
        "memory-high",
        gettext_noop("Memory high (slows down above)"),
    ),
    ("memory-max", gettext_noop("Memory max (killed above)")),
    ("cpu-quota", gettext_noop("CPU quota")),
    ("tasks-max", gettext_noop("Tasks max")),
];

/// The OOM policy choices: as the preset says, then systemd's three.
const OOM_CHOICES: [(Option<OomPolicy>, &str); 4] = [
    (None, gettext_noop("As the Preset Says")),
    (Some(OomPolicy::Stop), gettext_noop("Stop the Whole App")),
    (
        Some(OomPolicy::Continue),
        gettext_noop("Go On Without the Killed Process"),
    ),
    (Some(OomPolicy::Kill), gettext_noop("Kill Every Process")),
];

/// What the form starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleForm {
    pub app_id: String,
    /// Who the heading names: the app's name, or its id.
    pub app_name: String,
    /// The preset chosen; `None` for the default one.
    pub preset: Option<String>,
    /// The texts of [`FIELDS`], in order.
    pub texts: [String; 4],
    pub oom_policy: Option<OomPolicy>,
}

impl RuleForm {
    /// Prefilled with what the running unit has now: its limits as the kernel holds them, the
    /// preset of the rule that reaches it (or the one it was launched with).
    pub fn from_unit(snap: &UnitSnapshot, app_id: &str, config: &Config) -> RuleForm {
        let c = snap.cgroup.as_ref();
        let memory = |limit: Option<Limit>| match limit {
            Some(Limit::Value(v)) => memory_text(v),
            _ => String::new(),
        };
        let cpu = c
            .and_then(|c| c.cpu_max)
            .and_then(|m| match m.quota {
                Limit::Value(q) => Some(format!("{}%", q * 100 / m.period_usec.max(1))),
                Limit::Max => None,
            })
            .unwrap_or_default();
        let tasks = match c.and_then(|c| c.pids_max) {
            Some(Limit::Value(v)) => v.to_string(),
            _ => String::new(),
        };
        let rule = config
            .rules()
            .find(|(key, _)| *key == app_id)
            .map(|(_, r)| r);
        let preset = rule
            .and_then(|r| r.preset.clone())
            .or_else(|| snap.info.preset.clone())
            .filter(|p| config.preset(p).is_ok());
        RuleForm {
            app_id: app_id.to_owned(),
            app_name: snap.info.name.clone(),
            preset,
            texts: [
                memory(c.and_then(|c| c.memory_high)),
                memory(c.and_then(|c| c.memory_max)),
                cpu,
                tasks,
            ],
            oom_policy: rule.and_then(|r| r.settings.oom_policy),
        }
    }

    /// Prefilled with a rule as the file has it.
    pub fn from_rule(app_id: &str, rule: &AppRule) -> RuleForm {
        let values: std::collections::HashMap<&str, String> =
            rule.settings.entries().into_iter().collect();
        RuleForm {
            app_id: app_id.to_owned(),
            app_name: app_id.to_owned(),
            preset: rule.preset.clone(),
            texts: FIELDS.map(|(key, _)| values.get(key).cloned().unwrap_or_default()),
            oom_policy: rule.settings.oom_policy,
        }
    }
}

/// A memory size as a person types it: whole MiB or GiB when it is one, else KiB (exact).
fn memory_text(bytes: u64) -> String {
    MemoryLimit::Bytes(Bytes(bytes)).to_string()
}

/// The rule the form's values stand for, or what is wrong with them. An empty field leaves
/// that limit to the preset.
pub fn draft(
    app_id: &str,
    preset: Option<&str>,
    texts: &[String; 4],
    oom_policy: Option<OomPolicy>,
) -> Result<RuleDraft, String> {
    let mut settings = Settings::default();
    for ((key, _), text) in FIELDS.iter().zip(texts) {
        let text = text.trim();
        if !text.is_empty() {
            settings.set(key, text).map_err(|e| e.to_string())?;
        }
    }
    settings.oom_policy = oom_policy;
    Ok(RuleDraft {
        app_id: app_id.to_owned(),
        preset: match preset {
            Some(name) => RulePreset::Named(name.to_owned()),
            None => RulePreset::Default,
        },
        keys: RULE_KEYS.to_vec(),
        settings,
    })
}

/// Opens the dialog over `parent`; `on_save` gets the rule when the person saves. The Save
/// button is off while a field holds something that is not a limit, and a line says why.
pub fn open(
    parent: &impl IsA<gtk::Window>,
    form: RuleForm,
    presets: Vec<String>,
    on_save: impl Fn(RuleDraft) + 'static,
) -> adw::MessageDialog {
    let heading = gettext_f("Limit {app} Everywhere", &[("app", &form.app_name)]);
    let dialog = adw::MessageDialog::builder()
        .transient_for(parent)
        .modal(true)
        .title(&heading)
        .heading(&heading)
        .body(gettext_f(
            "A rule for {id}: it holds however the app is started (app grid, dock, Flatpak, terminal or Corral), and for the running instances at once. An empty field leaves that limit to the preset. Sizes like 4G or 70 %, CPU like 150 %.",
            &[("id", &form.app_id)],
        ))
        .default_width(480)
        .build();
    let group = adw::PreferencesGroup::new();
    let mut labels = vec![gettext_f(
        "Default ({preset})",
        &[("preset", &DEFAULT_PRESET)],
    )];
    labels.extend(presets.iter().cloned());
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let preset_row = adw::ComboRow::builder()
        .title(gettext("Preset"))
        .model(&gtk::StringList::new(&label_refs))
        .selected(
            form.preset
                .as_ref()
                .and_then(|p| presets.iter().position(|q| q == p))
                .map_or(0, |i| i as u32 + 1),
        )
        .build();
    group.add(&preset_row);
    let entries: Vec<adw::EntryRow> = FIELDS
        .iter()
        .zip(&form.texts)
        .map(|((_, title), text)| {
            let row = adw::EntryRow::builder().title(gettext(title)).build();
            row.set_text(text);
            // Enter saves, as in any dialog with a default button.
            row.set_activates_default(true);
            group.add(&row);
            row
        })
        .collect();
    let oom_labels = OOM_CHOICES.map(|(_, label)| gettext(label));
    let oom_row = adw::ComboRow::builder()
        .title(gettext("When the Kernel Kills a Process"))
        .model(&gtk::StringList::new(
            &oom_labels.each_ref().map(String::as_str),
        ))
        .selected(
            OOM_CHOICES
                .iter()
                .position(|(p, _)| *p == form.oom_policy)
                .unwrap_or(0) as u32,
        )
        .build();
    group.add(&oom_row);
    let problem = gtk::Label::builder()
        .xalign(0.0)
        .wrap(true)
        .css_classes(["caption", "error"])
        .visible(false)
        .build();
    let content = gtk::Box::new(gtk::Orientation::Vertical, 12);
    content.append(&group);
    content.append(&problem);
    dialog.set_extra_child(Some(&content));
    dialog.add_response("cancel", &gettext("Cancel"));
    dialog.add_response("save", &gettext("Save Rule"));
    dialog.set_response_appearance("save", adw::ResponseAppearance::Suggested);
    dialog.set_default_response(Some("save"));
    dialog.set_close_response("cancel");

    let app_id = form.app_id.clone();
    let read = {
        let (entries, preset_row, oom_row) = (entries.clone(), preset_row.clone(), oom_row.clone());
        move || {
            let texts: [String; 4] = std::array::from_fn(|i| entries[i].text().to_string());
            let preset = (preset_row.selected() as usize)
                .checked_sub(1)
                .and_then(|i| presets.get(i))
                .map(String::as_str);
            let oom = OOM_CHOICES
                .get(oom_row.selected() as usize)
                .and_then(|(p, _)| *p);
            draft(&app_id, preset, &texts, oom)
        }
    };
    let read = std::rc::Rc::new(read);
    let check = {
        let (dialog, problem, read) = (dialog.clone(), problem.clone(), read.clone());
        move || {
            let result = read();
            dialog.set_response_enabled("save", result.is_ok());
            problem.set_visible(result.is_err());
            problem.set_text(result.err().as_deref().unwrap_or(""));
        }
    };
    let check = std::rc::Rc::new(check);
    for entry in &entries {
        let check = check.clone();
        entry.connect_changed(move |_| check());
    }
    check();
    dialog.connect_response(None, move |_, response| {
        if response == "save"
            && let Ok(draft) = read()
        {
            on_save(draft);
        }
    });
    dialog.present();
    // The hard limit is what most people come to change: typing goes there.
    entries[1].grab_focus();
    dialog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_makes_a_rule_of_what_is_typed_and_names_a_mistake() {
        let texts = [
            String::new(),
            "96M".to_owned(),
            " 50% ".to_owned(),
            String::new(),
        ];
        let draft = draft("org.example.App", Some("browser"), &texts, None).unwrap();
        assert_eq!(draft.preset, RulePreset::Named("browser".into()));
        assert_eq!(draft.keys, RULE_KEYS);
        assert_eq!(
            draft.settings.entries(),
            [
                ("memory-max", "96M".to_owned()),
                ("cpu-quota", "50%".to_owned())
            ]
        );
        let wrong = [
            String::new(),
            "lots".to_owned(),
            String::new(),
            String::new(),
        ];
        let error = super::draft("x", None, &wrong, None).unwrap_err();
        assert!(error.contains("memory-max"), "{error}");
        let default = super::draft("x", None, &Default::default(), Some(OomPolicy::Continue));
        let default = default.unwrap();
        assert_eq!(default.preset, RulePreset::Default);
        assert_eq!(default.settings.oom_policy, Some(OomPolicy::Continue));
    }

    #[test]
    fn a_units_form_starts_from_its_limits_and_its_preset() {
        let unit = "app-corral-firefox-00000001.service";
        let mut snap = crate::ui::unit_list::tests::unit("Firefox", unit, 1, false);
        if let Some(c) = snap.cgroup.as_mut() {
            c.memory_max = Some(Limit::Value(2 * Bytes::GIB));
            c.memory_high = Some(Limit::Max);
        }
        let form = RuleForm::from_unit(&snap, "firefox", &Config::default());
        assert_eq!(form.preset.as_deref(), Some("browser"));
        assert_eq!(form.texts[0], "");
        assert_eq!(form.texts[1], "2G");
        assert_eq!(form.app_name, "Firefox");
    }
}
