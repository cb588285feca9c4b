//! The selected app in detail: history graphs of memory and CPU with their limits, limit
//! editors applied at runtime and read back, and the actions (freeze/thaw, stop, kill).

use std::time::SystemTime;

use adw::prelude::*;

use crate::cgroup::Limit;
use crate::config::Settings;
use crate::controller::LimitCheck;
use crate::i18n::{gettext, gettext_f, ngettext_f, pgettext};
use crate::limits::Bytes;
use crate::monitor::UnitSnapshot;
use crate::monitor::history::{History, TimelineKind};
use crate::ui::graph::{Graph, GraphData, GraphUnit};
use crate::ui::unit_row::{state_label, state_text};

/// What the details pane asks the window to do.
#[derive(Debug, Clone)]
pub enum DetailsAction {
    Freeze(String),
    Thaw(String),
    Stop(String),
    Kill(String),
    ApplyLimits(String, Settings),
    Remember(String, Settings),
}

/// One limit editor: an entry row whose subtitle says whether the kernel took the value.
struct LimitEditor {
    key: &'static str,
    row: adw::EntryRow,
    /// The exact value behind a rounded text the editor was filled with ("982.5M" shown for
    /// 1006064K): an untouched editor applies and remembers the exact limit, not the rounding.
    exact: std::cell::RefCell<Option<(String, String)>>,
}

impl LimitEditor {
    fn fill(&self, text: EditorText) {
        self.row.set_text(&text.shown);
        *self.exact.borrow_mut() = Some((text.shown, text.exact));
    }

