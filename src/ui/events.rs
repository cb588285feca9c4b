//! The history of contained apps that ended badly: the post-mortems of
//! `$XDG_STATE_HOME/corral/events.jsonl` (as `corral events`), newest first, read off the main loop.

use adw::prelude::*;
use relm4::prelude::*;

use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::monitor::postmortem::{EndCause, EventLog, LocalTime, PostMortem};
use crate::ui::A11yLabel;

/// What the log held when it was read.
#[derive(Debug)]
pub enum EventsCmd {
    Read(Result<EventRecords, String>),
}

#[derive(Debug)]
pub struct EventRecords {
    records: Vec<PostMortem>,
    skipped_lines: usize,
    path: String,
}

/// Reads the log (up to its size limit, about 1 MiB): blocking, for a blocking task.
fn read_log() -> Result<EventRecords, String> {
    let log = EventLog::open_default().map_err(|e| e.to_string())?;
    let contents = log.read().map_err(|e| e.to_string())?;
    Ok(EventRecords {
        records: contents.records,
        skipped_lines: contents.skipped_lines,
        path: log.path().display().to_string(),
    })
}

#[derive(Debug)]
pub enum EventsInput {
    /// Read the log again.
    Reload,
}

pub struct Events {
    /// `None` while the log is being read.
    read: Option<Result<EventRecords, String>>,
    list: gtk::ListBox,
}

impl Events {
    fn page(&self) -> &'static str {
        match &self.read {
            None => "reading",
            Some(Err(_)) => "unreadable",
            Some(Ok(read)) if read.records.is_empty() => "none",
            Some(Ok(_)) => "list",
        }
    }

    fn error(&self) -> String {
        match &self.read {
            Some(Err(e)) => e.clone(),
            _ => String::new(),
        }
    }

    /// Where the records are, and how many lines could not be read.
    fn note(&self) -> String {
        let Some(Ok(read)) = &self.read else {
            return String::new();
        };
        let mut note = gettext_f("Recorded in {path}", &[("path", &read.path)]);
        if read.skipped_lines > 0 {
            note.push_str(&ngettext_f(
                " ({n} unreadable line skipped: a record cut short by a crash, or written by a newer Corral)",
                " ({n} unreadable lines skipped: a record cut short by a crash, or written by a newer Corral)",
                read.skipped_lines as u64,
                &[("n", &read.skipped_lines)],
            ));
        }
        note
    }
}

#[relm4::component(pub)]
impl Component for Events {
    type Init = ();
    type Input = EventsInput;
    type Output = ();
    type CommandOutput = EventsCmd;

    view! {
        #[root]
        adw::Window {
            set_title: Some(&gettext("Events")),
            set_modal: true,
            set_default_width: 640,
            set_default_height: 520,
            add_controller = gtk::EventControllerKey {
                connect_key_pressed[root] => move |_, key, _, _| {
                    if key == gtk::gdk::Key::Escape {
                        root.close();
                        return gtk::glib::Propagation::Stop;
                    }
                    gtk::glib::Propagation::Proceed
                },
            },
            gtk::Box {
                set_orientation: gtk::Orientation::Vertical,
                adw::HeaderBar {},
                gtk::Stack {
                    set_vexpand: true,
                    #[watch]
                    set_visible_child_name: model.page(),
                    add_named[Some("reading")] = &gtk::Spinner {
                        set_spinning: true,
                        set_halign: gtk::Align::Center,
                        set_valign: gtk::Align::Center,
                    },
                    add_named[Some("unreadable")] = &adw::StatusPage {
                        set_icon_name: Some("dialog-warning-symbolic"),
                        set_title: &gettext("Events Cannot Be Read"),
                        #[watch]
                        set_description: Some(&model.error()),
                    },
                    add_named[Some("none")] = &adw::StatusPage {
                        set_icon_name: Some("emblem-ok-symbolic"),
                        set_title: &gettext("No Events"),
                        set_description: Some(&gettext("When a contained app is killed for lack of memory or fails, Corral records what happened here.")),
                    },
                    add_named[Some("list")] = &gtk::ScrolledWindow {
                        set_hscrollbar_policy: gtk::PolicyType::Never,
                        gtk::Box {
                            set_orientation: gtk::Orientation::Vertical,
                            set_spacing: 12,
                            set_margin_all: 18,
                            #[local_ref]
                            list -> gtk::ListBox {
                                set_selection_mode: gtk::SelectionMode::None,
                                set_css_classes: &["boxed-list"],
                                set_valign: gtk::Align::Start,
                                set_a11y_label: &gettext("Events"),
                            },
                            gtk::Label {
                                set_wrap: true,
                                set_xalign: 0.0,
                                set_css_classes: &["dim-label", "caption"],
                                #[watch]
                                set_label: &model.note(),
                            },
                        },
                    },
                },
            },
        }
    }

    fn init(_: (), root: Self::Root, sender: ComponentSender<Self>) -> ComponentParts<Self> {
        sender.input(EventsInput::Reload);
        let model = Events {
            read: None,
            list: gtk::ListBox::new(),
        };
        let list = &model.list;
        let widgets = view_output!();
        ComponentParts { model, widgets }
    }

    fn update(&mut self, message: EventsInput, sender: ComponentSender<Self>, _: &Self::Root) {
        let EventsInput::Reload = message;
        self.read = None;
        sender.oneshot_command(async {
            let read = tokio::task::spawn_blocking(read_log)
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            EventsCmd::Read(read)
        });
    }

    fn update_cmd(&mut self, message: EventsCmd, _: ComponentSender<Self>, _: &Self::Root) {
        let EventsCmd::Read(read) = message;
        while let Some(row) = self.list.first_child() {
            self.list.remove(&row);
        }
        if let Ok(read) = &read {
            let today = LocalTime::of(std::time::SystemTime::now());
            for record in read.records.iter().rev() {
                self.list.append(&row(record, today));
            }
        }
        self.read = Some(read);
    }
}

fn row(record: &PostMortem, today: Option<LocalTime>) -> adw::ActionRow {
    let when = LocalTime::of(record.ended_at())
        .map_or_else(|| record.ended_at.to_string(), |at| at.label(today));
    let row = adw::ActionRow::builder()
        .title(gtk::glib::markup_escape_text(&record.describe()).as_str())
        .subtitle(gtk::glib::markup_escape_text(&format!("{when} · {}", record.unit)).as_str())
        .title_lines(0)
        .build();
    let icon = match record.cause {
        EndCause::OomKill => "dialog-warning-symbolic",
        _ => "dialog-error-symbolic",
    };
    row.add_prefix(&gtk::Image::from_icon_name(icon));
    row.set_a11y_label(&record.describe());
    row
}
