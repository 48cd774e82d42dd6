//! The command line (clap derive). Parsing only; `commands.rs` carries the commands out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vigie_domain::Tier;

use crate::alerts::policy::Family;

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
    /// List alerts (open and acknowledged; --all for resolved too), or act on one.
    Alerts(AlertsArgs),
    /// Maintenance windows: alerts are recorded, marked silenced, and not escalated
    /// (`silence`, the command's first name, still works).
    #[command(subcommand, alias = "silence")]
    Maintenance(MaintenanceCommand),
    /// Tickets: each alert's escalation to each ticket system, and its state (--all: solved
    /// and cancelled ones too).
    Tickets(TicketsArgs),
    /// Ticket systems (`[[escalation.sinks]]` in collector.toml).
    #[command(subcommand)]
    Escalation(EscalationCommand),
    /// Back up the collector (CA key, certificates, configuration and the whole database at
    /// one point in time) into one file, mode 0600, while `serve` runs. Keep it like the CA key.
    Backup(BackupArgs),
    /// Restore a backup into a new (or empty) data directory, ready for `serve`.
    Restore(RestoreArgs),
    /// Clinic reports (PDF in French, and their figures as JSON).
    #[command(subcommand)]
    Report(ReportCommand),
    /// Central configuration of clinics and agents: show, set (validated whole), history.
    #[command(subcommand)]
    Config(crate::central_config::command::ConfigCommand),
    /// Technician console accounts (argon2id passwords).
    #[command(subcommand)]
    Technician(crate::console::cli::TechnicianCommand),
    /// API tokens for `/api/v1` (stored hashed).
    #[command(subcommand)]
    ApiToken(crate::console::cli::ApiTokenCommand),
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
    /// Address the technician console (HTTPS) binds.
    #[arg(long, default_value = crate::console::DEFAULT_CONSOLE_LISTEN, value_name = "ADDR")]
    pub console_listen: SocketAddr,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// The archive to write (replaced only once the new one is complete and checked).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive `backup` wrote.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The new data directory: must not exist or be empty.
    #[command(flatten)]
    pub dir: DataDirArg,
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
    /// Change a clinic's contract tier; alerts of categories the new tier does not cover are
    /// resolved with that reason.
    SetTier {
        #[command(flatten)]
        dir: DataDirArg,
        /// The clinic's id.
        clinic_id: String,
        /// cmp0, cmp1 or cmp3.
        #[arg(value_parser = parse_tier)]
        tier: Tier,
        #[command(flatten)]
        by: ByArg,
    },
    /// Show, or override family by family, which rules alert for a clinic (e.g. LAN
    /// supervision for a CMP1 clinic: `--enable lan`). Families: backup, os-updates,
    /// antivirus, software, disk, lan, agent-silent.
    Rules {
        #[command(flatten)]
        dir: DataDirArg,
        /// The clinic's id.
        clinic_id: String,
        /// Alert for this family even if the tier does not cover it (repeatable).
        #[arg(long, value_name = "FAMILY", value_parser = parse_family)]
        enable: Vec<Family>,
        /// Never alert for this family (repeatable).
        #[arg(long, value_name = "FAMILY", value_parser = parse_family)]
        disable: Vec<Family>,
        /// Back to what the tier says for this family (repeatable).
        #[arg(long, value_name = "FAMILY", value_parser = parse_family)]
        reset: Vec<Family>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        by: ByArg,
    },
    /// List clinics.
    List {
        #[command(flatten)]
        dir: DataDirArg,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set the address the monthly report is e-mailed to (`[reports] monthly = true`); an
    /// empty address ("") clears it.
    SetContact {
        #[command(flatten)]
        dir: DataDirArg,
        /// The clinic's id.
        clinic_id: String,
        /// e.g. secretariat@cabinet.re
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// A month's report of one clinic (or of all): `<clinic-name>-YYYY-MM.pdf` in --out, with
    /// `--json` the figures beside it (`.json`). Prints each file written.
    Monthly(MonthlyReportArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["clinic", "all"])))]
pub struct MonthlyReportArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// The clinic's id.
    #[arg(long, value_name = "ID")]
    pub clinic: Option<String>,
    /// Every clinic.
    #[arg(long)]
    pub all: bool,
    /// The month, e.g. 2026-11 (counted in the clinic's time zone).
    #[arg(long, value_name = "YYYY-MM")]
    pub month: String,
    /// The folder the files are written to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write the figures as JSON.
    #[arg(long)]
    pub json: bool,
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

