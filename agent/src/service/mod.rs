//! `vigie-agent service ...`: installing, starting and stopping the agent as a system service
//! (the Windows service control manager, or systemd), default paths, and the check that only
//! the service account and administrators can read the state directory (it holds the private
//! key). The service runs the same [`crate::run::run_until`] as the console; only the stop
//! signal differs.
//!
//! `sddl.rs` and [`check_unix_mode`] are pure and tested everywhere; `windows.rs` and
//! `linux.rs` are the thin OS adapters.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use vigie_domain::AgentRole;

pub mod sddl;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

/// The name the service manager knows the agent by (SCM service name, systemd unit stem).
#[cfg(windows)]
pub const SERVICE_NAME: &str = "VigieAgent";
#[cfg(not(windows))]
pub const SERVICE_NAME: &str = "vigie-agent";
/// What the Services console and the event log show.
pub const DISPLAY_NAME: &str = "Vigie Agent";

/// Where an installed agent keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPaths {
    pub state_dir: PathBuf,
    pub config_file: PathBuf,
    /// Windows only: Linux logs go to the journal through stdout.
    pub log_dir: PathBuf,
}

impl DefaultPaths {
    /// Windows: everything under `%ProgramData%\Vigie\`; elsewhere `/etc/vigie/` and
    /// `/var/lib/vigie-agent/`.
    pub fn for_this_os() -> Self {
        #[cfg(windows)]
        {
            let program_data = std::env::var_os("ProgramData")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
            Self::windows(&program_data)
        }
        #[cfg(not(windows))]
        {
            Self::unix()
        }
    }

    pub fn windows(program_data: &Path) -> Self {
        let root = program_data.join("Vigie");
        DefaultPaths {
            state_dir: root.join("state"),
            config_file: root.join("agent.toml"),
            log_dir: root.join("logs"),
        }
    }

    pub fn unix() -> Self {
        DefaultPaths {
            state_dir: PathBuf::from("/var/lib/vigie-agent"),
            config_file: PathBuf::from("/etc/vigie/agent.toml"),
            log_dir: PathBuf::from("/var/log/vigie-agent"),
        }
    }
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register the agent with the service manager, enroll it if given a token, start it.
    Install(InstallArgs),
    /// Stop and unregister the service; the state (enrollment, outbox) stays unless --purge.
    Uninstall(UninstallArgs),
    /// Start the installed service.
    Start,
    /// Stop the installed service (the outbox write in progress finishes first).
    Stop,
    /// Print whether the service is installed and running.
    Status,
    /// What the Windows service control manager starts (not for a terminal).
    #[command(hide = true)]
    Run(Location),
    /// What the MSI runs once it registered the service: state folder access, event source,
    /// delayed start, recovery actions, enrollment with a token.
    #[command(hide = true)]
    Setup(InstallArgs),
}

/// Where the service keeps its state and reads its config; defaults per OS.
#[derive(Debug, Clone, Args)]
pub struct Location {
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Windows: where the service writes its rotated log file.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Windows, for test machines whose `icacls` cannot read access lists (wine): start even
    /// though the state folder's access list was not verified (said in the log and event log).
    #[arg(long, hide = true)]
    pub unverified_state_access: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub location: Location,
    /// Enroll first with this token (from `vigie-collector token create`), unless this machine
    /// is already enrolled.
    #[arg(long)]
    pub token: Option<String>,
    /// The role used when enrolling with --token.
    #[arg(long, default_value = "workstation", value_parser = parse_role)]
    pub role: AgentRole,
}

#[derive(Debug, Clone, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub location: Location,
    /// Also delete the state (enrollment, key, outbox), the logs and the config.
    #[arg(long)]
    pub purge: bool,
}

fn parse_role(text: &str) -> Result<AgentRole, String> {
    match text {
        "server" => Ok(AgentRole::Server),
        "workstation" => Ok(AgentRole::Workstation),
        "imaging" => Ok(AgentRole::Imaging),
        other => Err(format!(
            "unknown role {other:?}: server, workstation or imaging"
        )),
    }
}

/// A resolved [`Location`].
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_dir: PathBuf,
    /// `None` when no `--config` was given and the default file does not exist: defaults apply.
    pub config_file: Option<PathBuf>,
    pub log_dir: PathBuf,
}

