//! The Windows service: registered with the service control manager (SCM) as `VigieAgent`,
//! LocalSystem, automatic (delayed) start, restarted after 1 then 5 minutes when it fails.
//! The SCM starts `vigie-agent.exe service run`; the service main is a thin shell around
//! [`crate::run::run_until`] with the SCM's stop or shutdown as the stop signal. Logs go to a
//! size-rotated file under `%ProgramData%\Vigie\logs`; start, stop and fatal errors also go to
//! the Windows event log (source "Vigie Agent", Application log).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use super::{
    AccessError, DISPLAY_NAME, InstallArgs, Location, Paths, SERVICE_NAME, ServiceCommand,
    ServiceError, UninstallArgs, enroll_once, run_tool, sddl,
};
use crate::state::StateDir;

const DESCRIPTION: &str = "Vigie: reports this machine's health, backups and updates to the MSP.";
/// One log file is cut at this size; `LOG_FILES_KEPT` older ones are kept (60 MB at most).
const LOG_FILE_BYTES: usize = 10 * 1024 * 1024;
const LOG_FILES_KEPT: usize = 5;
pub const LOG_FILE_NAME: &str = "vigie-agent.log";
/// How long the SCM waits for a stop before it considers the service hung.
const STOP_WAIT_HINT: Duration = Duration::from_secs(30);

pub async fn execute(command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install(args) => install(&args).await,
        ServiceCommand::Setup(args) => setup(&args).await,
        ServiceCommand::Uninstall(args) => uninstall(&args),
        ServiceCommand::Start => {
            let service = open(ServiceAccess::START)?;
            service
                .start::<&str>(&[])
                .map_err(|e| scm_error("cannot start the service", e))?;
            println!("{SERVICE_NAME} starting");
            Ok(())
        }
        ServiceCommand::Stop => stop_and_wait(),
        ServiceCommand::Status => {
            let service = open(ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)?;
            let status = service
                .query_status()
                .map_err(|e| scm_error("cannot query the service", e))?;
            let config = service
                .query_config()
                .map_err(|e| scm_error("cannot read the service configuration", e))?;
            println!("state: {:?}", status.current_state);
            println!("start: {:?}", config.start_type);
            println!("command: {}", config.executable_path.display());
            Ok(())
        }
        ServiceCommand::Run(location) => run_dispatcher(location),
    }
}

fn scm_error(action: &str, error: windows_service::Error) -> ServiceError {
    let mut reason = error.to_string();
    if let Some(source) = std::error::Error::source(&error) {
        reason.push_str(&format!(": {source}"));
    }
    ServiceError::Manager {
        action: action.to_owned(),
        reason,
    }
}

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, ServiceError> {
    ServiceManager::local_computer(None::<&str>, access).map_err(|e| {
        scm_error(
            "cannot open the service control manager (run as administrator)",
            e,
        )
    })
}

fn open(access: ServiceAccess) -> Result<windows_service::service::Service, ServiceError> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(SERVICE_NAME, access)
        .map_err(|e| scm_error(&format!("cannot open the service {SERVICE_NAME}"), e))
}

/// `service install`: folders and their access list, enrollment, registration, start.
async fn install(args: &InstallArgs) -> anyhow::Result<()> {
    prepare(args).await?;
    let paths = args.location.resolve();
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut launch_arguments: Vec<OsString> = vec![
        "service".into(),
        "run".into(),
        "--state-dir".into(),
        paths.state_dir.clone().into(),
    ];
    if let Some(config) = &paths.config_file {
        launch_arguments.extend(["--config".into(), config.clone().into()]);
    }
    // Resolved here: a service's environment may name another %ProgramData% (wine's does).
    launch_arguments.extend(["--log-dir".into(), paths.log_dir.clone().into()]);
    if args.location.unverified_state_access {
        launch_arguments.push("--unverified-state-access".into());
    }
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments,
        dependencies: vec![],
        // LocalSystem: Windows Update, Defender and Security Center answer it.
        account_name: None,
        account_password: None,
    };
    let scm = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let access = ServiceAccess::CHANGE_CONFIG
        | ServiceAccess::START
        | ServiceAccess::STOP
        | ServiceAccess::QUERY_STATUS;
    let service = match scm.create_service(&info, access) {
        Ok(service) => service,
        // Installed already (an upgrade in place): update its command line.
        Err(_) => {
            let service = scm
                .open_service(SERVICE_NAME, access)
                .map_err(|e| scm_error("cannot create or open the service", e))?;
            service
                .change_config(&info)
                .map_err(|e| scm_error("cannot update the service", e))?;
            service
        }
    };
    configure(&service);
    println!("{SERVICE_NAME} installed");
    if StateDir::new(&paths.state_dir).is_enrolled() {
        start_or_restart(&service)?;
    }
    Ok(())
}

