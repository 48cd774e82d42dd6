//! gRPC channels to the collector and what went wrong when a call fails.
//!
//! Failures are classified by walking the error's `source()` chain down to the `rustls` or
//! `io` error, so that "the collector refused our certificate" is never reported as "network
//! down" (with TLS 1.3 a refused client certificate only surfaces on the first call).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use rustls::AlertDescription;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vigie_proto::v1::agent_config_client::AgentConfigClient;
use vigie_proto::v1::enrollment_client::EnrollmentClient;
use vigie_proto::v1::ingest_client::IngestClient;

use crate::pin::split_addr;
use crate::state::Credentials;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("invalid collector address {0:?} (expected HOST:PORT)")]
    BadAddress(String),
    #[error(
        "cannot set up TLS to the collector (damaged certificate or key in the state directory?)"
    )]
    Tls(#[source] tonic::transport::Error),
}

/// The channel to the collector over mutual TLS: trusts only the pinned CA, presents the agent
/// certificate. Reports and the configuration stream share it (one connection per agent,
/// however many calls): the request timeout bounds a call until its answer starts, so the
/// `Watch` stream outlives it; HTTP/2 keepalive notices a collector gone without a word.
pub fn agent_channel(
    credentials: &Credentials,
    timeouts: Timeouts,
) -> Result<Channel, ChannelError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&credentials.ca_pem))
        .identity(Identity::from_pem(
            &credentials.cert_pem,
            &credentials.key_pem,
        ));
    let addr = &credentials.enrollment.collector_addr;
    let (host, _) = split_addr(addr).ok_or_else(|| ChannelError::BadAddress(addr.clone()))?;
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|_| ChannelError::BadAddress(addr.clone()))?
        .tls_config(tls.domain_name(host))
        .map_err(ChannelError::Tls)?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    Ok(endpoint.connect_lazy())
}

/// A ping this often on a connection with a call open (the configuration stream) ...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// ... unanswered this long means the collector is gone: the stream fails and reconnects.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Ingest client on the agent's channel.
pub fn ingest_client(channel: Channel) -> IngestClient<Channel> {
    IngestClient::new(channel)
        .max_decoding_message_size(vigie_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(vigie_proto::MAX_MESSAGE_BYTES)
}

/// Central configuration client on the agent's channel.
pub fn config_client(channel: Channel) -> AgentConfigClient<Channel> {
    AgentConfigClient::new(channel)
        .max_decoding_message_size(vigie_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(vigie_proto::MAX_MESSAGE_BYTES)
}

/// Enrollment client: server-authenticated only, trusting only the CA just pinned.
pub fn enrollment_client(
    addr: &str,
    ca_pem: &str,
    timeouts: Timeouts,
) -> Result<EnrollmentClient<Channel>, ChannelError> {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    Ok(EnrollmentClient::new(channel(addr, tls, timeouts)?))
}

/// A lazy channel: it connects on the first call and reconnects by itself afterwards.
fn channel(addr: &str, tls: ClientTlsConfig, timeouts: Timeouts) -> Result<Channel, ChannelError> {
    let (host, _) = split_addr(addr).ok_or_else(|| ChannelError::BadAddress(addr.to_owned()))?;
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(|_| ChannelError::BadAddress(addr.to_owned()))?
        .tls_config(tls.domain_name(host))
        .map_err(ChannelError::Tls)?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request);
    Ok(endpoint.connect_lazy())
}

/// Why a call to the collector failed, in the terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer: network down, collector stopped, firewall, timeout.
    Unreachable,
    /// The collector refused our certificate during the TLS handshake.
    CertificateRejected,
    /// The collector's certificate is not signed by the pinned CA.
    CollectorUntrusted,
    /// The collector knows us and refuses us: revoked agent.
    Revoked,
    /// Any other refusal, by gRPC status.
    Refused(Code),
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::CertificateRejected => "certificate_rejected",
            FailureKind::CollectorUntrusted => "collector_untrusted",
            FailureKind::Revoked => "revoked",
            FailureKind::Refused(_) => "refused",
        }
    }
}

