//! Real fault injection for the end-to-end tests: a small tmpfs the test mounts (and fills),
//! and libfiu (`fiu-run -x` to start a program with the POSIX fault points, `fiu-ctrl` to
//! make its later calls fail). Both need root, as CI runs; `tests/run.sh` installs `fiu-utils`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// errno values libfiu hands to the failing call.
pub const EIO: i32 = 5;
pub const ENOSPC: i32 = 28;

/// A tmpfs of a fixed size mounted on a fresh directory; unmounted when dropped.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed ({status}): these tests need root"
        );
        Tmpfs { path, _dir: dir }
    }

    /// Writes a file until the disk says it is full; returns its path (remove it to free the
    /// space) and the bytes written.
    pub fn fill(&self) -> (PathBuf, u64) {
        let path = self.path.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // A short write takes the last free pages; the next one says ENOSPC.
        let _ = file.sync_all();
        (path, written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process a failed test left behind must not keep the mount (and the test
        // machine's memory) forever.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// `fiu-ctrl -c COMMAND PID`: changes the fault points of a process started under `fiu-run -x`.
pub fn fiu_ctrl(pid: u32, command: &str) {
    let status = Command::new("fiu-ctrl")
        .args(["-c", command, &pid.to_string()])
        .status()
        .expect("fiu-ctrl (Debian package fiu-utils)");
    assert!(status.success(), "fiu-ctrl -c {command:?} {pid}: {status}");
}

/// The `fiu-run` words that start a program with every later `name` call failing with `errno`.
pub fn fiu_run_failing(name: &str, errno: i32) -> Vec<String> {
    vec![
        "fiu-run".into(),
        "-x".into(),
        "-c".into(),
        format!("enable name={name},failinfo={errno}"),
    ]
}

/// `vigie-agent run` in the background (optionally under a wrapper that execs it, such as
/// `fiu-run -x`), logging at info to a file; stopped with SIGTERM, or killed when dropped.
pub struct RunningAgent {
    child: Option<std::process::Child>,
    pub log: PathBuf,
}

impl RunningAgent {
    pub fn start(agent: &crate::Agent, config: &std::path::Path, wrapper: &[&str]) -> Self {
        let log = agent.state_dir.with_extension("run.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(crate::bin("vigie-agent"));
                c
            }
            None => Command::new(crate::bin("vigie-agent")),
        };
        let child = command
            .arg("run")
            .arg("--state-dir")
            .arg(&agent.state_dir)
            .arg("--config")
            .arg(config)
            .env("VIGIE_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("spawn vigie-agent run");
        RunningAgent {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running (it must not exit by itself).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Polls `done` every 100 ms until it holds, panicking with the log after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: std::time::Duration,
        mut done: impl FnMut() -> bool,
    ) {
        let deadline = std::time::Instant::now() + timeout;
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not within {timeout:?}; agent log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits (the agent finishes its outbox write and exits 0).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("agent ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
