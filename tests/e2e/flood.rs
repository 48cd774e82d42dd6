//! Clients without a certificate cannot exhaust the collector: a real `serve` with 256 file
//! descriptors (`ulimit -n`) flooded from loopback by idle TLS connections, TCP connections
//! that never start TLS, `Enroll` bodies announced at 4 MiB and never finished, and slow
//! small ones, while an enrolled agent keeps reporting over fresh connections and a real
//! `vigie-agent run` starts in the middle of it. Idle strangers are closed after the timeout,
//! memory and descriptors stay bounded.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vigie_domain::token::EnrollmentToken;
use vigie_proto::v1;
use vigie_tests::grpc::{self, ClientCert};
use vigie_tests::stranger::{self, held_until_closed};
use vigie_tests::{Agent, Collector, QUIET_CHECKS, bin};

const FLOOD: Duration = Duration::from_secs(12);
/// Timeouts configured for the test (the defaults are 10 s, 10 s and 60 s).
const HANDSHAKE_TIMEOUT: u64 = 2;
const IDLE_TIMEOUT: u64 = 2;
const LIFETIME: u64 = 5;
/// Longer than any timeout: a connection still open after this was never going to be closed.
const NEVER: Duration = Duration::from_secs(20);
const ANNOUNCED: u32 = 4 * 1024 * 1024;

/// A child process killed when the test ends, panicking or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Default)]
struct Seen {
    idle_tls: Vec<Duration>,
    silent_tcp: Vec<Duration>,
    big_enroll: Vec<Result<String, String>>,
    slow_enroll: Vec<(Duration, Result<String, String>)>,
}

fn limited(collector: &Collector) {
    collector.set_config(
        "tls_handshake_timeout_seconds",
        &HANDSHAKE_TIMEOUT.to_string(),
    );
    collector.set_config(
        "unauthenticated_idle_timeout_seconds",
        &IDLE_TIMEOUT.to_string(),
    );
    collector.set_config(
        "unauthenticated_max_lifetime_seconds",
        &LIFETIME.to_string(),
    );
}

