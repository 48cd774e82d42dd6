//! Storage tests that cross concerns: enrollment, reports and their counts, clinics.

use jiff::Timestamp;
use uuid::Uuid;

use super::*;
use crate::model::{AgentRecord, Clinic, TokenRecord};
use vigie_domain::{AgentRole, Tier};

fn open() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(&dir.path().join("db")).expect("open");
    (dir, storage)
}

fn agent_from(token: &TokenRecord, id: &str) -> AgentRecord {
    AgentRecord {
        id: id.to_owned(),
        clinic_id: token.clinic_id.clone(),
        hostname: "pc-1".into(),
        os: "Linux".into(),
        role: AgentRole::Workstation,
        agent_version: "0.1.0".into(),
        enrolled_at: Timestamp::now(),
        last_seen: None,
        revoked: false,
        revoked_at: None,
        outbox_dropped_total: 0,
        outbox_health: Default::default(),
        snapshot: None,
        snapshot_collected_at: None,
        clock: None,
        config: Default::default(),
    }
}

fn token(expires_in_secs: i64) -> TokenRecord {
    let now = Timestamp::now();
    TokenRecord {
        clinic_id: "clinic".into(),
        created_at: now,
        expires_at: now + jiff::SignedDuration::from_secs(expires_in_secs),
        used: false,
        used_by: None,
    }
}

fn reports(ids: &[Uuid]) -> Vec<EncodedReport> {
    ids.iter()
        .map(|id| EncodedReport {
            id: *id,
            bytes: id.as_bytes().to_vec(),
            interpreted: true,
        })
        .collect()
}

#[test]
fn sled_keeps_its_log_where_we_fsync_it() {
    let (dir, storage) = open();
    storage.flush_durably().expect("flush");
    assert!(dir.path().join("db").join("db").is_file());
}

#[test]
fn report_insert_is_idempotent_and_counted() {
    let (_dir, storage) = open();
    let agent = Uuid::now_v7().to_string();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let first = storage
        .store_reports(&agent, Timestamp::now(), &reports(&[a, b]))
        .expect("store");
    assert_eq!(
        first,
        StoreOutcome {
            new: 2,
            duplicates: 0,
            uninterpreted: 0
        }
    );
    let again = storage
        .store_reports(&agent, Timestamp::now(), &reports(&[a, b, c, c]))
        .expect("store");
    assert_eq!(
        again,
        StoreOutcome {
            new: 1,
            duplicates: 3,
            uninterpreted: 0
        }
    );
    assert_eq!(storage.report_count(&agent).expect("count"), 3);
    assert_eq!(storage.reports_of(&agent).expect("scan").len(), 3);
    let other = Uuid::now_v7().to_string();
    assert_eq!(storage.report_count(&other).expect("count"), 0);
    assert_eq!(
        storage.report(&agent, &a).expect("get").map(|r| r.bytes),
        Some(a.as_bytes().to_vec())
    );
}

#[test]
fn a_full_batch_fits_in_one_transaction() {
    let (_dir, storage) = open();
    let agent = Uuid::now_v7().to_string();
    let batch: Vec<_> = (0..vigie_proto::MAX_REPORTS_PER_BATCH)
        .map(|_| EncodedReport {
            id: Uuid::now_v7(),
            bytes: vec![7u8; 2048],
            interpreted: true,
        })
        .collect();
    let outcome = storage
        .store_reports(&agent, Timestamp::now(), &batch)
        .expect("store");
    assert_eq!(outcome.new, batch.len());
    storage.flush_durably().expect("flush");
    assert_eq!(
        storage.report_count(&agent).expect("count"),
        batch.len() as u64
    );
}

