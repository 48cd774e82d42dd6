//! Escalation end to end: the real collector sends tickets to real peer processes on
//! loopback — a webhook receiver (checking the HMAC itself), Debian's aiosmtpd (the message
//! read back from its maildir), and a GLPI API mock (`tests/servers/glpi_mock.py`) — through
//! a sink outage and a SIGKILL in the middle of a create. Peers come from `tests/servers.sh`;
//! a missing one fails the test with that name, it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigie_proto::v1::BackupStatus;
use vigie_tests::alerts::{backup_report, of, send_as, wait_for_alerts};
use vigie_tests::{Agent, Collector, free_port};

/// Debian's interpreter: the one `tests/servers.sh` installed aiosmtpd for.
const PYTHON: &str = "/usr/bin/python3";
const SECRET: &str = "le-secret-partagé-du-webhook";

/// A peer process, killed when dropped.
struct Peer {
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn servers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("servers")
}

/// Starts `python3 ARGS` and waits until it accepts connections on `port`.
fn peer(port: u16, args: &[&str], what: &str) -> Peer {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing: run `bash tests/servers.sh` (the {what} needs it)"
    );
    let child = Command::new(PYTHON)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {what}: {e}"));
    let mut peer = Peer { child };
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!("the {what} exited at start ({status}); is `bash tests/servers.sh` done?");
        }
        assert!(
            Instant::now() < deadline,
            "the {what} did not listen on {port} in 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    peer
}

fn webhook_receiver(port: u16, record: &Path) -> Peer {
    let script = servers_dir().join("webhook_receiver.py");
    peer(
        port,
        &[
            &script.to_string_lossy(),
            &port.to_string(),
            SECRET,
            &record.to_string_lossy(),
        ],
        "webhook receiver",
    )
}

fn glpi_mock(port: u16, state: &Path, extra: &[&str]) -> Peer {
    let script = servers_dir().join("glpi_mock.py");
    let mut args = vec![
        script.to_string_lossy().into_owned(),
        port.to_string(),
        "app-token-vigie".into(),
        "user-token-vigie".into(),
        state.to_string_lossy().into_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    peer(port, &args, "GLPI mock")
}

fn smtp_server(port: u16, maildir: &Path) -> Peer {
    let listen = format!("127.0.0.1:{port}");
    peer(
        port,
        &[
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &listen,
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &maildir.to_string_lossy(),
        ],
        "SMTP server (python3-aiosmtpd)",
    )
}

/// A collector whose `collector.toml` gets `escalation` (fast retries) before `serve`.
fn collector(escalation: &str) -> (tempfile::TempDir, Collector) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    let path = collector.data_dir.join("collector.toml");
    let mut text = std::fs::read_to_string(&path).expect("collector.toml");
    text.push_str(
        "\n[escalation]\ntick_seconds = 1\nretry_first_seconds = 1\nretry_max_seconds = 2\n",
    );
    text.push_str(escalation);
    std::fs::write(&path, text).expect("write collector.toml");
    collector.serve();
    (tmp, collector)
}

fn webhook_sink(name: &str, port: u16) -> String {
    format!(
        "[[escalation.sinks]]\nname = \"{name}\"\ntype = \"webhook\"\n\
         url = \"http://127.0.0.1:{port}/hooks/vigie\"\nsecret = \"{SECRET}\"\ntimeout_seconds = 5\n"
    )
}

fn glpi_sink(name: &str, port: u16, app_token: &str, timeout: u64) -> String {
    format!(
        "[[escalation.sinks]]\nname = \"{name}\"\ntype = \"glpi\"\n\
         url = \"http://127.0.0.1:{port}/apirest.php\"\napp_token = \"{app_token}\"\n\
         user_token = \"user-token-vigie\"\ndefault_entity = 1\ntimeout_seconds = {timeout}\n\
         [escalation.sinks.entities]\n\"Cabinet Prisme\" = 7\n"
    )
}

/// `tickets --json --all`, parsed.
fn tickets(collector: &Collector) -> Vec<Value> {
    let run = collector.admin(&["tickets", "--json", "--all"]).ok();
    match serde_json::from_str(&run.stdout) {
        Ok(Value::Array(items)) => items,
        other => panic!(
            "tickets --json is not a JSON array: {other:?}\n{}",
            run.stdout
        ),
    }
}

