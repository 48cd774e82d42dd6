//! A report the collector refuses for good is never deleted by the agent: it goes to the
//! outbox's quarantine, kept on disk, counted, never resent by itself, and the collector's
//! `agents` shows the count and the reason.

use vigie_agent::outbox::{EntryKind, Outbox};
use vigie_proto::v1;
use vigie_tests::{Agent, Collector};

/// A backup result without `collected_at`: what a damaged or foreign outbox may hold, and what
/// every collector refuses for good.
fn refused_backup_report() -> v1::Report {
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: None,
        payload: Some(v1::report::Payload::Backup(v1::BackupReport::default())),
    }
}

#[test]
fn refused_report_is_quarantined_counted_and_shown() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Saint-Benoît", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    assert_eq!(agent.run_once().0, 1);

    let refused = refused_backup_report();
    {
        let outbox = Outbox::open(&agent.state_dir.join("outbox"), u64::MAX).expect("outbox");
        outbox.push(&refused).expect("push");
    }
    let (sent, queued, run) = agent.run_once();
    assert_eq!(
        (sent, queued),
        (1, 0),
        "the new snapshot stored, the refused one out of the queue"
    );
    assert!(
        run.stdout
            .contains("quarantined 1 (total 1, discarded 0), last reason: collected_at is missing"),
        "the summary shows it: {}",
        run.stdout
    );

    // The next batch tells the collector; the refused report is not sent again.
    assert_eq!(agent.run_once().0, 1);
    let log = collector.log();
    assert_eq!(
        log.matches(&format!("report_id={} reason", refused.id))
            .count(),
        1,
        "refused once, never resent:\n{log}"
    );
    let listed = collector.agent(&agent_id);
    assert_eq!(listed["outbox_quarantined"], 1, "{listed}");
    assert_eq!(listed["outbox_quarantined_total"], 1, "{listed}");
    assert_eq!(
        listed["outbox_last_quarantine_reason"], "collected_at is missing",
        "{listed}"
    );
    assert_eq!(listed["outbox_write_failures"], 0, "{listed}");
    let table = collector.admin(&["agents"]).ok().stdout;
    assert!(
        table.contains("1 en quarantaine (collected_at is missing)"),
        "{table}"
    );

    // Kept on disk for a technician, whole.
    let listing = agent.cmd(&["quarantine", "--json"]).ok().stdout;
    let items: serde_json::Value = serde_json::from_str(&listing).expect("JSON");
    assert_eq!(items[0]["id"], refused.id.as_str(), "{listing}");
    assert_eq!(items[0]["kind"], EntryKind::BackupResult.as_str());
    assert_eq!(items[0]["reason"], "collected_at is missing");
    assert_eq!(items.as_array().map(Vec::len), Some(1));
}
