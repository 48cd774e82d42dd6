//! The month's figures on fixtures, with an injected `now`: November 2026 in Réunion time
//! (30 days, the 1st a Sunday).

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use vigie_domain::{AgentRole, Tier};

use super::figures::*;
use super::month::Month;
use crate::alerts::alert::{AlertState, HistoryEntry, Severity};
use crate::alerts::opening_hours::clinic_zone;
use crate::alerts::policy::Rule;
use crate::escalation::calendar::SupportCalendar;
use crate::escalation::policy::Priority;
use crate::escalation::policy::tests::{alert, clinic};
use crate::escalation::queue::{Escalation, EscalationState};
use crate::facts::{
    BackupRun, BackupStatus, DeclaredJob, DeclaredJobRecord, Device, DeviceRecord, DeviceState,
    RunKind,
};
use crate::model::AgentRecord;
use crate::storage::DeviceTransition;

/// Local Réunion time "2026-11-10 10:00" as an instant.
fn at(text: &str) -> Timestamp {
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", text)
        .expect("datetime")
        .to_zoned_datetime(clinic_zone())
        .expect("zoned")
        .timestamp()
}

fn november() -> Month {
    "2026-11".parse().expect("month")
}

fn agent(enrolled: &str) -> AgentRecord {
    AgentRecord {
        id: "a".into(),
        clinic_id: "c".into(),
        hostname: "SRV-CABINET".into(),
        os: "linux".into(),
        role: AgentRole::Server,
        agent_version: "0.1.0".into(),
        enrolled_at: at(enrolled),
        last_seen: Some(at("2026-11-30 23:00")),
        revoked: false,
        revoked_at: None,
        outbox_dropped_total: 0,
        outbox_health: Default::default(),
        snapshot: None,
        snapshot_collected_at: None,
        clock: None,
        config: Default::default(),
    }
}

fn run(job: &str, finished: &str, status: BackupStatus) -> BackupRun {
    BackupRun {
        job: job.into(),
        kind: RunKind::Backup,
        source: "restic".into(),
        status,
        started_at: None,
        finished_at: at(finished),
        bytes: None,
        files: None,
        target: String::new(),
        message: String::new(),
        cause: String::new(),
        code: None,
        failed_items: None,
    }
}

fn declared(name: &str, every: u64, days: &[u8], since: &str) -> DeclaredJobRecord {
    DeclaredJobRecord {
        job: DeclaredJob {
            name: name.into(),
            every_seconds: every,
            days_of_week: days.to_vec(),
            check_every_seconds: 7 * 86_400,
            last_check: None,
            last_good_check_at: Some(at("2026-11-22 03:00")),
        },
        first_declared_at: at(since),
        declared_at: at("2026-11-30 23:00"),
    }
}

/// A nightly job: success at 02:00 every day but a failure on the 10th, a warning on the
/// 15th and nothing on the 20th.
fn nightly_runs() -> Vec<BackupRun> {
    (1..=30)
        .filter(|d| *d != 20)
        .map(|d| {
            let status = match d {
                10 => BackupStatus::Failed,
                15 => BackupStatus::Warning,
                _ => BackupStatus::Success,
            };
            run("nas", &format!("2026-11-{d:02} 02:00"), status)
        })
        .collect()
}

fn machine(runs: Vec<BackupRun>, jobs: Vec<DeclaredJobRecord>) -> MachineInput {
    let mut by_job = BTreeMap::<String, Vec<BackupRun>>::new();
    for r in runs {
        by_job.entry(r.job.clone()).or_default().push(r);
    }
    MachineInput {
        agent: agent("2026-10-01 09:00"),
        declared: jobs,
        runs: by_job,
        os_updates: None,
        antivirus: None,
        software: None,
        devices: Vec::new(),
    }
}

fn input(tier: Tier, machines: Vec<MachineInput>) -> MonthInput {
    MonthInput {
        clinic: clinic(tier),
        machines,
        alerts: Vec::new(),
        escalations: Vec::new(),
    }
}

fn figures(input: &MonthInput, now: &str) -> MonthlyFigures {
    monthly_figures(input, november(), at(now), &ReportContext::default())
}

