//! `Ingest.Report`: validates a batch, stores every report as the bytes received (so one of a
//! kind this collector does not know is kept whole, acknowledged, counted, and interpreted after
//! an upgrade), and answers only after a group-commit flush made the batch durable.
//!
//! Durable at the acknowledgement: the reports, their count, the agent record (contact,
//! version, outbox health, clock, newest snapshot) and a `facts_pending` marker naming the
//! reports that carry facts. The facts themselves (backup runs, declared jobs, updates,
//! antivirus, software, LAN devices) are recorded just after the ack by the [`FactRecorder`],
//! in arrival order, flushed by a later group commit, and only then is the marker removed; a
//! crash in between loses nothing: [`interpret_stored`] records them again at start from the
//! stored reports (recording a fact is idempotent).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use prost::Message as _;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use vigie_domain::identity::CertIdentity;
use vigie_proto::received::ingest_server::Ingest;
use vigie_proto::v1::{
    OutboxStatus, ReceivedBatch, RejectedReport, Report, ReportAck, ReportHeader,
    SystemSnapshot as WireSnapshot, report,
};

use super::convert::{
    fact_from_payload, outbox_health_from_proto, snapshot_from_proto, timestamp_from_proto,
};
use super::identity::peer_identity;
use super::{CollectorState, blocking, internal, wire};
use crate::agent_clock::{ClockReading, trusted_time};
use crate::alerts::evaluator::Evaluator;
use crate::facts::Fact;
use crate::group_commit::{DurabilityError, GroupCommit};
use crate::model::{AgentRecord, SystemSnapshot};
use crate::storage::{
    BatchInput, DeferredFacts, EncodedReport, Storage, StorageError, StoreOutcome,
};

/// Acknowledged batches whose facts wait for the recorder: beyond this, the ingest waits
/// (backpressure) rather than holding an unbounded backlog in memory.
const FACT_QUEUE: usize = 4096;

/// Jobs the recorder takes at once (one flush covers them all).
const FACT_ROUND: usize = 256;

#[derive(Debug, Clone)]
pub struct IngestService {
    state: Arc<CollectorState>,
    storer: BatchStorer,
    facts: FactRecorder,
}

impl IngestService {
    /// Starts the batch storer and the fact recorder; they stop when the service is dropped.
    pub fn new(state: Arc<CollectorState>) -> Self {
        let storer = BatchStorer::spawn(state.storage.clone(), state.commit.clone());
        let facts = FactRecorder::spawn(
            state.storage.clone(),
            state.commit.clone(),
            state.evaluator.clone(),
        );
        IngestService {
            state,
            storer,
            facts,
        }
    }
}

/// Batches waiting for the storer: beyond this, the ingest waits (backpressure).
const STORE_QUEUE: usize = 1024;

/// Batches the storer takes at once (one sled transaction holds them all).
const STORE_GROUP: usize = 64;

/// One batch for the storer.
struct StoreJob {
    agent_id: String,
    clinic_id: String,
    received_at: Timestamp,
    encoded: Vec<EncodedReport>,
    /// Reports whose facts are recorded after the ack (the `facts_pending` marker names them).
    fact_ids: Vec<Uuid>,
    facts: Vec<(Timestamp, Fact)>,
    version: String,
    config_version: u64,
    outbox: Option<OutboxStatus>,
    clock: Option<ClockReading>,
    latest: Option<(Timestamp, SystemSnapshot)>,
}

/// Where the storer answers a job.
type StoreAnswer = tokio::sync::oneshot::Sender<Result<Stored, IngestError>>;

/// A stored batch: what happened, its facts to record, and what the job carried, handed back
/// to be freed on the thread that allocated it (glibc frees another thread's memory through
/// that arena's lock).
struct Stored {
    outcome: StoreOutcome,
    facts: Option<FactJob>,
    leftovers: (Vec<EncodedReport>, Option<(Timestamp, SystemSnapshot)>),
}

