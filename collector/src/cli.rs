//! The command line (clap derive). Parsing only; `commands.rs` carries the commands out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vigie_domain::Tier;

use crate::config::{DEFAULT_ADMIN_LISTEN, DEFAULT_AGENT_LISTEN};

#[derive(Debug, Parser)]
#[command(
    name = "vigie-collector",
    version,
    about = "Vigie collector: enrolls clinic agents and stores what they report"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct DataDirArg {
    /// The collector's data directory.
    #[arg(long, env = "VIGIE_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data directory: configuration, CA, server and admin certificates.
    Init(InitArgs),
    /// Run the agent and admin listeners until SIGTERM or ctrl-c.
    Serve(DataDirArg),
    /// Manage clinics.
    #[command(subcommand)]
    Clinic(ClinicCommand),
    /// Manage enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List enrolled agents.
    Agents(AgentsArgs),
    /// Act on one agent.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Run a throwaway collector with one clinic per tier and a local agent each, printing
    /// what they report until ctrl-c (uses `vigie-agent` from this binary's directory).
    Demo,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Address the agent listener binds.
    #[arg(long, default_value = DEFAULT_AGENT_LISTEN, value_name = "ADDR")]
    pub agent_listen: SocketAddr,
    /// HOST:PORT agents use to reach the collector (default: --agent-listen).
    #[arg(long, value_name = "HOST:PORT")]
    pub public_addr: Option<String>,
    /// Address the admin listener binds (keep it on loopback).
    #[arg(long, default_value = DEFAULT_ADMIN_LISTEN, value_name = "ADDR")]
    pub admin_listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum ClinicCommand {
    /// Add a clinic; prints its id alone on stdout.
    Add {
        #[command(flatten)]
        dir: DataDirArg,
        /// The clinic's name.
        #[arg(long)]
        name: String,
        /// Contract tier: cmp0, cmp1 or cmp3.
        #[arg(long, value_parser = parse_tier)]
        tier: Tier,
    },
    /// List clinics.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a single-use enrollment token for a clinic; prints the token alone on stdout.
    Create {
        #[command(flatten)]
        dir: DataDirArg,
        /// The clinic the enrolled agent will belong to.
        #[arg(long, value_name = "ID")]
        clinic: String,
        /// How long the token stays valid, e.g. "24h", "90m".
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

#[derive(Debug, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Only the agents of this clinic.
    #[arg(long, value_name = "ID")]
    pub clinic: Option<String>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Revoke an agent: its certificate is refused from now on.
    Revoke {
        #[command(flatten)]
        dir: DataDirArg,
        /// The agent's id.
        agent_id: String,
    },
}

impl Command {
    /// The data directory every command takes.
    /// The data directory the command works on; `demo` makes its own.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        Some(match self {
            Command::Demo => return None,
            Command::Init(args) => &args.dir.data_dir,
            Command::Serve(dir) | Command::Agents(AgentsArgs { dir, .. }) => &dir.data_dir,
            Command::Clinic(ClinicCommand::Add { dir, .. } | ClinicCommand::List { dir, .. })
            | Command::Token(TokenCommand::Create { dir, .. })
            | Command::Agent(AgentCommand::Revoke { dir, .. }) => &dir.data_dir,
        })
    }

    /// Whether the command is long-running and its info logs matter.
    pub fn is_server(&self) -> bool {
        matches!(self, Command::Init(_) | Command::Serve(_) | Command::Demo)
    }
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    text.parse::<Tier>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn token_ttl_and_tier_parse() {
        let cli = Cli::try_parse_from([
            "vigie-collector",
            "token",
            "create",
            "--data-dir",
            "/d",
            "--clinic",
            "c",
            "--ttl",
            "90m",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Command::Token(TokenCommand::Create { ttl, .. }) if ttl == Duration::from_secs(5400)
        ));
        assert!(
            Cli::try_parse_from([
                "vigie-collector",
                "clinic",
                "add",
                "--data-dir",
                "/d",
                "--name",
                "n",
                "--tier",
                "cmp2"
            ])
            .is_err()
        );
    }
}
