//! `corral`: the command line. Without a command it hands over to `corral-desktop`, the window
//! and the tray (src/bin/corral-desktop.rs), so that commands never load GTK.
use corral::cli::{self, Cli};

fn main() {
    corral::i18n::init();
    let cli = Cli::parse_localized();
    let manager = cli.manager();
    let Some(command) = cli.command else {
        // Before raise_fd_limit: the window must see the session's own file limit, which it
        // restores for the apps it launches.
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "corral".into());
        let error = corral::desktop::exec(arg0, args);
        eprintln!("corral: {error}");
        std::process::exit(1);
    };
    corral::raise_fd_limit();
    std::process::exit(cli::run_to_exit_code(manager, command));
}