/// Stores batches on one thread, every batch queued meanwhile in one storage call: a sled
/// transaction writes out sled's I/O buffer twice whatever it holds (each write a wake-up of
/// sled's whole I/O pool), so one transaction per batch was most of the durable path's cost.
#[derive(Debug, Clone)]
struct BatchStorer {
    queue: tokio::sync::mpsc::Sender<(StoreJob, StoreAnswer)>,
}

impl BatchStorer {
    fn spawn(storage: Storage, commit: GroupCommit) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<(StoreJob, StoreAnswer)>(STORE_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("vigie-storer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = Vec::with_capacity(STORE_GROUP);
                    jobs.push(first);
                    while jobs.len() < STORE_GROUP {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    // A panic answers this group's batches with an error (their senders drop),
                    // never the later ones.
                    let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        store_group(&storage, &commit, jobs)
                    }));
                    if stored.is_err() {
                        tracing::error!("storing a group of batches panicked: not acknowledged");
                    }
                }
            });
        if let Err(error) = spawned {
            // Every batch is then refused with "storer stopped": visible, never silent.
            tracing::error!(%error, "cannot start the batch storer thread");
        }
        BatchStorer { queue }
    }

    async fn store(&self, job: StoreJob) -> Result<Stored, IngestError> {
        let (answer, rx) = tokio::sync::oneshot::channel();
        let stopped = || {
            IngestError::Refused(Status::unavailable(
                "the collector could not store the batch (its storing thread failed or stopped); \
                 keep the reports and send them again",
            ))
        };
        self.queue
            .send((job, answer))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// The identity and durability checks of each batch, then one storage call for those that
/// passed; every job is answered.
fn store_group(storage: &Storage, commit: &GroupCommit, jobs: Vec<(StoreJob, StoreAnswer)>) {
    let mut admitted = Vec::with_capacity(jobs.len());
    for (job, answer) in jobs {
        let checked = check_agent(storage, &job.agent_id, &job.clinic_id).and_then(|()| {
            // After a failed flush nothing written now could be acknowledged honestly.
            commit.check().map_err(|e| not_durable(&job.agent_id, &e))
        });
        match checked {
            Ok(()) => admitted.push((job, answer)),
            Err(status) => {
                let _ = answer.send(Err(IngestError::Refused(status)));
            }
        }
    }
    let results = {
        let notes: Vec<BatchNote<'_>> = admitted
            .iter()
            .map(|(job, _)| BatchNote {
                now: job.received_at,
                version: &job.version,
                config_version: job.config_version,
                outbox: job.outbox.as_ref(),
                clock: job.clock,
                latest: job.latest.as_ref(),
            })
            .collect();
        let apply: Vec<_> = notes
            .iter()
            .map(|note| move |agent: &mut AgentRecord| note_batch(agent, note))
            .collect();
        let inputs: Vec<BatchInput<'_>> = admitted
            .iter()
            .zip(&apply)
            .map(|((job, _), apply)| BatchInput {
                agent_id: &job.agent_id,
                received_at: job.received_at,
                reports: &job.encoded,
                // The facts are recorded after the ack; the marker makes them durable meanwhile.
                deferred: Some(DeferredFacts {
                    clock: job.clock.as_ref(),
                    ids: &job.fact_ids,
                }),
                note: apply,
            })
            .collect();
        storage.store_batches(&inputs)
    };
    for ((job, answer), result) in admitted.into_iter().zip(results) {
        let stored = result
            .map_err(IngestError::Storage)
            .map(|(outcome, marker)| Stored {
                outcome,
                facts: marker.map(|marker| FactJob {
                    agent_id: job.agent_id,
                    marker,
                    facts: job.facts,
                }),
                leftovers: (job.encoded, job.latest),
            });
        let _ = answer.send(stored);
    }
}

/// The facts of one acknowledged batch, to record.
struct FactJob {
    agent_id: String,
    /// Its `facts_pending` marker, removed once the facts are flushed.
    marker: [u8; 32],
    facts: Vec<(Timestamp, Fact)>,
}

/// Records acknowledged batches' facts off the acknowledgement path, in arrival order, then
/// asks the evaluator to look at their agents.
#[derive(Debug, Clone)]
struct FactRecorder {
    queue: tokio::sync::mpsc::Sender<FactJob>,
}

impl FactRecorder {
    fn spawn(storage: Storage, commit: GroupCommit, evaluator: Evaluator) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<FactJob>(FACT_QUEUE);
        tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(FACT_ROUND);
            while rx.recv_many(&mut jobs, FACT_ROUND).await > 0 {
                let round = std::mem::take(&mut jobs);
                let store = storage.clone();
                let recorded = blocking(move || {
                    let mut markers = Vec::with_capacity(round.len());
                    let mut agents = BTreeSet::new();
                    // One call per agent with all its batches of the round, in arrival order, so
                    // that what they repeat is written once.
                    for jobs in by_agent(&round) {
                        let agent_id = &jobs[0].agent_id;
                        let facts = jobs.iter().flat_map(|job| job.facts.iter().map(|(at, fact)| (*at, fact)));
                        match store.record_facts(agent_id, facts) {
                            Ok(()) => markers.extend(jobs.iter().map(|job| job.marker)),
                            // Their markers stay: the facts are recorded again at the next start.
                            Err(error) => {
                                tracing::error!(agent_id = %agent_id, batches = jobs.len(), %error, "facts of acknowledged batches not recorded");
                                if error.is_io_failure() {
                                    return Err(error);
                                }
                            }
                        }
                        agents.insert(agent_id.clone());
                    }
                    Ok((markers, agents))
                })
                .await;
                let (markers, agents) = match recorded {
                    Ok(Ok(done)) => done,
                    Ok(Err(error)) => {
                        commit.declare_lost(error.to_string());
                        continue;
                    }
                    Err(status) => {
                        tracing::error!(%status, "fact recorder task failed");
                        continue;
                    }
                };
                for agent in &agents {
                    evaluator.request(agent);
                }
                // The markers go only once what they stand for is on disk.
                if commit.durable().await.is_ok() {
                    let store = storage.clone();
                    if let Ok(Err(error)) = blocking(move || store.facts_recorded(&markers)).await {
                        tracing::warn!(%error, "facts_pending markers not removed (recorded again at start)");
                    }
                }
            }
        });
        FactRecorder { queue }
    }

    /// Queues a batch's facts; waits only when the recorder is [`FACT_QUEUE`] batches behind.
    async fn record(&self, job: FactJob) {
        if self.queue.send(job).await.is_err() {
            // Stopping: the marker stays and the facts are recorded at the next start.
            tracing::warn!("fact recorder stopped: facts recorded at the next start");
        }
    }
}

