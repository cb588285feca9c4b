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
        // On the main thread, with GTK's own main loop.
        None => corral::app::run(manager, false, cli.tray),
        Some(command) => cli::run_to_exit_code(manager, command),
    };
    std::process::exit(code);
}