/// Sends one snapshot over a new connection with the agent's certificate, retrying briefly as
/// an agent does; how long until it was stored.
async fn report_over_new_connection(collector: &Collector, cert: &ClientCert) -> Duration {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(8) {
        match grpc::connect(collector.agent_addr, &collector.ca_pem(), Some(cert)).await {
            Ok(channel) => {
                let id = uuid::Uuid::now_v7();
                let batch = grpc::batch(vec![grpc::snapshot_report(id, "pc-accueil")]);
                match grpc::send_batch(channel, batch).await {
                    Ok(ack) if ack.stored_ids == [id.to_string()] => return start.elapsed(),
                    Ok(ack) => last = format!("{ack:?}"),
                    Err(status) => last = grpc::describe(&status),
                }
            }
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("a report of the enrolled agent was not stored in 8 s: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_without_certificate_cannot_starve_an_agent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    limited(&collector);
    collector.serve_fd_limit = Some(256);
    collector.serve();
    let pid = collector.pid();
    let clinic = collector.add_clinic("Cabinet des Avirons", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let cert = ClientCert::of_agent(&agent);
    let (late, late_id) = Agent::enrolled(&collector, &clinic, "server");
    report_over_new_connection(&collector, &cert).await;
    let rss_before = stranger::rss_kib(pid).expect("VmRSS");
    let fds_before = stranger::open_fds(pid).expect("fds");

    let addr = collector.agent_addr;
    let ca = collector.ca_pem();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let until = Instant::now() + FLOOD;
    let mut flood = JoinSet::new();
    for _ in 0..250 {
        let (ca, seen) = (ca.clone(), seen.clone());
        flood.spawn(async move {
            // The Enroll attackers below go first and take the burst of admissions.
            tokio::time::sleep(Duration::from_secs(1)).await;
            while Instant::now() < until {
                if let Ok(tls) = stranger::tls_without_certificate(addr, &ca).await {
                    let held = tokio::time::timeout(NEVER, held_until_closed(tls)).await;
                    seen.lock()
                        .expect("lock")
                        .idle_tls
                        .push(held.unwrap_or(NEVER));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    // From another source address: the handshake budget of 127.0.0.1 stays its own.
    let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    for _ in 0..80 {
        let seen = seen.clone();
        flood.spawn(async move {
            while Instant::now() < until {
                if let Ok(tcp) = stranger::silent_tcp(elsewhere, addr).await {
                    let held = tokio::time::timeout(NEVER, held_until_closed(tcp)).await;
                    seen.lock()
                        .expect("lock")
                        .silent_tcp
                        .push(held.unwrap_or(NEVER));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    for i in 0..60 {
        let (ca, seen) = (ca.clone(), seen.clone());
        // Two in three announce 4 MiB and send almost all of it; the others announce 12 KiB
        // (under the Enroll limit) and stop after 4 KiB.
        let (announced, sent) = if i % 3 == 0 {
            (12 * 1024, 4 * 1024)
        } else {
            (ANNOUNCED, ANNOUNCED as usize - 64 * 1024)
        };
        flood.spawn(async move {
            while Instant::now() < until {
                if let Ok(channel) = grpc::connect(addr, &ca, None).await {
                    let start = Instant::now();
                    let outcome = tokio::time::timeout(
                        NEVER,
                        stranger::unfinished_enroll(channel, announced, sent),
                    )
                    .await
                    .unwrap_or_else(|_| Err("still open".into()));
                    let mut seen = seen.lock().expect("lock");
                    if announced == ANNOUNCED {
                        seen.big_enroll.push(outcome);
                    } else {
                        seen.slow_enroll.push((start.elapsed(), outcome));
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    // During the flood: the enrolled agent reports over fresh connections, a real agent starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let config = tmp.path().join("late.toml");
    std::fs::write(
        &config,
        format!("[sender]\nbackoff_initial = \"200ms\"\nbackoff_max = \"1s\"\n{QUIET_CHECKS}"),
    )
    .expect("config");
    let run = std::process::Command::new(bin("vigie-agent"))
        .arg("run")
        .arg("--state-dir")
        .arg(&late.state_dir)
        .arg("--config")
        .arg(&config)
        .env("VIGIE_LOG", "warn")
        .spawn()
        .expect("vigie-agent run");
    let run = KillOnDrop(run);
    let mut latencies = Vec::new();
    let mut rss_max = rss_before;
    while Instant::now() < until {
        latencies.push(report_over_new_connection(&collector, &cert).await);
        rss_max = rss_max.max(stranger::rss_kib(pid).expect("collector alive"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let late_reports = collector.reports_of(&late_id);
    let fds_flood = stranger::open_fds(pid).expect("fds");
    while flood.join_next().await.is_some() {}
    drop(run);

    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "flood: {} idle TLS, {} silent TCP, {} big and {} slow Enroll; agent: {} reports, \
         slowest {slowest:?}; VmRSS {rss_before} -> max {rss_max} KiB; fds {fds_before} -> {fds_flood}",
        seen.idle_tls.len(),
        seen.silent_tcp.len(),
        seen.big_enroll.len(),
        seen.slow_enroll.len(),
        latencies.len(),
    );
    assert!(latencies.len() >= 5, "{latencies:?}");
    assert!(slowest < Duration::from_secs(5), "{latencies:?}");
    assert!(
        late_reports >= 1,
        "the agent started during the flood reported"
    );
    assert_eq!(collector.reports_of(&agent_id), 1 + latencies.len() as u64);

    let bound = |timeout: u64| Duration::from_secs(timeout) + Duration::from_millis(1500);
    let max = |held: &[Duration]| held.iter().max().copied().unwrap_or_default();
    // Idle strangers were admitted (some held ~ the idle timeout), and every one was closed.
    assert!(
        seen.idle_tls
            .iter()
            .any(|h| *h >= Duration::from_millis(1500)),
        "some idle TLS connections were admitted: {:?}",
        &seen.idle_tls[..seen.idle_tls.len().min(20)]
    );
    assert!(
        max(&seen.idle_tls) <= bound(IDLE_TIMEOUT),
        "{:?}",
        max(&seen.idle_tls)
    );
    assert!(!seen.silent_tcp.is_empty());
    assert!(
        max(&seen.silent_tcp) <= bound(HANDSHAKE_TIMEOUT),
        "{:?}",
        max(&seen.silent_tcp)
    );
    // 4 MiB Enroll bodies are refused from their length prefix (OutOfRange = 11) or shed.
    assert!(
        seen.big_enroll.iter().any(|o| o.as_deref() == Ok("11")),
        "{:?}",
        &seen.big_enroll[..seen.big_enroll.len().min(10)]
    );
    assert!(
        seen.big_enroll
            .iter()
            .all(|o| !matches!(o, Err(e) if e == "still open")),
        "{:?}",
        seen.big_enroll
    );
    for (held, outcome) in seen.slow_enroll.iter() {
        assert!(*held <= bound(LIFETIME), "{held:?} {outcome:?}");
    }
    assert!(
        rss_max < rss_before + 100 * 1024,
        "VmRSS grew from {rss_before} to {rss_max} KiB"
    );
    // Everything the strangers held is given back.
    tokio::time::sleep(Duration::from_secs(IDLE_TIMEOUT + 1)).await;
    let fds_after = stranger::open_fds(pid).expect("fds");
    assert!(
        fds_after <= fds_before + 8,
        "descriptors: {fds_before} before, {fds_after} after"
    );
    assert!(
        collector
            .log()
            .contains("connections closed before any request")
    );
}

/// `Enroll` from a client without a certificate: a message over 16 KiB is refused from its
/// length, a CSR is parsed only for a live token, and attempts are limited per address.
#[tokio::test]
async fn enroll_is_small_token_first_and_rate_limited() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet du Tampon", "cmp1");
    let mut token = EnrollmentToken::decode(&collector.token(&clinic, None)).expect("token");
    token.secret = "pas-un-vrai-jeton".into();
    let channel = grpc::connect(collector.agent_addr, &collector.ca_pem(), None)
        .await
        .expect("connect");
    let mut client = v1::enrollment_client::EnrollmentClient::new(channel)
        .max_encoding_message_size(64 * 1024 * 1024);
    let enroll = |csr: String| v1::EnrollRequest {
        token: token.encode(),
        csr_pem: csr,
        hostname: "intrus".into(),
        ..Default::default()
    };
    let big = client
        .enroll(enroll("x".repeat(20 * 1024)))
        .await
        .expect_err("20 KiB");
    assert_eq!(big.code(), tonic::Code::OutOfRange, "{big:?}");
    // Announced at 4 MiB, 1 MiB sent, never finished: refused from the length prefix alone.
    let unfinished = grpc::connect(collector.agent_addr, &collector.ca_pem(), None)
        .await
        .expect("connect");
    let outcome = stranger::unfinished_enroll(unfinished, ANNOUNCED, 1024 * 1024).await;
    assert_eq!(outcome.as_deref(), Ok("11"), "OutOfRange");
    // A garbage CSR with an unknown token: the token is what is refused.
    let unknown = client
        .enroll(enroll("pas un CSR".repeat(1000)))
        .await
        .expect_err("unknown token");
    assert_eq!(unknown.code(), tonic::Code::Unauthenticated, "{unknown:?}");
    let mut codes = Vec::new();
    for _ in 0..40 {
        let status = client
            .enroll(enroll("x".into()))
            .await
            .expect_err("refused");
        codes.push(status.code());
    }
    // 30 per minute by default; one spent above (the 20 KiB message never reached the
    // service), a token may refill while the test runs.
    assert!(
        codes[..28]
            .iter()
            .all(|c| *c == tonic::Code::Unauthenticated),
        "{codes:?}"
    );
    let limited = codes
        .iter()
        .filter(|c| **c == tonic::Code::ResourceExhausted)
        .count();
    assert!((9..=11).contains(&limited), "{codes:?}");
}
