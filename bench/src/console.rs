//! `vigie-bench console`: the technician console at the size of a large MSP. Seeds a collector
//! database in-process (clinics × agents, a daily backup result per agent for `days` days, a
//! few percent failing, alerts evaluated), then serves it with the release `vigie-collector`
//! and asks each page `samples` times as a logged-in technician: p50/p95 of the server time
//! (its `Server-Timing` header) and of the whole request, and the bytes of each page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use vigie_collector::alerts::clock::SystemClock;
use vigie_collector::alerts::engine::AlertEngine;
use vigie_collector::facts::{BackupRun, BackupStatus, DeclaredJob, Fact, RunKind};
use vigie_collector::model::{AgentRecord, Clinic, TokenRecord};
use vigie_collector::storage::Storage;
use vigie_domain::{AgentRole, Tier};

use crate::results::Results;
use crate::stats::Latencies;

const SECTION: &str = "console";
const PASSWORD: &str = "mot-de-passe-du-banc";

#[derive(Debug, Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    pub clinics: usize,
    pub agents_per_clinic: usize,
    pub days: usize,
    pub samples: usize,
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What the pages need: clinics, enrolled agents, a year of backups, evaluated alerts.
fn seed(db: &std::path::Path, o: &Options) -> Result<(String, String)> {
    let storage = Storage::open(db)?;
    let now = Timestamp::now();
    let tiers = [Tier::Cmp0, Tier::Cmp1, Tier::Cmp3];
    let (mut first_clinic, mut first_agent) = (String::new(), String::new());
    for c in 0..o.clinics {
        let clinic = Clinic {
            id: uuid::Uuid::now_v7().to_string(),
            name: format!("Cabinet {c:04} de Saint-Denis"),
            tier: tiers[c % 3],
            created_at: now,
            rule_overrides: Default::default(),
            contact_email: None,
        };
        storage.add_clinic(&clinic)?;
        for a in 0..o.agents_per_clinic {
            let hash = *uuid::Uuid::new_v4().as_bytes();
            let mut secret = [0u8; 32];
            secret[..16].copy_from_slice(&hash);
            storage.put_token(
                &secret,
                &TokenRecord {
                    clinic_id: clinic.id.clone(),
                    created_at: now,
                    expires_at: now + SignedDuration::from_hours(1),
                    used: false,
                    used_by: None,
                },
            )?;
            let agent = storage
                .enroll_agent(&secret, now, |t| AgentRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    clinic_id: t.clinic_id.clone(),
                    hostname: format!("PC-{c:04}-{a:02}"),
                    os: "Windows 11 Pro".into(),
                    role: if a == 0 {
                        AgentRole::Server
                    } else {
                        AgentRole::Workstation
                    },
                    agent_version: "0.1.0".into(),
                    enrolled_at: now,
                    last_seen: Some(now - SignedDuration::from_mins((a as i64) * 7)),
                    revoked: false,
                    revoked_at: None,
                    outbox_dropped_total: 0,
                    outbox_health: Default::default(),
                    snapshot: None,
                    snapshot_collected_at: None,
                    clock: None,
                    config: Default::default(),
                })
                .map_err(|e| anyhow::anyhow!("enroll: {e}"))?;
            // One nightly job per agent; one agent in 25 has failed since a week.
            let failing = (c * o.agents_per_clinic + a).is_multiple_of(25);
            let runs: Vec<BackupRun> = (0..o.days)
                .rev()
                .map(|back| {
                    let finished = now - SignedDuration::from_hours(24 * back as i64 + 2);
                    BackupRun {
                        job: "sauvegarde-nas".into(),
                        kind: RunKind::Backup,
                        source: "restic".into(),
                        status: if failing && back < 7 {
                            BackupStatus::Failed
                        } else {
                            BackupStatus::Success
                        },
                        started_at: Some(finished - SignedDuration::from_mins(40)),
                        finished_at: finished,
                        bytes: Some(20 << 30),
                        files: Some(120_000),
                        target: "NAS".into(),
                        message: if failing && back < 7 {
                            "dépôt injoignable".into()
                        } else {
                            String::new()
                        },
                        cause: String::new(),
                        code: None,
                        failed_items: None,
                    }
                })
                .collect();
            storage.record_fact(
                &agent.id,
                now,
                &Fact::Backup {
                    runs,
                    declared: vec![DeclaredJob {
                        name: "sauvegarde-nas".into(),
                        every_seconds: 86_400,
                        ..Default::default()
                    }],
                    cut: Default::default(),
                },
            )?;
            if first_agent.is_empty() {
                first_agent = agent.id.clone();
            }
        }
        if first_clinic.is_empty() {
            first_clinic = clinic.id.clone();
        }
    }
    let engine = AlertEngine::new(storage.clone(), Default::default(), Arc::new(SystemClock));
    engine.evaluate_all();
    storage.flush_durably()?;
    Ok((first_clinic, first_agent))
}

