//! The selected app in detail: history graphs of memory and CPU with their limits, limit
//! editors applied at runtime and read back, and the actions (freeze/thaw, stop, kill).

use std::time::SystemTime;

use adw::prelude::*;
use relm4::prelude::*;

use crate::cgroup::{CgroupFs, Limit};
use crate::config::Settings;
use crate::controller::LimitCheck;
use crate::engine::rules::UnitRule;
use crate::i18n::{gettext, gettext_f, ngettext_f, pgettext};
use crate::limits::Bytes;
use crate::monitor::UnitSnapshot;
use crate::monitor::history::{History, TimelineKind};
use crate::monitor::service::{SharedHistory, lock_history};
use crate::ui::A11yLabel;
use crate::ui::graph::{Graph, GraphData, GraphUnit};
use crate::ui::processes::{ProcessesInput, ProcessesOutput, ProcessesSection};
use crate::ui::rule_section::{RuleInput, RuleOutput, RuleSection};
use crate::ui::unit_row::{state_label, state_text};

#[derive(Debug)]
pub enum DetailsInput {
    /// Another unit is selected: its editors are filled with its current limits.
    Show {
        snapshot: Box<UnitSnapshot>,
        icon: Option<String>,
    },
    /// The shown unit's latest figures.
    Update {
        snapshot: Box<UnitSnapshot>,
        now: SystemTime,
    },
    /// The monitor's history, once connected.
    History(SharedHistory),
    /// Per limit, whether the kernel took it.
    Checks(Vec<LimitCheck>),
    /// A line under the limits: what happened, or what went wrong.
    Result {
        text: String,
        error: bool,
    },
    /// The rule that reaches the shown unit (at every refresh).
    Rule(UnitRule),
    /// What saving its rule did, a line per running instance and limit.
    RuleResult {
        lines: Vec<String>,
        error: bool,
    },
    FreezeClicked(bool),
    Stop,
    Kill,
    Apply,
    Remember,
}

/// What the details ask the window to do to the shown unit.
#[derive(Debug, Clone)]
pub enum DetailsOutput {
    Freeze(String),
    Thaw(String),
    Stop(String),
    Kill(String),
    ApplyLimits(String, Settings),
    Remember(String, Settings),
    /// "Limit This App Everywhere…": the rule dialog for the unit's app.
    LimitEverywhere(String),
    /// "Contain…" on one of the unit's processes.
    Contain {
        unit: String,
        pid: u32,
        command: String,
    },
}

/// One limit editor: an entry row, and the exact value behind a rounded text it was filled
/// with ("982.5M" shown for 1006064K): an untouched editor applies the exact limit.
struct LimitEditor {
    key: &'static str,
    row: adw::EntryRow,
    exact: Option<(String, String)>,
}

impl LimitEditor {
    fn fill(&mut self, text: EditorText) {
        self.row.set_text(&text.shown);
        self.exact = Some((text.shown, text.exact));
    }

    /// Fills in a changed limit (set by a rule, the tray or `corral limit` meanwhile) unless
    /// the person has started to edit this one.
    fn follow(&mut self, text: EditorText) {
        let untouched = match &self.exact {
            Some((shown, _)) => self.row.text() == shown.as_str(),
            None => true,
        };
        if untouched && self.exact.as_ref() != Some(&(text.shown.clone(), text.exact.clone())) {
            self.fill(text);
        }
    }

    /// The text to apply: the exact value if the person left the rounded one as it was.
    fn value(&self) -> String {
        let text = self.row.text().trim().to_owned();
        match &self.exact {
            Some((shown, exact)) if *shown == text => exact.clone(),
            _ => text,
        }
    }
}

/// What an editor shows for a current limit, and the exact value it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EditorText {
    shown: String,
    exact: String,
}

impl EditorText {
    fn plain(text: String) -> EditorText {
        EditorText {
            shown: text.clone(),
            exact: text,
        }
    }

