//! Backup of the collector itself: `backup` while `serve` runs and an agent keeps sending, the
//! machine is lost, `restore` on another data directory, and the same agent carries on without
//! re-enrolling; nothing acknowledged before the backup is missing. Damaged archives are refused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigie_tests::alerts::{alerts, of, wait_for_alerts};
use vigie_tests::{Agent, Collector, RunningAgent, collector_cmd};

/// The spool is rescanned every second, so each result dropped there is a report within ~1 s.
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
scan_interval = "1s"
[[backup.jobs]]
name = "nightly-nas"
every = "24h"
"#;

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn clinics(collector: &Collector) -> serde_json::Value {
    let run = collector.admin(&["clinic", "list", "--json"]).ok();
    serde_json::from_str(&run.stdout).expect("clinic list --json")
}

#[test]
fn restored_collector_keeps_its_agents_and_every_acknowledged_report() {
    let mut collector = Collector::start();
    let saint_pierre = collector.add_clinic("Cabinet de Saint-Pierre", "cmp1");
    let cilaos = collector.add_clinic("Cabinet de Cilaos", "cmp1");
    collector
        .admin(&["clinic", "set-tier", &cilaos, "cmp3"])
        .ok();
    // Created before the backup, spent after the restore: tokens come back too.
    let spare_token = collector.token(&cilaos, None);
    let (agent, agent_id) = Agent::enrolled(&collector, &saint_pierre, "server");
    let config = agent.state_dir.with_extension("toml");
    std::fs::write(&config, CONFIG).expect("config");
    let mut run = RunningAgent::start(&agent, &config);

    agent
        .cmd(&[
            "backup-result",
            "--job",
            "nightly-nas",
            "--status",
            "failed",
            "--message",
            "disque plein",
        ])
        .ok();
    let before = wait_for_alerts(&collector, |a| {
        !of(a, &saint_pierre, "backup_failed").is_empty()
    });
    let failed_alert = of(&before, &saint_pierre, "backup_failed")[0]["id"].clone();
    let clinics_before = clinics(&collector);

    // The agent keeps sending: a backup result dropped in its spool every 100 ms.
    let feeding = Arc::new(AtomicBool::new(true));
    let fed = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (feeding, fed) = (feeding.clone(), fed.clone());
        let state_dir = agent.state_dir.clone();
        std::thread::spawn(move || {
            while feeding.load(Ordering::SeqCst) {
                let out = std::process::Command::new(vigie_tests::bin("vigie-agent"))
                    .args([
                        "backup-result",
                        "--job",
                        "hourly-usb",
                        "--status",
                        "success",
                    ])
                    .arg("--state-dir")
                    .arg(&state_dir)
                    .output()
                    .expect("backup-result");
                assert!(out.status.success(), "{out:?}");
                fed.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let start_count = collector.reports_of(&agent_id);
    wait_until("reports flowing", Duration::from_secs(20), || {
        collector.reports_of(&agent_id) >= start_count + 10
    });

    let archive = collector.data_dir.with_extension("backup");
    let acknowledged_before = collector.reports_of(&agent_id);
    let backup = collector
        .admin(&["backup", "--out", &archive.to_string_lossy()])
        .ok();
    let at_backup_end = collector.reports_of(&agent_id);
    assert!(
        backup.stderr.contains("collecteur en service"),
        "taken by the running serve: {}",
        backup.stderr
    );
    assert_eq!(mode(&archive), 0o600, "the archive holds the CA key");
    assert!(
        collector
            .log()
            .contains("backup: writes paused for the export"),
        "the pause is logged:\n{}",
        collector.log()
    );
    // Still sending after the backup (these are the reports the backup cannot hold).
    wait_until("reports after the backup", Duration::from_secs(20), || {
        collector.reports_of(&agent_id) >= at_backup_end + 3
    });

    // The agent pauses (its state directory stays): otherwise what it queued during the outage
    // would blur the count of what the backup restored.
    feeding.store(false, Ordering::SeqCst);
    feeder.join().expect("feeder");
    run.stop();

    // Lose the machine: the collector stops, its data directory is gone.
    let status = collector.stop();
    assert!(status.success(), "{status}");
    let (agent_addr, admin_addr) = (collector.agent_addr, collector.admin_addr);
    std::fs::remove_dir_all(&collector.data_dir).expect("lose the data directory");
    let ca_before = agent.read("ca.crt");
    let cert_before = agent.read("agent.crt");

    // Another data directory, same addresses (collector.toml came back with the rest).
    let new_dir = collector
        .data_dir
        .with_file_name("rebuilt")
        .join("collector");
    std::fs::create_dir_all(&new_dir).expect("empty target");
    let restored = collector_cmd(&[
        "restore",
        "--file",
        &archive.to_string_lossy(),
        "--data-dir",
        &new_dir.to_string_lossy(),
    ])
    .ok();
    assert!(
        restored.stderr.contains("sauvegarde restaurée"),
        "{}",
        restored.stderr
    );
    assert_eq!(mode(&new_dir), 0o700);
    for secret in ["ca.key", "server.key", "admin.key", "collector.toml"] {
        assert_eq!(mode(&new_dir.join(secret)), 0o600, "{secret}");
    }
    let mut rebuilt = Collector::at(&new_dir, agent_addr, admin_addr);
    rebuilt.serve();

    // Every report acknowledged before the backup began is there.
    let restored_count = rebuilt.reports_of(&agent_id);
    assert!(
        (acknowledged_before..=at_backup_end).contains(&restored_count),
        "restored {restored_count} reports; {acknowledged_before} acknowledged before the backup, \
         {at_backup_end} when it ended"
    );
    // The same agent carries on, with the same state and certificate: its reports keep arriving.
    let mut run = RunningAgent::start(&agent, &config);
    for _ in 0..3 {
        agent
            .cmd(&[
                "backup-result",
                "--job",
                "hourly-usb",
                "--status",
                "success",
            ])
            .ok();
    }
    wait_until(
        "the agent reporting to the restored collector",
        Duration::from_secs(30),
        || rebuilt.reports_of(&agent_id) >= restored_count + 3,
    );
    assert_eq!(agent.agent_id(), agent_id, "not re-enrolled");
    assert_eq!(agent.read("ca.crt"), ca_before, "same CA pinned");
    let agents = rebuilt.agents();
    assert_eq!(agents.len(), 1, "{agents:#?}");
    assert_eq!(agents[0]["id"], agent_id.as_str());
    assert_eq!(agent.read("agent.crt"), cert_before, "same certificate");

    // Clinics and their tiers, alerts and unused tokens are back.
    assert_eq!(clinics(&rebuilt), clinics_before);
    let after = alerts(&rebuilt, &["--all"]);
    assert!(
        after
            .iter()
            .any(|a| a["id"] == failed_alert && a["rule"] == "backup_failed"),
        "alert {failed_alert} is back: {after:#?}"
    );
    let second = Agent::new();
    second.enroll(&spare_token, "workstation").ok();
    assert_eq!(
        rebuilt.agents().len(),
        2,
        "the token made before the backup still enrolls"
    );

    run.stop();
    assert!(fed.load(Ordering::SeqCst) > 0);
    eprintln!(
        "reports: {acknowledged_before} stored before the backup, {restored_count} restored, \
         {at_backup_end} when the backup ended; {} results fed",
        fed.load(Ordering::SeqCst)
    );
}

#[test]
fn backup_without_serve_and_damaged_archives_are_refused() {
    let mut collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet du Tampon", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let (sent, _, _) = agent.run_once();
    assert_eq!(sent, 1);
    collector.stop();

    // No serve: `backup` opens the database itself, and says so.
    let archive = collector.data_dir.with_extension("backup");
    let backup = collector
        .admin(&["backup", "--out", &archive.to_string_lossy()])
        .ok();
    assert!(
        backup.stderr.contains("aucun collecteur ne répond"),
        "{}",
        backup.stderr
    );
    let bytes = std::fs::read(&archive).expect("archive");

    let target = collector.data_dir.with_file_name("restored");
    let restore = |file: &Path| {
        collector_cmd(&[
            "restore",
            "--file",
            &file.to_string_lossy(),
            "--data-dir",
            &target.to_string_lossy(),
        ])
    };
    // Cut short (a full disk, an interrupted copy) and altered: refused, nothing written.
    let cut = archive.with_extension("cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    let error = restore(&cut).failed();
    assert!(error.contains("tronquée"), "{error}");
    let mut altered = bytes.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    let damaged = archive.with_extension("damaged");
    std::fs::write(&damaged, &altered).expect("write");
    let error = restore(&damaged).failed();
    assert!(error.contains("endommagée"), "{error}");
    assert!(!target.exists(), "a refused archive writes nothing");

    // A target that holds something is refused too.
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(target.join("collector.toml"), "# someone else's").expect("write");
    let error = restore(&archive).failed();
    assert!(error.contains("n'est pas vide"), "{error}");
    std::fs::remove_dir_all(&target).expect("clean");

    // The good one restores, and serves what was stored.
    restore(&archive).ok();
    let mut rebuilt = Collector::at(&target, collector.agent_addr, collector.admin_addr);
    rebuilt.serve();
    assert_eq!(rebuilt.reports_of(&agent_id), 1);
    let (sent, queued, _) = agent.run_once();
    assert_eq!((sent, queued), (1, 0));
    assert_eq!(rebuilt.reports_of(&agent_id), 2);

    // A serve holds the database but `backup` cannot reach it (collector.toml edited since
    // serve started): it does not open the database under serve's feet.
    let config_path = target.join("collector.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    let elsewhere = format!("127.0.0.1:{}", vigie_tests::free_port());
    std::fs::write(
        &config_path,
        config.replace(&collector.admin_addr.to_string(), &elsewhere),
    )
    .expect("edit config");
    let error = rebuilt
        .admin(&["backup", "--out", &archive.to_string_lossy()])
        .failed();
    assert!(error.contains("ouverte par un autre processus"), "{error}");
    assert_eq!(
        std::fs::read(&archive).expect("archive"),
        bytes,
        "the old backup is intact"
    );
    std::fs::write(&config_path, config).expect("restore config");
    assert_eq!(rebuilt.reports_of(&agent_id), 2);
}
