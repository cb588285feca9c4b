//! Translations through glibc's gettext (domain `corral`, catalogs from `po/`), with `{name}`
//! placeholders; a marked string is one plain literal on one line (see ARCHITECTURE.md, "i18n").

use std::ffi::{CStr, CString, c_char, c_ulong};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The gettext domain: the catalogs are `LANG/LC_MESSAGES/corral.mo`.
pub const DOMAIN: &str = "corral";

/// The catalogs build.rs compiled from `po/`, for a binary run from its build folder.
const BUILD_LOCALE_DIR: &str = env!("CORRAL_BUILD_LOCALEDIR");

unsafe extern "C" {
    // glibc's libintl (libc.so.6), declared as in <libintl.h>.
    #[link_name = "gettext"]
    fn c_gettext(msgid: *const c_char) -> *mut c_char;
    #[link_name = "ngettext"]
    fn c_ngettext(msgid: *const c_char, plural: *const c_char, n: c_ulong) -> *mut c_char;
    fn bindtextdomain(domain: *const c_char, dir: *const c_char) -> *mut c_char;
    fn bind_textdomain_codeset(domain: *const c_char, codeset: *const c_char) -> *mut c_char;
    fn textdomain(domain: *const c_char) -> *mut c_char;
}

/// Set by [`disable`]: every call then returns the English text.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Sets the locale from the environment and binds the `corral` domain to its catalogs; called
/// first thing by `main`, for the command line and the window alike. GtkBuilder's
/// `translatable="yes"` properties use the same domain, since it is also the default one.
pub fn init() {
    // SAFETY: called at startup, before any other thread reads the locale.
    unsafe {
        libc::setlocale(libc::LC_ALL, c"".as_ptr());
        if wants_language_fallback() {
            // glibc ignores LANGUAGE while LC_MESSAGES is "C" (a documented rule of gettext:
            // the C locale's messages are specified by POSIX), so `LANGUAGE=de corral` does
            // nothing on a machine without LANG. C.UTF-8 (built into glibc since 2.35) is the
            // same locale under another name, and there LANGUAGE counts. Only LC_MESSAGES is
            // changed, and not when LC_ALL or LC_MESSAGES ask for C explicitly: that remains
            // the way to get untranslated output.
            libc::setlocale(libc::LC_MESSAGES, c"C.UTF-8".as_ptr());
        }
    }
    // In the C locale glibc's gettext returns every message as it is: skip its lookups (and
    // finding the catalogs), a fair part of a command's start-up.
    if messages_locale_is_c() {
        disable();
        return;
    }
    let dir = locale_dir();
    let (Ok(domain), Ok(dir)) = (
        CString::new(DOMAIN),
        CString::new(dir.as_os_str().as_encoded_bytes()),
    ) else {
        return;
    };
    // SAFETY: valid NUL-terminated strings; glibc copies them.
    unsafe {
        bindtextdomain(domain.as_ptr(), dir.as_ptr());
        bind_textdomain_codeset(domain.as_ptr(), c"UTF-8".as_ptr());
        textdomain(domain.as_ptr());
    }
}

/// Turns translation off for this process: the man page and shell completions that
/// `corral man` and `corral completions` generate are installed where English belongs.
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Whether messages are in the C (POSIX) locale, where nothing is translated.
fn messages_locale_is_c() -> bool {
    // SAFETY: a query of the current locale's name, compared at once.
    unsafe {
        let name = libc::setlocale(libc::LC_MESSAGES, std::ptr::null());
        !name.is_null() && matches!(CStr::from_ptr(name).to_bytes(), b"C" | b"POSIX")
    }
}

/// Whether LC_MESSAGES came out as plain C although LANGUAGE names languages, and C was not
/// asked for by LC_ALL or LC_MESSAGES themselves (only by LANG, or by nothing).
fn wants_language_fallback() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set("LANGUAGE") || set("LC_ALL") || set("LC_MESSAGES") {
        return false;
    }
    messages_locale_is_c()
}

/// Where the catalogs are: the installed `PREFIX/share/locale` next to the binary's `bin/`
/// when it holds Corral's catalogs, else the ones build.rs compiled.
pub fn locale_dir() -> PathBuf {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/locale")));
    match installed {
        Some(dir) if has_catalogs(&dir) => dir,
        _ => PathBuf::from(BUILD_LOCALE_DIR),
    }
}

