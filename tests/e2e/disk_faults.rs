//! A disk that fails under the collector or the agent: a failed `fsync` (libfiu) or a full
//! disk (a small tmpfs). No acknowledgement without durable storage, a clear error, the
//! collector exits for its service manager to restart it, and nothing is lost.

use std::time::Duration;

use vigie_tests::faults::{EIO, RunningAgent, Tmpfs, fiu_ctrl};
use vigie_tests::{Agent, Collector};

/// How long a collector that lost durability may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn shipped_unit_restarts_on_failure() {
    let unit = include_str!("../../deploy/systemd/vigie-collector.service");
    assert!(
        unit.lines().any(|l| l.trim() == "Restart=on-failure"),
        "the collector unit must restart it after it exits on a failed flush"
    );
}

#[test]
fn failed_fsync_acknowledges_nothing_and_the_collector_exits() {
    shipped_unit_restarts_on_failure();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    collector.serve_under(&["fiu-run", "-x"]);
    let clinic = collector.add_clinic("Cabinet du Tampon", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    assert_eq!(agent.run_once().0, 1, "delivered while the disk is healthy");

    // From now on every fsync of the collector fails with EIO, as a dying disk does.
    fiu_ctrl(
        collector.pid(),
        &format!("enable name=posix/io/sync/fsync,failinfo={EIO}"),
    );
    let fault = std::time::Instant::now();
    let (sent, queued, run) = agent.run_once();
    assert_eq!(
        (sent, queued),
        (0, 1),
        "not acknowledged, kept in the outbox"
    );
    assert!(
        run.stderr.contains("cannot store reports durably"),
        "the agent says why: {}",
        run.stderr
    );
    let status = collector
        .wait_exit(EXIT_WITHIN)
        .unwrap_or_else(|| panic!("still serving after a failed fsync:\n{}", collector.log()));
    assert!(!status.success(), "exits non-zero: {status}");
    let exited_after = fault.elapsed();
    let log = collector.log();
    assert!(log.contains("group commit flush failed"), "{log}");
    assert!(log.contains("Input/output error"), "{log}");

    // Restarted (as systemd would) without the fault: the report kept by the agent arrives.
    collector.serve();
    let (sent, queued, _) = agent.run_once();
    assert_eq!((sent, queued), (2, 0), "the kept report and a new one");
    assert_eq!(
        collector.reports_of(&agent_id),
        3,
        "each report stored once"
    );
    println!(
        "measured: collector fsync EIO: exited ({status}) {exited_after:?} after the fault, \
         reports lost 0 of 2"
    );
}

/// Backup results written through the agent's spool (`backup-result`), with the longest
/// message the agent keeps, so that a batch needs more than the pages a file already has.
fn write_backup_results(agent: &Agent, count: usize) {
    let message = "é".repeat(250);
    for n in 0..count {
        agent
            .cmd(&[
                "backup-result",
                "--job",
                &format!("job-{n:02}"),
                "--status",
                "failed",
                "--message",
                &message,
            ])
            .ok();
    }
}

#[test]
fn full_disk_acknowledges_nothing_and_loses_nothing() {
    let disk = Tmpfs::mount("24m");
    let logs = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&disk.path.join("collector"));
    // The log stays readable on a disk of its own.
    collector.log_to(&logs.path().join("serve.log"));
    collector.serve();
    let clinic = collector.add_clinic("Cabinet de Salazie", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    assert_eq!(agent.run_once().0, 1);

    let (filler, filled) = disk.fill();
    assert!(filled > 0, "the disk had room before");
    write_backup_results(&agent, 40);
    let (sent, queued, run) = agent.run_once();
    assert_eq!(
        sent, 0,
        "nothing acknowledged on a full disk: {}",
        run.stderr
    );
    assert!(queued >= 2, "backup results and a snapshot kept: {queued}");
    assert!(
        run.stderr.contains("cannot store reports durably"),
        "the agent says why: {}",
        run.stderr
    );
    let status = collector
        .wait_exit(EXIT_WITHIN)
        .unwrap_or_else(|| panic!("still serving on a full disk:\n{}", collector.log()));
    assert!(!status.success(), "exits non-zero: {status}");
    assert!(
        collector.log().contains("No space left on device"),
        "{}",
        collector.log()
    );

    // Space freed, collector restarted: everything kept arrives, each report once.
    std::fs::remove_file(filler).expect("free the disk");
    collector.serve();
    let (sent, now_queued, _) = agent.run_once();
    assert_eq!(
        (sent, now_queued),
        (queued + 1, 0),
        "the kept reports and a new snapshot"
    );
    assert_eq!(collector.reports_of(&agent_id), 1 + sent);
    println!(
        "measured: full disk: {queued} reports kept by the agent, {sent} delivered after the restart, 0 lost"
    );
    collector.stop();
}

/// `run` as deployed, with short retries and no machine-dependent checks; the only reports
/// are the start snapshot and the backup results the test writes.
const RUN_CONFIG: &str = "[collection]\nsnapshot_interval = \"1h\"\n\
    [updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n\
    [backup]\nscan_interval = \"1s\"\n\
    [sender]\nbackoff_initial = \"100ms\"\nbackoff_max = \"500ms\"\n";

#[test]
fn failed_outbox_fsync_is_counted_reported_and_loses_nothing() {
    let mut collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Saint-Joseph", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let config = agent.state_dir.with_extension("run.toml");
    std::fs::write(&config, RUN_CONFIG).expect("config");
    let mut running = RunningAgent::start_under(&agent, &config, &["fiu-run", "-x"]);
    running.wait_until("start snapshot delivered", Duration::from_secs(20), || {
        collector.reports_of(&agent_id) >= 1
    });
    let before = collector.reports_of(&agent_id);

    // A result queued while the collector is away: it must survive what follows.
    assert!(collector.stop().success());
    write_backup_results(&agent, 1);
    running.wait_until(
        "first result taken from the spool",
        Duration::from_secs(10),
        || {
            std::fs::read_dir(agent.state_dir.join("spool"))
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                        .count()
                        == 0
                })
                .unwrap_or(false)
        },
    );

    // The agent's disk starts failing every fsync: the next result cannot be queued.
    fiu_ctrl(
        running.pid(),
        &format!("enable name=posix/io/sync/fsync,failinfo={EIO}"),
    );
    agent
        .cmd(&[
            "backup-result",
            "--job",
            "after-fault",
            "--status",
            "success",
        ])
        .ok();
    running.wait_until(
        "the failed write is logged",
        Duration::from_secs(15),
        || running.log().contains("outbox write failed"),
    );
    assert!(
        running.log().contains("Input/output error"),
        "{}",
        running.log()
    );
    fiu_ctrl(running.pid(), "disable name=posix/io/sync/fsync");

    // Disk healthy again, collector back: both results arrive, and the failure is reported.
    collector.serve();
    running.wait_until("both results delivered", Duration::from_secs(30), || {
        collector.reports_of(&agent_id) >= before + 2
    });
    running.wait_until(
        "the failure reaches the collector",
        Duration::from_secs(30),
        || collector.agent(&agent_id)["outbox_write_failures"].as_u64() >= Some(1),
    );
    assert!(
        running.is_running(),
        "the agent keeps running:\n{}",
        running.log()
    );
    let listed = collector.agent(&agent_id);
    assert!(
        listed["outbox_last_write_error"]
            .as_str()
            .is_some_and(|e| e.contains("Input/output error")),
        "{listed}"
    );
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(table.contains("échecs d'écriture"), "{table}");
    assert!(running.stop().success());
    assert_eq!(
        collector.reports_of(&agent_id),
        before + 2,
        "each result stored once, nothing more"
    );
    println!(
        "measured: agent fsync EIO: write failures counted {}, reports lost 0 of 2",
        listed["outbox_write_failures"]
    );

    // `run --once` shows the count kept in the outbox; no new failure in this run.
    let (_, queued, run) = agent.run_once();
    assert_eq!(queued, 0);
    assert!(
        run.stdout.contains("outbox write failures ") && run.stdout.contains("(0 in this run)"),
        "{}",
        run.stdout
    );
}