#[test]
fn token_is_single_use_under_concurrency() {
    let (_dir, storage) = open();
    let hash = [9u8; 32];
    storage.put_token(&hash, &token(3600)).expect("put");
    let winners: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let storage = storage.clone();
                scope.spawn(move || {
                    storage.enroll_agent(&hash, Timestamp::now(), |t| {
                        agent_from(t, &format!("agent-{i}"))
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ok = winners.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{winners:?}");
    assert!(winners.iter().all(|r| match r {
        Ok(_) => true,
        Err(EnrollError::Rejected(TokenRejection::Used)) => true,
        Err(_) => false,
    }));
    assert_eq!(storage.list_agents(None).expect("list").len(), 1);
    let stored = storage.token(&hash).expect("get").expect("present");
    assert!(stored.used);
}

#[test]
fn unknown_and_expired_tokens_are_refused() {
    let (_dir, storage) = open();
    let make = |t: &TokenRecord| agent_from(t, "a");
    assert!(matches!(
        storage.enroll_agent(&[1; 32], Timestamp::now(), make),
        Err(EnrollError::Rejected(TokenRejection::Unknown))
    ));
    storage.put_token(&[2; 32], &token(-1)).expect("put");
    assert!(matches!(
        storage.enroll_agent(&[2; 32], Timestamp::now(), make),
        Err(EnrollError::Rejected(TokenRejection::Expired(_)))
    ));
    assert!(storage.list_agents(None).expect("list").is_empty());
}

#[test]
fn clinics_list_in_creation_order_and_agents_filter_by_clinic() {
    let (_dir, storage) = open();
    for name in ["A", "B"] {
        let clinic = Clinic {
            id: Uuid::now_v7().to_string(),
            name: name.into(),
            tier: Tier::Cmp1,
            created_at: Timestamp::now(),
            rule_overrides: Default::default(),
            contact_email: None,
        };
        storage.add_clinic(&clinic).expect("add");
    }
    let clinics = storage.list_clinics().expect("list");
    let names: Vec<_> = clinics.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    storage.put_token(&[3; 32], &token(60)).expect("put");
    storage
        .enroll_agent(&[3; 32], Timestamp::now(), |t| agent_from(t, "x"))
        .expect("enroll");
    assert_eq!(storage.list_agents(Some("clinic")).expect("list").len(), 1);
    assert!(
        storage
            .list_agents(Some(&clinics[0].id))
            .expect("list")
            .is_empty()
    );
    let identity = |id| storage.agent_identity(id).expect("identity");
    assert_eq!(
        identity("x").map(|a| (a.clinic_id, a.revoked)),
        Some(("clinic".to_owned(), false))
    );
    let revoked = storage.revoke_agent("x", Timestamp::now()).expect("revoke");
    assert!(revoked.is_some_and(|a| a.revoked));
    // The identity check reads the same fields of the same record.
    assert_eq!(
        identity("x").map(|a| (a.clinic_id, a.revoked)),
        Some(("clinic".to_owned(), true))
    );
    assert_eq!(identity("nope"), None);
    assert!(
        storage
            .revoke_agent("nope", Timestamp::now())
            .expect("revoke")
            .is_none()
    );
}

#[test]
fn a_damaged_counter_is_an_error_not_zero() {
    let (_dir, storage) = open();
    storage
        .counters
        .insert("alert", &[1u8, 2, 3][..])
        .expect("insert");
    let err = storage.next_alert_id().expect_err("damaged");
    assert!(err.to_string().contains("alert"), "{err}");
}

#[test]
fn maintenance_windows_stored_as_silences_still_read() {
    use crate::alerts::alert::MaintenanceScope;
    let (_dir, storage) = open();
    // A window as a collector from before the rename wrote it: tree "silences", counter "silence".
    storage
        .maintenance_windows
        .insert(
            1u64.to_be_bytes(),
            &br#"{"id":1,"scope":{"kind":"clinic","id":"c1"},"starts_at":"2026-11-28T08:00:00Z","ends_at":"2026-11-28T10:00:00Z","reason":"migration NAS","created_by":"marie"}"#[..],
        )
        .expect("insert");
    storage
        .counters
        .insert("silence", &2u64.to_be_bytes()[..])
        .expect("insert");
    let listed = storage.list_maintenance_windows().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].scope, MaintenanceScope::Clinic("c1".into()));
    assert_eq!(listed[0].reason, "migration NAS");
    let next = storage
        .add_maintenance_window(|id| crate::alerts::alert::MaintenanceWindow {
            id,
            ..listed[0].clone()
        })
        .expect("add");
    assert_eq!(next.id, 2, "numbering goes on from the old counter");
}

#[test]
fn a_database_keeps_the_segment_size_it_was_created_with() {
    // As a collector before issue 16 created it: sled's default 512 KiB.
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old");
    drop(sled::Config::new().path(&old).open().expect("sled"));
    let storage = Storage::open(&old).expect("reopens");
    drop(storage);
    assert_eq!(super::segment_bytes(&old), 512 * 1024);
    let new = dir.path().join("new");
    drop(Storage::open(&new).expect("new"));
    assert_eq!(super::segment_bytes(&new), super::NEW_SEGMENT_BYTES);
}

#[test]
fn batches_of_several_agents_share_a_transaction_and_fail_alone() {
    let (_dir, storage) = open();
    let [a, b, c] = [(); 3].map(|()| Uuid::now_v7().to_string());
    for id in [&a, &b] {
        let record = agent_from(&token(60), id);
        storage
            .agents
            .insert(id.as_bytes(), encode("agent", &record).expect("encode"))
            .expect("insert");
    }
    // C's record is damaged: its batch fails, the others' are stored.
    storage
        .agents
        .insert(c.as_bytes(), &b"{not json"[..])
        .expect("insert");
    let at = Timestamp::from_second(1_800_000_000).expect("ts");
    let first: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let newer = Uuid::now_v7();
    let (a1, b1, c1) = (
        reports(&first),
        reports(&[Uuid::now_v7()]),
        reports(&[Uuid::now_v7()]),
    );
    // A's second batch in the same call: a resend of its first with one newer report.
    let a2 = reports(&[first[0], first[2], newer]);
    let seen = |agent: &mut AgentRecord| agent.last_seen = Some(at);
    let results = storage.store_batches(&[
        input(&a, &a1, at, &seen),
        input(&c, &c1, at, &seen),
        input(&b, &b1, at, &seen),
        input(&a, &a2, at, &seen),
    ]);
    let outcome = |i: usize| {
        results[i]
            .as_ref()
            .map(|(o, _)| (o.new, o.duplicates))
            .map_err(|e| e.to_string())
    };
    assert_eq!(outcome(0), Ok((3, 0)));
    assert!(
        matches!(
            &results[1],
            Err(StorageError::Corrupt { what: "agent", .. })
        ),
        "{:?}",
        outcome(1)
    );
    assert_eq!(outcome(2), Ok((1, 0)));
    assert_eq!(outcome(3), Ok((1, 2)));
    assert_eq!(storage.report_count(&a).expect("count"), 4);
    assert_eq!(storage.report_count(&b).expect("count"), 1);
    assert_eq!(storage.report_count(&c).expect("count"), 0);
    assert!(storage.report(&c, &c1[0].id).expect("get").is_none());
    for (agent, ids) in [
        (&a, vec![first[0], first[1], first[2], newer]),
        (&b, vec![b1[0].id]),
    ] {
        for id in ids {
            let stored = storage.report(agent, &id).expect("get").expect("stored");
            assert_eq!(stored.bytes, id.as_bytes());
        }
        let record = storage.agent(agent).expect("agent").expect("record");
        assert_eq!(
            record.last_seen,
            Some(at),
            "note applied in the shared transaction"
        );
    }
}

fn input<'a>(
    agent_id: &'a str,
    reports: &'a [EncodedReport],
    received_at: Timestamp,
    note: &'a dyn Fn(&mut AgentRecord),
) -> BatchInput<'a> {
    BatchInput {
        agent_id,
        received_at,
        reports,
        deferred: None,
        note,
    }
}

