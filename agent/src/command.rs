//! Runs an external program for a check: at low priority, with a deadline, with bounded output,
//! and with an error that says what went wrong (missing program, timeout, spawn failure).
//!
//! Blocking by design: checks call it from the blocking pool (`checks::blocking`). On Windows
//! the child gets `CREATE_NO_WINDOW | BELOW_NORMAL_PRIORITY_CLASS`, so no console flashes on a
//! secretary's screen and the clinic software keeps the CPU; on Linux it runs under
//! `nice -n 19` (and `ionice -c3` when present), which needs no `unsafe` `pre_exec`.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default deadline of one command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound of what is kept from stdout and from stderr, each.
pub const DEFAULT_MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// How often a running child is polled for exit.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{program} not found (not installed on this machine?)")]
    NotFound { program: String },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish within {}s and was killed", after.as_secs())]
    TimedOut { program: String, after: Duration },
    #[error("waiting for {program} failed: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was longer than the bound and was cut.
    pub truncated: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout as text, whatever its encoding (see [`crate::text::decode`]).
    pub fn stdout_text(&self) -> String {
        crate::text::decode(&self.stdout)
    }

    /// stderr as text.
    pub fn stderr_text(&self) -> String {
        crate::text::decode(&self.stderr)
    }

    /// A short description of a failure for a check-failure fact: exit code and the start of
    /// stderr (or stdout when stderr is empty).
    pub fn failure_summary(&self) -> String {
        let code = self
            .code
            .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        let mut text = self.stderr_text();
        if text.trim().is_empty() {
            text = self.stdout_text();
        }
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text: String = text.chars().take(300).collect();
        if text.is_empty() {
            code
        } else {
            format!("{code}: {text}")
        }
    }
}

/// One external program to run, built like `std::process::Command`.
#[derive(Debug, Clone)]
pub struct ExternalCommand {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    max_output: usize,
}

impl ExternalCommand {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        ExternalCommand {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable for the child (e.g. `LC_ALL=C` so output is not translated).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound of the bytes kept from stdout and from stderr, each; the rest is read and dropped
    /// so the child never blocks on a full pipe.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Runs the program to completion. A non-zero exit is not an error here: some tools use it
    /// to say something (`dnf check-update` exits 100 when updates are pending).
    pub fn run(&self) -> Result<Output, CommandError> {
        let program = self.program_name();
        let resolved = find_program(&self.program).ok_or_else(|| CommandError::NotFound {
            program: program.clone(),
        })?;
        let mut command = low_priority(&resolved);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().map_err(|source| CommandError::Spawn {
            program: program.clone(),
            source,
        })?;
        let stdout = drain(child.stdout.take(), self.max_output);
        let stderr = drain(child.stderr.take(), self.max_output);
        let status = match wait_until(&mut child, started + self.timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                // Kill, then reap so no zombie is left; the readers end when the pipes close.
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(
                    program,
                    timeout_s = self.timeout.as_secs(),
                    "command killed after timeout"
                );
                return Err(CommandError::TimedOut {
                    program,
                    after: self.timeout,
                });
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::Wait { program, source });
            }
        };
        let (stdout, cut_out) = join(stdout);
        let (stderr, cut_err) = join(stderr);
        tracing::debug!(program, code = ?status.code(), elapsed_ms = started.elapsed().as_millis() as u64, "command finished");
        Ok(Output {
            code: status.code(),
            stdout,
            stderr,
            truncated: cut_out || cut_err,
        })
    }
}

/// `Some(status)` when the child exited before `deadline`, `None` when it is still running.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

type Reader = Option<JoinHandle<(Vec<u8>, bool)>>;

/// Reads a pipe on its own thread, keeping at most `max` bytes.
fn drain(pipe: Option<impl Read + Send + 'static>, max: usize) -> Reader {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut cut = false;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = max.saturating_sub(kept.len());
                    if n > room {
                        cut = true;
                    }
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        (kept, cut)
    }))
}

