//! Central configuration with the real binaries: `vigie-collector config set` and running
//! agents (`vigie-agent run`) that apply new versions without restart. LAN targets are TCP
//! probes of listeners this test opens on 127.0.0.1, which count the connections they get.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use vigie_tests::{Agent, Collector, QUIET_CHECKS, RunningAgent, wait_until};

/// The promise: a connected agent applies a new version within 30 s.
const APPLY_WITHIN: Duration = Duration::from_secs(30);

/// A TCP listener on 127.0.0.1 counting the connections it accepts.
struct Device {
    port: u16,
    accepted: Arc<AtomicU64>,
}

impl Device {
    fn start() -> Device {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = accepted.clone();
        // Ends with the test process; a probe only connects and closes.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Device { port, accepted }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    fn wait_probed(&self, more_than: u64, what: &str) {
        wait_until(APPLY_WITHIN, what, || {
            (self.accepted() > more_than).then_some(())
        });
    }
}

/// A LAN target probing `device` every 10 s, optionally assigned.
fn target(name: &str, device: &Device, assign: &str) -> String {
    format!(
        "[[lan.targets]]\nname = \"{name}\"\nkind = \"pacs\"\naddress = \"127.0.0.1\"\nprobes = [{{ type = \"tcp\", port = {} }}]\ninterval = \"10s\"\n{assign}\n",
        device.port
    )
}

const LAN_EVERY_10S: &str = "[lan]\ninterval = \"10s\"\nprobe_timeout = \"2s\"\n\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// `config set` that must succeed: the version number it prints.
fn set(collector: &Collector, scope: &str, id: &str, file: &Path) -> u64 {
    let run = collector
        .admin(&[
            "config",
            "set",
            scope,
            id,
            "--file",
            &file.to_string_lossy(),
        ])
        .ok();
    run.stdout.trim().parse().expect("a version number")
}

fn started(agent: &Agent) -> RunningAgent {
    started_with(agent, "")
}

/// `vigie-agent run` with `extra` in its local file.
fn started_with(agent: &Agent, extra: &str) -> RunningAgent {
    let config = agent.state_dir.with_extension("agent.toml");
    std::fs::write(&config, format!("{QUIET_CHECKS}{extra}")).expect("agent.toml");
    RunningAgent::start(agent, &config)
}

fn agent_json(collector: &Collector, id: &str) -> Value {
    collector.agent(id)
}

fn runs_version(collector: &Collector, id: &str, version: u64) -> Option<()> {
    (agent_json(collector, id)["config_version"] == version).then_some(())
}

#[test]
fn a_clinic_target_reaches_its_agent_only_and_without_restart() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet des Avirons", "cmp3");
    let (server, server_id) = Agent::enrolled(&collector, &clinic, "server");
    let (workstation, workstation_id) = Agent::enrolled(&collector, &clinic, "workstation");
    // A request timeout far below the test's length: the stream must outlive it.
    let running_server = started_with(&server, "[sender]\nrequest_timeout = \"2s\"\n");
    let running_workstation = started(&workstation);
    wait_until(APPLY_WITHIN, "both agents report", || {
        (collector.reports_of(&server_id) > 0 && collector.reports_of(&workstation_id) > 0)
            .then_some(())
    });

    let pacs = Device::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "clinic.toml",
        &format!(
            "{LAN_EVERY_10S}{}",
            target("pacs", &pacs, &format!("agent = \"{server_id}\""))
        ),
    );
    let version = set(&collector, "--clinic", &clinic, &file);
    pacs.wait_probed(0, "the assigned agent probes the new target");
    running_server.wait_until("the server applies the version", APPLY_WITHIN, || {
        running_server
            .log()
            .contains(&format!("config_version={version} lan_targets=1"))
    });
    // The other agent of the clinic runs the same version, without the target.
    running_workstation.wait_until("the workstation applies it too", APPLY_WITHIN, || {
        running_workstation
            .log()
            .contains(&format!("config_version={version} lan_targets=0"))
    });
    wait_until(APPLY_WITHIN, "agents shows the version they run", || {
        runs_version(&collector, &server_id, version)?;
        runs_version(&collector, &workstation_id, version)
    });
    let listed = agent_json(&collector, &server_id);
    assert_eq!(listed["config_expected_version"], version);
    assert_eq!(listed["config_outdated"], false);
    assert!(!running_workstation.log().contains("lan_targets=1"));
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(table.contains(&format!("v{version}")), "{table}");

    // Later, on the same stream (no reconnection), a second device for the same agent.
    std::thread::sleep(Duration::from_secs(3));
    let printer = Device::start();
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&file).expect("read"),
        target("printer", &printer, "role = \"server\"")
    );
    let file = write(dir.path(), "clinic-2.toml", &both);
    let second = set(&collector, "--clinic", &clinic, &file);
    printer.wait_probed(0, "the second version's target is probed");
    running_server.wait_until("the server applies it", APPLY_WITHIN, || {
        running_server
            .log()
            .contains(&format!("config_version={second} lan_targets=2"))
    });
    assert!(
        !running_server.log().contains("configuration stream lost")
            && !running_server
                .log()
                .contains("closed the configuration stream"),
        "{}",
        running_server.log()
    );
}

