//! DICOM C-ECHO probe (Verification SOP class, PS3.7 §9.1.5): associate with the calling and
//! called AE titles, send a C-ECHO-RQ, read the C-ECHO-RSP status, release. A refusal says why
//! (A-ASSOCIATE-RJ result, source and reason), because "called AE title not recognized" and
//! "modality switched off" need different technicians' trips.
//!
//! The command sets are a handful of Implicit VR Little Endian elements, written and read here
//! rather than pulling in the whole DICOM object model.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::Error as AssociationError;
use dicom_ul::pdu::{AssociationRJResult, AssociationRJSource, PDataValue, PDataValueType, Pdu};

use super::ProbeResult;
use super::target::DicomProbe;
use super::tcp::{host_port, io_error};

/// Verification SOP class UID.
pub const VERIFICATION_SOP_CLASS: &str = "1.2.840.10008.1.1";
/// CommandField values.
const C_ECHO_RQ: u16 = 0x0030;
const C_ECHO_RSP: u16 = 0x8030;
/// CommandDataSetType: no data set follows.
const NO_DATA_SET: u16 = 0x0101;

#[derive(Debug, thiserror::Error)]
enum EchoError {
    #[error("association rejected ({result}, by the {source_name}): {reason}")]
    Rejected {
        result: &'static str,
        source_name: &'static str,
        reason: String,
    },
    #[error("association accepted but the Verification SOP class was refused")]
    NoPresentationContext,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("association failed: {0}")]
    Association(String),
    #[error("C-ECHO failed: {0}")]
    Echo(String),
    #[error("timed out")]
    Timeout,
}

struct Echo {
    status: u16,
    round_trip: Duration,
}

/// One C-ECHO; `timeout` bounds the whole exchange (a little under the round's own timeout,
/// so a silent peer reads as "timed out" rather than as the round's generic timeout).
///
/// dicom-ul's blocking API on the blocking pool: its `async` feature would turn on tokio's
/// multi-thread scheduler, which the agent never runs, and with it libm (one `pow`), about
/// 300 KiB of RSS (docs/PERFORMANCE.md). The sockets' own timeouts end the thread by the
/// deadline; the wait here answers at the deadline whatever the thread is doing.
pub async fn probe(address: &str, probe: &DicomProbe, timeout: Duration) -> ProbeResult {
    let started = Instant::now();
    let budget = timeout.mul_f32(0.9);
    let deadline = started + budget;
    let (target, config) = (host_port(address, probe.port), probe.clone());
    let echo = tokio::task::spawn_blocking(move || echo(&target, &config, deadline));
    let outcome = match tokio::time::timeout(budget, echo).await {
        Ok(Ok(outcome)) => outcome,
        // A panic stays a panic of the probe's task, as when this ran on the runtime.
        Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(EchoError::Timeout),
    };
    match outcome {
        Ok(echo) => {
            // 0x0000 is Success; anything else is a refusal or failure from the peer.
            let mut result = if echo.status == 0 {
                ProbeResult::ok("dicom", started.elapsed())
            } else {
                ProbeResult::failed("dicom", format!("C-ECHO status 0x{:04X}", echo.status))
            };
            result.latency_ms = Some(super::millis(started.elapsed()));
            result
                .detail("association", "accepted")
                .detail("echo_status", format!("0x{:04X}", echo.status))
                .detail("echo_rtt_ms", super::millis(echo.round_trip))
        }
        Err(e) => {
            let association = match &e {
                EchoError::Rejected { .. } => "rejected",
                EchoError::Timeout => "timed out",
                EchoError::NoPresentationContext | EchoError::Echo(_) => "accepted",
                EchoError::Connect(_) | EchoError::Association(_) => "failed",
            };
            ProbeResult::failed("dicom", e.to_string()).detail("association", association)
        }
    }
    .detail("called_ae", &probe.called_ae)
    .detail("calling_ae", &probe.calling_ae)
}

