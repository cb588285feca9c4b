//! The GTK 4 / libadwaita window (relm4): one application instance, the list of contained apps
//! with their details, the launcher and preferences. Views only: the logic lives in the library.

pub mod details;
pub mod events;
pub mod graph;
pub mod launcher;
pub mod preferences;
pub mod processes;
pub mod rule_dialog;
pub mod rule_section;
pub mod unit_list;
pub mod unit_row;
pub mod window;

use adw::prelude::*;

use crate::i18n::gettext;
use crate::identity::{APP_ID, APP_NAME, RESOURCE_BASE, VERSION};
use crate::systemd::ManagerKind;

/// The application id the window registers on the session bus. GApplication is unique per id:
/// a second start with the same id hands its activation to the first and ends. The system
/// manager's window has an id of its own, so that `corral --system` neither raises the user's
/// window (leaving the person at the user manager's apps) nor does a plain `corral` raise the
/// system's (and drive the system manager after a polkit prompt).
pub fn application_id(manager: ManagerKind) -> String {
    match manager {
        ManagerKind::User => APP_ID.to_owned(),
        ManagerKind::System => format!("{APP_ID}.System"),
    }
}

/// `text` for a widget that reads Pango markup (toasts, preference rows' titles and subtitles,
/// group descriptions): an `&` would blank it, a `<b>` or `<a href>` would format it. Names,
/// descriptions and error messages come from desktop entries, the config and systemd.
pub fn plain(text: &str) -> String {
    gtk::glib::markup_escape_text(text).to_string()
}

/// A toast that shows `text` as written.
pub fn toast(text: &str) -> adw::Toast {
    adw::Toast::new(&plain(text))
}

/// Names a widget for screen readers and AT-SPI. GTK 4.8's C library has had
/// gtk_accessible_update_property_value since 4.0, but the Rust bindings only expose the
/// GtkAccessible interface from 4.10 on, so this one call is declared here.
pub fn set_accessible_label(widget: &impl IsA<gtk::Widget>, label: &str) {
    use gtk::glib::translate::ToGlibPtr;
    unsafe extern "C" {
        fn gtk_accessible_update_property_value(
            accessible: *mut std::ffi::c_void,
            n_properties: std::ffi::c_int,
            properties: *mut std::ffi::c_int,
            values: *const gtk::glib::gobject_ffi::GValue,
        );
    }
    /// GTK_ACCESSIBLE_PROPERTY_LABEL in gtkenums.h.
    const LABEL: std::ffi::c_int = 4;
    let value = gtk::glib::Value::from(label);
    let mut property = [LABEL];
    let widget: *mut gtk::ffi::GtkWidget = widget.as_ref().to_glib_none().0;
    // SAFETY: every GtkWidget is a GtkAccessible; one property, one GValue holding a string.
    unsafe {
        gtk_accessible_update_property_value(
            widget.cast(),
            1,
            property.as_mut_ptr(),
            value.to_glib_none().0,
        );
    }
}

/// [`set_accessible_label`] as a method, for `view!`.
pub trait A11yLabel {
    fn set_a11y_label(&self, label: &str);
}

impl<W: IsA<gtk::Widget>> A11yLabel for W {
    fn set_a11y_label(&self, label: &str) {
        set_accessible_label(self, label);
    }
}

/// Registers the GResource bundle (CSS, UI files, icons) compiled into the binary; once.
pub fn register_resources() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gtk::gio::resources_register_include!("corral.gresource")
            .expect("the GResource bundle is compiled into the binary");
    });
}

pub fn show_about(parent: &adw::ApplicationWindow) {
    let about = adw::AboutWindow::builder()
        .transient_for(parent)
        .application_name(APP_NAME)
        .application_icon(APP_ID)
        .version(VERSION)
        .developer_name(gettext("The Corral developers"))
        .license_type(gtk::License::Gpl30)
        .comments(gettext("Keep desktop apps from eating the machine: launch them with limits, watch what they use, freeze or stop them when they run away."))
        .website("https://github.com/corral-app/corral")
        .build();
    // TRANSLATORS: your names, one per line (shown in the About window's credits).
    let translators = gettext("translator-credits");
    if translators != "translator-credits" {
        about.set_translator_credits(&translators);
    }
    about.present();
}

/// The Ctrl+? window listing the keyboard shortcuts, from the GResource.
pub fn install_shortcuts_window(window: &adw::ApplicationWindow) {
    let builder = gtk::Builder::from_resource(&format!("{RESOURCE_BASE}/ui/shortcuts.ui"));
    if let Some(shortcuts) = builder.object::<gtk::ShortcutsWindow>("help_overlay") {
        window.set_help_overlay(Some(&shortcuts));
    }
}
