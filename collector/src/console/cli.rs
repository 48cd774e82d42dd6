//! `vigie-collector technician ...` and `api-token ...`: console accounts and API tokens,
//! through the admin interface (the running `serve` holds the database). A password is read
//! from the terminal without echo, twice, or from stdin when it is not a terminal: one line,
//! or two identical lines.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use vigie_proto::v1;

use crate::cli::DataDirArg;
use crate::config::DataDir;
use crate::output::table;
use crate::server::convert::timestamp_from_proto;

#[derive(Debug, Args, Clone)]
pub struct RoleArg {
    /// technician (reads, acknowledges, resolves, opens maintenance windows) or admin (also
    /// changes tiers, configuration and accounts).
    #[arg(long, default_value = "technician", value_parser = ["technician", "admin"])]
    pub role: String,
}

/// Who runs the command, for the audit log.
#[derive(Debug, Args, Clone)]
pub struct ByUser {
    #[arg(
        id = "by",
        long = "by",
        env = "USER",
        default_value = "admin",
        value_name = "NAME"
    )]
    pub who: String,
}

#[derive(Debug, Subcommand)]
pub enum TechnicianCommand {
    /// Create a console account; the password is asked for (or read from stdin).
    Add {
        #[command(flatten)]
        dir: DataDirArg,
        /// The login name.
        name: String,
        #[command(flatten)]
        role: RoleArg,
        #[command(flatten)]
        by: ByUser,
    },
    /// List console accounts.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: its sessions end, it can no longer log in.
    Disable {
        #[command(flatten)]
        dir: DataDirArg,
        name: String,
        #[command(flatten)]
        by: ByUser,
    },
    /// Set a new password (ends the account's sessions and its lockout).
    Password {
        #[command(flatten)]
        dir: DataDirArg,
        name: String,
        #[command(flatten)]
        by: ByUser,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create a token for `/api/v1`; prints the token alone on stdout (it is shown only once).
    Create {
        #[command(flatten)]
        dir: DataDirArg,
        /// What the token is for, e.g. "glpi" (unique among tokens not revoked).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        role: RoleArg,
        #[command(flatten)]
        by: ByUser,
    },
    /// List tokens (never the tokens themselves: only their hashes are kept).
    List {
        #[command(flatten)]
        dir: DataDirArg,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its name.
    Revoke {
        #[command(flatten)]
        dir: DataDirArg,
        name: String,
        #[command(flatten)]
        by: ByUser,
    },
}

impl TechnicianCommand {
    pub fn data_dir(&self) -> &std::path::Path {
        match self {
            TechnicianCommand::Add { dir, .. }
            | TechnicianCommand::List { dir, .. }
            | TechnicianCommand::Disable { dir, .. }
            | TechnicianCommand::Password { dir, .. } => &dir.data_dir,
        }
    }
}

impl ApiTokenCommand {
    pub fn data_dir(&self) -> &std::path::Path {
        match self {
            ApiTokenCommand::Create { dir, .. }
            | ApiTokenCommand::List { dir, .. }
            | ApiTokenCommand::Revoke { dir, .. } => &dir.data_dir,
        }
    }
}

/// The new password: asked twice at a terminal; otherwise stdin's first line, and its second
/// line, when there is one, must be the same.
pub fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("Mot de passe : ").context("lecture du mot de passe")?;
        let second = rpassword::prompt_password("Mot de passe (encore) : ")
            .context("lecture du mot de passe")?;
        if first != second {
            bail!("les deux mots de passe diffèrent");
        }
        return Ok(first);
    }
    let mut lines = std::io::stdin().lock().lines();
    let first = lines
        .next()
        .transpose()
        .context("lecture du mot de passe sur l'entrée standard")?
        .unwrap_or_default();
    if let Some(second) = lines
        .next()
        .transpose()
        .context("lecture de l'entrée standard")?
        && second != first
    {
        bail!("les deux lignes de l'entrée standard diffèrent : mot de passe non changé");
    }
    if first.is_empty() {
        bail!("aucun mot de passe sur l'entrée standard");
    }
    Ok(first)
}

fn at(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_from_proto)
        .map(crate::time_text::local_with_year)
        .unwrap_or_else(|| "jamais".to_owned())
}

fn rfc3339(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.and_then(timestamp_from_proto)
        .map(crate::time_text::rfc3339)
}

fn technician_json(t: &v1::Technician) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "role": t.role,
        "disabled": t.disabled,
        "created_at": rfc3339(t.created_at.as_ref()),
        "last_login_at": rfc3339(t.last_login_at.as_ref()),
        "locked_until": rfc3339(t.locked_until.as_ref()),
        "failed_logins": t.failed_logins,
    })
}

