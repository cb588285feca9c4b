//! One row of the unit list: icon, name, who launched it, state, memory against its limit, CPU,
//! tasks and pressure. Rows are built once per unit and updated in place every sample, so the
//! list never flickers and keeps its selection and scroll position.

use gtk::prelude::*;

use crate::cgroup::{CgroupSample, Limit};
use crate::i18n::{gettext, gettext_f, pgettext};
use crate::limits::Bytes;
use crate::monitor::UnitSnapshot;
use crate::systemd::Launcher;

/// The figures a row is sorted and filtered by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowKey {
    pub name: String,
    pub unit: String,
    pub app_id: String,
    pub corral: bool,
    pub memory: u64,
    pub cpu: f64,
}

pub struct UnitRow {
    pub row: gtk::ListBoxRow,
    icon: gtk::Image,
    name: gtk::Label,
    subtitle: gtk::Label,
    state: gtk::Label,
    memory_bar: gtk::LevelBar,
    memory: gtk::Label,
    cpu: gtk::Label,
    tasks: gtk::Label,
    pressure: gtk::Label,
    /// The accessible label last given, so an unchanged one is not sent to AT-SPI again.
    accessible: std::cell::RefCell<String>,
}

impl UnitRow {
    pub fn new(unit: &str) -> UnitRow {
        let icon = gtk::Image::builder()
            .icon_name("application-x-executable")
            .pixel_size(32)
            .build();
        let name = gtk::Label::builder()
            .xalign(0.0)
            .ellipsize(gtk::pango::EllipsizeMode::End)
            .css_classes(["heading"])
            .build();
        let subtitle = gtk::Label::builder()
            .xalign(0.0)
            .ellipsize(gtk::pango::EllipsizeMode::Middle)
            .css_classes(["dim-label", "caption"])
            .build();
        let state = gtk::Label::builder()
            .css_classes(["caption", "state"])
            .build();
        let texts = gtk::Box::new(gtk::Orientation::Vertical, 2);
        texts.set_hexpand(true);
        let title_line = gtk::Box::new(gtk::Orientation::Horizontal, 6);
        title_line.append(&name);
        title_line.append(&state);
        texts.append(&title_line);
        texts.append(&subtitle);

        let memory_bar = gtk::LevelBar::builder()
            .min_value(0.0)
            .max_value(1.0)
            .width_request(120)
            .valign(gtk::Align::Center)
            .build();
        memory_bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_LOW, 0.75);
        memory_bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_HIGH, 0.9);
        memory_bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_FULL, 1.0);
        let memory = gtk::Label::builder()
            .xalign(1.0)
            .css_classes(["caption", "numeric"])
            .build();
        let memory_box = gtk::Box::new(gtk::Orientation::Vertical, 2);
        memory_box.append(&memory);
        memory_box.append(&memory_bar);

        let figure = |width: i32| {
            gtk::Label::builder()
                .xalign(1.0)
                .width_chars(width)
                .css_classes(["numeric"])
                .build()
        };
        let cpu = figure(6);
        let tasks = figure(5);
        let pressure = figure(6);
        cpu.set_tooltip_text(Some(&gettext("CPU use, in percent of one CPU")));
        tasks.set_tooltip_text(Some(&gettext("Processes and threads")));
        pressure.set_tooltip_text(Some(&gettext(
            "Memory pressure: share of the last 10 s some task waited for memory",
        )));

        let content = gtk::Box::builder()
            .orientation(gtk::Orientation::Horizontal)
            .spacing(12)
            .margin_top(8)
            .margin_bottom(8)
            .margin_start(12)
            .margin_end(12)
            .build();
        content.append(&icon);
        content.append(&texts);
        content.append(&memory_box);
        content.append(&cpu);
        content.append(&tasks);
        content.append(&pressure);
        let row = gtk::ListBoxRow::builder().child(&content).build();
        row.set_widget_name(unit);
        UnitRow {
            row,
            icon,
            name,
            subtitle,
            state,
            memory_bar,
            memory,
            cpu,
            tasks,
            pressure,
            accessible: Default::default(),
        }
    }

    /// Shows a new snapshot; only labels and values change, no widget is replaced.
    pub fn update(&self, snap: &UnitSnapshot, icon: Option<&str>) -> RowKey {
        let info = &snap.info;
        let c = snap.cgroup.as_ref();
        // Setting an icon, even the same one, clears the image and looks the icon up again.
        if let Some(icon) = icon
            && self.icon.icon_name().as_deref() != Some(icon)
        {
            self.icon.set_icon_name(Some(icon));
        }
        set_text(&self.name, &info.name);
        let by = match info.launcher {
            Launcher::Corral => match &info.preset {
                Some(p) => format!("Corral · {p}"),
                None => "Corral".to_owned(),
            },
            other => gettext_f("launched by {launcher}", &[("launcher", &other)]),
        };
        set_text(&self.subtitle, &by);
        if self.row.tooltip_text().as_deref() != Some(info.unit.as_str()) {
            self.row.set_tooltip_text(Some(&info.unit));
        }
        let state = state_text(snap);
        set_text(&self.state, &state_label(state));
        self.state.set_visible(state != "running");
        let (used, limit) = memory_of(c);
        set_text(
            &self.memory,
            &match (used, limit) {
                (Some(u), Some(l)) => gettext_f(
                    "{used} of {limit}",
                    &[("used", &Bytes(u)), ("limit", &Bytes(l))],
                ),
                (Some(u), None) => Bytes(u).to_string(),
                _ => "—".to_owned(),
            },
        );
        let fraction = match (used, limit) {
            (Some(u), Some(l)) if l > 0 => (u as f64 / l as f64).min(1.0),
            _ => 0.0,
        };
        if self.memory_bar.value() != fraction {
            self.memory_bar.set_value(fraction);
        }
        self.memory_bar.set_visible(limit.is_some());
        set_text(
            &self.cpu,
            &snap
                .cpu_percent
                .map(|p| format!("{p:.0} %"))
                .unwrap_or_else(|| "—".into()),
        );
        set_text(
            &self.tasks,
            &c.and_then(|c| c.pids_current)
                .map(|n| n.to_string())
                .unwrap_or_else(|| "—".into()),
        );
        set_text(
            &self.pressure,
            &c.and_then(|c| c.memory_pressure.as_ref())
                .map(|p| format!("{:.1} %", p.some.avg10))
                .unwrap_or_else(|| "—".into()),
        );
        let accessible = gettext_f(
            "{app}, {state}, memory {memory}",
            &[
                ("app", &info.name),
                ("state", &state_label(state)),
                ("memory", &self.memory.text()),
            ],
        );
        if *self.accessible.borrow() != accessible {
            crate::ui::set_accessible_label(&self.row, &accessible);
            *self.accessible.borrow_mut() = accessible;
        }
        RowKey {
            name: info.name.to_lowercase(),
            unit: info.unit.clone(),
            app_id: info.app_id.clone().unwrap_or_default().to_lowercase(),
            corral: info.launcher == Launcher::Corral,
            memory: used.unwrap_or(0),
            cpu: snap.cpu_percent.unwrap_or(0.0),
        }
    }
}

