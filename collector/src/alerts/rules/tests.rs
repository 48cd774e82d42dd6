//! The tier × rule table, and each family's edge cases, through `check` helpers.

use jiff::SignedDuration;
use vigie_domain::{AgentRole, Tier};

use super::fixtures::*;
use super::*;
use crate::alerts::policy::Category;
use crate::alerts::thresholds::SoftwareReference;
use crate::facts::BackupStatus;

fn config() -> AlertsConfig {
    AlertsConfig {
        software: vec![SoftwareReference {
            pattern: "weda*".into(),
            min_version: "4.2".into(),
        }],
        ..AlertsConfig::default()
    }
}

fn context(tier: Tier) -> ClinicContext {
    ClinicContext {
        tier,
        overrides: RuleOverrides::default(),
        hours: OpeningHours::default(),
    }
}

fn rules_for(tier: Tier, facts: &AgentFacts) -> Vec<Rule> {
    evaluate(now(), &context(tier), facts, &config())
        .into_iter()
        .map(|c| c.rule)
        .collect()
}

/// `rule` fires under its facts exactly for the tiers whose categories include it.
fn check(rule: Rule) {
    let facts = firing(rule);
    for tier in Tier::ALL {
        let expected = match rule.category() {
            Category::Backup => tier != Tier::Cmp0,
            Category::Preventive => tier == Tier::Cmp3,
        };
        let fired = rules_for(tier, &facts).contains(&rule);
        assert_eq!(fired, expected, "{rule} for {tier}");
    }
}

#[test]
fn tier_by_rule_table() {
    for rule in Rule::ALL {
        check(rule);
    }
}

#[test]
fn cmp0_never_alerts_and_an_override_adds_a_family() {
    for rule in Rule::ALL {
        assert!(rules_for(Tier::Cmp0, &firing(rule)).is_empty(), "{rule}");
    }
    let mut ctx = context(Tier::Cmp1);
    ctx.overrides.0.insert(Family::Lan, true);
    let rules: Vec<Rule> = evaluate(now(), &ctx, &firing(Rule::LanDeviceDown), &config())
        .into_iter()
        .map(|c| c.rule)
        .collect();
    assert!(rules.contains(&Rule::LanDeviceDown));
    assert!(!rules.contains(&Rule::AgentSilent));
}

fn backup(facts: &AgentFacts) -> Vec<(Rule, String)> {
    backup::evaluate(now(), facts, &config().backup)
        .into_iter()
        .map(|c| (c.rule, c.text))
        .collect()
}

#[test]
fn missing_backups() {
    let check = |runs, expected: &[(Rule, &str)]| {
        let got = backup(&with_runs(runs));
        let want: Vec<(Rule, String)> = expected
            .iter()
            .map(|(r, t)| (*r, (*t).to_owned()))
            .collect();
        assert_eq!(got, want);
    };
    // A daily job: fine 25 h after its last success, missing after 26 h.
    check(daily_successes("nightly-nas", 3, 25), &[]);
    check(
        daily_successes("nightly-nas", 3, 27),
        &[(Rule::BackupMissing, "Sauvegarde nightly-nas sans succès")],
    );
    // Only failures since: failing now, and missing once the last success is too old.
    let mut runs = daily_successes("nightly-nas", 2, 50);
    runs.push(run("nightly-nas", BackupStatus::Failed, 2));
    check(
        runs,
        &[
            (Rule::BackupFailed, "Sauvegarde nightly-nas en échec"),
            (Rule::BackupMissing, "Sauvegarde nightly-nas sans succès"),
        ],
    );
}

#[test]
fn a_declared_job_that_never_ran_and_weekday_schedules() {
    let mut facts = with_runs(vec![]);
    let declare = |name: &str, days: Vec<u8>, declared_hours_ago| DeclaredJobRecord {
        job: crate::facts::DeclaredJob {
            name: name.into(),
            every_seconds: if days.is_empty() { 86_400 } else { 0 },
            days_of_week: days,
            ..crate::facts::DeclaredJob::default()
        },
        first_declared_at: ago(declared_hours_ago),
        declared_at: now(),
    };
    facts.declared_jobs = vec![declare("nightly-nas", vec![], 30)];
    assert_eq!(
        backup(&facts),
        vec![(
            Rule::BackupMissing,
            "Sauvegarde nightly-nas jamais exécutée".to_owned()
        )]
    );
    facts.declared_jobs = vec![declare("nightly-nas", vec![], 10)];
    assert!(backup(&facts).is_empty(), "declared 10 h ago: not due yet");
    // Monday to Friday: a Friday success is still fine on Monday morning (72 h + grace).
    let mut weekdays = with_runs(daily_successes("weekdays", 1, 70));
    weekdays.declared_jobs = vec![declare("weekdays", vec![1, 2, 3, 4, 5], 24 * 30)];
    assert!(backup(&weekdays).is_empty());
    // A job no longer declared is no longer awaited.
    let mut dropped = with_runs(daily_successes("old", 1, 24 * 9));
    dropped.declared_jobs = vec![declare("weekdays", vec![1, 2, 3, 4, 5], 1)];
    assert!(backup(&dropped).is_empty());
}