/// A round's jobs grouped by agent, each group in arrival order, groups in order of first
/// arrival.
fn by_agent(round: &[FactJob]) -> Vec<Vec<&FactJob>> {
    let mut groups: Vec<Vec<&FactJob>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for job in round {
        let i = *index.entry(job.agent_id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(job);
    }
    groups
}

/// A report that passed validation.
struct Received {
    /// The id exactly as the agent sent it, so the ack matches its outbox key.
    wire_id: String,
    id: Uuid,
    collected_at: Timestamp,
    /// What this collector understood of it; `None` for a payload kind it does not know.
    meaning: Option<Meaning>,
    bytes: Vec<u8>,
}

/// What an understood report says.
struct Meaning {
    /// As received: only a batch's newest snapshot is converted (`at_trusted_times`).
    snapshot: Option<WireSnapshot>,
    /// What the alert rules will judge.
    fact: Option<Fact>,
}

/// Why a batch was not stored: refused (identity, durability lost) or a storage error.
enum IngestError {
    Refused(Status),
    Storage(StorageError),
}

impl From<StorageError> for IngestError {
    fn from(error: StorageError) -> Self {
        IngestError::Storage(error)
    }
}

/// The agent of the certificate must be known to this collector, in that clinic, and not
/// revoked: checked on every call (revocation takes effect at once).
fn check_agent(storage: &Storage, agent_id: &str, clinic_id: &str) -> Result<(), Status> {
    match storage.agent_identity(agent_id).map_err(internal)? {
        Some(agent) if !agent.revoked && agent.clinic_id == clinic_id => Ok(()),
        Some(agent) if agent.revoked => {
            tracing::warn!(agent_id = %agent_id, clinic_id = %clinic_id, "report refused: agent revoked");
            Err(Status::permission_denied(format!(
                "agent {agent_id} is revoked"
            )))
        }
        _ => {
            tracing::warn!(agent_id = %agent_id, clinic_id = %clinic_id, "report refused: agent unknown");
            Err(Status::permission_denied(format!(
                "agent {agent_id} is unknown to this collector (revoked or never enrolled)"
            )))
        }
    }
}

/// The answer when reports cannot be made durable: `Unavailable`, so the agent keeps them in
/// its outbox and sends them again later, to a restarted collector.
fn not_durable(agent_id: &str, error: &DurabilityError) -> Status {
    tracing::error!(agent_id, %error, "batch not acknowledged: storage is not durable");
    Status::unavailable(format!(
        "the collector cannot store reports durably and is restarting; keep them and send them \
         again ({error})"
    ))
}

/// Top-level fields of `vigie.v1.Report` this collector knows: id, collected_at, payloads.
fn known_report_field(number: u32) -> bool {
    matches!(number, 1 | 2 | 10..=16)
}

/// Why a report can never be accepted, or what to store and record.
fn read_report(bytes: Vec<u8>) -> Result<Received, RejectedReport> {
    let header = ReportHeader::decode(bytes.as_slice()).map_err(|e| RejectedReport {
        id: String::new(),
        reason: format!("not a Report: {e}"),
    })?;
    let reject = |reason: String| RejectedReport {
        id: header.id.clone(),
        reason,
    };
    let id = match Uuid::parse_str(&header.id) {
        Ok(id) if id.get_version_num() == 7 => id,
        Ok(_) => return Err(reject("id is not a version 7 UUID".into())),
        Err(_) => return Err(reject("id is not a UUID".into())),
    };
    let Some(collected_at) = header.collected_at.as_ref() else {
        return Err(reject("collected_at is missing".into()));
    };
    let Some(collected_at) = timestamp_from_proto(collected_at) else {
        return Err(reject("collected_at is out of range".into()));
    };
    let report =
        Report::decode(bytes.as_slice()).map_err(|e| reject(format!("malformed report: {e}")))?;
    let meaning = match report.payload {
        Some(payload) => Some(Meaning {
            fact: fact_from_payload(&payload),
            snapshot: match payload {
                report::Payload::SystemSnapshot(s) => Some(s),
                _ => None,
            },
        }),
        None => {
            let fields = wire::field_numbers(&bytes).unwrap_or_default();
            if !fields.iter().any(|n| !known_report_field(*n)) {
                return Err(reject("payload is missing".into()));
            }
            // A kind added by a later protocol version: kept whole for an upgraded collector.
            None
        }
    };
    Ok(Received {
        wire_id: header.id,
        id,
        collected_at,
        meaning,
        bytes,
    })
}

/// What a batch says about its agent, applied to the agent record.
struct BatchNote<'a> {
    now: Timestamp,
    version: &'a str,
    /// The central configuration version the agent runs (`ReportBatch.config_version`).
    config_version: u64,
    outbox: Option<&'a OutboxStatus>,
    clock: Option<ClockReading>,
    /// The newest snapshot, by trusted time.
    latest: Option<&'a (Timestamp, SystemSnapshot)>,
}

