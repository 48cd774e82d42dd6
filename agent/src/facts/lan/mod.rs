//! LAN device health: one round probes every due target concurrently (bounded, each probe
//! with its own timeout, so a dead device never stalls the others), gives each device a verdict
//! (up / degraded / down) and adds the neighbours no target lists. The collector judges what
//! the numbers mean; a low toner is a fact here, not a degraded printer.

pub mod dicom;
pub mod http;
pub mod icmp;
pub mod neighbours;
pub mod snmp;
pub mod target;
pub mod tcp;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use target::{DeviceKind, Probe, Target};

/// Default interval between two probes of a device.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Default time one probe may take.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on probes in flight: enough for a clinic, gentle on a small PC and on the LAN.
pub const DEFAULT_MAX_CONCURRENT_PROBES: usize = 16;
/// Probing more often than this is load on clinic devices for no news.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// `[lan]`: the devices this agent watches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanConfig {
    /// Interval of targets that do not set their own.
    #[serde(with = "crate::duration_text")]
    pub interval: Duration,
    /// Time one probe may take before it counts as failed.
    #[serde(with = "crate::duration_text")]
    pub probe_timeout: Duration,
    /// Probes in flight at once, over all targets.
    pub max_concurrent_probes: usize,
    /// Report neighbour-table entries that no target lists (passive: nothing is scanned).
    pub discover_neighbours: bool,
    pub targets: Vec<Target>,
}

impl Default for LanConfig {
    fn default() -> Self {
        LanConfig {
            interval: DEFAULT_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            max_concurrent_probes: DEFAULT_MAX_CONCURRENT_PROBES,
            discover_neighbours: false,
            targets: Vec::new(),
        }
    }
}

impl LanConfig {
    /// How often the LAN check runs: the shortest interval of any target, or `None` when there
    /// is nothing to do.
    pub fn check_interval(&self) -> Option<Duration> {
        if self.targets.is_empty() && !self.discover_neighbours {
            return None;
        }
        let shortest = self
            .targets
            .iter()
            .filter_map(|t| t.interval)
            .min()
            .unwrap_or(self.interval);
        Some(shortest.min(self.interval))
    }

    /// Every problem in the section.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.interval < MIN_INTERVAL {
            problems.push(format!(
                "lan.interval = {} is below the minimum of {}",
                humantime::format_duration(self.interval),
                humantime::format_duration(MIN_INTERVAL)
            ));
        }
        if self.probe_timeout.is_zero() || self.probe_timeout > self.interval {
            problems.push(format!(
                "lan.probe_timeout = {} must be more than zero and at most lan.interval",
                humantime::format_duration(self.probe_timeout)
            ));
        }
        if self.max_concurrent_probes == 0 || self.max_concurrent_probes > 256 {
            problems.push(format!(
                "lan.max_concurrent_probes = {} must be between 1 and 256",
                self.max_concurrent_probes
            ));
        }
        problems.extend(target::validate(&self.targets));
        problems
    }
}

/// One LAN round: the devices probed and the unknown neighbours seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanReport {
    /// The targets probed this round.
    pub devices: Vec<DeviceHealth>,
    pub discovered: Vec<neighbours::DiscoveredDevice>,
    /// Every configured target's name, probed this round or not, so the collector keeps the
    /// last known state of those not due.
    pub configured: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Every probe succeeded.
    Up,
    /// Some probes succeeded, some failed.
    Degraded,
    /// No probe succeeded.
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceHealth {
    pub name: String,
    pub kind: DeviceKind,
    pub address: String,
    pub state: DeviceState,
    /// ICMP round trip when it answered, else the fastest successful probe.
    pub latency_ms: Option<f64>,
    pub probes: Vec<ProbeResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supplies: Vec<snmp::PrinterSupply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ups: Option<snmp::UpsStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<snmp::StorageUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sys_descr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    /// The failed probes' errors, `probe: error` joined with `; `; empty when up.
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub probe: String,
    pub ok: bool,
    pub latency_ms: Option<f64>,
    pub error: String,
    /// e.g. `port`, `http_status`, `tls_expires_at`, `association`.
    pub details: BTreeMap<String, String>,
}

impl ProbeResult {
    pub fn ok(probe: &str, latency: Duration) -> Self {
        ProbeResult {
            probe: probe.to_owned(),
            ok: true,
            latency_ms: Some(millis(latency)),
            error: String::new(),
            details: BTreeMap::new(),
        }
    }

    pub fn failed(probe: &str, error: impl Into<String>) -> Self {
        ProbeResult {
            probe: probe.to_owned(),
            ok: false,
            latency_ms: None,
            error: error.into(),
            details: BTreeMap::new(),
        }
    }

    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }
}