#[test]
fn backups_expected_seen_ratio_gap_and_strip() {
    let m = machine(
        nightly_runs(),
        vec![declared("nas", 86_400, &[], "2026-10-20 12:00")],
    );
    let f = figures(&input(Tier::Cmp1, vec![m]), "2026-12-01 07:00");
    let b = f.backups.expect("CMP1 has backups");
    let job = &b.jobs[0];
    assert_eq!(
        (
            job.runs_expected,
            job.runs_seen,
            job.successes,
            job.warnings,
            job.failures
        ),
        (Some(30), 29, 27, 1, 1)
    );
    assert_eq!(job.success_percent, Some(90));
    assert_eq!(b.success_percent, Some(90));
    // 9th 02:00 → 11th 02:00 (the 10th failed), and 19th → 21st (nothing on the 20th).
    assert_eq!(job.longest_without_success_seconds, 48 * 3600);
    assert_eq!(job.last_good_check_at, Some(at("2026-11-22 03:00")));
    assert_eq!(job.days.len(), 30);
    assert_eq!(job.days[9], DayMark::Failed);
    assert_eq!(job.days[14], DayMark::Warning);
    assert_eq!(job.days[19], DayMark::Missing);
    assert_eq!(
        job.days.iter().filter(|d| **d == DayMark::Success).count(),
        27
    );
    assert!(f.has_data);
    assert!(f.preventive.is_none(), "CMP1 has no preventive section");
}

#[test]
fn weekday_cadence_and_a_month_in_progress() {
    // Monday, Wednesday, Friday in November 2026: 5 + 4 + 4 days.
    let m = machine(
        vec![run("hebdo", "2026-11-02 21:00", BackupStatus::Success)],
        vec![declared("hebdo", 0, &[1, 3, 5], "2026-10-01 00:00")],
    );
    let f = figures(&input(Tier::Cmp3, vec![m.clone()]), "2026-12-01 07:00");
    let job = &f.backups.expect("backups").jobs[0];
    assert_eq!(job.runs_expected, Some(13));
    assert_eq!(job.cadence, "lun. mer. ven.");
    assert_eq!(job.days[0], DayMark::NotExpected, "a Sunday");
    assert_eq!(job.days[3], DayMark::Missing, "Wednesday the 4th");

    // On the 15th at noon: 14 whole days, the rest of the month still to come.
    let daily = machine(
        nightly_runs(),
        vec![declared("nas", 86_400, &[], "2026-10-20 12:00")],
    );
    let f = figures(&input(Tier::Cmp1, vec![daily]), "2026-11-15 12:00");
    let job = &f.backups.expect("backups").jobs[0];
    assert_eq!(job.runs_expected, Some(14));
    assert_eq!(job.days[15], DayMark::Future);
    assert_eq!(job.days[14], DayMark::Warning, "today so far");
}

#[test]
fn a_job_declared_mid_month_is_expected_from_then_and_undeclared_ones_are_listed() {
    let m = machine(
        vec![
            run("nas", "2026-11-21 02:00", BackupStatus::Success),
            run("usb", "2026-11-05 18:00", BackupStatus::Failed),
        ],
        vec![declared("nas", 86_400, &[], "2026-11-20 12:00")],
    );
    let f = figures(&input(Tier::Cmp1, vec![m]), "2026-12-01 07:00");
    let b = f.backups.expect("backups");
    let nas = &b.jobs[0];
    // From the 20th 12:00 to the 1st 00:00: 10.5 days.
    assert_eq!(nas.runs_expected, Some(10));
    assert_eq!(nas.days[18], DayMark::NotExpected, "before it was declared");
    let usb = &b.jobs[1];
    assert_eq!(
        (usb.declared, usb.runs_expected, usb.failures),
        (false, None, 1)
    );
    assert_eq!(usb.cadence, "non déclarée");
}