/// Polls `probe` until it returns `Some` (at most `secs`), with the collector log on failure.
fn wait<T>(
    collector: &Collector,
    secs: u64,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s; tickets: {:#?}\ncollector log:\n{}",
            tickets(collector),
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn glpi_state(file: &Path) -> Value {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// A failed backup reported by an agent of `clinic`; returns the agent and the alert id.
async fn failed_backup(collector: &Collector, clinic: &str) -> (Agent, u64) {
    let (agent, _) = Agent::enrolled(collector, clinic, "workstation");
    let report = backup_report("nightly-nas", BackupStatus::Failed, "NAS injoignable");
    send_as(collector, &agent, vec![report]).await;
    let got = wait_for_alerts(collector, |a| !of(a, clinic, "backup_failed").is_empty());
    let id = of(&got, clinic, "backup_failed")[0]["id"]
        .as_u64()
        .expect("alert id");
    (agent, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_tickets_are_signed_followed_up_and_solved() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = tmp.path().join("webhook.jsonl");
    let port = free_port();
    let _receiver = webhook_receiver(port, &record);
    let (_dir, collector) = collector(&webhook_sink("astreinte", port));
    let cmp0 = collector.add_clinic("Cabinet à la carte", "cmp0");
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (agent0, _) = Agent::enrolled(&collector, &cmp0, "workstation");
    let report = backup_report("nightly-nas", BackupStatus::Failed, "NAS injoignable");
    send_as(&collector, &agent0, vec![report]).await;
    let (agent1, id1) = failed_backup(&collector, &cmp1).await;
    let (_a3, id3) = failed_backup(&collector, &cmp3).await;
    // A clinic in maintenance: its alert is recorded, silenced, and never escalated.
    let quiet = collector.add_clinic("Cabinet en maintenance", "cmp3");
    collector
        .admin(&[
            "maintenance",
            "add",
            "--clinic",
            &quiet,
            "--for",
            "2h",
            "--reason",
            "migration NAS",
        ])
        .ok();
    let (_aq, silenced_id) = failed_backup(&collector, &quiet).await;

    let creates = wait(&collector, 20, "two tickets created", || {
        let creates: Vec<Value> = records(&record)
            .into_iter()
            .filter(|r| r["event"] == "ticket.create")
            .collect();
        (creates.len() >= 2).then_some(creates)
    });
    assert_eq!(creates.len(), 2, "CMP0 never escalates: {creates:#?}");
    for c in &creates {
        assert_eq!(c["signature_valid"], true, "{c}");
        assert_eq!(c["content_type"], "application/json");
        assert_eq!(c["body"]["version"], 1);
        let ticket = &c["body"]["ticket"];
        assert!(
            ticket["title"]
                .as_str()
                .is_some_and(|t| t.contains("nightly-nas")),
            "{c}"
        );
        assert!(
            ticket["content"]
                .as_str()
                .is_some_and(|t| t.contains("Réponse attendue avant"))
        );
        assert!(ticket["response_due"].is_string());
        assert_eq!(ticket["alert"]["rule"], "backup_failed");
    }
    let ticket_of = |id: u64| {
        creates
            .iter()
            .find(|c| c["body"]["tag"] == format!("[vigie:{id}]"))
            .unwrap_or_else(|| panic!("no ticket for alert {id}: {creates:#?}"))["body"]["ticket"]
            .clone()
    };
    let (t1, t3) = (ticket_of(id1), ticket_of(id3));
    assert!(
        t3["priority"].as_u64() > t1["priority"].as_u64(),
        "CMP3 above CMP1"
    );
    assert_eq!(t1["tier"], "cmp1");

    // The same failure again: a repeat, not a second ticket nor a follow-up.
    send_as(
        &collector,
        &agent1,
        vec![backup_report(
            "nightly-nas",
            BackupStatus::Failed,
            "NAS injoignable",
        )],
    )
    .await;
    wait_for_alerts(&collector, |a| {
        of(a, &cmp1, "backup_failed")
            .first()
            .is_some_and(|x| x["count"] == 2)
    });
    // Acknowledge, then resolve: a follow-up, then the solving note.
    let id = id1.to_string();
    collector
        .admin(&[
            "alerts",
            "ack",
            &id,
            "--note",
            "je regarde",
            "--by",
            "marie",
        ])
        .ok();
    collector
        .admin(&[
            "alerts",
            "resolve",
            &id,
            "--note",
            "NAS relancé",
            "--by",
            "marie",
        ])
        .ok();
    let notes = wait(&collector, 20, "follow-up and solve", || {
        let notes: Vec<Value> = records(&record)
            .into_iter()
            .filter(|r| {
                r["body"]["tag"] == format!("[vigie:{id1}]") && r["event"] != "ticket.create"
            })
            .collect();
        (notes.len() >= 2).then_some(notes)
    });
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert_eq!(notes[0]["event"], "ticket.follow_up");
    let text = notes[0]["body"]["note"]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("marie") && text.contains("je regarde"),
        "{text}"
    );
    assert_eq!(notes[1]["event"], "ticket.solve");
    assert!(notes.iter().all(|n| n["signature_valid"] == true));
    let webhook_id = t1_ticket_id(&collector, id1);
    assert_eq!(notes[1]["body"]["ticket_id"], webhook_id.as_str());

    let all = tickets(&collector);
    let state_of = |id: u64| {
        all.iter()
            .find(|t| t["alert_id"] == id)
            .map(|t| t["state"].clone())
    };
    assert_eq!(state_of(id1), Some("solved".into()), "{all:#?}");
    assert_eq!(state_of(id3), Some("open".into()), "{all:#?}");
    assert_eq!(
        state_of(silenced_id),
        None,
        "a silenced alert does not escalate"
    );
    let table = collector.admin(&["tickets", "--all"]).ok().stdout;
    assert!(
        table.contains(&format!("#{id3}")) && table.contains("ouvert"),
        "{table}"
    );
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");

    // A test ticket, on demand.
    let sent = collector
        .admin(&["escalation", "test", "--sink", "astreinte"])
        .ok();
    assert!(sent.stdout.trim().starts_with("WH-"), "{}", sent.stdout);
    let test = records(&record);
    assert!(test.iter().any(|r| {
        r["body"]["tag"]
            .as_str()
            .is_some_and(|t| t.starts_with("[vigie:test-"))
    }));
    let error = collector
        .admin(&["escalation", "test", "--sink", "nope"])
        .failed();
    assert!(
        error.contains("aucune destination de tickets nommée"),
        "{error}"
    );
}

fn t1_ticket_id(collector: &Collector, alert: u64) -> String {
    tickets(collector)
        .iter()
        .find(|t| t["alert_id"] == alert)
        .and_then(|t| t["ticket_id"].as_str().map(str::to_owned))
        .expect("a ticket id")
}

/// The messages aiosmtpd stored, decoded by Python's e-mail parser, oldest first.
fn mails(maildir: &Path) -> Vec<Value> {
    if !maildir.join("new").is_dir() {
        return Vec::new();
    }
    let script = servers_dir().join("read_maildir.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .arg(maildir)
        .output()
        .expect("read_maildir.py runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_tickets_reach_a_real_smtp_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let maildir = tmp.path().join("maildir");
    let port = free_port();
    let _smtp = smtp_server(port, &maildir);
    let sink = format!(
        "[[escalation.sinks]]\nname = \"courriel\"\ntype = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nsecurity = \"none\"\nfrom = \"Vigie <vigie@msp.example>\"\n\
         to = [\"support@msp.example\"]\ntimeout_seconds = 5\n"
    );
    let (_dir, collector) = collector(&sink);
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (_agent, id) = failed_backup(&collector, &cmp3).await;
    let first = wait(&collector, 20, "the ticket e-mail", || {
        mails(&maildir).into_iter().next()
    });
    let tag = format!("[vigie:{id}]");
    let subject = first["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with(&tag) && subject.contains("nightly-nas"),
        "{first:#}"
    );
    assert_eq!(first["message_id"], format!("<vigie-{id}@vigie>"));
    assert!(
        first["to"]
            .as_str()
            .is_some_and(|t| t.contains("support@msp.example"))
    );
    let body = first["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("Réponse attendue avant") && body.contains("Cabinet Prisme"),
        "{body}"
    );
    assert!(
        body.contains("contrat CMP3") && body.contains("Priorité : 5"),
        "{body}"
    );

    collector
        .admin(&[
            "alerts",
            "ack",
            &id.to_string(),
            "--note",
            "je regarde",
            "--by",
            "marie",
        ])
        .ok();
    let all = wait(&collector, 20, "the follow-up e-mail", || {
        let all = mails(&maildir);
        (all.len() >= 2).then_some(all)
    });
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[1]["in_reply_to"], format!("<vigie-{id}@vigie>"));
    let body = all[1]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("marie") && body.contains("je regarde"),
        "{body}"
    );
}

/// A private CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// (ca.pem, server.pem, server.key).
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("sign");
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

fn email_sink(name: &str, port: u16, security: &str, ca: Option<&Path>) -> String {
    let ca = ca.map_or(String::new(), |p| {
        format!("ca_file = \"{}\"\n", p.display())
    });
    format!(
        "[[escalation.sinks]]\nname = \"{name}\"\ntype = \"email\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nsecurity = \"{security}\"\nfrom = \"Vigie <vigie@msp.example>\"\n\
         to = [\"support@msp.example\"]\ntimeout_seconds = 5\n{ca}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_and_implicit_tls() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = private_ca(tmp.path());
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    let (starttls_dir, tls_dir) = (tmp.path().join("starttls"), tmp.path().join("tls"));
    let (starttls_port, tls_port) = (free_port(), free_port());
    // STARTTLS required before MAIL (aiosmtpd's default once it has a certificate).
    let _starttls = peer(
        starttls_port,
        &[
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{starttls_port}"),
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &starttls_dir.to_string_lossy(),
        ],
        "STARTTLS SMTP server (python3-aiosmtpd)",
    );
    // TLS from the first byte (SMTPS).
    let _tls = peer(
        tls_port,
        &[
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{tls_port}"),
            "--smtpscert",
            &cert,
            "--smtpskey",
            &key,
            "-c",
            "aiosmtpd.handlers.Mailbox",
            &tls_dir.to_string_lossy(),
        ],
        "SMTPS server (python3-aiosmtpd)",
    );
    let sinks = email_sink("starttls", starttls_port, "starttls", Some(&ca))
        + &email_sink("tls", tls_port, "tls", Some(&ca))
        + &email_sink("sans-ca", starttls_port, "starttls", None);
    let (_dir, collector) = collector(&sinks);
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let (_agent, id) = failed_backup(&collector, &cmp1).await;
    for dir in [&starttls_dir, &tls_dir] {
        let got = wait(&collector, 20, "the ticket e-mail over TLS", || {
            mails(dir).into_iter().next()
        });
        assert!(
            got["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("[vigie:{id}]"))),
            "{got:#}"
        );
    }
    // Without the private CA the server is not trusted: nothing sent, retried, said why.
    let refused = wait(&collector, 20, "the untrusted server reported", || {
        tickets(&collector)
            .into_iter()
            .find(|t| t["sink"] == "sans-ca" && t["state"] == "retrying")
    });
    assert!(refused["ticket_id"].is_null(), "{refused:#}");
    assert!(
        refused["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("UnknownIssuer")),
        "{refused:#}"
    );
    assert_eq!(
        mails(&starttls_dir).len(),
        1,
        "only the trusted sink delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glpi_ticket_in_the_clinic_entity_followed_up_and_solved() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("glpi.json");
    let port = free_port();
    // Each GLPI session expires after one API call: solving (a follow-up, then the status)
    // meets an expired session and must open a new one.
    let _glpi = glpi_mock(port, &state, &["--session-requests", "1"]);
    let sinks = glpi_sink("glpi", port, "app-token-vigie", 5)
        + &glpi_sink("glpi-mauvais-jeton", port, "pas-le-bon", 5);
    let (_dir, collector) = collector(&sinks);
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (_a1, id1) = failed_backup(&collector, &cmp1).await;
    let (_a3, id3) = failed_backup(&collector, &cmp3).await;

    let glpi = wait(&collector, 20, "two GLPI tickets", || {
        let s = glpi_state(&state);
        (s["tickets"].as_object().map_or(0, |t| t.len()) >= 2).then_some(s)
    });
    let tickets_in_glpi = glpi["tickets"].as_object().expect("tickets");
    assert_eq!(tickets_in_glpi.len(), 2, "{glpi:#}");
    let find = |id: u64| {
        tickets_in_glpi
            .values()
            .find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("[vigie:{id}]")))
            })
            .unwrap_or_else(|| panic!("no GLPI ticket for alert {id}: {glpi:#}"))
            .clone()
    };
    let (t1, t3) = (find(id1), find(id3));
    assert_eq!(t3["entities_id"], 7, "mapped by clinic name");
    assert_eq!(t1["entities_id"], 1, "default entity");
    assert_eq!(
        (t3["priority"].as_u64(), t1["priority"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(t3["type"], 1);
    assert!(
        t3["content"]
            .as_str()
            .is_some_and(|c| c.contains("Réponse attendue avant"))
    );
    let s = glpi_state(&state);
    assert!(
        s["sessions_killed"].as_u64() >= Some(1),
        "sessions end: {s:#}"
    );
    // The sink with a wrong App-Token is refused by GLPI and keeps retrying.
    assert!(
        s["rejected"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "ERROR_WRONG_APP_TOKEN_PARAMETER")),
        "{s:#}"
    );
    let bad = wait(&collector, 10, "the wrong token reported", || {
        tickets(&collector).into_iter().find(|t| {
            t["sink"] == "glpi-mauvais-jeton"
                && t["state"] == "retrying"
                && t["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("ERROR_WRONG_APP_TOKEN_PARAMETER"))
        })
    });
    assert!(bad["ticket_id"].is_null());

    // Acknowledged in Vigie → follow-up; resolved → follow-up and status 5 (solved).
    let id = id3.to_string();
    collector
        .admin(&[
            "alerts",
            "ack",
            &id,
            "--note",
            "je regarde",
            "--by",
            "marie",
        ])
        .ok();
    collector
        .admin(&[
            "alerts",
            "resolve",
            &id,
            "--note",
            "NAS relancé",
            "--by",
            "marie",
        ])
        .ok();
    let solved = wait(&collector, 20, "the GLPI ticket solved", || {
        let t = find_in(&glpi_state(&state), id3);
        (t["status"] == 5).then_some(t)
    });
    let followups = solved["followups"].as_array().expect("followups");
    assert_eq!(followups.len(), 2, "{solved:#}");
    assert!(
        followups[0]
            .as_str()
            .is_some_and(|f| f.contains("marie") && f.contains("je regarde"))
    );
    assert!(followups[1].as_str().is_some_and(|f| f.contains("résolue")));
    let s = glpi_state(&state);
    assert!(
        s["rejected"]
            .as_array()
            .is_some_and(|r| r.iter().any(|c| c == "ERROR_SESSION_TOKEN_INVALID")),
        "an expired session was met and replaced: {s:#}"
    );
    let mine = wait(&collector, 10, "the escalation solved", || {
        tickets(&collector)
            .into_iter()
            .find(|t| t["alert_id"] == id3 && t["sink"] == "glpi" && t["state"] == "solved")
    });
    assert_eq!(mine["ticket_id"], solved["id"].to_string());
}

fn find_in(state: &Value, alert: u64) -> Value {
    state["tickets"]
        .as_object()
        .and_then(|t| {
            t.values().find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("[vigie:{alert}]")))
            })
        })
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_then_recovery_creates_each_ticket_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = tmp.path().join("webhook.jsonl");
    let port = free_port();
    // The receiver is down when the alerts happen.
    let (_dir, mut collector) = collector(&webhook_sink("astreinte", port));
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (_a1, id1) = failed_backup(&collector, &cmp1).await;
    let (_a3, id3) = failed_backup(&collector, &cmp3).await;
    wait(&collector, 20, "both escalations retrying", || {
        let all = tickets(&collector);
        let retrying = all
            .iter()
            .filter(|t| t["state"] == "retrying" && t["attempts"].as_u64() >= Some(2))
            .count();
        (retrying == 2).then_some(())
    });
    // A restart during the outage keeps the queue.
    assert!(collector.stop().success(), "{}", collector.log());
    collector.serve();
    let _receiver = webhook_receiver(port, &record);
    wait(
        &collector,
        30,
        "tickets created once the sink is back",
        || {
            let all = tickets(&collector);
            all.iter()
                .all(|t| t["state"] == "open" && t["ticket_id"].is_string())
                .then_some(())
                .filter(|()| all.len() == 2)
        },
    );
    // Some time for a duplicate to show up, if there were one.
    std::thread::sleep(Duration::from_secs(3));
    let creates: Vec<Value> = records(&record)
        .into_iter()
        .filter(|r| r["event"] == "ticket.create")
        .collect();
    assert_eq!(creates.len(), 2, "one create per alert: {creates:#?}");
    for id in [id1, id3] {
        assert_eq!(
            creates
                .iter()
                .filter(|c| c["delivery"] == format!("vigie-{id}"))
                .count(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_create_still_makes_one_ticket() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("glpi.json");
    let port = free_port();
    // GLPI stores the ticket, then takes 4 s to answer: the collector dies in between.
    let _glpi = glpi_mock(port, &state, &["--create-delay", "4"]);
    let (_dir, mut collector) = collector(&glpi_sink("glpi", port, "app-token-vigie", 30));
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (_agent, id) = failed_backup(&collector, &cmp3).await;
    wait(&collector, 20, "the create reaching GLPI", || {
        (!find_in(&glpi_state(&state), id).is_null()).then_some(())
    });
    collector.kill9();
    collector.serve();
    let mine = wait(&collector, 30, "the ticket found again by its tag", || {
        tickets(&collector)
            .into_iter()
            .find(|t| t["alert_id"] == id && t["state"] == "open")
    });
    let s = glpi_state(&state);
    assert_eq!(s["tickets"].as_object().map(|t| t.len()), Some(1), "{s:#}");
    assert!(s["searches"].as_u64() >= Some(1), "looked up by tag: {s:#}");
    assert_eq!(mine["ticket_id"], "1");
    // The create timed out client-side too? Either way: still one ticket after a while.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        glpi_state(&state)["tickets"].as_object().map(|t| t.len()),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_times_out_is_looked_up_not_repeated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("glpi.json");
    let port = free_port();
    // GLPI stores the ticket but answers after 3 s; the sink gives up after 1 s.
    let _glpi = glpi_mock(port, &state, &["--create-delay", "3"]);
    let (_dir, collector) = collector(&glpi_sink("glpi", port, "app-token-vigie", 1));
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let (_agent, id) = failed_backup(&collector, &cmp1).await;
    let mine = wait(&collector, 30, "the ticket found by its tag", || {
        tickets(&collector)
            .into_iter()
            .find(|t| t["alert_id"] == id && t["state"] == "open")
    });
    assert_eq!(mine["ticket_id"], "1");
    assert!(
        collector.log().contains("ticket found by its tag"),
        "{}",
        collector.log()
    );
    let s = glpi_state(&state);
    assert_eq!(s["tickets"].as_object().map(|t| t.len()), Some(1), "{s:#}");
}

/// A create the sink never received (it was down) is cancelled when its alert ends first:
/// after a CMP3 → CMP1 downgrade, no ticket for a category the clinic no longer pays for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_never_delivered_is_cancelled_when_its_alert_ends() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let record = tmp.path().join("webhook.jsonl");
    let port = free_port();
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    vigie_tests::edit_collector_toml(
        &collector.data_dir,
        &[("down_after_minutes = 10", "down_after_minutes = 0")],
    );
    let path = collector.data_dir.join("collector.toml");
    let mut text = std::fs::read_to_string(&path).expect("collector.toml");
    text.push_str(
        "\n[escalation]\ntick_seconds = 1\nretry_first_seconds = 1\nretry_max_seconds = 2\n",
    );
    text.push_str(&webhook_sink("astreinte", port));
    std::fs::write(&path, text).expect("write collector.toml");
    collector.serve();
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let (agent, _) = Agent::enrolled(&collector, &cmp3, "server");
    let down = vigie_tests::alerts::lan_report("pacs", "pacs", vigie_proto::v1::DeviceState::Down);
    send_as(&collector, &agent, vec![down]).await;
    wait(&collector, 30, "the PACS ticket retrying", || {
        tickets(&collector)
            .iter()
            .any(|t| t["state"] == "retrying" && t["attempts"].as_u64() >= Some(2))
            .then_some(())
    });
    collector.admin(&["clinic", "set-tier", &cmp3, "cmp1"]).ok();
    wait(&collector, 20, "the undelivered create cancelled", || {
        let all = tickets(&collector);
        (!all.is_empty() && all.iter().all(|t| t["state"] == "cancelled")).then_some(())
    });
    // The ticket system comes back: nothing is owed to it.
    let _receiver = webhook_receiver(port, &record);
    std::thread::sleep(Duration::from_secs(4));
    let sent = records(&record);
    assert!(
        sent.is_empty(),
        "nothing sent after the downgrade: {sent:#?}"
    );
}

/// Secrets kept out of `collector.toml`: the GLPI App-Token in a file named by the config,
/// the user token in `serve`'s environment, the webhook key as a systemd credential
/// (`$CREDENTIALS_DIRECTORY/...`). The peers check every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_and_the_environment_reach_the_sinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (glpi_port, hook_port) = (free_port(), free_port());
    let _glpi = glpi_mock(glpi_port, &tmp.path().join("glpi.json"), &[]);
    let record = tmp.path().join("webhook.jsonl");
    let _hook = webhook_receiver(hook_port, &record);
    let private = |path: &Path, text: &str| {
        std::fs::write(path, text).expect("write secret");
        let chmod = Command::new("chmod").arg("600").arg(path).status();
        assert!(chmod.expect("chmod").success());
    };
    let app_token = tmp.path().join("glpi-app-token");
    private(&app_token, "app-token-vigie\n");
    let credentials = tmp.path().join("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    private(&credentials.join("webhook-secret"), SECRET);

    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    collector.append_config(&format!(
        "[[escalation.sinks]]\nname = \"glpi\"\ntype = \"glpi\"\n\
         url = \"http://127.0.0.1:{glpi_port}/apirest.php\"\n\
         app_token_file = \"{}\"\nuser_token_env = \"VIGIE_GLPI_USER_TOKEN\"\n\
         [[escalation.sinks]]\nname = \"astreinte\"\ntype = \"webhook\"\n\
         url = \"http://127.0.0.1:{hook_port}/hooks/vigie\"\n\
         secret_file = \"$CREDENTIALS_DIRECTORY/webhook-secret\"\n",
        app_token.display()
    ));
    // Without its environment, `serve` names what is missing instead of sending nothing.
    let refused = collector.serve_refused();
    assert!(
        refused.contains("VIGIE_GLPI_USER_TOKEN") && refused.contains("CREDENTIALS_DIRECTORY"),
        "{refused}"
    );
    collector.serve_env = vec![
        ("VIGIE_GLPI_USER_TOKEN".into(), "user-token-vigie".into()),
        (
            "CREDENTIALS_DIRECTORY".into(),
            credentials.to_string_lossy().into_owned(),
        ),
    ];
    collector.serve();
    let glpi = collector
        .admin(&["escalation", "test", "--sink", "glpi"])
        .ok();
    assert!(!glpi.stdout.trim().is_empty(), "a GLPI ticket id: {glpi:?}");
    let hook = collector
        .admin(&["escalation", "test", "--sink", "astreinte"])
        .ok();
    assert!(hook.stdout.trim().starts_with("WH-"), "{}", hook.stdout);
    let signed = records(&record);
    assert!(
        !signed.is_empty() && signed.iter().all(|r| r["signature_valid"] == true),
        "the webhook was signed with the secret: {signed:#?}"
    );
    let config =
        std::fs::read_to_string(collector.data_dir.join("collector.toml")).expect("collector.toml");
    assert!(!config.contains("user-token-vigie") && !config.contains(SECRET));
}