#[test]
fn suspicious_results() {
    let check = |change: &dyn Fn(&mut crate::facts::BackupRun), expected: Option<&str>| {
        let mut runs = daily_successes("nightly-nas", 7, 25);
        let mut last = run("nightly-nas", BackupStatus::Success, 1);
        change(&mut last);
        runs.push(last);
        let got = backup(&with_runs(runs));
        let want: Vec<(Rule, String)> = expected
            .map(|t| (Rule::BackupSuspicious, t.to_owned()))
            .into_iter()
            .collect();
        assert_eq!(got, want);
    };
    check(&|_| {}, None);
    check(&|r| r.bytes = Some(510_000), None);
    check(
        &|r| r.bytes = Some(400_000),
        Some("Sauvegarde nightly-nas suspecte : volume en baisse de 60 %"),
    );
    check(
        &|r| r.files = Some(100),
        Some("Sauvegarde nightly-nas suspecte : fichiers en baisse de 90 %"),
    );
    check(
        &|r| r.started_at = Some(r.finished_at - SignedDuration::from_mins(31)),
        Some("Sauvegarde nightly-nas suspecte : durée 3 fois la normale"),
    );
    // Too little history to judge.
    let mut runs = daily_successes("nightly-nas", 2, 25);
    let mut last = run("nightly-nas", BackupStatus::Success, 1);
    last.bytes = Some(1);
    runs.push(last);
    assert!(backup(&with_runs(runs)).is_empty());
}

#[test]
fn silent_agents_by_role_and_opening_hours() {
    let hours = OpeningHours::default();
    let t = config().silence;
    // Local Réunion times.
    let at = |text: &str| {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", text)
            .expect("datetime")
            .to_zoned_datetime(crate::alerts::opening_hours::clinic_zone())
            .expect("zoned")
            .timestamp()
    };
    let check = |role, last_seen: &str, when: &str, fires: bool| {
        let mut a = agent(role);
        a.last_seen = Some(at(last_seen));
        let got = silence::evaluate(at(when), &a, &hours, &t);
        assert_eq!(
            !got.is_empty(),
            fires,
            "{role} last seen {last_seen}, at {when}"
        );
    };
    use AgentRole::*;
    // A workstation switched off Friday evening: nothing on Sunday, nor at night.
    check(Workstation, "2026-06-05 19:30", "2026-06-07 11:00", false);
    check(Workstation, "2026-06-08 18:30", "2026-06-09 03:00", false);
    // Monday morning: alert only two hours after opening.
    check(Workstation, "2026-06-05 19:30", "2026-06-08 09:00", false);
    check(Workstation, "2026-06-05 19:30", "2026-06-08 09:31", true);
    // A holiday (Whit Monday) is like a Sunday.
    check(Workstation, "2026-05-23 11:00", "2026-05-25 11:00", false);
    // A server: 30 minutes, day or night, Sunday included.
    check(Server, "2026-06-07 02:00", "2026-06-07 02:29", false);
    check(Server, "2026-06-07 02:00", "2026-06-07 02:31", true);
    check(Imaging, "2026-06-07 02:00", "2026-06-07 03:00", true);
}

#[test]
fn lan_severities() {
    let facts = firing(Rule::LanDeviceDown);
    let got: Vec<(Rule, Severity)> = lan::evaluate(now(), &facts, &config().lan)
        .into_iter()
        .map(|c| (c.rule, c.severity))
        .collect();
    assert_eq!(
        got,
        vec![
            (Rule::LanDeviceDown, Severity::Critical),
            (Rule::PrinterSupplyLow, Severity::Warning),
            (Rule::UpsOnBattery, Severity::Critical),
            (Rule::UpsBatteryLow, Severity::Major),
        ]
    );
    // Down for less than the threshold: not yet.
    let mut t = config().lan;
    t.down_after_minutes = 90;
    assert!(
        !lan::evaluate(now(), &facts, &t)
            .iter()
            .any(|c| c.rule == Rule::LanDeviceDown)
    );
}

#[test]
fn a_third_party_antivirus_covers_a_disabled_defender() {
    let mut facts = firing(Rule::AntivirusRealtimeOff);
    if let Some(av) = facts.antivirus.as_mut() {
        av.value.products[0].enabled = false;
        av.value.products.push(crate::facts::AntivirusProduct {
            name: "ESET".into(),
            enabled: true,
            realtime_protection: Some(true),
            signatures_up_to_date: Some(true),
            signatures_updated_at: Some(now()),
        });
    }
    assert!(antivirus::evaluate(now(), &facts, &config().antivirus).is_empty());
}
