//! Windows Server Backup (wbadmin), from the `Microsoft-Windows-Backup` event log. Every
//! result event of the provider is read: its level as the provider's manifest declares it
//! (error: the backup failed; warning: it finished with problems, e.g. completed with errors,
//! some files not backed up, new bad clusters on the target) and its meaning from the
//! provider's own message table, which Windows renders into the event's `Message` (in the
//! machine's language). Progress events (1 started, 14 operation completed, ...) are steps,
//! not results. The cause is read from the id where the provider gives one meaning to it,
//! else from the message's words (English or French Windows).

use super::message::Cause;
use super::winevent::{self, Event};
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded};

pub const PRODUCT: super::Product = super::Product {
    name: "windows_server_backup",
    reads_file: false,
    read: Some(read),
    judge: None,
    parse_bytes: |bytes| {
        let _ = parse(&crate::text::decode(bytes));
    },
};

pub const LOG: &str = "Microsoft-Windows-Backup";
/// Results read per scan; the ledger skips those already sent.
const MAX_EVENTS: u32 = 40;

/// The backup result events of the provider, with the level its manifest declares and,
/// where one id has one meaning, the cause. Ids not listed are steps or restore events.
const RESULTS: &[(u32, BackupStatus, Option<Cause>)] = {
    use BackupStatus::{Failed as F, Success as S, Warning as W};
    &[
        (3, F, Some(Cause::CatalogDamaged)), // backup catalog on the target is corrupt
        (4, S, None),                        // backup finished successfully
        (5, F, None),                        // failed with an error code
        (7, W, None),                        // completed with warnings or errors
        (8, F, Some(Cause::Cancelled)),      // cancelled
        (9, F, Some(Cause::Busy)),           // another backup or recovery in progress
        (11, F, None),
        (12, F, None),
        (13, W, None),
        (15, F, None),
        (17, F, None),
        (18, F, None),
        (19, F, None),
        (20, F, None),
        (21, F, None),
        (22, F, None),
        (23, W, None),
        (25, F, None),
        (49, F, None),
        (50, F, None),
        (51, W, Some(Cause::BadClusters)),
        (52, F, None),
        (517, F, None),
        (518, F, None),
        (519, W, None),
        (521, F, None),
        (522, W, None),
        (525, W, None),
        (526, F, None),
        (527, F, None),
        (528, F, None),
        (544, F, None),
        (545, F, None),
        (546, F, None),
        (547, W, None),
        (561, F, None),
        (564, F, None),
        (565, F, None),
        (612, F, None),
    ]
};

/// Words of the rendered message (English, French) and the cause they name.
const WORDS: &[(&[&str], Cause)] = &[
    (
        &[
            "another backup",
            "in progress",
            "autre opération",
            "en cours",
        ],
        Cause::Busy,
    ),
    (&["catalog", "catalogue"], Cause::CatalogDamaged),
    (
        &["bad cluster", "secteurs défectueux", "clusters défectueux"],
        Cause::BadClusters,
    ),
    (
        &[
            "not writable",
            "write-protected",
            "read-only",
            "access is denied",
            "lecture seule",
            "accès refusé",
            "protégé en écriture",
        ],
        Cause::TargetNotWritable,
    ),
    (
        &[
            "not enough space",
            "disk space",
            "espace disque",
            "espace insuffisant",
        ],
        Cause::TargetFull,
    ),
    (&["corrupt", "endommag", "altéré"], Cause::RepositoryDamaged),
    (&["cancel", "annul"], Cause::Cancelled),
    (
        &[
            "not backed up",
            "n'ont pas été sauvegardés",
            "non sauvegardés",
        ],
        Cause::UnreadableFiles,
    ),
    (&["network", "réseau"], Cause::Network),
];

/// What an event says, if it is a result. Pure.
pub fn meaning(event: &Event) -> Option<(BackupStatus, Option<Cause>)> {
    let (_, status, cause) = RESULTS.iter().find(|(id, ..)| *id == event.id)?;
    let cause = cause.or_else(|| {
        let text = event.message.to_lowercase();
        WORDS
            .iter()
            .find(|(words, _)| words.iter().any(|w| text.contains(w)))
            .map(|(_, cause)| *cause)
    });
    Some((
        *status,
        if *status == BackupStatus::Success {
            None
        } else {
            cause
        },
    ))
}

