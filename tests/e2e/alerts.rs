//! Alerts end to end: three clinics, one per tier, one agent each. Backup failures alert for
//! CMP1 and CMP3 only, a LAN device down for CMP3 only; technicians acknowledge, resolve,
//! put clinics in maintenance and change tiers with the real admin commands.

use vigie_proto::v1::{BackupStatus, DeviceState};
use vigie_tests::alerts::{alerts, backup_report, lan_report, of, send_as, wait_for_alerts};
use vigie_tests::{Agent, Collector};

/// A collector whose LAN rule alerts as soon as a device is down.
fn collector() -> (tempfile::TempDir, Collector) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    let path = collector.data_dir.join("collector.toml");
    let text = std::fs::read_to_string(&path).expect("collector.toml");
    assert!(
        text.contains("[alerts.lan]"),
        "init writes the alert thresholds:\n{text}"
    );
    let text = text.replace("down_after_minutes = 10", "down_after_minutes = 0");
    std::fs::write(&path, text).expect("write collector.toml");
    collector.serve();
    (tmp, collector)
}

#[tokio::test]
async fn backup_and_lan_alerts_follow_the_tier() {
    let (_tmp, collector) = collector();
    let cmp0 = collector.add_clinic("Cabinet à la carte", "cmp0");
    let cmp1 = collector.add_clinic("Cabinet sauvegarde", "cmp1");
    let cmp3 = collector.add_clinic("Cabinet Prisme", "cmp3");
    let mut agents = Vec::new();
    for clinic in [&cmp0, &cmp1, &cmp3] {
        agents.push(Agent::enrolled(&collector, clinic, "workstation").0);
    }

    // A failed backup in each clinic.
    for agent in &agents {
        let report = backup_report("nightly-nas", BackupStatus::Failed, "NAS injoignable");
        send_as(&collector, agent, vec![report]).await;
    }
    let got = wait_for_alerts(&collector, |a| a.len() >= 2);
    assert_eq!(got.len(), 2, "{got:#?}");
    for (clinic, tier) in [(&cmp1, "cmp1"), (&cmp3, "cmp3")] {
        let backup = of(&got, clinic, "backup_failed");
        assert_eq!(backup.len(), 1, "{got:#?}");
        let a = backup[0];
        assert_eq!(a["tier"], tier);
        assert_eq!(a["category"], "backup");
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["state"], "open");
        assert_eq!(a["subject"], "nightly-nas");
        assert_eq!(a["count"], 1);
        assert_eq!(a["silenced"], false);
        assert!(
            a["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("Sauvegarde nightly-nas en échec depuis")),
            "{a}"
        );
        for key in ["id", "agent_id", "first_seen", "last_seen", "history"] {
            assert!(!a[key].is_null(), "{key} in {a}");
        }
    }
    assert!(of(&got, &cmp0, "backup_failed").is_empty());

    // The same failure reported again by a new run: one alert, count 2.
    let again = backup_report("nightly-nas", BackupStatus::Failed, "NAS injoignable");
    send_as(&collector, &agents[1], vec![again]).await;
    let got = wait_for_alerts(&collector, |a| {
        of(a, &cmp1, "backup_failed")
            .first()
            .is_some_and(|x| x["count"] == 2)
    });
    assert_eq!(got.len(), 2);

    // A PACS down: preventive, CMP3 only, critical.
    for agent in &agents {
        send_as(
            &collector,
            agent,
            vec![lan_report("pacs", "pacs", DeviceState::Down)],
        )
        .await;
    }
    let got = wait_for_alerts(&collector, |a| !of(a, &cmp3, "lan_device_down").is_empty());
    let lan = of(&got, &cmp3, "lan_device_down");
    assert_eq!(lan.len(), 1);
    assert_eq!(lan[0]["device"], "pacs");
    assert_eq!(lan[0]["category"], "preventive");
    assert_eq!(lan[0]["severity"], "critical");
    assert_eq!(got.len(), 3, "no LAN alert for CMP0 or CMP1: {got:#?}");

    // The technicians' table: French, most severe first, 80 columns.
    let table = collector.admin(&["alerts"]).ok().stdout;
    assert!(
        table.contains("Sauvegarde nightly-nas en échec depuis"),
        "{table}"
    );
    assert!(table.contains("pacs (pacs) injoignable"), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");

    // Acknowledge, then resolve, CMP1's backup alert.
    let id = of(&got, &cmp1, "backup_failed")[0]["id"].to_string();
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
    let acked = alerts(&collector, &["--clinic", &cmp1]);
    assert_eq!(acked[0]["state"], "acknowledged");
    let history = acked[0]["history"].as_array().expect("history");
    let last = history.last().expect("an entry");
    assert_eq!(last["action"], "acknowledged");
    assert_eq!(last["by"], "marie");
    assert_eq!(last["note"], "je regarde");
    collector
        .admin(&[
            "alerts",
            "resolve",
            &format!("#{id}"),
            "--note",
            "NAS relancé",
        ])
        .ok();
    assert!(alerts(&collector, &["--clinic", &cmp1]).is_empty());
    let all = alerts(&collector, &["--clinic", &cmp1, "--all"]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["state"], "resolved");
    let error = collector.admin(&["alerts", "ack", &id]).failed();
    assert!(error.contains("déjà résolue"), "{error}");
    let error = collector.admin(&["alerts", "ack", "999"]).failed();
    assert!(error.contains("alerte 999 introuvable"), "{error}");

    // A maintenance window on the CMP3 clinic, listed and removed.
    let added = collector
        .admin(&[
            "maintenance",
            "add",
            "--clinic",
            &cmp3,
            "--for",
            "2h",
            "--reason",
            "maintenance NAS",
        ])
        .ok();
    let window = added.stdout.trim().to_owned();
    assert!(
        added
            .stderr
            .contains(&format!("fenêtre de maintenance {window} jusqu'au")),
        "{}",
        added.stderr
    );
    let table = collector.admin(&["maintenance", "list"]).ok().stdout;
    assert!(
        table.starts_with("N°  PORTÉE")
            && table.lines().any(|l| l.starts_with(&format!("{window} "))
                && l.contains(&format!("cabinet {}…", &cmp3[..12]))
                && l.contains("maintenance NAS")),
        "{table}"
    );
    let got = wait_for_alerts(&collector, |a| {
        of(a, &cmp3, "backup_failed")[0]["silenced"] == true
    });
    assert_eq!(of(&got, &cmp3, "lan_device_down")[0]["silenced"], true);
    let table = collector.admin(&["alerts", "--clinic", &cmp3]).ok().stdout;
    assert!(table.contains("en maintenance"), "{table}");
    let removed = collector.admin(&["maintenance", "remove", &window]).ok();
    assert!(
        removed
            .stderr
            .contains(&format!("fenêtre de maintenance {window} terminée")),
        "{}",
        removed.stderr
    );
    assert_eq!(
        collector.admin(&["maintenance", "list"]).ok().stdout,
        "Aucune fenêtre de maintenance en cours.\n"
    );

    // Old scripts still say `silence`: a hidden alias of `maintenance`.
    let silence = collector
        .admin(&[
            "silence",
            "add",
            "--clinic",
            &cmp3,
            "--for",
            "2h",
            "--reason",
            "maintenance NAS",
        ])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let listed = collector.admin(&["silence", "list", "--json"]).ok().stdout;
    assert!(listed.contains("maintenance NAS"), "{listed}");
    let got = wait_for_alerts(&collector, |a| {
        of(a, &cmp3, "backup_failed")[0]["silenced"] == true
    });
    assert_eq!(of(&got, &cmp3, "lan_device_down")[0]["silenced"], true);
    collector.admin(&["silence", "remove", &silence]).ok();

    // CMP3 becomes CMP1: the preventive alert is resolved with that reason, backup stays.
    let out = collector
        .admin(&["clinic", "set-tier", &cmp3, "cmp1"])
        .ok()
        .stdout;
    assert!(out.contains("Alertes résolues"), "{out}");
    let left = alerts(&collector, &["--clinic", &cmp3]);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["rule"], "backup_failed");
    assert_eq!(left[0]["tier"], "cmp1");
    let resolved = alerts(&collector, &["--clinic", &cmp3, "--all"]);
    let lan = of(&resolved, &cmp3, "lan_device_down");
    let note = lan[0]["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history")["note"]
        .clone();
    assert_eq!(note, "contrat passé en CMP1 : catégorie non couverte");

    // A CMP1 clinic that buys LAN supervision: an override, then a new report alerts.
    let out = collector
        .admin(&["clinic", "rules", &cmp1, "--enable", "lan", "--json"])
        .ok()
        .stdout;
    assert!(out.contains("\"override\""), "{out}");
    send_as(
        &collector,
        &agents[1],
        vec![lan_report("pacs", "pacs", DeviceState::Down)],
    )
    .await;
    wait_for_alerts(&collector, |a| !of(a, &cmp1, "lan_device_down").is_empty());
    assert!(
        alerts(&collector, &["--clinic", &cmp0]).is_empty(),
        "CMP0 never alerts"
    );
}
