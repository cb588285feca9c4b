//! The window in German. With `LANGUAGE=de` and `LANG=C`, and Corral's start-up order (the
//! locale and the catalog first, src/i18n.rs, then GTK without its own setlocale, as
//! `ui::run` does), real parts of the window show German: the details pane's buttons, groups
//! and limit editors, the launcher dialog, the keyboard shortcuts from the GtkBuilder file
//! (its `translatable="yes"` properties, through the default text domain), and the tray's
//! summary with its plural forms.
//!
//! Its own binary without the test harness: the locale belongs to the whole process and must
//! be chosen before GTK starts. It needs a display, as the other GTK tests: `tests/run` runs
//! `cargo test` under Xvfb.

use std::sync::Arc;

use adw::prelude::*;
use relm4::prelude::*;

use corral::cgroup::CgroupSample;
use corral::monitor::service::MonitorState;
use corral::monitor::{UnitInfo, UnitSnapshot};
use corral::tray::TrayModel;

/// The text of every label and button below `widget`.
fn texts(widget: &gtk::Widget, out: &mut Vec<String>) {
    if let Some(label) = widget.downcast_ref::<gtk::Label>() {
        out.push(label.label().to_string());
    }
    if let Some(button) = widget.downcast_ref::<gtk::Button>()
        && let Some(label) = button.label()
    {
        out.push(label.to_string());
    }
    let mut child = widget.first_child();
    while let Some(c) = child {
        texts(&c, out);
        child = c.next_sibling();
    }
}

fn assert_shows(texts: &[String], wanted: &[&str], what: &str) {
    for text in wanted {
        assert!(
            texts.iter().any(|t| t == text),
            "{what} does not show {text:?}; it shows {texts:#?}"
        );
    }
}

fn snapshot(i: usize) -> UnitSnapshot {
    let unit = format!("app-corral-app{i}-0000000{i}.service");
    UnitSnapshot {
        info: UnitInfo::new(
            unit.clone(),
            &format!("App {i} [corral: relaxed]"),
            "active".to_owned(),
            "running".to_owned(),
            Some(format!("/app.slice/{unit}")),
        )
        .into(),
        cgroup: Some(CgroupSample {
            memory_current: Some(1 << 30),
            ..CgroupSample::default()
        }),
        cpu_percent: Some(1.0),
    }
}

fn main() {
    // SAFETY: nothing else runs yet; the environment is read by setlocale below.
    unsafe {
        std::env::set_var("LANGUAGE", "de");
        std::env::set_var("LANG", "C");
        std::env::remove_var("LC_ALL");
        std::env::remove_var("LC_MESSAGES");
    }
    corral::i18n::init();
    gtk::disable_setlocale();
    adw::init().expect("GTK needs a display: run the tests under xvfb-run");
    corral::ui::register_resources();

    // The details pane of the selected app.
    let details = corral::ui::details::Details::builder().launch(()).detach();
    let mut shown = Vec::new();
    texts(details.widget().upcast_ref(), &mut shown);
    assert_shows(
        &shown,
        &[
            "Einfrieren",
            "Beenden",
            "Abwürgen …",
            "Speicher",
            "Limits",
            "Weiches Speicherlimit (darüber gebremst)",
            "CPU-Kontingent",
            "Limits anwenden",
            "Für diese App merken",
        ],
        "the details pane",
    );
    assert!(
        !shown.iter().any(|t| t == "Freeze" || t == "Apply Limits"),
        "English left in the details pane: {shown:#?}"
    );

    // The launcher dialog, over a window.
    let parent = gtk::Window::new();
    let launcher = corral::ui::launcher::Launcher::builder()
        .transient_for(&parent)
        .launch(corral::ui::launcher::LauncherInit {
            catalog: Arc::new(corral::apps::AppCatalog::load_from(&[])),
            config: corral::config::Config::default(),
        })
        .detach();
    assert_eq!(
        launcher.widget().title().as_deref(),
        Some("Eine App starten")
    );
    let mut shown = Vec::new();
    texts(launcher.widget().upcast_ref(), &mut shown);
    assert_shows(
        &shown,
        &["Abbrechen", "Starten", "Voreinstellung", "Limits anpassen"],
        "the launcher",
    );

    // The keyboard shortcuts, from resources/ui/shortcuts.ui.
    let builder = gtk::Builder::from_resource(&format!(
        "{}/ui/shortcuts.ui",
        corral::identity::RESOURCE_BASE
    ));
    let titles: Vec<String> = builder
        .objects()
        .iter()
        .filter(|o| o.is::<gtk::ShortcutsShortcut>() || o.is::<gtk::ShortcutsGroup>())
        .map(|o| o.property::<Option<String>>("title").unwrap_or_default())
        .collect();
    assert_shows(
        &titles,
        &[
            "Eine App starten",
            "Einstellungen",
            "Tastenkürzel",
            "Allgemein",
        ],
        "the shortcuts window",
    );

    // The tray's tooltip title: plural forms from the catalog.
    let summary = |n: usize| {
        let state = MonitorState {
            units: (0..n).map(snapshot).collect(),
            ..MonitorState::default()
        };
        TrayModel::from_state(&state, Vec::new(), false, 16 << 30, false).summary()
    };
    assert_eq!(summary(0), "Keine eingehegten Apps");
    assert_eq!(summary(1), "1 eingehegte App · 1.0 GiB");
    assert_eq!(summary(3), "3 eingehegte Apps · 3.0 GiB");

    println!("the window speaks German: details, launcher, shortcuts and tray summary");
}