fn join(reader: Reader) -> (Vec<u8>, bool) {
    reader
        .and_then(|h| h.join().ok())
        .unwrap_or_else(|| (Vec::new(), false))
}

/// The program's full path: as given when it has a directory part, else looked up in `PATH`
/// (with `.exe` on Windows), so "not installed" is told apart from "failed".
pub fn find_program(program: &OsStr) -> Option<PathBuf> {
    let path = Path::new(program);
    if path.components().count() > 1 || path.is_absolute() {
        return path.is_file().then(|| path.to_owned());
    }
    let dirs = std::env::var_os("PATH")?;
    std::env::split_paths(&dirs).find_map(|dir| {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Some(candidate);
        }
        if cfg!(windows) && candidate.extension().is_none() {
            let exe = candidate.with_extension("exe");
            return exe.is_file().then_some(exe);
        }
        None
    })
}

#[cfg(windows)]
fn low_priority(program: &Path) -> std::process::Command {
    use std::os::windows::process::CommandExt as _;
    /// Win32 process creation flags (winbase.h).
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    const BELOW_NORMAL_PRIORITY_CLASS: u32 = 0x0000_4000;
    let mut command = std::process::Command::new(program);
    command.creation_flags(CREATE_NO_WINDOW | BELOW_NORMAL_PRIORITY_CLASS);
    command
}

#[cfg(not(windows))]
fn low_priority(program: &Path) -> std::process::Command {
    let nice = find_program(OsStr::new("nice"));
    let ionice = find_program(OsStr::new("ionice"));
    let mut command = match (&ionice, &nice) {
        (Some(ionice), Some(_)) => {
            let mut c = std::process::Command::new(ionice);
            // -t: where the I/O class cannot be set (some containers), run anyway.
            c.args(["-c3", "-t", "nice", "-n", "19"]);
            c
        }
        (None, Some(nice)) => {
            let mut c = std::process::Command::new(nice);
            c.args(["-n", "19"]);
            c
        }
        // No nice at all (a minimal container): run it as is rather than not at all.
        _ => return std::process::Command::new(program),
    };
    command.arg(program);
    command
}

/// Windows PowerShell 5.1, present on every supported Windows, with no profile and no prompt.
/// The script should print JSON; it sets UTF-8 output first so names with accents survive.
pub fn powershell(script: &str) -> ExternalCommand {
    let script = format!(
        "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; \
         [Console]::OutputEncoding = [System.Text.Encoding]::UTF8; {script}"
    );
    ExternalCommand::new("powershell.exe").args([
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-Command",
        &script,
    ])
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_stderr_and_exit_code() {
        let out = ExternalCommand::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .run()
            .expect("runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(!out.truncated);
        assert_eq!(out.failure_summary(), "exit 3: err");
    }

    #[test]
    fn runs_at_the_lowest_priority() {
        let out = ExternalCommand::new("sh")
            .args(["-c", "nice"])
            .run()
            .expect("runs");
        assert_eq!(out.stdout_text().trim(), "19");
    }

    #[test]
    fn missing_program_is_named() {
        let err = ExternalCommand::new("vigie-no-such-program")
            .run()
            .expect_err("missing");
        assert!(matches!(err, CommandError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("vigie-no-such-program not found"));
    }

    #[test]
    fn slow_program_is_killed_at_the_deadline() {
        let started = Instant::now();
        let err = ExternalCommand::new("sleep")
            .arg("30")
            .timeout(Duration::from_millis(200))
            .run()
            .expect_err("times out");
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn long_output_is_bounded_and_drained() {
        let out = ExternalCommand::new("sh")
            .args(["-c", "head -c 1000000 /dev/zero"])
            .max_output(1000)
            .run()
            .expect("runs");
        assert!(out.success());
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.truncated);
    }

    #[test]
    fn env_reaches_the_child() {
        let out = ExternalCommand::new("sh")
            .args(["-c", "echo $VIGIE_TEST"])
            .env("VIGIE_TEST", "x")
            .run()
            .expect("runs");
        assert_eq!(out.stdout_text(), "x\n");
    }
}
