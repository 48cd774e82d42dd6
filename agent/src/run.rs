//! The agent at work: collect on schedule into the outbox, deliver in the background, stop on
//! SIGTERM/ctrl-c. A write to the outbox is synchronous, so a signal can only land between two
//! writes, never in the middle of one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::checks;
use crate::checks::Check;
use crate::config::Config;
use crate::facts::Report;
use crate::outbox::{Outbox, OutboxError, OutboxHealth};
use crate::probe::{Probe, ProbeSetupError};
use crate::sender::{Link, SendError, Sender};
use crate::state::{StateDir, StateError};
use crate::transport::{self, ChannelError, Timeouts, render};

/// `--once` gives the collector this long to connect and answer, so it ends promptly.
pub const ONCE_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(5),
    request: Duration::from_secs(10),
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Probe(#[from] ProbeSetupError),
    #[error(transparent)]
    StateAccess(#[from] crate::service::AccessError),
}

/// What `run --once` did.
#[derive(Debug)]
pub struct OnceSummary {
    /// Reports acknowledged by the collector in this run.
    pub sent: u64,
    /// Reports still in the outbox.
    pub queued: u64,
    /// Why sending stopped early, if it did.
    pub failure: Option<SendError>,
    /// Why this run's reports could not all be queued (disk full, I/O error), if so; what was
    /// queued before is still sent.
    pub queue_failure: Option<OutboxError>,
    /// Outbox writes or syncs that failed during this run.
    pub write_failures: u64,
    /// The outbox after the run: quarantine, counters, last reasons.
    pub health: OutboxHealth,
}

impl OnceSummary {
    /// Something a technician must fix: the outbox cannot write, or the collector refuses this
    /// agent for good. A collector that is merely unreachable is not one: the reports wait in
    /// the outbox for the next run.
    pub fn needs_attention(&self) -> bool {
        self.write_failures > 0
            || self.queue_failure.is_some()
            || self
                .failure
                .as_ref()
                .is_some_and(|f| f.is_refusal_for_good() || matches!(f, SendError::Outbox(_)))
    }
}

/// Every enabled check once, stamped as reports (`run --once`, `report --json`).
pub async fn collect_now(config: &Config) -> Vec<Report> {
    checks::collect_all(Arc::new(config.clone()))
        .await
        .into_iter()
        .map(Report::new)
        .collect()
}

fn queue(outbox: &Outbox, reports: &[Report]) -> Result<(), OutboxError> {
    for report in reports {
        outbox.push(&report.to_proto())?;
        report.fact.after_queued();
        tracing::debug!(report_id = %report.id, kind = report.fact.kind(), "report queued");
    }
    Ok(())
}

/// The sender, and the channel it uses (the configuration stream shares it).
fn open(
    state: &StateDir,
    config: &Config,
    timeouts: Timeouts,
) -> Result<(Sender, tonic::transport::Channel), RunError> {
    let credentials = state.load()?;
    let outbox_dir = state.outbox_dir();
    if Outbox::old_outbox_present(&outbox_dir) {
        import_old_outbox_in_child(&outbox_dir);
    }
    // Also moves an old outbox the child could not (then sled runs here, once).
    let outbox = Arc::new(Outbox::open(&outbox_dir, config.outbox.max_bytes)?);
    let channel = transport::agent_channel(&credentials, timeouts)?;
    let link = Link {
        client: transport::ingest_client(channel.clone()),
        probe: Probe::new(&credentials)?,
        collector_addr: credentials.enrollment.collector_addr,
        connect_timeout: timeouts.connect,
    };
    Ok((Sender::new(outbox, link, config.sender.clone()), channel))
}

/// The hidden command that moves an old sled outbox and exits.
pub const OUTBOX_IMPORT_COMMAND: &str = "outbox-import";

/// Moves an outbox left by an older agent (sled) in a child process, `vigie-agent
/// outbox-import`: sled keeps 7 idle I/O threads (and its code pages) for the life of a
/// process that opened a database once, and the agent runs for months.
fn import_old_outbox_in_child(dir: &std::path::Path) {
    let status = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg(OUTBOX_IMPORT_COMMAND)
            .arg("--outbox-dir")
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .status()
    });
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            tracing::warn!(%status, "moving the old outbox in a child process failed: moving it here")
        }
        Err(error) => {
            tracing::warn!(%error, "cannot start the child that moves the old outbox: moving it here")
        }
    }
}