#[test]
fn lan_availability_over_the_month_imaging_first() {
    let dev = |name: &str, kind: &str| DeviceRecord {
        device: Device {
            name: name.into(),
            kind: kind.into(),
            address: "10.0.0.9".into(),
            state: DeviceState::Up,
            error: String::new(),
            supplies: vec![],
            ups: None,
        },
        reported_at: at("2026-11-30 23:00"),
        down_since: None,
    };
    let t = |when: &str, state| DeviceTransition {
        at: at(when),
        state,
    };
    let mut m = machine(vec![], vec![]);
    m.devices = vec![
        DeviceInput {
            name: "imprimante".into(),
            current: Some(dev("imprimante", "printer")),
            transitions: vec![t("2026-10-01 08:00", DeviceState::Up)],
        },
        DeviceInput {
            name: "scanner".into(),
            current: Some(dev("scanner", "imaging-modality")),
            transitions: vec![
                t("2026-10-01 08:00", DeviceState::Up),
                t("2026-11-10 10:00", DeviceState::Down),
                t("2026-11-10 16:00", DeviceState::Up),
            ],
        },
        DeviceInput {
            name: "nouveau".into(),
            current: Some(dev("nouveau", "nas")),
            transitions: vec![],
        },
    ];
    let f = figures(&input(Tier::Cmp3, vec![m]), "2026-12-01 07:00");
    let p = f.preventive.expect("CMP3 has preventive");
    let names: Vec<&str> = p.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["scanner", "nouveau", "imprimante"]);
    let scanner = &p.devices[0];
    assert_eq!(scanner.down_seconds, 6 * 3600);
    assert_eq!(scanner.outages, 1);
    assert_eq!(scanner.observed_seconds, 30 * 86_400);
    assert_eq!(scanner.availability_percent, Some(99.2));
    assert_eq!(p.devices[1].availability_percent, None, "no history");
    assert_eq!(p.devices[2].availability_percent, Some(100.0));
}

fn escalation(
    id: u64,
    opened: &str,
    responded: Option<(&str, &str)>,
) -> (Escalation, crate::alerts::alert::Alert) {
    let mut a = alert(Rule::BackupFailed, Severity::Critical);
    a.id = id;
    a.first_seen = at(opened);
    if let Some((action, when)) = responded {
        a.history.push(HistoryEntry {
            at: at(when),
            action: action.into(),
            by: "tech".into(),
            note: String::new(),
        });
        if action == "resolved" {
            a.state = AlertState::Resolved;
            a.resolved_at = Some(at(when));
        }
    }
    let opened_at = at(opened);
    let (due, _) = crate::escalation::policy::Policy::new(Default::default())
        .response_due(Tier::Cmp3, opened_at);
    let e = Escalation {
        alert_id: id,
        sink: "glpi".into(),
        alert: a.clone(),
        clinic_name: "Cabinet".into(),
        tier: Tier::Cmp3,
        priority: Priority(5),
        response_due: due,
        response_remote_only: false,
        create_after: opened_at,
        ticket_id: Some(format!("T{id}")),
        create_sent: true,
        pending: Default::default(),
        state: EscalationState::Active,
        note: String::new(),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        notes_sent: 0,
        created_at: opened_at,
        updated_at: opened_at,
    };
    (e, a)
}

#[test]
fn tickets_against_the_sla_in_support_hours() {
    let mut inp = input(Tier::Cmp3, vec![machine(vec![], vec![])]);
    // Tuesday 10:00, acknowledged at 10:45: within 2 support hours.
    let (e1, a1) = escalation(
        1,
        "2026-11-10 10:00",
        Some(("acknowledged", "2026-11-10 10:45")),
    );
    // Saturday 15:00: 1 h until 16:00, then Sunday from 09:00: due 10:00; answered 10:30.
    let (e2, a2) = escalation(
        2,
        "2026-11-14 15:00",
        Some(("resolved", "2026-11-15 10:30")),
    );
    // Monday 30th 19:00, no answer yet at 19:30: due Tuesday 08:00, still in time.
    let (e3, a3) = escalation(3, "2026-11-30 19:00", None);
    // Cancelled before it was sent: no ticket.
    let (mut e4, a4) = escalation(4, "2026-11-12 09:00", None);
    e4.state = EscalationState::Cancelled;
    e4.ticket_id = None;
    e4.create_sent = false;
    // The same alert in a second sink counts once.
    let mut e1b = e1.clone();
    e1b.sink = "courriel".into();
    inp.escalations = vec![e1, e1b, e2, e3, e4];
    inp.alerts = vec![a1, a2, a3, a4];
    let f = figures(&inp, "2026-11-30 19:30");
    let i = f.incidents.expect("incidents");
    assert_eq!(i.sla_hours, 2);
    let got: Vec<(u64, i64, SlaOutcome)> = i
        .tickets
        .iter()
        .map(|t| (t.alert_id, t.response_support_seconds, t.outcome))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 45 * 60, SlaOutcome::Met),
            (2, 150 * 60, SlaOutcome::Missed),
            (3, 30 * 60, SlaOutcome::Pending),
        ]
    );
    assert_eq!((i.sla_met, i.sla_missed, i.sla_pending), (1, 1, 1));
    assert_eq!((i.alerts_opened, i.alerts_resolved), (4, 1));
    assert_eq!(i.median_resolve_seconds, Some((19 * 60 + 30) * 60));
}