/// What one probe learnt: its result, and for SNMP what the device said about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub result: ProbeResult,
    pub snmp: Option<snmp::SnmpFacts>,
}

impl From<ProbeResult> for ProbeOutcome {
    fn from(result: ProbeResult) -> Self {
        ProbeOutcome { result, snmp: None }
    }
}

/// Milliseconds with microsecond resolution, as the wire carries them.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// When each target was last probed by one schedule, so a target with a longer interval than
/// the check's skips rounds. Owned by the schedule that runs the LAN check: a new one (new
/// targets from the collector, `report --json`) probes everything at once.
#[derive(Debug, Default)]
pub struct LanRounds {
    last_probed: HashMap<String, Instant>,
}

fn due_targets(config: &LanConfig, rounds: &mut LanRounds, now: Instant) -> Vec<Target> {
    let tick = config.check_interval().unwrap_or(config.interval);
    let last = &mut rounds.last_probed;
    let due: Vec<Target> = config
        .targets
        .iter()
        .filter(|t| {
            let every = t.interval.unwrap_or(config.interval);
            // Half a tick of slack: rounds start a little late or early.
            last.get(&t.name)
                .is_none_or(|at| now.duration_since(*at) + tick / 2 >= every)
        })
        .cloned()
        .collect();
    for t in &due {
        last.insert(t.name.clone(), now);
    }
    due
}

/// One round: every due target, then passive discovery. Never fails: each problem is in the
/// result of the probe it concerns.
pub async fn collect(config: &LanConfig, rounds: &mut LanRounds) -> LanReport {
    let targets = due_targets(config, rounds, Instant::now());
    let devices = probe_all(&targets, config).await;
    let discovered = if config.discover_neighbours {
        neighbours::discover(&config.targets, config.probe_timeout).await
    } else {
        Vec::new()
    };
    LanReport {
        devices,
        discovered,
        configured: config.targets.iter().map(|t| t.name.clone()).collect(),
    }
}

/// Runs every probe of every target concurrently, at most `max_concurrent_probes` at once.
pub async fn probe_all(targets: &[Target], config: &LanConfig) -> Vec<DeviceHealth> {
    let permits = Arc::new(Semaphore::new(config.max_concurrent_probes.max(1)));
    let timeout = config.probe_timeout;
    let mut tasks = tokio::task::JoinSet::new();
    for (t, target) in targets.iter().enumerate() {
        for (p, probe) in target.probes.iter().enumerate() {
            let (target, probe, permits) = (target.clone(), probe.clone(), permits.clone());
            tasks.spawn(async move {
                // The semaphore is never closed, so this only waits.
                let _permit = permits.acquire_owned().await;
                let outcome = run_probe(&target, &probe, timeout).await;
                (t, p, outcome)
            });
        }
    }
    let mut outcomes: Vec<Vec<Option<ProbeOutcome>>> =
        targets.iter().map(|t| vec![None; t.probes.len()]).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((t, p, outcome)) => outcomes[t][p] = Some(outcome),
            Err(error) => tracing::error!(%error, "probe task failed"),
        }
    }
    targets
        .iter()
        .zip(outcomes)
        .map(|(target, outcomes)| {
            let outcomes = target
                .probes
                .iter()
                .zip(outcomes)
                .map(|(probe, o)| {
                    o.unwrap_or_else(|| {
                        ProbeResult::failed(probe.name(), "probe task failed").into()
                    })
                })
                .collect();
            verdict(target, outcomes)
        })
        .collect()
}

/// One probe under its timeout; the error names the probe and the device in the log.
async fn run_probe(target: &Target, probe: &Probe, timeout: Duration) -> ProbeOutcome {
    let address = target.address.as_str();
    let work = async {
        match probe {
            Probe::Icmp {} => icmp::probe(address, timeout).await.into(),
            Probe::Tcp { port } => tcp::probe(address, *port).await.into(),
            Probe::Http { url } => http::probe(url).await.into(),
            Probe::Snmp(s) => snmp::probe(address, target.kind, s, timeout).await,
            Probe::Dicom(d) => dicom::probe(address, d, timeout).await.into(),
        }
    };
    let outcome = match tokio::time::timeout(timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeResult::failed(
            probe.name(),
            format!("timeout after {}", humantime::format_duration(timeout)),
        )
        .into(),
    };
    let mut outcome = outcome;
    if let Probe::Tcp { port } = probe {
        outcome
            .result
            .details
            .insert("port".to_owned(), port.to_string());
    }
    if !outcome.result.ok {
        tracing::info!(device = %target.name, probe = probe.name(), error = %outcome.result.error, "probe failed");
    }
    outcome
}

