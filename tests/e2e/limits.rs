//! Malformed and oversized messages get an error status; everyone else is still served.

use vigie_tests::grpc::{self, ClientCert};
use vigie_tests::{Agent, Collector};

#[tokio::test]
async fn bad_messages_get_a_status_and_the_collector_keeps_serving() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet F", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    let (bystander, bystander_id) = Agent::enrolled(&collector, &clinic, "server");
    let cert = ClientCert::of_agent(&agent);
    let ca = collector.ca_pem();
    let connect = || grpc::connect(collector.agent_addr, &ca, Some(&cert));

    // Not protobuf at all.
    let status = grpc::send_raw(connect().await.expect("connect"), vec![0xff; 64])
        .await
        .expect_err("garbage is refused");
    // The client's fault, said as such (not `Internal`).
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("malformed"), "{status:?}");

    // Over the explicit size limit (4 MiB).
    let mut big = grpc::snapshot_report(uuid::Uuid::now_v7(), "big");
    if let Some(vigie_proto::v1::report::Payload::SystemSnapshot(s)) = big.payload.as_mut() {
        s.os_name = "x".repeat(vigie_proto::MAX_MESSAGE_BYTES + 1024);
    }
    let status = grpc::send_batch(connect().await.expect("connect"), grpc::batch(vec![big]))
        .await
        .expect_err("oversized is refused");
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "{status:?}"
    );

    // Too many reports in one batch.
    let many = (0..=vigie_proto::MAX_REPORTS_PER_BATCH)
        .map(|_| grpc::snapshot_report(uuid::Uuid::now_v7(), "many"))
        .collect();
    let status = grpc::send_batch(connect().await.expect("connect"), grpc::batch(many))
        .await
        .expect_err("too many reports");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // Reports that can never be valid are rejected one by one, the good ones stored.
    let good = grpc::snapshot_report(uuid::Uuid::now_v7(), "good");
    let mut bad_id = grpc::snapshot_report(uuid::Uuid::now_v7(), "bad-id");
    bad_id.id = "not-a-uuid".into();
    let mut no_payload = grpc::snapshot_report(uuid::Uuid::now_v7(), "empty");
    no_payload.payload = None;
    let ack = grpc::send_batch(
        connect().await.expect("connect"),
        grpc::batch(vec![good.clone(), bad_id, no_payload.clone()]),
    )
    .await
    .expect("mixed batch answered");
    assert_eq!(ack.stored_ids, vec![good.id]);
    let rejected: Vec<_> = ack.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, vec!["not-a-uuid", no_payload.id.as_str()]);
    assert!(ack.rejected.iter().all(|r| !r.reason.is_empty()));
    assert_eq!(collector.reports_of(&agent_id), 1);

    // Everyone else is still served.
    assert_eq!(bystander.run_once().0, 1);
    assert_eq!(collector.reports_of(&bystander_id), 1);
}
