//! TCP probe: does the device accept a connection on this port, and how fast.

use std::time::Instant;

use super::ProbeResult;

/// Connects to `address:port` once; the caller bounds the time.
pub async fn probe(address: &str, port: u16) -> ProbeResult {
    let started = Instant::now();
    match tokio::net::TcpStream::connect(host_port(address, port)).await {
        Ok(_stream) => ProbeResult::ok("tcp", started.elapsed()),
        Err(e) => ProbeResult::failed("tcp", io_error(&e)),
    }
}

/// `host:port`, with brackets around an IPv6 literal.
pub fn host_port(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The OS's words for a connection failure, without the "(os error 111)" suffix.
pub fn io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_get_brackets() {
        assert_eq!(host_port("::1", 443), "[::1]:443");
        assert_eq!(host_port("[::1]", 443), "[::1]:443");
        assert_eq!(host_port("127.0.0.1", 9100), "127.0.0.1:9100");
        assert_eq!(host_port("nas.local", 5000), "nas.local:5000");
    }

    #[tokio::test]
    async fn open_and_closed_ports() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let result = probe("127.0.0.1", port).await;
        assert!(result.ok, "{result:?}");
        drop(listener);
        let result = probe("127.0.0.1", port).await;
        assert!(!result.ok);
        assert_eq!(result.error, "connection refused");
    }
}