/// The blocking exchange; every socket operation is bounded by what is left until `deadline`.
fn echo(target: &str, probe: &DicomProbe, deadline: Instant) -> Result<Echo, EchoError> {
    // Resolved here so that a name that does not resolve reads "cannot connect" (dicom-ul
    // reports it as an address conversion error when a connection timeout is set).
    let addresses: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| EchoError::Connect(io_error(&e)))?
        .collect();
    if addresses.is_empty() {
        return Err(EchoError::Connect(
            "could not resolve to any address".to_owned(),
        ));
    }
    let left = remaining(deadline)?;
    let mut association = ClientAssociationOptions::new()
        .calling_ae_title(probe.calling_ae.as_str())
        .called_ae_title(probe.called_ae.as_str())
        .with_abstract_syntax(VERIFICATION_SOP_CLASS)
        .connection_timeout(left)
        .read_timeout(left)
        .write_timeout(left)
        .establish(addresses.as_slice())
        .map_err(association_error)?;
    let context = association
        .presentation_contexts()
        .first()
        .map(|pc| pc.id)
        .ok_or(EchoError::NoPresentationContext)?;
    let message_id: u16 = rand::random::<u16>().max(1);
    let started = Instant::now();
    arm(association.inner_stream(), deadline)?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: echo_request(message_id),
            }],
        })
        .map_err(|e| echo_error("send", &e))?;
    let mut command = Vec::new();
    loop {
        arm(association.inner_stream(), deadline)?;
        match association.receive() {
            Ok(Pdu::PData { data }) => {
                let mut last = false;
                for pdv in data {
                    if pdv.value_type == PDataValueType::Command {
                        last |= pdv.is_last;
                        command.extend_from_slice(&pdv.data);
                    }
                }
                if last {
                    break;
                }
            }
            Ok(Pdu::AbortRQ { source }) => {
                return Err(EchoError::Echo(format!(
                    "peer aborted the association ({source:?})"
                )));
            }
            Ok(other) => {
                return Err(EchoError::Echo(format!(
                    "unexpected {}",
                    other.short_description()
                )));
            }
            Err(e) => return Err(echo_error("receive", &e)),
        }
    }
    let round_trip = started.elapsed();
    let status = echo_status(&command, message_id).map_err(EchoError::Echo)?;
    // A failed release costs nothing to the verdict: the echo already answered.
    let released = arm(association.inner_stream(), deadline)
        .map_err(|e| e.to_string())
        .and_then(|()| association.release().map_err(|e| e.to_string()));
    if let Err(error) = released {
        tracing::debug!(%error, "DICOM release failed");
    }
    Ok(Echo { status, round_trip })
}

/// Time left until `deadline`, or `Timeout` (a socket timeout of zero is an error).
fn remaining(deadline: Instant) -> Result<Duration, EchoError> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(EchoError::Timeout),
    }
}

/// Bounds the next socket operation by the deadline.
fn arm(socket: &TcpStream, deadline: Instant) -> Result<(), EchoError> {
    let left = remaining(deadline)?;
    socket
        .set_read_timeout(Some(left))
        .and_then(|()| socket.set_write_timeout(Some(left)))
        .map_err(|e| EchoError::Echo(format!("socket: {}", io_error(&e))))
}

/// A socket timeout (std reports it as `WouldBlock` on Unix, `TimedOut` on Windows) somewhere
/// in the error's sources: the deadline, which reads "timed out" like the wait in `probe`.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

fn echo_error(step: &str, e: &AssociationError) -> EchoError {
    if timed_out(e) {
        EchoError::Timeout
    } else {
        EchoError::Echo(format!("{step}: {e}"))
    }
}

fn association_error(e: AssociationError) -> EchoError {
    if timed_out(&e) {
        return EchoError::Timeout;
    }
    match e {
        AssociationError::Rejected { association_rj, .. } => EchoError::Rejected {
            result: match association_rj.result {
                AssociationRJResult::Permanent => "permanent",
                AssociationRJResult::Transient => "transient",
            },
            source_name: match association_rj.source {
                AssociationRJSource::ServiceUser(_) => "service user",
                AssociationRJSource::ServiceProviderASCE(_) => "service provider (ACSE)",
                AssociationRJSource::ServiceProviderPresentation(_) => {
                    "service provider (presentation)"
                }
            },
            reason: association_rj.source.to_string(),
        },
        AssociationError::NoAcceptedPresentationContexts { .. } => EchoError::NoPresentationContext,
        AssociationError::Connect { source, .. } => EchoError::Connect(io_error(&source)),
        other => EchoError::Association(error_chain(&other)),
    }
}

/// The error and its sources on one line (dicom-ul's top-level messages are generic).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The C-ECHO-RQ command set.
pub fn echo_request(message_id: u16) -> Vec<u8> {
    let mut uid = VERIFICATION_SOP_CLASS.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0); // UIDs are padded to even length with NUL.
    }
    let mut body = Vec::new();
    element(&mut body, 0x0002, &uid);
    element(&mut body, 0x0100, &C_ECHO_RQ.to_le_bytes());
    element(&mut body, 0x0110, &message_id.to_le_bytes());
    element(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes());
    let mut command = Vec::with_capacity(12 + body.len());
    let group_length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    element(&mut command, 0x0000, &group_length.to_le_bytes());
    command.extend_from_slice(&body);
    command
}

/// One group-0000 element, Implicit VR Little Endian.
fn element(out: &mut Vec<u8>, tag_element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&tag_element.to_le_bytes());
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(value);
}

