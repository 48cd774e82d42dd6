//! Any backup or verification command wrapped by `exec` (a script, `wbadmin`, a NAS tool):
//! exit code 0 is a success, anything else a failure, with the cause read from the operating
//! system's own words on the error stream when they say it.

use super::exec::{self, Outcome};
use super::message::{self, Cause};
use super::products::Product;
use super::{BackupRun, BackupStatus};

pub const PRODUCT: Product = Product {
    name: "command",
    reads_file: false,
    read: None,
    judge: Some(judge),
    parse_bytes: |_| {},
};

/// 0: success; anything else: failed.
pub fn judge(outcome: &Outcome) -> BackupRun {
    match outcome.code() {
        Some(0) => BackupRun::new("", "command", BackupStatus::Success),
        _ => {
            let lower = outcome.stderr_lower();
            let cause = message::common_cause(&lower).or_else(|| {
                if lower.contains("permission denied") || lower.contains("access is denied") {
                    Some(Cause::NotPermitted)
                } else if lower.contains("no such file or directory") {
                    Some(Cause::SourceMissing)
                } else {
                    None
                }
            });
            match cause {
                Some(cause) => exec::failed(cause),
                None => BackupRun::new("", "command", BackupStatus::Failed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::backup::RunKind;
    use crate::facts::backup::exec::Ended;

    fn check(code: i32, stderr: &str, status: BackupStatus, cause: &str) {
        let outcome = Outcome {
            kind: RunKind::Backup,
            ended: Ended::Exited(code),
            stdout: String::new(),
            stderr: stderr.into(),
        };
        let run = judge(&outcome);
        assert_eq!(
            (run.status, run.cause.as_str()),
            (status, cause),
            "{code} {stderr}"
        );
    }

    #[test]
    fn zero_alone_is_success() {
        use BackupStatus::*;
        check(0, "warning: something", Success, "");
        check(1, "", Failed, "");
        check(
            2,
            "cp: cannot create regular file: No space left on device",
            Failed,
            "target_full",
        );
        check(
            1,
            "mkdir: Read-only file system",
            Failed,
            "target_not_writable",
        );
    }
}
