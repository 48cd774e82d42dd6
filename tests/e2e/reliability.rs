//! Situations that used to make Vigie silent, reproduced with the real binaries: a LAN device
//! probed on its own, longer interval; an agent whose clock was a year ahead once (`faketime`);
//! a newer agent's report of a kind this collector does not know.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message as _;
use serde_json::Value;
use vigie_proto::v1;
use vigie_tests::alerts::{alerts, of};
use vigie_tests::grpc::{self, ClientCert};
use vigie_tests::{
    Agent, Collector, QUIET_CHECKS, RunningAgent, edit_collector_toml, free_port, wait_until,
};

/// A CMP3 collector evaluating every 2 s, alerting on a LAN device down for `down_after`
/// minutes, resolving after two clean evaluations.
fn collector(down_after_minutes: u32) -> (tempfile::TempDir, Collector, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    edit_collector_toml(
        &collector.data_dir,
        &[
            ("evaluate_every_seconds = 60", "evaluate_every_seconds = 2"),
            (
                "down_after_minutes = 10",
                &format!("down_after_minutes = {down_after_minutes}"),
            ),
        ],
    );
    collector.serve();
    let clinic = collector.add_clinic("Centre d'imagerie du Port", "cmp3");
    (tmp, collector, clinic)
}

fn open_alerts(collector: &Collector, clinic: &str, rule: &str) -> Vec<Value> {
    of(&alerts(collector, &[]), clinic, rule)
        .into_iter()
        .cloned()
        .collect()
}

fn lan_config(targets: &str) -> String {
    format!(
        "{QUIET_CHECKS}[collection]\nsnapshot_interval = \"1h\"\n\
         [lan]\ninterval = \"10s\"\nprobe_timeout = \"2s\"\ndiscover_neighbours = false\n{targets}"
    )
}

/// A router answering on a port the test holds open, probed every 10 s.
fn router(port: u16) -> String {
    format!(
        "[[lan.targets]]\nname = \"routeur\"\nkind = \"router\"\naddress = \"127.0.0.1\"\n\
         probes = [{{ type = \"tcp\", port = {port} }}]\n"
    )
}

/// A PACS on a closed port with its own, longer interval.
fn pacs(port: u16, interval: &str) -> String {
    format!(
        "[[lan.targets]]\nname = \"pacs\"\nkind = \"pacs\"\naddress = \"127.0.0.1\"\n\
         interval = \"{interval}\"\nprobes = [{{ type = \"tcp\", port = {port} }}]\n"
    )
}

#[test]
fn a_device_on_its_own_interval_still_alerts_when_down_and_leaves_with_its_config() {
    let (_tmp, collector, clinic) = collector(1);
    let (agent, _id) = Agent::enrolled(&collector, &clinic, "server");
    let open = TcpListener::bind("127.0.0.1:0").expect("router port");
    let router_port = open.local_addr().expect("addr").port();
    let closed = free_port();
    let config = agent.state_dir.with_extension("lan.toml");
    std::fs::write(
        &config,
        lan_config(&(router(router_port) + &pacs(closed, "30s"))),
    )
    .expect("config");

    let started = Instant::now();
    let mut run = RunningAgent::start(&agent, &config);
    // Rounds every 10 s probe only the router; the PACS every 30 s. Down for a minute must
    // alert although most LAN reports do not list it (before: never, its down time restarted).
    let down = wait_until(Duration::from_secs(150), "PACS down alert", || {
        open_alerts(&collector, &clinic, "lan_device_down")
            .into_iter()
            .find(|a| a["device"] == "pacs")
    });
    let after = started.elapsed();
    assert!(
        after >= Duration::from_secs(55),
        "alerted after {after:?}, before the minute"
    );
    assert!(
        open_alerts(&collector, &clinic, "lan_device_down")
            .iter()
            .all(|a| a["device"] != "routeur"),
        "the router answers"
    );
    eprintln!("PACS down alert after {after:?}: {}", down["text"]);

    // Taken out of the configuration: only now does the device leave, and its alert resolves.
    run.stop();
    std::fs::write(&config, lan_config(&router(router_port))).expect("config");
    let mut run = RunningAgent::start(&agent, &config);
    wait_until(Duration::from_secs(60), "PACS alert resolved", || {
        open_alerts(&collector, &clinic, "lan_device_down")
            .iter()
            .all(|a| a["device"] != "pacs")
            .then_some(())
    });
    run.stop();
    drop(open);
}

