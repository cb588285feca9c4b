//! One contained app as the unit list shows it: [`UnitRow`], its figures and their words, made
//! purely from a snapshot, and [`UnitObject`], the list item that holds it and says when it changed.

use std::cell::RefCell;
use std::sync::OnceLock;

use gtk::glib;
use gtk::glib::subclass::Signal;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::cgroup::{CgroupSample, Limit};
use crate::i18n::{gettext_f, pgettext};
use crate::limits::Bytes;
use crate::monitor::UnitSnapshot;
use crate::systemd::Launcher;

/// What one row shows, and the figures it is sorted and filtered by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitRow {
    pub unit: String,
    pub name: String,
    /// "Corral · browser", "launched by GNOME".
    pub subtitle: String,
    pub icon: Option<String>,
    /// The state's words, empty while it runs.
    pub state: String,
    /// Bytes in use, and the limit they are measured against.
    pub memory: Option<u64>,
    pub memory_limit: Option<u64>,
    /// Percent of one CPU.
    pub cpu: Option<f64>,
    pub tasks: Option<u64>,
    /// Memory pressure, `some avg10`, in percent.
    pub pressure: Option<f64>,
    /// Launched by Corral (the "Corral's apps" filter).
    pub corral: bool,
    pub app_id: String,
    /// For screen readers: "Firefox, running, memory 1.2 GiB of 4.0 GiB".
    pub accessible: String,
}

impl UnitRow {
    pub fn new(snap: &UnitSnapshot, icon: Option<String>) -> UnitRow {
        let info = &snap.info;
        let c = snap.cgroup.as_ref();
        let subtitle = match info.launcher {
            Launcher::Corral => match &info.preset {
                Some(p) => format!("Corral · {p}"),
                None => "Corral".to_owned(),
            },
            other => gettext_f("launched by {launcher}", &[("launcher", &other)]),
        };
        let state = state_text(snap);
        let (memory, memory_limit) = memory_of(c);
        let mut row = UnitRow {
            unit: info.unit.clone(),
            name: info.name.clone(),
            subtitle,
            icon,
            state: if state == "running" {
                String::new()
            } else {
                state_label(state)
            },
            memory,
            memory_limit,
            cpu: snap.cpu_percent,
            tasks: c.and_then(|c| c.pids_current),
            pressure: c
                .and_then(|c| c.memory_pressure.as_ref())
                .map(|p| p.some.avg10),
            corral: info.launcher == Launcher::Corral,
            app_id: info.app_id.clone().unwrap_or_default(),
            accessible: String::new(),
        };
        row.accessible = gettext_f(
            "{app}, {state}, memory {memory}",
            &[
                ("app", &info.name),
                ("state", &state_label(state)),
                ("memory", &row.memory_text()),
            ],
        );
        row
    }

    /// "1.2 GiB of 4.0 GiB", "1.2 GiB" without a limit, "—" when unknown.
    pub fn memory_text(&self) -> String {
        match (self.memory, self.memory_limit) {
            (Some(u), Some(l)) => gettext_f(
                "{used} of {limit}",
                &[("used", &Bytes(u)), ("limit", &Bytes(l))],
            ),
            (Some(u), None) => Bytes(u).to_string(),
            _ => "—".to_owned(),
        }
    }

    /// The share of its limit in use, 0 to 1; `None` without a limit.
    pub fn memory_fraction(&self) -> Option<f64> {
        match (self.memory, self.memory_limit) {
            (Some(u), Some(l)) if l > 0 => Some((u as f64 / l as f64).min(1.0)),
            (_, Some(_)) => Some(0.0),
            _ => None,
        }
    }

    pub fn cpu_text(&self) -> String {
        self.cpu
            .map(|p| format!("{p:.0} %"))
            .unwrap_or_else(|| "—".into())
    }

    pub fn tasks_text(&self) -> String {
        self.tasks
            .map(|n| n.to_string())
            .unwrap_or_else(|| "—".into())
    }

    pub fn pressure_text(&self) -> String {
        self.pressure
            .map(|p| format!("{p:.1} %"))
            .unwrap_or_else(|| "—".into())
    }

    /// Whether the search text (lowercase) finds this row: name, unit or app id.
    pub fn matches(&self, query: &str) -> bool {
        query.is_empty()
            || self.name.to_lowercase().contains(query)
            || self.unit.to_lowercase().contains(query)
            || self.app_id.to_lowercase().contains(query)
    }

    /// Whether a change from `self` to `new` can change what the filter lets through.
    pub fn filter_differs(&self, new: &UnitRow) -> bool {
        self.name != new.name
            || self.unit != new.unit
            || self.app_id != new.app_id
            || self.corral != new.corral
    }

    /// Whether a change from `self` to `new` can move the row in any sort order.
    pub fn order_differs(&self, new: &UnitRow) -> bool {
        self.name != new.name
            || self.memory != new.memory
            || self.cpu != new.cpu
            || self.tasks != new.tasks
            || self.pressure != new.pressure
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

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct UnitObject {
        pub row: RefCell<UnitRow>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for UnitObject {
        const NAME: &'static str = "CorralUnitObject";
        type Type = super::UnitObject;
    }

    impl ObjectImpl for UnitObject {
        fn signals() -> &'static [Signal] {
            static SIGNALS: OnceLock<Vec<Signal>> = OnceLock::new();
            SIGNALS.get_or_init(|| vec![Signal::builder("changed").build()])
        }
    }
}

glib::wrapper! {
    /// A unit list item: one per unit for as long as it is listed, updated in place, so the
    /// list keeps its selection and scroll position. Its "changed" signal tells the cells.
    pub struct UnitObject(ObjectSubclass<imp::UnitObject>);
}

impl UnitObject {
    pub fn new(row: UnitRow) -> UnitObject {
        let object: UnitObject = glib::Object::new();
        *object.imp().row.borrow_mut() = row;
        object
    }

    pub fn row(&self) -> std::cell::Ref<'_, UnitRow> {
        self.imp().row.borrow()
    }

    /// Takes the new figures; tells the cells only when something they show changed.
    pub fn set_row(&self, row: UnitRow) {
        if *self.imp().row.borrow() == row {
            return;
        }
        *self.imp().row.borrow_mut() = row;
        self.emit_by_name::<()>("changed", &[]);
    }

    pub fn connect_changed(&self, f: impl Fn(&UnitObject) + 'static) -> glib::SignalHandlerId {
        self.connect_local("changed", false, move |values| {
            if let Some(object) = values.first().and_then(|v| v.get::<UnitObject>().ok()) {
                f(&object);
            }
            None
        })
    }
}
