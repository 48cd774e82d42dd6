//! The monthly clinic report end to end, for last month (Réunion time) whatever today is: one
//! clinic of each tier, real agents, real results. The month's past days are lived through
//! with libfaketime (Debian's `faketime`): the collector and the agents run at chosen instants
//! of that month (a job declared before it, a PACS down from 10:00 to 16:00 on day D, a backup
//! failing that day and its ticket answered in time for CMP3 and late for CMP1), then the rest
//! of the month's results arrive with past `--started/--finished` times at today's time. The
//! reports are checked with Debian's poppler-utils (`pdftotext`, `pdftoppm`: the pages are kept
//! under `$VIGIE_ARTIFACTS`, default `target/artifacts`), their JSON against their PDF, and
//! the schedule's e-mails at Debian's aiosmtpd: one per CMP1/CMP3 clinic, none after a restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::civil::{Date, date};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use serde_json::Value;
use vigie_tests::{Agent, Collector, bin, free_port, wait_until};

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const PYTHON: &str = "/usr/bin/python3";
const JOB: &str = "nas-nuit";

/// La Réunion: UTC+4 all year.
fn reunion() -> TimeZone {
    TimeZone::fixed(Offset::constant(4))
}

fn local(day: Date, hour: i8, minute: i8) -> Timestamp {
    day.to_datetime(jiff::civil::time(hour, minute, 0, 0))
        .to_zoned_datetime(reunion())
        .expect("zoned")
        .timestamp()
}

/// Runs the program at `at` (and on from there): libfaketime preloaded.
fn fake_env(at: Timestamp) -> Vec<(String, String)> {
    assert!(
        Path::new(FAKETIME_LIB).is_file(),
        "{FAKETIME_LIB} is missing: install Debian's faketime (tests/run.sh does)"
    );
    vec![
        ("LD_PRELOAD".into(), FAKETIME_LIB.into()),
        (
            "FAKETIME".into(),
            format!("@{}", at.strftime("%Y-%m-%d %H:%M:%S")),
        ),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("TZ".into(), "UTC".into()),
    ]
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = vigie_tests::run_with_timeout(cmd, Duration::from_secs(60)).expect(what);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn agent_cmd(agent: &Agent, env: &[(String, String)], args: &[&str]) -> String {
    let mut cmd = Command::new(bin("vigie-agent"));
    cmd.args(args)
        .arg("--state-dir")
        .arg(&agent.state_dir)
        .env("VIGIE_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)));
    run(&mut cmd, &format!("vigie-agent {}", args.join(" ")))
}

/// Agent configuration: the nightly job, and for CMP3 two LAN devices on loopback ports.
fn agent_config(agent: &Agent, lan: Option<(u16, u16)>) -> PathBuf {
    let mut text = String::from(
        "[updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n\
         [[backup.jobs]]\nname = \"nas-nuit\"\nevery = \"24h\"\n",
    );
    if let Some((pacs, scanner)) = lan {
        text.push_str(&format!(
            "[lan]\ninterval = \"30s\"\nprobe_timeout = \"2s\"\n\
             [[lan.targets]]\nname = \"pacs\"\nkind = \"pacs\"\naddress = \"127.0.0.1\"\n\
             probes = [{{ type = \"tcp\", port = {pacs} }}]\n\
             [[lan.targets]]\nname = \"scanner\"\nkind = \"imaging-modality\"\naddress = \"127.0.0.1\"\n\
             probes = [{{ type = \"tcp\", port = {scanner} }}]\n"
        ));
    }
    let path = agent.state_dir.with_extension("toml");
    std::fs::write(&path, text).expect("agent config");
    path
}

fn run_once(agent: &Agent, config: &Path, env: &[(String, String)]) {
    let config = config.to_string_lossy().into_owned();
    let out = agent_cmd(agent, env, &["run", "--once", "--config", &config]);
    let (_, queued) = vigie_tests::parse_summary(&out).expect("summary");
    assert_eq!(queued, 0, "everything delivered: {out}");
}

/// A backup result at local `hour` on `day`, an hour long.
fn result(agent: &Agent, env: &[(String, String)], day: Date, status: &str) {
    let finished = local(day, 2, 0);
    let started = finished - SignedDuration::from_hours(1);
    agent_cmd(
        agent,
        env,
        &[
            "backup-result",
            "--job",
            JOB,
            "--status",
            status,
            "--started",
            &started.to_string(),
            "--finished",
            &finished.to_string(),
        ],
    );
}

/// A peer process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_server(port: u16, maildir: &Path) -> Peer {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: run `bash tests/servers.sh`"
    );
    let child = Command::new(PYTHON)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 -m aiosmtpd (run `bash tests/servers.sh`)");
    let mut peer = Peer(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = peer.0.try_wait() {
            panic!("aiosmtpd exited at start ({status}): run `bash tests/servers.sh`");
        }
        assert!(Instant::now() < deadline, "aiosmtpd not listening in 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    peer
}

fn mails(maildir: &Path) -> Vec<Value> {
    if !maildir.join("new").is_dir() {
        return Vec::new();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("servers/read_maildir.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .arg(maildir)
        .output()
        .expect("read_maildir.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn report_mails(maildir: &Path) -> Vec<Value> {
    mails(maildir)
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Rapport mensuel"))
        })
        .collect()
}

fn json_of(collector: &Collector, args: &[&str]) -> Value {
    let out = collector.admin(args).ok();
    serde_json::from_str(&out.stdout).expect("JSON output")
}

/// The first Tuesday or Wednesday from the 12th on that is no Réunion public holiday: a
/// staffed weekday (07:00–20:00) whatever the month.
fn working_day(first: Date) -> Date {
    (11..19)
        .filter_map(|d| first.checked_add(d.days()).ok())
        .find(|d| {
            let wd = d.weekday().to_monday_zero_offset();
            let holiday = matches!((d.month(), d.day()), (7, 14) | (8, 15) | (12, 20));
            (wd == 1 || wd == 2) && !holiday
        })
        .expect("a Tuesday or Wednesday between the 12th and the 19th")
}

fn pdftotext(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (Debian's poppler-utils; tests/run.sh installs it)");
    assert!(out.status.success(), "pdftotext: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 text")
}

/// Renders every page to PNG under the artifacts folder; returns how many.
fn render_pages(pdf: &Path, name: &str) -> usize {
    let info = Command::new("pdfinfo").arg(pdf).output().expect("pdfinfo");
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo says no page count:\n{info}"));
    let dir = std::env::var_os("VIGIE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts"))
        .join("report");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let prefix = dir.join(name);
    let status = Command::new("pdftoppm")
        .args(["-r", "60", "-png"])
        .arg(pdf)
        .arg(&prefix)
        .status()
        .expect("pdftoppm");
    assert!(status.success(), "pdftoppm failed on {}", pdf.display());
    let rendered = std::fs::read_dir(&dir)
        .expect("artifacts")
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("{name}-")) && n.ends_with(".png")
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 1000))
        .count();
    assert_eq!(rendered, pages, "every page of {name} rendered");
    pages
}

