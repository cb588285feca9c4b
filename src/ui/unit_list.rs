//! The list of contained apps: a recycled `gtk::ColumnView` with headers (App, Memory, CPU,
//! Tasks, Pressure), sorted by a click on a header (memory by default) and filtered by "Corral's
//! apps / all apps" and the search text.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use adw::prelude::*;
use gtk::{gio, glib};
use relm4::prelude::*;

use crate::apps::AppCatalog;
use crate::i18n::gettext;
use crate::monitor::UnitSnapshot;
use crate::monitor::service::MonitorState;
use crate::ui::A11yLabel;
use crate::ui::unit_row::{UnitObject, UnitRow};

/// What the filter lets through.
#[derive(Debug, Clone, Default)]
struct ListFilter {
    all: bool,
    /// Lowercase.
    query: String,
}

impl ListFilter {
    fn shows(&self, row: &UnitRow) -> bool {
        (self.all || row.corral) && row.matches(&self.query)
    }
}

/// The list's models: a store of one [`UnitObject`] per unit, filtered, then sorted by the
/// view's sorter (the header clicked), then the selection.
pub struct UnitRows {
    pub view: gtk::ColumnView,
    store: gio::ListStore,
    objects: HashMap<String, UnitObject>,
    filter: Rc<RefCell<ListFilter>>,
    custom_filter: gtk::CustomFilter,
    filtered: gtk::FilterListModel,
    pub selection: gtk::SingleSelection,
}

impl UnitRows {
    pub fn new(show_all: bool) -> UnitRows {
        let store = gio::ListStore::new::<UnitObject>();
        let filter = Rc::new(RefCell::new(ListFilter {
            all: show_all,
            query: String::new(),
        }));
        let custom_filter = {
            let filter = Rc::clone(&filter);
            gtk::CustomFilter::new(move |object| {
                object
                    .downcast_ref::<UnitObject>()
                    .is_some_and(|o| filter.borrow().shows(&o.row()))
            })
        };
        let filtered = gtk::FilterListModel::new(Some(store.clone()), Some(custom_filter.clone()));
        let sorted = gtk::SortListModel::new(Some(filtered.clone()), None::<gtk::Sorter>);
        let selection = gtk::SingleSelection::new(Some(sorted.clone()));
        selection.set_autoselect(false);
        selection.set_can_unselect(true);
        let view = gtk::ColumnView::builder()
            .model(&selection)
            .reorderable(false)
            .css_classes(["unit-list", "data-table"])
            .build();
        view.set_a11y_label(&gettext("Contained apps"));
        let memory = columns::append_all(&view);
        sorted.set_sorter(view.sorter().as_ref());
        view.sort_by_column(Some(&memory), gtk::SortType::Descending);
        columns::header_tooltips(&view);
        UnitRows {
            view,
            store,
            objects: HashMap::new(),
            filter,
            custom_filter,
            filtered,
            selection,
        }
    }

    /// Shows these units: new ones are added, listed ones updated in place, ended ones
    /// removed. The list re-sorts and re-filters only when a row could move or change
    /// visibility: each makes the view look at every row again.
    pub fn show(
        &mut self,
        units: &[UnitSnapshot],
        icon_for: impl Fn(&UnitSnapshot) -> Option<String>,
    ) {
        let (mut resort, mut refilter) = (false, false);
        let mut added = Vec::new();
        for snap in units {
            let row = UnitRow::new(snap, icon_for(snap));
            match self.objects.get(&snap.info.unit) {
                Some(object) => {
                    {
                        let old = object.row();
                        resort |= old.order_differs(&row);
                        refilter |= old.filter_differs(&row);
                    }
                    object.set_row(row);
                }
                None => {
                    let object = UnitObject::new(row);
                    self.objects.insert(snap.info.unit.clone(), object.clone());
                    added.push(object);
                }
            }
        }
        let ended: Vec<String> = self
            .objects
            .keys()
            .filter(|unit| !units.iter().any(|s| &s.info.unit == *unit))
            .cloned()
            .collect();
        for unit in ended {
            if let Some(object) = self.objects.remove(&unit)
                && let Some(position) = self.store.find(&object)
            {
                self.store.remove(position);
            }
        }
        if !added.is_empty() {
            // One change for all new rows: they are filtered and sorted in as they come.
            self.store.splice(self.store.n_items(), 0, &added);
        }
        if refilter {
            self.custom_filter.changed(gtk::FilterChange::Different);
        }
        if resort && let Some(sorter) = self.view.sorter() {
            sorter.changed(gtk::SorterChange::Different);
        }
    }