#[test]
fn a_file_with_three_errors_is_refused_whole_with_each_line() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet du Tampon", "cmp1");
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.toml", "[antivirus]\ninterval = \"3h\"\n");
    let first = set(&collector, "--clinic", &clinic, &good);
    let bad = write(
        dir.path(),
        "bad.toml",
        "[antivirus]\ninterval = \"soon\"\n\n[updates]\ninterval = \"5s\"\n[clinic]\ntime_zone = \"Nowhere/City\"\n",
    );
    let run = collector.admin(&[
        "config",
        "set",
        "--clinic",
        &clinic,
        "--file",
        &bad.to_string_lossy(),
        "--json",
    ]);
    assert!(!run.status.success(), "refused: {run:?}");
    let answer: Value = serde_json::from_str(&run.stdout).expect("json");
    let lines: Vec<&Value> = answer["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| &p["line"])
        .collect();
    assert_eq!(lines, [2, 5, 7], "{answer:#}");
    assert!(answer["version"].is_null());
    // The French text names each line too.
    let run = collector.admin(&[
        "config",
        "set",
        "--clinic",
        &clinic,
        "--file",
        &bad.to_string_lossy(),
    ]);
    for line in ["ligne 2", "ligne 5", "ligne 7", "rien n'a changé"] {
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
    }
    // Nothing changed.
    let history = collector
        .admin(&["config", "history", "--clinic", &clinic, "--json"])
        .ok();
    let history: Value = serde_json::from_str(&history.stdout).expect("json");
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history:#}");
    assert_eq!(history[0]["version"], first);
    let shown = collector
        .admin(&["config", "show", "--clinic", &clinic, "--json"])
        .ok();
    let shown: Value = serde_json::from_str(&shown.stdout).expect("json");
    assert_eq!(shown["current"]["version"], first);
}

#[test]
fn the_cached_version_runs_after_a_restart_without_the_collector() {
    let mut collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Cilaos", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let nas = Device::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "clinic.toml",
        &format!(
            "{LAN_EVERY_10S}{}",
            target("nas", &nas, "role = \"server\"")
        ),
    );
    let version = set(&collector, "--clinic", &clinic, &file);
    let mut running = started(&agent);
    nas.wait_probed(0, "the agent probes the clinic's target");
    wait_until(APPLY_WITHIN, "the collector hears the version", || {
        runs_version(&collector, &agent_id, version)
    });
    running.stop();
    collector.stop();

    let before = nas.accepted();
    let restarted = started(&agent);
    nas.wait_probed(before, "the restarted agent probes from its cache");
    assert!(
        restarted
            .log()
            .contains(&format!("config_version={version}")),
        "{}",
        restarted.log()
    );
    assert!(
        restarted
            .log()
            .contains("running the cached central configuration")
    );
}