fn cookie_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .and_then(|pair| pair.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        })
}

pub async fn run(o: &Options, results: &mut Results) -> Result<()> {
    let dir = o.work.join("console-collector");
    let collector = o.bin_dir.join("vigie-collector");
    let console_port = free_port()?;
    let status = Command::new(&collector)
        .arg("init")
        .arg("--data-dir")
        .arg(&dir)
        .args(["--agent-listen", &format!("127.0.0.1:{}", free_port()?)])
        .args(["--admin-listen", &format!("127.0.0.1:{}", free_port()?)])
        .args(["--console-listen", &format!("127.0.0.1:{console_port}")])
        .stdout(Stdio::null())
        .status()
        .context("vigie-collector init")?;
    anyhow::ensure!(status.success(), "init failed");

    let seeding = Instant::now();
    let (opts, db) = (o.clone(), dir.join("db"));
    let (clinic, agent) = tokio::task::spawn_blocking(move || seed(&db, &opts)).await??;
    let agents = o.clinics * o.agents_per_clinic;
    eprintln!(
        "console: seeded {} clinics, {agents} agents, {} backup results in {:.0} s",
        o.clinics,
        agents * o.days,
        seeding.elapsed().as_secs_f64()
    );
    results.context(
        "console_seed",
        serde_json::json!({
            "clinics": o.clinics,
            "agents": agents,
            "backup_results_sent": agents * o.days,
            "backup_results_kept_per_job": vigie_collector::storage::RUNS_KEPT,
            "seconds": seeding.elapsed().as_secs(),
        }),
    );

    let log = std::fs::File::create(o.work.join("console-serve.log"))?;
    let _serve = Serve(
        Command::new(&collector)
            .arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("vigie-collector serve")?,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut add = Command::new(&collector)
            .args(["technician", "add", "banc", "--data-dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = add.stdin.take() {
            use std::io::Write as _;
            writeln!(stdin, "{PASSWORD}")?;
        }
        if add.wait()?.success() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the collector did not start in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let ca = std::fs::read(dir.join("ca.crt"))?;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let base = format!("https://localhost:{console_port}");
    let form = client.get(format!("{base}/connexion")).send().await?;
    let login_cookie = cookie_of(&form, "vigie_login").context("login cookie")?;
    let page = form.text().await?;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("login CSRF field")?
        .to_owned();
    let body = format!("csrf={csrf}&suite=%2F&name=banc&password={PASSWORD}");
    let logged = client
        .post(format!("{base}/connexion"))
        .header("cookie", format!("vigie_login={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let session = cookie_of(&logged, "vigie_session").context("session cookie: login refused")?;

    let pages = [
        ("overview", "/".to_owned()),
        ("alerts", "/alertes".to_owned()),
        ("clinics", "/cabinets".to_owned()),
        ("clinic", format!("/cabinets/{clinic}")),
        ("agent", format!("/postes/{agent}")),
        ("tickets", "/tickets".to_owned()),
        ("journal", "/journal".to_owned()),
    ];
    for (key, path) in pages {
        let (mut server, mut whole, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        for i in 0..=o.samples {
            let started = Instant::now();
            let answer = client
                .get(format!("{base}{path}"))
                .header("cookie", format!("vigie_session={session}"))
                .send()
                .await?;
            anyhow::ensure!(answer.status() == 200, "{path}: {}", answer.status());
            let timing = answer
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("app;dur="))
                .and_then(|v| v.parse::<f64>().ok());
            let text = answer.bytes().await?;
            if i == 0 {
                continue; // the first answer warms sled's cache
            }
            bytes = text.len();
            whole.push(started.elapsed());
            if let Some(ms) = timing {
                server.push(Duration::from_secs_f64(ms / 1000.0));
            }
        }
        let server = Latencies::from(server);
        let whole = Latencies::from(whole);
        for (p, name) in [(50.0, "p50"), (95.0, "p95")] {
            if let Some(ms) = server.percentile_ms(p) {
                results.figure(
                    SECTION,
                    &format!("console_{key}_server_{name}_ms"),
                    &format!("page {path}: server time {name}"),
                    ms,
                    "ms",
                    "Server-Timing",
                );
            }
            if let Some(ms) = whole.percentile_ms(p) {
                results.figure(
                    SECTION,
                    &format!("console_{key}_request_{name}_ms"),
                    &format!("page {path}: whole request {name}"),
                    ms,
                    "ms",
                    "TLS kept alive, loopback",
                );
            }
        }
        results.figure(
            SECTION,
            &format!("console_{key}_bytes"),
            &format!("page {path}: size"),
            bytes as f64,
            "bytes",
            "goal < 100 KB",
        );
        results.goal(
            &format!("console page {path} under 100 KB"),
            "< 102400 bytes",
            bytes.to_string(),
            Some(bytes < 100 * 1024),
        );
    }
    Ok(())
}
