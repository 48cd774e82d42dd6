//! Harness for the end-to-end tests: runs the real `vigie-collector` and `vigie-agent`
//! binaries on 127.0.0.1 in temporary directories, and a raw gRPC client for messages no
//! honest agent would send.

pub mod alerts;
pub mod faults;
pub mod grpc;
pub mod stranger;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Path of a workspace binary next to the test executable (`target/<profile>/NAME`).
/// The test command builds the binaries first (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-HASH → target/<profile>/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// Lowest port `free_port` hands out.
const TEST_PORTS_FROM: u32 = 10_000;

/// A port that was free a moment ago on 127.0.0.1, for a server a test starts next. Taken
/// below the kernel's ephemeral range, so that no outgoing connection of a parallel test can
/// take it as its source port meanwhile (seen: a collector's console refused "Address already
/// in use" with a port that `bind(0)` had just given), and never twice in one test process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_from.saturating_sub(TEST_PORTS_FROM);
    if span >= 1_000 {
        // Processes start at different places, so two test binaries rarely meet.
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = TEST_PORTS_FROM + (start + n) % span;
            if let Ok(port) = u16::try_from(port)
                && TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Runs a command to completion with a deadline, capturing its output. The pipes are read while
/// it runs: an output larger than the pipe buffer (64 KiB) would otherwise block it forever.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            bail!(
                "{cmd:?} did not finish within {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Output of a finished command, as text.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams when the command failed.
    pub fn ok(self) -> Self {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics when the command succeeded; returns stderr for message checks.
    pub fn failed(self) -> String {
        assert!(
            !self.status.success(),
            "command should have failed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self.stderr
    }
}

/// `[console] listen` in a data directory's `collector.toml` (the default when absent).
fn console_listen_of(data_dir: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(data_dir.join("collector.toml")).unwrap_or_default();
    text.split("[console]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .take_while(|l| !l.starts_with('['))
                .find_map(|l| l.strip_prefix("listen = "))
        })
        .and_then(|v| v.trim().trim_matches('"').parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)))
}

/// A collector data directory, and the `serve` process when running.
pub struct Collector {
    pub data_dir: PathBuf,
    pub agent_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The technician console (HTTPS).
    pub console_addr: SocketAddr,
    serve: Option<Child>,
    /// Environment variables `serve` gets besides the test's own (secrets, credentials).
    pub serve_env: Vec<(String, String)>,
    /// `ulimit -n` for `serve` (descriptor exhaustion tests).
    pub serve_fd_limit: Option<u32>,
    log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Collector {
    /// `init` in a fresh temporary directory, then `serve`, waiting until the admin
    /// interface answers.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = Self::init_in(&tmp.path().join("collector"));
        c._tmp = Some(tmp);
        c.serve();
        c
    }

    pub fn init_in(data_dir: &Path) -> Self {
        let agent_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let console_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let run = collector_cmd(&[
            "init",
            "--data-dir",
            &data_dir.to_string_lossy(),
            "--agent-listen",
            &agent_addr.to_string(),
            "--admin-listen",
            &admin_addr.to_string(),
            "--console-listen",
            &console_addr.to_string(),
        ]);
        run.ok();
        Collector {
            data_dir: data_dir.to_owned(),
            agent_addr,
            admin_addr,
            console_addr,
            serve: None,
            serve_env: Vec::new(),
            serve_fd_limit: None,
            log: data_dir.with_extension("serve.log"),
            _tmp: None,
        }
    }

    /// A collector on a data directory that exists already (a restored one, say), listening
    /// where its `collector.toml` says; not serving yet.
    pub fn at(data_dir: &Path, agent_addr: SocketAddr, admin_addr: SocketAddr) -> Self {
        Collector {
            data_dir: data_dir.to_owned(),
            agent_addr,
            admin_addr,
            console_addr: console_listen_of(data_dir),
            serve: None,
            log: data_dir.with_extension("serve.log"),
            _tmp: None,
            serve_env: Vec::new(),
            serve_fd_limit: None,
        }
    }

    /// Starts `serve` and waits for both listeners.
    pub fn serve(&mut self) {
        self.serve_under(&[]);
    }

