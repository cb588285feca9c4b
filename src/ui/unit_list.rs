//! The list of contained apps: one row per unit, updated in place, sorted by memory (biggest
//! first) and filtered by "Corral's apps / all apps" and the search text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gtk::prelude::*;

use crate::monitor::UnitSnapshot;
use crate::ui::unit_row::{RowKey, UnitRow};

#[derive(Debug, Clone, Default)]
struct Filter {
    all: bool,
    query: String,
}

impl Filter {
    fn shows(&self, key: &RowKey) -> bool {
        (self.all || key.corral)
            && (self.query.is_empty()
                || key.name.contains(&self.query)
                || key.unit.to_lowercase().contains(&self.query)
                || key.app_id.contains(&self.query))
    }
}

pub struct UnitList {
    pub list: gtk::ListBox,
    rows: HashMap<String, UnitRow>,
    /// Read by the ListBox's sort and filter functions, which get only row widgets.
    keys: Rc<RefCell<HashMap<String, RowKey>>>,
    filter: Rc<RefCell<Filter>>,
    /// The units in sorted order as last shown, to re-sort only when a tick changes it.
    order: Vec<String>,
}

/// Biggest memory first; name and unit break ties so equal rows never swap.
fn compare(a: &RowKey, b: &RowKey) -> std::cmp::Ordering {
    b.memory
        .cmp(&a.memory)
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.unit.cmp(&b.unit))
}

/// Whether the filter could judge the two keys differently.
fn filter_fields_differ(a: &RowKey, b: &RowKey) -> bool {
    a.name != b.name || a.unit != b.unit || a.app_id != b.app_id || a.corral != b.corral
}

impl UnitList {
    pub fn new(show_all: bool) -> UnitList {
        let list = gtk::ListBox::builder()
            .selection_mode(gtk::SelectionMode::Single)
            .css_classes(["unit-list"])
            .build();
        crate::ui::set_accessible_label(&list, &crate::i18n::gettext("Contained apps"));
        let keys: Rc<RefCell<HashMap<String, RowKey>>> = Rc::default();
        let filter = Rc::new(RefCell::new(Filter {
            all: show_all,
            query: String::new(),
        }));
        {
            let keys = Rc::clone(&keys);
            list.set_sort_func(move |a, b| {
                let keys = keys.borrow();
                let (Some(a), Some(b)) = (
                    keys.get(a.widget_name().as_str()),
                    keys.get(b.widget_name().as_str()),
                ) else {
                    return gtk::Ordering::Equal;
                };
                compare(a, b).into()
            });
        }
        {
            let keys = Rc::clone(&keys);
            let filter = Rc::clone(&filter);
            list.set_filter_func(move |row| {
                keys.borrow()
                    .get(row.widget_name().as_str())
                    .is_some_and(|k| filter.borrow().shows(k))
            });
        }
        UnitList {
            list,
            rows: HashMap::new(),
            keys,
            filter,
            order: Vec::new(),
        }
    }

    /// Shows these units: new rows are added, existing ones updated in place, ended ones
    /// removed; then the list re-sorts and re-filters without losing the selection. Both only
    /// when a row would move or could change visibility: each makes the ListBox lay out every
    /// row again, every tick, for nothing.
    pub fn show(
        &mut self,
        units: &[UnitSnapshot],
        icon_for: impl Fn(&UnitSnapshot) -> Option<String>,
    ) {
        // No borrow of the shared keys may be held across a ListBox call: appending a row
        // runs the sort and filter functions, which read them.
        let mut refilter = false;
        for snap in units {
            let unit = &snap.info.unit;
            let is_new = !self.rows.contains_key(unit);
            let row = self
                .rows
                .entry(unit.clone())
                .or_insert_with(|| UnitRow::new(unit));
            let key = row.update(snap, icon_for(snap).as_deref());
            {
                let mut keys = self.keys.borrow_mut();
                // A new row is filtered (and sorted in) as it is appended.
                refilter |= keys
                    .get(unit)
                    .is_some_and(|old| filter_fields_differ(old, &key));
                keys.insert(unit.clone(), key);
            }
            if is_new {
                self.list.append(&row.row);
            }
        }
        let ended: Vec<String> = self
            .rows
            .keys()
            .filter(|unit| !units.iter().any(|s| &s.info.unit == *unit))
            .cloned()
            .collect();
        for unit in ended {
            if let Some(row) = self.rows.remove(&unit) {
                self.list.remove(&row.row);
            }
            self.keys.borrow_mut().remove(&unit);
        }
        let moved = {
            let keys = self.keys.borrow();
            let mut sorted: Vec<&RowKey> = keys.values().collect();
            sorted.sort_by(|a, b| compare(a, b));
            // Compared in place: the names are copied only when the order changed.
            let moved = !sorted.iter().map(|k| &k.unit).eq(&self.order);
            if moved {
                self.order = sorted.into_iter().map(|k| k.unit.clone()).collect();
            }
            moved
        };
        if moved {
            self.list.invalidate_sort();
        }
        if refilter {
            self.list.invalidate_filter();
        }
    }

