//! The escalation part of the `Admin` service: listing escalations (`tickets`) and sending a
//! test ticket (`escalation test`). `admin.rs` routes the RPCs here.

use std::time::Duration;

use jiff::Timestamp;
use tonic::{Request, Response, Status};
use vigie_proto::v1;

use super::admin::AdminService;
use super::convert::timestamp_to_proto;
use super::identity::require_admin;
use super::{blocking, internal};
use crate::escalation::{Escalation, EscalationError};

/// Longest wait for a test ticket: the sink's own timeout applies first.
const TEST_TIMEOUT: Duration = Duration::from_secs(50);

pub fn escalation_to_proto(e: &Escalation, now: Timestamp) -> v1::Escalation {
    v1::Escalation {
        alert_id: e.alert_id,
        sink: e.sink.clone(),
        state: e.status(now).to_owned(),
        ticket_id: e.ticket_id.clone().unwrap_or_default(),
        clinic_id: e.alert.clinic_id.clone(),
        clinic_name: e.clinic_name.clone(),
        tier: e.tier.as_str().to_owned(),
        rule: e.alert.rule.as_str().to_owned(),
        severity: e.alert.severity.as_str().to_owned(),
        summary: e.alert.text.clone(),
        priority: u32::from(e.priority.0),
        create_after: Some(timestamp_to_proto(e.create_after)),
        response_due: Some(timestamp_to_proto(e.response_due)),
        response_remote_only: e.response_remote_only,
        pending: e.pending.iter().map(|op| op.name().to_owned()).collect(),
        attempts: e.attempts,
        last_error: e.last_error.clone().unwrap_or_default(),
        next_attempt_at: e.next_attempt_at.map(timestamp_to_proto),
        follow_ups_sent: e.notes_sent,
        note: e.note.clone(),
        created_at: Some(timestamp_to_proto(e.created_at)),
        updated_at: Some(timestamp_to_proto(e.updated_at)),
    }
}

impl AdminService {
    pub(super) async fn do_list_escalations(
        &self,
        request: Request<v1::ListEscalationsRequest>,
    ) -> Result<Response<v1::ListEscalationsResponse>, Status> {
        require_admin(&request)?;
        let all = request.into_inner().all;
        let escalator = self.state.escalation.clone();
        let records = {
            let escalator = escalator.clone();
            blocking(move || escalator.list())
                .await?
                .map_err(internal)?
        };
        let now = escalator.now();
        let escalations = records
            .iter()
            .filter(|e| all || e.state == crate::escalation::queue::EscalationState::Active)
            .map(|e| escalation_to_proto(e, now))
            .collect();
        Ok(Response::new(v1::ListEscalationsResponse {
            escalations,
            sinks: escalator.sink_names(),
        }))
    }

    pub(super) async fn do_test_escalation(
        &self,
        request: Request<v1::TestEscalationRequest>,
    ) -> Result<Response<v1::TestEscalationResponse>, Status> {
        require_admin(&request)?;
        let sink = request.into_inner().sink.trim().to_owned();
        let escalator = self.state.escalation.clone();
        let sent = tokio::time::timeout(TEST_TIMEOUT, escalator.send_test(&sink))
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!("la destination {sink:?} n'a pas répondu"))
            })?;
        match sent {
            Ok(ticket_id) => Ok(Response::new(v1::TestEscalationResponse {
                sink,
                ticket_id,
            })),
            Err(e @ EscalationError::UnknownSink { .. }) => Err(Status::not_found(e.to_string())),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}
