//! The agent against an in-process fake collector speaking the real protocol over real TLS:
//! CA pinning, enrollment, mutual TLS delivery, outage, revocation and a foreign certificate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, IsCa, Issuer, KeyPair,
};
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};
use vigie_agent::config::Config;
use vigie_agent::enroll::{EnrollError, enroll};
use vigie_agent::pin::{PinError, fingerprint};
use vigie_agent::run::{OnceSummary, RunError};
use vigie_agent::sender::SendError;
use vigie_agent::state::StateDir;
use vigie_agent::transport::FailureKind;
use vigie_domain::AgentRole;
use vigie_domain::token::EnrollmentToken;
use vigie_proto::v1;
use vigie_proto::v1::enrollment_server::{Enrollment, EnrollmentServer};
use vigie_proto::v1::ingest_server::{Ingest, IngestServer};

struct Ca {
    pem: String,
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Ca {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &ca.issuer)
        .expect("signed");
    (cert.pem(), key.serialize_pem())
}

#[derive(Default)]
struct Seen {
    enroll_calls: AtomicUsize,
    token_used: AtomicBool,
    revoked: AtomicBool,
    stored: Mutex<HashSet<String>>,
    batches: Mutex<Vec<v1::ReportBatch>>,
}

#[derive(Clone)]
struct Service {
    ca: Arc<Ca>,
    secret: String,
    seen: Arc<Seen>,
}

#[tonic::async_trait]
impl Enrollment for Service {
    async fn enroll(
        &self,
        request: Request<v1::EnrollRequest>,
    ) -> Result<Response<v1::EnrollResponse>, Status> {
        self.seen.enroll_calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        let token = EnrollmentToken::decode(&request.token)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if token.secret != self.secret {
            return Err(Status::not_found("unknown token"));
        }
        if self.seen.token_used.swap(true, Ordering::SeqCst) {
            return Err(Status::already_exists("token already used"));
        }
        let csr = CertificateSigningRequestParams::from_pem(&request.csr_pem)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cert = csr
            .signed_by(&self.ca.issuer)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(v1::EnrollResponse {
            clinic_id: "clinic-1".into(),
            agent_id: "agent-1".into(),
            certificate_pem: cert.pem(),
            ca_certificate_pem: self.ca.pem.clone(),
        }))
    }
}

#[tonic::async_trait]
impl Ingest for Service {
    async fn report(
        &self,
        request: Request<v1::ReportBatch>,
    ) -> Result<Response<v1::ReportAck>, Status> {
        if request.peer_certs().is_none_or(|c| c.is_empty()) {
            return Err(Status::unauthenticated("a client certificate is required"));
        }
        if self.seen.revoked.load(Ordering::SeqCst) {
            return Err(Status::permission_denied("agent agent-1 is revoked"));
        }
        let batch = request.into_inner();
        let ids: Vec<String> = batch.reports.iter().map(|r| r.id.clone()).collect();
        self.seen
            .stored
            .lock()
            .expect("lock")
            .extend(ids.iter().cloned());
        self.seen.batches.lock().expect("lock").push(batch);
        Ok(Response::new(v1::ReportAck {
            stored_ids: ids,
            rejected: Vec::new(),
        }))
    }
}

struct FakeCollector {
    addr: SocketAddr,
    service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeCollector {
    async fn start() -> Self {
        let service = Arc::new(Service {
            ca: Arc::new(new_ca()),
            secret: "s3cr3t".into(),
            seen: Arc::default(),
        });
        let mut collector = FakeCollector {
            addr: "127.0.0.1:0".parse().expect("addr"),
            service,
            stop: None,
            task: None,
        };
        collector.serve().await;
        collector
    }

    async fn serve(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind");
        self.addr = listener.local_addr().expect("addr");
        let (cert, key) = leaf(&self.service.ca, &["127.0.0.1"]);
        // Chain [leaf, CA], as the real collector presents it.
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                format!("{cert}{}", self.service.ca.pem),
                key,
            ))
            .client_ca_root(Certificate::from_pem(&self.service.ca.pem))
            .client_auth_optional(true);
        let (stop, stopped) = oneshot::channel::<()>();
        let router = Server::builder()
            .tls_config(tls)
            .expect("tls")
            .add_service(EnrollmentServer::new(Service::clone(&self.service)))
            .add_service(IngestServer::new(Service::clone(&self.service)));
        self.task = Some(tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        }));
        self.stop = Some(stop);
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }

    fn token(&self, ca_sha256: String) -> String {
        EnrollmentToken {
            collector_addr: self.addr.to_string(),
            ca_sha256,
            secret: self.service.secret.clone(),
        }
        .encode()
    }

    fn genuine_token(&self) -> String {
        self.token(fingerprint(&self.service.ca.der))
    }

    fn seen(&self) -> &Seen {
        &self.service.seen
    }
}