/// The number after `label` on the line, e.g. `délai respecté : 1`.
fn number_after(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} not in the report:\n{text}"));
    text[at + label.len()..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?}"))
}

#[test]
fn monthly_reports_per_tier_through_faked_days_and_sent_once() {
    let zone = reunion();
    let today = Timestamp::now().to_zoned_datetime(zone.clone()).date();
    let first = date(today.year(), today.month(), 1)
        .checked_sub(1.month())
        .expect("last month");
    let month = first.strftime("%Y-%m").to_string();
    let days = first.days_in_month();
    let last = first.checked_add((days - 1).days()).expect("last day");
    let day_d = working_day(first);
    let before_month = local(first, 0, 0) - SignedDuration::from_hours(3);

    let tmp = tempfile::tempdir().expect("tempdir");
    let maildir = tmp.path().join("maildir");
    let smtp_port = free_port();
    let _smtp = smtp_server(smtp_port, &maildir);
    let (pacs_port, scanner_port) = (free_port(), free_port());
    let scanner = std::net::TcpListener::bind(("127.0.0.1", scanner_port)).expect("scanner");

    // ---- before the month: init, clinics, agents declare the job, the PACS is up ----
    let env0 = fake_env(before_month);
    let data_dir = tmp.path().join("collector");
    let (agent_addr, admin_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut init = Command::new(bin("vigie-collector"));
    init.args(["init", "--data-dir"])
        .arg(&data_dir)
        .args(["--agent-listen", &agent_addr, "--admin-listen", &admin_addr])
        .envs(env0.iter().map(|(k, v)| (k, v)));
    run(&mut init, "init");
    let mut collector = Collector::at(
        &data_dir,
        agent_addr.parse().expect("addr"),
        admin_addr.parse().expect("addr"),
    );
    let toml = data_dir.join("collector.toml");
    let mut text = std::fs::read_to_string(&toml).expect("collector.toml");
    text.push_str(&format!(
        "\n[escalation]\ntick_seconds = 1\nretry_first_seconds = 1\nretry_max_seconds = 2\n\
         [escalation.rule_grace_minutes]\nbackup_missing = 100000\n\
         [[escalation.sinks]]\nname = \"courriel\"\ntype = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {smtp_port}\nsecurity = \"none\"\nfrom = \"vigie@msp.re\"\nto = [\"tickets@msp.re\"]\n"
    ));
    std::fs::write(&toml, &text).expect("collector.toml");
    collector.serve_env = env0.clone();
    collector.serve();

    let cmp0 = collector.add_clinic("Cabinet du Barachois", "cmp0");
    let cmp1 = collector.add_clinic("Cabinet Dr Payet", "cmp1");
    let cmp3 = collector.add_clinic("Radiologie de l'Ouest", "cmp3");
    for (clinic, contact) in [
        (&cmp0, "accueil@barachois.re"),
        (&cmp1, "secretariat@payet.re"),
        (&cmp3, "direction@radiologie-ouest.re"),
    ] {
        collector
            .admin(&["clinic", "set-contact", clinic, contact])
            .ok();
        // Only backup alerts: the tickets of this test are the backups'.
        collector
            .admin(&[
                "clinic",
                "rules",
                clinic,
                "--disable",
                "os-updates",
                "--disable",
                "antivirus",
                "--disable",
                "software",
                "--disable",
                "disk",
                "--disable",
                "lan",
                "--disable",
                "agent-silent",
                "--disable",
                "clock",
                "--disable",
                "backup-check",
            ])
            .ok();
    }
    let enroll = |clinic: &str, env: &[(String, String)]| {
        let agent = Agent::new();
        let token = collector.token(clinic, None);
        agent_cmd(
            &agent,
            env,
            &["enroll", "--token", &token, "--role", "server"],
        );
        agent
    };
    let a0 = enroll(&cmp0, &env0);
    let a1 = enroll(&cmp1, &env0);
    let a3 = enroll(&cmp3, &env0);
    let c0 = agent_config(&a0, None);
    let c1 = agent_config(&a1, None);
    let c3 = agent_config(&a3, Some((pacs_port, scanner_port)));
    let pacs = std::net::TcpListener::bind(("127.0.0.1", pacs_port)).expect("pacs");
    for (agent, config) in [(&a0, &c0), (&a1, &c1), (&a3, &c3)] {
        run_once(agent, config, &env0);
    }
    collector.stop();

    // ---- day D, 10:00: the PACS is down; the backups so far, and that night's failure ----
    let env1 = fake_env(local(day_d, 10, 0));
    drop(pacs);
    collector.serve_env = env1.clone();
    collector.serve();
    let mut day = first;
    while day < day_d {
        result(&a1, &env1, day, "success");
        result(&a3, &env1, day, "success");
        day = day.checked_add(1.day()).expect("next day");
    }
    result(&a1, &env1, day_d, "failed");
    result(&a3, &env1, day_d, "failed");
    run_once(&a1, &c1, &env1);
    run_once(&a3, &c3, &env1);
    let failed = |clinic: &str| -> u64 {
        wait_until(Duration::from_secs(30), "backup_failed alert", || {
            let alerts = vigie_tests::alerts::alerts(&collector, &[]);
            vigie_tests::alerts::of(&alerts, clinic, "backup_failed")
                .first()
                .and_then(|a| a["id"].as_u64())
        })
    };
    let (alert1, alert3) = (failed(&cmp1), failed(&cmp3));
    // Both tickets sent (e-mail sink) before anyone answers.
    wait_until(Duration::from_secs(30), "tickets sent", || {
        let tickets = json_of(&collector, &["tickets", "--json", "--all"]);
        let sent = tickets
            .as_array()?
            .iter()
            .filter(|t| !t["ticket_id"].is_null())
            .filter(|t| [alert1, alert3].contains(&t["alert_id"].as_u64().unwrap_or(0)))
            .count();
        (sent == 2).then_some(())
    });
    // CMP3 answered at once, within its 2 support hours.
    collector
        .admin(&["alerts", "ack", &alert3.to_string()])
        .ok();
    collector.stop();

    // ---- day D, 16:00: the PACS is back; CMP1's ticket answered 6 h later (SLA 4 h) ----
    let env2 = fake_env(local(day_d, 16, 0));
    let _pacs = std::net::TcpListener::bind(("127.0.0.1", pacs_port)).expect("pacs again");
    collector.serve_env = env2.clone();
    collector.serve();
    run_once(&a3, &c3, &env2);
    collector
        .admin(&["alerts", "ack", &alert1.to_string()])
        .ok();
    collector.stop();

    // ---- today: the rest of the month's results, with their past times ----
    collector.serve_env = Vec::new();
    collector.serve();
    let warning_day = day_d.checked_add(3.days()).expect("warning day");
    let missing_day = day_d.checked_add(5.days()).expect("missing day");
    let mut day = day_d.checked_add(1.day()).expect("next day");
    while day <= last {
        if day != missing_day {
            let status = if day == warning_day {
                "warning"
            } else {
                "success"
            };
            result(&a1, &[], day, status);
            result(&a3, &[], day, status);
        }
        day = day.checked_add(1.day()).expect("next day");
    }
    run_once(&a1, &c1, &[]);
    run_once(&a3, &c3, &[]);
    run_once(&a0, &c0, &[]);
    collector.stop();

    // ---- the schedule on: one report e-mail per CMP1/CMP3 clinic ----
    let mut text = std::fs::read_to_string(&toml).expect("collector.toml");
    text.push_str("\n[reports]\nmonthly = true\nday = 1\nhour = 0\ncheck_every_seconds = 1\n");
    std::fs::write(&toml, &text).expect("collector.toml");
    collector.serve();
    let sent = wait_until(Duration::from_secs(60), "two report e-mails", || {
        let got = report_mails(&maildir);
        (got.len() >= 2).then_some(got)
    });
    let mut to: Vec<&str> = sent.iter().filter_map(|m| m["to"].as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        ["direction@radiologie-ouest.re", "secretariat@payet.re"]
    );
    for mail in &sent {
        let attachment = &mail["attachments"][0];
        assert_eq!(attachment["content_type"], "application/pdf", "{mail}");
        assert_eq!(attachment["head"], "%PDF-");
        let name = attachment["filename"].as_str().expect("file name");
        assert!(name.ends_with(&format!("-{month}.pdf")), "{name}");
        assert!(
            mail["message_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("<report-{month}-"))),
            "{mail}"
        );
    }

    // ---- the same reports on demand, while serve runs ----
    let out = tmp.path().join("reports");
    let written = collector
        .admin(&[
            "report",
            "monthly",
            "--all",
            "--month",
            &month,
            "--out",
            &out.to_string_lossy(),
            "--json",
        ])
        .ok();
    assert_eq!(written.stdout.lines().count(), 6, "{}", written.stdout);
    // What the schedule did, said to the technician.
    for line in [
        "Cabinet Dr Payet : envoyé à secretariat@payet.re",
        "Radiologie de l'Ouest : envoyé à direction@radiologie-ouest.re",
    ] {
        assert!(
            written.stderr.contains(line),
            "{line:?} not in:\n{}",
            written.stderr
        );
    }
    assert!(
        !written.stderr.contains("Cabinet du Barachois :"),
        "{}",
        written.stderr
    );

    let read = |name: &str| -> (String, Value) {
        let pdf = out.join(format!("{name}-{month}.pdf"));
        let json: Value = serde_json::from_slice(
            &std::fs::read(out.join(format!("{name}-{month}.json"))).expect("json file"),
        )
        .expect("figures JSON");
        render_pages(&pdf, name);
        (pdftotext(&pdf), json)
    };
    let expected_days = u64::try_from(days).expect("days");
    for (name, clinic_name, sla_met, sla_missed) in [
        ("Cabinet-Dr-Payet", "Cabinet Dr Payet", 0, 1),
        ("Radiologie-de-l-Ouest", "Radiologie de l'Ouest", 1, 0),
    ] {
        let (text, json) = read(name);
        assert!(text.contains(&format!("Cabinet : {clinic_name}")), "{text}");
        assert_eq!(json["has_data"], true);
        // Backups: every day expected; a failure on D, a warning on D+3, nothing on D+5.
        let b = &json["backups"];
        assert_eq!(b["runs_expected"], expected_days, "{b}");
        assert_eq!(b["runs_seen"], expected_days - 1);
        assert_eq!(
            (
                b["successes"].as_u64(),
                b["warnings"].as_u64(),
                b["failures"].as_u64()
            ),
            (Some(expected_days - 3), Some(1), Some(1))
        );
        let percent = ((expected_days - 3) * 100 + expected_days / 2) / expected_days;
        assert_eq!(b["success_percent"], percent);
        let ratio = format!(
            "Réussite sur le mois : {}/{} ({} %)",
            expected_days - 3,
            expected_days,
            percent
        );
        assert!(text.contains(&ratio), "{ratio:?} not in:\n{text}");
        let job = &b["jobs"][0];
        assert_eq!(job["job"], JOB);
        // The longest stretch: D-1 02:00 to D+1 02:00, or around the missing day.
        assert_eq!(job["longest_without_success_seconds"], 48 * 3600);
        assert!(text.contains("Plus longue période sans sauvegarde réussie : 48 h"));
        // Tickets against the SLA: the line, and its numbers equal to the JSON's.
        let i = &json["incidents"];
        assert_eq!(i["tickets"].as_array().map(Vec::len), Some(1), "{i}");
        assert_eq!(
            (i["sla_met"].as_u64(), i["sla_missed"].as_u64()),
            (Some(sla_met), Some(sla_missed))
        );
        assert_eq!(number_after(&text, "délai respecté :"), sla_met);
        assert_eq!(number_after(&text, "délai dépassé :"), sla_missed);
        assert_eq!(number_after(&text, "Tickets :"), 1);
        assert_eq!(
            number_after(&text, "Alertes ouvertes :"),
            i["alerts_opened"].as_u64().expect("opened")
        );
        assert!(text.contains(if sla_met == 1 {
            "respecté"
        } else {
            "dépassé"
        }));
    }
    let (text3, json3) = read("Radiologie-de-l-Ouest");
    // CMP3: the devices over the month, imaging first, the PACS down 6 h on day D.
    let devices = json3["preventive"]["devices"].as_array().expect("devices");
    let names: Vec<&str> = devices.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["scanner", "pacs"]);
    let pacs = &devices[1];
    let down = pacs["down_seconds"].as_i64().expect("down");
    assert!(
        (6 * 3600 - 120..6 * 3600 + 120).contains(&down),
        "PACS down {down} s"
    );
    assert_eq!(pacs["outages"], 1);
    let availability = pacs["availability_percent"].as_f64().expect("percent");
    let shown = format!("{availability:.1} %").replace('.', ",");
    assert!(text3.contains(&shown), "{shown:?} not in:\n{text3}");
    assert!(text3.contains("Maintenance préventive"));
    // CMP1: no preventive section.
    let (text1, json1) = read("Cabinet-Dr-Payet");
    assert!(json1["preventive"].is_null());
    assert!(!text1.contains("Maintenance préventive"));
    // CMP0: the inventory only.
    let (text0, json0) = read("Cabinet-du-Barachois");
    assert!(text0.contains("État du parc") && text0.contains("Cabinet du Barachois"));
    assert!(!text0.contains("Sauvegardes") && json0["backups"].is_null());

    // A month before any agent (they enrolled 3 h before last month): nothing to say.
    let empty = first.checked_sub(2.months()).expect("month before");
    let empty = empty.strftime("%Y-%m").to_string();
    collector
        .admin(&[
            "report",
            "monthly",
            "--clinic",
            &cmp1,
            "--month",
            &empty,
            "--out",
            &out.to_string_lossy(),
        ])
        .ok();
    let text = pdftotext(&out.join(format!("Cabinet-Dr-Payet-{empty}.pdf")));
    assert!(text.contains("Aucune donnée pour ce mois"), "{text}");

    // ---- restarted: nothing sent again ----
    collector.stop();
    collector.serve();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        report_mails(&maildir).len(),
        2,
        "no report e-mail sent twice"
    );
    assert!(
        collector.log().contains("monthly report sent"),
        "the schedule logged its sends"
    );
    // The schedule kept its copies in the data directory, CMP0's not among them.
    let kept = data_dir.join("reports");
    assert!(kept.join(format!("Cabinet-Dr-Payet-{month}.pdf")).is_file());
    assert!(
        kept.join(format!("Radiologie-de-l-Ouest-{month}.pdf"))
            .is_file()
    );
    assert!(
        !kept
            .join(format!("Cabinet-du-Barachois-{month}.pdf"))
            .exists()
    );
    drop(scanner);
}
