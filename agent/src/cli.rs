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
    /// List the reports the collector refused for good, kept in the outbox's quarantine (stop
    /// the agent service first: the outbox has one user at a time).
    Quarantine(QuarantineArgs),
    /// Run a backup (or check) command as the scheduler would, and record its result in the
    /// spool. Its output passes through; the exit code is the command's.
    Exec(ExecArgs),
    /// Moves an outbox left by an older agent (sled) into the plain-file outbox and exits;
    /// `run` starts it, so that sled never runs in the agent itself.
    #[command(hide = true, name = vigie_agent::run::OUTBOX_IMPORT_COMMAND)]
    OutboxImport(OutboxImportArgs),
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct OutboxImportArgs {
    #[arg(long)]
    outbox_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The spool is `STATE_DIR/spool` unless the config sets `[backup] spool_dir`.
    #[arg(long, env = "VIGIE_STATE_DIR")]
    state_dir: PathBuf,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Job name, as declared in `[[backup.jobs]]`.
    #[arg(long)]
    job: String,
    /// Whose exit codes and output to read: restic, borg, rsync, robocopy, or command
    /// (exit code 0 alone is a success).
    #[arg(long, default_value = "command", value_parser = parse_exec_source)]
    source: &'static vigie_agent::facts::backup::Product,
    /// `check` for an integrity check (`restic check`, `borg check`, a restore test).
    #[arg(long, value_enum, default_value_t = KindArg::Backup)]
    kind: KindArg,
    /// Where the backup goes (a NAS share, a repository name), never a data file name.
    #[arg(long)]
    target: Option<String>,
    /// Stop the command (and its children) after this long, e.g. `6h`: a failed result.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KindArg {
    Backup,
    Check,
}

