//! The details' Rule section: which rule of config.toml reaches the shown app and through which
//! drop-in files, or that none does (or can), and "Limit This App Everywhere…", which the
//! window answers with the rule dialog; what saving did shows here, per running instance.

use adw::prelude::*;
use relm4::prelude::*;

use crate::engine::rules::UnitRule;
use crate::i18n::{gettext, gettext_f};
use crate::ui::A11yLabel;

#[derive(Debug)]
pub enum RuleInput {
    /// The rule that reaches `unit` now (sent at every refresh; a new unit clears the result).
    Show {
        unit: String,
        rule: UnitRule,
    },
    /// What saving the rule did, a line per limit and instance.
    Result {
        lines: Vec<String>,
        error: bool,
    },
    LimitClicked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOutput {
    /// Open the rule dialog for the shown unit.
    LimitEverywhere(String),
}

pub struct RuleSection {
    unit: Option<String>,
    rule: Option<UnitRule>,
    result: String,
    result_error: bool,
}

/// A path with the home folder written as `~`, as people read it.
fn tilde(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && text.starts_with(&home) => {
            format!("~{}", &text[home.len()..])
        }
        _ => text,
    }
}

impl RuleSection {
    /// What the section says: which rule, and where it comes from.
    pub fn texts(rule: Option<&UnitRule>) -> (String, String) {
        match rule {
            None => (String::new(), String::new()),
            Some(UnitRule::Rule {
                app_id,
                preset,
                words,
                config_path,
                dropins,
            }) => {
                let what = match preset {
                    Some(preset) => gettext_f(
                        "Rule for {app}: preset {preset}; {words}",
                        &[("app", app_id), ("preset", preset), ("words", words)],
                    ),
                    None => gettext_f(
                        "Rule for {app}: {words}",
                        &[("app", app_id), ("words", words)],
                    ),
                };
                let files: Vec<String> = dropins.iter().map(|p| tilde(p)).collect();
                let source = gettext_f(
                    "From [apps.\"{app}\"] in {config}, written for systemd as {files}",
                    &[
                        ("app", app_id),
                        ("config", &tilde(config_path)),
                        ("files", &files.join(", ")),
                    ],
                );
                (what, source)
            }
            Some(UnitRule::None { app_id }) => (
                gettext_f("No rule for {app}", &[("app", app_id)]),
                gettext(
                    "The limits above last until the app ends. A rule holds at every start, whoever starts the app.",
                ),
            ),
            Some(UnitRule::Impossible(why)) => (gettext("No rule can apply"), why.clone()),
        }
    }

    fn button_label(&self) -> String {
        match &self.rule {
            Some(UnitRule::Rule { .. }) => gettext("Edit Rule…"),
            _ => gettext("Limit This App Everywhere…"),
        }
    }

    fn button_tooltip(&self) -> String {
        match &self.rule {
            Some(UnitRule::Impossible(why)) => why.clone(),
            _ => gettext(
                "Keep limits for this app however it is started, and apply them to its running instances now",
            ),
        }
    }
}

#[relm4::component(pub)]
impl Component for RuleSection {
    type Init = ();
    type Input = RuleInput;
    type Output = RuleOutput;
    type CommandOutput = ();

    view! {
        #[root]
        adw::PreferencesGroup {
            set_title: &gettext("Rule"),
            set_margin_top: 6,
            #[wrap(Some)]
            set_header_suffix = &gtk::Button {
                set_valign: gtk::Align::Center,
                #[watch]
                set_label: &model.button_label(),
                #[watch]
                set_a11y_label: &model.button_label(),
                #[watch]
                set_tooltip_text: Some(&model.button_tooltip()),
                #[watch]
                set_sensitive: model.rule.as_ref().is_some_and(|r| r.app_id().is_some()),
                connect_clicked => RuleInput::LimitClicked,
            },
            add = &gtk::Box {
                set_orientation: gtk::Orientation::Vertical,
                set_spacing: 4,
                gtk::Label {
                    set_xalign: 0.0,
                    set_wrap: true,
                    set_wrap_mode: gtk::pango::WrapMode::WordChar,
                    #[watch]
                    set_text: &RuleSection::texts(model.rule.as_ref()).0,
                },
                gtk::Label {
                    set_xalign: 0.0,
                    set_wrap: true,
                    set_wrap_mode: gtk::pango::WrapMode::WordChar,
                    set_selectable: true,
                    set_css_classes: &["caption", "dim-label"],
                    #[watch]
                    set_text: &RuleSection::texts(model.rule.as_ref()).1,
                },
                gtk::Label {
                    set_xalign: 0.0,
                    set_wrap: true,
                    set_wrap_mode: gtk::pango::WrapMode::WordChar,
                    #[watch]
                    set_visible: !model.result.is_empty(),
                    #[watch]
                    set_text: &model.result,
                    #[watch]
                    set_css_classes: if model.result_error { &["caption", "error"] } else { &["caption"] },
                },
            },
        }
    }

    fn init(_: (), root: Self::Root, sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let model = RuleSection {
            unit: None,
            rule: None,
            result: String::new(),
            result_error: false,
        };
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: RuleInput, sender: ComponentSender<Self>, _: &Self::Root) {
        match message {
            RuleInput::Show { unit, rule } => {
                if self.unit.as_deref() != Some(unit.as_str()) {
                    self.result.clear();
                    self.result_error = false;
                }
                self.unit = Some(unit);
                self.rule = Some(rule);
            }
            RuleInput::Result { lines, error } => {
                self.result = lines.join("\n");
                self.result_error = error;
            }
            RuleInput::LimitClicked => {
                if let Some(unit) = &self.unit {
                    let _ = sender.output(RuleOutput::LimitEverywhere(unit.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_section_says_which_rule_and_where_it_comes_from() {
        let rule = UnitRule::Rule {
            app_id: "org.mozilla.firefox".into(),
            preset: Some("browser".into()),
            words: "killed above 4.0 GiB".into(),
            config_path: PathBuf::from("/etc/corral/config.toml"),
            dropins: vec![PathBuf::from(
                "/u/app-gnome-org.mozilla.firefox-.scope.d/40-corral.conf",
            )],
        };
        let (what, source) = RuleSection::texts(Some(&rule));
        assert_eq!(
            what,
            "Rule for org.mozilla.firefox: preset browser; killed above 4.0 GiB"
        );
        assert!(
            source.contains("[apps.\"org.mozilla.firefox\"]"),
            "{source}"
        );
        assert!(source.contains("/u/app-gnome-org.mozilla.firefox-.scope.d/40-corral.conf"));
        let none = UnitRule::None {
            app_id: "org.gnome.Terminal".into(),
        };
        assert_eq!(
            RuleSection::texts(Some(&none)).0,
            "No rule for org.gnome.Terminal"
        );
    }
}
