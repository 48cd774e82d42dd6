//! ICMP echo probe. On Linux an unprivileged datagram ICMP socket (allowed when the agent's
//! group is in `net.ipv4.ping_group_range`), else a raw socket (root or `CAP_NET_RAW`), else a
//! clear error. On Windows, `ping.exe`: the ICMP API is only reachable through `unsafe` FFI.

use std::net::IpAddr;
use std::time::Duration;

use super::ProbeResult;

/// Echoes `address` once; the caller bounds the time (`timeout` is for `ping.exe`).
pub async fn probe(address: &str, timeout: Duration) -> ProbeResult {
    let ip = match resolve(address).await {
        Ok(ip) => ip,
        Err(e) => return ProbeResult::failed("icmp", e),
    };
    match platform::echo(ip, timeout).await {
        Ok(rtt) => ProbeResult::ok("icmp", rtt),
        Err(e) => ProbeResult::failed("icmp", e.to_string()),
    }
}

async fn resolve(address: &str) -> Result<IpAddr, String> {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return Ok(ip);
    }
    match tokio::net::lookup_host((bare, 0)).await {
        Ok(mut addrs) => addrs
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| format!("{address} has no address")),
        Err(e) => Err(format!("cannot resolve {address}: {e}")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IcmpError {
    #[error(
        "ICMP not permitted: unprivileged ICMP is off (net.ipv4.ping_group_range = {range}) and the agent has no CAP_NET_RAW"
    )]
    NotPermitted { range: String },
    #[error("cannot open an ICMP socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot send the echo request: {0}")]
    Send(std::io::Error),
    #[error("cannot receive the echo reply: {0}")]
    Receive(std::io::Error),
    #[error("ping failed: {0}")]
    Ping(String),
}

/// ICMP echo request: type, code, checksum, identifier, sequence, payload.
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(payload);
    // ICMPv6's checksum covers a pseudo-header only the kernel knows; it fills it in.
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `packet` is the reply to our request. A raw IPv4 socket hands over the IP header
/// too, and every ICMP packet of the host (our own request included on loopback); a datagram
/// socket only ours, with the identifier rewritten by the kernel.
pub fn is_reply(packet: &[u8], v6: bool, raw: bool, id: u16, seq: u16, payload: &[u8]) -> bool {
    let icmp = if raw && !v6 {
        let header = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        packet.get(header..).unwrap_or_default()
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    icmp.len() >= 8 + payload.len()
        && icmp[0] == reply_type
        && (!raw || icmp[4..6] == id.to_be_bytes())
        && icmp[6..8] == seq.to_be_bytes()
        && &icmp[8..8 + payload.len()] == payload
}

#[cfg(unix)]
mod platform {
    use std::net::{IpAddr, SocketAddr};
    use std::time::{Duration, Instant};

    use socket2::{Domain, Protocol, Socket, Type};

    use super::{IcmpError, echo_request, is_reply};

    const PAYLOAD: &[u8] = b"vigie-agent-echo";

    pub async fn echo(ip: IpAddr, _timeout: Duration) -> Result<Duration, IcmpError> {
        let v6 = ip.is_ipv6();
        let (socket, raw) = open(v6)?;
        let socket = tokio::net::UdpSocket::from_std(socket).map_err(IcmpError::Socket)?;
        let id: u16 = rand::random();
        let seq: u16 = rand::random();
        let request = echo_request(v6, id, seq, PAYLOAD);
        let started = Instant::now();
        socket
            .send_to(&request, SocketAddr::new(ip, 0))
            .await
            .map_err(IcmpError::Send)?;
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = socket
                .recv_from(&mut buf)
                .await
                .map_err(IcmpError::Receive)?;
            if from.ip() == ip && is_reply(&buf[..n], v6, raw, id, seq, PAYLOAD) {
                return Ok(started.elapsed());
            }
        }
    }

    /// A datagram ICMP socket, or a raw one when that is refused; `true` when raw.
    fn open(v6: bool) -> Result<(std::net::UdpSocket, bool), IcmpError> {
        let (domain, protocol) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let denied = |e: &std::io::Error| {
            matches!(e.kind(), std::io::ErrorKind::PermissionDenied) || e.raw_os_error() == Some(1) // EPERM
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(s) => (s, false),
            Err(e) if denied(&e) => match Socket::new(domain, Type::RAW, Some(protocol)) {
                Ok(s) => (s, true),
                Err(e) if denied(&e) => {
                    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
                        .unwrap_or_else(|_| "unknown".to_owned());
                    return Err(IcmpError::NotPermitted { range });
                }
                Err(e) => return Err(IcmpError::Socket(e)),
            },
            Err(e) => return Err(IcmpError::Socket(e)),
        };
        socket.set_nonblocking(true).map_err(IcmpError::Socket)?;
        Ok((socket.into(), raw))
    }
}