fn parse_exec_source(name: &str) -> Result<&'static vigie_agent::facts::backup::Product, String> {
    use vigie_agent::facts::backup::products;
    products::named(name)
        .filter(|p| p.judge.is_some())
        .ok_or_else(|| format!("expected one of {}", products::exec_sources().join(", ")))
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
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use vigie_agent::service::{ServiceArgs, ServiceCommand};
    let default = match command {
        // The Windows service logs to its own file and the event log (service/windows.rs).
        Command::Service(ServiceArgs {
            command: ServiceCommand::Run(_),
        }) if cfg!(windows) => return,
        Command::Run(RunArgs { once: false, .. })
        | Command::OutboxImport(_)
        | Command::Service(ServiceArgs {
            command: ServiceCommand::Run(_),
        }) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .finish()
        .with(vigie_agent::logging::filter(default))
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
                let health = &summary.health;
                if health.write_failures_total > 0 {
                    println!(
                        "outbox write failures {} ({} in this run), last: {}",
                        health.write_failures_total,
                        summary.write_failures,
                        health.last_write_error
                    );
                }
                if health.quarantined_total > 0 {
                    println!(
                        "quarantined {} (total {}, discarded {}), last reason: {}",
                        health.quarantined,
                        health.quarantined_total,
                        health.quarantine_dropped_total,
                        health.last_quarantine_reason
                    );
                }
                if let Some(error) = &summary.queue_failure {
                    eprintln!("not queued: {}", transport::render(error));
                }
                if let Some(failure) = &summary.failure {
                    eprintln!("not sent: {}", transport::render(failure));
                }
                if summary.needs_attention() {
                    return Ok(ExitCode::FAILURE);
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
        Command::OutboxImport(args) => {
            let _outbox = vigie_agent::outbox::Outbox::open(&args.outbox_dir, u64::MAX)?;
            // Open goes on when the move fails (it counts and logs why); say so to `run`.
            if vigie_agent::outbox::Outbox::old_outbox_present(&args.outbox_dir) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Quarantine(args) => {
            let state = StateDir::new(args.state_dir);
            let outbox = vigie_agent::outbox::Outbox::open(&state.outbox_dir(), u64::MAX)?;
            let reports = outbox.quarantined_reports()?;
            let health = outbox.health();
            if args.json {
                let items: Vec<_> = reports
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id.to_string(),
                            "kind": r.kind.as_str(),
                            "quarantined_at": jiff::Timestamp::from_second(r.quarantined_at)
                                .map(|t| t.to_string())
                                .unwrap_or_default(),
                            "reason": r.reason,
                            "bytes": r.bytes,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                for r in &reports {
                    println!("{}  {}  {}  {}", r.id, r.kind.as_str(), r.bytes, r.reason);
                }
                println!(
                    "quarantined {} (total {}, discarded {})",
                    health.quarantined, health.quarantined_total, health.quarantine_dropped_total
                );
            }
        }
        Command::Exec(args) => return exec(args).await,
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

/// Runs the wrapped command whatever else is wrong: a broken config only loses its
/// `spool_dir` (the default spool is used), never the backup itself.
async fn exec(args: ExecArgs) -> anyhow::Result<ExitCode> {
    use vigie_agent::facts::backup::{self, RunKind, exec};
    let mut config = load_config(args.config.as_deref()).unwrap_or_else(|error| {
        eprintln!("vigie-agent exec: {error:#}; using the default spool");
        Config::default()
    });
    config.backup.state_dir = Some(args.state_dir);
    if !config.backup.jobs.is_empty()
        && !config
            .backup
            .jobs
            .iter()
            .any(|j| j.name.trim() == args.job.trim())
    {
        eprintln!(
            "vigie-agent exec: job {:?} is not declared in [[backup.jobs]]: a missing run will not be noticed",
            args.job
        );
    }
    let spool_dir = backup::spool_dir(&config.backup).context("no spool folder")?;
    let executed = exec::run(&exec::Exec {
        job: args.job,
        kind: match args.kind {
            KindArg::Backup => RunKind::Backup,
            KindArg::Check => RunKind::Check,
        },
        product: args.source,
        target: args.target,
        timeout: args.timeout,
        command: args.command,
        spool_dir,
    })
    .await;
    let run = &executed.run;
    let code = match &executed.written {
        Ok(path) => {
            tracing::info!(job = %run.job, kind = run.kind.as_str(), status = run.status.as_str(), cause = %run.cause, result = %path.display(), "backup result written");
            executed.exit_code
        }
        Err(error) => {
            // The scheduler must see that nothing was recorded, even after a good run.
            eprintln!(
                "vigie-agent exec: cannot record the result of job {}: {error}",
                run.job
            );
            if executed.exit_code == 0 {
                1
            } else {
                executed.exit_code
            }
        }
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => config::load(path)?,
        None => Config::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words of a shell line, with double quotes (enough for the examples).
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if any || !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                        any = false;
                    }
                }
                c => word.push(c),
            }
        }
        if any || !word.is_empty() {
            out.push(word);
        }
        out
    }

    /// Every `vigie-agent exec` line of the deploy examples parses, so they never rot.
    #[test]
    fn the_deploy_examples_of_exec_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/backup");
        let read = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).expect("example");
        let mut lines: Vec<String> = read("crontab")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.find("vigie-agent exec").map(|at| l[at..].to_owned()))
            .collect();
        let service = read("vigie-backup-nightly.service").replace("\\\n", " ");
        lines.extend(
            service
                .lines()
                .filter_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/"))
                .map(str::to_owned),
        );
        let task = read("windows-scheduled-task.xml");
        let arguments = task
            .split("<Arguments>")
            .nth(1)
            .and_then(|rest| rest.split("</Arguments>").next())
            .expect("task arguments");
        lines.push(format!("vigie-agent {arguments}"));
        assert!(lines.len() >= 6, "{lines:?}");
        for line in &lines {
            let cli = Cli::try_parse_from(words(line)).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(matches!(cli.command, Command::Exec(_)), "{line}");
        }
    }
}