    /// A memory limit as a person would type it: exact when it is a whole number of MiB
    /// ("64M", "2G"), else rounded ("982.5M", "3.86G"): percentage limits resolve to sizes
    /// like 1006064K that nobody reads at a glance.
    fn memory(limit: Option<Limit>) -> EditorText {
        let bytes = match limit {
            Some(Limit::Value(v)) => v,
            Some(Limit::Max) => return EditorText::plain("max".into()),
            None => return EditorText::plain(String::new()),
        };
        let exact = crate::limits::MemoryLimit::Bytes(Bytes(bytes)).to_string();
        let shown = if bytes % Bytes::MIB == 0 {
            exact.clone()
        } else if bytes >= Bytes::GIB {
            let text = format!("{:.2}", bytes as f64 / Bytes::GIB as f64);
            format!("{}G", text.trim_end_matches('0').trim_end_matches('.'))
        } else {
            let text = format!("{:.1}", bytes as f64 / Bytes::MIB as f64);
            format!("{}M", text.trim_end_matches('0').trim_end_matches('.'))
        };
        EditorText { shown, exact }
    }
}

pub struct Details {
    snapshot: Option<UnitSnapshot>,
    icon: String,
    history: SharedHistory,
    result: String,
    result_error: bool,
    memory_graph: Graph,
    cpu_graph: Graph,
    editors: Vec<LimitEditor>,
    limits: adw::PreferencesGroup,
    rule: Controller<RuleSection>,
    processes: Controller<ProcessesSection>,
}

impl Details {
    fn unit(&self) -> Option<String> {
        self.snapshot.as_ref().map(|s| s.info.unit.clone())
    }

    fn frozen(&self) -> bool {
        self.snapshot
            .as_ref()
            .is_some_and(|s| state_text(s) == "frozen")
    }

    fn freeze_label(&self) -> String {
        if self.frozen() {
            gettext("Thaw")
        } else {
            gettext("Freeze")
        }
    }

    fn title(&self) -> String {
        self.snapshot
            .as_ref()
            .map(|s| s.info.name.clone())
            .unwrap_or_default()
    }

    fn subtitle(&self) -> String {
        let Some(snap) = &self.snapshot else {
            return String::new();
        };
        let info = &snap.info;
        let preset = info
            .preset
            .as_deref()
            .map(|p| gettext_f(" · preset {preset}", &[("preset", &p)]))
            .unwrap_or_default();
        gettext_f(
            "{unit} · launched by {launcher}{preset} · {state}",
            &[
                ("unit", &info.unit),
                ("launcher", &info.launcher),
                ("preset", &preset),
                ("state", &state_label(state_text(snap))),
            ],
        )
    }

