//! The command line: argument definitions and what each command prints.
//!
//! stdout carries results (the enrollment line, the `--once` summary, JSON); stderr carries
//! logs and errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use vigie_agent::config::{self, Config};
use vigie_agent::state::StateDir;
use vigie_agent::{enroll, run, transport};
use vigie_domain::AgentRole;

#[derive(Debug, Parser)]
#[command(name = "vigie-agent", version, about = "Vigie endpoint agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enroll this machine with a collector, using a token from `vigie-collector token create`.
    Enroll(EnrollArgs),
    /// Collect on schedule and deliver to the collector until stopped.
    Run(RunArgs),
    /// Collect now and print the reports; sends nothing.
    Report(ReportArgs),
    /// Validate a config file and report every problem.
    CheckConfig(CheckConfigArgs),
    /// Record the result of one backup run in the spool (for scripts that cannot write JSON).
    BackupResult(BackupResultArgs),
    /// Install, remove, start, stop the agent as a system service (Windows service, systemd).
    Service(vigie_agent::service::ServiceArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The enrollment token (single use).
    #[arg(long)]
    token: String,
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = RoleArg::Workstation)]
    role: RoleArg,
    /// Replace an existing enrollment.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Collect one snapshot, try to send everything queued, print `sent N, queued M`, exit.
    #[arg(long)]
    once: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Accepted for symmetry with `run`; nothing is read from it.
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print as a JSON array (the only format).
    #[arg(long, required = true)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[arg(long)]
    config: PathBuf,
    /// Accepted so every command takes the same arguments; not used.
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupResultArgs {
    /// The spool is `STATE_DIR/spool` unless the config sets `[backup] spool_dir`.
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Job name, as declared in `[[backup.jobs]]`.
    #[arg(long)]
    job: String,
    #[arg(long, value_enum)]
    status: StatusArg,
    /// Start time, RFC 3339 (e.g. 2026-11-27T22:30:00+04:00).
    #[arg(long, value_parser = parse_time)]
    started: Option<jiff::Timestamp>,
    /// End time, RFC 3339; default: now.
    #[arg(long, value_parser = parse_time)]
    finished: Option<jiff::Timestamp>,
    /// Bytes copied.
    #[arg(long)]
    bytes: Option<u64>,
    /// Files copied.
    #[arg(long)]
    files: Option<u64>,
    /// Where the backup went (a NAS share, a disk), never a data file name.
    #[arg(long)]
    target: Option<String>,
    /// Short text (error summary), cut to 500 characters.
    #[arg(long)]
    message: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusArg {
    Success,
    Warning,
    Failed,
}

fn parse_time(text: &str) -> Result<jiff::Timestamp, String> {
    vigie_agent::facts::backup::spool::parse_time(text)
        .map_err(|e| format!("{e}; write RFC 3339 with an offset, e.g. 2026-11-27T22:30:00+04:00"))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Server,
    Workstation,
    Imaging,
}

impl From<RoleArg> for AgentRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Server => AgentRole::Server,
            RoleArg::Workstation => AgentRole::Workstation,
            RoleArg::Imaging => AgentRole::Imaging,
        }
    }
}

/// Logs go to stderr, filtered by `VIGIE_LOG`. The service logs at info; one-shot commands
/// only warn, so their stderr stays readable.
pub fn init_logging(command: &Command) {
    use std::io::IsTerminal as _;
    use vigie_agent::service::{ServiceArgs, ServiceCommand};
    let default = match command {
        // The Windows service logs to its own file and the event log (service/windows.rs).
        Command::Service(ServiceArgs {
            command: ServiceCommand::Run(_),
        }) if cfg!(windows) => return,
        Command::Run(RunArgs { once: false, .. })
        | Command::Service(ServiceArgs {
            command: ServiceCommand::Run(_),
        }) => "info,sled=warn,h2=warn,hyper=warn",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

pub async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Enroll(args) => {
            let state = StateDir::new(args.state_dir);
            let enrollment =
                enroll::enroll(&state, &args.token, args.role.into(), args.force).await?;
            println!(
                "enrolled agent {} in clinic {}",
                enrollment.agent_id, enrollment.clinic_id
            );
        }
        Command::Run(args) => {
            let state = StateDir::new(args.state_dir);
            let mut config = load_config(args.config.as_deref())?;
            config.backup.state_dir = Some(state.path().to_owned());
            if args.once {
                let summary = run::run_once(&state, &config).await?;
                println!("sent {}, queued {}", summary.sent, summary.queued);
                if let Some(failure) = summary.failure {
                    eprintln!("not sent: {}", transport::render(&failure));
                }
            } else {
                run::run(&state, &config).await?;
            }
        }
        Command::Report(args) => {
            // Parsed so that a broken config fails here too, before a technician relies on it.
            let mut config = load_config(args.config.as_deref())?;
            config.backup.state_dir = args.state_dir;
            config.backup.preview = true;
            let reports = run::collect_now(&config).await;
            let json = serde_json::to_string_pretty(&reports)?;
            println!("{json}");
        }
        Command::BackupResult(args) => {
            use vigie_agent::facts::backup::{self, BackupStatus, spool};
            let mut config = load_config(args.config.as_deref())?;
            config.backup.state_dir = Some(args.state_dir);
            let dir = backup::spool_dir(&config.backup).context("no spool folder")?;
            let result = spool::NewResult {
                job: args.job,
                status: Some(match args.status {
                    StatusArg::Success => BackupStatus::Success,
                    StatusArg::Warning => BackupStatus::Warning,
                    StatusArg::Failed => BackupStatus::Failed,
                }),
                started: args.started,
                finished: Some(args.finished.unwrap_or_else(jiff::Timestamp::now)),
                bytes: args.bytes,
                files: args.files,
                target: args.target,
                message: args.message,
            };
            let path = spool::write_result(&dir, &result)?;
            println!("{}", path.display());
        }
        Command::Service(args) => vigie_agent::service::execute(args).await?,
        Command::CheckConfig(args) => {
            let _ = args.state_dir;
            let path = args.config.display().to_string();
            let text = std::fs::read_to_string(&args.config)
                .with_context(|| format!("cannot read config file {path}"))?;
            match config::parse_config(&text) {
                Ok(_) => println!("config OK: {path}"),
                Err(errors) => {
                    for problem in &errors.0 {
                        eprintln!("error: {path}: {problem}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => config::load(path)?,
        None => Config::default(),
    })
}
