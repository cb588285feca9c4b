//! The details' Processes section: which process of the app uses the memory and the CPU (the
//! same table as `corral ps APP --processes`, [`crate::monitor::processes`]), read off the main
//! loop at each refresh, heaviest first; a process of a unit that holds several can be moved
//! into a contained app of its own ("Contain…", through [`crate::adopt`] in the window).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use adw::prelude::*;
use relm4::prelude::*;

use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::limits::Bytes;
use crate::monitor::processes::{ProcessRow, ProcessTable};
use crate::procfs::ProcFs;
use crate::ui::A11yLabel;

/// How many processes get a row; the rest are counted ("and 12 more"). A browser has dozens,
/// and the heaviest few are the ones that answer the question.
pub const MAX_ROWS: usize = 8;

#[derive(Debug)]
pub enum ProcessesInput {
    /// The unit shown, at each refresh of the details: its processes are read again from its
    /// cgroup directory (unless a reading is under way); another unit starts afresh.
    Show {
        unit: String,
        dir: Option<PathBuf>,
    },
    ContainClicked(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessesOutput {
    /// Move this process (and its children) into a unit of its own.
    Contain {
        unit: String,
        pid: u32,
        command: String,
    },
}

#[derive(Debug)]
pub enum ProcessesCmd {
    Read { unit: String, rows: Vec<ProcessRow> },
}

/// What one row shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessLine {
    pub pid: u32,
    /// The command line, or `[name]` for a process without one.
    pub command: String,
    /// "PID 4242 · 120 MiB · 3 % CPU".
    pub figures: String,
}

/// The rows to show for `rows` (heaviest first): at most [`MAX_ROWS`], and how many are left.
pub fn lines(rows: &[ProcessRow]) -> (Vec<ProcessLine>, usize) {
    let shown = rows
        .iter()
        .take(MAX_ROWS)
        .map(|p| {
            let command = if p.info.command.is_empty() {
                format!("[{}]", p.info.name)
            } else {
                p.info.command.clone()
            };
            let memory = p
                .info
                .memory_bytes
                .map_or_else(|| "—".to_owned(), |m| Bytes(m).to_string());
            let cpu = p
                .cpu_percent
                .map_or_else(|| "—".to_owned(), |c| format!("{c:.0}"));
            ProcessLine {
                pid: p.info.pid,
                command,
                figures: gettext_f(
                    "PID {pid} · {memory} · {cpu} % CPU",
                    &[("pid", &p.info.pid), ("memory", &memory), ("cpu", &cpu)],
                ),
            }
        })
        .collect();
    (shown, rows.len().saturating_sub(MAX_ROWS))
}

/// One row, kept and updated in place so that its button stays put under the pointer.
struct Row {
    row: adw::ActionRow,
    contain: gtk::Button,
}

pub struct ProcessesSection {
    unit: Option<String>,
    dir: Option<PathBuf>,
    table: Arc<Mutex<ProcessTable>>,
    reading: bool,
    /// Whether the shown unit's processes were read at least once.
    read: bool,
    shown: Vec<ProcessLine>,
    more: usize,
    total: usize,
    group: adw::PreferencesGroup,
    rows: Vec<Row>,
    more_row: adw::ActionRow,
}

impl ProcessesSection {
    fn read(&mut self, sender: &ComponentSender<Self>) {
        let (Some(unit), Some(dir)) = (self.unit.clone(), self.dir.clone()) else {
            return;
        };
        if self.reading {
            return;
        }
        self.reading = true;
        let table = Arc::clone(&self.table);
        sender.oneshot_command(async move {
            let rows = tokio::task::spawn_blocking(move || {
                table
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .read(&dir)
            })
            .await
            .unwrap_or_default();
            ProcessesCmd::Read { unit, rows }
        });
    }

    fn description(&self) -> String {
        if self.unit.is_none() {
            String::new()
        } else if self.dir.is_none() || (self.read && self.total == 0) {
            gettext("No process runs in this app now.")
        } else if !self.read {
            gettext("Reading…")
        } else {
            ngettext_f(
                "{n} process, heaviest in memory first. CPU is the share of one CPU since the last refresh.",
                "{n} processes, heaviest in memory first. CPU is the share of one CPU since the last refresh.",
                self.total as u64,
                &[("n", &self.total)],
            )
        }
    }

    /// Brings the rows in line with the lines read.
    fn render(&mut self, sender: &ComponentSender<Self>) {
        while self.rows.len() > self.shown.len() {
            if let Some(row) = self.rows.pop() {
                self.group.remove(&row.row);
            }
        }
        while self.rows.len() < self.shown.len() {
            let index = self.rows.len();
            let row = adw::ActionRow::builder().title_lines(1).build();
            let contain = gtk::Button::builder()
                .label(gettext("Contain…"))
                .valign(gtk::Align::Center)
                .tooltip_text(gettext(
                    "Move this process and its children out of the app, into a contained app of its own with a preset you choose",
                ))
                .build();
            contain.set_a11y_label(&gettext("Contain…"));
            let send = sender.input_sender().clone();
            contain.connect_clicked(move |_| send.emit(ProcessesInput::ContainClicked(index)));
            row.add_suffix(&contain);
            // Before the "and N more" row, which stays last.
            self.group.remove(&self.more_row);
            self.group.add(&row);
            self.group.add(&self.more_row);
            self.rows.push(Row { row, contain });
        }
        // Moving the only process would leave the app empty: that is a launch, not a rescue.
        let several = self.total > 1;
        for (row, line) in self.rows.iter().zip(&self.shown) {
            row.row.set_title(&crate::ui::plain(&line.command));
            row.row.set_subtitle(&crate::ui::plain(&line.figures));
            row.row.set_tooltip_text(Some(&line.command));
            row.contain.set_visible(several);
        }
        self.more_row.set_visible(self.more > 0);
        self.more_row.set_title(&ngettext_f(
            "and {n} more process",
            "and {n} more processes",
            self.more as u64,
            &[("n", &self.more)],
        ));
        self.group.set_description(Some(&self.description()));
    }
}

#[relm4::component(pub)]
impl Component for ProcessesSection {
    type Init = ();
    type Input = ProcessesInput;
    type Output = ProcessesOutput;
    type CommandOutput = ProcessesCmd;

