//! `serve`: the agent listener (Enrollment + Ingest, TLS with optional client certificates)
//! and the admin listener (Admin, mutual TLS required), sharing one storage and one
//! group-commit flusher, with graceful shutdown and a final flush.

pub mod admin;
mod admin_alerts;
mod admin_backup;
mod admin_config;
mod admin_console;
mod admin_escalation;
mod admin_report;
pub mod admission;
pub mod agent_config;
pub mod convert;
pub mod enrollment;
pub mod identity;
pub mod ingest;
pub mod tls;
mod wire;

pub use admin_escalation::escalation_to_proto;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use vigie_proto::received::ingest_server::IngestServer;
use vigie_proto::v1::admin_server::AdminServer;
use vigie_proto::v1::agent_config_server::AgentConfigServer;
use vigie_proto::v1::enrollment_server::EnrollmentServer;

use crate::alerts::clock::{Clock, SystemClock};
use crate::alerts::engine::AlertEngine;
use crate::alerts::evaluator::{self, Evaluator};
use crate::config::{Build, CollectorConfig, ConfigError, DataDir};
use crate::escalation::{self, Escalator};
use crate::group_commit::GroupCommit;
use crate::pki::{CertificateAuthority, PkiError};
use crate::storage::{Storage, StorageError};

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Requests at once on one connection: an agent sends one batch at a time.
const MAX_STREAMS_PER_CONNECTION: u32 = 32;
/// Descriptors the collector needs besides client connections (database, listeners, sinks).
const OWN_DESCRIPTORS: u64 = 64;

/// How long answers in flight get to leave after durability was lost.
const LOST_DURABILITY_GRACE: Duration = Duration::from_secs(3);