/// Starts the service; a running one is stopped first, so a new command line or binary applies.
fn start_or_restart(service: &windows_service::service::Service) -> anyhow::Result<()> {
    let state = service
        .query_status()
        .map_err(|e| scm_error("cannot query the service", e))?
        .current_state;
    if state != ServiceState::Stopped {
        stop_and_wait()?;
    }
    service
        .start::<&str>(&[])
        .map_err(|e| scm_error("cannot start the service", e))?;
    println!("{SERVICE_NAME} starting");
    Ok(())
}

/// `service setup` (from the MSI, which registered the service itself).
async fn setup(args: &InstallArgs) -> anyhow::Result<()> {
    prepare(args).await?;
    let paths = args.location.resolve();
    let service = open(
        ServiceAccess::CHANGE_CONFIG
            | ServiceAccess::QUERY_STATUS
            | ServiceAccess::START
            | ServiceAccess::STOP,
    )?;
    configure(&service);
    if StateDir::new(&paths.state_dir).is_enrolled() {
        start_or_restart(&service)?;
    }
    Ok(())
}

/// The folders, the default config if none, the state folder's access list, the event
/// source, and the enrollment.
async fn prepare(args: &InstallArgs) -> anyhow::Result<()> {
    if args.location.config.is_none() {
        let default = super::DefaultPaths::for_this_os().config_file;
        if super::write_config_if_absent(&default)? {
            println!("wrote {}", default.display());
        }
    }
    let paths = args.location.resolve();
    super::check_config(&paths)?;
    for dir in [&paths.state_dir, &paths.log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    secure_state_dir(&paths.state_dir)?;
    if let Err(error) = eventlog::register(DISPLAY_NAME) {
        // The service still logs to its file; the event log is the second channel.
        eprintln!("warning: cannot register the event log source {DISPLAY_NAME:?}: {error}");
    }
    enroll_once(&paths.state_dir, args.token.as_deref(), args.role).await
}

/// Delayed automatic start, a description, and recovery: restart after 1 minute, then after
/// 5 minutes (and every later failure), failure count reset after a day; an exit with an error
/// (not only a crash) counts as a failure. Each setting the system refuses is a warning that
/// names it (wine's SCM refuses all but the description): the service still runs.
fn configure(service: &windows_service::service::Service) {
    let warn = |what: &str, result: windows_service::Result<()>| {
        if let Err(error) = result {
            eprintln!(
                "warning: {}",
                scm_error(&format!("cannot set {what}"), error)
            );
        }
    };
    warn(
        "delayed automatic start (the service starts at boot without delay)",
        service.set_delayed_auto_start(true),
    );
    warn("the description", service.set_description(DESCRIPTION));
    let restart = |minutes: u64| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(minutes * 60),
    };
    warn(
        "the recovery actions (restart after 1 and 5 minutes)",
        service.update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(1), restart(5), restart(5)]),
        }),
    );
    warn(
        "recovery on error exits",
        service.set_failure_actions_on_non_crash_failures(true),
    );
}

