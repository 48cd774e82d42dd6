//! The whole chain with real agents: a failed backup written into each agent's spool and a LAN
//! device on a closed loopback port, collected by `vigie-agent run --once`, judged by the
//! collector per tier: backup alerts for CMP1 and CMP3, the preventive LAN alert for CMP3
//! only, nothing for CMP0.

use vigie_tests::alerts::{alerts, of, wait_for_alerts};
use vigie_tests::{Agent, Collector, free_port};

#[test]
fn real_agents_alert_according_to_their_clinic_tier() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    let toml = collector.data_dir.join("collector.toml");
    let text = std::fs::read_to_string(&toml).expect("collector.toml");
    std::fs::write(
        &toml,
        text.replace("down_after_minutes = 10", "down_after_minutes = 0"),
    )
    .expect("write collector.toml");
    collector.serve();

    // Nothing listens there: the port was free a moment ago and only loopback is probed.
    let closed = free_port();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[updates]
enabled = false
[antivirus]
enabled = false
[software]
enabled = false
[[backup.jobs]]
name = "nightly-nas"
every = "24h"
[lan]
probe_timeout = "2s"
[[lan.targets]]
name = "pacs-salle-2"
kind = "pacs"
address = "127.0.0.1"
probes = [{{ type = "tcp", port = {closed} }}]
"#
        ),
    )
    .expect("agent config");
    let config = config.to_string_lossy().into_owned();

    let mut clinics = Vec::new();
    for tier in ["cmp0", "cmp1", "cmp3"] {
        let clinic = collector.add_clinic(&format!("Cabinet {tier}"), tier);
        let (agent, _) = Agent::enrolled(&collector, &clinic, "server");
        agent
            .cmd(&[
                "backup-result",
                "--job",
                "nightly-nas",
                "--status",
                "failed",
                "--message",
                "NAS injoignable",
            ])
            .ok();
        let run = agent.cmd(&["run", "--once", "--config", &config]).ok();
        assert!(run.stdout.contains("queued 0"), "{}", run.stdout);
        clinics.push((tier, clinic, agent));
    }

    let got = wait_for_alerts(&collector, |a| {
        !of(a, &clinics[2].1, "lan_device_down").is_empty()
            && !of(a, &clinics[1].1, "backup_failed").is_empty()
            && !of(a, &clinics[2].1, "backup_failed").is_empty()
    });
    for (tier, clinic, _) in &clinics {
        let backup = of(&got, clinic, "backup_failed");
        let lan = of(&got, clinic, "lan_device_down");
        match *tier {
            "cmp0" => {
                let all: Vec<_> = got
                    .iter()
                    .filter(|a| a["clinic_id"] == clinic.as_str())
                    .collect();
                assert!(all.is_empty(), "CMP0 never alerts: {all:#?}");
            }
            "cmp1" => {
                assert_eq!(backup.len(), 1, "{got:#?}");
                assert!(lan.is_empty(), "LAN supervision is preventive: {lan:#?}");
            }
            _ => {
                assert_eq!(backup.len(), 1, "{got:#?}");
                assert_eq!(lan.len(), 1, "{got:#?}");
                assert_eq!(lan[0]["device"], "pacs-salle-2");
                assert_eq!(lan[0]["category"], "preventive");
            }
        }
    }
    // A second collection of the same facts opens nothing new.
    for (_, _, agent) in &clinics {
        agent.cmd(&["run", "--once", "--config", &config]).ok();
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let again = alerts(&collector, &[]);
    for (tier, clinic, _) in &clinics[1..] {
        assert_eq!(
            of(&again, clinic, "backup_failed").len(),
            1,
            "{tier}: {again:#?}"
        );
    }
}
