use super::*;

pub(super) fn snapshot(hostname: &str) -> v1::Report {
    v1::Report {
        id: Uuid::now_v7().to_string(),
        collected_at: None,
        payload: Some(v1::report::Payload::SystemSnapshot(v1::SystemSnapshot {
            hostname: hostname.into(),
            ..Default::default()
        })),
    }
}

/// A backup report; the name rides in a declared job so the tests can tell them apart.
pub(super) fn backup(name: &str) -> v1::Report {
    v1::Report {
        id: Uuid::now_v7().to_string(),
        collected_at: None,
        payload: Some(v1::report::Payload::Backup(v1::BackupReport {
            declared_jobs: vec![v1::DeclaredJob {
                name: name.into(),
                ..Default::default()
            }],
            ..Default::default()
        })),
    }
}

pub(super) fn hostnames(outbox: &Outbox) -> Vec<String> {
    outbox
        .peek_batch(usize::MAX, usize::MAX)
        .expect("peek")
        .into_iter()
        .map(|(_, r)| match r.payload {
            Some(v1::report::Payload::SystemSnapshot(s)) => s.hostname,
            Some(v1::report::Payload::Backup(b)) => b.declared_jobs[0].name.clone(),
            _ => String::new(),
        })
        .collect()
}

fn ids(outbox: &Outbox) -> Vec<Uuid> {
    outbox
        .peek_batch(usize::MAX, usize::MAX)
        .expect("peek")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn reports_come_back_oldest_first_within_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
    for name in ["a", "b", "c", "d"] {
        outbox.push(&snapshot(name)).expect("push");
    }
    assert_eq!(hostnames(&outbox), ["a", "b", "c", "d"]);
    assert_eq!(outbox.peek_batch(2, usize::MAX).expect("peek").len(), 2);
    // The byte limit still lets the first report through.
    assert_eq!(outbox.peek_batch(10, 1).expect("peek").len(), 1);

    let first_two: Vec<Uuid> = outbox
        .peek_batch(2, usize::MAX)
        .expect("peek")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(outbox.remove(&first_two).expect("remove"), 2);
    assert_eq!(outbox.remove(&first_two).expect("remove again"), 0);
    assert_eq!(hostnames(&outbox), ["c", "d"]);
    assert_eq!(outbox.len(), 2);
}

#[test]
fn each_report_is_one_file_named_by_its_id_and_kind_holding_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
    let snap = snapshot("a");
    let result = backup("nightly");
    outbox.push(&snap).expect("push");
    outbox.push(&result).expect("push");
    let id = |r: &v1::Report| Uuid::parse_str(&r.id).expect("id").simple().to_string();
    assert_eq!(
        names(&dir.path().join(REPORTS_DIR)),
        [
            format!("{}.system_snapshot", id(&snap)),
            format!("{}.backup_result", id(&result)),
        ]
    );
    let stored = fs::read(
        dir.path()
            .join(REPORTS_DIR)
            .join(format!("{}.backup_result", id(&result))),
    )
    .expect("read");
    assert_eq!(
        stored,
        result.encode_to_vec(),
        "the report exactly as queued"
    );
    assert_eq!(outbox.bytes(), (snap.encoded_len() + stored.len()) as u64);
}

#[test]
fn contents_and_totals_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&snapshot("a")).expect("push");
        outbox.push(&snapshot("b")).expect("push");
        outbox.bytes()
    };
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox.bytes(), bytes);
    assert_eq!(hostnames(&outbox), ["a", "b"]);
}

#[test]
fn pushing_the_same_id_twice_keeps_one_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
    let report = snapshot("a");
    outbox.push(&report).expect("push");
    let bytes = outbox.bytes();
    outbox.push(&report).expect("push again");
    assert_eq!((outbox.len(), outbox.bytes()), (1, bytes));
    assert_eq!(names(&dir.path().join(REPORTS_DIR)).len(), 1);
}