/// Only the system snapshot, so that each `run_once` queues exactly one report.
fn snapshot_only() -> Config {
    let mut config = Config::default();
    config.updates.enabled = false;
    config.antivirus.enabled = false;
    config.software.enabled = false;
    config
}

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn failure_kind(error: Option<&SendError>) -> Option<FailureKind> {
    match error {
        Some(SendError::Call(failure)) => Some(failure.kind),
        _ => None,
    }
}

#[tokio::test]
async fn enrolls_after_pinning_then_delivers_keeps_and_redelivers() {
    install_provider();
    let mut collector = FakeCollector::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path().join("state"));
    let config = snapshot_only();

    // A token pinning another CA: refused before the token is sent.
    let error = enroll(
        &state,
        &collector.token("0".repeat(64)),
        AgentRole::Server,
        false,
    )
    .await
    .expect_err("wrong pin");
    assert!(
        matches!(error, EnrollError::Pin(PinError::Mismatch { .. })),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&fingerprint(&collector.service.ca.der))
    );
    assert_eq!(collector.seen().enroll_calls.load(Ordering::SeqCst), 0);
    assert!(!state.is_enrolled());

    let enrollment = enroll(&state, &collector.genuine_token(), AgentRole::Server, false)
        .await
        .expect("enrolls");
    assert_eq!(
        (enrollment.agent_id.as_str(), enrollment.clinic_id.as_str()),
        ("agent-1", "clinic-1")
    );
    for file in ["agent.key", "agent.crt", "ca.crt", "agent.json"] {
        assert!(state.path().join(file).exists(), "{file}");
    }
    let again = enroll(&state, &collector.genuine_token(), AgentRole::Server, false)
        .await
        .expect_err("already enrolled");
    assert!(
        matches!(again, EnrollError::AlreadyEnrolled { .. }),
        "{again}"
    );

    let summary = run_once(&state, &config).await.expect("run once");
    assert_eq!(
        (summary.sent, summary.queued),
        (1, 0),
        "{:?}",
        summary.failure
    );
    {
        let batches = collector.seen().batches.lock().expect("lock");
        let status = batches[0].outbox.clone().expect("outbox status");
        assert_eq!((status.queued, status.dropped_total), (1, 0));
        assert!(matches!(
            batches[0].reports[0].payload,
            Some(v1::report::Payload::SystemSnapshot(_))
        ));
    }

    collector.stop().await;
    for queued in 1..=2 {
        let summary = run_once(&state, &config).await.expect("run once");
        assert_eq!((summary.sent, summary.queued), (0, queued));
        assert_eq!(
            failure_kind(summary.failure.as_ref()),
            Some(FailureKind::Unreachable)
        );
    }

    collector.serve().await;
    let summary = run_once(&state, &config).await.expect("run once");
    assert_eq!(
        (summary.sent, summary.queued),
        (3, 0),
        "{:?}",
        summary.failure
    );
    assert_eq!(collector.seen().stored.lock().expect("lock").len(), 4);

    collector.seen().revoked.store(true, Ordering::SeqCst);
    let summary = run_once(&state, &config).await.expect("run once");
    assert_eq!((summary.sent, summary.queued), (0, 1));
    assert_eq!(
        failure_kind(summary.failure.as_ref()),
        Some(FailureKind::Revoked)
    );
    let text = summary.failure.map(|f| f.to_string()).unwrap_or_default();
    assert!(text.contains("revoked"), "{text}");
    collector.stop().await;
}

#[tokio::test]
async fn certificate_from_another_ca_is_reported_as_a_certificate_problem() {
    install_provider();
    let mut collector = FakeCollector::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(dir.path());
    enroll(
        &state,
        &collector.genuine_token(),
        AgentRole::Workstation,
        false,
    )
    .await
    .expect("enrolls");
    let (cert, key) = leaf(&new_ca(), &["forged"]);
    std::fs::write(state.path().join("agent.crt"), cert).expect("write");
    std::fs::write(state.path().join("agent.key"), key).expect("write");

    let summary = run_once(&state, &snapshot_only()).await.expect("run once");
    assert_eq!((summary.sent, summary.queued), (0, 1));
    assert_eq!(
        failure_kind(summary.failure.as_ref()),
        Some(FailureKind::CertificateRejected),
        "{:?}",
        summary.failure
    );
    let text = summary.failure.map(|f| f.to_string()).unwrap_or_default();
    assert!(text.contains("certificate"), "{text}");
    collector.stop().await;
}

/// `run --once` in this process, as often as its tests need. sled releases an outbox's file
/// lock from its own threads a moment after the last handle drops; a real `run --once` is a
/// process of its own, so this wait exists only here.
async fn run_once(state: &StateDir, config: &Config) -> Result<OnceSummary, RunError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match vigie_agent::run::run_once(state, config).await {
            Err(error)
                if error.to_string().contains("another vigie-agent")
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}
