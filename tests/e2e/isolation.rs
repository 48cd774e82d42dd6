//! An agent writes only as itself: identity is the certificate, never a message field.

use vigie_tests::grpc::{self, ClientCert};
use vigie_tests::{Agent, Collector};

#[tokio::test]
async fn agent_of_one_clinic_cannot_write_for_another() {
    let collector = Collector::start();
    let clinic_a = collector.add_clinic("Cabinet A", "cmp1");
    let clinic_b = collector.add_clinic("Cabinet B", "cmp3");
    let (agent_a, id_a) = Agent::enrolled(&collector, &clinic_a, "workstation");
    let (agent_b, id_b) = Agent::enrolled(&collector, &clinic_b, "server");
    assert_eq!(agent_b.run_once().0, 1);

    let cert_a = ClientCert::of_agent(&agent_a);
    let cert_b = ClientCert::of_agent(&agent_b);
    let ca = collector.ca_pem();

    // B stores a report; A then sends a report with the same id claiming to be B's host.
    let shared_id = uuid::Uuid::now_v7();
    let channel_b = grpc::connect(collector.agent_addr, &ca, Some(&cert_b))
        .await
        .expect("B connects");
    grpc::send_batch(
        channel_b,
        grpc::batch(vec![grpc::snapshot_report(shared_id, "host-b")]),
    )
    .await
    .expect("B reports");
    let channel_a = grpc::connect(collector.agent_addr, &ca, Some(&cert_a))
        .await
        .expect("A connects");
    let ack = grpc::send_batch(
        channel_a.clone(),
        grpc::batch(vec![grpc::snapshot_report(shared_id, "pretending-to-be-b")]),
    )
    .await
    .expect("A reports as itself");
    assert_eq!(ack.stored_ids, vec![shared_id.to_string()]);

    assert_eq!(collector.reports_of(&id_b), 2, "B has its own two reports");
    assert_eq!(collector.reports_of(&id_a), 1, "A's report went to A");
    let b = collector.agent(&id_b);
    assert_eq!(b["clinic_id"], clinic_b.as_str());
    assert_eq!(b["hostname"], "host-b");
    let a = collector.agent(&id_a);
    assert_eq!(a["clinic_id"], clinic_a.as_str());
    assert_eq!(a["hostname"], "pretending-to-be-b");

    // An agent certificate opens nothing on the admin interface either.
    let admin = grpc::connect(collector.admin_addr, &ca, Some(&cert_a)).await;
    if let Ok(channel) = admin {
        let status = vigie_proto::v1::admin_client::AdminClient::new(channel)
            .list_agents(vigie_proto::v1::ListAgentsRequest::default())
            .await
            .expect_err("agents are not admins");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    }
}
