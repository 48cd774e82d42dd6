//! `Ingest.Report`: validates a batch, stores new reports idempotently under the identity of
//! the client certificate, and answers only after a group-commit flush made them durable.

use std::sync::Arc;

use jiff::Timestamp;
use prost::Message as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use vigie_domain::identity::CertIdentity;
use vigie_proto::v1::ingest_server::Ingest;
use vigie_proto::v1::{RejectedReport, Report, ReportAck, ReportBatch, report};

use super::convert::{fact_from_payload, snapshot_from_proto, timestamp_from_proto};
use super::identity::peer_identity;
use super::{CollectorState, blocking, internal};
use crate::facts::Fact;
use crate::model::{AgentRecord, SystemSnapshot};
use crate::storage::EncodedReport;

#[derive(Debug, Clone)]
pub struct IngestService {
    state: Arc<CollectorState>,
}

impl IngestService {
    pub fn new(state: Arc<CollectorState>) -> Self {
        IngestService { state }
    }
}

/// A report that passed validation.
struct Accepted {
    /// The id exactly as the agent sent it, so the ack matches its outbox key.
    wire_id: String,
    id: Uuid,
    collected_at: Timestamp,
    snapshot: Option<SystemSnapshot>,
    /// What the alert rules will judge.
    fact: Option<Fact>,
    bytes: Vec<u8>,
}

/// Why a report can never be accepted, or `Ok` with what to store.
fn validate(report: Report) -> Result<Accepted, RejectedReport> {
    let reject = |reason: &str| RejectedReport {
        id: report.id.clone(),
        reason: reason.to_owned(),
    };
    let id = match Uuid::parse_str(&report.id) {
        Ok(id) if id.get_version_num() == 7 => id,
        Ok(_) => return Err(reject("id is not a version 7 UUID")),
        Err(_) => return Err(reject("id is not a UUID")),
    };
    let Some(collected_at) = report.collected_at.as_ref() else {
        return Err(reject("collected_at is missing"));
    };
    let Some(collected_at) = timestamp_from_proto(collected_at) else {
        return Err(reject("collected_at is out of range"));
    };
    let Some(payload) = &report.payload else {
        return Err(reject(
            "payload is missing or of a kind this collector does not know",
        ));
    };
    let snapshot = match payload {
        report::Payload::SystemSnapshot(s) => Some(snapshot_from_proto(s)),
        // Stored as received, and as facts for the alert rules.
        _ => None,
    };
    let fact = fact_from_payload(payload);
    Ok(Accepted {
        wire_id: report.id.clone(),
        id,
        collected_at,
        snapshot,
        fact,
        bytes: report.encode_to_vec(),
    })
}

