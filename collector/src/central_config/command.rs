//! `vigie-collector config show|set|history`: through the admin interface of the running
//! collector (never the database), printing French for technicians or JSON with `--json`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use vigie_proto::v1;

use crate::admin_client;
use crate::cli::{ByArg, DataDirArg};
use crate::commands::status_error;
use crate::config::DataDir;
use crate::server::convert::timestamp_from_proto;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show a clinic's or an agent's configuration; --effective: what the agent really runs
    /// (clinic + agent + its local file), each value with where it comes from.
    Show {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        scope: ScopeArgs,
        /// For an agent: the values it runs and where each comes from.
        #[arg(long)]
        effective: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set a new version from a file (the sections of agent.toml, plus [clinic] for a
    /// clinic's opening hours and time zone). Any problem refuses the whole file.
    Set {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long, value_name = "FILE.toml")]
        file: PathBuf,
        #[command(flatten)]
        by: ByArg,
        #[arg(long)]
        json: bool,
    },
    /// Every version of a clinic's or an agent's configuration, newest first.
    History {
        #[command(flatten)]
        dir: DataDirArg,
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long)]
        json: bool,
    },
}

impl ConfigCommand {
    pub fn data_dir(&self) -> &std::path::Path {
        match self {
            ConfigCommand::Show { dir, .. }
            | ConfigCommand::Set { dir, .. }
            | ConfigCommand::History { dir, .. } => &dir.data_dir,
        }
    }
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// A clinic's configuration (inherited by its agents).
    #[arg(long, value_name = "ID")]
    pub clinic: Option<String>,
    /// One agent's own configuration (over its clinic's).
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
}

impl ScopeArgs {
    fn ids(&self) -> (String, String) {
        (
            self.clinic.clone().unwrap_or_default(),
            self.agent.clone().unwrap_or_default(),
        )
    }

    fn label(&self) -> String {
        match (&self.clinic, &self.agent) {
            (Some(c), _) => format!("du cabinet {c}"),
            (_, Some(a)) => format!("de l'agent {a}"),
            _ => String::new(),
        }
    }
}

#[derive(Debug, Serialize)]
struct VersionView {
    version: u64,
    clinic_id: String,
    agent_id: String,
    author: String,
    created_at: Option<String>,
    toml: String,
}

impl From<&v1::ConfigVersion> for VersionView {
    fn from(v: &v1::ConfigVersion) -> Self {
        VersionView {
            version: v.version,
            clinic_id: v.clinic_id.clone(),
            agent_id: v.agent_id.clone(),
            author: v.author.clone(),
            created_at: crate::time_text::rfc3339_proto(v.created_at.as_ref()),
            toml: v.toml.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ProblemView {
    line: Option<u32>,
    message: String,
}

fn when(v: &v1::ConfigVersion) -> String {
    v.created_at
        .as_ref()
        .and_then(timestamp_from_proto)
        .map(crate::time_text::local_with_year)
        .unwrap_or_default()
}

pub async fn run(data_dir: &DataDir, command: ConfigCommand) -> anyhow::Result<()> {
    let mut admin = admin_client::connect(data_dir).await?;
    match command {
        ConfigCommand::Set {
            scope,
            file,
            by,
            json,
            ..
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("impossible de lire {}", file.display()))?;
            let (clinic_id, agent_id) = scope.ids();
            let answer = admin
                .set_config(v1::SetConfigRequest {
                    clinic_id,
                    agent_id,
                    toml: text,
                    by: by.name,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let problems: Vec<ProblemView> = answer
                .problems
                .iter()
                .map(|p| ProblemView {
                    line: (p.line > 0).then_some(p.line),
                    message: p.message.clone(),
                })
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "version": answer.version.as_ref().map(VersionView::from),
                        "problems": problems,
                    }))?
                );
            }
            if !problems.is_empty() {
                if !json {
                    for p in &problems {
                        match p.line {
                            Some(line) => {
                                eprintln!("{} ligne {line} : {}", file.display(), p.message)
                            }
                            None => eprintln!("{} : {}", file.display(), p.message),
                        }
                    }
                }
                anyhow::bail!(
                    "{} problème(s) dans {} : rien n'a changé",
                    problems.len(),
                    file.display()
                );
            }
            let version = answer.version.unwrap_or_default();
            if !json {
                println!("{}", version.version);
            }
            eprintln!(
                "configuration {} enregistrée : version {} (les agents connectés l'appliquent dans les 30 s)",
                scope.label(),
                version.version
            );
        }
        ConfigCommand::Show {
            scope,
            effective,
            json,
            ..
        } => {
            let (clinic_id, agent_id) = scope.ids();
            let answer = admin
                .show_config(v1::ShowConfigRequest {
                    clinic_id,
                    agent_id,
                    effective,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if json {
                let agent = answer.agent.as_ref().map(|a| {
                    serde_json::json!({
                        "id": a.id,
                        "config_version": a.config_version,
                        "config_expected_version": a.config_expected_version,
                        "config_refused_version": a.config_refused_version,
                        "config_refused_reason": a.config_refused_reason,
                    })
                });
                let values: Vec<_> = answer
                    .effective
                    .iter()
                    .map(
                        |v| serde_json::json!({"key": v.key, "value": v.value, "origin": v.origin}),
                    )
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "current": answer.current.as_ref().map(VersionView::from),
                        "agent": agent,
                        "delivered_version": answer.delivered_version,
                        "delivered_toml": answer.delivered_toml,
                        "effective": values,
                    }))?
                );
                return Ok(());
            }
            print!("{}", show_text(&scope, &answer, effective));
        }
        ConfigCommand::History { scope, json, .. } => {
            let (clinic_id, agent_id) = scope.ids();
            let versions = admin
                .config_history(v1::ConfigHistoryRequest {
                    clinic_id,
                    agent_id,
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .versions;
            if json {
                let views: Vec<VersionView> = versions.iter().map(VersionView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(());
            }
            if versions.is_empty() {
                println!("aucune configuration centrale {}", scope.label());
                return Ok(());
            }
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        when(v),
                        v.author.clone(),
                        format!("{} lignes", v.toml.lines().count()),
                    ]
                })
                .collect();
            print!(
                "{}",
                crate::output::table(&["VERSION", "DATE", "AUTEUR", "TAILLE"], &rows)
            );
        }
    }
    Ok(())
}