fn note_batch(agent: &mut AgentRecord, note: &BatchNote<'_>) {
    agent.last_seen = Some(agent.last_seen.map_or(note.now, |seen| seen.max(note.now)));
    if !note.version.trim().is_empty() {
        agent.agent_version = crate::limits::text(note.version.trim(), crate::limits::LABEL_BYTES);
    }
    agent.config.running_version = note.config_version;
    if let Some(outbox) = note.outbox {
        agent.outbox_dropped_total = outbox.dropped_total;
        let health = outbox_health_from_proto(outbox);
        if health != agent.outbox_health {
            if health.quarantined_total > agent.outbox_health.quarantined_total {
                tracing::warn!(
                    agent_id = %agent.id,
                    quarantined = health.quarantined,
                    quarantined_total = health.quarantined_total,
                    reason = %health.last_quarantine_reason,
                    "agent quarantined reports refused for good"
                );
            }
            if health.write_failures_total > agent.outbox_health.write_failures_total {
                tracing::warn!(
                    agent_id = %agent.id,
                    write_failures_total = health.write_failures_total,
                    error = %health.last_write_error,
                    "agent outbox writes failed"
                );
            }
            agent.outbox_health = health;
        }
    }
    if let Some(clock) = note.clock
        && agent
            .clock
            .is_none_or(|c| c.measured_at <= clock.measured_at)
    {
        agent.clock = Some(clock);
    }
    if let Some((at, snapshot)) = note.latest {
        note_snapshot(agent, *at, snapshot);
    }
}

