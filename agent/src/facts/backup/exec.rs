//! `vigie-agent exec`: runs a backup (or check) command as the scheduled task, cron job or
//! systemd timer would have, streams its output through unchanged, and writes exactly one
//! result to the spool: judged by the product's own exit codes, with start and end time, the
//! counts the product reports, and a short message from its error stream without file paths.
//!
//! A command that cannot start (not found, permission denied), that overruns `--timeout`
//! (then it is stopped with its children: its process group on Unix, `taskkill /T` on
//! Windows) or that is killed still leaves a failed result. The exit code is the command's
//! (127 when it could not start, 124 after a timeout, 128 + N when signal N ended it), so
//! wrapping changes nothing for the scheduler.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

use super::message::{self, Cause};
use super::products::Product;
use super::spool;
use super::{BackupRun, BackupStatus, MAX_NAME_CHARS, RunKind, bounded};

/// What is kept of the command's standard output for the parsers: its end, where restic,
/// borg and rsync print their summaries.
const STDOUT_TAIL: usize = 1024 * 1024;
/// What is kept of its error stream for the message and the cause.
const STDERR_TAIL: usize = 256 * 1024;
/// After a timeout, the command gets this long to stop cleanly (restic removes its lock)
/// before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Output still arriving from an orphaned grandchild is not waited for longer than this.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Exit code when the command could not be started (as shells do).
pub const EXIT_NOT_STARTED: i32 = 127;
/// Exit code after a timeout (as GNU `timeout` does).
pub const EXIT_TIMED_OUT: i32 = 124;

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    /// Ended by a signal (Unix), sent by someone else or forwarded by `exec`.
    Signal(i32),
    TimedOut(Duration),
    NotStarted {
        error: String,
        not_found: bool,
    },
}

/// Everything known about one finished run, for the product's verdict.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: RunKind,
    pub ended: Ended,
    /// The end of standard output, decoded.
    pub stdout: String,
    /// The end of the error stream, decoded.
    pub stderr: String,
}

