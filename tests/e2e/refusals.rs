//! Everything the collector must refuse, each with a clear message.

use vigie_domain::token::EnrollmentToken;
use vigie_tests::grpc::{self, ClientCert};
use vigie_tests::{Agent, Collector};

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let collector = Collector::start();
    let channel = grpc::connect(collector.agent_addr, &collector.ca_pem(), None)
        .await
        .expect("server-authenticated TLS connects");
    let report = grpc::snapshot_report(uuid::Uuid::now_v7(), "intrus");
    let status = grpc::send_batch(channel, grpc::batch(vec![report]))
        .await
        .expect_err("no certificate, no report");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("certificate"), "{status:?}");
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet A", "cmp1");
    let (_agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    // Same identity URI as the real agent, signed by a stranger.
    let forged = ClientCert::forged(&format!("urn:vigie:clinic:{clinic}:agent:{agent_id}"));
    let outcome =
        match grpc::connect(collector.agent_addr, &collector.ca_pem(), Some(&forged)).await {
            Err(e) => e,
            Ok(channel) => {
                let report = grpc::snapshot_report(uuid::Uuid::now_v7(), "forged");
                grpc::describe(
                    &grpc::send_batch(channel, grpc::batch(vec![report]))
                        .await
                        .expect_err("forged certificate"),
                )
            }
        };
    assert!(
        outcome.to_lowercase().contains("unknownca") || outcome.contains("UnknownCA"),
        "the TLS layer says the CA is unknown: {outcome}"
    );
    assert_eq!(collector.reports_of(&agent_id), 0);
}

#[test]
fn agent_with_foreign_certificate_keeps_its_reports_and_says_why() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet B", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let forged = ClientCert::forged(&format!("urn:vigie:clinic:{clinic}:agent:{agent_id}"));
    std::fs::write(agent.state_dir.join("agent.crt"), &forged.cert_pem).expect("write");
    std::fs::write(agent.state_dir.join("agent.key"), &forged.key_pem).expect("write");
    let (sent, queued, run) = agent.run_once_failing();
    assert_eq!((sent, queued), (0, 1));
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "says it is a certificate problem: {}",
        run.stderr
    );
}

#[test]
fn revoked_agent_is_refused_and_keeps_its_outbox() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet C", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    assert_eq!(agent.run_once().0, 1);
    let revoked = collector.admin(&["agent", "revoke", &agent_id]).ok();
    assert!(
        revoked
            .stderr
            .contains(&format!("agent {agent_id} révoqué")),
        "{}",
        revoked.stderr
    );
    let (sent, queued, run) = agent.run_once_failing();
    assert_eq!((sent, queued), (0, 1));
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    let listed = collector.agent(&agent_id);
    assert_eq!(listed["revoked"], true);
    assert_eq!(listed["reports"], 1);
    // Revoking an unknown agent is an error, not a silent success.
    let err = collector
        .admin(&["agent", "revoke", "0190aaaa-0000-7000-8000-000000000000"])
        .failed();
    assert!(
        err.contains("agent 0190aaaa-0000-7000-8000-000000000000 introuvable"),
        "{err}"
    );
}

#[test]
fn reused_expired_and_unknown_tokens_are_refused() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet D", "cmp1");

    let token = collector.token(&clinic, None);
    Agent::new().enroll(&token, "workstation").ok();
    let created = collector
        .admin(&["token", "create", "--clinic", &clinic])
        .ok();
    assert!(
        created.stderr.contains(&format!(
            "jeton d'inscription pour le cabinet {clinic}, à usage unique, valable jusqu'au "
        )) && created.stderr.contains("(heure de La Réunion)"),
        "{}",
        created.stderr
    );
    let err = Agent::new().enroll(&token, "workstation").failed();
    assert!(err.contains("already used"), "{err}");

    let short = collector.token(&clinic, Some("1s"));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let err = Agent::new().enroll(&short, "workstation").failed();
    assert!(err.contains("expired"), "{err}");

    let genuine = EnrollmentToken::decode(&token).expect("token decodes");
    let unknown = EnrollmentToken {
        secret: "bm90LWEtcmVhbC1zZWNyZXQtYXQtYWxs".into(),
        ..genuine
    };
    let err = Agent::new()
        .enroll(&unknown.encode(), "workstation")
        .failed();
    assert!(err.contains("unknown"), "{err}");

    let err = Agent::new().enroll("not-a-token", "workstation").failed();
    assert!(err.contains("token"), "{err}");

    let err = collector
        .admin(&["token", "create", "--clinic", "no-such-clinic"])
        .failed();
    assert!(err.contains("cabinet no-such-clinic introuvable"), "{err}");
}

#[test]
fn token_pinning_another_ca_is_refused_before_the_token_is_sent() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet E", "cmp3");
    let token = collector.token(&clinic, None);
    let genuine = EnrollmentToken::decode(&token).expect("token decodes");
    let wrong_pin = EnrollmentToken {
        ca_sha256: "0".repeat(64),
        ..genuine.clone()
    };
    let agent = Agent::new();
    let err = agent.enroll(&wrong_pin.encode(), "server").failed();
    assert!(err.contains("fingerprint"), "{err}");
    assert!(!agent.state_dir.join("agent.crt").exists());
    // The secret never reached the collector: the genuine token is still unused.
    Agent::new().enroll(&token, "server").ok();
}