    pub fn set_show_all(&self, all: bool) {
        self.filter.borrow_mut().all = all;
        self.custom_filter.changed(gtk::FilterChange::Different);
    }

    pub fn set_query(&self, query: &str) {
        self.filter.borrow_mut().query = query.to_lowercase();
        self.custom_filter.changed(gtk::FilterChange::Different);
    }

    /// How many rows the filter lets through.
    pub fn visible_count(&self) -> u32 {
        self.filtered.n_items()
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The unit of the selected row.
    pub fn selected(&self) -> Option<String> {
        self.selection
            .selected_item()
            .and_downcast::<UnitObject>()
            .map(|o| o.row().unit.clone())
    }

    /// The units in the order shown.
    pub fn shown(&self) -> Vec<String> {
        (0..self.selection.n_items())
            .filter_map(|i| self.selection.item(i).and_downcast::<UnitObject>())
            .map(|o| o.row().unit.clone())
            .collect()
    }
}

/// The columns: each has its cells (set up once, bound to a row, following its changes) and
/// the order it sorts by.
mod columns {
    use super::*;

    /// A column's cells by their root widget, with the row each follows now.
    type Cells<W> =
        Rc<RefCell<HashMap<gtk::Widget, (W, Option<(UnitObject, glib::SignalHandlerId)>)>>>;

    /// Appends App, Memory, CPU, Tasks and Pressure; returns Memory, the default order.
    pub fn append_all(view: &gtk::ColumnView) -> gtk::ColumnViewColumn {
        let app = column(&gettext("App"), app_cell, render_app, |a, b| {
            a.name.to_lowercase().cmp(&b.name.to_lowercase())
        });
        app.set_expand(true);
        view.append_column(&app);
        let memory = column(&gettext("Memory"), memory_cell, render_memory, |a, b| {
            a.memory.cmp(&b.memory)
        });
        view.append_column(&memory);
        view.append_column(&column(
            &gettext("CPU"),
            figure_cell,
            |l, r| set_text(l, &r.cpu_text()),
            |a, b| a.cpu.partial_cmp(&b.cpu).unwrap_or(Ordering::Equal),
        ));
        view.append_column(&column(
            &gettext("Tasks"),
            figure_cell,
            |l, r| set_text(l, &r.tasks_text()),
            |a, b| a.tasks.cmp(&b.tasks),
        ));
        view.append_column(&column(
            &gettext("Pressure"),
            figure_cell,
            |l, r| set_text(l, &r.pressure_text()),
            |a, b| {
                a.pressure
                    .partial_cmp(&b.pressure)
                    .unwrap_or(Ordering::Equal)
            },
        ));
        memory
    }

    /// What each header's figures are. GTK 4.8 gives a column no tooltip of its own: the titles
    /// are the header's children, in column order.
    pub fn header_tooltips(view: &gtk::ColumnView) {
        let tips = [
            gettext("The app, who launched it and its state; click to sort by name"),
            gettext(
                "Memory in use, and of which limit (memory.max, else memory.high); click to sort",
            ),
            gettext("CPU use, in percent of one CPU; click to sort"),
            gettext("Processes and threads; click to sort"),
            gettext(
                "Memory pressure: share of the last 10 s some task waited for memory; click to sort",
            ),
        ];
        let Some(header) = view.first_child() else {
            return;
        };
        let mut title = header.first_child();
        for tip in tips {
            let Some(widget) = title else { return };
            widget.set_tooltip_text(Some(&tip));
            title = widget.next_sibling();
        }
    }

