//! HTTP(S) probe: one `GET`, its status line, the time to it, and for HTTPS the certificate's
//! expiry. A clinic NAS or printer usually has a self-signed certificate, so the handshake
//! always goes through and the probe says separately whether the chain verifies against the
//! machine's trust store. Only the status line is read: this is a health probe, not a client.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ProbeResult;
use super::tcp::{host_port, io_error};

/// Longest status line (and headers before it) we read.
const MAX_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    /// Host as written, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    #[error("has an invalid port")]
    Port,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let (tls, rest) = if let Some(rest) = strip_prefix_ci(text, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(text, "http://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            // Credentials in a URL would end up in logs and reports.
            return Err(UrlError::NoHost);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(UrlError::NoHost)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(UrlError::Port),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(UrlError::Port)?,
            None if tls => 443,
            None => 80,
        };
        Ok(Url {
            tls,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `Host:` header value.
    fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("{0}")]
    Url(#[from] UrlError),
    #[error("connect: {0}")]
    Connect(String),
    #[error("tls handshake: {0}")]
    Tls(String),
    #[error("{0}")]
    Io(String),
    #[error("not an HTTP response: {0:?}")]
    NotHttp(String),
}

/// What the TLS handshake told us about the server's certificate.
#[derive(Debug, Clone, Default)]
struct TlsFacts {
    expires_at: Option<String>,
    subject: Option<String>,
    /// `Ok` when the chain verifies against the trust store, else why not.
    chain: Option<Result<(), String>>,
}

struct Response {
    status: u16,
    tls: Option<TlsFacts>,
}

/// GETs `url` once; the caller bounds the time. Up means an HTTP answer below 500: a login
/// page's 401 still shows a living device.
pub async fn probe(url: &str) -> ProbeResult {
    let started = Instant::now();
    match get(url).await {
        Ok(response) => {
            let elapsed = started.elapsed();
            let mut result = if response.status < 500 {
                ProbeResult::ok("http", elapsed)
            } else {
                let mut r = ProbeResult::failed("http", format!("HTTP status {}", response.status));
                r.latency_ms = Some(super::millis(elapsed));
                r
            };
            result = result.detail("http_status", response.status);
            if let Some(tls) = response.tls {
                if let Some(at) = tls.expires_at {
                    result = result.detail("tls_expires_at", at);
                }
                if let Some(subject) = tls.subject {
                    result = result.detail("tls_subject", subject);
                }
                match tls.chain {
                    Some(Ok(())) => result = result.detail("tls_chain_verified", true),
                    Some(Err(why)) => {
                        result = result
                            .detail("tls_chain_verified", false)
                            .detail("tls_verify_error", why);
                    }
                    None => {}
                }
            }
            result
        }
        Err(e) => ProbeResult::failed("http", e.to_string()),
    }
}

async fn get(url: &str) -> Result<Response, HttpError> {
    let url = Url::parse(url)?;
    let tcp = tokio::net::TcpStream::connect(host_port(&url.host, url.port))
        .await
        .map_err(|e| HttpError::Connect(io_error(&e)))?;
    if !url.tls {
        let status = request(tcp, &url).await?;
        return Ok(Response { status, tls: None });
    }
    let verifier = Arc::new(RecordingVerifier::new());
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| HttpError::Tls(format!("server name {:?}: {e}", url.host)))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| HttpError::Tls(io_error(&e)))?;
    let mut tls = TlsFacts {
        chain: verifier.outcome(),
        ..TlsFacts::default()
    };
    if let Some(leaf) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        (tls.expires_at, tls.subject) = certificate_facts(leaf);
    }
    let status = request(stream, &url).await?;
    Ok(Response {
        status,
        tls: Some(tls),
    })
}

/// Sends the GET and reads the status code.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &Url,
) -> Result<u16, HttpError> {
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vigie-agent/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| HttpError::Io(format!("send request: {}", io_error(&e))))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < MAX_HEAD {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| HttpError::Io(format!("read response: {}", io_error(&e))))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&buf)
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(head: &[u8]) -> Result<u16, HttpError> {
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let line = String::from_utf8_lossy(&head[..line_end.min(128)]).into_owned();
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(code) if version.starts_with("HTTP/") && (100..600).contains(&code) => Ok(code),
        _ if line.is_empty() => Err(HttpError::NotHttp(
            "connection closed without an answer".to_owned(),
        )),
        _ => Err(HttpError::NotHttp(line)),
    }
}