impl Location {
    pub fn resolve(&self) -> Paths {
        let defaults = DefaultPaths::for_this_os();
        Paths {
            state_dir: self.state_dir.clone().unwrap_or(defaults.state_dir),
            config_file: match &self.config {
                Some(path) => Some(path.clone()),
                None => defaults
                    .config_file
                    .exists()
                    .then_some(defaults.config_file),
            },
            log_dir: self.log_dir.clone().unwrap_or(defaults.log_dir),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{action}: {reason}")]
    Manager { action: String, reason: String },
    #[error("cannot run {program}: {source}")]
    Tool {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    ToolFailed {
        program: String,
        status: String,
        output: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this command is not available on this system")]
    Unsupported,
}

/// Why the agent refuses to start with this state directory.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "{dir} can be read by others (mode {mode:o}): it holds the agent's private key; \
         fix: chmod 700 {dir}"
    )]
    UnixMode { dir: String, mode: u32 },
    #[error(
        "{dir} can be read by {trustees}: only SYSTEM and Administrators may read the agent's \
         private key; fix (as administrator): {fix}"
    )]
    WindowsAcl {
        dir: String,
        trustees: String,
        fix: String,
    },
    #[error(
        "cannot check who can read {dir} ({reason}); fix (as administrator): {fix}, then \
         check with: icacls \"{dir}\""
    )]
    Unverifiable {
        dir: String,
        reason: String,
        fix: String,
    },
    #[error("cannot read {dir}: {source}")]
    Stat {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// Group or others may read, write or enter: refused (the unit and `StateDir` make it 0700).
pub fn check_unix_mode(dir: &Path, mode: u32) -> Result<(), AccessError> {
    if mode & 0o077 == 0 {
        Ok(())
    } else {
        Err(AccessError::UnixMode {
            dir: dir.display().to_string(),
            mode: mode & 0o7777,
        })
    }
}

/// The `icacls` command that restricts a folder to SYSTEM and Administrators (by SID, so it
/// works on a French Windows too), removing what it inherited from `%ProgramData%`.
pub fn icacls_restrict_args(dir: &Path) -> Vec<String> {
    vec![
        dir.display().to_string(),
        "/inheritance:r".into(),
        "/grant:r".into(),
        format!("*{}:(OI)(CI)F", sddl::SID_LOCAL_SYSTEM),
        format!("*{}:(OI)(CI)F", sddl::SID_ADMINISTRATORS),
    ]
}

/// Explicit entries a folder may already carry (Users, Authenticated Users, CREATOR OWNER,
/// Everyone): removed in a second `icacls` call, as `/grant:r` replaces only the SIDs it names.
pub fn icacls_remove_args(dir: &Path) -> Vec<String> {
    vec![
        dir.display().to_string(),
        "/remove:g".into(),
        "*S-1-5-32-545".into(),
        "*S-1-5-11".into(),
        "*S-1-3-0".into(),
        "*S-1-1-0".into(),
    ]
}

/// [`icacls_restrict_args`] as one line a technician can paste.
pub fn icacls_restrict_line(dir: &Path) -> String {
    let args = icacls_restrict_args(dir);
    format!(
        "icacls \"{}\" {}",
        args[0],
        args[1..]
            .iter()
            .map(|a| if a.contains('(') {
                format!("\"{a}\"")
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The check the agent makes before it starts (`run`, and the Windows service).
pub fn check_state_access(dir: &Path) -> Result<(), AccessError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(dir) {
            Ok(metadata) => check_unix_mode(dir, metadata.permissions().mode()),
            // Not enrolled yet: loading the enrollment says so, and how to enroll.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(AccessError::Stat {
                dir: dir.display().to_string(),
                source,
            }),
        }
    }
    #[cfg(windows)]
    {
        windows::check_state_access(dir)
    }
}

/// Runs `vigie-agent service ...`.
pub async fn execute(args: ServiceArgs) -> anyhow::Result<()> {
    #[cfg(windows)]
    {
        windows::execute(args.command).await
    }
    #[cfg(target_os = "linux")]
    {
        linux::execute(args.command).await
    }
    #[cfg(not(any(windows, target_os = "linux")))]
    {
        let _ = args;
        Err(ServiceError::Unsupported.into())
    }
}

/// Enrolls with `token` unless this state directory is already enrolled (installers run this
/// on every upgrade and repair: the enrollment is made once).
pub async fn enroll_once(
    state_dir: &Path,
    token: Option<&str>,
    role: AgentRole,
) -> anyhow::Result<()> {
    let state = crate::state::StateDir::new(state_dir);
    match token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(_) if state.is_enrolled() => {
            println!(
                "already enrolled ({}): token not used",
                state_dir.join(crate::state::ENROLLMENT_FILE).display()
            );
        }
        Some(token) => {
            let enrollment = crate::enroll::enroll(&state, token, role, false).await?;
            println!(
                "enrolled agent {} in clinic {}",
                enrollment.agent_id, enrollment.clinic_id
            );
        }
        None if !state.is_enrolled() => {
            println!(
                "not enrolled yet: the service will refuse to start until you run \
                 vigie-agent enroll --token TOKEN --state-dir \"{}\"",
                state_dir.display()
            );
        }
        None => {}
    }
    Ok(())
}