/// Keeps the newest snapshot: a backlog may arrive after newer reports.
fn note_snapshot(agent: &mut AgentRecord, at: Timestamp, snapshot: &SystemSnapshot) {
    if agent.snapshot_collected_at.is_none_or(|seen| at >= seen) {
        agent.snapshot_collected_at = Some(at);
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

/// What understood reports say, at their trusted times.
struct Trusted {
    /// The newest snapshot.
    latest: Option<(Timestamp, SystemSnapshot)>,
    /// The facts to record, with the times the agent's clock stamped inside them corrected.
    facts: Vec<(Timestamp, Fact)>,
}

fn at_trusted_times(
    received_at: Timestamp,
    clock: Option<&ClockReading>,
    reports: impl IntoIterator<Item = (Timestamp, Meaning)>,
) -> Trusted {
    let mut latest: Option<(Timestamp, WireSnapshot)> = None;
    let mut facts = Vec::new();
    for (collected_at, meaning) in reports {
        let at = trusted_time(collected_at, received_at, clock);
        if let Some(snapshot) = meaning.snapshot
            && latest.as_ref().is_none_or(|(seen, _)| at >= *seen)
        {
            latest = Some((at, snapshot));
        }
        if let Some(mut fact) = meaning.fact {
            fact.correct_agent_times(at.duration_since(collected_at), received_at);
            facts.push((at, fact));
        }
    }
    Trusted {
        latest: latest.map(|(at, snapshot)| (at, snapshot_from_proto(&snapshot))),
        facts,
    }
}

/// Records facts for every tier (the policy decides later what alerts). Idempotent: a resent
/// report is harmless, which is also why a crash before the ack loses nothing.
fn record_facts(
    storage: &Storage,
    agent_id: &str,
    facts: &[(Timestamp, Fact)],
) -> Result<(), StorageError> {
    storage.record_facts(agent_id, facts.iter().map(|(at, fact)| (*at, fact)))
}

/// Interprets the stored reports that an older version of this collector could not (run at
/// start, before serving): their facts are recorded at the trusted times their arrival allows.
/// Returns how many were interpreted now.
pub fn interpret_stored(storage: &Storage) -> Result<usize, StorageError> {
    replay_pending_facts(storage)?;
    let mut interpreted = 0;
    loop {
        let pending = storage.uninterpreted_reports(256)?;
        let mut progressed = false;
        for stored in &pending {
            let Ok(received) = read_report(stored.report.bytes.clone()) else {
                continue;
            };
            let Some(meaning) = received.meaning else {
                continue;
            };
            // Without the batch's clock reading, its arrival bounds it.
            let received_at = stored.report.received_at.unwrap_or_else(Timestamp::now);
            let Trusted { latest, facts } =
                at_trusted_times(received_at, None, [(received.collected_at, meaning)]);
            record_facts(storage, &stored.agent_id, &facts)?;
            if let Some((at, snapshot)) = latest {
                storage.update_agent(&stored.agent_id, |agent| {
                    note_snapshot(agent, at, &snapshot)
                })?;
            }
            storage.mark_interpreted(&stored.agent_id, &stored.id)?;
            interpreted += 1;
            progressed = true;
        }
        if pending.len() < 256 || !progressed {
            return Ok(interpreted);
        }
    }
}

/// Records the facts of batches acknowledged before a crash whose facts were not flushed yet
/// (their `facts_pending` markers are still there), from the stored reports. Run at start.
pub fn replay_pending_facts(storage: &Storage) -> Result<usize, StorageError> {
    let mut replayed = 0;
    loop {
        let pending = storage.pending_facts(FACT_ROUND)?;
        if pending.is_empty() {
            break;
        }
        for batch in &pending {
            let mut meanings = Vec::with_capacity(batch.ids.len());
            for id in &batch.ids {
                // Gone (retention) or unreadable: nothing to record for it.
                let Some(stored) = storage.report(&batch.agent_id, id)? else {
                    continue;
                };
                if let Ok(Received {
                    collected_at,
                    meaning: Some(meaning),
                    ..
                }) = read_report(stored.bytes)
                {
                    meanings.push((collected_at, meaning));
                }
            }
            let Trusted { facts, .. } =
                at_trusted_times(batch.received_at, batch.clock.as_ref(), meanings);
            record_facts(storage, &batch.agent_id, &facts)?;
        }
        storage.flush_durably()?;
        let keys: Vec<[u8; 32]> = pending.iter().map(|p| p.key).collect();
        storage.facts_recorded(&keys)?;
        replayed += pending.len();
    }
    if replayed > 0 {
        tracing::info!(
            batches = replayed,
            "facts of batches acknowledged before a stop recorded again"
        );
        storage.flush_durably()?;
    }
    Ok(replayed)
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn report(&self, request: Request<ReceivedBatch>) -> Result<Response<ReportAck>, Status> {
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
        let batch = request.into_inner();
        let limit = self.state.config.limits.max_reports_per_batch;
        if batch.reports.len() > limit {
            return Err(Status::invalid_argument(format!(
                "batch has {} reports, the limit is {limit}",
                batch.reports.len()
            )));
        }
        let received_at = Timestamp::now();
        let clock = ClockReading::of(
            batch.sent_at.as_ref().and_then(timestamp_from_proto),
            received_at,
        );
        let received = batch.reports.len();
        let mut accepted = Vec::with_capacity(received);
        let mut rejected = Vec::new();
        for bytes in batch.reports {
            match read_report(bytes) {
                Ok(report) => accepted.push(report),
                Err(rejection) => rejected.push(rejection),
            }
        }
        let ack_ids: Vec<String> = accepted.iter().map(|r| r.wire_id.clone()).collect();
        // Only `vigie-collector-bench` gets here with the switch on (`BenchSwitches::refusal`).
        #[cfg(feature = "bench")]
        if self.state.config.bench.discard_reports {
            // Benchmark only (`[bench] discard_reports`): the same gRPC path, no storage; the
            // identity check still reads the agent's record (the durable path does it on the
            // storing thread, just before the write).
            let storage = self.state.storage.clone();
            let (id, clinic) = (agent_id.clone(), clinic_id.clone());
            blocking(move || check_agent(&storage, &id, &clinic)).await??;
            return Ok(Response::new(ReportAck {
                stored_ids: ack_ids,
                rejected,
            }));
        }
        // A report repeated within the batch is stored once and read once: the first copy.
        let mut seen = HashSet::new();
        let mut meanings = Vec::new();
        let mut fact_ids = Vec::new();
        let mut encoded = Vec::with_capacity(accepted.len());
        for report in accepted {
            if !seen.insert(report.id) {
                continue;
            }
            encoded.push(EncodedReport {
                id: report.id,
                interpreted: report.meaning.is_some(),
                bytes: report.bytes,
            });
            if let Some(meaning) = report.meaning {
                if meaning.fact.is_some() {
                    fact_ids.push(report.id);
                }
                meanings.push((report.collected_at, meaning));
            }
        }
        let outbox = batch.outbox;
        let version = batch.agent_version;
        let config_version = batch.config_version;

        // Here, not on the blocking pool: the snapshots it drops were decoded on this thread,
        // and glibc frees another thread's memory through that arena's lock.
        let Trusted { latest, facts } = at_trusted_times(received_at, clock.as_ref(), meanings);

        let job = StoreJob {
            agent_id: agent_id.clone(),
            clinic_id: clinic_id.clone(),
            received_at,
            encoded,
            fact_ids,
            facts,
            version,
            config_version,
            outbox,
            clock,
            latest,
        };
        let Stored {
            outcome,
            facts,
            leftovers,
        } = self.storer.store(job).await.map_err(|error| match error {
            IngestError::Refused(status) => status,
            IngestError::Storage(error) if error.is_io_failure() => {
                // sled keeps an I/O error and fails every later write: only a restart helps.
                self.state.commit.declare_lost(error.to_string());
                not_durable(&agent_id, &DurabilityError::Lost(error.to_string()))
            }
            IngestError::Storage(error) => internal(error),
        })?;

        drop(leftovers);
        if let Err(error) = self.state.commit.durable().await {
            return Err(not_durable(&agent_id, &error));
        }
        tracing::info!(
            agent_id = %agent_id,
            clinic_id = %clinic_id,
            received,
            stored = outcome.new,
            duplicates = outcome.duplicates,
            uninterpreted = outcome.uninterpreted,
            rejected = rejected.len(),
            clock_offset_seconds = clock.map(|c| c.offset_seconds),
            "batch stored"
        );
        if outcome.uninterpreted > 0 {
            tracing::warn!(
                agent_id = %agent_id,
                count = outcome.uninterpreted,
                "reports of kinds this collector does not know were stored as received: upgrade the collector to interpret them"
            );
        }
        match facts {
            // The recorder asks for the evaluation once the facts are recorded.
            Some(job) => self.facts.record(job).await,
            None => self.state.evaluator.request(&agent_id),
        }
        for r in &rejected {
            tracing::warn!(agent_id = %agent_id, report_id = %r.id, reason = %r.reason, "report rejected");
        }
        Ok(Response::new(ReportAck {
            stored_ids: ack_ids,
            rejected,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A report of a payload kind from a later protocol version: field 17, a message.
    fn future_kind(id: &str) -> Vec<u8> {
        let mut bytes = report(id, Some(1_700_000_000), false).encode_to_vec();
        bytes.extend_from_slice(&[0x8a, 0x01, 0x02, 0x08, 0x01]);
        bytes
    }

    #[test]
    fn validation_table() {
        let v7 = Uuid::now_v7().to_string();
        let v4 = Uuid::new_v4().to_string();
        let check = |bytes: Vec<u8>, expected: Option<&str>| {
            let got = read_report(bytes).err().map(|e| e.reason);
            assert_eq!(got.as_deref(), expected);
        };
        let enc = |r: Report| r.encode_to_vec();
        check(enc(report(&v7, Some(1_700_000_000), true)), None);
        check(enc(report(&v7.to_uppercase(), Some(1), true)), None);
        check(enc(report("nope", Some(1), true)), Some("id is not a UUID"));
        check(
            enc(report(&v4, Some(1), true)),
            Some("id is not a version 7 UUID"),
        );
        check(
            enc(report(&v7, None, true)),
            Some("collected_at is missing"),
        );
        check(
            enc(report(&v7, Some(i64::MAX), true)),
            Some("collected_at is out of range"),
        );
        check(enc(report(&v7, Some(1), false)), Some("payload is missing"));
        check(future_kind(&v7), None);
        let damaged = read_report(vec![0x0a, 0x40, b'x']).err().map(|e| e.reason);
        assert!(damaged.is_some_and(|r| r.starts_with("not a Report")));
    }

    #[test]
    fn a_future_kind_is_kept_whole_and_not_interpreted() {
        let v7 = Uuid::now_v7().to_string();
        let bytes = future_kind(&v7);
        let received = read_report(bytes.clone()).expect("accepted");
        assert!(received.meaning.is_none());
        assert_eq!(received.bytes, bytes, "stored exactly as received");
    }

    #[test]
    fn reports_stored_uninterpreted_are_interpreted_later() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let agent = Uuid::now_v7().to_string();
        let id = Uuid::now_v7();
        // As an older collector would have stored a kind it did not know.
        let bytes = report(&id.to_string(), Some(1_700_000_000), true).encode_to_vec();
        let at = Timestamp::from_second(1_700_000_100).expect("ts");
        storage
            .store_reports(
                &agent,
                at,
                &[EncodedReport {
                    id,
                    bytes,
                    interpreted: false,
                }],
            )
            .expect("store");
        assert_eq!(storage.uninterpreted_count(&agent).expect("count"), 1);
        assert_eq!(interpret_stored(&storage).expect("interpret"), 1);
        assert_eq!(storage.uninterpreted_count(&agent).expect("count"), 0);
        assert_eq!(interpret_stored(&storage).expect("again"), 0);
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
            outbox_health: Default::default(),
            snapshot: None,
            snapshot_collected_at: None,
            clock: None,
            config: Default::default(),
        };
        let snap = |host: &str| SystemSnapshot {
            hostname: host.into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            ..SystemSnapshot::default()
        };
        let t = |s| Timestamp::from_second(s).expect("ts");
        let outbox = OutboxStatus {
            dropped_total: 3,
            quarantined: 1,
            quarantined_total: 2,
            last_quarantine_reason: "unknown kind".into(),
            write_failures_total: 4,
            last_write_error: "disk full".into(),
            ..OutboxStatus::default()
        };
        let newer = (t(50), snap("new"));
        note_batch(
            &mut agent,
            &BatchNote {
                now: t(100),
                version: "1.0",
                config_version: 0,
                outbox: Some(&outbox),
                clock: ClockReading::of(Some(t(100)), t(100)),
                latest: Some(&newer),
            },
        );
        let older = (t(40), snap("older"));
        note_batch(
            &mut agent,
            &BatchNote {
                now: t(101),
                version: "",
                config_version: 0,
                outbox: None,
                clock: None,
                latest: Some(&older),
            },
        );
        assert_eq!(agent.hostname, "new");
        assert_eq!(agent.os, "Debian GNU/Linux 12");
        assert_eq!(agent.agent_version, "1.0");
        assert_eq!(agent.outbox_dropped_total, 3);
        assert_eq!(
            (
                agent.outbox_health.quarantined,
                agent.outbox_health.quarantined_total,
                agent.outbox_health.write_failures_total
            ),
            (1, 2, 4)
        );
        assert_eq!(agent.outbox_health.last_quarantine_reason, "unknown kind");
        assert_eq!(agent.outbox_health.last_write_error, "disk full");
        assert_eq!(agent.last_seen, Some(t(101)));
        assert_eq!(agent.clock.map(|c| c.offset_seconds), Some(0));
    }
}