/// The runs in a `Get-WinEvent` export of the channel. Pure; never panics.
pub fn parse(text: &str) -> Result<Vec<BackupRun>, winevent::ParseError> {
    Ok(winevent::parse(text)?.iter().filter_map(to_run).collect())
}

fn to_run(event: &Event) -> Option<BackupRun> {
    let (status, cause) = meaning(event)?;
    let mut run = BackupRun::new("", "windows_server_backup", status);
    run.finished_at = Some(event.time);
    run.code = Some(i64::from(event.id));
    if let Some(cause) = cause {
        cause.key().clone_into(&mut run.cause);
    }
    let (text, removed) = super::message::without_paths(&event.message);
    run.message = bounded(&text, MAX_MESSAGE_CHARS);
    run.paths_removed = removed;
    Some(run)
}

/// Queries the event log (Windows only) and names the runs after the job.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let ids: Vec<u32> = RESULTS.iter().map(|(id, ..)| *id).collect();
    winevent::read_runs(job, LOG, &ids, MAX_EVENTS, parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_failure_events_become_runs() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/backup/windows/wsb-events.json"
        );
        let text = crate::text::decode(&std::fs::read(path).expect("fixture"));
        let runs = parse(&text).expect("parses");
        let got: Vec<(BackupStatus, Option<i64>)> =
            runs.iter().map(|r| (r.status, r.code)).collect();
        assert_eq!(
            got,
            [
                (BackupStatus::Success, Some(4)),
                (BackupStatus::Failed, Some(5)),
                (BackupStatus::Failed, Some(49))
            ]
        );
        assert!(
            runs[1].message.contains("2155348010"),
            "{}",
            runs[1].message
        );
    }

    #[test]
    fn every_result_event_has_its_meaning() {
        use BackupStatus::*;
        let event = |id, message: &str| Event {
            id,
            record_id: 1,
            level: 2,
            time: jiff::Timestamp::UNIX_EPOCH,
            message: message.into(),
        };
        // (id, rendered message, status, cause)
        let table: &[(u32, &str, Option<BackupStatus>, &str)] = &[
            (1, "The backup operation has started.", None, ""),
            (14, "The backup operation has completed.", None, ""),
            (
                4,
                "The backup operation has finished successfully.",
                Some(Success),
                "",
            ),
            (
                7,
                "The backup operation that started at '2026-11-27' has completed with errors: some files were not backed up.",
                Some(Warning),
                "unreadable_files",
            ),
            (
                51,
                "The backup operation found new bad clusters on the target.",
                Some(Warning),
                "bad_clusters",
            ),
            (
                9,
                "The backup operation has failed because another backup or recovery operation is in progress.",
                Some(Failed),
                "busy",
            ),
            (
                3,
                "Backup catalog on selected backup disk 'E:' is corrupt.",
                Some(Failed),
                "catalog_damaged",
            ),
            (
                8,
                "The backup operation that started at '2026-11-27' was canceled.",
                Some(Failed),
                "cancelled",
            ),
            (
                5,
                "L'opération de sauvegarde a échoué : l'emplacement de stockage est protégé en écriture.",
                Some(Failed),
                "target_not_writable",
            ),
            (
                5,
                "The backup operation has failed because the backup storage destination is write-protected.",
                Some(Failed),
                "target_not_writable",
            ),
            (
                19,
                "There is not enough space on the disk.",
                Some(Failed),
                "target_full",
            ),
            (
                517,
                "The backup failed: the backup is corrupt.",
                Some(Failed),
                "repository_damaged",
            ),
            (612, "", Some(Failed), ""),
        ];
        for (id, message, status, cause) in table {
            let got = meaning(&event(*id, message));
            assert_eq!(got.map(|(s, _)| s), *status, "{id} {message}");
            assert_eq!(
                got.and_then(|(_, c)| c).map(|c| c.key()).unwrap_or(""),
                *cause,
                "{id} {message}"
            );
        }
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_the_source_says_it_is_windows_only() {
        let job = BackupJob {
            name: "wsb".into(),
            every: None,
            days: Vec::new(),
            at: None,
            source: super::super::JobSource::named("windows_server_backup").expect("known"),
            check_every: None,
            path: None,
            target: String::new(),
        };
        assert!(
            read(&job)
                .expect_err("not here")
                .contains("only on Windows")
        );
    }
}