/// `run --once`: one snapshot, one attempt to deliver everything queued, with the cached
/// central configuration over the local file.
pub async fn run_once(state: &StateDir, local: &Config) -> Result<OnceSummary, RunError> {
    let started = crate::central::start(state, local);
    let config = &started.config;
    let (mut sender, _) = open(state, config, ONCE_TIMEOUTS)?;
    sender
        .config_version()
        .store(started.version, std::sync::atomic::Ordering::Relaxed);
    let outbox = sender.outbox().clone();
    let failures_before = outbox.health().write_failures_total;
    // A report that cannot be queued is collected again next run (a backup result stays in
    // its spool); what the outbox already holds is sent regardless.
    let queue_failure = queue(&outbox, &collect_now(config).await).err();
    let mut sent = 0;
    let failure = tokio::select! {
        result = sender.drain(&mut sent) => result.err(),
        () = shutdown_signal() => None,
    };
    let health = outbox.health();
    Ok(OnceSummary {
        sent,
        queued: outbox.len(),
        failure,
        queue_failure,
        write_failures: health.write_failures_total - failures_before,
        health,
    })
}

/// `run`: until SIGTERM/ctrl-c, after checking that only this account can read the state
/// directory (it holds the private key).
pub async fn run(state: &StateDir, config: &Config) -> Result<(), RunError> {
    crate::service::check_state_access(state.path())?;
    run_until(state, config, shutdown_signal()).await
}

/// The agent at work until `stop` resolves: SIGTERM/ctrl-c from [`run`], the service control
/// manager's stop or shutdown from the Windows service. `local` is the local file's config;
/// the collector's configuration is layered under it as it arrives (`crate::central`).
pub async fn run_until(
    state: &StateDir,
    local: &Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    // How the agent talks to the collector is local only, so it never changes at run time.
    let timeouts = Timeouts {
        connect: local.sender.connect_timeout,
        request: local.sender.request_timeout,
    };
    let (sender, channel) = open(state, local, timeouts)?;
    let outbox = sender.outbox().clone();
    let queued = Arc::new(Notify::new());
    let started = crate::central::start(state, local);
    let version = sender.config_version();
    version.store(started.version, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        state_dir = %state.path().display(),
        snapshot_interval_s = started.config.collection.snapshot_interval.as_secs(),
        config_version = started.version,
        queued = outbox.len(),
        dropped_total = outbox.dropped_total(),
        "agent running"
    );
    let (apply, configs) = tokio::sync::watch::channel(Arc::new(started.config));
    let follow = async {
        if !local.central.enabled {
            tracing::info!("central configuration disabled by the local [central] enabled = false");
            std::future::pending::<()>().await;
        }
        let client = transport::config_client(channel);
        crate::central::Follower::new(
            state.clone(),
            local.clone(),
            client,
            apply,
            version,
            started.refusal,
        )
        .run()
        .await;
        Ok::<(), RunError>(())
    };
    let result: Result<(), RunError> = tokio::select! {
        () = schedule(configs, outbox.clone(), queued.clone()) => Ok(()),
        () = sender.run(queued.clone()) => Ok(()),
        result = follow => result,
        () = stop => {
            tracing::info!(queued = outbox.len(), "stopping");
            Ok(())
        }
    };
    result
}

/// Runs every enabled check on its interval with the current config, and starts them all
/// afresh when a new one applies (new LAN targets are probed at once).
async fn schedule(
    mut configs: tokio::sync::watch::Receiver<Arc<Config>>,
    outbox: Arc<Outbox>,
    queued: Arc<Notify>,
) {
    loop {
        let config = configs.borrow_and_update().clone();
        let mut schedules = tokio::task::JoinSet::new();
        for &check in Check::ALL {
            let Some(every) = check.interval(&config) else {
                continue;
            };
            let (config, outbox, queued) = (config.clone(), outbox.clone(), queued.clone());
            schedules.spawn(run_check(check, every, config, outbox, queued));
        }
        if configs.changed().await.is_err() {
            // Nobody can send a new config any more: keep these schedules for good.
            while schedules.join_next().await.is_some() {}
            return std::future::pending::<()>().await;
        }
        // Dropping the set aborts every schedule; a write to the outbox is synchronous, so
        // none stops half way.
        schedules.abort_all();
        tracing::info!("checks rescheduled with the new configuration");
    }
}

async fn run_check(
    check: Check,
    every: Duration,
    config: Arc<Config>,
    outbox: Arc<Outbox>,
    queued: Arc<Notify>,
) {
    let mut trigger = check.trigger(&config);
    let mut state = checks::CheckState::default();
    let mut tick = tokio::time::interval(every);
    // A PC waking from sleep runs a check once, not once per missed interval.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match trigger.as_mut() {
            Some(trigger) => tokio::select! {
                _ = tick.tick() => {}
                () = trigger.changed() => {}
            },
            None => {
                tick.tick().await;
            }
        }
        let reports: Vec<Report> = check
            .collect(config.clone(), &mut state)
            .await
            .into_iter()
            .map(Report::new)
            .collect();
        // A failed write (disk full) is logged and retried at the next tick: the agent
        // keeps delivering what it already holds.
        match queue(&outbox, &reports) {
            Ok(()) => queued.notify_one(),
            Err(error) => {
                tracing::error!(check = check.name(), error = %render(&error), "cannot queue reports")
            }
        }
    }
}

/// Resolves on ctrl-c anywhere, and on SIGTERM on unix (systemd's stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