fn show_text(scope: &ScopeArgs, answer: &v1::ShowConfigResponse, effective: bool) -> String {
    let mut out = String::new();
    match &answer.current {
        Some(v) => out.push_str(&format!(
            "configuration {} : version {} ({}, {})\n",
            scope.label(),
            v.version,
            v.author,
            when(v)
        )),
        None => out.push_str(&format!(
            "aucune configuration centrale propre {}\n",
            scope.label()
        )),
    }
    if let Some(a) = &answer.agent {
        out.push_str(&format!("{}\n", agent_status(a)));
    }
    if effective {
        let rows: Vec<Vec<String>> = answer
            .effective
            .iter()
            .map(|v| vec![v.key.clone(), v.value.clone(), v.origin.clone()])
            .collect();
        out.push('\n');
        out.push_str(&crate::output::table(&["CLÉ", "VALEUR", "ORIGINE"], &rows));
        out.push_str("(le reste : valeurs par défaut de l'agent)\n");
    } else if let Some(v) = &answer.current {
        out.push('\n');
        out.push_str(&v.toml);
        if !v.toml.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// "version 5 en service", "version 3 en service, 5 attendue", "version 6 refusée : ...".
pub fn agent_status(a: &v1::Agent) -> String {
    let mut text = match (a.config_version, a.config_expected_version) {
        (0, 0) => "sans configuration centrale".to_owned(),
        (running, expected) if running == expected => format!("version {running} en service"),
        (running, expected) => {
            format!("version {running} en service, version {expected} attendue")
        }
    };
    if a.config_refused_version != 0 {
        text.push_str(&format!(
            " ; version {} refusée : {}",
            a.config_refused_version, a.config_refused_reason
        ));
    }
    text
}

/// The configuration columns of `agents --json`.
#[derive(Debug, Serialize, Default)]
pub struct AgentConfigView {
    pub config_version: u64,
    pub config_expected_version: u64,
    /// The agent runs an older version than the collector has for it.
    pub config_outdated: bool,
    pub config_refused_version: u64,
    pub config_refused_reason: String,
}

impl From<&v1::Agent> for AgentConfigView {
    fn from(a: &v1::Agent) -> Self {
        AgentConfigView {
            config_version: a.config_version,
            config_expected_version: a.config_expected_version,
            config_outdated: a.config_version != a.config_expected_version,
            config_refused_version: a.config_refused_version,
            config_refused_reason: a.config_refused_reason.clone(),
        }
    }
}

impl AgentConfigView {
    /// The `CONFIG` column of `agents`: "v5", "v3 → v5" (still on an old version), "—".
    pub fn label(&self) -> String {
        let mut text = match (self.config_version, self.config_expected_version) {
            (0, 0) => "—".to_owned(),
            (running, expected) if running == expected => format!("v{running}"),
            (running, expected) => format!("v{running} → v{expected}"),
        };
        if self.config_refused_version != 0 {
            text.push_str(&format!(" (v{} refusée)", self.config_refused_version));
        }
        text
    }
}

/// Below the `agents` table: each refused version with its reason.
pub fn agents_notes(agents: &[crate::output::AgentView]) -> String {
    agents
        .iter()
        .filter(|a| a.config.config_refused_version != 0)
        .map(|a| {
            format!(
                "{} : configuration v{} refusée par l'agent, la précédente reste appliquée : {}\n",
                a.hostname, a.config.config_refused_version, a.config.config_refused_reason
            )
        })
        .collect()
}
