//! Backup results through the spool: a result written by `backup-result` into the spool of a
//! running agent reaches the collector within seconds, exactly once (across a restart and a
//! re-dropped file too); a corrupt result file is moved aside and reported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigie_tests::{Agent, Collector, RunningAgent};

/// A short rescan so the safety net is exercised too; the watch usually wakes the agent first.
const CONFIG: &str = r#"
[collection]
snapshot_interval = "1h"
[sender]
backoff_initial = "200ms"
backoff_max = "1s"
[updates]
enabled = false
[antivirus]
enabled = false
[software]
enabled = false
[backup]
scan_interval = "2s"
[[backup.jobs]]
name = "nightly-nas"
every = "24h"
"#;

/// Waits until the collector holds `want` reports of the agent; returns how long it took.
fn wait_reports(collector: &Collector, agent_id: &str, want: u64, run: &RunningAgent) -> Duration {
    let started = Instant::now();
    loop {
        let have = collector.reports_of(agent_id);
        if have == want {
            return started.elapsed();
        }
        assert!(have < want, "{have} reports stored, expected {want}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{have} reports after 20 s, expected {want}\nagent log:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files
}

#[test]
fn spool_result_reaches_the_collector_once_and_corrupt_files_are_set_aside() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Saint-Pierre", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let config = agent.state_dir.with_extension("toml");
    std::fs::write(&config, CONFIG).expect("config");
    let spool = agent.state_dir.join("spool");

    // At start: one system snapshot, one backup report carrying the declared job.
    let mut run = RunningAgent::start(&agent, &config);
    wait_reports(&collector, &agent_id, 2, &run);

    let written = agent
        .cmd(&[
            "backup-result",
            "--job",
            "nightly-nas",
            "--status",
            "failed",
            "--started",
            "2026-11-27T22:30:00+04:00",
            "--bytes",
            "1048576",
            "--files",
            "12",
            "--target",
            "NAS nas01",
            "--message",
            "disque plein",
        ])
        .ok();
    let file = PathBuf::from(written.stdout.trim());
    assert!(file.starts_with(&spool), "{file:?} is in the spool");
    let content = std::fs::read(&file).expect("result file");

    let took = wait_reports(&collector, &agent_id, 3, &run);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while file.exists() {
        assert!(Instant::now() < deadline, "result file still in the spool");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Several rescans later, still once.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(collector.reports_of(&agent_id), 3);

    // A crash between the outbox write and the removal leaves the file behind: the agent sends
    // it again under the same id, and the collector stores nothing new.
    std::fs::write(&file, &content).expect("re-drop the same file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while file.exists() {
        assert!(Instant::now() < deadline, "re-dropped file not taken");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(collector.reports_of(&agent_id), 3, "duplicate ignored");

    // Restart: a new snapshot only; the result is not sent again.
    run.stop();
    let mut run = RunningAgent::start(&agent, &config);
    wait_reports(&collector, &agent_id, 4, &run);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(collector.reports_of(&agent_id), 4);

    // A corrupt file: reported once and moved aside, never retried.
    std::fs::write(spool.join("broken.json"), b"{\"job\": 42, garbage").expect("write");
    wait_reports(&collector, &agent_id, 5, &run);
    let rejected = spool.join("rejected").join("broken.json");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rejected.exists() {
        assert!(Instant::now() < deadline, "corrupt file not moved aside");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(json_files(&spool).is_empty(), "spool is empty");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(collector.reports_of(&agent_id), 5);
    run.stop();
    let log = run.log();
    assert!(
        log.contains("job=nightly-nas") && log.contains("status=failed"),
        "key=value log of the result:\n{log}"
    );

    // `report --json` shows the declared job with its last known result, and sends nothing.
    let report = agent
        .cmd(&["report", "--json", "--config", &config.to_string_lossy()])
        .ok();
    let facts: serde_json::Value = serde_json::from_str(&report.stdout).expect("JSON");
    let backup = facts
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["kind"] == "backup")
        .unwrap_or_else(|| panic!("no backup fact in {}", report.stdout));
    let job = &backup["backup"]["declared_jobs"][0];
    assert_eq!(job["name"], "nightly-nas");
    assert_eq!(job["every_seconds"], 86_400);
    assert_eq!(job["last_run"]["status"], "failed");
    assert_eq!(job["last_run"]["bytes"], 1_048_576);
    assert_eq!(job["last_run"]["message"], "disque plein");
    assert_eq!(collector.reports_of(&agent_id), 5);
}
