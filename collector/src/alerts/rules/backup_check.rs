//! Backup integrity-check rules (category `backup`): the last check of a job failed (a
//! damaged repository is critical; a check with warnings is major), or a job that declares
//! `check_every` has had no successful check within that time plus the grace. A backup
//! nobody can restore is not a backup.

use jiff::{SignedDuration, Timestamp};

use super::backup::cause_text;
use super::{AgentFacts, Condition, minutes};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::BackupThresholds;
use crate::facts::{BackupRun, BackupStatus, CHECK_JOB_SUFFIX, RunKind};

pub fn evaluate(now: Timestamp, facts: &AgentFacts, t: &BackupThresholds) -> Vec<Condition> {
    let grace = minutes(t.grace_minutes);
    let mut out = Vec::new();
    let mut judged = Vec::new();
    for declared in &facts.declared_jobs {
        let job = &declared.job;
        let recorded = checks_of(facts, &job.name);
        let last = newest(job.last_check.iter().chain(recorded.iter().copied()));
        let last_good = job
            .last_good_check_at
            .into_iter()
            .chain(
                recorded
                    .iter()
                    .filter(|r| r.status == BackupStatus::Success)
                    .map(|r| r.finished_at),
            )
            .max();
        out.extend(last.and_then(|last| failed(&job.name, last, &recorded)));
        judged.push(job.name.clone());
        if job.check_every_seconds == 0 {
            continue;
        }
        let every = SignedDuration::from_secs(
            i64::try_from(job.check_every_seconds).unwrap_or(i64::MAX / 4),
        );
        let reference = last_good.unwrap_or(declared.first_declared_at);
        let Ok(deadline) = reference
            .checked_add(every)
            .and_then(|d| d.checked_add(grace))
        else {
            continue;
        };
        if now < deadline {
            continue;
        }
        let name = &job.name;
        let (text, since) = match last_good {
            Some(at) => (
                format!("Sauvegarde {name} sans vérification réussie"),
                Some(at),
            ),
            None => (format!("Sauvegarde {name} jamais vérifiée"), None),
        };
        out.push(
            Condition::new(Rule::BackupCheckMissing, name, Severity::Major, text)
                .since(since)
                .evidence(deadline),
        );
    }
    // Checks of jobs the agent does not declare: a failure must still be seen.
    for runs in facts.backup_runs.values() {
        let Some(last) = runs.last() else { continue };
        if last.kind != RunKind::Check || judged.iter().any(|j| j == last.job_name()) {
            continue;
        }
        let recorded: Vec<&BackupRun> = runs.iter().collect();
        out.extend(failed(last.job_name(), last, &recorded));
    }
    out
}

/// The checks recorded for a job, oldest first.
fn checks_of<'a>(facts: &'a AgentFacts, job: &str) -> Vec<&'a BackupRun> {
    facts
        .backup_runs
        .get(&format!("{job}{CHECK_JOB_SUFFIX}"))
        .map(|runs| runs.iter().filter(|r| r.kind == RunKind::Check).collect())
        .unwrap_or_default()
}

fn newest<'a>(runs: impl Iterator<Item = &'a BackupRun>) -> Option<&'a BackupRun> {
    runs.max_by_key(|r| r.finished_at)
}

fn failed(job: &str, last: &BackupRun, history: &[&BackupRun]) -> Option<Condition> {
    let (severity, text) = match last.status {
        BackupStatus::Failed => (
            Severity::Critical,
            format!(
                "Vérification de la sauvegarde {job} en échec{}",
                cause_text(last)
            ),
        ),
        BackupStatus::Warning => (
            Severity::Major,
            format!(
                "Vérification de la sauvegarde {job} : anomalies signalées{}",
                cause_text(last)
            ),
        ),
        BackupStatus::Success | BackupStatus::Unknown => return None,
    };
    // The streak of failed checks began after the last good one.
    let first_failure = history
        .iter()
        .rev()
        .take_while(|r| r.status == last.status)
        .last()
        .map_or(last.finished_at, |r| r.finished_at.min(last.finished_at));
    Some(
        Condition::new(Rule::BackupCheckFailed, job, severity, text)
            .since(Some(first_failure))
            .detail(&last.message)
            .evidence(last.finished_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::fixtures::*;
    use crate::alerts::thresholds::AlertsConfig;
    use crate::facts::{DeclaredJob, DeclaredJobRecord};

    fn check_run(job: &str, status: BackupStatus, hours_ago: i64, cause: &str) -> BackupRun {
        let mut run = run(&format!("{job}{CHECK_JOB_SUFFIX}"), status, hours_ago);
        run.kind = RunKind::Check;
        run.cause = cause.into();
        run
    }

    fn declared(every_days: u64, last_good_hours_ago: Option<i64>) -> DeclaredJobRecord {
        DeclaredJobRecord {
            job: DeclaredJob {
                name: "nightly-nas".into(),
                every_seconds: 86_400,
                days_of_week: vec![],
                check_every_seconds: every_days * 86_400,
                last_check: None,
                last_good_check_at: last_good_hours_ago.map(ago),
            },
            first_declared_at: ago(24 * 60),
            declared_at: now(),
        }
    }

    fn conditions(facts: &AgentFacts) -> Vec<(Rule, Severity, String)> {
        evaluate(now(), facts, &AlertsConfig::default().backup)
            .into_iter()
            .map(|c| (c.rule, c.severity, c.text))
            .collect()
    }

    #[test]
    fn a_failed_check_is_critical_and_names_the_cause() {
        let mut facts = with_runs(vec![check_run(
            "nightly-nas",
            BackupStatus::Failed,
            2,
            "repository_damaged",
        )]);
        facts.declared_jobs = vec![declared(30, Some(24 * 40))];
        let got = conditions(&facts);
        assert!(got.contains(&(
            Rule::BackupCheckFailed,
            Severity::Critical,
            "Vérification de la sauvegarde nightly-nas en échec : dépôt de sauvegarde endommagé"
                .into()
        )), "{got:?}");
        // Undeclared: still seen.
        facts.declared_jobs.clear();
        assert_eq!(conditions(&facts).len(), 1);
    }

    #[test]
    fn a_job_without_a_good_check_in_time_alerts() {
        let mut facts = with_runs(daily_successes("nightly-nas", 3, 2));
        facts.declared_jobs = vec![declared(30, Some(24 * 20))];
        assert!(
            conditions(&facts).is_empty(),
            "checked 20 days ago, every 30"
        );
        facts.declared_jobs = vec![declared(30, Some(24 * 31))];
        assert_eq!(
            conditions(&facts),
            [(
                Rule::BackupCheckMissing,
                Severity::Major,
                "Sauvegarde nightly-nas sans vérification réussie".into()
            )]
        );
        facts.declared_jobs = vec![declared(30, None)];
        assert_eq!(
            conditions(&facts)[0].2,
            "Sauvegarde nightly-nas jamais vérifiée"
        );
        // A good check recorded as a run counts too.
        facts.backup_runs.insert(
            format!("nightly-nas{CHECK_JOB_SUFFIX}"),
            vec![check_run("nightly-nas", BackupStatus::Success, 5, "")],
        );
        assert!(conditions(&facts).is_empty());
        facts.declared_jobs = vec![declared(0, None)];
        assert!(conditions(&facts).is_empty(), "no check expected");
    }
}
