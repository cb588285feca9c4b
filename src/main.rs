use clap::Parser;

use corral::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    corral::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("corral: error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("corral: error: {e}");
            1
        }
    };
    std::process::exit(code);
}
