//! Helpers for the alert end-to-end tests: backup and LAN reports as an agent would send them,
//! sent with the agent's own certificate, and `alerts --json` read back (evaluation runs just
//! after the ack, so reads poll briefly).

use std::time::{Duration, Instant, SystemTime};

use vigie_proto::v1;

use crate::grpc::{self, ClientCert};
use crate::{Agent, Collector};

/// A backup report with one run of `job` that ended now.
pub fn backup_report(job: &str, status: v1::BackupStatus, message: &str) -> v1::Report {
    let now = SystemTime::now();
    let started = now - Duration::from_secs(600);
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp::from(now)),
        payload: Some(v1::report::Payload::Backup(v1::BackupReport {
            runs: vec![v1::BackupRun {
                job: job.to_owned(),
                source: "spool".into(),
                status: status.into(),
                started_at: Some(prost_types::Timestamp::from(started)),
                finished_at: Some(prost_types::Timestamp::from(now)),
                bytes: Some(1_000_000),
                files: Some(100),
                target: "\\\\nas\\sauvegardes".into(),
                message: message.to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

/// A LAN report with one device in `state`.
pub fn lan_report(device: &str, kind: &str, state: v1::DeviceState) -> v1::Report {
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp::from(SystemTime::now())),
        payload: Some(v1::report::Payload::Lan(v1::LanReport {
            devices: vec![v1::DeviceHealth {
                name: device.to_owned(),
                kind: kind.to_owned(),
                address: "127.0.0.1:9".into(),
                state: state.into(),
                error: "connection refused".into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

/// Sends reports as `agent` (its certificate) and checks they were all stored.
pub async fn send_as(collector: &Collector, agent: &Agent, reports: Vec<v1::Report>) {
    let n = reports.len();
    let channel = grpc::connect(
        collector.agent_addr,
        &collector.ca_pem(),
        Some(&ClientCert::of_agent(agent)),
    )
    .await
    .expect("agent connects");
    let ack = grpc::send_batch(channel, grpc::batch(reports))
        .await
        .expect("reports accepted");
    assert_eq!(ack.stored_ids.len(), n, "{ack:?}");
}

/// `alerts --json ARGS`, parsed.
pub fn alerts(collector: &Collector, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["alerts", "--json"];
    all.extend_from_slice(args);
    let run = collector.admin(&all).ok();
    match serde_json::from_str(&run.stdout) {
        Ok(serde_json::Value::Array(items)) => items,
        other => panic!(
            "alerts --json is not a JSON array: {other:?}\n{}",
            run.stdout
        ),
    }
}

/// Polls `alerts --json` until `done` holds (at most 20 s), and returns the last answer.
pub fn wait_for_alerts(
    collector: &Collector,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = alerts(collector, &[]);
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "alerts never reached the expected state: {got:#?}\n{}",
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The alerts of one clinic with one rule.
pub fn of<'a>(
    alerts: &'a [serde_json::Value],
    clinic: &str,
    rule: &str,
) -> Vec<&'a serde_json::Value> {
    alerts
        .iter()
        .filter(|a| a["clinic_id"] == clinic && a["rule"] == rule)
        .collect()
}
