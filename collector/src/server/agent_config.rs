//! The `AgentConfig` service: each agent keeps a `Watch` stream open and gets the version of
//! the central configuration it should run at once, then each new one as a technician sets it
//! (`config_changes` wakes every stream; each computes its own agent's delivery). Identity
//! comes from the client certificate; revocation is checked on every call and every change.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vigie_domain::identity::CertIdentity;
use vigie_proto::v1;
use vigie_proto::v1::agent_config_server::AgentConfig;

use super::admin_config::delivery_of;
use super::identity::peer_identity;
use super::{CollectorState, blocking, internal};
use crate::model::AgentRecord;

#[derive(Debug, Clone)]
pub struct AgentConfigService {
    state: Arc<CollectorState>,
    /// Streams end when the collector stops, so they never hold up its shutdown.
    stopped: watch::Receiver<bool>,
}

impl AgentConfigService {
    pub fn new(state: Arc<CollectorState>, stopped: watch::Receiver<bool>) -> Self {
        AgentConfigService { state, stopped }
    }
}

/// The enrolled, unrevoked agent the certificate names.
async fn agent_of<T>(
    state: &Arc<CollectorState>,
    request: &Request<T>,
) -> Result<AgentRecord, Status> {
    let (clinic_id, agent_id) = match peer_identity(request)? {
        CertIdentity::Agent {
            clinic_id,
            agent_id,
        } => (clinic_id, agent_id),
        CertIdentity::Admin => {
            return Err(Status::permission_denied(
                "the admin certificate has no agent configuration",
            ));
        }
    };
    current(state, &agent_id, &clinic_id).await
}

async fn current(
    state: &Arc<CollectorState>,
    agent_id: &str,
    clinic_id: &str,
) -> Result<AgentRecord, Status> {
    let storage = state.storage.clone();
    let id = agent_id.to_owned();
    match blocking(move || storage.agent(&id))
        .await?
        .map_err(internal)?
    {
        Some(agent) if !agent.revoked && agent.clinic_id == clinic_id => Ok(agent),
        _ => Err(Status::permission_denied(format!(
            "agent {agent_id} is unknown to this collector or revoked"
        ))),
    }
}

type Offer = Result<v1::AgentConfigVersion, Status>;

#[tonic::async_trait]
impl AgentConfig for AgentConfigService {
    type WatchStream = ReceiverStream<Offer>;

    async fn watch(
        &self,
        request: Request<v1::WatchConfigRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let agent = agent_of(&self.state, &request).await?;
        let running = request.into_inner().running_version;
        tracing::debug!(agent_id = %agent.id, running, "agent watches its configuration");
        let (tx, rx) = mpsc::channel::<Offer>(2);
        let (state, mut stopped) = (self.state.clone(), self.stopped.clone());
        let mut changes = state.config_changes.subscribe();
        tokio::spawn(async move {
            let mut sent = None;
            loop {
                let offer = match current(&state, &agent.id, &agent.clinic_id).await {
                    Ok(agent) => {
                        let storage = state.storage.clone();
                        blocking(move || delivery_of(&storage, &agent))
                            .await
                            .and_then(|d| d.map_err(internal))
                    }
                    Err(status) => Err(status),
                };
                match offer {
                    Ok(delivery) if sent != Some(delivery.version) => {
                        sent = Some(delivery.version);
                        let offer = v1::AgentConfigVersion {
                            version: delivery.version,
                            toml: delivery.toml,
                        };
                        if tx.send(Ok(offer)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                        let _ = tx.send(Err(Status::unavailable("the collector is stopping"))).await;
                        return;
                    }
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn report_config_status(
        &self,
        request: Request<v1::ConfigStatus>,
    ) -> Result<Response<v1::ConfigStatusAck>, Status> {
        let agent = agent_of(&self.state, &request).await?;
        let status = request.into_inner();
        if status.applied {
            tracing::info!(agent_id = %agent.id, config_version = status.version, "agent applied its configuration");
        } else {
            tracing::warn!(agent_id = %agent.id, config_version = status.version, reason = %status.error, "agent refused its configuration");
        }
        let storage = self.state.storage.clone();
        let id = agent.id.clone();
        blocking(move || {
            storage.update_agent(&id, |a| {
                crate::central_config::note_status(a, &status, Timestamp::now())
            })
        })
        .await?
        .map_err(internal)?;
        self.state
            .commit
            .durable()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(v1::ConfigStatusAck {}))
    }
}
