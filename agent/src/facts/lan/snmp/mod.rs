//! SNMP probe (v2c, or v3 with USM auth/privacy): sysDescr and sysUpTime from every device,
//! then what the device's kind has to say, each MIB decoder a part of this probe: printer
//! supplies (`printer.rs`), UPS battery (`ups.rs`), NAS storage (`nas.rs`), all reading the
//! values of `value.rs`. Numeric OIDs only: Debian ships no MIB files, and a
//! clinic PC has none either. snmp2 has no timeout of its own, so every request gets one.

use std::time::{Duration, Instant};

use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
use snmp2::{AsyncSession, Oid, Value};

pub mod nas;
pub mod printer;
pub mod ups;
pub mod value;

pub use nas::StorageUse;
pub use printer::PrinterSupply;
pub use ups::UpsStatus;
pub use value::{Row, SnmpValue};

use super::target::{SnmpAuth, SnmpPrivacy, SnmpProbe, SnmpVersion};
use super::tcp::host_port;
use super::{DeviceKind, ProbeOutcome, ProbeResult};

/// sysDescr.0
const SYS_DESCR: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
/// sysUpTime.0, in hundredths of a second.
const SYS_UPTIME: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// A walk stops after this many rows: a device with a bigger table is misbehaving.
const MAX_WALK_ROWS: usize = 512;
/// Rows asked per GETBULK.
const BULK_REPETITIONS: u32 = 16;

/// What a device told about itself over SNMP.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnmpFacts {
    pub sys_descr: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub supplies: Vec<PrinterSupply>,
    pub ups: Option<UpsStatus>,
    pub storage: Vec<StorageUse>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("agent answered error-status {0}")]
    Status(u32),
    #[error("invalid OID")]
    Oid,
    /// A v3 agent resynchronised the engine time: send the request again.
    #[error("SNMPv3 engine time not synchronised")]
    Resync,
}

/// Queries one device; the caller bounds the whole probe, `timeout` bounds each request.
pub async fn probe(
    address: &str,
    kind: DeviceKind,
    probe: &SnmpProbe,
    timeout: Duration,
) -> ProbeOutcome {
    let started = Instant::now();
    match query(address, kind, probe, timeout).await {
        Ok(facts) => {
            let version = match probe.version {
                SnmpVersion::V2c => "v2c",
                SnmpVersion::V3 => "v3",
            };
            let result = ProbeResult::ok("snmp", started.elapsed())
                .detail("version", version)
                .detail("port", probe.port);
            ProbeOutcome {
                result,
                snmp: Some(facts),
            }
        }
        Err(e) => ProbeResult::failed("snmp", e.to_string())
            .detail("port", probe.port)
            .into(),
    }
}

async fn query(
    address: &str,
    kind: DeviceKind,
    probe: &SnmpProbe,
    timeout: Duration,
) -> Result<SnmpFacts, SnmpError> {
    let mut client = Client::connect(address, probe, timeout).await?;
    let system = client.get(&[SYS_DESCR, SYS_UPTIME]).await?;
    let mut facts = SnmpFacts {
        sys_descr: system.first().and_then(SnmpValue::as_text),
        // TimeTicks are hundredths of a second.
        uptime_seconds: system.get(1).and_then(SnmpValue::as_u64).map(|t| t / 100),
        ..SnmpFacts::default()
    };
    match kind {
        DeviceKind::Printer => {
            let mut columns = Vec::new();
            for column in printer::COLUMNS {
                columns.push(client.walk(column).await?);
            }
            facts.supplies = printer::supplies(&columns[0], &columns[1], &columns[2]);
        }
        DeviceKind::Ups => {
            let values = client.get(ups::OIDS).await?;
            facts.ups = ups::status(&values);
        }
        DeviceKind::Nas => {
            let mut columns = Vec::new();
            for column in nas::COLUMNS {
                columns.push(client.walk(column).await?);
            }
            facts.storage = nas::storage(&columns);
        }
        _ => {}
    }
    Ok(facts)
}

/// One SNMP session, every request under the same timeout.
struct Client {
    session: AsyncSession,
    timeout: Duration,
}

impl Client {
    async fn connect(
        address: &str,
        probe: &SnmpProbe,
        timeout: Duration,
    ) -> Result<Client, SnmpError> {
        let destination = host_port(address, probe.port);
        let req_id: i32 = rand::random::<i32>() & 0x3fff_ffff;
        let session = match probe.version {
            SnmpVersion::V2c => {
                let community = probe.community.as_deref().unwrap_or_default();
                AsyncSession::new_v2c(destination, community.as_bytes(), req_id)
                    .await
                    .map_err(SnmpError::Socket)?
            }
            SnmpVersion::V3 => {
                let mut session = AsyncSession::new_v3(destination, req_id, security(probe))
                    .await
                    .map_err(SnmpError::Socket)?;
                // Engine discovery: the agent's engine id, boots and time.
                within(timeout, session.init()).await?;
                session
            }
        };
        Ok(Client { session, timeout })
    }