#[test]
fn full_outbox_drops_oldest_snapshots_and_never_backup_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = snapshot("x").encoded_len() as u64;
    // Room for three entries of about this size (host names differ by a few bytes).
    let outbox = Outbox::open(dir.path(), 3 * one + 40).expect("open");
    outbox.push(&backup("backup")).expect("push");
    outbox.push(&snapshot("a")).expect("push");
    outbox.push(&snapshot("b")).expect("push");
    let outcome = outbox.push(&snapshot("c")).expect("push");
    assert_eq!(outcome.dropped, 1);
    assert_eq!(hostnames(&outbox), ["backup", "b", "c"]);

    // Fill with backup results only: the bound gives way rather than dropping one.
    // Pushing these drops the snapshots b and c.
    outbox.push(&backup("backup2")).expect("push");
    outbox.push(&backup("backup3")).expect("push");
    assert_eq!(hostnames(&outbox), ["backup", "backup2", "backup3"]);
    let outcome = outbox.push(&snapshot("d")).expect("push");
    assert_eq!(hostnames(&outbox), ["backup", "backup2", "backup3", "d"]);
    assert_eq!(outcome.dropped, 0);
    assert!(outcome.over_bound);
    assert_eq!(outbox.dropped_total(), 3);
    assert_eq!(
        names(&dir.path().join(REPORTS_DIR)).len(),
        4,
        "dropped = unlinked"
    );
}

#[test]
fn dropped_total_persists_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(dir.path(), 1).expect("open");
        outbox.push(&snapshot("a")).expect("push");
        outbox.push(&snapshot("b")).expect("push");
        outbox.push(&snapshot("c")).expect("push");
        assert_eq!(outbox.dropped_total(), 2);
        assert_eq!(hostnames(&outbox), ["c"]);
    }
    let outbox = Outbox::open(dir.path(), 1).expect("reopen");
    assert_eq!(outbox.dropped_total(), 2);
    assert_eq!(outbox.len(), 1);
}

#[test]
fn large_reports_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = "x".repeat(600 * 1024);
    {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&snapshot(&big)).expect("push");
    }
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(hostnames(&outbox), [big]);
}

#[test]
fn bad_id_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
    let mut report = snapshot("a");
    report.id = "not-a-uuid".into();
    assert!(matches!(outbox.push(&report), Err(OutboxError::BadId(_))));
}

#[test]
fn second_open_of_the_same_dir_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Outbox::open(dir.path(), u64::MAX).expect("open");
    let error = Outbox::open(dir.path(), u64::MAX).expect_err("locked");
    assert!(error.to_string().contains("another vigie-agent"), "{error}");
    drop(first);
    Outbox::open(dir.path(), u64::MAX).expect("free again once closed");
}

#[test]
fn a_write_that_never_finished_is_not_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = snapshot("kept");
    {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&kept).expect("push");
    }
    // What a crash before the rename leaves: a partial temporary file.
    let torn = dir
        .path()
        .join(REPORTS_DIR)
        .join(format!("{}.backup_result.tmp", Uuid::now_v7().simple()));
    fs::write(&torn, [0x0a, 0xff]).expect("torn");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(hostnames(&outbox), ["kept"]);
    assert!(!torn.exists(), "removed at open");
}

#[test]
fn refused_reports_move_to_the_quarantine_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (refused, kept) = {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&backup("nightly")).expect("push");
        outbox.push(&snapshot("a")).expect("push");
        let all = ids(&outbox);
        let moved = outbox
            .quarantine(&[(all[0], "unknown payload kind".into())])
            .expect("quarantine");
        assert_eq!(moved, 1);
        // Moving it again, or an unknown id, does nothing.
        assert_eq!(
            outbox.quarantine(&[(all[0], "again".into())]).expect("q"),
            0
        );
        assert_eq!(ids(&outbox), [all[1]], "not resent");
        (all[0], all[1])
    };
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(ids(&outbox), [kept]);
    let health = outbox.health();
    assert_eq!(
        (health.queued, health.quarantined, health.quarantined_total),
        (1, 1, 1)
    );
    assert_eq!(health.last_quarantine_reason, "unknown payload kind");
    let listed = outbox.quarantined_reports().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, refused);
    assert_eq!(listed[0].kind, EntryKind::BackupResult);
    assert_eq!(listed[0].reason, "unknown payload kind");
    assert!(listed[0].bytes > 0 && listed[0].quarantined_at > 0);
    assert_eq!(
        names(&dir.path().join(QUARANTINE_DIR)),
        [format!("{}.backup_result", refused.simple())]
    );
}