/// Refuses to register a service whose config is missing or invalid: it would only fail later.
pub fn check_config(paths: &Paths) -> anyhow::Result<()> {
    if let Some(path) = &paths.config_file {
        crate::config::load(path)?;
    }
    Ok(())
}

/// The configuration the packages install: every setting at its default.
pub const PACKAGE_CONFIG: &str = include_str!("../../../deploy/agent-package.toml");

/// Writes [`PACKAGE_CONFIG`] unless the file exists: an edited config survives reinstalls.
pub fn write_config_if_absent(path: &Path) -> Result<bool, ServiceError> {
    if path.exists() {
        return Ok(false);
    }
    let write_error = |source| ServiceError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    std::fs::write(path, PACKAGE_CONFIG).map_err(write_error)?;
    Ok(true)
}

/// Runs an outside tool (`systemctl`, `icacls`, `sc`), its output folded into the error.
pub fn run_tool(program: &str, args: &[String]) -> Result<String, ServiceError> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ServiceError::Tool {
            program: program.to_owned(),
            source,
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(ServiceError::ToolFailed {
            program: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            output: text.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_mode_check_accepts_owner_only() {
        let dir = Path::new("/var/lib/vigie-agent");
        for (mode, ok) in [
            (0o40700, true),
            (0o40500, true),
            (0o40750, false),
            (0o40755, false),
            (0o40701, false),
            (0o40777, false),
        ] {
            assert_eq!(check_unix_mode(dir, mode).is_ok(), ok, "{mode:o}");
        }
        let refusal = check_unix_mode(dir, 0o40755).expect_err("refused");
        let text = refusal.to_string();
        assert!(text.contains("chmod 700 /var/lib/vigie-agent"), "{text}");
        assert!(text.contains("755"), "{text}");
    }

    #[test]
    fn default_paths_per_os() {
        let windows = DefaultPaths::windows(Path::new(r"C:\ProgramData"));
        assert!(windows.state_dir.ends_with("state"));
        assert!(windows.log_dir.starts_with(r"C:\ProgramData"));
        let unix = DefaultPaths::unix();
        assert_eq!(unix.state_dir, Path::new("/var/lib/vigie-agent"));
        assert_eq!(unix.config_file, Path::new("/etc/vigie/agent.toml"));
    }

    #[test]
    fn icacls_line_uses_sids_and_quotes() {
        let line = icacls_restrict_line(Path::new(r"C:\ProgramData\Vigie\state"));
        assert_eq!(
            line,
            r#"icacls "C:\ProgramData\Vigie\state" /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F""#
        );
    }

    #[test]
    fn package_config_parses_and_is_written_once() {
        crate::config::parse_config(PACKAGE_CONFIG).expect("the packaged config is valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("Vigie").join("agent.toml");
        assert!(write_config_if_absent(&path).expect("write"));
        std::fs::write(&path, "# edited\n").expect("edit");
        assert!(!write_config_if_absent(&path).expect("kept"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "# edited\n");
    }

    #[tokio::test]
    async fn enroll_once_without_token_only_explains() {
        let dir = tempfile::tempdir().expect("tempdir");
        enroll_once(dir.path(), None, AgentRole::Workstation)
            .await
            .expect("nothing to do");
        enroll_once(dir.path(), Some("  "), AgentRole::Workstation)
            .await
            .expect("a blank TOKEN property is no token");
    }
}