/// The Status of a C-ECHO-RSP answering `message_id`. Never panics on a malformed answer.
pub fn echo_status(command: &[u8], message_id: u16) -> Result<u16, String> {
    let (mut field, mut responded_to, mut status) = (None, None, None);
    let mut rest = command;
    while rest.len() >= 8 {
        let group = u16::from_le_bytes([rest[0], rest[1]]);
        let elem = u16::from_le_bytes([rest[2], rest[3]]);
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let Some(value) = len.checked_add(8).and_then(|end| rest.get(8..end)) else {
            return Err("truncated command set".to_owned());
        };
        let us = (value.len() == 2).then(|| u16::from_le_bytes([value[0], value[1]]));
        if group == 0 {
            match elem {
                0x0100 => field = us,
                0x0120 => responded_to = us,
                0x0900 => status = us,
                _ => {}
            }
        }
        rest = &rest[8 + value.len()..];
    }
    if field != Some(C_ECHO_RSP) {
        return Err(format!("not a C-ECHO-RSP (command field {field:04X?})"));
    }
    if responded_to.is_some_and(|id| id != message_id) {
        return Err("C-ECHO-RSP answers another message".to_owned());
    }
    status.ok_or_else(|| "C-ECHO-RSP without a status".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_is_the_standard_command_set() {
        let rq = echo_request(7);
        // Group length element: tag (0000,0000), length 4, then the remaining byte count.
        assert_eq!(&rq[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let remaining = u32::from_le_bytes([rq[8], rq[9], rq[10], rq[11]]) as usize;
        assert_eq!(remaining, rq.len() - 12);
        // UID 17 chars + NUL pad, three US elements.
        assert_eq!(remaining, (8 + 18) + 3 * (8 + 2));
    }

    fn rsp(field: u16, responded_to: u16, status: Option<u16>) -> Vec<u8> {
        let mut out = Vec::new();
        element(&mut out, 0x0100, &field.to_le_bytes());
        element(&mut out, 0x0120, &responded_to.to_le_bytes());
        element(&mut out, 0x0800, &NO_DATA_SET.to_le_bytes());
        if let Some(s) = status {
            element(&mut out, 0x0900, &s.to_le_bytes());
        }
        out
    }

    #[test]
    fn response_status_is_read_and_checked() {
        assert_eq!(echo_status(&rsp(C_ECHO_RSP, 7, Some(0)), 7), Ok(0));
        assert_eq!(
            echo_status(&rsp(C_ECHO_RSP, 7, Some(0x0122)), 7),
            Ok(0x0122)
        );
        assert!(echo_status(&rsp(C_ECHO_RSP, 8, Some(0)), 7).is_err());
        assert!(echo_status(&rsp(0x8001, 7, Some(0)), 7).is_err());
        assert!(echo_status(&rsp(C_ECHO_RSP, 7, None), 7).is_err());
        let full = rsp(C_ECHO_RSP, 7, Some(0));
        for cut in 0..full.len() {
            let _ = echo_status(&full[..cut], 7); // never panics
        }
        assert!(echo_status(&[0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff], 7).is_err());
    }

    #[tokio::test]
    async fn a_closed_port_fails_to_connect() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind")
            .port();
        let config = DicomProbe {
            port,
            calling_ae: "VIGIE".to_owned(),
            called_ae: "PACS".to_owned(),
        };
        let result = probe("127.0.0.1", &config, Duration::from_secs(2)).await;
        assert!(!result.ok);
        assert_eq!(result.details["association"], "failed", "{result:?}");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_by_the_deadline() {
        // Accepts the connection (the kernel's backlog does) and never answers the A-ASSOCIATE-RQ.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let config = DicomProbe {
            port,
            calling_ae: "VIGIE".to_owned(),
            called_ae: "PACS".to_owned(),
        };
        let started = Instant::now();
        let result = probe("127.0.0.1", &config, Duration::from_millis(500)).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{result:?}");
        assert!(!result.ok);
        assert_eq!(result.error, "timed out", "{result:?}");
        assert_eq!(result.details["association"], "timed out", "{result:?}");
        drop(listener);
    }

    #[test]
    fn the_sockets_own_timeouts_end_the_blocking_exchange() {
        // Without the wait in `probe`: the socket timeouts alone stop the thread, as "timed out".
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let config = DicomProbe {
            port,
            calling_ae: "VIGIE".to_owned(),
            called_ae: "PACS".to_owned(),
        };
        let started = Instant::now();
        let outcome = echo(
            &format!("127.0.0.1:{port}"),
            &config,
            started + Duration::from_millis(300),
        );
        assert!(
            matches!(outcome, Err(EchoError::Timeout)),
            "{:?}",
            outcome.err()
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