    view! {
        #[root]
        adw::PreferencesGroup {
            set_title: &gettext("Processes"),
            set_margin_top: 6,
        }
    }

    fn init(_: (), root: Self::Root, _sender: ComponentSender<Self>) -> ComponentParts<Self> {
        let more_row = adw::ActionRow::builder()
            .subtitle(gettext("corral ps APP --processes lists them all"))
            .visible(false)
            .build();
        let model = ProcessesSection {
            unit: None,
            dir: None,
            table: Arc::new(Mutex::new(ProcessTable::new(ProcFs::system()))),
            reading: false,
            read: false,
            shown: Vec::new(),
            more: 0,
            total: 0,
            group: root.clone(),
            rows: Vec::new(),
            more_row,
        };
        model.group.add(&model.more_row);
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: ProcessesInput, sender: ComponentSender<Self>, _: &Self::Root) {
        match message {
            ProcessesInput::Show { unit, dir } => {
                if self.unit.as_deref() != Some(unit.as_str()) {
                    // A table per unit: CPU is measured between two readings of the same one.
                    self.table = Arc::new(Mutex::new(ProcessTable::new(ProcFs::system())));
                    self.shown.clear();
                    self.more = 0;
                    self.total = 0;
                    self.read = false;
                    self.reading = false;
                }
                self.unit = Some(unit);
                self.dir = dir;
                self.render(&sender);
                self.read(&sender);
            }
            ProcessesInput::ContainClicked(index) => {
                if let (Some(unit), Some(line)) = (&self.unit, self.shown.get(index)) {
                    let _ = sender.output(ProcessesOutput::Contain {
                        unit: unit.clone(),
                        pid: line.pid,
                        command: line.command.clone(),
                    });
                }
            }
        }
    }

    fn update_cmd(&mut self, message: ProcessesCmd, sender: ComponentSender<Self>, _: &Self::Root) {
        let ProcessesCmd::Read { unit, rows } = message;
        if self.unit.as_deref() != Some(unit.as_str()) {
            return; // read for a unit no longer shown
        }
        self.reading = false;
        self.read = true;
        self.total = rows.len();
        (self.shown, self.more) = lines(&rows);
        self.render(&sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::ProcessInfo;

    fn row(pid: u32, command: &str, memory: u64) -> ProcessRow {
        ProcessRow {
            info: ProcessInfo {
                pid,
                ppid: 1,
                name: "sh".into(),
                command: command.into(),
                memory_bytes: Some(memory),
                cpu_ticks: 0,
                start_ticks: 0,
                oom_score: None,
                oom_score_adj: None,
            },
            cpu_percent: pid.is_multiple_of(2).then_some(12.4),
        }
    }

    #[test]
    fn rows_are_capped_and_the_rest_counted() {
        let rows: Vec<ProcessRow> = (0..11)
            .map(|i| row(100 + i, "sleep 600", 1 << 20))
            .collect();
        let (shown, more) = lines(&rows);
        assert_eq!(shown.len(), MAX_ROWS);
        assert_eq!(more, 3);
        assert_eq!(shown[0].figures, "PID 100 · 1.0 MiB · 12 % CPU");
        assert_eq!(shown[1].figures, "PID 101 · 1.0 MiB · — % CPU");
        let zombie = row(7, "", 0);
        assert_eq!(lines(&[zombie]).0[0].command, "[sh]");
    }

    /// The texts of the labels below `widget`.
    fn texts(widget: &gtk::Widget, out: &mut Vec<String>) {
        if let Some(label) = widget.downcast_ref::<gtk::Label>()
            && label.is_visible()
        {
            out.push(label.text().to_string());
        }
        let mut child = widget.first_child();
        while let Some(c) = child {
            texts(&c, out);
            child = c.next_sibling();
        }
    }

    #[gtk::test]
    fn the_section_lists_this_process_and_its_children() {
        let _ = adw::init();
        let section = ProcessesSection::builder().launch(()).detach();
        // A cgroup directory that holds this test's process.
        let dir = tempfile::tempdir().unwrap();
        let procs = format!("{}\n", std::process::id());
        std::fs::write(dir.path().join("cgroup.procs"), procs).unwrap();
        section.emit(ProcessesInput::Show {
            unit: "test.scope".into(),
            dir: Some(dir.path().to_owned()),
        });
        let pid = format!("PID {} ·", std::process::id());
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            gtk::glib::MainContext::default().iteration(false);
            let mut shown = Vec::new();
            texts(section.widget().upcast_ref(), &mut shown);
            if shown.iter().any(|t| t.starts_with(&pid)) {
                break;
            }
            assert!(
                std::time::Instant::now() < end,
                "no row for {pid}: {shown:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
