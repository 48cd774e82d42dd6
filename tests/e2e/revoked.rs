//! A revoked agent: `run --once` fails loudly, `run` keeps running, says why and retries
//! slowly instead of hammering the collector or crash-looping.

use std::time::Duration;

use vigie_tests::faults::RunningAgent;
use vigie_tests::{Agent, Collector};

#[test]
fn revoked_agent_fails_once_and_run_retries_slowly() {
    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet de Sainte-Marie", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "workstation");
    assert_eq!(agent.run_once().0, 1);
    collector.admin(&["agent", "revoke", &agent_id]).ok();

    let (sent, queued, run) = agent.run_once_failing();
    assert_eq!((sent, queued), (0, 1), "the report stays in the outbox");
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);

    // Retries would come every 100-200 ms for an unreachable collector; a refusal waits
    // `refused_retry` (default 30 min).
    let config = agent.state_dir.with_extension("run.toml");
    std::fs::write(
        &config,
        "[updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n\
         [sender]\nbackoff_initial = \"100ms\"\nbackoff_max = \"200ms\"\n",
    )
    .expect("config");
    let mut running = RunningAgent::start(&agent, &config);
    running.wait_until("the refusal is logged", Duration::from_secs(15), || {
        running.log().contains("the collector refuses this agent")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(running.is_running(), "no crash loop:\n{}", running.log());
    let log = running.log();
    assert_eq!(
        log.matches("the collector refuses this agent").count(),
        1,
        "one attempt, then a long wait:\n{log}"
    );
    assert!(log.contains("ERROR"), "loud: {log}");
    let refused = collector
        .log()
        .matches("report refused: agent revoked")
        .count();
    assert_eq!(refused, 2, "one refusal for --once, one for run");
    assert!(running.stop().success());
}