    fn column<W: Clone + 'static>(
        title: &str,
        setup: fn() -> (gtk::Widget, W),
        render: fn(&W, &UnitRow),
        order: fn(&UnitRow, &UnitRow) -> Ordering,
    ) -> gtk::ColumnViewColumn {
        let cells: Cells<W> = Rc::default();
        let factory = gtk::SignalListItemFactory::new();
        {
            let cells = Rc::clone(&cells);
            factory.connect_setup(move |_, item| {
                let Some(item) = item.downcast_ref::<gtk::ListItem>() else {
                    return;
                };
                let (root, widgets) = setup();
                item.set_child(Some(&root));
                cells.borrow_mut().insert(root, (widgets, None));
            });
        }
        {
            let cells = Rc::clone(&cells);
            factory.connect_bind(move |_, item| {
                let Some(item) = item.downcast_ref::<gtk::ListItem>() else {
                    return;
                };
                let (Some(root), Some(object)) =
                    (item.child(), item.item().and_downcast::<UnitObject>())
                else {
                    return;
                };
                let mut cells = cells.borrow_mut();
                let Some((widgets, bound)) = cells.get_mut(&root) else {
                    return;
                };
                render(widgets, &object.row());
                let follow = widgets.clone();
                let handler = object.connect_changed(move |o| render(&follow, &o.row()));
                *bound = Some((object, handler));
            });
        }
        {
            let cells = Rc::clone(&cells);
            factory.connect_unbind(move |_, item| {
                let Some(root) = item.downcast_ref::<gtk::ListItem>().and_then(|i| i.child())
                else {
                    return;
                };
                if let Some((_, bound)) = cells.borrow_mut().get_mut(&root)
                    && let Some((object, handler)) = bound.take()
                {
                    object.disconnect(handler);
                }
            });
        }
        factory.connect_teardown(move |_, item| {
            if let Some(root) = item.downcast_ref::<gtk::ListItem>().and_then(|i| i.child()) {
                cells.borrow_mut().remove(&root);
            }
        });
        let sorter = gtk::CustomSorter::new(move |a, b| {
            match (
                a.downcast_ref::<UnitObject>(),
                b.downcast_ref::<UnitObject>(),
            ) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a.row(), b.row());
                    // Name and unit break ties, so equal rows never swap.
                    order(&a, &b)
                        .then_with(|| a.name.cmp(&b.name))
                        .then_with(|| a.unit.cmp(&b.unit))
                        .into()
                }
                _ => gtk::Ordering::Equal,
            }
        });
        let column = gtk::ColumnViewColumn::new(Some(title), Some(factory));
        column.set_sorter(Some(&sorter));
        column.set_resizable(true);
        column
    }

    #[derive(Clone)]
    struct AppCell {
        root: gtk::Box,
        icon: gtk::Image,
        name: gtk::Label,
        state: gtk::Label,
        subtitle: gtk::Label,
    }

    fn app_cell() -> (gtk::Widget, AppCell) {
        let icon = gtk::Image::builder()
            .icon_name("application-x-executable")
            .pixel_size(32)
            .build();
        let name = gtk::Label::builder()
            .xalign(0.0)
            .ellipsize(gtk::pango::EllipsizeMode::End)
            .css_classes(["heading"])
            .build();
        let state = gtk::Label::builder()
            .css_classes(["caption", "state"])
            .build();
        let subtitle = gtk::Label::builder()
            .xalign(0.0)
            .ellipsize(gtk::pango::EllipsizeMode::Middle)
            .css_classes(["dim-label", "caption"])
            .build();
        let title_line = gtk::Box::new(gtk::Orientation::Horizontal, 6);
        title_line.append(&name);
        title_line.append(&state);
        let texts = gtk::Box::new(gtk::Orientation::Vertical, 2);
        texts.set_hexpand(true);
        texts.append(&title_line);
        texts.append(&subtitle);
        let root = gtk::Box::builder()
            .spacing(12)
            .margin_top(6)
            .margin_bottom(6)
            .margin_start(6)
            .build();
        root.append(&icon);
        root.append(&texts);
        let cell = AppCell {
            root: root.clone(),
            icon,
            name,
            state,
            subtitle,
        };
        (root.upcast(), cell)
    }

    fn render_app(cell: &AppCell, row: &UnitRow) {
        // Setting an icon, even the same one, clears the image and looks the icon up again.
        let icon = row.icon.as_deref().unwrap_or("application-x-executable");
        if cell.icon.icon_name().as_deref() != Some(icon) {
            cell.icon.set_icon_name(Some(icon));
        }
        set_text(&cell.name, &row.name);
        set_text(&cell.state, &row.state);
        cell.state.set_visible(!row.state.is_empty());
        set_text(&cell.subtitle, &row.subtitle);
        if cell.root.tooltip_text().as_deref() != Some(row.unit.as_str()) {
            cell.root.set_tooltip_text(Some(&row.unit));
        }
        // The row (the cell's parent's parent) is what a screen reader lists: it gets the
        // app's name, state and memory.
        if let Some(row_widget) = cell.root.parent().and_then(|c| c.parent()) {
            row_widget.set_a11y_label(&row.accessible);
        }
    }

    #[derive(Clone)]
    struct MemoryCell {
        text: gtk::Label,
        bar: gtk::LevelBar,
    }

    fn memory_cell() -> (gtk::Widget, MemoryCell) {
        let text = gtk::Label::builder()
            .xalign(1.0)
            .css_classes(["caption", "numeric"])
            .build();
        let bar = gtk::LevelBar::builder()
            .min_value(0.0)
            .max_value(1.0)
            .width_request(120)
            .build();
        bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_LOW, 0.75);
        bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_HIGH, 0.9);
        bar.add_offset_value(gtk::LEVEL_BAR_OFFSET_FULL, 1.0);
        let root = gtk::Box::builder()
            .orientation(gtk::Orientation::Vertical)
            .spacing(2)
            .valign(gtk::Align::Center)
            .tooltip_text(gettext(
                "Memory in use, and of which limit (memory.max, else memory.high)",
            ))
            .build();
        root.append(&text);
        root.append(&bar);
        (root.upcast(), MemoryCell { text, bar })
    }

    fn render_memory(cell: &MemoryCell, row: &UnitRow) {
        set_text(&cell.text, &row.memory_text());
        let fraction = row.memory_fraction();
        cell.bar.set_visible(fraction.is_some());
        let fraction = fraction.unwrap_or(0.0);
        if cell.bar.value() != fraction {
            cell.bar.set_value(fraction);
        }
    }

    fn figure_cell() -> (gtk::Widget, gtk::Label) {
        let label = gtk::Label::builder()
            .xalign(1.0)
            .width_chars(6)
            .css_classes(["numeric"])
            .build();
        (label.clone().upcast(), label)
    }

    /// Setting an unchanged text still invalidates layout; skip it to keep updates cheap.
    fn set_text(label: &gtk::Label, text: &str) {
        if label.text() != text {
            label.set_text(text);
        }
    }
}

