//! `vigie-agent`: the binary edge. Parses the command line, sets up logging and a small
//! runtime, and turns errors into one `error: ...` line and a non-zero exit.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Another provider may already be installed in tests; either way ring is what we use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.command);
    // One thread: the agent waits on the network and the disk, it never computes much.
    // Blocking checks run on a small pool whose idle threads outlive the 5-minute schedule, so
    // a collection cycle reuses a thread instead of creating one (tokio's default: 10 s).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .thread_keep_alive(std::time::Duration::from_secs(15 * 60))
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", vigie_agent::transport::render(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