    /// GET of several scalars; a missing one is `Absent`.
    async fn get(&mut self, oids: &[&[u64]]) -> Result<Vec<SnmpValue>, SnmpError> {
        let oids: Vec<Oid<'static>> = oids.iter().map(|o| oid(o)).collect::<Result<_, _>>()?;
        let refs: Vec<&Oid<'_>> = oids.iter().collect();
        // A v3 agent may answer the first request with a report that resynchronises the
        // engine time (`AuthUpdated`): the request is then sent once more.
        for attempt in 0..2 {
            let response = within(self.timeout, self.session.get_many(&refs)).await;
            match response {
                Ok(pdu) => {
                    if pdu.error_status != 0 {
                        return Err(SnmpError::Status(pdu.error_status));
                    }
                    return Ok(pdu
                        .varbinds
                        .map(|(_, v)| SnmpValue::from_value(&v))
                        .collect());
                }
                Err(SnmpError::Resync) if attempt == 0 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SnmpError::Resync)
    }

    /// Every row under `column`, with GETBULK.
    async fn walk(&mut self, column: &[u64]) -> Result<Vec<Row>, SnmpError> {
        let mut rows = Vec::new();
        let mut next = oid(column)?;
        'walk: while rows.len() < MAX_WALK_ROWS {
            let pdu = within(
                self.timeout,
                self.session.getbulk(&[&next], 0, BULK_REPETITIONS),
            )
            .await?;
            if pdu.error_status != 0 {
                return Err(SnmpError::Status(pdu.error_status));
            }
            let mut last = None;
            for (name, value) in pdu.varbinds {
                let Some(arcs) = name.iter().map(Iterator::collect::<Vec<u64>>) else {
                    break 'walk;
                };
                if matches!(value, Value::EndOfMibView) || !arcs.starts_with(column) {
                    break 'walk;
                }
                rows.push((arcs[column.len()..].to_vec(), SnmpValue::from_value(&value)));
                last = Some(arcs);
            }
            match last {
                Some(arcs) => next = oid(&arcs)?,
                None => break,
            }
        }
        Ok(rows)
    }
}

async fn within<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, snmp2::Error>>,
) -> Result<T, SnmpError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(snmp2::Error::AuthUpdated)) => Err(SnmpError::Resync),
        Ok(Err(e)) => Err(SnmpError::Protocol(describe(&e))),
        Err(_) => Err(SnmpError::Timeout(timeout)),
    }
}

/// snmp2's errors are terse enum names; say what they mean for a technician.
fn describe(e: &snmp2::Error) -> String {
    match e {
        snmp2::Error::AuthFailure(kind) => format!("SNMPv3 authentication failed: {kind}"),
        snmp2::Error::CommunityMismatch => "community mismatch".to_owned(),
        snmp2::Error::Receive => {
            "no answer (receive failed: port closed or unreachable)".to_owned()
        }
        snmp2::Error::Send => "cannot send the request".to_owned(),
        other => format!("{other:?}"),
    }
}

fn oid(arcs: &[u64]) -> Result<Oid<'static>, SnmpError> {
    Oid::from(arcs).map_err(|_| SnmpError::Oid)
}

fn security(probe: &SnmpProbe) -> Security {
    let user = probe.user.as_deref().unwrap_or_default();
    let password = probe.auth_password.as_deref().unwrap_or_default();
    let security = Security::new(user.as_bytes(), password.as_bytes());
    let Some(auth) = probe.auth else {
        return security.with_auth(Auth::NoAuthNoPriv);
    };
    let security = security.with_auth_protocol(match auth {
        SnmpAuth::Md5 => AuthProtocol::Md5,
        SnmpAuth::Sha => AuthProtocol::Sha1,
        SnmpAuth::Sha224 => AuthProtocol::Sha224,
        SnmpAuth::Sha256 => AuthProtocol::Sha256,
        SnmpAuth::Sha384 => AuthProtocol::Sha384,
        SnmpAuth::Sha512 => AuthProtocol::Sha512,
    });
    match probe.privacy {
        None => security.with_auth(Auth::AuthNoPriv),
        Some(privacy) => security.with_auth(Auth::AuthPriv {
            cipher: match privacy {
                SnmpPrivacy::Des => Cipher::Des,
                SnmpPrivacy::Aes => Cipher::Aes128,
                SnmpPrivacy::Aes192 => Cipher::Aes192,
                SnmpPrivacy::Aes256 => Cipher::Aes256,
            },
            privacy_password: probe
                .privacy_password
                .as_deref()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_trimmed_and_latin1_tolerant() {
        let t = |bytes: &[u8]| SnmpValue::Text(bytes.to_vec()).as_text();
        assert_eq!(t(b"Black Toner\0\0").as_deref(), Some("Black Toner"));
        assert_eq!(t(b"Tambour \xe9").as_deref(), Some("Tambour é"));
        assert_eq!(SnmpValue::Int(3).as_text(), None);
        assert_eq!(SnmpValue::Int(-2).as_u64(), None);
        assert_eq!(SnmpValue::Unsigned(7).as_i64(), Some(7));
    }

    #[tokio::test]
    async fn a_silent_port_times_out() {
        // A bound UDP socket that never answers: the request must not wait forever.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let probe_config = SnmpProbe {
            port,
            version: SnmpVersion::V2c,
            community: Some("public".to_owned()),
            user: None,
            auth: None,
            auth_password: None,
            privacy: None,
            privacy_password: None,
        };
        let outcome = probe(
            "127.0.0.1",
            DeviceKind::Router,
            &probe_config,
            Duration::from_millis(300),
        )
        .await;
        assert!(!outcome.result.ok);
        assert!(outcome.result.error.contains("no answer"), "{outcome:?}");
    }
}