/// Setting an unchanged text still invalidates layout; skip it to keep updates cheap.
fn set_text(label: &gtk::Label, text: &str) {
    if label.text() != text {
        label.set_text(text);
    }
}

/// The unit's state as a key: "frozen", "running", "starting", "stopping", "failed" or "ended";
/// [`state_label`] says it in the person's language.
pub fn state_text(snap: &UnitSnapshot) -> &'static str {
    let frozen = snap
        .cgroup
        .as_ref()
        .and_then(|c| c.events.as_ref())
        .and_then(|e| e.frozen)
        == Some(true);
    if frozen {
        "frozen"
    } else {
        match snap.info.active_state.as_str() {
            "active" => "running",
            "activating" => "starting",
            "deactivating" => "stopping",
            "failed" => "failed",
            _ => "ended",
        }
    }
}

/// A state from [`state_text`], translated.
pub fn state_label(state: &str) -> String {
    match state {
        "frozen" => pgettext("app state", "frozen"),
        "running" => pgettext("app state", "running"),
        "starting" => pgettext("app state", "starting"),
        "stopping" => pgettext("app state", "stopping"),
        "failed" => pgettext("app state", "failed"),
        "ended" => pgettext("app state", "ended"),
        other => other.to_owned(),
    }
}

/// Memory in use and the limit it is measured against: memory.max, else memory.high.
pub fn memory_of(c: Option<&CgroupSample>) -> (Option<u64>, Option<u64>) {
    let Some(c) = c else { return (None, None) };
    let limit = [c.memory_max, c.memory_high]
        .into_iter()
        .flatten()
        .find_map(|l| match l {
            Limit::Value(v) => Some(v),
            Limit::Max => None,
        });
    (c.memory_current, limit)
}
