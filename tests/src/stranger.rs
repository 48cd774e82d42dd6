//! Clients without a certificate, as an attacker on the agent port would be: TLS connections
//! left idle, TCP connections that never start TLS, `Enroll` bodies announced large and never
//! finished.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::client::GrpcService as _;
use tonic::transport::Channel;

/// A TLS connection to `addr` trusting `ca_pem`, with no client certificate.
pub async fn tls_without_certificate(
    addr: SocketAddr,
    ca_pem: &str,
) -> io::Result<TlsStream<TcpStream>> {
    crate::grpc::crypto();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// A TCP connection from `from` (another loopback address) that never sends a byte.
pub async fn silent_tcp(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Reads (and discards) until the server closes the connection: how long it was held.
pub async fn held_until_closed(mut stream: impl tokio::io::AsyncRead + Unpin) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    start.elapsed()
}

/// A request body that sends `prefix` then `sent` zero bytes, and then never ends.
struct Unfinished {
    chunks: Vec<Bytes>,
}

impl http_body::Body for Unfinished {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        match self.chunks.pop() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            // Never woken again: the client holds the request open.
            None => Poll::Pending,
        }
    }
}

/// Starts `Enroll` with a gRPC length prefix announcing `announced` bytes, sends `sent` of
/// them, and waits for the collector's answer: `Ok(grpc-status)` if it answered, `Err` with
/// the reason if the connection was closed.
pub async fn unfinished_enroll(
    mut channel: Channel,
    announced: u32,
    sent: usize,
) -> Result<String, String> {
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&announced.to_be_bytes());
    let mut chunks = vec![Bytes::from(prefix)];
    let mut left = sent;
    while left > 0 {
        let n = left.min(64 * 1024);
        chunks.push(Bytes::from(vec![0u8; n]));
        left -= n;
    }
    chunks.reverse();
    let request = http::Request::builder()
        .method("POST")
        .uri("https://localhost/vigie.v1.Enrollment/Enroll")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Unfinished { chunks }))
        .map_err(|e| e.to_string())?;
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .map_err(|e| crate::grpc::chain(&e))?;
    let response = channel
        .call(request)
        .await
        .map_err(|e| crate::grpc::chain(&e))?;
    Ok(response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none in the headers)")
        .to_owned())
}

/// Resident memory of a process, from `/proc/PID/status` (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open descriptors of a process.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}