fn role_fr(role: &str) -> &'static str {
    match role {
        "admin" => "administrateur",
        _ => "technicien",
    }
}

pub async fn run_technician(command: TechnicianCommand) -> anyhow::Result<()> {
    let data_dir = DataDir::new(command.data_dir());
    match command {
        TechnicianCommand::Add { name, role, by, .. } => {
            let password = read_password()?;
            let mut admin = crate::admin_client::connect(&data_dir).await?;
            let t = admin
                .add_technician(v1::AddTechnicianRequest {
                    name,
                    role: role.role,
                    password,
                    by: by.who,
                })
                .await
                .map_err(crate::commands::status_error)?
                .into_inner();
            eprintln!("compte {} créé ({})", t.name, role_fr(&t.role));
        }
        TechnicianCommand::List { json, .. } => {
            let mut admin = crate::admin_client::connect(&data_dir).await?;
            let all = admin
                .list_technicians(v1::ListTechniciansRequest {})
                .await
                .map_err(crate::commands::status_error)?
                .into_inner()
                .technicians;
            if json {
                let items: Vec<_> = all.iter().map(technician_json).collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if all.is_empty() {
                println!("Aucun compte.");
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|t| {
                        let state = if t.disabled {
                            "désactivé".to_owned()
                        } else if t.locked_until.is_some() {
                            format!("verrouillé jusqu'à {}", at(t.locked_until.as_ref()))
                        } else {
                            "actif".to_owned()
                        };
                        vec![
                            t.name.clone(),
                            role_fr(&t.role).to_owned(),
                            state,
                            at(t.last_login_at.as_ref()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["COMPTE", "RÔLE", "ÉTAT", "DERNIÈRE CONNEXION"], &rows)
                );
            }
        }
        TechnicianCommand::Disable { name, by, .. } => {
            let mut admin = crate::admin_client::connect(&data_dir).await?;
            let t = admin
                .disable_technician(v1::DisableTechnicianRequest { name, by: by.who })
                .await
                .map_err(crate::commands::status_error)?
                .into_inner();
            eprintln!("compte {} désactivé, ses sessions sont fermées", t.name);
        }
        TechnicianCommand::Password { name, by, .. } => {
            let password = read_password()?;
            let mut admin = crate::admin_client::connect(&data_dir).await?;
            let t = admin
                .set_technician_password(v1::SetTechnicianPasswordRequest {
                    name,
                    password,
                    by: by.who,
                })
                .await
                .map_err(crate::commands::status_error)?
                .into_inner();
            eprintln!(
                "mot de passe de {} changé, ses sessions sont fermées",
                t.name
            );
        }
    }
    Ok(())
}

pub async fn run_api_token(command: ApiTokenCommand) -> anyhow::Result<()> {
    let data_dir = DataDir::new(command.data_dir());
    let mut admin = crate::admin_client::connect(&data_dir).await?;
    match command {
        ApiTokenCommand::Create { name, role, by, .. } => {
            let created = admin
                .create_api_token(v1::CreateApiTokenRequest {
                    name,
                    role: role.role,
                    by: by.who,
                })
                .await
                .map_err(crate::commands::status_error)?
                .into_inner();
            println!("{}", created.token);
            if let Some(record) = created.record {
                eprintln!(
                    "jeton d'API {} créé ({}) : il n'est affiché qu'une fois",
                    record.name,
                    role_fr(&record.role)
                );
            }
        }
        ApiTokenCommand::List { json, .. } => {
            let tokens = admin
                .list_api_tokens(v1::ListApiTokensRequest {})
                .await
                .map_err(crate::commands::status_error)?
                .into_inner()
                .tokens;
            if json {
                let items: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "name": t.name,
                            "role": t.role,
                            "revoked": t.revoked,
                            "created_at": rfc3339(t.created_at.as_ref()),
                            "last_used_at": rfc3339(t.last_used_at.as_ref()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else if tokens.is_empty() {
                println!("Aucun jeton d'API.");
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            role_fr(&t.role).to_owned(),
                            if t.revoked { "révoqué" } else { "actif" }.to_owned(),
                            at(t.created_at.as_ref()),
                            at(t.last_used_at.as_ref()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["JETON", "RÔLE", "ÉTAT", "CRÉÉ", "DERNIER USAGE"], &rows)
                );
            }
        }
        ApiTokenCommand::Revoke { name, by, .. } => {
            let t = admin
                .revoke_api_token(v1::RevokeApiTokenRequest { name, by: by.who })
                .await
                .map_err(crate::commands::status_error)?
                .into_inner();
            eprintln!("jeton d'API {} révoqué", t.name);
        }
    }
    Ok(())
}