#[cfg(windows)]
mod platform {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::IcmpError;
    use crate::command::ExternalCommand;

    pub async fn echo(ip: IpAddr, timeout: Duration) -> Result<Duration, IcmpError> {
        let wait_ms = timeout.as_millis().clamp(100, 60_000).to_string();
        let ping = ExternalCommand::new("ping")
            .args(["-n", "1", "-w", wait_ms.as_str(), ip.to_string().as_str()])
            .timeout(timeout + Duration::from_secs(2));
        let output = tokio::task::spawn_blocking(move || ping.run())
            .await
            .map_err(|e| IcmpError::Ping(format!("ping task failed: {e}")))?
            .map_err(|e| IcmpError::Ping(e.to_string()))?;
        super::parse_windows_ping(&output.stdout_text())
            .ok_or_else(|| IcmpError::Ping("no echo reply".to_owned()))
    }
}

/// The round trip of a `ping -n 1` reply line, in any Windows language: the reply is the line
/// with `TTL=`, and its time the `=Nms` or `<1ms` token (`temps=3ms`, `Zeit<1ms`).
#[cfg_attr(not(windows), allow(dead_code))]
pub fn parse_windows_ping(output: &str) -> Option<Duration> {
    let line = output.lines().find(|l| l.contains("TTL="))?;
    line.split_whitespace().find_map(|token| {
        let value = token.strip_suffix("ms")?;
        let (_, number) = value.rsplit_once(['=', '<'])?;
        number.trim().parse::<u64>().ok().map(Duration::from_millis)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_a_known_echo_request() {
        // type 8, id 0x1234, seq 1, no payload: checksum 0xe5ca.
        let packet = echo_request(false, 0x1234, 1, b"");
        assert_eq!(&packet[2..4], &[0xe5, 0xca]);
        assert_eq!(
            checksum(&packet),
            0,
            "a packet with its checksum sums to zero"
        );
    }

    #[test]
    fn replies_are_matched_on_type_sequence_and_payload() {
        let mut reply = echo_request(false, 7, 9, b"abc");
        reply[0] = 0;
        assert!(
            is_reply(&reply, false, false, 999, 9, b"abc"),
            "dgram: the kernel owns the id"
        );
        assert!(!is_reply(&reply, false, false, 7, 10, b"abc"));
        assert!(!is_reply(&reply[..9], false, false, 7, 9, b"abc"));
        let request = echo_request(false, 7, 9, b"abc");
        assert!(
            !is_reply(&request, false, false, 7, 9, b"abc"),
            "our own request"
        );
        let mut with_ip = vec![0x45; 20];
        with_ip.extend_from_slice(&reply);
        assert!(is_reply(&with_ip, false, true, 7, 9, b"abc"));
        assert!(
            !is_reply(&with_ip, false, true, 8, 9, b"abc"),
            "raw: someone else's id"
        );
        assert!(
            !is_reply(&[0x4f], false, true, 7, 9, b"abc"),
            "truncated never panics"
        );
        let mut v6 = echo_request(true, 7, 9, b"abc");
        v6[0] = 129;
        assert!(is_reply(&v6, true, false, 7, 9, b"abc"));
    }

    #[test]
    fn windows_ping_output_in_english_and_french() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(
                parse_windows_ping(text),
                expected.map(Duration::from_millis),
                "{text}"
            );
        };
        check(
            "Reply from 192.168.1.1: bytes=32 time=3ms TTL=64\r\n",
            Some(3),
        );
        check(
            "Réponse de 192.168.1.1 : octets=32 temps<1ms TTL=64",
            Some(1),
        );
        check("Antwort von 10.0.0.1: Bytes=32 Zeit=12ms TTL=255", Some(12));
        check("Request timed out.", None);
        check(
            "Reply from 192.168.1.254: Destination host unreachable.",
            None,
        );
    }

    #[tokio::test]
    async fn loopback_answers() {
        // The tests run as root (or with ping_group_range open): one socket kind must work.
        let result = probe("127.0.0.1", Duration::from_secs(2)).await;
        assert!(result.ok, "{result:?}");
        assert!(result.latency_ms.is_some());
    }
}
