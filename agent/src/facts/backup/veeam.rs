//! Veeam Agent for Windows, from its `Veeam Agent` event log: event 190 closes each job session
//! with its result in the text ("... finished with Success." / "Warning" / "Failed"), which
//! the event level confirms (4 information, 3 warning, 2 error) when the text is unclear. A
//! session that "will be retried" is not a result: the retry ends with its own event.

use super::winevent::{self, Event};
use super::{BackupJob, BackupRun, BackupStatus, MAX_MESSAGE_CHARS, bounded};

pub const PRODUCT: super::Product = super::Product {
    name: "veeam",
    reads_file: false,
    read: Some(read),
    judge: None,
    parse_bytes: |bytes| {
        let _ = parse(&crate::text::decode(bytes));
    },
};

pub const LOG: &str = "Veeam Agent";
/// Job session finished.
const SESSION_FINISHED: u32 = 190;
const MAX_EVENTS: u32 = 20;

/// The runs in a `Get-WinEvent` export of the log. Pure; never panics.
pub fn parse(text: &str) -> Result<Vec<BackupRun>, winevent::ParseError> {
    Ok(winevent::parse(text)?.iter().filter_map(to_run).collect())
}

fn to_run(event: &Event) -> Option<BackupRun> {
    if event.id != SESSION_FINISHED {
        return None;
    }
    let text = event.message.to_ascii_lowercase();
    // A session Veeam will retry is not the job's result: the retry's final event is.
    if text.contains("will be retried") || text.contains("willberetried=\"true\"") {
        return None;
    }
    let status = if text.contains("with failed") || text.contains("with error") {
        BackupStatus::Failed
    } else if text.contains("with warning") {
        BackupStatus::Warning
    } else if text.contains("with success") {
        BackupStatus::Success
    } else {
        match event.level {
            1 | 2 => BackupStatus::Failed,
            3 => BackupStatus::Warning,
            _ => BackupStatus::Success,
        }
    };
    let mut run = BackupRun::new("", "veeam", status);
    run.finished_at = Some(event.time);
    run.code = Some(i64::from(event.id));
    run.message = bounded(&event.message, MAX_MESSAGE_CHARS);
    Some(run)
}

/// Queries the event log (Windows only) and names the runs after the job.
pub fn read(job: &BackupJob) -> Result<Vec<BackupRun>, String> {
    winevent::read_runs(job, LOG, &[SESSION_FINISHED], MAX_EVENTS, parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_results_become_runs() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/backup/windows/veeam-events.json"
        );
        let text = crate::text::decode(&std::fs::read(path).expect("fixture"));
        let runs = parse(&text).expect("parses");
        let got: Vec<BackupStatus> = runs.iter().map(|r| r.status).collect();
        use BackupStatus::*;
        assert_eq!(got, [Success, Warning, Failed, Failed]);
        let retried = r#"[{"Id":190,"RecordId":9,"Level":2,"TimeCreated":"2026-11-28T18:40:00Z",
            "Message":"Backup job 'CAB' finished with Failed. Job will be retried."}]"#;
        assert!(
            parse(retried).expect("parses").is_empty(),
            "a retried session is not a result"
        );
        assert!(runs[2].message.contains("not enough space"));
    }
}
