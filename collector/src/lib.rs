//! Vigie collector: enrolls clinic agents over gRPC with mutual TLS, stores their reports
//! durably (group commit + fsync) in sled, and serves a loopback admin interface.
//!
//! Invariants: identity comes from the verified client certificate only; only `storage` names
//! sled; a batch is acknowledged only after a flush that covers it.

#![forbid(unsafe_code)]

pub mod admin_client;
pub mod alert_output;
pub mod alerts;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod escalation;
pub mod facts;
pub mod group_commit;
pub mod init;
pub mod limits;
pub mod model;
pub mod output;
pub mod pki;
pub mod retention;
pub mod server;
pub mod storage;
pub mod ticket_output;

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
