//! An upgraded agent finds the sled outbox the old one left: `run` moves it into its
//! plain files (in a child process, so sled never runs in the agent itself) and delivers every
//! report in it once, with its counters; sled's files are gone afterwards.

use prost::Message as _;
use vigie_proto::v1;
use vigie_tests::{Agent, Collector};

fn snapshot(hostname: &str) -> v1::Report {
    v1::Report {
        id: uuid::Uuid::now_v7().to_string(),
        collected_at: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second(),
            nanos: 0,
        }),
        payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
            hostname: hostname.into(),
            ..Default::default()
        })),
    }
}

#[test]
fn an_old_sled_outbox_is_delivered_whole_after_the_upgrade() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Saint-Pierre", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let outbox = agent.state_dir.join("outbox");
    // The layout of the old sled outbox (agent/src/outbox/sled_import.rs): tree `reports`, key =
    // the UUID's 16 bytes, value = kind byte (1: system snapshot) + the report; tree `meta`.
    {
        let db = sled::Config::new().path(&outbox).open().expect("sled");
        let reports = db.open_tree("reports").expect("tree");
        for name in ["old-1", "old-2", "old-3"] {
            let report = snapshot(name);
            let id = uuid::Uuid::parse_str(&report.id).expect("id");
            let mut value = vec![1u8];
            value.extend(report.encode_to_vec());
            reports.insert(id.as_bytes(), value).expect("insert");
        }
        let meta = db.open_tree("meta").expect("tree");
        meta.insert("dropped_total", &4u64.to_be_bytes())
            .expect("insert");
        db.flush().expect("flush");
    }

    let (sent, queued, run) = agent.run_once();
    assert_eq!(
        (sent, queued),
        (4, 0),
        "the 3 old reports and a new snapshot: {}",
        run.stderr
    );
    assert_eq!(collector.reports_of(&agent_id), 4, "each stored once");
    assert_eq!(collector.agent(&agent_id)["outbox_dropped_total"], 4);
    for gone in ["db", "conf", "blobs"] {
        assert!(!outbox.join(gone).exists(), "{gone} removed");
    }
    assert!(outbox.join("reports").is_dir());
}
