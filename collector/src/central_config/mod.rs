//! Central configuration on the collector: what technicians set per clinic and per agent
//! (`config set`), checked with the very parser the agents run (`vigie_agent::config`, as
//! text from the collector: no local-only section), every problem at once with its line; and
//! what each agent is delivered: its clinic's version with the LAN targets narrowed to those
//! assigned to it (`agent = ID` or `role = ...`), under its own version, under its local file
//! on the agent. Versions come from one sequence, so the newer of the two is the version the
//! agent should run. Stored by `storage/config.rs`, delivered by `server/agent_config.rs`.

pub mod clinic;
pub mod command;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vigie_agent::central::merge::Layered;
use vigie_agent::config::{self as agent_config, Problem, Source};
use vigie_domain::AgentRole;
use vigie_proto::v1;

use crate::model::AgentRecord;
use clinic::ClinicSection;

/// Largest configuration file accepted, and largest local summary kept from an agent.
pub const MAX_CONFIG_BYTES: usize = 256 * 1024;

/// What an agent said about the central configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfigState {
    /// The version it runs (its latest batch or status); 0: none.
    pub running_version: u64,
    /// The latest version it refused, and why; 0: none since it last applied a newer one.
    pub refused_version: u64,
    pub refused_reason: String,
    pub status_at: Option<Timestamp>,
    /// What its local file sets (secrets masked by the agent).
    pub local_toml: String,
}

/// Whose configuration a version is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum ConfigScope {
    Clinic(String),
    Agent(String),
}

/// One stored version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersionRecord {
    pub version: u64,
    pub scope: ConfigScope,
    pub author: String,
    pub created_at: Timestamp,
    pub toml: String,
    /// `[clinic]`, read once at `set` (a clinic's version only).
    #[serde(default)]
    pub clinic: Option<ClinicSection>,
}

impl ConfigVersionRecord {
    pub fn to_proto(&self) -> v1::ConfigVersion {
        let (clinic_id, agent_id) = match &self.scope {
            ConfigScope::Clinic(id) => (id.clone(), String::new()),
            ConfigScope::Agent(id) => (String::new(), id.clone()),
        };
        v1::ConfigVersion {
            version: self.version,
            clinic_id,
            agent_id,
            author: self.author.clone(),
            created_at: Some(crate::server::convert::timestamp_to_proto(self.created_at)),
            toml: self.toml.clone(),
        }
    }
}

/// What a file is checked against.
pub enum Target<'a> {
    /// A clinic's file: its agents, for the LAN targets' assignment.
    Clinic(&'a [AgentRecord]),
    Agent,
}

/// Checks a file; on success, its `[clinic]` section (clinic files only). Every problem is
/// reported at once, in line order.
pub fn validate(text: &str, target: &Target<'_>) -> Result<Option<ClinicSection>, Vec<Problem>> {
    let mut problems = Vec::new();
    if text.len() > MAX_CONFIG_BYTES {
        return Err(vec![Problem::unplaced(format!(
            "the file is {} bytes, the limit is {MAX_CONFIG_BYTES}",
            text.len()
        ))]);
    }
    match agent_config::parse_text(text, Source::Central, &["clinic"]) {
        Ok((_, unknown)) => problems.extend(unknown.iter().map(|key| Problem {
            line: agent_config::line_of(text, key),
            message: format!(
                "unknown section [{key}] (known: clinic, {})",
                agent_config::SECTIONS.join(", ")
            ),
        })),
        Err(errors) => problems.extend(errors.0),
    }
    let Ok(table) = text.parse::<toml::Table>() else {
        // A syntax error: parse_text said where.
        return Err(problems);
    };
    let mut section = None;
    if let Some(value) = table.get("clinic") {
        match target {
            Target::Agent => problems.push(Problem {
                line: agent_config::line_of(text, "clinic"),
                message: "[clinic] belongs to a clinic's configuration (config set --clinic)"
                    .to_owned(),
            }),
            Target::Clinic(_) => {
                match value.clone().try_into::<ClinicSection>() {
                    Ok(parsed) => {
                        problems.extend(parsed.problems().into_iter().map(|(path, message)| {
                            Problem {
                                line: agent_config::line_of(text, &path),
                                message,
                            }
                        }));
                        section = Some(parsed);
                    }
                    Err(e) => problems.push(Problem {
                        line: agent_config::line_of(text, "clinic"),
                        message: format!("[clinic]: {}", e.message()),
                    }),
                }
            }
        }
    }
    if let Target::Clinic(agents) = target {
        problems.extend(assignment_problems(text, &table, agents));
    }
    if problems.is_empty() {
        return Ok(
            section.or_else(|| matches!(target, Target::Clinic(_)).then(ClinicSection::default))
        );
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Err(problems)
}

/// A clinic's LAN targets each say which agent probes them, an agent of this clinic.
fn assignment_problems(text: &str, table: &toml::Table, agents: &[AgentRecord]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, target) in targets(table).iter().enumerate() {
        let name = target.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let at = format!("lan.targets[{i}]");
        let mut problem = |message: String| {
            problems.push(Problem {
                line: agent_config::line_of(text, &at),
                message: format!("{at} ({name}): {message}"),
            });
        };
        match (
            target.get("agent").and_then(|v| v.as_str()),
            target.get("role"),
        ) {
            (None, None) => problem(
                "a clinic's target names the agent that probes it: agent = \"ID\" or role = \"server\""
                    .to_owned(),
            ),
            (Some(_), Some(_)) => problem("give agent or role, not both".to_owned()),
            (Some(id), None) if !agents.iter().any(|a| a.id == id) => {
                problem(format!("agent {id} is not an agent of this clinic"))
            }
            _ => {}
        }
    }
    problems
}