/// A failed call, classified, with the detail that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    pub kind: FailureKind,
    pub addr: String,
    pub detail: String,
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CallFailure { addr, detail, .. } = self;
        match self.kind {
            FailureKind::Unreachable => write!(f, "collector unreachable at {addr}: {detail}"),
            FailureKind::CertificateRejected => write!(
                f,
                "the collector at {addr} rejected this agent's certificate ({detail}): is this \
                 agent enrolled with this collector?"
            ),
            FailureKind::CollectorUntrusted => write!(
                f,
                "the collector at {addr} presented a certificate not signed by the CA pinned at \
                 enrollment ({detail})"
            ),
            FailureKind::Revoked => write!(
                f,
                "the collector at {addr} refuses this agent, which was probably revoked \
                 (permission denied: {detail})"
            ),
            FailureKind::Refused(code) => write!(
                f,
                "the collector at {addr} refused the call ({}: {detail})",
                code_name(code)
            ),
        }
    }
}

impl StdError for CallFailure {}

/// Classifies a failed call by its status and, below it, the transport error chain.
pub fn classify(status: &tonic::Status, addr: &str) -> CallFailure {
    let failure = |kind, detail: String| CallFailure {
        kind,
        addr: addr.to_owned(),
        detail,
    };
    if let Some(found) = classify_chain(status) {
        return failure(found.0, found.1);
    }
    let message = if status.message().is_empty() {
        code_name(status.code()).to_owned()
    } else {
        status.message().to_owned()
    };
    match status.code() {
        Code::PermissionDenied => failure(FailureKind::Revoked, message),
        Code::Unauthenticated => failure(FailureKind::CertificateRejected, message),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => failure(
            FailureKind::Unreachable,
            innermost(status).unwrap_or(message),
        ),
        // tonic reports client-side transport failures as Unknown.
        Code::Unknown if status.source().is_some() => failure(
            FailureKind::Unreachable,
            innermost(status).unwrap_or(message),
        ),
        code => failure(FailureKind::Refused(code), message),
    }
}

/// Every cause from `error` down. Unlike `source()`, this looks inside `io::Error`: its
/// `source()` skips the error it wraps, which is where tokio-rustls puts the `rustls::Error`
/// (sometimes under another `io::Error`).
fn causes<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        out.push(e);
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

/// Finds a TLS cause anywhere in the chain, else a network one.
fn classify_chain(error: &(dyn StdError + 'static)) -> Option<(FailureKind, String)> {
    let causes = causes(error);
    if let Some(tls) = causes
        .iter()
        .find_map(|e| e.downcast_ref::<rustls::Error>())
    {
        return Some(classify_tls(tls));
    }
    // h2 keeps only the kind and text of an io::Error, so the rustls::Error may survive only
    // as its message: recognise rustls' own wording.
    if let Some(found) = causes
        .iter()
        .find_map(|e| classify_tls_text(&e.to_string()))
    {
        return Some(found);
    }
    causes
        .iter()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .find(|io| is_network(io.kind()))
        .map(|io| (FailureKind::Unreachable, io.to_string()))
}

/// The TLS verdict carried by an io error from tokio-rustls, if there is one.
pub fn classify_io(error: &std::io::Error) -> Option<(FailureKind, String)> {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())?;
    Some(classify_tls(tls))
}

/// Alerts a server sends when it does not accept the client's certificate.
const CERTIFICATE_ALERTS: &[AlertDescription] = &[
    AlertDescription::CertificateRequired,
    AlertDescription::UnknownCA,
    AlertDescription::BadCertificate,
    AlertDescription::CertificateRevoked,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateUnknown,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::AccessDenied,
    // Sent when our certificate names the right issuer but its signature does not verify.
    AlertDescription::DecryptError,
];

