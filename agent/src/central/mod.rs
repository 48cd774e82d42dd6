//! The collector's configuration on the agent: layered under the local `agent.toml` (the
//! local file wins for what it sets explicitly: a technician who edited it on the machine did
//! so for that machine), applied without restart, cached in the state directory
//! (`central-config.json`) for restarts and for while the collector is unreachable. A version
//! this machine cannot run is refused whole (`policy::refusals`) and the previous one keeps
//! running; the collector hears which, with the reason (`ReportConfigStatus`).
//!
//! Delivery is a server stream the agent keeps open (`AgentConfig.Watch`): the collector
//! answers the current version at once and each new one as it is set, so a connected agent
//! applies it within seconds, with no polling traffic from hundreds of idle agents.

pub mod merge;
pub mod policy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic::transport::Channel;
use vigie_proto::v1;
use vigie_proto::v1::agent_config_client::AgentConfigClient;

use crate::backoff::Backoff;
use crate::config::{self, Config, Source};
use crate::state::{CachedConfig, StateDir};
use crate::transport;

/// Reconnection delays of the configuration stream.
const RECONNECT_INITIAL: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(60);

/// The config this agent runs for the collector's `text` over its `local` config, or why it
/// cannot run it here.
pub fn layered(text: &str, local: &Config) -> Result<Config, String> {
    let (central, unknown) =
        config::parse_text(text, Source::Central, &[]).map_err(|e| e.to_string())?;
    for section in unknown {
        tracing::warn!(
            section,
            "central config section not known to this agent version: ignored"
        );
    }
    let reasons = policy::refusals(&central, &policy::AllowedTargets::here(local));
    if !reasons.is_empty() {
        return Err(reasons.join("; "));
    }
    let mut layers = merge::Layered::default();
    layers.push(&table(text)?, "central");
    if let Some(local_text) = &local.local_text.0 {
        layers.push(&table(local_text)?, "local");
    }
    let (mut config, _) = config::parse_text(&layers.text(), Source::Local, &[])
        .map_err(|e| format!("merged with the local file: {e}"))?;
    config.local_text = local.local_text.clone();
    config.backup.state_dir = local.backup.state_dir.clone();
    config.backup.preview = local.backup.preview;
    Ok(config)
}

fn table(text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>().map_err(|e| e.to_string())
}

/// What the local file sets, secrets masked, for the collector's `config show --effective`.
pub fn local_summary(local: &Config) -> String {
    local
        .local_text
        .0
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .map(|t| toml::to_string(&merge::masked(&t)).unwrap_or_default())
        .unwrap_or_default()
}

/// What the agent starts with: the cached central version over the local file when there is
/// one and it still applies, else the local file alone. Also a status for the collector when
/// the cache no longer applies.
pub struct Start {
    pub config: Config,
    pub version: u64,
    pub refusal: Option<(u64, String)>,
}

pub fn start(state: &StateDir, local: &Config) -> Start {
    let alone = |refusal| Start {
        config: local.clone(),
        version: 0,
        refusal,
    };
    if !local.central.enabled {
        return alone(None);
    }
    match state.load_central() {
        Ok(None) => alone(None),
        Ok(Some(cached)) => match layered(&cached.toml, local) {
            Ok(config) => {
                tracing::info!(
                    config_version = cached.version,
                    "running the cached central configuration"
                );
                Start {
                    config,
                    version: cached.version,
                    refusal: None,
                }
            }
            Err(reason) => {
                tracing::error!(config_version = cached.version, %reason, "the cached central configuration no longer applies: running the local file alone");
                alone(Some((cached.version, reason)))
            }
        },
        Err(error) => {
            tracing::error!(error = %transport::render(&error), "cannot read the cached central configuration: running the local file alone");
            alone(None)
        }
    }
}

/// Follows the collector's configuration for as long as the agent runs.
pub struct Follower {
    pub state: StateDir,
    pub local: Config,
    pub client: AgentConfigClient<Channel>,
    /// Where the checks' schedules take their config from.
    pub apply: watch::Sender<Arc<Config>>,
    /// The version running, told in every batch.
    pub version: Arc<AtomicU64>,
    refused: Option<u64>,
    pending: Option<v1::ConfigStatus>,
}

impl Follower {
    pub fn new(
        state: StateDir,
        local: Config,
        client: AgentConfigClient<Channel>,
        apply: watch::Sender<Arc<Config>>,
        version: Arc<AtomicU64>,
        refusal: Option<(u64, String)>,
    ) -> Self {
        let pending = refusal.map(|(v, error)| v1::ConfigStatus {
            version: v,
            applied: false,
            error,
            local_toml: local_summary(&local),
        });
        Follower {
            refused: pending.as_ref().map(|p| p.version),
            pending,
            state,
            local,
            client,
            apply,
            version,
        }
    }

