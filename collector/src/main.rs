//! `vigie-collector` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;
use vigie_collector::cli::Cli;

fn main() -> ExitCode {
    vigie_collector::install_crypto_provider();
    let cli = Cli::parse();
    vigie_collector::init_logging(if cli.command.is_server() {
        "info"
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(vigie_collector::commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if let Some(vigie_collector::server::ServeError::DurabilityLost(_)) =
                error.downcast_ref()
            {
                // Exit before the runtime drops the database: sled's drop would flush and sync
                // once more over the failed disk (and panic when that fails).
                std::process::exit(1);
            }
            ExitCode::FAILURE
        }
    }
}
