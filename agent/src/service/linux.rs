//! systemd: `service install` enables the unit from `deploy/systemd/` (the packaged one when the
//! .deb installed it, else a copy written to `/etc/systemd/system` with this binary's paths).
//! Logs go to the journal through stdout/stderr.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{
    DefaultPaths, InstallArgs, Location, SERVICE_NAME, ServiceCommand, ServiceError, UninstallArgs,
    enroll_once, run_tool,
};
use crate::state::StateDir;

/// The unit shipped in `deploy/systemd/`, the one the .deb installs.
const UNIT_TEMPLATE: &str = include_str!("../../../deploy/systemd/vigie-agent.service");
const PACKAGED_UNIT: &str = "/lib/systemd/system/vigie-agent.service";
const LOCAL_UNIT: &str = "/etc/systemd/system/vigie-agent.service";
/// First line of a unit this command wrote, so `uninstall` removes only its own file.
const WRITTEN_MARK: &str =
    "# Written by `vigie-agent service install`; removed by `service uninstall`.";

pub async fn execute(command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install(args) => install(&args, true).await,
        ServiceCommand::Setup(args) => install(&args, false).await,
        ServiceCommand::Uninstall(args) => uninstall(&args),
        ServiceCommand::Start => {
            systemctl(&["start", SERVICE_NAME])?;
            Ok(())
        }
        ServiceCommand::Stop => {
            systemctl(&["stop", SERVICE_NAME])?;
            Ok(())
        }
        ServiceCommand::Status => {
            // `is-enabled`/`is-active` exit non-zero for "disabled"/"inactive": print either way.
            for query in ["is-enabled", "is-active"] {
                let output = std::process::Command::new("systemctl")
                    .args([query, SERVICE_NAME])
                    .output()
                    .context("cannot run systemctl")?;
                let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                println!("{query}: {answer}");
            }
            Ok(())
        }
        ServiceCommand::Run(location) => run_foreground(&location).await,
    }
}

async fn install(args: &InstallArgs, register: bool) -> anyhow::Result<()> {
    if args.location.config.is_none() {
        let default = DefaultPaths::unix().config_file;
        if super::write_config_if_absent(&default)? {
            println!("wrote {}", default.display());
        }
    }
    let paths = args.location.resolve();
    super::check_config(&paths)?;
    secure_state_dir(&paths.state_dir)?;
    enroll_once(&paths.state_dir, args.token.as_deref(), args.role).await?;
    if !register {
        return Ok(());
    }
    let defaults = DefaultPaths::unix();
    let packaged = Path::new(PACKAGED_UNIT).exists()
        && paths.state_dir == defaults.state_dir
        && args
            .location
            .config
            .as_ref()
            .is_none_or(|c| *c == defaults.config_file);
    if !packaged {
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let unit = local_unit(&exe, &paths.state_dir, paths.config_file.as_deref());
        std::fs::write(LOCAL_UNIT, unit).map_err(|source| ServiceError::Write {
            path: LOCAL_UNIT.into(),
            source,
        })?;
        println!("wrote {LOCAL_UNIT}");
    }
    if systemd_running() {
        systemctl(&["daemon-reload"])?;
    }
    systemctl(&["enable", SERVICE_NAME])?;
    if !systemd_running() {
        println!("{SERVICE_NAME} enabled; systemd is not running here: it starts at the next boot");
    } else if StateDir::new(&paths.state_dir).is_enrolled() {
        systemctl(&["restart", SERVICE_NAME])?;
        println!("{SERVICE_NAME} enabled and started");
    } else {
        println!("{SERVICE_NAME} enabled; start it once enrolled: vigie-agent service start");
    }
    Ok(())
}

fn uninstall(args: &UninstallArgs) -> anyhow::Result<()> {
    // Stopping an absent or stopped unit is not an error worth stopping the removal for.
    let disable: &[&str] = if systemd_running() {
        &["disable", "--now", SERVICE_NAME]
    } else {
        &["disable", SERVICE_NAME]
    };
    if let Err(error) = systemctl(disable) {
        eprintln!("warning: {error}");
    }
    let local = Path::new(LOCAL_UNIT);
    if std::fs::read_to_string(local).is_ok_and(|text| text.starts_with(WRITTEN_MARK)) {
        std::fs::remove_file(local).map_err(|source| ServiceError::Write {
            path: LOCAL_UNIT.into(),
            source,
        })?;
        println!("removed {LOCAL_UNIT}");
        if systemd_running() {
            systemctl(&["daemon-reload"])?;
        }
    }
    let paths = args.location.resolve();
    if args.purge {
        remove_if_present(&paths.state_dir)?;
        println!("removed {}", paths.state_dir.display());
    } else {
        println!("kept {} (enrollment, outbox)", paths.state_dir.display());
    }
    Ok(())
}

fn remove_if_present(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Creates the state directory 0700, or narrows an existing one to 0700.
fn secure_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    StateDir::new(dir).create_dir()?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to 0700", dir.display()))?;
    Ok(())
}

/// The shipped unit with this binary and these paths in `ExecStart`; a state directory
/// outside `/var/lib` is made writable under `ProtectSystem=strict`.
fn local_unit(exe: &Path, state_dir: &Path, config: Option<&Path>) -> String {
    let mut exec = format!(
        "ExecStart={} run --state-dir {}",
        exe.display(),
        state_dir.display()
    );
    if let Some(config) = config {
        exec.push_str(&format!(" --config {}", config.display()));
    }
    let mut unit = format!("{WRITTEN_MARK}\n");
    for line in UNIT_TEMPLATE.lines() {
        if line.starts_with("ExecStart=") {
            unit.push_str(&exec);
            if state_dir != DefaultPaths::unix().state_dir {
                unit.push_str(&format!("\nReadWritePaths={}", state_dir.display()));
            }
        } else {
            unit.push_str(line);
        }
        unit.push('\n');
    }
    unit
}

/// systemd's own test (`sd_booted`): containers and CI machines may have systemctl without it.
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

fn systemctl(args: &[&str]) -> Result<String, ServiceError> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    run_tool("systemctl", &args)
}

/// `service run` on Linux is `run`: systemd is the service manager.
async fn run_foreground(location: &Location) -> anyhow::Result<()> {
    let paths = location.resolve();
    let state = StateDir::new(PathBuf::from(&paths.state_dir));
    let mut config = match &paths.config_file {
        Some(path) => crate::config::load(path)?,
        None => crate::config::Config::default(),
    };
    config.backup.state_dir = Some(state.path().to_owned());
    crate::run::run(&state, &config).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_unit_points_at_this_binary_and_paths() {
        let unit = local_unit(
            Path::new("/opt/vigie/vigie-agent"),
            Path::new("/srv/vigie/state"),
            Some(Path::new("/srv/vigie/agent.toml")),
        );
        assert!(unit.starts_with(WRITTEN_MARK));
        assert!(unit.contains(
            "\nExecStart=/opt/vigie/vigie-agent run --state-dir /srv/vigie/state --config /srv/vigie/agent.toml\nReadWritePaths=/srv/vigie/state\n"
        ), "{unit}");
        assert_eq!(unit.matches("ExecStart=").count(), 1);
        assert!(unit.contains("[Install]\nWantedBy=multi-user.target"));
        let default = local_unit(
            Path::new("/usr/bin/vigie-agent"),
            &DefaultPaths::unix().state_dir,
            None,
        );
        assert!(!default.contains("ReadWritePaths"));
    }
}