    pub fn set_show_all(&self, all: bool) {
        self.filter.borrow_mut().all = all;
        self.list.invalidate_filter();
    }

    pub fn set_query(&self, query: &str) {
        self.filter.borrow_mut().query = query.to_lowercase();
        self.list.invalidate_filter();
    }

    /// How many rows the filter lets through.
    pub fn visible_count(&self) -> usize {
        let filter = self.filter.borrow();
        self.keys
            .borrow()
            .values()
            .filter(|k| filter.shows(k))
            .count()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::cgroup::{CgroupEvents, CgroupSample, Limit};
    use crate::monitor::UnitInfo;

    fn unit(name: &str, unit: &str, memory: u64, frozen: bool) -> UnitSnapshot {
        UnitSnapshot {
            info: UnitInfo::new(
                unit.to_owned(),
                &format!("{name} [corral: browser]"),
                "active".into(),
                "running".into(),
                Some(format!("/app.slice/{unit}")),
            ),
            cgroup: Some(CgroupSample {
                memory_current: Some(memory),
                memory_max: Some(Limit::Value(4 << 30)),
                pids_current: Some(12),
                events: Some(CgroupEvents {
                    populated: Some(true),
                    frozen: Some(frozen),
                }),
                ..CgroupSample::default()
            }),
            cpu_percent: Some(12.0),
        }
    }

    fn visible_rows(list: &gtk::ListBox) -> Vec<String> {
        let mut names = Vec::new();
        let mut child = list.first_child();
        while let Some(widget) = child {
            if widget.is_child_visible() {
                names.push(widget.widget_name().to_string());
            }
            child = widget.next_sibling();
        }
        names
    }

    #[gtk::test]
    fn rows_update_in_place_sort_by_memory_and_keep_the_selection() {
        let mut view = UnitList::new(true);
        let no_icon = |_: &UnitSnapshot| None;
        let a = "app-corral-firefox-00000001.service";
        let b = "app-corral-code-00000002.service";
        view.show(
            &[
                unit("Firefox", a, 1 << 30, false),
                unit("Code", b, 2 << 30, false),
            ],
            no_icon,
        );
        assert_eq!(visible_rows(&view.list), [b, a], "most memory first");
        let firefox = view.list.row_at_index(1).unwrap();
        view.list.select_row(Some(&firefox));

        // Firefox grows past Code: the same row widget moves up and stays selected.
        view.show(
            &[
                unit("Firefox", a, 3 << 30, true),
                unit("Code", b, 2 << 30, false),
            ],
            no_icon,
        );
        assert_eq!(visible_rows(&view.list), [a, b]);
        assert_eq!(
            view.list.row_at_index(0).unwrap(),
            firefox,
            "updated in place"
        );
        assert_eq!(view.list.selected_row(), Some(firefox));

        // Code ends: its row goes. Search filters without touching the rows.
        view.show(&[unit("Firefox", a, 3 << 30, true)], no_icon);
        assert_eq!(view.len(), 1);
        view.set_query("nothing-matches");
        assert!(visible_rows(&view.list).is_empty());
        assert_eq!(view.visible_count(), 0);
        view.set_query("FIRE");
        assert_eq!(visible_rows(&view.list), [a]);
    }

    #[gtk::test]
    fn corral_filter_hides_units_launched_elsewhere() {
        let mut view = UnitList::new(false);
        let mut other = unit("sleep", "run-u7.service", 1, false);
        other.info = UnitInfo::new(
            "run-u7.service".into(),
            "/usr/bin/sleep 100",
            "active".into(),
            "running".into(),
            None,
        );
        let mine = "app-corral-x-00000003.service";
        view.show(&[other, unit("X", mine, 5, false)], |_| None);
        assert_eq!(visible_rows(&view.list), [mine]);
        view.set_show_all(true);
        assert_eq!(view.visible_count(), 2);
    }

    #[gtk::test]
    fn updating_300_rows_keeps_one_row_each_and_reports_the_time() {
        let mut view = UnitList::new(true);
        let units: Vec<UnitSnapshot> = (0..300)
            .map(|i| {
                unit(
                    &format!("app{i}"),
                    &format!("app-corral-a{i}-{i:08x}.service"),
                    i * 1000,
                    false,
                )
            })
            .collect();
        view.show(&units, |_| None);
        let start = Instant::now();
        for round in 0..10u64 {
            let units: Vec<UnitSnapshot> = units
                .iter()
                .map(|u| {
                    let mut u = u.clone();
                    if let Some(c) = u.cgroup.as_mut() {
                        c.memory_current = c.memory_current.map(|m| m + round * 7919 % 100_000);
                    }
                    u
                })
                .collect();
            view.show(&units, |_| None);
        }
        let per_update = start.elapsed() / 10;
        println!("updating 300 rows took {per_update:?} per sample");
        assert_eq!(view.len(), 300);
    }
}