fn stop_and_wait() -> anyhow::Result<()> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    let status = service
        .query_status()
        .map_err(|e| scm_error("cannot query the service", e))?;
    if status.current_state != ServiceState::Stopped {
        service
            .stop()
            .map_err(|e| scm_error("cannot stop the service", e))?;
    }
    let deadline = std::time::Instant::now() + STOP_WAIT_HINT;
    loop {
        let state = service
            .query_status()
            .map_err(|e| scm_error("cannot query the service", e))?
            .current_state;
        if state == ServiceState::Stopped {
            println!("{SERVICE_NAME} stopped");
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "{SERVICE_NAME} still {state:?} after {}s",
                STOP_WAIT_HINT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Stop (if running), unregister; `--purge` also removes the state, logs and config.
fn uninstall(args: &UninstallArgs) -> anyhow::Result<()> {
    match open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::DELETE) {
        Ok(service) => {
            stop_and_wait()?;
            service
                .delete()
                .map_err(|e| scm_error("cannot delete the service", e))?;
            println!("{SERVICE_NAME} removed");
        }
        Err(error) => eprintln!("warning: {error}"),
    }
    if let Err(error) = eventlog::deregister(DISPLAY_NAME) {
        eprintln!("warning: cannot remove the event log source: {error}");
    }
    let paths = args.location.resolve();
    if args.purge {
        let mut removed = vec![paths.state_dir.clone(), paths.log_dir.clone()];
        removed.extend(paths.config_file.clone());
        for path in removed {
            let result = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match result {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(|| format!("cannot remove {}", path.display()));
                }
                _ => println!("removed {}", path.display()),
            }
        }
    } else {
        println!("kept {} (enrollment, outbox)", paths.state_dir.display());
    }
    Ok(())
}

/// SYSTEM and Administrators only, nothing inherited from `%ProgramData%`.
fn secure_state_dir(dir: &Path) -> Result<(), ServiceError> {
    run_tool("icacls", &super::icacls_restrict_args(dir))?;
    run_tool("icacls", &super::icacls_remove_args(dir))?;
    Ok(())
}

/// Reads the folder's access list with `icacls /save` and refuses any account other than
/// SYSTEM and Administrators.
pub fn check_state_access(dir: &Path) -> Result<(), AccessError> {
    if !dir.exists() {
        return Ok(());
    }
    let fix = super::icacls_restrict_line(dir);
    let unverifiable = |reason: String| AccessError::Unverifiable {
        dir: dir.display().to_string(),
        reason,
        fix: fix.clone(),
    };
    let saved = std::env::temp_dir().join(format!("vigie-acl-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&saved);
    let args = vec![
        dir.display().to_string(),
        "/save".to_owned(),
        saved.display().to_string(),
    ];
    run_tool("icacls", &args).map_err(|e| unverifiable(e.to_string()))?;
    let bytes = std::fs::read(&saved).map_err(|e| {
        unverifiable(format!(
            "icacls /save wrote no file {}: {e}",
            saved.display()
        ))
    });
    let _ = std::fs::remove_file(&saved);
    let dacl = sddl::parse_icacls_save(&bytes?).map_err(|e| unverifiable(e.to_string()))?;
    let others = sddl::others_allowed(&dacl);
    if others.is_empty() {
        Ok(())
    } else {
        Err(AccessError::WindowsAcl {
            dir: dir.display().to_string(),
            trustees: others.join(", "),
            fix,
        })
    }
}

/// Where the service main finds its paths: the SCM passes the launch arguments to `main`,
/// not to the service main.
static LAUNCH: OnceLock<Location> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

fn run_dispatcher(location: Location) -> anyhow::Result<()> {
    let _ = LAUNCH.set(location);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        anyhow::anyhow!(
            "{}: `service run` is started by the service control manager; \
             in a terminal use `vigie-agent run`",
            scm_error("cannot connect to the service control manager", e)
        )
    })
}

/// Start, stop and fatal errors, in the Application event log.
struct EventLog(Option<eventlog::EventLog>);

impl EventLog {
    fn open() -> Self {
        EventLog(eventlog::EventLog::new(DISPLAY_NAME, log::Level::Info).ok())
    }