#[test]
fn an_agents_own_version_beats_its_clinics() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Salazie", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let (old, new) = (Device::start(), Device::start());
    let dir = tempfile::tempdir().expect("tempdir");
    let own = write(
        dir.path(),
        "agent.toml",
        &format!(
            "[antivirus]\ninterval = \"2h\"\n{}",
            target("pacs", &new, "")
        ),
    );
    let own_version = set(&collector, "--agent", &agent_id, &own);
    let clinic_file = write(
        dir.path(),
        "clinic.toml",
        &format!(
            "{LAN_EVERY_10S}[antivirus]\ninterval = \"3h\"\n{}",
            target("pacs", &old, &format!("agent = \"{agent_id}\""))
        ),
    );
    let clinic_version = set(&collector, "--clinic", &clinic, &clinic_file);
    let running = started(&agent);
    new.wait_probed(0, "the agent probes its own target");
    running.wait_until("two rounds", APPLY_WITHIN, || new.accepted() >= 2);
    assert_eq!(
        old.accepted(),
        0,
        "the clinic's version of the target is overridden"
    );

    let shown = collector
        .admin(&[
            "config",
            "show",
            "--agent",
            &agent_id,
            "--effective",
            "--json",
        ])
        .ok();
    let shown: Value = serde_json::from_str(&shown.stdout).expect("json");
    let origin = |key: &str| {
        shown["effective"]
            .as_array()
            .expect("effective")
            .iter()
            .find(|v| v["key"] == key)
            .map(|v| (v["value"].clone(), v["origin"].clone()))
            .unwrap_or_else(|| panic!("{key} not in {shown:#}"))
    };
    assert_eq!(
        origin("antivirus.interval"),
        ("\"2h\"".into(), format!("agent v{own_version}").into())
    );
    assert_eq!(
        origin("lan.interval").1,
        Value::from(format!("cabinet v{clinic_version}"))
    );
    assert_eq!(
        origin("updates.enabled"),
        ("false".into(), "fichier local".into())
    );
    assert_eq!(shown["delivered_version"], clinic_version.max(own_version));
}

#[test]
fn a_version_the_agent_cannot_run_is_refused_and_the_previous_keeps_running() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Mafate", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let printer = Device::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let targets = format!(
        "{LAN_EVERY_10S}{}",
        target("printer", &printer, "role = \"server\"")
    );
    let good = write(dir.path(), "good.toml", &targets);
    let first = set(&collector, "--clinic", &clinic, &good);
    let running = started(&agent);
    printer.wait_probed(0, "the first version runs");
    wait_until(APPLY_WITHIN, "it is reported", || {
        runs_version(&collector, &agent_id, first)
    });

    // Valid for the collector, impossible on this machine: a log file that does not exist.
    let missing = dir.path().join("no-such-robocopy.log");
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!(
            "{targets}[[backup.jobs]]\nname = \"nightly\"\nevery = \"24h\"\nsource = \"robocopy\"\npath = '{}'\n",
            missing.display()
        ),
    );
    let second = set(&collector, "--clinic", &clinic, &bad);
    let listed = wait_until(APPLY_WITHIN, "the refusal reaches agents --json", || {
        let a = agent_json(&collector, &agent_id);
        (a["config_refused_version"] == second).then_some(a)
    });
    assert_eq!(listed["config_version"], first, "{listed:#}");
    assert_eq!(listed["config_expected_version"], second);
    assert_eq!(listed["config_outdated"], true);
    let reason = listed["config_refused_reason"].as_str().expect("reason");
    assert!(reason.contains("does not exist"), "{reason}");
    let before = printer.accepted();
    printer.wait_probed(before, "the previous version keeps probing");
    assert!(running.log().contains("central configuration refused"));
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(table.contains("refusée"), "{table}");
}

#[test]
fn a_revoked_agents_configuration_stream_ends() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Bras-Panon", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "clinic.toml",
        "[antivirus]\ninterval = \"3h\"\n",
    );
    let version = set(&collector, "--clinic", &clinic, &file);
    let running = started(&agent);
    wait_until(APPLY_WITHIN, "the agent runs the version", || {
        runs_version(&collector, &agent_id, version)
    });
    collector.admin(&["agent", "revoke", &agent_id]).ok();
    running.wait_until("the stream ends with the reason", APPLY_WITHIN, || {
        let log = running.log();
        log.contains("configuration stream lost") && log.contains("revoked")
    });
}