/// The leaf's notAfter (RFC 3339) and subject; `None` for what does not parse.
fn certificate_facts(der: &CertificateDer<'_>) -> (Option<String>, Option<String>) {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let expires = jiff::Timestamp::from_second(cert.validity().not_after.timestamp())
                .ok()
                .map(|t| t.to_string());
            (expires, Some(cert.subject().to_string()))
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot parse the server certificate");
            (None, None)
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The machine's trusted roots, read once per process.
fn roots() -> Option<Arc<RootCertStore>> {
    static ROOTS: OnceLock<Option<Arc<RootCertStore>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(errors = ?found.errors, "no trusted root certificates found: HTTPS chains will read as unverified");
                return None;
            }
            Some(Arc::new(store))
        })
        .clone()
}

/// Accepts any certificate (the probe reports, it does not refuse) but records whether the
/// chain verifies. The handshake signature is still checked, so the peer holds the key.
struct RecordingVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    outcome: Mutex<Option<Result<(), String>>>,
}

impl fmt::Debug for RecordingVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingVerifier").finish_non_exhaustive()
    }
}

impl RecordingVerifier {
    fn new() -> Self {
        let provider = provider();
        let webpki = roots().and_then(|roots| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .ok()
        });
        RecordingVerifier {
            webpki,
            algorithms: provider.signature_verification_algorithms,
            outcome: Mutex::new(None),
        }
    }

    fn outcome(&self) -> Option<Result<(), String>> {
        self.outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = match &self.webpki {
            Some(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no trusted root certificates on this machine".to_owned()),
        };
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(tls: bool, host: &str, port: u16, path: &str) -> Url {
        Url {
            tls,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    #[test]
    fn urls() {
        let check = |text: &str, expected: Result<Url, UrlError>| {
            assert_eq!(Url::parse(text), expected, "{text}");
        };
        check("http://127.0.0.1", Ok(url(false, "127.0.0.1", 80, "/")));
        check(
            "HTTPS://nas.local:5001/webman/index.cgi?x=1",
            Ok(url(true, "nas.local", 5001, "/webman/index.cgi?x=1")),
        );
        check("https://[::1]:8443/", Ok(url(true, "::1", 8443, "/")));
        check("https://[::1]", Ok(url(true, "::1", 443, "/")));
        check("http://host?q", Ok(url(false, "host", 80, "/?q")));
        check("ftp://host/", Err(UrlError::Scheme));
        check("http://:80/", Err(UrlError::NoHost));
        check("http://admin:secret@host/", Err(UrlError::NoHost));
        check("http://host:0/", Err(UrlError::Port));
        check("http://host:99999/", Err(UrlError::Port));
        check("http://[::1/", Err(UrlError::NoHost));
    }

    #[test]
    fn host_header_omits_the_default_port() {
        assert_eq!(url(true, "::1", 443, "/").host_header(), "[::1]");
        assert_eq!(url(false, "nas", 5000, "/").host_header(), "nas:5000");
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n").ok(), Some(200));
        assert_eq!(
            parse_status_line(b"HTTP/1.0 401 Unauthorized\r\nX: y").ok(),
            Some(401)
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 503\r\n").ok(), Some(503));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
        assert!(parse_status_line(b"").is_err());
        assert!(parse_status_line(b"HTTP/1.1 abc\r\n").is_err());
        assert!(parse_status_line(&[0xff; 4000]).is_err());
    }

    #[tokio::test]
    async fn plain_http_status_from_a_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let result = probe(&format!("http://127.0.0.1:{port}/status")).await;
        assert!(!result.ok, "{result:?}");
        assert_eq!(result.details["http_status"], "503");
        assert_eq!(result.error, "HTTP status 503");
    }
}
