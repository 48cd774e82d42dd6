//! The technician console: server-rendered French pages (maud) and the JSON API (`/api/v1`)
//! on their own HTTPS listener (`[console]`), started by `serve`, reading storage in-process.
//!
//! - `config.rs`: `[console]`. `auth.rs`: accounts, argon2id, sessions, CSRF, lockout, API
//!   tokens. `web.rs`: the router, the session and CSRF extractors, security headers, the
//!   page handlers. `api.rs`: `/api/v1` with bearer tokens. `data.rs`: what pages and API read
//!   (the same views as the admin CLI's `--json`). `pages/`: one file per page. `assets/`: the
//!   stylesheet and the one script, embedded in the binary.
//!
//! Invariants: no inline script (the CSP says `script-src 'self'`); every state change is a
//! POST with the session's CSRF token (API: a bearer token, no cookie); only admins change
//! tiers; every action is written to the audit log with who, from where and when.

mod actions;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
mod data;
mod pages;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use jiff::SignedDuration;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use config::{ConsoleConfig, DEFAULT_CONSOLE_LISTEN};

use crate::server::CollectorState;
use auth::LoginPolicy;

/// Browser connections at once (a technician's browser opens about six).
const MAX_CONNECTIONS: usize = 256;
/// A TLS handshake or a request head slower than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open requests get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot read the console certificate {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("console certificate: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    #[error("console certificate: no certificate in {0}")]
    NoCertificate(String),
    #[error("console TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot listen on {addr} (console): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every console request shares.
#[derive(Debug)]
pub struct ConsoleState {
    pub collector: Arc<CollectorState>,
    pub config: ConsoleConfig,
    pub policy: LoginPolicy,
}

impl ConsoleState {
    pub fn new(collector: Arc<CollectorState>) -> Self {
        let config = collector.config.console.clone();
        let policy = LoginPolicy {
            max_failures: config.max_failed_logins,
            lockout: SignedDuration::from_mins(config.lockout_minutes as i64),
            session: SignedDuration::from_hours(config.session_hours as i64),
        };
        ConsoleState {
            collector,
            config,
            policy,
        }
    }
}

/// The console's listener, serving until `stopped`.
#[derive(Debug)]
pub struct RunningConsole {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

fn read(path: &std::path::Path) -> Result<String, ConsoleError> {
    std::fs::read_to_string(path).map_err(|source| ConsoleError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn tls_config(state: &CollectorState) -> Result<Arc<rustls::ServerConfig>, ConsoleError> {
    let console = &state.config.console;
    let (cert_path, key_path) = match (&console.cert_file, &console.key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        // The collector's server certificate: signed by its CA, names localhost and 127.0.0.1.
        _ => (state.data_dir.server_cert(), state.data_dir.server_key()),
    };
    let chain_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    let chain =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(ConsoleError::NoCertificate(cert_path.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Binds the console and serves it until `stopped`; `None` when `[console] enabled = false`.
pub async fn start(
    collector: Arc<CollectorState>,
    stopped: watch::Receiver<bool>,
) -> Result<Option<RunningConsole>, ConsoleError> {
    if !collector.config.console.enabled {
        return Ok(None);
    }
    let tls = tokio_rustls::TlsAcceptor::from(tls_config(&collector)?);
    let addr = collector.config.console.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ConsoleError::Bind { addr, source })?;
    let state = Arc::new(ConsoleState::new(collector));
    let router = web::router(state);
    let task = tokio::spawn(accept_loop(listener, tls, router, stopped));
    tracing::info!(console = %format!("https://{addr}"), "technician console serving");
    Ok(Some(RunningConsole { addr, task }))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut watching = stopped.clone();
    let stop = async move {
        let _ = watching.wait_for(|stop| *stop).await;
    };
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!(%error, "console: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "console: too many connections, one refused");
            continue;
        };
        let (tls, router, mut stopped) = (tls.clone(), router.clone(), stopped.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "console: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let app = router.layer(axum::Extension(web::ClientAddr(peer)));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            let mut connection = std::pin::pin!(connection);
            let stop = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
                }
            }
        });
    }
}