#[test]
fn a_report_left_in_both_folders_by_a_crash_stays_in_the_quarantine_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = backup("nightly");
    let id = Uuid::parse_str(&refused.id).expect("id");
    {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&refused).expect("push");
        outbox.quarantine(&[(id, "refused".into())]).expect("q");
        // The crash came after the quarantine's copy, before the queued one went.
        outbox.push(&refused).expect("push again");
    }
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert!(outbox.is_empty(), "not resent");
    assert_eq!(outbox.health().quarantined, 1);
    assert!(names(&dir.path().join(REPORTS_DIR)).is_empty());
}

#[test]
fn the_quarantine_is_bounded_and_counts_what_it_discards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
    let extra = 5;
    for _ in 0..QUARANTINE_MAX_REPORTS + extra {
        outbox.push(&snapshot("a")).expect("push");
    }
    let all = ids(&outbox);
    let refused: Vec<_> = all.iter().map(|id| (*id, "refused".to_owned())).collect();
    for chunk in refused.chunks(100) {
        outbox.quarantine(chunk).expect("quarantine");
    }
    let health = outbox.health();
    assert_eq!(health.quarantined, QUARANTINE_MAX_REPORTS);
    assert_eq!(health.quarantined_total, QUARANTINE_MAX_REPORTS + extra);
    assert_eq!(health.quarantine_dropped_total, extra);
    assert_eq!(health.queued, 0);
    let listed = outbox.quarantined_reports().expect("list");
    assert_eq!(
        listed.first().map(|r| r.id),
        Some(all[extra as usize]),
        "oldest went"
    );
    assert_eq!(
        names(&dir.path().join(QUARANTINE_DIR)).len() as u64,
        QUARANTINE_MAX_REPORTS
    );
}

#[test]
fn an_entry_that_no_longer_decodes_goes_to_the_quarantine() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        outbox.push(&snapshot("a")).expect("push");
    }
    let bad = Uuid::now_v7();
    fs::write(
        dir.path()
            .join(REPORTS_DIR)
            .join(file_name(bad, EntryKind::BackupResult)),
        [0xff, 0xff, 0xff],
    )
    .expect("damaged file");
    let outbox = Outbox::open(dir.path(), u64::MAX).expect("reopen");
    assert_eq!(outbox.peek_batch(10, usize::MAX).expect("peek").len(), 1);
    let listed = outbox.quarantined_reports().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, bad);
    assert_eq!(listed[0].kind, EntryKind::BackupResult);
    assert!(listed[0].reason.contains("no longer decodes"));
    assert_eq!(outbox.len(), 1);
}

#[test]
fn counters_are_a_readable_file_replaced_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(dir.path(), 1).expect("open");
        outbox.push(&snapshot("a")).expect("push");
        outbox.push(&snapshot("b")).expect("push");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join(COUNTERS_FILE)).expect("counters"))
            .expect("JSON");
    assert_eq!(json["dropped_total"], 1, "{json}");
    // A damaged counters file costs the counters, never the reports.
    fs::write(dir.path().join(COUNTERS_FILE), b"{\"dropped_t").expect("damage");
    let outbox = Outbox::open(dir.path(), 1).expect("reopen");
    assert_eq!((outbox.dropped_total(), outbox.len()), (0, 1));
}

#[test]
fn file_names_parse_back_and_foreign_names_are_not_reports() {
    let id = Uuid::now_v7();
    for kind in EntryKind::ALL {
        assert_eq!(parse_file_name(&file_name(id, kind)), Some((id, kind)));
    }
    for foreign in [
        "notes.txt",
        "0190f3a2.backup_result",
        &format!("{}.backup", id.simple()),
        &format!("{}.system_snapshot", id.hyphenated()),
    ] {
        assert_eq!(parse_file_name(foreign), None, "{foreign}");
    }
}

#[test]
fn quarantine_values_split_back_even_when_damaged() {
    let check = |value: &[u8], reason: &str, rest: &[u8]| {
        let (_, r, body) = split_quarantined(value);
        assert_eq!((r.as_str(), body), (reason, rest));
    };
    let mut good = Vec::new();
    good.extend_from_slice(&7i64.to_be_bytes());
    good.extend_from_slice(&3u16.to_be_bytes());
    good.extend_from_slice(b"why");
    good.extend_from_slice(b"report");
    check(&good, "why", b"report");
    assert_eq!(split_quarantined(&good).0, 7);
    check(&good[..11], "w", b"");
    check(&[], "", b"");
    assert_eq!(cut("éé", 3), "é");
}