/// Who acts, for the alert history.
#[derive(Debug, Args, Clone)]
pub struct ByArg {
    /// Who is acting (recorded in the alert history).
    #[arg(
        long = "by",
        env = "USER",
        default_value = "admin",
        value_name = "NAME"
    )]
    pub name: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub action: Option<AlertAction>,
    /// The collector's data directory.
    #[arg(long, env = "VIGIE_DATA_DIR", value_name = "DIR", required = true)]
    pub data_dir: Option<PathBuf>,
    /// Only the alerts of this clinic.
    #[arg(long, value_name = "ID")]
    pub clinic: Option<String>,
    /// Resolved alerts too.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertAction {
    /// Acknowledge an alert: someone is on it.
    Ack(AlertActionArgs),
    /// Resolve an alert by hand; only a newer fact reopens it.
    Resolve(AlertActionArgs),
}

#[derive(Debug, Args)]
pub struct AlertActionArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// The alert's number, as listed.
    #[arg(value_parser = parse_alert_id)]
    pub alert_id: u64,
    /// Why, or what was done.
    #[arg(long, default_value = "")]
    pub note: String,
    #[command(flatten)]
    pub by: ByArg,
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Put a clinic or an agent in maintenance for a while; prints the window's number.
    Add {
        #[command(flatten)]
        dir: DataDirArg,
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "agent",
            conflicts_with = "agent"
        )]
        clinic: Option<String>,
        #[arg(long, value_name = "ID")]
        agent: Option<String>,
        /// How long, e.g. "2h", "90m", "3days".
        #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
        duration: Duration,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        by: ByArg,
    },
    /// List maintenance windows not yet over (--all: every one).
    List {
        #[command(flatten)]
        dir: DataDirArg,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a maintenance window now.
    Remove {
        #[command(flatten)]
        dir: DataDirArg,
        /// The window's number.
        #[arg(value_parser = parse_alert_id)]
        window_id: u64,
        #[command(flatten)]
        by: ByArg,
    },
}

#[derive(Debug, Args)]
pub struct TicketsArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Solved and cancelled escalations too.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EscalationCommand {
    /// Send a test ticket through one sink now; prints its id there.
    Test {
        #[command(flatten)]
        dir: DataDirArg,
        /// The sink's name in `[[escalation.sinks]]`.
        #[arg(long, value_name = "NAME")]
        sink: String,
    },
}

impl Command {
    /// The data directory every command takes.
    /// The data directory the command works on; `demo` makes its own.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        Some(match self {
            Command::Demo => return None,
            Command::Config(command) => command.data_dir(),
            Command::Technician(command) => command.data_dir(),
            Command::ApiToken(command) => command.data_dir(),
            Command::Init(args) => &args.dir.data_dir,
            Command::Serve(dir) | Command::Agents(AgentsArgs { dir, .. }) => &dir.data_dir,
            Command::Backup(BackupArgs { dir, .. }) | Command::Restore(RestoreArgs { dir, .. }) => {
                &dir.data_dir
            }
            Command::Tickets(TicketsArgs { dir, .. })
            | Command::Escalation(EscalationCommand::Test { dir, .. }) => &dir.data_dir,
            Command::Alerts(AlertsArgs {
                action: Some(AlertAction::Ack(a) | AlertAction::Resolve(a)),
                ..
            }) => &a.dir.data_dir,
            Command::Alerts(AlertsArgs { data_dir, .. }) => data_dir.as_ref()?,
            Command::Maintenance(
                MaintenanceCommand::Add { dir, .. }
                | MaintenanceCommand::List { dir, .. }
                | MaintenanceCommand::Remove { dir, .. },
            )
            | Command::Clinic(
                ClinicCommand::SetTier { dir, .. }
                | ClinicCommand::Rules { dir, .. }
                | ClinicCommand::SetContact { dir, .. },
            )
            | Command::Report(ReportCommand::Monthly(MonthlyReportArgs { dir, .. })) => {
                &dir.data_dir
            }
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

fn parse_family(text: &str) -> Result<Family, String> {
    text.parse::<Family>().map_err(|e| e.to_string())
}

/// An alert or maintenance window number, as typed: `12` or `#12`.
fn parse_alert_id(text: &str) -> Result<u64, String> {
    text.trim()
        .trim_start_matches('#')
        .parse::<u64>()
        .map_err(|_| format!("{text:?} n'est pas un numéro comme 12"))
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
    fn silence_is_a_hidden_alias_of_maintenance() {
        for name in ["maintenance", "silence"] {
            let cli =
                Cli::try_parse_from(["vigie-collector", name, "remove", "--data-dir", "/d", "#7"])
                    .expect("parses");
            assert!(
                matches!(
                    cli.command,
                    Command::Maintenance(MaintenanceCommand::Remove { window_id: 7, .. })
                ),
                "{name}"
            );
        }
        let help = Cli::command().render_help().to_string();
        let listed = |name: &str| help.lines().any(|l| l.trim_start().starts_with(name));
        assert!(listed("maintenance") && !listed("silence"), "{help}");
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