    pub async fn run(mut self) {
        let mut backoff = Backoff::new(RECONNECT_INITIAL, RECONNECT_MAX);
        loop {
            match self.follow().await {
                Ok(()) => {
                    backoff.reset();
                    tracing::info!("the collector closed the configuration stream: reconnecting");
                }
                Err(status) => {
                    let retry_in = backoff.next_delay();
                    tracing::info!(error = %status.message(), retry_in_s = retry_in.as_secs(), "configuration stream lost: reconnecting");
                    tokio::time::sleep(retry_in).await;
                    continue;
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn follow(&mut self) -> Result<(), tonic::Status> {
        self.send_pending().await;
        let running = self.version.load(Ordering::Relaxed);
        let mut stream = self
            .client
            .watch(v1::WatchConfigRequest {
                running_version: running,
            })
            .await?
            .into_inner();
        while let Some(offer) = stream.message().await? {
            self.receive(offer).await;
        }
        Ok(())
    }

    async fn receive(&mut self, offer: v1::AgentConfigVersion) {
        let running = self.version.load(Ordering::Relaxed);
        if offer.version == running && self.pending.is_none() {
            if self.refused.is_none() && running != 0 {
                // Says so once per connection: the collector may not have heard yet.
                self.pending = Some(self.status(running, None));
                self.send_pending().await;
            }
            return;
        }
        if offer.version == running || Some(offer.version) == self.refused {
            self.send_pending().await;
            return;
        }
        let outcome = if offer.version == 0 {
            Ok(self.local.clone())
        } else {
            layered(&offer.toml, &self.local)
        };
        match outcome {
            Ok(config) => {
                let cached = (offer.version != 0).then(|| CachedConfig {
                    version: offer.version,
                    toml: offer.toml.clone(),
                    applied_at: jiff::Timestamp::now(),
                });
                if let Err(error) = self.state.save_central(cached.as_ref()) {
                    tracing::error!(error = %transport::render(&error), "cannot cache the central configuration: a restart without the collector runs the previous one");
                }
                tracing::info!(
                    config_version = offer.version,
                    lan_targets = config.lan.targets.len(),
                    backup_jobs = config.backup.jobs.len(),
                    software_watch = config.software.watch.len(),
                    "central configuration applied"
                );
                self.version.store(offer.version, Ordering::Relaxed);
                self.refused = None;
                self.apply.send_replace(Arc::new(config));
                self.pending = Some(self.status(offer.version, None));
            }
            Err(reason) => {
                tracing::error!(config_version = offer.version, %reason, running_version = running, "central configuration refused: the previous one keeps running");
                self.refused = Some(offer.version);
                self.pending = Some(self.status(offer.version, Some(reason)));
            }
        }
        self.send_pending().await;
    }

    fn status(&self, version: u64, refusal: Option<String>) -> v1::ConfigStatus {
        v1::ConfigStatus {
            version,
            applied: refusal.is_none(),
            error: refusal.unwrap_or_default(),
            local_toml: local_summary(&self.local),
        }
    }

    /// Tells the collector the last outcome; kept for the next connection if it cannot hear.
    async fn send_pending(&mut self) {
        let Some(status) = self.pending.clone() else {
            return;
        };
        match self.client.report_config_status(status).await {
            Ok(_) => self.pending = None,
            Err(error) => {
                tracing::debug!(%error, "cannot report the configuration status yet")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_file_wins_for_what_it_sets() {
        let local_text = "[updates]\ninterval = \"2h\"\n";
        let mut local = config::parse_config(local_text).expect("local");
        local.local_text = config::LocalText(Some(local_text.to_owned()));
        let central =
            "[updates]\ninterval = \"12h\"\nenabled = false\n[antivirus]\ninterval = \"3h\"\n";
        let config = layered(central, &local).expect("applies");
        assert_eq!(config.updates.interval, Duration::from_secs(2 * 3600));
        assert!(!config.updates.enabled);
        assert_eq!(config.antivirus.interval, Duration::from_secs(3 * 3600));
    }

    #[test]
    fn a_version_that_cannot_run_here_is_refused_whole() {
        let local = Config::default();
        let central = "[antivirus]\ninterval = \"3h\"\n[[lan.targets]]\nname = \"web\"\nkind = \"other\"\naddress = \"8.8.8.8\"\nprobes = [{ type = \"icmp\" }]\n";
        let reason = layered(central, &local).expect_err("refused");
        assert!(reason.contains("web"), "{reason}");
    }

    #[test]
    fn the_cache_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        state.create_dir().expect("dir");
        assert!(state.load_central().expect("none").is_none());
        let cached = CachedConfig {
            version: 7,
            toml: "[antivirus]\ninterval = \"3h\"\n".to_owned(),
            applied_at: jiff::Timestamp::now(),
        };
        state.save_central(Some(&cached)).expect("save");
        let started = start(&state, &Config::default());
        assert_eq!(started.version, 7);
        assert_eq!(
            started.config.antivirus.interval,
            Duration::from_secs(3 * 3600)
        );
        let off = config::parse_config("[central]\nenabled = false\n").expect("valid");
        assert_eq!(start(&state, &off).version, 0);
    }
}
