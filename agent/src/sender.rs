//! Delivers the outbox to the collector: oldest reports first, in bounded batches, deleting
//! only what the collector acknowledged. Never deletes on failure: a report leaves the queue
//! when its id comes back in `stored_ids`; one in `rejected` (or too large to ever send) moves
//! to the outbox's quarantine, kept on disk and never resent by itself.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::Notify;
use tonic::transport::Channel;
use uuid::Uuid;
use vigie_proto::v1;
use vigie_proto::v1::ingest_client::IngestClient;

use crate::backoff::Backoff;
use crate::config::SenderConfig;
use crate::outbox::{Outbox, OutboxError, OutboxHealth};
use crate::probe::Probe;
use crate::transport::{self, CallFailure, FailureKind};

/// Encoded reports per batch stay under half the message limit: room for framing, and a
/// collector that counts differently still accepts it.
pub const BATCH_MAX_BYTES: usize = vigie_proto::MAX_MESSAGE_BYTES / 2;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Call(#[from] CallFailure),
    #[error("the collector acknowledged none of the {0} reports sent")]
    NothingAcknowledged(usize),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

impl SendError {
    /// The collector refuses this agent for good (revoked, certificate unknown, not the pinned
    /// collector): retrying soon cannot help, a technician must act.
    pub fn is_refusal_for_good(&self) -> bool {
        matches!(
            self,
            SendError::Call(CallFailure {
                kind: FailureKind::Revoked
                    | FailureKind::CertificateRejected
                    | FailureKind::CollectorUntrusted,
                ..
            })
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            SendError::Call(f) => f.kind.as_str(),
            SendError::NothingAcknowledged(_) => "not_acknowledged",
            SendError::Outbox(_) => "outbox",
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Acknowledged as stored by the collector, now deleted here.
    pub stored: u64,
    /// Refused for good by the collector, moved to the quarantine here.
    pub rejected: u64,
}

/// The way to the collector: the gRPC client, and a probe to explain its failures.
pub struct Link {
    pub client: IngestClient<Channel>,
    pub probe: Probe,
    pub collector_addr: String,
    pub connect_timeout: Duration,
}

pub struct Sender {
    outbox: Arc<Outbox>,
    link: Link,
    config: SenderConfig,
    /// The central configuration version the agent runs, told in every batch.
    config_version: Arc<AtomicU64>,
}

impl Sender {
    pub fn new(outbox: Arc<Outbox>, link: Link, config: SenderConfig) -> Self {
        Sender {
            outbox,
            link,
            config,
            config_version: Arc::default(),
        }
    }

    /// Where the running configuration version is kept (updated when a new one applies).
    pub fn config_version(&self) -> Arc<AtomicU64> {
        self.config_version.clone()
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Sends the oldest batch and deletes what the collector acknowledged.
    pub async fn send_batch(&mut self) -> Result<Delivery, SendError> {
        let batch = self
            .outbox
            .peek_batch(self.config.batch_max_reports, BATCH_MAX_BYTES)?;
        if let [(id, report)] = batch.as_slice()
            && report.encoded_len() > BATCH_MAX_BYTES
        {
            // It could never be delivered and would block everything behind it.
            let bytes = report.encoded_len();
            tracing::error!(report_id = %id, bytes, "report too large to send: moving it to the quarantine");
            let reason =
                format!("too large to send ({bytes} bytes, the limit is {BATCH_MAX_BYTES})");
            self.outbox.quarantine(&[(*id, reason)])?;
            return Ok(Delivery::default());
        }
        if batch.is_empty() {
            return Ok(Delivery::default());
        }
        let sent: HashSet<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let request = v1::ReportBatch {
            outbox: Some(status_to_proto(&self.outbox.health())),
            reports: batch.into_iter().map(|(_, r)| r).collect(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            sent_at: Some(crate::facts::proto_timestamp(&jiff::Timestamp::now())),
            config_version: self.config_version.load(Ordering::Relaxed),
        };
        let count = request.reports.len();
        let ack = match self.link.client.report(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Err(self.explain(&status).await.into()),
        };

        // Only ids we sent: a confused collector must not make us delete anything else.
        let ours = |text: &str| Uuid::parse_str(text).ok().filter(|id| sent.contains(id));
        let stored: Vec<Uuid> = ack.stored_ids.iter().filter_map(|s| ours(s)).collect();
        let mut rejected = Vec::new();
        for r in &ack.rejected {
            match ours(&r.id) {
                Some(id) => {
                    tracing::error!(report_id = %id, reason = %r.reason, "collector refused report for good: moving it to the quarantine");
                    rejected.push((id, r.reason.clone()));
                }
                None => {
                    tracing::warn!(report_id = %r.id, "collector rejected an id we did not send")
                }
            }
        }
        if stored.is_empty() && rejected.is_empty() {
            return Err(SendError::NothingAcknowledged(count));
        }
        let stored = self.outbox.remove(&stored)?;
        let rejected = self.outbox.quarantine(&rejected)?;
        tracing::info!(
            stored,
            rejected,
            queued = self.outbox.len(),
            "batch delivered"
        );
        Ok(Delivery { stored, rejected })
    }

    /// Classifies a failed call; a connection that broke without a clear cause gets a second
    /// look, since a refused client certificate often shows up only as a broken connection.
    async fn explain(&self, status: &tonic::Status) -> CallFailure {
        let failure = transport::classify(status, &self.link.collector_addr);
        if failure.kind != FailureKind::Unreachable {
            return failure;
        }
        match self.link.probe.diagnose(self.link.connect_timeout).await {
            Some(diagnosed) => {
                tracing::debug!(first = %failure, "probe found the cause");
                diagnosed
            }
            None => failure,
        }
    }

    /// Sends batches until the outbox is empty or a call fails, adding the acknowledged count
    /// to `stored` as it goes (so an interrupted drain still tells what it did).
    pub async fn drain(&mut self, stored: &mut u64) -> Result<(), SendError> {
        while !self.outbox.is_empty() {
            *stored += self.send_batch().await?.stored;
        }
        Ok(())
    }

    /// Forever: waits for queued reports, sends them, and backs off while the collector cannot
    /// take them. `queued` is notified after every push.
    pub async fn run(mut self, queued: Arc<Notify>) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        loop {
            if self.outbox.is_empty() {
                queued.notified().await;
                continue;
            }
            match self.send_batch().await {
                Ok(_) => backoff.reset(),
                Err(error) => {
                    let retry_in = if error.is_refusal_for_good() {
                        self.config.refused_retry
                    } else {
                        backoff.next_delay()
                    };
                    log_failure(&error, &self.link.collector_addr, retry_in);
                    tokio::time::sleep(retry_in).await;
                }
            }
        }
    }
}

/// The outbox's state as the batch tells the collector (older collectors ignore the fields
/// they do not know).
fn status_to_proto(health: &OutboxHealth) -> v1::OutboxStatus {
    v1::OutboxStatus {
        dropped_total: health.dropped_total,
        queued: health.queued,
        write_failures_total: health.write_failures_total,
        last_write_error: health.last_write_error.clone(),
        quarantined: health.quarantined,
        quarantined_total: health.quarantined_total,
        quarantine_dropped_total: health.quarantine_dropped_total,
        last_quarantine_reason: health.last_quarantine_reason.clone(),
    }
}

fn log_failure(error: &SendError, collector: &str, retry_in: Duration) {
    let queued_note = "send failed, reports stay in the outbox";
    let retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
    let text = transport::render(error);
    match error {
        SendError::Call(CallFailure {
            kind: FailureKind::Unreachable,
            ..
        }) => {
            tracing::warn!(collector, kind = error.kind(), error = %text, retry_in_ms, "{queued_note}")
        }
        _ if error.is_refusal_for_good() => tracing::error!(
            collector,
            kind = error.kind(),
            error = %text,
            retry_in_ms,
            "the collector refuses this agent: nothing can be delivered until a technician \
             re-enrolls it (vigie-agent enroll --force) or restores it; reports stay in the outbox"
        ),
        _ => {
            tracing::error!(collector, kind = error.kind(), error = %text, retry_in_ms, "{queued_note}")
        }
    }
}
