//! Translations through the system's gettext by gettext-rs (domain `corral`, catalogs from
//! `po/`), with `{name}` placeholders; a marked string is one plain literal on one line
//! (see ARCHITECTURE.md, "i18n").

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use gettextrs::LocaleCategory;

/// The gettext domain: the catalogs are `LANG/LC_MESSAGES/corral.mo`.
pub const DOMAIN: &str = "corral";

/// The catalogs build.rs compiled from `po/`, for a binary run from its build folder.
const BUILD_LOCALE_DIR: &str = env!("CORRAL_BUILD_LOCALEDIR");

/// Set by [`disable`]: every call then returns the English text.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Sets the locale from the environment and binds the `corral` domain to its catalogs; called
/// first thing by `main`, for the command line and the window alike. GtkBuilder's
/// `translatable="yes"` properties use the same domain, since it is also the default one.
pub fn init() {
    gettextrs::setlocale(LocaleCategory::LcAll, "");
    // The messages' locale, as the environment sets it (LC_ALL, then LC_MESSAGES, then LANG).
    let mut messages = gettextrs::setlocale(LocaleCategory::LcMessages, "");
    if is_c(messages.as_deref()) && wants_language_fallback() {
        // glibc ignores LANGUAGE while LC_MESSAGES is "C" (a documented rule of gettext: the C
        // locale's messages are specified by POSIX), so `LANGUAGE=de corral` does nothing on a
        // machine without LANG. C.UTF-8 (built into glibc since 2.35) is the same locale under
        // another name, and there LANGUAGE counts. Only LC_MESSAGES is changed, and not when
        // LC_ALL or LC_MESSAGES ask for C explicitly: that remains the way to get untranslated
        // output.
        messages = gettextrs::setlocale(LocaleCategory::LcMessages, "C.UTF-8").or(messages);
    }
    // In the C locale glibc's gettext returns every message as it is: skip its lookups (and
    // finding the catalogs), a fair part of a command's start-up.
    if is_c(messages.as_deref()) {
        disable();
        return;
    }
    // Failing to bind leaves English, which is all that can be done without the catalogs.
    let _ = gettextrs::bindtextdomain(DOMAIN, locale_dir());
    let _ = gettextrs::bind_textdomain_codeset(DOMAIN, "UTF-8");
    let _ = gettextrs::textdomain(DOMAIN);
}

/// Whether a locale name is the C (POSIX) locale, where nothing is translated.
fn is_c(name: Option<&[u8]>) -> bool {
    matches!(name, Some(b"C" | b"POSIX"))
}

/// Whether LANGUAGE names languages, and C was not asked for by LC_ALL or LC_MESSAGES
/// themselves (only by LANG, or by nothing).
fn wants_language_fallback() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    set("LANGUAGE") && !set("LC_ALL") && !set("LC_MESSAGES")
}

/// Turns translation off for this process: the man page and shell completions that
/// `corral man` and `corral completions` generate are installed where English belongs.
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
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

/// The translation of `msgid`, or `msgid` itself.
pub fn gettext(msgid: &str) -> String {
    // A NUL byte cannot be in a msgid (gettext takes C strings): such text is no message.
    if DISABLED.load(Ordering::Relaxed) || msgid.is_empty() || msgid.contains('\0') {
        return msgid.to_owned();
    }
    gettextrs::gettext(msgid)
}

/// The translation of `singular`/`plural` for `n` (the language's plural rule picks the form).
pub fn ngettext(singular: &str, plural: &str, n: u64) -> String {
    if DISABLED.load(Ordering::Relaxed) || singular.contains('\0') || plural.contains('\0') {
        return if n == 1 { singular } else { plural }.to_owned();
    }
    // Only the plural form matters for huge counts, and gettext-rs takes a u32.
    gettextrs::ngettext(singular, plural, u32::try_from(n).unwrap_or(u32::MAX))
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