#[test]
fn support_time_skips_closed_hours_and_holidays() {
    let calendar = SupportCalendar::default();
    let zone = clinic_zone();
    let check = |tier, from: &str, to: &str, minutes: i64| {
        assert_eq!(
            support_seconds(&calendar, &zone, tier, at(from), at(to)),
            minutes * 60,
            "{tier} {from} → {to}"
        );
    };
    check(Tier::Cmp1, "2026-11-10 19:00", "2026-11-11 08:00", 60);
    // 11 November is a holiday: 09–12 remote only.
    check(Tier::Cmp1, "2026-11-10 19:00", "2026-11-11 13:00", 60 + 180);
    check(Tier::Cmp0, "2026-11-10 15:00", "2026-11-12 10:00", 60 + 60);
    check(Tier::Cmp0, "2026-11-12 11:00", "2026-11-12 14:00", 60 + 30);
    check(Tier::Cmp3, "2026-11-12 11:00", "2026-11-12 10:00", 0);
}

#[test]
fn cmp0_is_inventory_only_and_an_empty_month_says_so() {
    let f = figures(
        &input(Tier::Cmp0, vec![machine(nightly_runs(), vec![])]),
        "2026-12-01 07:00",
    );
    assert!(f.backups.is_none() && f.preventive.is_none() && f.incidents.is_none());
    assert_eq!(f.inventory.machines.len(), 1);
    assert!(f.has_data);

    // An agent enrolled in December has nothing to say about November.
    let mut late = machine(vec![], vec![]);
    late.agent = agent("2026-12-01 02:00");
    let f = figures(&input(Tier::Cmp3, vec![late]), "2026-12-01 07:00");
    assert!(!f.has_data);
    assert!(f.inventory.machines.is_empty());
    let pdf = super::pdf::render(&f, &ReportContext::default()).expect("pdf");
    assert!(pdf.starts_with(b"%PDF-"));
    let text: Vec<String> = super::pdf::layout(&f, &ReportContext::default())
        .pages
        .iter()
        .flatten()
        .filter_map(|op| match op {
            super::pdf::Op::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("Aucune donnée pour ce mois")),
        "{text:?}"
    );
}

#[test]
fn figures_round_trip_through_json_with_english_keys() {
    let m = machine(
        nightly_runs(),
        vec![declared("nas", 86_400, &[], "2026-10-20 12:00")],
    );
    let f = figures(&input(Tier::Cmp3, vec![m]), "2026-12-01 07:00");
    let json = serde_json::to_value(&f).expect("json");
    assert_eq!(json["month"], "2026-11");
    assert_eq!(json["tier"], "cmp3");
    assert_eq!(json["backups"]["jobs"][0]["days"][9], "failed");
    assert_eq!(json["backups"]["success_percent"], 90);
    let back: MonthlyFigures = serde_json::from_value(json).expect("back");
    assert_eq!(back, f);
    let _ = SignedDuration::ZERO;
}