fn targets(table: &toml::Table) -> Vec<toml::Table> {
    table
        .get("lan")
        .and_then(|lan| lan.get("targets"))
        .and_then(|t| t.as_array())
        .map(|items| items.iter().filter_map(|v| v.as_table().cloned()).collect())
        .unwrap_or_default()
}

/// Whether a clinic's target is assigned to `agent`.
fn assigned(target: &toml::Table, agent: &AgentRecord) -> bool {
    match (target.get("agent"), target.get("role")) {
        (Some(id), _) => id.as_str() == Some(agent.id.as_str()),
        (None, Some(role)) => role
            .clone()
            .try_into::<AgentRole>()
            .is_ok_and(|r| r == agent.role),
        (None, None) => false,
    }
}

/// A clinic's text as one agent gets it: no `[clinic]`, only its own LAN targets.
fn narrowed(text: &str, agent: &AgentRecord) -> toml::Table {
    let mut table: toml::Table = text.parse().unwrap_or_default();
    table.remove("clinic");
    if let Some(toml::Value::Table(lan)) = table.get_mut("lan")
        && let Some(toml::Value::Array(items)) = lan.get_mut("targets")
    {
        items.retain(|t| t.as_table().is_some_and(|t| assigned(t, agent)));
    }
    table
}

/// The layers an agent runs, each value with its origin (in French: technicians read it).
pub fn layers(
    clinic: Option<&ConfigVersionRecord>,
    own: Option<&ConfigVersionRecord>,
    agent: &AgentRecord,
) -> Layered {
    let mut layers = Layered::default();
    if let Some(c) = clinic {
        layers.push(
            &narrowed(&c.toml, agent),
            &format!("cabinet v{}", c.version),
        );
    }
    if let Some(a) = own {
        layers.push(
            &a.toml.parse().unwrap_or_default(),
            &format!("agent v{}", a.version),
        );
    }
    layers
}

/// What the collector delivers to an agent: the newer version number and the merged text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub version: u64,
    pub toml: String,
}

pub fn delivery(
    clinic: Option<&ConfigVersionRecord>,
    own: Option<&ConfigVersionRecord>,
    agent: &AgentRecord,
) -> Delivery {
    let version = clinic
        .map(|c| c.version)
        .max(own.map(|a| a.version))
        .unwrap_or(0);
    let toml = if version == 0 {
        String::new()
    } else {
        layers(clinic, own, agent).text()
    };
    Delivery { version, toml }
}

/// Fields 30-34 of an admin `Agent`.
pub fn fill_agent(proto: &mut v1::Agent, agent: &AgentRecord, expected: u64) {
    let state = &agent.config;
    proto.config_version = state.running_version;
    proto.config_expected_version = expected;
    proto.config_refused_version = state.refused_version;
    proto.config_refused_reason = state.refused_reason.clone();
    proto.config_status_at = state
        .status_at
        .map(crate::server::convert::timestamp_to_proto);
}

/// Fields 10-12 of an admin `Clinic`: its latest version, time zone and opening hours.
pub fn fill_clinic(proto: &mut v1::Clinic, latest: Option<&ConfigVersionRecord>) {
    let section = latest.and_then(|v| v.clinic.clone()).unwrap_or_default();
    proto.config_version = latest.map_or(0, |v| v.version);
    proto.time_zone = section.time_zone.clone();
    proto.opening_hours = section.label();
}

