//! The central configuration part of the `Admin` service: `ShowConfig`, `SetConfig`,
//! `ConfigHistory`. `admin.rs` routes the RPCs here; a stored version wakes every agent's
//! `Watch` stream (`agent_config.rs`).

use jiff::Timestamp;
use tonic::{Request, Response, Status};
use vigie_proto::v1;

use super::admin::AdminService;
use super::convert::agent_to_proto;
use super::identity::require_admin;
use super::{blocking, internal};
use crate::central_config::{self, ConfigScope, Target};
use crate::model::AgentRecord;
use crate::storage::{Storage, StorageError};

/// Exactly one of a clinic and an agent, each known.
fn scope(clinic_id: &str, agent_id: &str) -> Result<ConfigScope, Status> {
    match (clinic_id.trim(), agent_id.trim()) {
        (c, "") if !c.is_empty() => Ok(ConfigScope::Clinic(c.to_owned())),
        ("", a) if !a.is_empty() => Ok(ConfigScope::Agent(a.to_owned())),
        _ => Err(Status::invalid_argument(
            "give exactly one of a clinic and an agent",
        )),
    }
}

fn who(by: &str) -> String {
    let by = by.trim();
    if by.is_empty() {
        "admin".to_owned()
    } else {
        by.chars().take(100).collect()
    }
}

/// The versions an agent's delivery is made of: its clinic's latest and its own.
pub(super) fn delivery_of(
    storage: &Storage,
    agent: &AgentRecord,
) -> Result<central_config::Delivery, StorageError> {
    let clinic = storage.latest_config(&ConfigScope::Clinic(agent.clinic_id.clone()))?;
    let own = storage.latest_config(&ConfigScope::Agent(agent.id.clone()))?;
    Ok(central_config::delivery(
        clinic.as_ref(),
        own.as_ref(),
        agent,
    ))
}

enum Found {
    Clinic(Vec<AgentRecord>),
    Agent(Box<AgentRecord>),
    Missing(String),
}

fn find(storage: &Storage, scope: &ConfigScope) -> Result<Found, StorageError> {
    Ok(match scope {
        ConfigScope::Clinic(id) => match storage.clinic(id)? {
            Some(_) => Found::Clinic(storage.list_agents(Some(id))?),
            None => Found::Missing(format!("clinic {id} not found")),
        },
        ConfigScope::Agent(id) => match storage.agent(id)? {
            Some(agent) => Found::Agent(Box::new(agent)),
            None => Found::Missing(format!("agent {id} not found")),
        },
    })
}

impl AdminService {
    pub(super) async fn do_set_config(
        &self,
        request: Request<v1::SetConfigRequest>,
    ) -> Result<Response<v1::SetConfigResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let scope = scope(&req.clinic_id, &req.agent_id)?;
        let author = who(&req.by);
        let storage = self.state.storage.clone();
        let stored = blocking(move || {
            let target_agents;
            let target = match find(&storage, &scope)? {
                Found::Missing(what) => return Ok(Err(Status::not_found(what))),
                Found::Clinic(agents) => {
                    target_agents = agents;
                    Target::Clinic(&target_agents)
                }
                Found::Agent(_) => Target::Agent,
            };
            match central_config::validate(&req.toml, &target) {
                Err(problems) => Ok(Ok(v1::SetConfigResponse {
                    version: None,
                    problems: problems
                        .into_iter()
                        .map(|p| v1::ConfigProblem {
                            line: p.line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
                            message: p.message,
                        })
                        .collect(),
                })),
                Ok(clinic) => {
                    let record = storage.put_config_version(
                        &scope,
                        &author,
                        Timestamp::now(),
                        &req.toml,
                        clinic,
                    )?;
                    Ok(Ok(v1::SetConfigResponse {
                        version: Some(record.to_proto()),
                        problems: Vec::new(),
                    }))
                }
            }
        })
        .await?
        .map_err(internal)??;
        if let Some(version) = &stored.version {
            self.durable().await?;
            tracing::info!(
                config_version = version.version,
                clinic_id = %version.clinic_id,
                agent_id = %version.agent_id,
                author = %version.author,
                "central configuration set"
            );
            self.state.config_changes.send_replace(version.version);
            // The silent-agent rule may now judge with the clinic's own hours.
            if !version.clinic_id.is_empty() {
                let storage = self.state.storage.clone();
                let id = version.clinic_id.clone();
                if let Ok(Ok(agents)) = blocking(move || storage.list_agents(Some(&id))).await {
                    for agent in agents {
                        self.state.evaluator.request(&agent.id);
                    }
                }
            }
        }
        Ok(Response::new(stored))
    }

    pub(super) async fn do_show_config(
        &self,
        request: Request<v1::ShowConfigRequest>,
    ) -> Result<Response<v1::ShowConfigResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let scope = scope(&req.clinic_id, &req.agent_id)?;
        let storage = self.state.storage.clone();
        let answer = blocking(move || {
            let agent = match find(&storage, &scope)? {
                Found::Missing(what) => return Ok(Err(Status::not_found(what))),
                Found::Clinic(_) => None,
                Found::Agent(agent) => Some(agent),
            };
            let current = storage.latest_config(&scope)?;
            let mut answer = v1::ShowConfigResponse {
                current: current.as_ref().map(|c| c.to_proto()),
                ..Default::default()
            };
            if let Some(agent) = agent {
                let clinic =
                    storage.latest_config(&ConfigScope::Clinic(agent.clinic_id.clone()))?;
                let delivery = central_config::delivery(clinic.as_ref(), current.as_ref(), &agent);
                let mut proto = agent_to_proto(
                    &agent,
                    storage.report_count(&agent.id)?,
                    storage.uninterpreted_count(&agent.id)?,
                    storage.fact_cuts(&agent.id)?,
                );
                central_config::fill_agent(&mut proto, &agent, delivery.version);
                if req.effective {
                    let mut layers =
                        central_config::layers(clinic.as_ref(), current.as_ref(), &agent);
                    if let Ok(local) = agent.config.local_toml.parse::<toml::Table>() {
                        layers.push(&local, "fichier local");
                    }
                    answer.effective = layers
                        .values()
                        .into_iter()
                        .map(|(key, value, origin)| v1::EffectiveValue { key, value, origin })
                        .collect();
                }
                answer.agent = Some(proto);
                answer.delivered_version = delivery.version;
                answer.delivered_toml = delivery.toml;
            }
            Ok(Ok(answer))
        })
        .await?
        .map_err(|e: StorageError| internal(e))??;
        Ok(Response::new(answer))
    }

    pub(super) async fn do_config_history(
        &self,
        request: Request<v1::ConfigHistoryRequest>,
    ) -> Result<Response<v1::ConfigHistoryResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let scope = scope(&req.clinic_id, &req.agent_id)?;
        let storage = self.state.storage.clone();
        let versions = blocking(move || {
            if let Found::Missing(what) = find(&storage, &scope)? {
                return Ok(Err(Status::not_found(what)));
            }
            Ok(Ok(storage.config_history(&scope)?))
        })
        .await?
        .map_err(|e: StorageError| internal(e))??;
        Ok(Response::new(v1::ConfigHistoryResponse {
            versions: versions.iter().map(|v| v.to_proto()).collect(),
        }))
    }
}