    /// Starts `serve` through a wrapper that execs it (such as `fiu-run -x`, so the pid is the
    /// collector's), and waits for both listeners.
    pub fn serve_under(&mut self, wrapper: &[&str]) {
        assert!(self.serve.is_none(), "already serving");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("serve log");
        let collector = bin("vigie-collector");
        let mut program: Vec<std::ffi::OsString> = wrapper.iter().map(Into::into).collect();
        program.push(collector.into_os_string());
        let mut command = match self.serve_fd_limit {
            // The shell execs the collector (or its wrapper): the child's pid stays the same.
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
                    .args(&program);
                sh
            }
            None => {
                let mut c = Command::new(&program[0]);
                c.args(&program[1..]);
                c
            }
        };
        let child = command
            .args(["serve", "--data-dir"])
            .arg(&self.data_dir)
            .env("VIGIE_LOG", "info")
            .envs(self.serve_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn vigie-collector serve");
        self.serve = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let agent_up = std::net::TcpStream::connect(self.agent_addr).is_ok();
            if agent_up && self.admin(&["clinic", "list"]).status.success() {
                return;
            }
            if let Some(Ok(Some(status))) = self.serve.as_mut().map(Child::try_wait) {
                panic!("collector exited at start ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "collector not ready in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `serve` that must refuse to start: its stderr. Fails the test if it is still serving
    /// after 20 s.
    pub fn serve_refused(&self) -> String {
        assert!(self.serve.is_none(), "already serving");
        let mut cmd = Command::new(bin("vigie-collector"));
        cmd.args(["serve", "--data-dir"])
            .arg(&self.data_dir)
            .envs(self.serve_env.iter().map(|(k, v)| (k, v)));
        match run_with_timeout(&mut cmd, Duration::from_secs(20)) {
            Ok(out) => Run::from(out).failed(),
            Err(error) => panic!("serve should have refused to start: {error:#}"),
        }
    }

    /// Appends TOML to `collector.toml` (before `serve`).
    pub fn append_config(&self, toml: &str) {
        let path = self.data_dir.join("collector.toml");
        let mut text = std::fs::read_to_string(&path).expect("collector.toml");
        text.push('\n');
        text.push_str(toml);
        std::fs::write(&path, text).expect("write collector.toml");
    }

    /// SIGTERM, and the exit status of a clean shutdown.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.serve.take().expect("serving");
        let pid = child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("collector ignored SIGTERM for 20 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pid of the running `serve`.
    pub fn pid(&self) -> u32 {
        self.serve.as_ref().expect("serving").id()
    }

    /// Waits for `serve` to exit by itself; `None` if it still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.serve.as_mut().expect("serving");
            if let Some(status) = child.try_wait().expect("wait") {
                self.serve = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes the `serve` log to `path` from now on (for a data directory on a disk the test
    /// fills up).
    pub fn log_to(&mut self, path: &Path) {
        self.log = path.to_owned();
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let mut child = self.serve.take().expect("serving");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An admin command (`vigie-collector ARGS --data-dir DIR`).
    pub fn admin(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        let dir = self.data_dir.to_string_lossy().into_owned();
        all.extend(["--data-dir", &dir]);
        collector_cmd(&all)
    }

    pub fn add_clinic(&self, name: &str, tier: &str) -> String {
        let run = self
            .admin(&["clinic", "add", "--name", name, "--tier", tier])
            .ok();
        run.stdout.trim().to_owned()
    }

    pub fn token(&self, clinic: &str, ttl: Option<&str>) -> String {
        let mut args = vec!["token", "create", "--clinic", clinic];
        if let Some(ttl) = ttl {
            args.extend(["--ttl", ttl]);
        }
        self.admin(&args).ok().stdout.trim().to_owned()
    }

    /// `agents --json`, parsed.
    pub fn agents(&self) -> Vec<serde_json::Value> {
        let run = self.admin(&["agents", "--json"]).ok();
        match serde_json::from_str(&run.stdout) {
            Ok(serde_json::Value::Array(items)) => items,
            other => panic!(
                "agents --json is not a JSON array: {other:?}\n{}",
                run.stdout
            ),
        }
    }

    pub fn agent(&self, id: &str) -> serde_json::Value {
        self.agents()
            .into_iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("agent {id} not listed"))
    }

    /// Reports stored for one agent, as `agents --json` counts them.
    pub fn reports_of(&self, agent_id: &str) -> u64 {
        self.agent(agent_id)["reports"]
            .as_u64()
            .expect("reports is a number")
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("ca.crt")).expect("ca.crt")
    }

    /// Replaces `key = old value` in `collector.toml` (keys `init` writes, e.g. `[limits]`).
    pub fn set_config(&self, key: &str, value: &str) {
        let path = self.data_dir.join("collector.toml");
        let text = std::fs::read_to_string(&path).expect("collector.toml");
        let prefix = format!("{key} = ");
        let mut found = false;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with(&prefix) {
                    found = true;
                    format!("{prefix}{value}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        assert!(found, "{key} not in collector.toml:\n{text}");
        std::fs::write(&path, lines.join("\n") + "\n").expect("write collector.toml");
    }

    pub fn is_serving(&self) -> bool {
        self.serve.is_some()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn collector_cmd(args: &[&str]) -> Run {
    let out = run_with_timeout(
        Command::new(bin("vigie-collector")).args(args),
        Duration::from_secs(30),
    )
    .expect("vigie-collector");
    Run::from(out)
}

/// An agent state directory.
pub struct Agent {
    pub state_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        Agent {
            state_dir: tmp.path().join("state"),
            _tmp: tmp,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin("vigie-agent"));
        cmd.args(args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("VIGIE_LOG", "warn");
        Run::from(run_with_timeout(&mut cmd, Duration::from_secs(60)).expect("vigie-agent"))
    }

    pub fn enroll(&self, token: &str, role: &str) -> Run {
        self.cmd(&["enroll", "--token", token, "--role", role])
    }

    /// Enrolls and returns the agent id from `agent.json`.
    pub fn enrolled(collector: &Collector, clinic: &str, role: &str) -> (Agent, String) {
        let agent = Agent::new();
        agent.enroll(&collector.token(clinic, None), role).ok();
        let id = agent.agent_id();
        (agent, id)
    }

    pub fn agent_id(&self) -> String {
        let text = std::fs::read_to_string(self.state_dir.join("agent.json")).expect("agent.json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("agent.json is JSON");
        json["agent_id"].as_str().expect("agent_id").to_owned()
    }

    /// `run --once`: returns (sent, queued) from its summary line, and the whole run.
    pub fn run_once(&self) -> (u64, u64, Run) {
        let run = self.run_once_under(&[]).ok();
        let (sent, queued) = parse_summary(&run.stdout)
            .unwrap_or_else(|| panic!("no `sent N, queued M` line in {:?}", run.stdout));
        (sent, queued, run)
    }

    /// `run --once` that must exit non-zero (the collector refuses this agent for good, the
    /// outbox cannot write): (sent, queued) from its summary, and the whole run.
    pub fn run_once_failing(&self) -> (u64, u64, Run) {
        let run = self.run_once_under(&[]);
        assert!(
            !run.status.success(),
            "run --once should exit non-zero:\nstdout: {}\nstderr: {}",
            run.stdout,
            run.stderr
        );
        let (sent, queued) = parse_summary(&run.stdout)
            .unwrap_or_else(|| panic!("no `sent N, queued M` line in {:?}", run.stdout));
        (sent, queued, run)
    }

    /// `run --once` through a wrapper that execs it (`fiu-run -x -c ...`), whatever its exit
    /// status.
    pub fn run_once_under(&self, wrapper: &[&str]) -> Run {
        // Machine-dependent checks off, so that tests can count reports.
        let config = self.state_dir.with_extension("once.toml");
        std::fs::write(&config, QUIET_CHECKS).expect("write config");
        let config = config.to_string_lossy().into_owned();
        let args = ["run", "--once", "--config", &config];
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin("vigie-agent"));
                c
            }
            None => Command::new(bin("vigie-agent")),
        };
        cmd.args(args)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("VIGIE_LOG", "warn");
        Run::from(run_with_timeout(&mut cmd, Duration::from_secs(60)).expect("vigie-agent"))
    }

    pub fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.state_dir.join(file)).expect("state file")
    }
}

/// Agent config turning off the checks whose facts depend on the machine (OS updates,
/// antivirus, software), for tests that count reports.
pub const QUIET_CHECKS: &str =
    "[updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n";

/// Parses `sent N, queued M`.
pub fn parse_summary(stdout: &str) -> Option<(u64, u64)> {
    stdout.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("sent ")?;
        let (sent, queued) = rest.split_once(", queued ")?;
        Some((sent.trim().parse().ok()?, queued.trim().parse().ok()?))
    })
}

/// Copies a directory tree (used to replay an agent's outbox).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `vigie-agent run` in the background (the shape of a real deployment), optionally under a
/// wrapper that execs it (`fiu-run -x`), logging at info to `STATE_DIR.run.log`; stopped with
/// SIGTERM by [`RunningAgent::stop`], killed when dropped.
pub struct RunningAgent {
    child: Option<Child>,
    pub log: PathBuf,
}

impl RunningAgent {
    pub fn start(agent: &Agent, config: &Path) -> RunningAgent {
        Self::start_under(agent, config, &[])
    }

    pub fn start_under(agent: &Agent, config: &Path, wrapper: &[&str]) -> RunningAgent {
        let log = agent.state_dir.with_extension("run.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin("vigie-agent"));
                c
            }
            None => Command::new(bin("vigie-agent")),
        };
        let child = command
            .arg("run")
            .arg("--state-dir")
            .arg(&agent.state_dir)
            .arg("--config")
            .arg(config)
            .env("VIGIE_LOG", "info")
            .stdin(Stdio::null())
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
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; agent log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits (at most 20 s) for the agent to finish its outbox write and exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("agent ignored SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
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

/// Edits the `collector.toml` of a data directory: each `(from, to)` must be found.
pub fn edit_collector_toml(data_dir: &Path, edits: &[(&str, &str)]) {
    let path = data_dir.join("collector.toml");
    let mut text = std::fs::read_to_string(&path).expect("collector.toml");
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "{from:?} not in collector.toml:\n{text}"
        );
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&path, text).expect("write collector.toml");
}

/// Polls `check` every 200 ms until it returns `Some`, at most `limit`; panics with `what`.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
