//! `corral-desktop`: Corral's window and tray, which `corral` without a command (or with
//! `--tray`) starts. It takes the same arguments as `corral` and runs commands too, but only
//! the window and the tray need GTK, and so only this executable links it.
use corral::cli::{self, Cli};

fn main() {
    corral::i18n::init();
    let cli = Cli::parse_localized();
    corral::raise_fd_limit();
    let manager = cli.manager();
    let code = match cli.command {
        None if !has_display() => {
            eprintln!(
                "corral: {}",
                corral::i18n::gettext(
                    "error: the window and the tray need a graphical session, and neither DISPLAY nor WAYLAND_DISPLAY is set; start Corral from your desktop, or use its command line here (`corral ps`, `corral run -- COMMAND`, `corral --help`)"
                )
            );
            1
        }
        // On the main thread, with GTK's own main loop.
        None => corral::app::run(manager, false, cli.tray),
        Some(command) => cli::run_to_exit_code(manager, command),
    };
    std::process::exit(code);
}

/// Whether GTK has a display to open: without one it says only "cannot open display".
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY", "GDK_BACKEND"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}