impl Outcome {
    /// The command's exit code, when it exited by itself.
    pub fn code(&self) -> Option<i32> {
        match self.ended {
            Ended::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// The error stream in lower case, for matching products' wording.
    pub fn stderr_lower(&self) -> String {
        self.stderr.to_lowercase()
    }
}

/// One `exec` invocation.
#[derive(Debug, Clone)]
pub struct Exec {
    pub job: String,
    pub kind: RunKind,
    pub product: &'static Product,
    pub target: Option<String>,
    pub timeout: Option<Duration>,
    pub command: Vec<OsString>,
    pub spool_dir: PathBuf,
}

/// What `exec` did: the result written (or why not) and the exit code to return.
#[derive(Debug)]
pub struct Executed {
    pub run: BackupRun,
    pub exit_code: i32,
    pub written: Result<PathBuf, spool::WriteError>,
}

/// Runs the command, judges it, writes the result. Never fails: every way the command can
/// end is a result.
pub async fn run(exec: &Exec) -> Executed {
    let started = Timestamp::now();
    let outcome = execute(exec).await;
    let finished = Timestamp::now();
    let exit_code = match outcome.ended {
        Ended::Exited(code) => code,
        Ended::Signal(n) => 128 + n,
        Ended::TimedOut(_) => EXIT_TIMED_OUT,
        Ended::NotStarted { .. } => EXIT_NOT_STARTED,
    };
    let mut run = judge(exec.product, &outcome);
    run.job = bounded(&exec.job, MAX_NAME_CHARS);
    run.kind = exec.kind;
    exec.product.name.clone_into(&mut run.source);
    run.started_at = run.started_at.or(Some(started));
    run.finished_at = run.finished_at.or(Some(finished));
    if run.code.is_none() {
        run.code = Some(i64::from(exit_code));
    }
    if let Some(target) = &exec.target {
        run.target = bounded(target, MAX_NAME_CHARS);
    }
    let written = spool::write_run(&exec.spool_dir, &run);
    Executed {
        run,
        exit_code,
        written,
    }
}

/// The verdict: product-independent endings first, then the product's own exit codes. The
/// message is the product's summary, else the cleaned error stream.
pub fn judge(product: &Product, outcome: &Outcome) -> BackupRun {
    let cleaned = message::from_stderr(&outcome.stderr);
    let mut run = match &outcome.ended {
        Ended::Exited(_) => match product.judge {
            Some(judge) => judge(outcome),
            None => super::command::judge(outcome),
        },
        Ended::Signal(n) => {
            let mut run = failed(Cause::Killed);
            run.signal = Some(*n);
            run.message = format!("arrêtée par le signal {n}");
            run
        }
        Ended::TimedOut(after) => {
            let mut run = failed(Cause::Timeout);
            run.message = format!(
                "arrêtée après {} (délai dépassé)",
                humantime::format_duration(*after)
            );
            run
        }
        Ended::NotStarted { error, not_found } => {
            let mut run = failed(if *not_found {
                Cause::NotFound
            } else {
                Cause::NotPermitted
            });
            let (error, removed) = message::without_paths(error);
            run.message = bounded(&error, super::MAX_MESSAGE_CHARS);
            run.paths_removed = removed;
            run
        }
    };
    if run.status != BackupStatus::Success && !cleaned.text.is_empty() {
        run.message = if run.message.is_empty() {
            cleaned.text
        } else {
            bounded(
                &format!("{} | {}", run.message, cleaned.text),
                super::MAX_MESSAGE_CHARS,
            )
        };
        run.paths_removed = run.paths_removed.saturating_add(cleaned.paths_removed);
    }
    run
}

/// A failed run with a cause; the caller names it.
pub fn failed(cause: Cause) -> BackupRun {
    let mut run = BackupRun::new("", "", BackupStatus::Failed);
    cause.key().clone_into(&mut run.cause);
    run
}

async fn execute(exec: &Exec) -> Outcome {
    let outcome = |ended, stdout: Vec<u8>, stderr: Vec<u8>| Outcome {
        kind: exec.kind,
        ended,
        stdout: crate::text::decode(&stdout),
        stderr: crate::text::decode(&stderr),
    };
    let Some((program, args)) = exec.command.split_first() else {
        let ended = Ended::NotStarted {
            error: "no command given".into(),
            not_found: true,
        };
        return outcome(ended, Vec::new(), Vec::new());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // Its own process group, so a timeout stops the children too.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let name = Path::new(program).display().to_string();
            let ended = Ended::NotStarted {
                not_found: error.kind() == std::io::ErrorKind::NotFound,
                error: format!("cannot start {name}: {error}"),
            };
            return outcome(ended, Vec::new(), Vec::new());
        }
    };
    let pid = child.id();
    let stdout = tokio::spawn(pump(child.stdout.take(), false, STDOUT_TAIL));
    let stderr = tokio::spawn(pump(child.stderr.take(), true, STDERR_TAIL));
    let deadline = async {
        match exec.timeout {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        status = child.wait() => ended_of(status),
        () = deadline => {
            let after = exec.timeout.unwrap_or_default();
            tracing::warn!(job = %exec.job, timeout = %humantime::format_duration(after), "backup command overran its timeout: stopping it");
            stop_tree(pid, &mut child).await;
            Ended::TimedOut(after)
        }
        signal = terminate_signal() => {
            tracing::warn!(job = %exec.job, signal, "exec was asked to stop: stopping the backup command");
            stop_tree(pid, &mut child).await;
            Ended::Signal(signal)
        }
    };
    let drained = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        tokio::time::timeout(DRAIN_GRACE, task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let stdout = drained(stdout).await;
    let stderr = drained(stderr).await;
    outcome(ended, stdout, stderr)
}

fn ended_of(status: std::io::Result<std::process::ExitStatus>) -> Ended {
    match status {
        Ok(status) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt as _;
                if let Some(signal) = status.signal() {
                    return Ended::Signal(signal);
                }
            }
            Ended::Exited(status.code().unwrap_or(-1))
        }
        Err(error) => Ended::NotStarted {
            error: format!("cannot wait for the command: {error}"),
            not_found: false,
        },
    }
}

/// Copies one stream through to ours as it comes, keeping its last `keep` bytes.
async fn pump<R: AsyncRead + Unpin>(reader: Option<R>, to_stderr: bool, keep: usize) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out_stdout = tokio::io::stdout();
    let mut out_stderr = tokio::io::stderr();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        // A closed stdout on our side must not stop the backup: ignore write errors.
        let _ = if to_stderr {
            out_stderr.write_all(chunk).await
        } else {
            out_stdout.write_all(chunk).await
        };
        tail.extend_from_slice(chunk);
        if tail.len() > 2 * keep {
            tail.drain(..tail.len() - keep);
        }
    }
    let _ = out_stdout.flush().await;
    let _ = out_stderr.flush().await;
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    tail
}