    fn write(&self, level: log::Level, message: &str) {
        if let Some(events) = &self.0 {
            log::Log::log(
                events,
                &log::Record::builder()
                    .level(level)
                    .args(format_args!("{message}"))
                    .build(),
            );
        }
    }
}

fn init_file_logging(log_dir: &Path) -> Result<(), String> {
    use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let file = FileRotate::new(
        log_dir.join(LOG_FILE_NAME),
        AppendCount::new(LOG_FILES_KEPT),
        ContentLimit::BytesSurpassed(LOG_FILE_BYTES),
        Compression::None,
        None,
    );
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .finish()
        .with(crate::logging::filter(tracing::Level::INFO))
        .try_init()
        .map_err(|e| e.to_string())
}

fn service_main(_arguments: Vec<OsString>) {
    let location = LAUNCH.get().cloned().unwrap_or(Location {
        state_dir: None,
        config: None,
        log_dir: None,
        unverified_state_access: false,
    });
    let paths = location.resolve();
    let events = EventLog::open();
    if let Err(error) = init_file_logging(&paths.log_dir) {
        events.write(log::Level::Warn, &format!("no log file: {error}"));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            tracing::info!(control = ?control, "stop requested by the service control manager");
            stop_tx.send_replace(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(status) => status,
        Err(error) => {
            let text = format!("cannot register with the service control manager: {error}");
            tracing::error!(error = %text, "service not started");
            events.write(log::Level::Error, &text);
            return;
        }
    };
    let report = |state: ServiceState, exit_code: ServiceExitCode, accept: ServiceControlAccept| {
        let wait_hint = if state == ServiceState::StopPending {
            STOP_WAIT_HINT
        } else {
            Duration::ZERO
        };
        if let Err(error) = status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint,
            process_id: None,
        }) {
            tracing::warn!(%error, "cannot report the service status");
        }
    };
    report(
        ServiceState::Running,
        ServiceExitCode::NO_ERROR,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
    );
    let outcome = serve(&paths, &location, &events, stop_rx);
    match outcome {
        Ok(()) => {
            tracing::info!("service stopped");
            events.write(log::Level::Info, "Vigie Agent stopped");
            report(
                ServiceState::Stopped,
                ServiceExitCode::NO_ERROR,
                ServiceControlAccept::empty(),
            );
        }
        Err(error) => {
            let text = format!("{error:#}");
            tracing::error!(error = %text, "service stopped on a fatal error");
            events.write(log::Level::Error, &format!("Vigie Agent stopped: {text}"));
            // A service-specific exit code makes the SCM apply the recovery actions.
            report(
                ServiceState::Stopped,
                ServiceExitCode::ServiceSpecific(1),
                ServiceControlAccept::empty(),
            );
        }
    }
}

/// The same run as the console, until the SCM says stop.
fn serve(
    paths: &Paths,
    location: &Location,
    events: &EventLog,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if location.unverified_state_access {
        let text = format!(
            "the access list of {} was not verified (--unverified-state-access)",
            paths.state_dir.display()
        );
        tracing::warn!(warning = %text, "state access not checked");
        events.write(log::Level::Warn, &text);
    } else {
        check_state_access(&paths.state_dir)?;
    }
    let state = StateDir::new(PathBuf::from(&paths.state_dir));
    let mut config = match &paths.config_file {
        Some(path) => crate::config::load(path)?,
        None => crate::config::Config::default(),
    };
    config.backup.state_dir = Some(state.path().to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(8)
        .thread_keep_alive(Duration::from_secs(15 * 60))
        .build()
        .context("cannot start the async runtime")?;
    tracing::info!(state_dir = %paths.state_dir.display(), "service started");
    events.write(
        log::Level::Info,
        &format!("Vigie Agent started (state {})", paths.state_dir.display()),
    );
    runtime.block_on(async {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        crate::run::run_until(&state, &config, stopped).await
    })?;
    Ok(())
}
