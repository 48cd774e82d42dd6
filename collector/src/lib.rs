//! Vigie collector: enrolls clinic agents over gRPC with mutual TLS, stores their reports
//! durably (group commit + fsync) in sled, and serves a loopback admin interface.
//!
//! Invariants: identity comes from the verified client certificate only; only `storage` names
//! sled; a batch is acknowledged only after a flush that covers it.

#![forbid(unsafe_code)]

pub mod admin_client;
pub mod agent_clock;
pub mod alert_output;
pub mod alerts;
pub mod archive;
pub mod backup_command;
pub mod central_config;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod demo;
pub mod escalation;
pub mod facts;
pub mod group_commit;
pub mod init;
pub mod limits;
pub mod model;
pub mod output;
pub mod pki;
pub mod report;
pub mod report_command;
pub mod retention;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod ticket_output;
pub mod time_text;

/// The whole binary: command line, logging, runtime, and the exit code. `build` says which
/// binary this is (only the benchmark one accepts `[bench]` switches).
pub fn main_of(build: config::Build) -> std::process::ExitCode {
    use clap::Parser as _;
    install_crypto_provider();
    let cli = cli::Cli::parse();
    init_logging(if cli.command.is_server() {
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
            eprintln!("erreur : impossible de démarrer le runtime async : {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run_as(cli.command, build)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erreur : {error:#}");
            if let Some(server::ServeError::DurabilityLost(_)) = error.downcast_ref() {
                // Exit before the runtime drops the database: sled's drop would flush and sync
                // once more over the failed disk (and panic when that fails).
                std::process::exit(1);
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `VIGIE_LOG` (default `default_level`).
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .try_init();
}

/// Installs ring as the process-wide rustls provider; a second call is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