#[test]
fn a_job_keeps_its_newest_runs_and_a_replaced_run_changes_no_count() {
    let (_dir, storage) = open();
    let agent = Uuid::now_v7().to_string();
    let run = |second: i64, bytes: u64| crate::facts::BackupRun {
        finished_at: Timestamp::from_second(1_800_000_000 + second).expect("ts"),
        bytes: Some(bytes),
        ..crate::alerts::rules::fixtures::run("nightly", crate::facts::BackupStatus::Success, 0)
    };
    let extra = 5;
    for second in 0..(RUNS_KEPT + extra) as i64 {
        storage
            .put_backup_run(&agent, &run(second, 1))
            .expect("run");
    }
    // The newest run again, with other figures: replaced, nothing else removed.
    let newest = (RUNS_KEPT + extra - 1) as i64;
    storage
        .put_backup_run(&agent, &run(newest, 2))
        .expect("replace");
    let runs = &storage.backup_runs(&agent).expect("runs")["nightly"];
    assert_eq!(runs.len(), RUNS_KEPT);
    assert_eq!(
        runs[0].finished_at,
        run(extra as i64, 1).finished_at,
        "oldest trimmed"
    );
    assert_eq!(runs[RUNS_KEPT - 1].bytes, Some(2));
}

#[test]
fn facts_recorded_together_end_as_recorded_one_by_one() {
    use crate::facts::{BackupStatus, DeclaredJob, Fact};
    use crate::limits::Cut;
    let at = |second: i64| Timestamp::from_second(1_800_000_000 + second).expect("ts");
    let run = |job: &str, second: i64, bytes: u64| crate::facts::BackupRun {
        finished_at: at(second),
        bytes: Some(bytes),
        ..crate::alerts::rules::fixtures::run(job, BackupStatus::Success, 0)
    };
    let job = |name: &str, every: u64| DeclaredJob {
        name: name.into(),
        every_seconds: every,
        days_of_week: Vec::new(),
        check_every_seconds: 0,
        last_check: None,
        last_good_check_at: None,
    };
    let backup = |runs: Vec<crate::facts::BackupRun>, declared: Vec<DeclaredJob>, cut: &[&str]| {
        Fact::Backup {
            runs,
            declared,
            cut: Cut(cut.iter().map(|c| c.to_string()).collect()),
        }
    };
    // What a backlog holds: runs repeated and replaced, more runs than are kept, a job dropped
    // and declared again, an older declaration arriving late, cuts that come and go.
    let mut facts = Vec::new();
    for second in 0..(RUNS_KEPT as i64 + 8) {
        let declared = match second {
            10..=19 => vec![job("nightly", 86_400)],
            _ => vec![job("nightly", 86_400), job("weekly", 7 * 86_400)],
        };
        let cut: &[&str] = if second % 7 == 0 {
            &["2 exécutions"]
        } else {
            &[]
        };
        facts.push((
            at(second * 10),
            backup(
                vec![
                    run("nightly", second, 1),
                    run("nightly", second, 2),
                    run("weekly", second / 7, 3),
                ],
                declared,
                cut,
            ),
        ));
    }
    facts.push((
        at(5),
        backup(vec![run("nightly", 2, 9)], vec![job("old", 60)], &["late"]),
    ));

    let (_a, one_by_one) = open();
    let (_b, together) = open();
    let agent = Uuid::now_v7().to_string();
    for (when, fact) in &facts {
        one_by_one.record_fact(&agent, *when, fact).expect("fact");
    }
    together
        .record_facts(&agent, facts.iter().map(|(when, fact)| (*when, fact)))
        .expect("facts");

    let runs = one_by_one.backup_runs(&agent).expect("runs");
    assert_eq!(runs["nightly"].len(), RUNS_KEPT, "trimmed");
    assert_eq!(runs, together.backup_runs(&agent).expect("runs"));
    let declared = one_by_one.declared_jobs(&agent).expect("declared");
    assert_eq!(declared.len(), 2);
    assert!(
        declared
            .iter()
            .any(|d| d.job.name == "weekly" && d.first_declared_at == at(200))
    );
    assert_eq!(declared, together.declared_jobs(&agent).expect("declared"));
    assert_eq!(
        one_by_one.fact_cuts(&agent).expect("cuts"),
        together.fact_cuts(&agent).expect("cuts")
    );
}