#[derive(Debug)]
pub enum UnitListInput {
    /// The monitor's latest state.
    Show(Arc<MonitorState>),
    /// The installed apps, for their icons.
    Catalog(Arc<AppCatalog>),
    Search(String),
    ShowAll(bool),
    /// The selection changed (from the view).
    SelectionChanged,
}

#[derive(Debug)]
pub enum UnitListOutput {
    /// The unit of the selected row, `None` when nothing is.
    Selected(Option<String>),
}

pub struct UnitList {
    rows: UnitRows,
    catalog: Arc<AppCatalog>,
    state: Arc<MonitorState>,
}

impl UnitList {
    /// The units in the order shown.
    pub fn rows_shown(&self) -> Vec<String> {
        self.rows.shown()
    }

    /// Which page shows: the list, "no apps" or "nothing matches".
    fn page(&self) -> &'static str {
        if self.rows.visible_count() > 0 {
            "list"
        } else if self.rows.is_empty() {
            "empty"
        } else {
            "no-match"
        }
    }
}

#[relm4::component(pub)]
impl SimpleComponent for UnitList {
    /// Show every contained app rather than Corral's own.
    type Init = bool;
    type Input = UnitListInput;
    type Output = UnitListOutput;

    view! {
        #[root]
        gtk::Stack {
            set_width_request: 520,
            add_named[Some("list")] = &gtk::ScrolledWindow {
                set_hscrollbar_policy: gtk::PolicyType::Never,
                set_vexpand: true,
                #[local_ref]
                view -> gtk::ColumnView {},
            },
            add_named[Some("empty")] = &adw::StatusPage {
                set_icon_name: Some("io.github.corral.Corral-symbolic"),
                set_title: &gettext("No Contained Apps"),
                set_description: Some(&gettext("Launch an app with a preset to keep it from eating the machine.")),
                #[wrap(Some)]
                set_child = &gtk::Button {
                    set_label: &gettext("Launch an App…"),
                    set_halign: gtk::Align::Center,
                    set_css_classes: &["pill", "suggested-action"],
                    set_action_name: Some("win.launch"),
                },
            },
            add_named[Some("no-match")] = &adw::StatusPage {
                set_icon_name: Some("system-search-symbolic"),
                set_title: &gettext("No Matching Apps"),
                set_description: Some(&gettext("No contained app matches the search or the filter.")),
            },
            #[watch]
            set_visible_child_name: model.page(),
        }
    }