/// What every service shares.
#[derive(Debug)]
pub struct CollectorState {
    pub config: CollectorConfig,
    /// Where `collector.toml`, the keys and the database live (the backup reads them).
    pub data_dir: DataDir,
    pub storage: Storage,
    pub commit: GroupCommit,
    pub ca: CertificateAuthority,
    pub alerts: Arc<AlertEngine>,
    pub evaluator: Evaluator,
    /// Alerts to tickets: the queue and the sinks.
    pub escalation: Arc<Escalator>,
    /// The latest central configuration version set: wakes every agent's `Watch` stream.
    pub config_changes: watch::Sender<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "{0} is not an initialised collector data directory (run `vigie-collector init --data-dir {0}` first)"
    )]
    NotInitialised(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    BenchSwitches(String),
    #[error("refusing to start: {0}")]
    SecretsExposed(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Pki(#[from] PkiError),
    #[error("cannot open the database: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup of the collector listeners failed: {0}")]
    Tls(#[from] tls::TlsSetupError),
    #[error("the {what} listener failed: {source}")]
    Transport {
        what: &'static str,
        source: tonic::transport::Error,
    },
    #[error("the {0} listener task panicked or was cancelled")]
    Task(&'static str),
    #[error("final flush failed: {0}")]
    FinalFlush(StorageError),
    #[error(
        "a flush to disk failed ({0}); stopped without acknowledging anything more, restart to reopen the database"
    )]
    DurabilityLost(String),
    #[error(transparent)]
    Escalation(#[from] crate::escalation::EscalationError),
    #[error("[reports]: {0}")]
    Reports(String),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

/// Runs a storage call on the blocking pool (sled may touch the disk).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("storage task failed: {e}")))
}

/// Refuses a report from a client without a certificate before its body is read (it could be
/// 4 MiB); the service checks the identity itself.
fn require_certificate(request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
    match request.peer_certs() {
        Some(certs) if !certs.is_empty() => Ok(request),
        _ => Err(identity::IdentityError::NoCertificate.into()),
    }
}

/// A storage failure as a status; the details go to the log, not to the peer.
pub(crate) fn internal(error: StorageError) -> Status {
    tracing::error!(%error, "storage error");
    Status::internal("storage error on the collector (see its log)")
}

/// A started collector. Dropping it stops the listeners too, but without waiting for requests
/// in flight or the final flush: prefer [`RunningCollector::shutdown`].
#[derive(Debug)]
pub struct RunningCollector {
    /// Where the agent listener is bound (useful with port 0).
    pub agent_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// Where the technician console is bound (`None`: `[console] enabled = false`).
    pub console_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    agent_task: JoinHandle<Result<(), tonic::transport::Error>>,
    admin_task: JoinHandle<Result<(), tonic::transport::Error>>,
    evaluator_task: JoinHandle<()>,
    storage: Storage,
    commit: GroupCommit,
}

fn read(path: std::path::PathBuf) -> Result<String, ServeError> {
    std::fs::read_to_string(&path).map_err(|source| ServeError::Read {
        path: path.display().to_string(),
        source,
    })
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { what, addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { what, addr, source })?;
    Ok((listener, local))
}

/// Opens the data directory, binds both listeners and starts serving.
pub async fn start(data_dir: &DataDir) -> Result<RunningCollector, ServeError> {
    start_as(data_dir, Build::Shipped).await
}

/// [`start`] as the binary `build` says (only the benchmark one accepts `[bench]`).
pub async fn start_as(data_dir: &DataDir, build: Build) -> Result<RunningCollector, ServeError> {
    start_with(data_dir, Arc::new(SystemClock), build).await
}

/// [`start`] with the clock the alert rules use (tests set the time).
pub async fn start_with_clock(
    data_dir: &DataDir,
    clock: Arc<dyn Clock>,
) -> Result<RunningCollector, ServeError> {
    start_with(data_dir, clock, Build::Shipped).await
}

async fn start_with(
    data_dir: &DataDir,
    clock: Arc<dyn Clock>,
    build: Build,
) -> Result<RunningCollector, ServeError> {
    if !data_dir.config().is_file() {
        return Err(ServeError::NotInitialised(
            data_dir.path().display().to_string(),
        ));
    }
    let exposed = crate::secrets::exposures(data_dir);
    if !exposed.is_empty() {
        return Err(ServeError::SecretsExposed(exposed.join("; ")));
    }
    let config = CollectorConfig::load_with_secrets(data_dir)?;
    if let Some(refusal) = config.bench.refusal(build, &data_dir.config()) {
        return Err(ServeError::BenchSwitches(refusal));
    }
    let ca_pem = read(data_dir.ca_cert())?;
    let ca = CertificateAuthority::load(&ca_pem, &read(data_dir.ca_key())?)?;
    let server_chain = read(data_dir.server_cert())?;
    let server_key = read(data_dir.server_key())?;
    let agent_tls = tls::server_config(
        &server_chain,
        &server_key,
        &ca_pem,
        tls::ClientAuth::Optional,
    )?;
    let admin_tls = tls::server_config(
        &server_chain,
        &server_key,
        &ca_pem,
        tls::ClientAuth::Required,
    )?;
    if !config.admin_listen.ip().is_loopback() {
        tracing::warn!(admin_listen = %config.admin_listen, "admin listener is not on loopback");
    }

    let db_path = data_dir.database();
    let storage = tokio::task::spawn_blocking(move || {
        let storage = Storage::open(&db_path)?;
        // Reports an older version of this collector stored without understanding them.
        let interpreted = ingest::interpret_stored(&storage)?;
        if interpreted > 0 {
            tracing::info!(
                interpreted,
                "stored reports of newly known kinds interpreted"
            );
            storage.flush_durably()?;
        }
        Ok::<_, StorageError>(storage)
    })
    .await
    .map_err(|_| ServeError::Task("database open"))??;
    #[cfg(feature = "bench")]
    if !config.bench.is_default() {
        tracing::warn!(
            discard_reports = config.bench.discard_reports,
            fsync = config.bench.fsync,
            "benchmark switches are on: acknowledged reports may be lost"
        );
        storage.set_fsync(config.bench.fsync);
    }
    let flusher_storage = storage.clone();
    let (commit, _flusher) = GroupCommit::spawn(move || flusher_storage.flush_durably().map(drop));

    let (agent_listener, agent_addr) = bind("agent", config.agent_listen).await?;
    let (admin_listener, admin_addr) = bind("admin", config.admin_listen).await?;
    let max = config.limits.max_message_bytes;
    let max_enroll = config.limits.max_enroll_message_bytes;
    let agent_admission = admission::Admission::new(&config.limits);
    let admin_admission = admission::Admission::new(&config.limits);
    let strangers = (config.limits.max_tls_handshakes
        + config.limits.max_unauthenticated_connections) as u64
        + OWN_DESCRIPTORS;
    if let Some(open_files) = admission::open_files_limit()
        && open_files < strangers
    {
        tracing::warn!(
            open_files,
            needed = strangers,
            "the open-files limit is below [limits] max_tls_handshakes + \
             max_unauthenticated_connections + the collector's own: clients without a \
             certificate may use up descriptors agents need (raise LimitNOFILE or lower the limits)"
        );
    }
    let (stop, stopped) = watch::channel(false);
    let engine = Arc::new(AlertEngine::new(
        storage.clone(),
        config.alerts.clone(),
        clock.clone(),
    ));
    let (evaluator, evaluator_task) = evaluator::spawn(
        engine.clone(),
        commit.clone(),
        Duration::from_secs(config.alerts.evaluate_every_seconds.max(1)),
        stopped.clone(),
    );
    let escalation = Arc::new(Escalator::new(
        &config.escalation,
        storage.clone(),
        commit.clone(),
        engine.clone(),
    )?);
    // Detached: it stops with `stopped`; a ticket operation cut short is retried next start.
    let _escalation_task =
        escalation::worker::spawn(escalation.clone(), engine.subscribe(), stopped.clone());
    // Detached too: a pass cut short prunes the rest next time.
    let _retention_task = crate::retention::spawn(
        storage.clone(),
        commit.clone(),
        config.retention.clone(),
        clock.clone(),
        !config.escalation.sinks.is_empty(),
        stopped.clone(),
    );
    let reports = crate::report::schedule::Schedule::new(
        storage.clone(),
        commit.clone(),
        &config,
        data_dir.path(),
        clock.clone(),
    )
    .map_err(|e| ServeError::Reports(e.to_string()))?;
    // Detached: a report cut short is sent again (same Message-ID) at the next start.
    let _reports_task = crate::report::schedule::spawn(reports, stopped.clone());
    let state = Arc::new(CollectorState {
        config,
        data_dir: data_dir.clone(),
        storage: storage.clone(),
        commit: commit.clone(),
        ca,
        alerts: engine,
        evaluator,
        escalation,
        config_changes: watch::Sender::new(0),
    });

    let signal = |mut rx: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // TLS is terminated by `tls::incoming` (see there why); tonic gets established streams and
    // still hands the peer certificates to the services.
    let agent_server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .add_service(
            // A CSR is a few KiB: a longer message is refused from its length prefix, before
            // its body is read.
            EnrollmentServer::new(enrollment::EnrollmentService::new(state.clone()))
                .max_decoding_message_size(max_enroll)
                .max_encoding_message_size(max),
        )
        .add_service(InterceptedService::new(
            IngestServer::new(ingest::IngestService::new(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            require_certificate,
        ))
        .add_service(InterceptedService::new(
            AgentConfigServer::new(agent_config::AgentConfigService::new(
                state.clone(),
                stopped.clone(),
            ))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
            require_certificate,
        ));
    let agent_incoming = tls::incoming(
        "agent",
        agent_listener,
        agent_tls,
        agent_admission,
        stopped.clone(),
    );
    let agent_task = tokio::spawn(
        agent_server.serve_with_incoming_shutdown(agent_incoming, signal(stopped.clone())),
    );

    let admin_server =
        Server::builder().add_service(AdminServer::new(admin::AdminService::new(state.clone())));
    let admin_incoming = tls::incoming(
        "admin",
        admin_listener,
        admin_tls,
        admin_admission,
        stopped.clone(),
    );
    let console = crate::console::start(state.clone(), stopped.clone()).await?;
    let admin_task =
        tokio::spawn(admin_server.serve_with_incoming_shutdown(admin_incoming, signal(stopped)));

    tracing::info!(
        agent_listen = %agent_addr,
        admin_listen = %admin_addr,
        public_addr = %state.config.public_addr(),
        ca_sha256 = %state.ca.fingerprint(),
        "collector serving"
    );
    Ok(RunningCollector {
        agent_addr,
        admin_addr,
        console_addr: console.map(|c| c.addr),
        stop,
        agent_task,
        admin_task,
        evaluator_task,
        storage,
        commit,
    })
}

impl RunningCollector {
    /// Serves until `signal` completes (or a listener fails), then shuts down gracefully.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServeError> {
        tokio::select! {
            () = signal => {
                tracing::info!("shutdown requested: finishing requests in flight");
            }
            result = &mut self.agent_task => {
                let _ = self.stop.send(true);
                return Err(listener_failed("agent", result));
            }
            result = &mut self.admin_task => {
                let _ = self.stop.send(true);
                return Err(listener_failed("admin", result));
            }
            error = self.commit.lost() => {
                return Err(self.stop_after_lost_durability(error).await);
            }
        }
        self.shutdown().await
    }

    /// A flush failed: what the database holds is no longer known to be on disk. Stop without
    /// a final flush (it could "succeed" over dropped pages) and let the service manager
    /// restart the collector, which reopens the database from what really is on disk. Agents
    /// keep every unacknowledged report in their outbox meanwhile.
    async fn stop_after_lost_durability(self, error: String) -> ServeError {
        tracing::error!(
            %error,
            "storage is no longer durable: stopping so that the service manager restarts the collector"
        );
        let _ = self.stop.send(true);
        // Requests in flight are answered `Unavailable` by now; give them a moment to leave.
        let _ = tokio::time::timeout(LOST_DURABILITY_GRACE, async {
            let _ = self.agent_task.await;
            let _ = self.admin_task.await;
        })
        .await;
        ServeError::DurabilityLost(error)
    }

    /// Stops accepting, lets in-flight requests finish (bounded), then flushes one last time.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            let agent = self.agent_task.await;
            let admin = self.admin_task.await;
            // An evaluation in progress finishes before the final flush.
            let _ = self.evaluator_task.await;
            (agent, admin)
        })
        .await;
        let mut first_error = None;
        match drained {
            Ok((agent, admin)) => {
                for (what, result) in [("agent", agent), ("admin", admin)] {
                    match result {
                        Ok(Ok(())) => {}
                        other => {
                            let error = listener_failed(what, other);
                            tracing::error!(%error, "listener ended with an error");
                            first_error.get_or_insert(error);
                        }
                    }
                }
            }
            Err(_) => tracing::warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still in flight after the grace period; stopping anyway"
            ),
        }
        if let Err(crate::group_commit::DurabilityError::Lost(error)) = self.commit.check() {
            // No final flush over what may be dropped pages: see `stop_after_lost_durability`.
            return Err(ServeError::DurabilityLost(error));
        }
        let storage = self.storage;
        tokio::task::spawn_blocking(move || storage.flush_durably())
            .await
            .map_err(|_| ServeError::Task("final flush"))?
            .map_err(ServeError::FinalFlush)?;
        tracing::info!("collector stopped");
        first_error.map_or(Ok(()), Err)
    }
}

fn listener_failed(
    what: &'static str,
    result: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> ServeError {
    match result {
        Ok(Err(source)) => ServeError::Transport { what, source },
        Ok(Ok(())) | Err(_) => ServeError::Task(what),
    }
}

/// Completes on SIGTERM or ctrl-c (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
