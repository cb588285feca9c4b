use corral::cli::{self, Cli};

fn main() {
    corral::i18n::init();
    let cli = Cli::parse_localized();
    corral::raise_fd_limit();
    let manager = cli.manager();
    let Some(command) = cli.command else {
        // No command: the window (or the tray), on the main thread with GTK's own main loop.
        std::process::exit(corral::ui::run(manager, false, cli.tray));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "corral: {}",
                corral::i18n::gettext_f(
                    "error: cannot start the async runtime: {error}",
                    &[("error", &e)]
                )
            );
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cli::run(manager, command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "corral: {}",
                corral::i18n::gettext_f("error: {error}", &[("error", &e)])
            );
            1
        }
    };
    std::process::exit(code);
}