    /// The text to apply: the exact value if the person left the rounded one as it was.
    fn value(&self) -> String {
        let text = self.row.text().trim().to_owned();
        match &*self.exact.borrow() {
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
    pub root: gtk::ScrolledWindow,
    unit: std::cell::RefCell<Option<String>>,
    icon: gtk::Image,
    title: gtk::Label,
    subtitle: gtk::Label,
    freeze: gtk::ToggleButton,
    memory_graph: Graph,
    cpu_graph: Graph,
    memory_caption: gtk::Label,
    cpu_caption: gtk::Label,
    editors: Vec<LimitEditor>,
    result: gtk::Label,
}

impl Details {
    pub fn new(send: impl Fn(DetailsAction) + Clone + 'static) -> std::rc::Rc<Details> {
        let icon = gtk::Image::builder().pixel_size(64).build();
        let title = gtk::Label::builder()
            .xalign(0.0)
            .css_classes(["title-1"])
            .wrap(true)
            .build();
        let subtitle = gtk::Label::builder()
            .xalign(0.0)
            .css_classes(["dim-label"])
            .wrap(true)
            .selectable(true)
            .build();
        let heading = gtk::Box::new(gtk::Orientation::Vertical, 4);
        heading.append(&title);
        heading.append(&subtitle);
        let header = gtk::Box::new(gtk::Orientation::Horizontal, 12);
        header.append(&icon);
        header.append(&heading);

        let freeze = gtk::ToggleButton::builder()
            .label(gettext("Freeze"))
            .build();
        freeze.set_tooltip_text(Some(&gettext(
            "Freeze every process: it keeps its memory but uses no CPU",
        )));
        let stop = gtk::Button::builder().label(gettext("Stop")).build();
        stop.set_tooltip_text(Some(&gettext("Ask the app to quit (SIGTERM)")));
        let kill = gtk::Button::builder()
            .label(gettext("Kill…"))
            .css_classes(["destructive-action"])
            .build();
        kill.set_tooltip_text(Some(&gettext(
            "End every process of the app at once (SIGKILL)",
        )));
        // GTK 4.8 does not name buttons after their labels on the accessibility bus.
        crate::ui::set_accessible_label(&freeze, &gettext("Freeze"));
        crate::ui::set_accessible_label(&stop, &gettext("Stop"));
        crate::ui::set_accessible_label(&kill, &gettext("Kill"));
        let actions = gtk::Box::new(gtk::Orientation::Horizontal, 6);
        actions.append(&freeze);
        actions.append(&stop);
        actions.append(&kill);

        let memory_graph = Graph::new(&gettext("Memory use over the last 10 minutes"), 140);
        let cpu_graph = Graph::new(&gettext("CPU use over the last 10 minutes"), 100);
        let memory_caption = caption();
        let cpu_caption = caption();

        let limits = adw::PreferencesGroup::builder()
            .title(gettext("Limits"))
            .description(gettext("Changes apply at once and hold until the app ends. Sizes like 4G or 70 %, CPU like 150 %, or max."))
            .build();
        let editors: Vec<LimitEditor> = [
            ("memory-high", gettext("Memory high (slows down above)")),
            ("memory-max", gettext("Memory max (killed above)")),
            ("cpu-quota", gettext("CPU quota")),
            ("cpu-weight", gettext("CPU weight")),
            ("tasks-max", gettext("Tasks max")),
        ]
        .into_iter()
        .map(|(key, label)| {
            let row = adw::EntryRow::builder().title(label).build();
            row.set_show_apply_button(true);
            limits.add(&row);
            LimitEditor {
                key,
                row,
                exact: std::cell::RefCell::default(),
            }
        })
        .collect();
        let result = gtk::Label::builder()
            .xalign(0.0)
            .wrap(true)
            .css_classes(["caption"])
            .build();
        let apply = gtk::Button::builder()
            .label(gettext("Apply Limits"))
            .css_classes(["suggested-action"])
            .build();
        apply.set_tooltip_text(Some(&gettext("Apply every limit above to the running app")));
        let remember = gtk::Button::builder()
            .label(gettext("Remember for This App"))
            .build();
        crate::ui::set_accessible_label(&apply, &gettext("Apply Limits"));
        crate::ui::set_accessible_label(&remember, &gettext("Remember for This App"));
        remember.set_tooltip_text(Some(&gettext(
            "Save these limits as this app's rule, used at its next launch",
        )));

        let content = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(12)
            .margin_top(18)
            .margin_bottom(18)
            .margin_start(18)
            .margin_end(18)
            .build();
        content.append(&header);
        content.append(&actions);
        content.append(&section(&gettext("Memory")));
        content.append(&memory_graph.area);
        content.append(&memory_caption);
        content.append(&section(&gettext("CPU")));
        content.append(&cpu_graph.area);
        content.append(&cpu_caption);
        content.append(&limits);
        let buttons = gtk::Box::new(gtk::Orientation::Horizontal, 6);
        buttons.append(&apply);
        buttons.append(&remember);
        content.append(&buttons);
        content.append(&result);
        let clamp = adw::Clamp::builder()
            .maximum_size(720)
            .child(&content)
            .build();
        let root = gtk::ScrolledWindow::builder()
            .hscrollbar_policy(gtk::PolicyType::Never)
            .child(&clamp)
            .hexpand(true)
            .build();

        let details = std::rc::Rc::new(Details {
            root,
            unit: Default::default(),
            icon,
            title,
            subtitle,
            freeze,
            memory_graph,
            cpu_graph,
            memory_caption,
            cpu_caption,
            editors,
            result,
        });

        let weak = std::rc::Rc::downgrade(&details);
        let s = send.clone();
        details.freeze.connect_clicked(move |button| {
            let Some(d) = weak.upgrade() else { return };
            let Some(unit) = d.unit.borrow().clone() else {
                return;
            };
            s(if button.is_active() {
                DetailsAction::Freeze(unit)
            } else {
                DetailsAction::Thaw(unit)
            });
        });
        let weak = std::rc::Rc::downgrade(&details);
        let s = send.clone();
        stop.connect_clicked(move |_| {
            if let Some(unit) = weak.upgrade().and_then(|d| d.unit.borrow().clone()) {
                s(DetailsAction::Stop(unit));
            }
        });
        let weak = std::rc::Rc::downgrade(&details);
        let s = send.clone();
        kill.connect_clicked(move |_| {
            if let Some(unit) = weak.upgrade().and_then(|d| d.unit.borrow().clone()) {
                s(DetailsAction::Kill(unit));
            }
        });
        let apply_all = {
            let weak = std::rc::Rc::downgrade(&details);
            let s = send.clone();
            move || {
                let Some(d) = weak.upgrade() else { return };
                let Some(unit) = d.unit.borrow().clone() else {
                    return;
                };
                match d.settings() {
                    Ok(settings) => s(DetailsAction::ApplyLimits(unit, settings)),
                    Err(e) => d.show_result(&e, true),
                }
            }
        };
        {
            let apply_all = apply_all.clone();
            apply.connect_clicked(move |_| apply_all());
        }
        for editor in &details.editors {
            let apply_all = apply_all.clone();
            editor.row.connect_apply(move |_| apply_all());
        }
        let weak = std::rc::Rc::downgrade(&details);
        remember.connect_clicked(move |_| {
            let Some(d) = weak.upgrade() else { return };
            let Some(unit) = d.unit.borrow().clone() else {
                return;
            };
            match d.settings() {
                Ok(settings) => send(DetailsAction::Remember(unit, settings)),
                Err(e) => d.show_result(&e, true),
            }
        });
        details
    }

    /// The limits typed into the editors; empty editors are left out.
    fn settings(&self) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for editor in &self.editors {
            let text = editor.value();
            if text.is_empty() {
                continue;
            }
            settings.set(editor.key, &text).map_err(|e| e.to_string())?;
        }
        Ok(settings)
    }

    pub fn unit(&self) -> Option<String> {
        self.unit.borrow().clone()
    }

    /// Shows another unit: clears the editors and fills them with its current limits.
    pub fn show_unit(&self, snap: &UnitSnapshot, icon: Option<&str>) {
        *self.unit.borrow_mut() = Some(snap.info.unit.clone());
        self.icon
            .set_icon_name(Some(icon.unwrap_or("application-x-executable")));
        self.result.set_text("");
        let c = snap.cgroup.as_ref();
        let count = |limit: Option<Limit>| match limit {
            Some(Limit::Value(v)) => v.to_string(),
            Some(Limit::Max) => "max".into(),
            None => String::new(),
        };
        let current = [
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
        ];
        for (editor, text) in self.editors.iter().zip(current) {
            editor.fill(text);
        }
    }

    /// Refreshes the figures and graphs of the shown unit.
    pub fn update(&self, snap: &UnitSnapshot, history: &History, now: SystemTime) {
        let info = &snap.info;
        self.title.set_text(&info.name);
        let preset = info
            .preset
            .as_deref()
            .map(|p| gettext_f(" · preset {preset}", &[("preset", &p)]))
            .unwrap_or_default();
        self.subtitle.set_text(&gettext_f(
            "{unit} · launched by {launcher}{preset} · {state}",
            &[
                ("unit", &info.unit),
                ("launcher", &info.launcher),
                ("preset", &preset),
                ("state", &state_label(state_text(snap))),
            ],
        ));
        let frozen = state_text(snap) == "frozen";
        if self.freeze.is_active() != frozen {
            self.freeze.set_active(frozen);
        }
        let label = if frozen {
            gettext("Thaw")
        } else {
            gettext("Freeze")
        };
        if self.freeze.label().as_deref() != Some(label.as_str()) {
            self.freeze.set_label(&label);
            crate::ui::set_accessible_label(&self.freeze, &label);
        }

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
        let (memory_points, cpu_points, events) = series(history, &info.unit, now);
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
        self.memory_caption.set_text(&gettext_f(
            "In use: {size}{peak}{pressure}",
            &[
                (
                    "size",
                    &c.and_then(|c| c.memory_current)
                        .map(|m| Bytes(m).to_string())
                        .unwrap_or_else(|| gettext("unknown")),
                ),
                ("peak", &peak),
                ("pressure", &pressure),
            ],
        ));
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
        self.cpu_caption.set_text(&gettext_f(
            "Now: {cpu}{throttled} · tasks: {tasks}",
            &[
                (
                    "cpu",
                    &snap
                        .cpu_percent
                        .map(|p| {
                            gettext_f("{percent} % of one CPU", &[("percent", &format!("{p:.0}"))])
                        })
                        .unwrap_or_else(|| gettext("measuring…")),
                ),
                ("throttled", &throttled),
                (
                    "tasks",
                    &c.and_then(|c| c.pids_current)
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| gettext("unknown")),
                ),
            ],
        ));
    }

    /// Says, per limit, whether the kernel took it.
    pub fn show_checks(&self, checks: &[LimitCheck]) {
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
        let failed = checks.iter().any(|c| !c.applied());
        self.show_result(&lines.join("\n"), failed);
    }

    pub fn show_result(&self, text: &str, is_error: bool) {
        self.result.set_text(text);
        if is_error {
            self.result.add_css_class("error");
        } else {
            self.result.remove_css_class("error");
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

fn section(title: &str) -> gtk::Label {
    gtk::Label::builder()
        .label(title)
        .xalign(0.0)
        .css_classes(["heading"])
        .build()
}

fn caption() -> gtk::Label {
    gtk::Label::builder()
        .xalign(0.0)
        .css_classes(["caption", "dim-label"])
        .build()
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