/// rustls' Display: "received fatal alert: UnknownCA", "invalid peer certificate: ...".
fn classify_tls_text(text: &str) -> Option<(FailureKind, String)> {
    if let Some(rest) = text.split("received fatal alert: ").nth(1) {
        let alert: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let kind = if CERTIFICATE_ALERTS.iter().any(|a| format!("{a:?}") == alert) {
            FailureKind::CertificateRejected
        } else {
            FailureKind::Refused(Code::Unavailable)
        };
        return Some((kind, format!("TLS alert {alert}")));
    }
    text.split("invalid peer certificate: ")
        .nth(1)
        .map(|reason| (FailureKind::CollectorUntrusted, reason.to_owned()))
}

fn classify_tls(error: &rustls::Error) -> (FailureKind, String) {
    match error {
        rustls::Error::AlertReceived(alert) if CERTIFICATE_ALERTS.contains(alert) => (
            FailureKind::CertificateRejected,
            format!("TLS alert {alert:?}"),
        ),
        rustls::Error::InvalidCertificate(reason) => {
            (FailureKind::CollectorUntrusted, format!("{reason:?}"))
        }
        other => (
            FailureKind::Refused(Code::Unavailable),
            format!("TLS error: {other}"),
        ),
    }
}

fn is_network(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | AddrNotAvailable
            | TimedOut
            | BrokenPipe
            | UnexpectedEof
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// The deepest cause's text: "Connection refused (os error 111)" says more than
/// "transport error".
fn innermost(error: &(dyn StdError + 'static)) -> Option<String> {
    let causes = causes(error);
    (causes.len() > 1).then(|| causes[causes.len() - 1].to_string())
}

/// The whole chain as `a: b: c`, skipping texts already said.
pub fn render(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in causes(error) {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport-like error chain: Status -> Wrapper -> io::Error(inner).
    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("transport error")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn status_over(io: std::io::Error) -> tonic::Status {
        tonic::Status::from_error(Box::new(Wrapper(io)))
    }

    fn check(status: tonic::Status, kind: FailureKind, detail_has: &str) {
        let failure = classify(&status, "collector:7443");
        assert_eq!(failure.kind, kind, "{failure}");
        assert!(failure.detail.contains(detail_has), "{failure}");
    }

    #[test]
    fn failures_are_told_apart() {
        use std::io::{Error, ErrorKind};
        let alert = |a| Error::new(ErrorKind::InvalidData, rustls::Error::AlertReceived(a));
        check(
            status_over(alert(AlertDescription::CertificateRequired)),
            FailureKind::CertificateRejected,
            "CertificateRequired",
        );
        check(
            status_over(alert(AlertDescription::UnknownCA)),
            FailureKind::CertificateRejected,
            "UnknownCA",
        );
        // Only the text left, as h2 hands it over.
        check(
            status_over(Error::new(
                ErrorKind::InvalidData,
                "received fatal alert: CertificateRequired",
            )),
            FailureKind::CertificateRejected,
            "CertificateRequired",
        );
        check(
            status_over(Error::new(
                ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            )),
            FailureKind::CollectorUntrusted,
            "UnknownIssuer",
        );
        // Nested io::Errors.
        check(
            status_over(Error::new(
                ErrorKind::ConnectionReset,
                alert(AlertDescription::DecryptError),
            )),
            FailureKind::CertificateRejected,
            "DecryptError",
        );
        check(
            status_over(Error::new(
                ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            )),
            FailureKind::CollectorUntrusted,
            "UnknownIssuer",
        );
        check(
            status_over(Error::from(ErrorKind::ConnectionRefused)),
            FailureKind::Unreachable,
            "refused",
        );
        check(
            tonic::Status::permission_denied("agent revoked"),
            FailureKind::Revoked,
            "agent revoked",
        );
        check(
            tonic::Status::resource_exhausted("too big"),
            FailureKind::Refused(Code::ResourceExhausted),
            "too big",
        );
        check(
            tonic::Status::unavailable("down"),
            FailureKind::Unreachable,
            "down",
        );
    }

    #[test]
    fn messages_name_the_collector_and_the_cause() {
        let failure = classify(&tonic::Status::permission_denied("revoked"), "h:1");
        assert_eq!(
            failure.to_string(),
            "the collector at h:1 refuses this agent, which was probably revoked (permission \
             denied: revoked)"
        );
    }
}