/// Up when every probe succeeded, down when none did, degraded in between.
pub fn verdict(target: &Target, outcomes: Vec<ProbeOutcome>) -> DeviceHealth {
    let succeeded = outcomes.iter().filter(|o| o.result.ok).count();
    let state = if succeeded == outcomes.len() {
        DeviceState::Up
    } else if succeeded == 0 {
        DeviceState::Down
    } else {
        DeviceState::Degraded
    };
    let icmp = outcomes
        .iter()
        .find(|o| o.result.ok && o.result.probe == "icmp")
        .and_then(|o| o.result.latency_ms);
    let fastest = outcomes
        .iter()
        .filter(|o| o.result.ok)
        .filter_map(|o| o.result.latency_ms)
        .min_by(f64::total_cmp);
    let error = outcomes
        .iter()
        .filter(|o| !o.result.ok)
        .map(|o| format!("{}: {}", o.result.probe, o.result.error))
        .collect::<Vec<_>>()
        .join("; ");
    let mut health = DeviceHealth {
        name: target.name.clone(),
        kind: target.kind,
        address: target.address.clone(),
        state,
        latency_ms: icmp.or(fastest),
        probes: Vec::with_capacity(outcomes.len()),
        supplies: Vec::new(),
        ups: None,
        storage: Vec::new(),
        sys_descr: None,
        uptime_seconds: None,
        error,
    };
    for outcome in outcomes {
        if let Some(facts) = outcome.snmp {
            health.sys_descr = health.sys_descr.or(facts.sys_descr);
            health.uptime_seconds = health.uptime_seconds.or(facts.uptime_seconds);
            health.supplies.extend(facts.supplies);
            health.ups = health.ups.or(facts.ups);
            health.storage.extend(facts.storage);
        }
        health.probes.push(outcome.result);
    }
    health
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(probes: Vec<Probe>) -> Target {
        Target {
            name: "printer-accueil".to_owned(),
            kind: DeviceKind::Printer,
            address: "127.0.0.1".to_owned(),
            probes,
            interval: None,
            agent: None,
            role: None,
        }
    }

    fn check(oks: &[bool], expected: DeviceState) {
        let t = target(oks.iter().map(|_| Probe::Icmp {}).collect());
        let outcomes = oks
            .iter()
            .map(|&ok| {
                if ok {
                    ProbeResult::ok("icmp", Duration::from_millis(2)).into()
                } else {
                    ProbeResult::failed("tcp", "connection refused").into()
                }
            })
            .collect();
        let health = verdict(&t, outcomes);
        assert_eq!(health.state, expected, "{oks:?}");
        assert_eq!(
            health.error.is_empty(),
            oks.iter().all(|&ok| ok),
            "{health:?}"
        );
    }

    #[test]
    fn verdict_is_up_degraded_or_down() {
        check(&[true], DeviceState::Up);
        check(&[true, true], DeviceState::Up);
        check(&[true, false], DeviceState::Degraded);
        check(&[false, true, true], DeviceState::Degraded);
        check(&[false], DeviceState::Down);
        check(&[false, false], DeviceState::Down);
    }

    #[test]
    fn failed_probes_are_named_in_the_error() {
        let t = target(vec![Probe::Icmp {}, Probe::Tcp { port: 9100 }]);
        let health = verdict(
            &t,
            vec![
                ProbeResult::ok("icmp", Duration::from_micros(1500)).into(),
                ProbeResult::failed("tcp", "connection refused").into(),
            ],
        );
        assert_eq!(health.error, "tcp: connection refused");
        assert_eq!(health.latency_ms, Some(1.5));
    }

    #[test]
    fn check_interval_is_the_shortest_and_off_without_targets() {
        let mut config = LanConfig::default();
        assert_eq!(config.check_interval(), None);
        config.discover_neighbours = true;
        assert_eq!(config.check_interval(), Some(DEFAULT_INTERVAL));
        let mut t = target(vec![Probe::Icmp {}]);
        t.interval = Some(Duration::from_secs(60));
        config.targets.push(t);
        assert_eq!(config.check_interval(), Some(Duration::from_secs(60)));
    }

    /// The `[lan]` example of the report and of `deploy/`: every probe kind, parsed and valid.
    pub const EXAMPLE: &str = r#"
        [lan]
        interval = "5m"
        probe_timeout = "5s"
        max_concurrent_probes = 16
        discover_neighbours = true

        [[lan.targets]]
        name = "routeur"
        kind = "router"
        address = "192.168.1.1"
        probes = [{ type = "icmp" }, { type = "http", url = "https://192.168.1.1/" }]

        [[lan.targets]]
        name = "imprimante-accueil"
        kind = "printer"
        address = "192.168.1.20"
        interval = "15m"
        probes = [
          { type = "icmp" },
          { type = "tcp", port = 9100 },
          { type = "snmp", version = "v2c", community = "public" },
        ]

        [[lan.targets]]
        name = "onduleur"
        kind = "ups"
        address = "192.168.1.5"
        probes = [{ type = "snmp", version = "v3", user = "vigie", auth = "sha", auth_password = "change-me-auth", privacy = "aes", privacy_password = "change-me-priv" }]

        [[lan.targets]]
        name = "nas"
        kind = "nas"
        address = "192.168.1.10"
        probes = [
          { type = "http", url = "https://192.168.1.10:5001/" },
          { type = "snmp", version = "v2c", community = "public" },
        ]

        [[lan.targets]]
        name = "pacs"
        kind = "pacs"
        address = "192.168.1.40"
        probes = [{ type = "dicom", port = 104, calling_ae = "VIGIE", called_ae = "PACS" }]
    "#;

    #[test]
    fn example_section_parses() {
        let config = crate::config::parse_config(EXAMPLE).expect("valid [lan]");
        let lan = config.lan;
        assert_eq!(lan.targets.len(), 5);
        assert!(lan.discover_neighbours);
        assert_eq!(lan.targets[1].probes[1], Probe::Tcp { port: 9100 });
        assert_eq!(lan.targets[1].interval, Some(Duration::from_secs(900)));
        let Probe::Dicom(d) = &lan.targets[4].probes[0] else {
            panic!("dicom probe expected");
        };
        assert_eq!(
            (d.calling_ae.as_str(), d.called_ae.as_str(), d.port),
            ("VIGIE", "PACS", 104)
        );
        assert_eq!(lan.check_interval(), Some(DEFAULT_INTERVAL));
    }

    #[test]
    fn every_lan_problem_is_reported() {
        let text = r#"
            [lan]
            probe_timeout = "0s"
            [[lan.targets]]
            name = "a"
            kind = "printer"
            address = ""
            probes = []
            [[lan.targets]]
            name = "a"
            kind = "pacs"
            address = "10.0.0.1"
            probes = [
              { type = "http", url = "ftp://x/" },
              { type = "snmp", version = "v2c" },
              { type = "snmp", version = "v3", user = "u", privacy = "aes", privacy_password = "short" },
              { type = "dicom", called_ae = "A_TITLE_FAR_TOO_LONG" },
            ]
        "#;
        let errors = crate::config::parse_config(text)
            .expect_err("invalid")
            .messages();
        let expect = [
            "lan.probe_timeout = 0s",
            "lan.targets[0] (a): address is empty",
            "lan.targets[0] (a): no probes",
            "lan.targets[1] (a): name is used by another target",
            "lan.targets[1] (a): http url \"ftp://x/\"",
            "lan.targets[1] (a): snmp v2c needs a community",
            "lan.targets[1] (a): snmp v3 privacy needs auth too",
            "lan.targets[1] (a): snmp v3 privacy needs a privacy_password",
            "lan.targets[1] (a): dicom called_ae",
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expect) {
            assert!(error.starts_with(expected), "{error:?} !~ {expected:?}");
        }
        let unknown = crate::config::parse_config(
            "[[lan.targets]]\nname = \"x\"\nkind = \"fax\"\naddress = \"1\"\nprobes = [{ type = \"tcp\", port = 1, extra = 2 }]\n",
        )
        .expect_err("unknown kind");
        assert!(unknown.0[0].message.contains("fax"), "{unknown:?}");
        for probe in [
            "{ type = \"icmp\", count = 3 }",
            "{ type = \"tcp\", port = 1, extra = 2 }",
            "{ type = \"snmp\", version = \"v2c\", community = \"c\", comunity = \"c\" }",
        ] {
            let text = format!(
                "[[lan.targets]]\nname = \"x\"\nkind = \"nas\"\naddress = \"1\"\nprobes = [{probe}]\n"
            );
            assert!(
                crate::config::parse_config(&text).is_err(),
                "{probe} accepted"
            );
        }
    }

    #[tokio::test]
    async fn a_dead_device_does_not_stall_the_others() {
        // A listener that accepts nothing is still "connected" by the kernel; a port with no
        // listener is refused at once. Neither may hold up the round beyond one timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr").port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut up = target(vec![Probe::Tcp { port: open }]);
        up.name = "switch".to_owned();
        let down = target(vec![Probe::Tcp { port: closed }]);
        let config = LanConfig {
            probe_timeout: Duration::from_secs(2),
            targets: vec![up, down],
            ..LanConfig::default()
        };
        let started = Instant::now();
        let devices = probe_all(&config.targets, &config).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(devices[0].state, DeviceState::Up, "{devices:?}");
        assert_eq!(devices[1].state, DeviceState::Down, "{devices:?}");
        assert_eq!(devices[1].probes[0].details["port"], closed.to_string());
    }
}