/// Resolves with the signal number when `exec` itself is asked to stop.
#[cfg(unix)]
async fn terminate_signal() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => 15,
        _ = int.recv() => 2,
        _ = hup.recv() => 1,
    }
}

#[cfg(not(unix))]
async fn terminate_signal() -> i32 {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    2
}

/// Stops the command and everything it started: SIGTERM to its process group, SIGKILL after
/// [`STOP_GRACE`].
#[cfg(unix)]
async fn stop_tree(pid: Option<u32>, child: &mut tokio::process::Child) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let group = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw);
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::TERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        if let Some(group) = group {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = child.kill().await;
    }
    // Children that ignored SIGTERM after their parent left.
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

/// Stops the command and its children with `taskkill /T /F` (a job object would need
/// `unsafe` Win32 calls; the process tree is what taskkill walks).
#[cfg(not(unix))]
async fn stop_tree(pid: Option<u32>, child: &mut tokio::process::Child) {
    if let Some(pid) = pid {
        let _ = tokio::process::Command::new("taskkill")
            .args(["/PID", &pid.to_string(), "/T", "/F"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::backup::products;

    fn exec(dir: &Path, source: &str, command: &[&str], timeout: Option<Duration>) -> Exec {
        Exec {
            job: "nightly".into(),
            kind: RunKind::Backup,
            product: products::named(source).expect("product"),
            target: Some("NAS".into()),
            timeout,
            command: command.iter().map(OsString::from).collect(),
            spool_dir: dir.to_owned(),
        }
    }

    fn written(result: &Executed) -> BackupRun {
        let path = result.written.as_ref().expect("written");
        spool::parse(&std::fs::read(path).expect("result file")).expect("valid result")
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn exit_codes_pass_through_and_every_ending_is_one_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = run(&exec(
            dir.path(),
            "command",
            &["sh", "-c", "echo out; exit 0"],
            None,
        ))
        .await;
        assert_eq!(ok.exit_code, 0);
        assert_eq!(written(&ok).status, BackupStatus::Success);

        let code = run(&exec(
            dir.path(),
            "command",
            &[
                "sh",
                "-c",
                "echo 'cannot open /data/Patients/Durand.pdf: denied' >&2; exit 5",
            ],
            None,
        ))
        .await;
        assert_eq!(code.exit_code, 5);
        let result = written(&code);
        assert_eq!(
            (result.status, result.code),
            (BackupStatus::Failed, Some(5))
        );
        assert_eq!(result.message, "cannot open …: denied");
        assert_eq!(result.paths_removed, 1);

        let missing = run(&exec(
            dir.path(),
            "command",
            &["/nonexistent/backup.sh"],
            None,
        ))
        .await;
        assert_eq!(missing.exit_code, EXIT_NOT_STARTED);
        let result = written(&missing);
        assert_eq!(result.cause, "not_found");
        assert!(
            !result.message.contains("nonexistent"),
            "{}",
            result.message
        );

        // A timeout stops the whole group: the grandchild `sleep` too.
        let marker = dir.path().join("survived");
        let script = format!("(sleep 3; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let slow = run(&exec(
            dir.path(),
            "command",
            &["sh", "-c", &script],
            Some(Duration::from_millis(300)),
        ))
        .await;
        assert!(started.elapsed() < Duration::from_secs(8));
        assert_eq!(slow.exit_code, EXIT_TIMED_OUT);
        assert_eq!(written(&slow).cause, "timeout");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(
            !marker.exists(),
            "the grandchild was stopped with the group"
        );

        let killed = run(&exec(
            dir.path(),
            "command",
            &["sh", "-c", "kill -9 $$"],
            None,
        ))
        .await;
        assert_eq!(killed.exit_code, 128 + 9);
        let result = written(&killed);
        assert_eq!((result.cause.as_str(), result.signal), ("killed", Some(9)));

        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .collect();
        assert_eq!(files.len(), 5, "one result per run");
    }
}
