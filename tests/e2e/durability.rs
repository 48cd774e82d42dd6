//! Nothing is lost: collector down, collector killed, reports resent.

use vigie_tests::{Agent, Collector, copy_dir};

#[test]
fn backlog_is_delivered_exactly_once_after_an_outage() {
    let mut collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Saint-Leu", "cmp1");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");

    let status = collector.stop();
    assert!(status.success(), "clean shutdown on SIGTERM: {status}");
    for queued in 1..=3 {
        let (sent, now_queued, run) = agent.run_once();
        assert_eq!((sent, now_queued), (0, queued));
        assert!(!run.stderr.is_empty(), "says why nothing was sent");
    }
    // Keep a copy of the outbox to replay the same report ids later.
    let replay = agent.state_dir.with_extension("replay");
    copy_dir(&agent.state_dir, &replay).expect("copy state");

    collector.serve();
    let (sent, queued, _) = agent.run_once();
    assert_eq!((sent, queued), (4, 0));
    assert_eq!(collector.reports_of(&agent_id), 4);

    // Forced resend of the three queued ids: acknowledged, stored once.
    std::fs::remove_dir_all(&agent.state_dir).expect("remove");
    copy_dir(&replay, &agent.state_dir).expect("restore");
    let (sent, queued, _) = agent.run_once();
    assert_eq!((sent, queued), (4, 0), "3 resent + 1 new, all acknowledged");
    assert_eq!(
        collector.reports_of(&agent_id),
        5,
        "only the new one is stored"
    );
}

#[test]
fn acknowledged_reports_survive_kill_9() {
    let mut collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Cilaos", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    let mut acknowledged = 0;
    for _ in 0..3 {
        let (sent, queued, _) = agent.run_once();
        assert_eq!(queued, 0);
        acknowledged += sent;
        // SIGKILL right after the acknowledgement: no shutdown flush.
        collector.kill9();
        collector.serve();
        assert_eq!(collector.reports_of(&agent_id), acknowledged);
    }
    assert_eq!(acknowledged, 3);
}
