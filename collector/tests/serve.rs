//! The collector served in-process on 127.0.0.1:0: enrollment, ingest and admin over real TLS,
//! checking what only the server side can see (single-use tokens under a race, the admin
//! interface refusing agent certificates, revocation taking effect at once).

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vigie_collector::config::DataDir;
use vigie_collector::init::{InitOptions, init};
use vigie_collector::server::{RunningCollector, start};
use vigie_proto::v1::admin_client::AdminClient;
use vigie_proto::v1::enrollment_client::EnrollmentClient;
use vigie_proto::v1::ingest_client::IngestClient;
use vigie_proto::v1::{
    AddClinicRequest, AgentRole, CreateTokenRequest, EnrollRequest, EnrollResponse,
    ListAgentsRequest, ListClinicsRequest, Report, ReportBatch, RevokeAgentRequest, SystemSnapshot,
    report,
};

async fn channel(ca: String, addr: SocketAddr, identity: Option<Identity>) -> Channel {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connects")
}

struct Harness {
    _tmp: tempfile::TempDir,
    dir: DataDir,
    running: RunningCollector,
}

async fn harness() -> Harness {
    vigie_collector::install_crypto_provider();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("collector"));
    let any = "127.0.0.1:0".parse().expect("addr");
    init(
        &dir,
        &InitOptions {
            agent_listen: any,
            public_addr: Some("localhost:7443".into()),
            admin_listen: any,
            console_listen: any,
        },
    )
    .expect("init");
    let running = start(&dir).await.expect("start");
    Harness {
        _tmp: tmp,
        dir,
        running,
    }
}

impl Harness {
    fn ca(&self) -> String {
        std::fs::read_to_string(self.dir.ca_cert()).expect("ca.crt")
    }

    async fn admin(&self) -> AdminClient<Channel> {
        vigie_collector::admin_client::connect_at(&self.dir, self.running.admin_addr)
            .await
            .expect("admin connects")
    }

    async fn channel(&self, addr: SocketAddr, identity: Option<Identity>) -> Channel {
        channel(self.ca(), addr, identity).await
    }

    async fn token(&self, clinic: &str) -> String {
        self.admin()
            .await
            .create_token(CreateTokenRequest {
                clinic_id: clinic.into(),
                ttl_seconds: 0,
            })
            .await
            .expect("token")
            .into_inner()
            .token
    }
}

/// A CSR asking for names the collector must ignore; returns (csr, private key).
fn csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["evil.example".to_owned()]).expect("params");
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    (csr, key.serialize_pem())
}

fn snapshot_report(host: &str) -> Report {
    let now = jiff::Timestamp::now();
    Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp {
            seconds: now.as_second(),
            nanos: 0,
        }),
        payload: Some(report::Payload::SystemSnapshot(SystemSnapshot {
            hostname: host.into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            cpu_count: 2,
            ..SystemSnapshot::default()
        })),
    }
}

async fn enroll(
    ca: String,
    addr: SocketAddr,
    token: String,
) -> Result<(EnrollResponse, String), tonic::Status> {
    let (csr, key) = csr();
    let response = EnrollmentClient::new(channel(ca, addr, None).await)
        .enroll(EnrollRequest {
            token,
            csr_pem: csr,
            hostname: "pc-accueil".into(),
            role: AgentRole::Imaging.into(),
            os: "Windows 11 Pro".into(),
            agent_version: "0.1.0".into(),
        })
        .await?;
    Ok((response.into_inner(), key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_ingest_admin_and_revocation_end_to_end() {
    let h = harness().await;
    let mut admin = h.admin().await;
    let clinic = admin
        .add_clinic(AddClinicRequest {
            name: "Cabinet du Tampon".into(),
            tier: "CMP3".into(),
        })
        .await
        .expect("clinic")
        .into_inner();
    assert_eq!(clinic.tier, "cmp3");

    // One token, eight racing enrollments: exactly one wins.
    let token = h.token(&clinic.id).await;
    let attempts = (0..8).map(|_| enroll(h.ca(), h.running.agent_addr, token.clone()));
    let results = futures_join_all(attempts).await;
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for loser in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(loser.code(), tonic::Code::PermissionDenied, "{loser:?}");
        assert!(loser.message().contains("already used"), "{loser:?}");
    }
    let (enrolled, key) = winners[0].clone();
    assert_eq!(enrolled.clinic_id, clinic.id);
    let identity = Identity::from_pem(&enrolled.certificate_pem, &key);

    // The agent certificate cannot use the admin interface.
    let agent_on_admin = h
        .channel(h.running.admin_addr, Some(identity.clone()))
        .await;
    let status = AdminClient::new(agent_on_admin)
        .list_clinics(ListClinicsRequest {})
        .await
        .expect_err("agent certificate on admin");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // Concurrent batches are all acknowledged; a resend stores nothing new.
    let agent_channel = h.channel(h.running.agent_addr, Some(identity)).await;
    let batches: Vec<_> = (0..20)
        .map(|_| ReportBatch {
            reports: vec![snapshot_report("pc-accueil")],
            outbox: None,
            agent_version: "0.1.1".into(),
            sent_at: None,
            config_version: 0,
        })
        .collect();
    let sends = batches.iter().cloned().map(|batch| {
        let mut client = IngestClient::new(agent_channel.clone());
        async move { client.report(batch).await }
    });
    for ack in futures_join_all(sends).await {
        assert_eq!(ack.expect("acknowledged").into_inner().stored_ids.len(), 1);
    }
    let resend = IngestClient::new(agent_channel.clone())
        .report(batches[0].clone())
        .await
        .expect("resend acknowledged")
        .into_inner();
    assert_eq!(resend.stored_ids, vec![batches[0].reports[0].id.clone()]);

    let agents = admin
        .list_agents(ListAgentsRequest::default())
        .await
        .expect("agents")
        .into_inner()
        .agents;
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].reports, 20);
    assert_eq!(agents[0].os, "Debian GNU/Linux 12");
    assert_eq!(agents[0].agent_version, "0.1.1");
    assert_eq!(agents[0].role, i32::from(AgentRole::Imaging));

    // Revocation takes effect for the very next call, on the same connection.
    admin
        .revoke_agent(RevokeAgentRequest {
            agent_id: enrolled.agent_id.clone(),
        })
        .await
        .expect("revoke");
    let status = IngestClient::new(agent_channel)
        .report(ReportBatch {
            reports: vec![snapshot_report("pc-accueil")],
            outbox: None,
            agent_version: String::new(),
            sent_at: None,
            config_version: 0,
        })
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains(&enrolled.agent_id), "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");

    h.running.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_without_certificate_is_unauthenticated_and_bad_csr_keeps_the_token() {
    let h = harness().await;
    let channel = h.channel(h.running.agent_addr, None).await;
    let status = IngestClient::new(channel.clone())
        .report(ReportBatch::default())
        .await
        .expect_err("no certificate");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "client certificate required");

    let clinic = h
        .admin()
        .await
        .add_clinic(AddClinicRequest {
            name: "Cabinet de Cilaos".into(),
            tier: "cmp1".into(),
        })
        .await
        .expect("clinic")
        .into_inner();
    let token = h.token(&clinic.id).await;
    let status = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: token.clone(),
            csr_pem:
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .into(),
            ..EnrollRequest::default()
        })
        .await
        .expect_err("bad CSR");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // The token was not spent on the bad request.
    enroll(h.ca(), h.running.agent_addr, token)
        .await
        .expect("token still good");
    h.running.shutdown().await.expect("clean shutdown");
}

/// Runs futures concurrently on the current task (no extra dependency for join_all).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}