    /// The limits typed into the editors; empty editors are left out.
    fn settings(&self) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for editor in &self.editors {
            let text = editor.value();
            if !text.is_empty() {
                settings.set(editor.key, &text).map_err(|e| e.to_string())?;
            }
        }
        Ok(settings)
    }

    /// Has the processes section read the shown unit's processes (again).
    fn read_processes(&self) {
        if let Some(snap) = &self.snapshot {
            self.processes.emit(ProcessesInput::Show {
                unit: snap.info.unit.clone(),
                dir: snap
                    .info
                    .control_group
                    .as_deref()
                    .map(|cg| CgroupFs::system().path_of(cg)),
            });
        }
    }

    /// Fills the editors with a newly shown unit's current limits.
    fn fill_editors(&mut self, snap: &UnitSnapshot) {
        for (editor, text) in self.editors.iter_mut().zip(current_limits(snap)) {
            editor.fill(text);
        }
    }

    /// The limit editors' texts, in order (memory high, memory max, CPU quota, CPU weight,
    /// tasks max).
    #[cfg(test)]
    pub(crate) fn editor_texts(&self) -> Vec<String> {
        self.editors
            .iter()
            .map(|e| e.row.text().to_string())
            .collect()
    }

    /// Types into the limit editor at `index`, as a person would.
    #[cfg(test)]
    pub(crate) fn type_into_editor(&self, index: usize, text: &str) {
        self.editors[index].row.set_text(text);
    }

    /// Brings the editors the person has not touched up to date with the unit's limits.
    fn follow_limits(&mut self, snap: &UnitSnapshot) {
        // A cgroup that could not be read says nothing about the limits.
        if snap.cgroup.is_none() {
            return;
        }
        for (editor, text) in self.editors.iter_mut().zip(current_limits(snap)) {
            editor.follow(text);
        }
    }

    /// Draws the graphs of the shown unit's history.
    fn draw(&self, now: SystemTime) {
        let Some(snap) = &self.snapshot else { return };
        let c = snap.cgroup.as_ref();
        let value = |l: Option<Limit>| match l {
            Some(Limit::Value(v)) => Some(v as f64),
            _ => None,
        };
        let mut memory_lines = Vec::new();
        if let Some(v) = value(c.and_then(|c| c.memory_high)) {
            memory_lines.push((v, pgettext("graph line", "high")));
        }
        if let Some(v) = value(c.and_then(|c| c.memory_max)) {
            memory_lines.push((v, pgettext("graph line", "max")));
        }
        let mut cpu_lines = Vec::new();
        if let Some(m) = c.and_then(|c| c.cpu_max)
            && let Limit::Value(q) = m.quota
        {
            cpu_lines.push((
                q as f64 * 100.0 / m.period_usec.max(1) as f64,
                pgettext("graph line", "quota"),
            ));
        }
        let (memory_points, cpu_points, events) =
            series(&lock_history(&self.history), &snap.info.unit, now);
        self.memory_graph.set(GraphData {
            points: memory_points,
            lines: memory_lines,
            events: events.clone(),
            span: GRAPH_SPAN_SECS,
            unit: GraphUnit::Bytes,
        });
        self.cpu_graph.set(GraphData {
            points: cpu_points,
            lines: cpu_lines,
            events,
            span: GRAPH_SPAN_SECS,
            unit: GraphUnit::Percent,
        });
    }

    fn show_checks(&mut self, checks: &[LimitCheck]) {
        let lines: Vec<String> = checks
            .iter()
            .map(|c| match &c.problem {
                None => gettext_f(
                    "✓ {setting} {value}: applied",
                    &[("setting", &c.setting_label()), ("value", &c.wanted)],
                ),
                Some(p) => gettext_f(
                    "✗ {setting} {value}: not applied — {problem}",
                    &[
                        ("setting", &c.setting_label()),
                        ("value", &c.wanted),
                        ("problem", p),
                    ],
                ),
            })
            .collect();
        self.result = lines.join("\n");
        self.result_error = checks.iter().any(|c| !c.applied());
    }

    /// Sends `output(unit, settings)` for the typed limits, or says what is wrong with them.
    fn with_settings(
        &mut self,
        sender: &ComponentSender<Self>,
        output: fn(String, Settings) -> DetailsOutput,
    ) {
        let Some(unit) = self.unit() else { return };
        match self.settings() {
            Ok(settings) => {
                let _ = sender.output(output(unit, settings));
            }
            Err(e) => {
                self.result = e;
                self.result_error = true;
            }
        }
    }
}

/// The editors' texts for a unit's current limits, in the editors' order.
fn current_limits(snap: &UnitSnapshot) -> [EditorText; 5] {
    let c = snap.cgroup.as_ref();
    let count = |limit: Option<Limit>| match limit {
        Some(Limit::Value(v)) => v.to_string(),
        Some(Limit::Max) => "max".into(),
        None => String::new(),
    };
    [
        EditorText::memory(c.and_then(|c| c.memory_high)),
        EditorText::memory(c.and_then(|c| c.memory_max)),
        EditorText::plain(
            c.and_then(|c| c.cpu_max)
                .map(|m| match m.quota {
                    Limit::Max => "max".to_owned(),
                    Limit::Value(q) => format!("{}%", q * 100 / m.period_usec.max(1)),
                })
                .unwrap_or_default(),
        ),
        EditorText::plain(
            c.and_then(|c| c.cpu_weight)
                .map(|w| w.to_string())
                .unwrap_or_default(),
        ),
        EditorText::plain(count(c.and_then(|c| c.pids_max))),
    ]
}

/// "In use: 1.2 GiB, peak 1.5 GiB, pressure 3.1 %".
fn memory_caption(snap: Option<&UnitSnapshot>) -> String {
    let c = snap.and_then(|s| s.cgroup.as_ref());
    let peak = c
        .and_then(|c| c.memory_peak)
        .map(|p| gettext_f(", peak {size}", &[("size", &Bytes(p))]))
        .unwrap_or_default();
    let pressure = c
        .and_then(|c| c.memory_pressure.as_ref())
        .map(|p| {
            gettext_f(
                ", pressure {percent} %",
                &[("percent", &format!("{:.1}", p.some.avg10))],
            )
        })
        .unwrap_or_default();
    let size = c
        .and_then(|c| c.memory_current)
        .map(|m| Bytes(m).to_string())
        .unwrap_or_else(|| gettext("unknown"));
    gettext_f(
        "In use: {size}{peak}{pressure}",
        &[("size", &size), ("peak", &peak), ("pressure", &pressure)],
    )
}