/// A full CMP3 month laid out: every section, the figures' words, and a PDF that starts as one.
#[test]
fn a_full_cmp3_month_lays_out_every_section() {
    let mut m = machine(
        nightly_runs(),
        vec![
            declared("nas", 86_400, &[], "2026-10-20 12:00"),
            declared("hebdo", 0, &[1, 3, 5], "2026-10-01 00:00"),
        ],
    );
    m.os_updates = Some(crate::facts::Stamped {
        collected_at: at("2026-11-30 22:00"),
        value: crate::facts::OsUpdates {
            manager: "apt".into(),
            pending_count: 4,
            security_count: 1,
            reboot_required: true,
            ..Default::default()
        },
    });
    m.antivirus = Some(crate::facts::Stamped {
        collected_at: at("2026-11-30 22:00"),
        value: crate::facts::Antivirus {
            products: vec![crate::facts::AntivirusProduct {
                name: "Microsoft Defender".into(),
                enabled: true,
                realtime_protection: Some(true),
                signatures_up_to_date: Some(true),
                signatures_updated_at: Some(at("2026-11-28 10:00")),
            }],
            none_found: false,
            cut: Default::default(),
        },
    });
    m.software = Some(crate::facts::Stamped {
        collected_at: at("2026-11-30 22:00"),
        value: crate::facts::Software {
            items: vec![crate::facts::InstalledSoftware {
                watch_name: "weda".into(),
                name: "Weda Connect".into(),
                version: "4.1.2".into(),
            }],
            cut: Default::default(),
        },
    });
    let t = |when: &str, state| DeviceTransition {
        at: at(when),
        state,
    };
    m.devices = vec![DeviceInput {
        name: "scanner".into(),
        current: Some(DeviceRecord {
            device: Device {
                name: "scanner".into(),
                kind: "imaging-modality".into(),
                address: "10.0.0.9".into(),
                state: DeviceState::Up,
                error: String::new(),
                supplies: vec![],
                ups: None,
            },
            reported_at: at("2026-11-30 23:00"),
            down_since: None,
        }),
        transitions: vec![
            t("2026-10-01 08:00", DeviceState::Up),
            t("2026-11-10 10:00", DeviceState::Down),
            t("2026-11-10 16:00", DeviceState::Up),
        ],
    }];
    let mut inp = input(Tier::Cmp3, vec![m]);
    let (e1, a1) = escalation(
        1,
        "2026-11-10 10:00",
        Some(("acknowledged", "2026-11-10 10:45")),
    );
    let (e2, a2) = escalation(
        2,
        "2026-11-14 15:00",
        Some(("resolved", "2026-11-15 10:30")),
    );
    inp.escalations = vec![e1, e2];
    inp.alerts = vec![a1, a2];
    let ctx = ReportContext {
        software_references: vec![crate::alerts::thresholds::SoftwareReference {
            pattern: "weda*".into(),
            min_version: "4.2".into(),
        }],
        ..ReportContext::default()
    };
    let f = monthly_figures(&inp, november(), at("2026-12-01 07:00"), &ctx);
    let pdf = super::pdf::render(&f, &ctx).expect("pdf");
    assert!(pdf.starts_with(b"%PDF-"));
    let layout = super::pdf::layout(&f, &ctx);
    let text: String = layout
        .pages
        .iter()
        .flatten()
        .filter_map(|op| match op {
            super::pdf::Op::Text { text, .. } => Some(format!("{text}\n")),
            _ => None,
        })
        .collect();
    for want in [
        "Cabinet : Cabinet des Lataniers",
        "Infogérance Prisme (CMP3)",
        "Réussite sur le mois : 27/43 (63 %)",
        "réussite 27/30 (90 %)",
        "Plus longue période sans sauvegarde réussie : 48 h",
        "Maintenance préventive",
        "Weda Connect",
        "en retard",
        "Microsoft Defender actif, signatures de 2 j",
        "99,2 % — 6 h 00 min hors service, 1 coupure",
        "Tickets : 2 — délai respecté : 1 — délai dépassé : 1 — en cours : 0",
        "2 h 30 min",
        "État du parc",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // The strip marks every day, failure and warning included.
    let marks = text.matches('✓').count();
    assert!(marks >= 27, "{marks} success marks");
    assert!(text.contains('✗') && text.contains('!'));
}

#[test]
fn an_hourly_job_beyond_what_storage_keeps_is_flagged() {
    // The newest 60 runs kept: the last two and a half days of an hourly job.
    let runs: Vec<BackupRun> = (0..crate::storage::RUNS_KEPT)
        .map(|h| {
            let mut r = run("horaire", "2026-11-28 00:00", BackupStatus::Success);
            r.finished_at += SignedDuration::from_hours(h as i64);
            r
        })
        .collect();
    let m = machine(
        runs,
        vec![declared("horaire", 3600, &[], "2026-10-01 00:00")],
    );
    let f = figures(&input(Tier::Cmp1, vec![m]), "2026-12-01 07:00");
    let job = &f.backups.expect("backups").jobs[0];
    assert!(job.runs_truncated);
    assert_eq!(job.runs_expected, Some(30 * 24));
    let text: String = super::pdf::layout(
        &figures(
            &input(
                Tier::Cmp1,
                vec![machine(
                    vec![run("horaire", "2026-11-28 00:00", BackupStatus::Success); 60],
                    vec![declared("horaire", 3600, &[], "2026-10-01 00:00")],
                )],
            ),
            "2026-12-01 07:00",
        ),
        &ReportContext::default(),
    )
    .pages
    .iter()
    .flatten()
    .filter_map(|op| match op {
        super::pdf::Op::Text { text, .. } => Some(text.clone()),
        _ => None,
    })
    .collect::<Vec<_>>()
    .join(" ");
    assert!(
        text.contains("seules les 60 dernières exécutions"),
        "{text}"
    );
}