    fn init(
        show_all: bool,
        root: Self::Root,
        sender: ComponentSender<Self>,
    ) -> ComponentParts<Self> {
        let rows = UnitRows::new(show_all);
        rows.selection.connect_selected_item_notify(move |_| {
            sender.input(UnitListInput::SelectionChanged);
        });
        let model = UnitList {
            rows,
            catalog: Arc::default(),
            state: Arc::default(),
        };
        let view = &model.rows.view;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: UnitListInput, sender: ComponentSender<Self>) {
        match message {
            UnitListInput::Show(state) => self.state = state,
            UnitListInput::Catalog(catalog) => self.catalog = catalog,
            UnitListInput::Search(query) => return self.rows.set_query(&query),
            UnitListInput::ShowAll(all) => return self.rows.set_show_all(all),
            UnitListInput::SelectionChanged => {
                let _ = sender.output(UnitListOutput::Selected(self.rows.selected()));
                return;
            }
        }
        let catalog = &self.catalog;
        self.rows
            .show(&self.state.units, |snap| icon_for(catalog, snap));
    }
}

/// The icon of the app a unit runs, from its desktop entry.
pub fn icon_for(catalog: &AppCatalog, snap: &UnitSnapshot) -> Option<String> {
    let id = snap.info.app_id.as_deref()?;
    catalog.get(id).and_then(|app| app.icon.clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use super::*;
    use crate::cgroup::{CgroupEvents, CgroupSample, Limit};
    use crate::monitor::UnitInfo;

    /// A running unit Corral launched with the browser preset, with a 4 GiB memory.max.
    pub(crate) fn unit(name: &str, unit: &str, memory: u64, frozen: bool) -> UnitSnapshot {
        UnitSnapshot {
            info: UnitInfo::new(
                unit.to_owned(),
                &format!("{name} [corral: browser]"),
                "active".into(),
                "running".into(),
                Some(format!("/app.slice/{unit}")),
            )
            .into(),
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

    fn no_icon(_: &UnitSnapshot) -> Option<String> {
        None
    }

    #[gtk::test]
    fn rows_update_in_place_sort_by_memory_and_keep_the_selection() {
        let mut rows = UnitRows::new(true);
        let a = "app-corral-firefox-00000001.service";
        let b = "app-corral-code-00000002.service";
        rows.show(
            &[
                unit("Firefox", a, 1 << 30, false),
                unit("Code", b, 2 << 30, false),
            ],
            no_icon,
        );
        assert_eq!(rows.shown(), [b, a], "most memory first");
        rows.selection.set_selected(1);
        assert_eq!(rows.selected().as_deref(), Some(a));
        let firefox = rows.selection.selected_item().unwrap();

        // Firefox grows past Code: the same item moves up and stays selected.
        rows.show(
            &[
                unit("Firefox", a, 3 << 30, true),
                unit("Code", b, 2 << 30, false),
            ],
            no_icon,
        );
        assert_eq!(rows.shown(), [a, b]);
        assert_eq!(
            rows.selection.selected_item().unwrap(),
            firefox,
            "updated in place"
        );
        assert_eq!(rows.selected().as_deref(), Some(a));

        // Code ends: its row goes. Search filters without touching the rows.
        rows.show(&[unit("Firefox", a, 3 << 30, true)], no_icon);
        assert_eq!(rows.len(), 1);
        rows.set_query("nothing-matches");
        assert_eq!(rows.visible_count(), 0);
        rows.set_query("FIRE");
        assert_eq!(rows.shown(), [a]);
    }

    #[gtk::test]
    fn a_click_on_a_header_sorts_by_its_column() {
        let mut rows = UnitRows::new(true);
        let mut small = unit("Zed", "app-corral-zed-00000001.service", 1 << 20, false);
        small.cpu_percent = Some(90.0);
        let big = unit("Atom", "app-corral-atom-00000002.service", 1 << 30, false);
        rows.show(&[small, big], no_icon);
        assert_eq!(
            rows.shown()[0],
            "app-corral-atom-00000002.service",
            "memory by default"
        );
        let columns = rows.view.columns();
        let column = |i: u32| {
            columns
                .item(i)
                .and_downcast::<gtk::ColumnViewColumn>()
                .unwrap()
        };
        let titles: Vec<String> = (0..columns.n_items())
            .map(|i| column(i).title().unwrap().to_string())
            .collect();
        assert_eq!(titles, ["App", "Memory", "CPU", "Tasks", "Pressure"]);
        rows.view
            .sort_by_column(Some(&column(2)), gtk::SortType::Descending);
        assert_eq!(
            rows.shown()[0],
            "app-corral-zed-00000001.service",
            "CPU, busiest first"
        );
        rows.view
            .sort_by_column(Some(&column(0)), gtk::SortType::Ascending);
        assert_eq!(
            rows.shown()[0],
            "app-corral-atom-00000002.service",
            "by name"
        );
        // Each header says what its figures are.
        let header = rows.view.first_child().unwrap();
        let mut tips = Vec::new();
        let mut title = header.first_child();
        while let Some(widget) = title {
            tips.extend(widget.tooltip_text().map(|t| t.to_string()));
            title = widget.next_sibling();
        }
        assert_eq!(tips.len(), 5, "{tips:?}");
        assert!(tips[2].contains("percent of one CPU"), "{tips:?}");
    }

    #[gtk::test]
    fn corral_filter_hides_units_launched_elsewhere() {
        let mut rows = UnitRows::new(false);
        let mut other = unit("sleep", "run-u7.service", 1, false);
        other.info = UnitInfo::new(
            "run-u7.service".into(),
            "/usr/bin/sleep 100",
            "active".into(),
            "running".into(),
            None,
        )
        .into();
        let mine = "app-corral-x-00000003.service";
        rows.show(&[other, unit("X", mine, 5, false)], no_icon);
        assert_eq!(rows.shown(), [mine]);
        rows.set_show_all(true);
        assert_eq!(rows.visible_count(), 2);
    }

    #[gtk::test]
    fn updating_300_rows_keeps_one_row_each_and_reports_the_time() {
        let mut rows = UnitRows::new(true);
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
        rows.show(&units, no_icon);
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
            rows.show(&units, no_icon);
        }
        let per_update = start.elapsed() / 10;
        println!("updating 300 rows took {per_update:?} per sample");
        assert_eq!(rows.len(), 300);
        assert_eq!(rows.shown().len(), 300);
    }
}