/// "Now: 35 % of one CPU, throttled 3 times · tasks: 12".
fn cpu_caption(snap: Option<&UnitSnapshot>) -> String {
    let c = snap.and_then(|s| s.cgroup.as_ref());
    let throttled = c
        .and_then(|c| c.cpu_stat.as_ref())
        .and_then(|s| s.nr_throttled)
        .filter(|&n| n > 0)
        .map(|n| {
            ngettext_f(
                ", throttled {n} time",
                ", throttled {n} times",
                n,
                &[("n", &n)],
            )
        })
        .unwrap_or_default();
    let cpu = snap
        .and_then(|s| s.cpu_percent)
        .map(|p| gettext_f("{percent} % of one CPU", &[("percent", &format!("{p:.0}"))]))
        .unwrap_or_else(|| gettext("measuring…"));
    let tasks = c
        .and_then(|c| c.pids_current)
        .map(|n| n.to_string())
        .unwrap_or_else(|| gettext("unknown"));
    gettext_f(
        "Now: {cpu}{throttled} · tasks: {tasks}",
        &[("cpu", &cpu), ("throttled", &throttled), ("tasks", &tasks)],
    )
}

/// The limit editors: key and title, in order.
fn editor_titles() -> [(&'static str, String); 5] {
    [
        ("memory-high", gettext("Memory high (slows down above)")),
        ("memory-max", gettext("Memory max (killed above)")),
        ("cpu-quota", gettext("CPU quota")),
        ("cpu-weight", gettext("CPU weight")),
        ("tasks-max", gettext("Tasks max")),
    ]
}

/// The page is a column of sections: heading, actions, memory, CPU, limits. A new section
/// (which rule applies, the app's processes) is one more child of `sections`, a component of
/// its own that gets the shown unit from [`DetailsInput::Show`].
#[relm4::component(pub)]
impl Component for Details {
    type Init = ();
    type Input = DetailsInput;
    type Output = DetailsOutput;
    type CommandOutput = ();

    view! {
        #[root]
        gtk::ScrolledWindow {
            set_hscrollbar_policy: gtk::PolicyType::Never,
            set_hexpand: true,
            adw::Clamp {
                set_maximum_size: 720,
                #[name = "sections"]
                gtk::Box {
                    set_orientation: gtk::Orientation::Vertical,
                    set_spacing: 12,
                    set_margin_top: 18,
                    set_margin_bottom: 18,
                    set_margin_start: 18,
                    set_margin_end: 18,

                    gtk::Box {
                        set_spacing: 12,
                        gtk::Image {
                            set_pixel_size: 64,
                            #[watch]
                            set_icon_name: Some(&model.icon),
                        },
                        gtk::Box {
                            set_orientation: gtk::Orientation::Vertical,
                            set_spacing: 4,
                            gtk::Label {
                                set_xalign: 0.0,
                                set_wrap: true,
                                set_css_classes: &["title-1"],
                                #[watch]
                                set_text: &model.title(),
                            },
                            gtk::Label {
                                set_xalign: 0.0,
                                set_wrap: true,
                                set_selectable: true,
                                set_css_classes: &["dim-label"],
                                #[watch]
                                set_text: &model.subtitle(),
                            },
                        },
                    },

                    gtk::Box {
                        set_spacing: 6,
                        gtk::ToggleButton {
                            set_tooltip_text: Some(&gettext("Freeze every process: it keeps its memory but uses no CPU")),
                            #[watch]
                            set_label: &model.freeze_label(),
                            #[watch]
                            set_a11y_label: &model.freeze_label(),
                            #[watch]
                            #[block_signal(freeze_handler)]
                            set_active: model.frozen(),
                            connect_clicked[sender] => move |button| {
                                sender.input(DetailsInput::FreezeClicked(button.is_active()));
                            } @freeze_handler,
                        },
                        gtk::Button {
                            set_label: &gettext("Stop"),
                            set_a11y_label: &gettext("Stop"),
                            set_tooltip_text: Some(&gettext("Ask the app to quit (SIGTERM)")),
                            connect_clicked => DetailsInput::Stop,
                        },
                        gtk::Button {
                            set_label: &gettext("Kill…"),
                            set_a11y_label: &gettext("Kill"),
                            set_css_classes: &["destructive-action"],
                            set_tooltip_text: Some(&gettext("End every process of the app at once (SIGKILL)")),
                            connect_clicked => DetailsInput::Kill,
                        },
                    },

                    gtk::Label {
                        set_label: &gettext("Memory"),
                        set_xalign: 0.0,
                        set_css_classes: &["heading"],
                    },
                    #[local_ref]
                    memory_area -> gtk::DrawingArea {},
                    gtk::Label {
                        set_xalign: 0.0,
                        set_css_classes: &["caption", "dim-label"],
                        #[watch]
                        set_text: &memory_caption(model.snapshot.as_ref()),
                    },
                    gtk::Label {
                        set_label: &gettext("CPU"),
                        set_xalign: 0.0,
                        set_css_classes: &["heading"],
                    },
                    #[local_ref]
                    cpu_area -> gtk::DrawingArea {},
                    gtk::Label {
                        set_xalign: 0.0,
                        set_css_classes: &["caption", "dim-label"],
                        #[watch]
                        set_text: &cpu_caption(model.snapshot.as_ref()),
                    },

                    #[local_ref]
                    limits -> adw::PreferencesGroup {
                        set_title: &gettext("Limits"),
                        set_description: Some(&gettext("Changes apply at once and hold until the app ends. Sizes like 4G or 70 %, CPU like 150 %, or max.")),
                    },
                    gtk::Box {
                        set_spacing: 6,
                        gtk::Button {
                            set_label: &gettext("Apply Limits"),
                            set_a11y_label: &gettext("Apply Limits"),
                            set_css_classes: &["suggested-action"],
                            set_tooltip_text: Some(&gettext("Apply every limit above to the running app")),
                            connect_clicked => DetailsInput::Apply,
                        },
                        gtk::Button {
                            set_label: &gettext("Remember for This App"),
                            set_a11y_label: &gettext("Remember for This App"),
                            set_tooltip_text: Some(&gettext("Save these limits as this app's rule, used at its next launch")),
                            connect_clicked => DetailsInput::Remember,
                        },
                    },
                    gtk::Label {
                        set_xalign: 0.0,
                        set_wrap: true,
                        #[watch]
                        set_text: &model.result,
                        #[watch]
                        set_css_classes: if model.result_error { &["caption", "error"] } else { &["caption"] },
                    },
                },
            },
        }
    }

    fn init(_: (), root: Self::Root, sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let limits = adw::PreferencesGroup::new();
        let editors = editor_titles()
            .into_iter()
            .map(|(key, title)| {
                let row = adw::EntryRow::builder().title(title).build();
                row.set_show_apply_button(true);
                let sender = sender.clone();
                row.connect_apply(move |_| sender.input(DetailsInput::Apply));
                limits.add(&row);
                LimitEditor {
                    key,
                    row,
                    exact: None,
                }
            })
            .collect();
        let rule = RuleSection::builder().launch(()).forward(
            sender.output_sender(),
            |RuleOutput::LimitEverywhere(unit)| DetailsOutput::LimitEverywhere(unit),
        );
        let processes = ProcessesSection::builder().launch(()).forward(
            sender.output_sender(),
            |ProcessesOutput::Contain { unit, pid, command }| DetailsOutput::Contain {
                unit,
                pid,
                command,
            },
        );
        let model = Details {
            rule,
            processes,
            snapshot: None,
            icon: "application-x-executable".to_owned(),
            history: SharedHistory::default(),
            result: String::new(),
            result_error: false,
            memory_graph: Graph::new(&gettext("Memory use over the last 10 minutes"), 140),
            cpu_graph: Graph::new(&gettext("CPU use over the last 10 minutes"), 100),
            editors,
            limits,
        };
        let memory_area = &model.memory_graph.area;
        let cpu_area = &model.cpu_graph.area;
        let limits = &model.limits;
        let widgets = view_output!();
        widgets.sections.append(model.rule.widget());
        widgets.sections.append(model.processes.widget());
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: DetailsInput, sender: ComponentSender<Self>, _: &Self::Root) {
        let unit = self.unit();
        let send = |output: fn(String) -> DetailsOutput| {
            if let Some(unit) = unit.clone() {
                let _ = sender.output(output(unit));
            }
        };
        match message {
            DetailsInput::Show { snapshot, icon } => {
                self.icon = icon.unwrap_or_else(|| "application-x-executable".to_owned());
                self.result.clear();
                self.result_error = false;
                self.fill_editors(&snapshot);
                self.snapshot = Some(*snapshot);
                self.draw(SystemTime::now());
                self.read_processes();
            }
            DetailsInput::Update { snapshot, now } => {
                self.follow_limits(&snapshot);
                self.snapshot = Some(*snapshot);
                self.draw(now);
                self.read_processes();
            }
            DetailsInput::Rule(rule) => {
                if let Some(unit) = self.unit() {
                    self.rule.emit(RuleInput::Show { unit, rule });
                }
            }
            DetailsInput::RuleResult { lines, error } => {
                self.rule.emit(RuleInput::Result { lines, error })
            }
            DetailsInput::History(history) => self.history = history,
            DetailsInput::Checks(checks) => self.show_checks(&checks),
            DetailsInput::Result { text, error } => {
                self.result = text;
                self.result_error = error;
            }
            DetailsInput::FreezeClicked(true) => send(DetailsOutput::Freeze),
            DetailsInput::FreezeClicked(false) => send(DetailsOutput::Thaw),
            DetailsInput::Stop => send(DetailsOutput::Stop),
            DetailsInput::Kill => send(DetailsOutput::Kill),
            DetailsInput::Apply => self.with_settings(&sender, DetailsOutput::ApplyLimits),
            DetailsInput::Remember => self.with_settings(&sender, DetailsOutput::Remember),
        }
    }
}

/// The graphs show the recent history: ten minutes at the default refresh interval.
const GRAPH_SPAN_SECS: f64 = 600.0;

type Series = Vec<(f64, f64)>;

/// Memory and CPU points and the timeline marks of one unit, in seconds before `now`.
fn series(history: &History, unit: &str, now: SystemTime) -> (Series, Series, Vec<(f64, String)>) {
    let ago = |at: SystemTime| {
        now.duration_since(at)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let Some(points) = history.recent(unit) else {
        return Default::default();
    };
    let memory = points
        .iter()
        .filter_map(|p| Some((ago(p.at()), p.memory()?.0 as f64)))
        .collect();
    let cpu = points
        .iter()
        .filter_map(|p| Some((ago(p.at()), p.cpu_percent()?)))
        .collect();
    let events = history
        .events(unit)
        .map(|ring| {
            ring.iter()
                .map(|e| {
                    let label = match e.kind {
                        TimelineKind::MemoryHighThrottled => pgettext("graph mark", "over high"),
                        TimelineKind::MemoryMaxHit => pgettext("graph mark", "at max"),
                        TimelineKind::CpuThrottled => pgettext("graph mark", "throttled"),
                        TimelineKind::Frozen => pgettext("graph mark", "frozen"),
                        TimelineKind::Thawed => pgettext("graph mark", "thawed"),
                        TimelineKind::OomKill => pgettext("graph mark", "OOM kill"),
                        TimelineKind::LimitChanged(_) => pgettext("graph mark", "limit changed"),
                    };
                    (ago(e.start()), label)
                })
                .collect()
        })
        .unwrap_or_default();
    (memory, cpu, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_read_rounded_but_apply_exactly() {
        let text = |limit| EditorText::memory(limit);
        assert_eq!(text(Some(Limit::Value(64 * Bytes::MIB))).shown, "64M");
        assert_eq!(text(Some(Limit::Value(2 * Bytes::GIB))).shown, "2G");
        let odd = text(Some(Limit::Value(1006064 * Bytes::KIB)));
        assert_eq!(odd.shown, "982.5M");
        assert_eq!(odd.exact, "1006064K");
        let big = text(Some(Limit::Value(4_047_044_608)));
        assert_eq!(big.shown, "3.77G");
        assert_eq!(big.exact, "3952192K");
        assert_eq!(text(Some(Limit::Max)).shown, "max");
        assert_eq!(text(None).shown, "");
    }
}
