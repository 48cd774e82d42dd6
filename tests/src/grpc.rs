//! A test-only gRPC client speaking to the collector's agent listener directly, to send what
//! the real agent never would: no certificate, a foreign certificate, forged or malformed or
//! oversized messages.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Status};
use vigie_proto::v1;

/// Installs the one crypto provider the workspace uses (idempotent).
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client certificate and key, PEM.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ClientCert {
    /// The certificate an enrolled agent keeps in its state directory.
    pub fn of_agent(agent: &crate::Agent) -> Self {
        ClientCert {
            cert_pem: String::from_utf8(agent.read("agent.crt")).expect("PEM"),
            key_pem: String::from_utf8(agent.read("agent.key")).expect("PEM"),
        }
    }

    /// A certificate that claims `identity_uri` but is signed by a CA the collector never saw.
    pub fn forged(identity_uri: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair, SanType,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key"))
            .expect("foreign CA");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = vec![SanType::URI(identity_uri.try_into().expect("URI is IA5"))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca).expect("sign");
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Connects to a collector listener, trusting `ca_pem`, optionally presenting a certificate.
/// Errors come back as text with their whole source chain.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&ClientCert>,
) -> Result<Channel, String> {
    crypto();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
    }
    Channel::from_shared(format!("https://{addr}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| chain(&e))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .connect()
        .await
        .map_err(|e| chain(&e))
}

/// An error and all its sources on one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Text of a failed RPC: code, message and transport causes.
pub fn describe(status: &Status) -> String {
    format!(
        "{:?}: {} ({})",
        status.code(),
        status.message(),
        chain(status)
    )
}

pub async fn send_batch(channel: Channel, batch: v1::ReportBatch) -> Result<v1::ReportAck, Status> {
    v1::ingest_client::IngestClient::new(channel)
        .max_encoding_message_size(64 * 1024 * 1024)
        .report(batch)
        .await
        .map(tonic::Response::into_inner)
}

/// One well-formed report carrying a system snapshot.
pub fn snapshot_report(id: uuid::Uuid, hostname: &str) -> v1::Report {
    v1::Report {
        id: id.to_string(),
        collected_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
            hostname: hostname.to_owned(),
            os_name: "Test OS".into(),
            os_version: "1".into(),
            cpu_count: 2,
            ..Default::default()
        })),
    }
}

pub fn batch(reports: Vec<v1::Report>) -> v1::ReportBatch {
    v1::ReportBatch {
        reports,
        outbox: Some(v1::OutboxStatus::default()),
        agent_version: "test".into(),
        sent_at: Some(now()),
        config_version: 0,
    }
}

/// This machine's clock, as an agent would stamp it.
pub fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

/// Sends arbitrary bytes as the body of `Ingest/Report`: a malformed message no encoder
/// would produce.
pub async fn send_raw(channel: Channel, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::new(Code::Unavailable, chain(&e)))?;
    let path = http::uri::PathAndQuery::from_static("/vigie.v1.Ingest/Report");
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
