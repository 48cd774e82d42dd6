//! The load generator's agents: each enrolled through the real `Enroll` RPC with its own key
//! pair and CSR, and connected to the agent listener over mutual TLS with its own certificate,
//! exactly as `vigie-agent` does (one HTTP/2 connection per agent).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use rcgen::{CertificateParams, DnType, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use vigie_proto::v1;
use vigie_proto::v1::enrollment_client::EnrollmentClient;
use vigie_proto::v1::ingest_client::IngestClient;

use crate::collector::Collector;

/// Enrollments (and connections) in flight at once. The enrollments share one connection, and
/// the collector allows 32 requests at once on a connection (`MAX_STREAMS_PER_CONNECTION`):
/// more, sent before its HTTP/2 settings arrive, are refused (`REFUSED_STREAM`).
const PARALLEL: usize = 24;

/// One simulated agent: its identity and its own connection.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub index: usize,
    pub client: IngestClient<Channel>,
}

struct Credentials {
    cert_pem: String,
    key_pem: String,
}

fn tls(ca_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost")
}

async fn channel(addr: SocketAddr, tls: ClientTlsConfig) -> Result<Channel> {
    Channel::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .with_context(|| format!("connect to {addr}"))
}

async fn enroll_one(
    mut client: EnrollmentClient<Channel>,
    token: String,
    index: usize,
) -> Result<Credentials> {
    let key = KeyPair::generate()?;
    let hostname = format!("bench-pc-{index:05}");
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;
    let answer = client
        .enroll(v1::EnrollRequest {
            token,
            csr_pem,
            hostname,
            role: v1::AgentRole::Workstation as i32,
            os: "Windows 11 Pro 23H2".into(),
            agent_version: "bench".into(),
        })
        .await
        .context("Enroll")?
        .into_inner();
    Ok(Credentials {
        cert_pem: answer.certificate_pem,
        key_pem: key.serialize_pem(),
    })
}

async fn connect_one(
    addr: SocketAddr,
    ca_pem: String,
    creds: Credentials,
    index: usize,
) -> Result<SimAgent> {
    let tls = tls(&ca_pem).identity(Identity::from_pem(&creds.cert_pem, &creds.key_pem));
    let channel = channel(addr, tls).await?;
    Ok(SimAgent {
        index,
        client: IngestClient::new(channel)
            .max_encoding_message_size(vigie_proto::MAX_MESSAGE_BYTES),
    })
}

/// Enrolls `count` new agents with the collector and connects each over its own mTLS
/// connection. `first_index` numbers them (hostnames) after earlier ones.
pub async fn enroll_and_connect(
    collector: &Collector,
    count: usize,
    first_index: usize,
) -> Result<Vec<SimAgent>> {
    let tokens = collector.tokens(count).await?;
    let enroll_channel = channel(collector.agent_addr, tls(&collector.ca_pem)).await?;
    let client = EnrollmentClient::new(enroll_channel);
    let mut agents = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        if pending.len() >= PARALLEL
            && let Some(done) = pending.join_next().await
        {
            agents.push(done??);
        }
        let (client, addr, ca) = (
            client.clone(),
            collector.agent_addr,
            collector.ca_pem.clone(),
        );
        let index = first_index + i;
        pending.spawn(async move {
            let creds = enroll_one(client, token, index).await?;
            connect_one(addr, ca, creds, index).await
        });
    }
    while let Some(done) = pending.join_next().await {
        agents.push(done??);
    }
    agents.sort_by_key(|a| a.index);
    Ok(agents)
}