/// An agent's status as it reported it.
pub fn note_status(agent: &mut AgentRecord, status: &v1::ConfigStatus, now: Timestamp) {
    let state = &mut agent.config;
    if status.applied {
        state.running_version = status.version;
        if state.refused_version <= status.version {
            state.refused_version = 0;
            state.refused_reason.clear();
        }
    } else {
        state.refused_version = status.version;
        state.refused_reason =
            crate::limits::text(status.error.trim(), crate::limits::LABEL_BYTES * 8);
    }
    state.status_at = Some(now);
    if status.local_toml.len() <= MAX_CONFIG_BYTES {
        state.local_toml = status.local_toml.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, role: AgentRole) -> AgentRecord {
        let mut a = crate::alerts::rules::fixtures::agent(role);
        a.id = id.to_owned();
        a
    }

    const CLINIC: &str = r#"
[clinic]
time_zone = "Indian/Reunion"
[clinic.opening_hours]
mon = ["08:00-17:00"]

[antivirus]
interval = "3h"

[[lan.targets]]
name = "pacs"
kind = "pacs"
address = "192.168.1.20"
probes = [{ type = "tcp", port = 104 }]
role = "server"

[[lan.targets]]
name = "printer"
kind = "printer"
address = "192.168.1.30"
probes = [{ type = "icmp" }]
agent = "ws-1"
"#;

    #[test]
    fn a_valid_clinic_file_gives_its_section() {
        let agents = [agent("ws-1", AgentRole::Workstation)];
        let section = validate(CLINIC, &Target::Clinic(&agents))
            .expect("valid")
            .expect("clinic section");
        assert_eq!(section.label(), "lun. 08:00-17:00");
    }

    #[test]
    fn three_errors_are_three_problems_with_their_lines() {
        let text = "[antivirus]\ninterval = \"soon\"\n\n[updates]\ninterval = \"5s\"\n[clinic]\ntime_zone = \"Nowhere/City\"\n";
        let problems = validate(text, &Target::Clinic(&[])).expect_err("invalid");
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![Some(2), Some(5), Some(7)], "{problems:#?}");
    }

    #[test]
    fn targets_are_assigned_to_agents_of_the_clinic() {
        let text = "[[lan.targets]]\nname = \"a\"\nkind = \"other\"\naddress = \"10.0.0.1\"\nprobes = [{ type = \"icmp\" }]\n[[lan.targets]]\nname = \"b\"\nkind = \"other\"\naddress = \"10.0.0.2\"\nprobes = [{ type = \"icmp\" }]\nagent = \"someone-else\"\n";
        let problems = validate(text, &Target::Clinic(&[])).expect_err("invalid");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(problems[0].line, Some(1));
        assert_eq!(problems[1].line, Some(6));
        assert!(validate("[clinic]\n", &Target::Agent).is_err());
        assert!(validate("[sender]\nbatch_max_reports = 1\n", &Target::Agent).is_err());
    }

    #[test]
    fn each_agent_gets_its_targets_and_its_own_override_wins() {
        let clinic = ConfigVersionRecord {
            version: 3,
            scope: ConfigScope::Clinic("c".into()),
            author: "t".into(),
            created_at: Timestamp::UNIX_EPOCH,
            toml: CLINIC.to_owned(),
            clinic: None,
        };
        let own = ConfigVersionRecord {
            version: 5,
            scope: ConfigScope::Agent("ws-1".into()),
            toml: "[antivirus]\ninterval = \"2h\"\n".into(),
            ..clinic.clone()
        };
        let ws = agent("ws-1", AgentRole::Workstation);
        let server = agent("srv", AgentRole::Server);
        let to_ws = delivery(Some(&clinic), Some(&own), &ws);
        assert_eq!(to_ws.version, 5);
        let config = vigie_agent::config::parse_text(&to_ws.toml, Source::Central, &[])
            .expect("valid")
            .0;
        let names: Vec<&str> = config.lan.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["printer"]);
        assert_eq!(config.antivirus.interval.as_secs(), 2 * 3600);
        let to_server = delivery(Some(&clinic), None, &server);
        assert_eq!(to_server.version, 3);
        let config = vigie_agent::config::parse_text(&to_server.toml, Source::Central, &[])
            .expect("valid")
            .0;
        let names: Vec<&str> = config.lan.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["pacs"]);
        assert_eq!(delivery(None, None, &server).version, 0);
    }
}