/// Applies what a batch says about its agent to the agent record.
fn note_batch(
    agent: &mut AgentRecord,
    now: Timestamp,
    version: &str,
    dropped_total: Option<u64>,
    latest: Option<&(Timestamp, SystemSnapshot)>,
) {
    agent.last_seen = Some(now);
    if !version.trim().is_empty() {
        agent.agent_version = version.trim().to_owned();
    }
    if let Some(dropped) = dropped_total {
        agent.outbox_dropped_total = dropped;
    }
    if let Some((at, snapshot)) = latest {
        // A backlog may arrive after newer reports: keep the newest snapshot.
        if agent.snapshot_collected_at.is_none_or(|seen| *at >= seen) {
            agent.snapshot_collected_at = Some(*at);
            if !snapshot.hostname.trim().is_empty() {
                agent.hostname = snapshot.hostname.trim().to_owned();
            }
            let os = snapshot.os_label();
            if !os.is_empty() {
                agent.os = os;
            }
            agent.snapshot = Some(snapshot.clone());
        }
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn report(&self, request: Request<ReportBatch>) -> Result<Response<ReportAck>, Status> {
        let (clinic_id, agent_id) = match peer_identity(&request)? {
            CertIdentity::Agent {
                clinic_id,
                agent_id,
            } => (clinic_id, agent_id),
            CertIdentity::Admin => {
                return Err(Status::permission_denied(
                    "the admin certificate cannot send reports",
                ));
            }
        };
        let storage = self.state.storage.clone();
        let id = agent_id.clone();
        let known = blocking(move || storage.agent(&id))
            .await?
            .map_err(internal)?;
        match known {
            Some(agent) if !agent.revoked && agent.clinic_id == clinic_id => {}
            Some(agent) if agent.revoked => {
                tracing::warn!(agent_id = %agent_id, clinic_id = %clinic_id, "report refused: agent revoked");
                return Err(Status::permission_denied(format!(
                    "agent {agent_id} is revoked"
                )));
            }
            _ => {
                tracing::warn!(agent_id = %agent_id, clinic_id = %clinic_id, "report refused: agent unknown");
                return Err(Status::permission_denied(format!(
                    "agent {agent_id} is unknown to this collector (revoked or never enrolled)"
                )));
            }
        }

        let batch = request.into_inner();
        let limit = self.state.config.limits.max_reports_per_batch;
        if batch.reports.len() > limit {
            return Err(Status::invalid_argument(format!(
                "batch has {} reports, the limit is {limit}",
                batch.reports.len()
            )));
        }
        let received = batch.reports.len();
        let mut accepted = Vec::with_capacity(received);
        let mut rejected = Vec::new();
        for report in batch.reports {
            match validate(report) {
                Ok(report) => accepted.push(report),
                Err(rejection) => rejected.push(rejection),
            }
        }
        // Only `vigie-collector-bench` gets here with the switch on (`BenchSwitches::refusal`).
        #[cfg(feature = "bench")]
        if self.state.config.bench.discard_reports {
            // Benchmark only (`[bench] discard_reports`): the same gRPC path, no storage.
            return Ok(Response::new(ReportAck {
                stored_ids: accepted.into_iter().map(|r| r.wire_id).collect(),
                rejected,
            }));
        }
        let latest = accepted
            .iter()
            .filter_map(|r| r.snapshot.clone().map(|s| (r.collected_at, s)))
            .max_by_key(|(at, _)| *at);
        let facts: Vec<(Timestamp, Fact)> = accepted
            .iter_mut()
            .filter_map(|r| r.fact.take().map(|f| (r.collected_at, f)))
            .collect();
        let encoded: Vec<_> = accepted
            .iter_mut()
            .map(|r| EncodedReport {
                id: r.id,
                bytes: std::mem::take(&mut r.bytes),
            })
            .collect();
        let now = Timestamp::now();
        let dropped_total = batch.outbox.as_ref().map(|o| o.dropped_total);
        let version = batch.agent_version;

        let storage = self.state.storage.clone();
        let id = agent_id.clone();
        let outcome = blocking(move || {
            let outcome = storage.store_reports(&id, &encoded)?;
            // Facts are recorded for every tier: the policy decides later what alerts.
            // Recording is idempotent, so a resent report is harmless here too.
            for (at, fact) in &facts {
                storage.record_fact(&id, *at, fact)?;
            }
            storage.update_agent(&id, |agent| {
                note_batch(agent, now, &version, dropped_total, latest.as_ref());
            })?;
            Ok::<_, crate::storage::StorageError>(outcome)
        })
        .await?
        .map_err(internal)?;

        if let Err(error) = self.state.commit.durable().await {
            tracing::error!(agent_id = %agent_id, %error, "batch not acknowledged: flush failed");
            return Err(Status::unavailable(format!(
                "reports could not be made durable: {error}"
            )));
        }
        tracing::info!(
            agent_id = %agent_id,
            clinic_id = %clinic_id,
            received,
            stored = outcome.new,
            duplicates = outcome.duplicates,
            rejected = rejected.len(),
            "batch stored"
        );
        self.state.evaluator.request(&agent_id);
        for r in &rejected {
            tracing::warn!(agent_id = %agent_id, report_id = %r.id, reason = %r.reason, "report rejected");
        }
        Ok(Response::new(ReportAck {
            stored_ids: accepted.into_iter().map(|r| r.wire_id).collect(),
            rejected,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_proto::v1::SystemSnapshot as WireSnapshot;

    fn report(id: &str, at: Option<i64>, snapshot: bool) -> Report {
        Report {
            id: id.to_owned(),
            collected_at: at.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
            payload: snapshot.then(|| {
                report::Payload::SystemSnapshot(WireSnapshot {
                    hostname: "pc".into(),
                    ..WireSnapshot::default()
                })
            }),
        }
    }

    #[test]
    fn validation_table() {
        let v7 = Uuid::now_v7().to_string();
        let v4 = Uuid::new_v4().to_string();
        let check = |r: Report, expected: Option<&str>| {
            let got = validate(r).err().map(|e| e.reason);
            assert_eq!(got.as_deref(), expected);
        };
        check(report(&v7, Some(1_700_000_000), true), None);
        check(report(&v7.to_uppercase(), Some(1), true), None);
        check(report("nope", Some(1), true), Some("id is not a UUID"));
        check(
            report(&v4, Some(1), true),
            Some("id is not a version 7 UUID"),
        );
        check(report(&v7, None, true), Some("collected_at is missing"));
        check(
            report(&v7, Some(i64::MAX), true),
            Some("collected_at is out of range"),
        );
        check(
            report(&v7, Some(1), false),
            Some("payload is missing or of a kind this collector does not know"),
        );
    }

    #[test]
    fn older_snapshot_does_not_replace_newer_one() {
        let mut agent = AgentRecord {
            id: "a".into(),
            clinic_id: "c".into(),
            hostname: "old".into(),
            os: String::new(),
            role: vigie_domain::AgentRole::Server,
            agent_version: String::new(),
            enrolled_at: Timestamp::UNIX_EPOCH,
            last_seen: None,
            revoked: false,
            revoked_at: None,
            outbox_dropped_total: 0,
            snapshot: None,
            snapshot_collected_at: None,
        };
        let snap = |host: &str| SystemSnapshot {
            hostname: host.into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            ..SystemSnapshot::default()
        };
        let t = |s| Timestamp::from_second(s).expect("ts");
        note_batch(
            &mut agent,
            t(100),
            "1.0",
            Some(3),
            Some(&(t(50), snap("new"))),
        );
        note_batch(&mut agent, t(101), "", None, Some(&(t(40), snap("older"))));
        assert_eq!(agent.hostname, "new");
        assert_eq!(agent.os, "Debian GNU/Linux 12");
        assert_eq!(agent.agent_version, "1.0");
        assert_eq!(agent.outbox_dropped_total, 3);
        assert_eq!(agent.last_seen, Some(t(101)));
    }
}
