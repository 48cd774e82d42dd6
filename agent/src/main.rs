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
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
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
