//! Windows Server Backup (wbadmin), from the `Microsoft-Windows-Backup` event log: event 4 is a
//! backup that finished successfully; 5, 9, 17, 19, 20, 21, 22, 49, 50, 517, 521, 527, 528,
//! 544, 545, 546, 561, 564 and 612 are backups that failed (error code, shadow copy, target
//! missing or full, volumes not backed up); 8 a cancelled one, counted as failed since nothing
//! was saved. Other ids (1 started, 14 completed, ...) mark steps, not results.

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
const SUCCESS: &[u32] = &[4];
const FAILED: &[u32] = &[
    5, 8, 9, 17, 19, 20, 21, 22, 49, 50, 517, 521, 527, 528, 544, 545, 546, 561, 564, 612,
];
/// Results read per scan; the ledger skips those already sent.
const MAX_EVENTS: u32 = 20;

/// The runs in a `Get-WinEvent` export of the channel. Pure; never panics.
pub fn parse(text: &str) -> Result<Vec<BackupRun>, winevent::ParseError> {
    Ok(winevent::parse(text)?.iter().filter_map(to_run).collect())
}

fn to_run(event: &Event) -> Option<BackupRun> {
    let status = if SUCCESS.contains(&event.id) {
        BackupStatus::Success
    } else if FAILED.contains(&event.id) {
        BackupStatus::Failed
    } else {
        return None;
    };
    let mut run = BackupRun::new("", "windows_server_backup", status);
    run.finished_at = Some(event.time);
    run.code = Some(i64::from(event.id));
    run.message = bounded(&event.message, MAX_MESSAGE_CHARS);
    Some(run)
}

/// Queries the event log (Windows only) and names the runs after the job.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    let ids: Vec<u32> = SUCCESS.iter().chain(FAILED).copied().collect();
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