fn has_catalogs(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|languages| {
        languages.flatten().any(|language| {
            language
                .path()
                .join("LC_MESSAGES")
                .join(format!("{DOMAIN}.mo"))
                .is_file()
        })
    })
}

/// A C string for glibc; text with a NUL byte cannot be a msgid and is returned as it is.
fn c_string(text: &str) -> Option<CString> {
    CString::new(text).ok()
}

/// The translation of `msgid`, or `msgid` itself.
pub fn gettext(msgid: &str) -> String {
    if DISABLED.load(Ordering::Relaxed) || msgid.is_empty() {
        return msgid.to_owned();
    }
    let Some(id) = c_string(msgid) else {
        return msgid.to_owned();
    };
    // SAFETY: gettext returns either its argument or a string owned by the catalog, which
    // stays valid while the domain is bound; it is copied at once.
    unsafe { copy(c_gettext(id.as_ptr())) }.unwrap_or_else(|| msgid.to_owned())
}

/// The translation of `singular`/`plural` for `n` (the language's plural rule picks the form).
pub fn ngettext(singular: &str, plural: &str, n: u64) -> String {
    let english = || if n == 1 { singular } else { plural }.to_owned();
    if DISABLED.load(Ordering::Relaxed) {
        return english();
    }
    let (Some(one), Some(many)) = (c_string(singular), c_string(plural)) else {
        return english();
    };
    // Only the plural form matters for huge counts; gettext takes an unsigned long.
    let n = c_ulong::try_from(n).unwrap_or(c_ulong::MAX);
    // SAFETY: as in gettext.
    unsafe { copy(c_ngettext(one.as_ptr(), many.as_ptr(), n)) }.unwrap_or_else(english)
}

/// The translation of `msgid` in `context`, for words that translate differently in
/// different places ("max" as a graph label, "max" as a limit value).
pub fn pgettext(context: &str, msgid: &str) -> String {
    // gettext stores a context as "context\u{4}msgid"; without a translation it comes back.
    let key = format!("{context}\u{4}{msgid}");
    let translated = gettext(&key);
    if translated == key {
        msgid.to_owned()
    } else {
        translated
    }
}

/// Marks a string for translation where it is defined (a constant, a table), for `gettext`
/// to translate where it is shown.
pub const fn gettext_noop(msgid: &'static str) -> &'static str {
    msgid
}

/// `gettext` with `{name}` placeholders filled from `args`: `gettext_f("Froze {app}", &[("app",
/// &name)])`. Translations may reorder the placeholders; an unknown one is left as it is.
pub fn gettext_f(msgid: &str, args: &[(&str, &dyn Display)]) -> String {
    fill(&gettext(msgid), args)
}

/// `ngettext` with `{name}` placeholders, e.g. `ngettext_f("{n} app", "{n} apps", n, &[("n",
/// &n)])`.
pub fn ngettext_f(singular: &str, plural: &str, n: u64, args: &[(&str, &dyn Display)]) -> String {
    fill(&ngettext(singular, plural, n), args)
}

fn fill(template: &str, args: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            let (_, value) = args.iter().find(|(n, _)| *n == name)?;
            Some((value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(&value.to_string());
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Copies a string gettext returned.
unsafe fn copy(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller passes what gettext returned: NUL-terminated, valid for now.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_by_name_in_any_order() {
        let app = "Firefox".to_owned();
        assert_eq!(
            fill("{app} uses {used}", &[("used", &"2 GiB"), ("app", &app)]),
            "Firefox uses 2 GiB"
        );
        assert_eq!(fill("{b}{a}{b}", &[("a", &1), ("b", &2)]), "212");
        // Unknown names, lone braces and JSON-like text survive.
        assert_eq!(
            fill("{\"value\": N} {x", &[("value", &1)]),
            "{\"value\": N} {x"
        );
        assert_eq!(fill("{who}", &[]), "{who}");
    }

    #[test]
    fn untranslated_text_comes_back_unchanged() {
        // The unit tests never bind a catalog: English comes back, with plurals by count.
        assert_eq!(gettext("Freeze"), "Freeze");
        assert_eq!(ngettext("{n} app", "{n} apps", 1), "{n} app");
        assert_eq!(ngettext_f("{n} app", "{n} apps", 3, &[("n", &3)]), "3 apps");
        assert_eq!(pgettext("graph", "max"), "max");
        assert_eq!(gettext(""), "");
        assert_eq!(gettext("nul\0byte"), "nul\0byte");
    }
}
