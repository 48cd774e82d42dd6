//! Enroll, report, and see the agent and its snapshot through `agents --json`.

use vigie_tests::{Agent, Collector};

#[test]
fn enrolled_agent_reports_its_system_snapshot() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet du Butor", "cmp3");
    let clinics = collector.admin(&["clinic", "list", "--json"]).ok();
    let clinics: serde_json::Value = serde_json::from_str(&clinics.stdout).expect("JSON");
    assert_eq!(clinics[0]["id"], clinic.as_str());
    assert_eq!(clinics[0]["tier"], "cmp3");

    let agent = Agent::new();
    let token = collector.token(&clinic, None);
    let enrolled = agent.enroll(&token, "server").ok();
    let agent_id = agent.agent_id();
    assert!(
        enrolled.stdout.contains(&agent_id),
        "enroll names the agent: {}",
        enrolled.stdout
    );
    // The private key was made here and stays here.
    let key = String::from_utf8(agent.read("agent.key")).expect("PEM");
    assert!(key.contains("PRIVATE KEY"));

    let (sent, queued, _) = agent.run_once();
    assert_eq!((sent, queued), (1, 0));

    let listed = collector.agent(&agent_id);
    assert_eq!(listed["clinic_id"], clinic.as_str());
    assert_eq!(listed["role"], "server");
    assert_eq!(listed["reports"], 1);
    assert!(listed["last_seen"].is_string(), "{listed}");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(listed["hostname"], hostname.trim());
    let snapshot = &listed["snapshot"];
    assert!(
        snapshot["cpu_count"].as_u64().unwrap_or(0) >= 1,
        "{snapshot}"
    );
    assert!(snapshot["memory_total_bytes"].as_u64().unwrap_or(0) > 0);
    let disks = snapshot["disks"].as_array().expect("disks array");
    assert!(
        disks
            .iter()
            .any(|d| d["total_bytes"].as_u64().unwrap_or(0) > 0),
        "at least one disk with a size: {snapshot}"
    );

    // The filter by clinic works and an unknown clinic lists nobody.
    let other = collector.add_clinic("Cabinet vide", "cmp0");
    let run = collector
        .admin(&["agents", "--clinic", &other, "--json"])
        .ok();
    assert_eq!(run.stdout.trim(), "[]");
}

#[test]
fn report_json_collects_without_enrollment_or_network() {
    let agent = Agent::new();
    let run = agent.cmd(&["report", "--json"]).ok();
    let facts: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON array");
    let snapshot = facts
        .as_array()
        .and_then(|a| a.iter().find(|f| f["kind"] == "system_snapshot"))
        .expect("a system snapshot");
    uuid::Uuid::parse_str(snapshot["id"].as_str().expect("id")).expect("UUID id");
    assert!(
        snapshot["system_snapshot"]["cpu_count"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
}

#[test]
fn example_configs_in_deploy_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let agent = Agent::new();
    let example = root.join("deploy/agent.toml");
    agent
        .cmd(&["check-config", "--config", &example.to_string_lossy()])
        .ok();
    let broken = agent.state_dir.with_extension("broken.toml");
    std::fs::write(
        &broken,
        "[collection]\nsnapshot_interval = \"soon\"\n[outbox]\nmax_bytes = -1\n",
    )
    .expect("write");
    let err = agent
        .cmd(&["check-config", "--config", &broken.to_string_lossy()])
        .failed();
    assert!(
        err.contains("snapshot_interval") || err.contains("max_bytes"),
        "{err}"
    );
}
