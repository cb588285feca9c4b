//! The history of contained apps that ended badly: the post-mortems the runaway watch records
//! in `$XDG_STATE_HOME/corral/events.jsonl` (the same records as `corral events`), newest
//! first, read again whenever the window is shown.

use adw::prelude::*;

use crate::i18n::{gettext, gettext_f, ngettext_f};
use crate::monitor::postmortem::{EndCause, EventLog, LocalTime, PostMortem};

/// Opens the events window over `parent`.
pub fn show(parent: &adw::ApplicationWindow) {
    let window = adw::Window::builder()
        .title(gettext("Events"))
        .transient_for(parent)
        .modal(true)
        .default_width(640)
        .default_height(520)
        .build();
    let content = gtk::Box::new(gtk::Orientation::Vertical, 0);
    content.append(&adw::HeaderBar::new());
    content.append(&page());
    window.set_content(Some(&content));
    let close = gtk::EventControllerKey::new();
    {
        let window = window.clone();
        close.connect_key_pressed(move |_, key, _, _| {
            if key == gtk::gdk::Key::Escape {
                window.close();
                return gtk::glib::Propagation::Stop;
            }
            gtk::glib::Propagation::Proceed
        });
    }
    window.add_controller(close);
    window.present();
}

/// The list of post-mortems, or a page that says why there is none.
fn page() -> gtk::Widget {
    let status = |icon: &str, title: &str, description: &str| -> gtk::Widget {
        adw::StatusPage::builder()
            .icon_name(icon)
            .title(title)
            .description(description)
            .vexpand(true)
            .build()
            .upcast()
    };
    let unreadable = |e: &dyn std::fmt::Display| {
        status(
            "dialog-warning-symbolic",
            &gettext("Events Cannot Be Read"),
            &e.to_string(),
        )
    };
    let log = match EventLog::open_default() {
        Ok(log) => log,
        Err(e) => return unreadable(&e),
    };
    let contents = match log.read() {
        Ok(contents) => contents,
        Err(e) => return unreadable(&e),
    };
    if contents.records.is_empty() {
        return status(
            "emblem-ok-symbolic",
            &gettext("No Events"),
            &gettext(
                "When a contained app is killed for lack of memory or fails, Corral records what happened here.",
            ),
        );
    }
    let list = gtk::ListBox::builder()
        .selection_mode(gtk::SelectionMode::None)
        .css_classes(["boxed-list"])
        .valign(gtk::Align::Start)
        .build();
    crate::ui::set_accessible_label(&list, &gettext("Events"));
    let today = LocalTime::of(std::time::SystemTime::now());
    for record in contents.records.iter().rev() {
        list.append(&row(record, today));
    }
    let column = gtk::Box::builder()
        .orientation(gtk::Orientation::Vertical)
        .spacing(12)
        .margin_top(18)
        .margin_bottom(18)
        .margin_start(18)
        .margin_end(18)
        .build();
    column.append(&list);
    let mut note = gettext_f("Recorded in {path}", &[("path", &log.path().display())]);
    if contents.skipped_lines > 0 {
        note.push_str(&ngettext_f(
            " ({n} unreadable line skipped: a record cut short by a crash, or written by a newer Corral)",
            " ({n} unreadable lines skipped: a record cut short by a crash, or written by a newer Corral)",
            contents.skipped_lines as u64,
            &[("n", &contents.skipped_lines)],
        ));
    }
    column.append(
        &gtk::Label::builder()
            .label(note)
            .wrap(true)
            .xalign(0.0)
            .css_classes(["dim-label", "caption"])
            .build(),
    );
    gtk::ScrolledWindow::builder()
        .child(&column)
        .hscrollbar_policy(gtk::PolicyType::Never)
        .vexpand(true)
        .build()
        .upcast()
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
    crate::ui::set_accessible_label(&row, &record.describe());
    row
}