fn faketime_available() {
    let found = Command::new("faketime")
        .args(["-f", "+1d", "true"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "faketime is missing: the test command installs it (Debian `faketime`)"
    );
}

fn offset_of(collector: &Collector, agent_id: &str) -> Option<i64> {
    collector.agent(agent_id)["clock_offset_seconds"].as_i64()
}

#[test]
fn a_clock_a_year_ahead_once_does_not_freeze_the_agents_facts() {
    faketime_available();
    let (_tmp, collector, clinic) = collector(0);
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let port = free_port();
    let config = agent.state_dir.with_extension("clock.toml");
    std::fs::write(&config, lan_config(&pacs(port, "10s"))).expect("config");
    let config = config.to_string_lossy().into_owned();
    let state = agent.state_dir.to_string_lossy().into_owned();
    let year = 365 * 86_400;

    // One run with the clock a year ahead (a flat CMOS battery): the PACS is down.
    let out = Command::new("faketime")
        .args(["-f", "+365d"])
        .arg(vigie_tests::bin("vigie-agent"))
        .args(["run", "--once", "--state-dir", &state, "--config", &config])
        .env("VIGIE_LOG", "warn")
        .output()
        .expect("faketime vigie-agent");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offset = offset_of(&collector, &agent_id).expect("clock offset measured");
    assert!((offset - year).abs() < 120, "offset {offset}");
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(table.contains("avance 365 j"), "{table}");
    let skew = wait_until(Duration::from_secs(20), "clock_skew alert", || {
        open_alerts(&collector, &clinic, "clock_skew")
            .into_iter()
            .next()
    });
    assert_eq!(skew["severity"], "critical", "{skew}");
    wait_until(Duration::from_secs(20), "PACS down alert", || {
        (!open_alerts(&collector, &clinic, "lan_device_down").is_empty()).then_some(())
    });

    // The clock is right again and the PACS answers: the facts follow (before: frozen on
    // the year-ahead report, the alert open for a year).
    let pacs_up = TcpListener::bind(("127.0.0.1", port)).expect("PACS port");
    agent.cmd(&["run", "--once", "--config", &config]).ok();
    assert!(offset_of(&collector, &agent_id).is_some_and(|o| o.abs() < 60));
    wait_until(Duration::from_secs(30), "alerts resolved", || {
        (open_alerts(&collector, &clinic, "lan_device_down").is_empty()
            && open_alerts(&collector, &clinic, "clock_skew").is_empty())
        .then_some(())
    });
    drop(pacs_up);
}

/// A report of a payload kind from a later protocol version (field 17 of `Report`).
fn future_report() -> (String, Vec<u8>) {
    let id = uuid::Uuid::now_v7().to_string();
    let mut bytes = v1::Report {
        id: id.clone(),
        collected_at: Some(grpc::now()),
        payload: None,
    }
    .encode_to_vec();
    // Field 17, length-delimited: { 1: "quelque chose de nouveau" }.
    let inner = b"\x0a\x18quelque chose de nouveau";
    bytes.extend_from_slice(&[0x8a, 0x01, inner.len() as u8]);
    bytes.extend_from_slice(inner);
    (id, bytes)
}

#[tokio::test]
async fn a_newer_agents_report_kind_is_stored_acknowledged_and_counted() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet Saint-Pierre", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let channel = grpc::connect(
        collector.agent_addr,
        &collector.ca_pem(),
        Some(&ClientCert::of_agent(&agent)),
    )
    .await
    .expect("connect");
    let (future_id, future) = future_report();
    let known = grpc::snapshot_report(uuid::Uuid::now_v7(), "pc-accueil");
    let batch = v1::ReceivedBatch {
        reports: vec![future, known.encode_to_vec()],
        outbox: Some(v1::OutboxStatus::default()),
        agent_version: "9.0.0".into(),
        sent_at: Some(grpc::now()),
        config_version: 0,
    };
    let ack = grpc::send_raw(channel, batch.encode_to_vec())
        .await
        .expect("batch accepted");
    let ack = v1::ReportAck::decode(ack.as_slice()).expect("ack");
    // Acknowledged, not rejected: the agent deletes it only because it is stored.
    assert!(ack.rejected.is_empty(), "{:?}", ack.rejected);
    assert!(ack.stored_ids.contains(&future_id), "{:?}", ack.stored_ids);
    assert!(ack.stored_ids.contains(&known.id));

    let listed = collector.agent(&agent_id);
    assert_eq!(listed["reports"], 2, "{listed}");
    assert_eq!(listed["uninterpreted_reports"], 1, "{listed}");
    assert_eq!(listed["hostname"], "pc-accueil", "the known report is read");
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(
        table.contains("1 rapport(s) d'un type que ce collecteur ne connaît pas"),
        "{table}"
    );
    assert!(collector.log().contains("upgrade the collector"));
}
