//! Backup rules (category `backup`): last run failed (critical) or ended with warnings; job
//! missing (no result within its interval plus a grace, never run, or reports stopped);
//! suspicious result (bytes or files far below the median of recent successes, or too slow).

use jiff::{SignedDuration, Timestamp};

use super::{AgentFacts, Condition, hours, minutes};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::summary;
use crate::alerts::thresholds::BackupThresholds;
use crate::facts::{BackupRun, BackupStatus, DeclaredJob, RunKind};

/// The jobs' backup runs; integrity checks are judged by `backup_check`.
fn backups(facts: &AgentFacts) -> impl Iterator<Item = (&String, &Vec<BackupRun>)> {
    facts
        .backup_runs
        .iter()
        .filter(|(_, runs)| runs.iter().all(|r| r.kind == RunKind::Backup))
}

/// ": cause" in French when the agent named one, with the number of files when it counts.
pub fn cause_text(run: &BackupRun) -> String {
    let Some(words) = summary::backup_cause(&run.cause) else {
        return String::new();
    };
    match (run.cause.as_str(), run.failed_items) {
        ("unreadable_files", Some(n)) if n > 0 => {
            format!(
                " : {} illisible{}",
                summary::files(n),
                if n > 1 { "s" } else { "" }
            )
        }
        _ => format!(" : {words}"),
    }
}

pub fn evaluate(now: Timestamp, facts: &AgentFacts, t: &BackupThresholds) -> Vec<Condition> {
    let mut out = Vec::new();
    for (job, runs) in backups(facts) {
        let Some(last) = runs.last() else { continue };
        match last.status {
            BackupStatus::Failed => {
                // The streak of failures began after the last run that did not fail.
                let first_failure = runs
                    .iter()
                    .rev()
                    .take_while(|r| r.status == BackupStatus::Failed)
                    .last()
                    .map_or(last.finished_at, |r| r.finished_at);
                out.push(
                    Condition::new(
                        Rule::BackupFailed,
                        job,
                        Severity::Critical,
                        format!("Sauvegarde {job} en échec{}", cause_text(last)),
                    )
                    .since(Some(first_failure))
                    .detail(&last.message)
                    .evidence(last.finished_at),
                );
            }
            BackupStatus::Warning => out.push(
                Condition::new(
                    Rule::BackupWarning,
                    job,
                    Severity::Warning,
                    format!(
                        "Sauvegarde {job} terminée avec avertissements{}",
                        cause_text(last)
                    ),
                )
                .detail(&last.message)
                .evidence(last.finished_at),
            ),
            BackupStatus::Success => out.extend(suspicious(job, runs, t)),
            BackupStatus::Unknown => {}
        }
    }
    out.extend(missing(now, facts, t));
    out
}

/// The time between two expected runs of a declared job.
fn interval(job: Option<&DeclaredJob>, t: &BackupThresholds) -> SignedDuration {
    let default = hours(t.default_interval_hours);
    let Some(job) = job else { return default };
    if job.every_seconds > 0 {
        return SignedDuration::from_secs(i64::try_from(job.every_seconds).unwrap_or(i64::MAX / 4));
    }
    // Weekdays: the longest gap between two scheduled days (Mon–Fri: Friday to Monday).
    let mut days: Vec<u8> = job
        .days_of_week
        .iter()
        .copied()
        .filter(|d| (1..=7).contains(d))
        .collect();
    days.sort_unstable();
    days.dedup();
    let Some(&first) = days.first() else {
        return default;
    };
    let mut longest = 0u64;
    for (i, day) in days.iter().enumerate() {
        let next = days.get(i + 1).copied().unwrap_or(first + 7);
        longest = longest.max(u64::from(next - day));
    }
    hours(24 * longest)
}

fn is_result(run: &BackupRun) -> bool {
    matches!(run.status, BackupStatus::Success | BackupStatus::Warning)
}

fn missing(now: Timestamp, facts: &AgentFacts, t: &BackupThresholds) -> Vec<Condition> {
    let grace = minutes(t.grace_minutes);
    // With a declaration, only declared jobs are expected (a job removed from the agent's
    // configuration stops being awaited); without, every job ever seen is.
    let jobs: Vec<(String, Option<&DeclaredJob>, Option<Timestamp>)> =
        if facts.declared_jobs.is_empty() {
            backups(facts)
                .map(|(job, _)| (job.clone(), None, None))
                .collect()
        } else {
            facts
                .declared_jobs
                .iter()
                .map(|d| (d.job.name.clone(), Some(&d.job), Some(d.first_declared_at)))
                .collect()
        };
    let mut out = Vec::new();
    for (job, declared, declared_at) in jobs {
        let runs = facts
            .backup_runs
            .get(&job)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let last_result = runs.iter().rev().find(|r| is_result(r));
        let reference = last_result
            .map(|r| r.finished_at)
            .or(declared_at)
            .or_else(|| runs.first().map(|r| r.finished_at));
        let Some(reference) = reference else { continue };
        let Ok(deadline) = reference
            .checked_add(interval(declared, t))
            .and_then(|d| d.checked_add(grace))
        else {
            continue;
        };
        if now < deadline {
            continue;
        }
        let (text, since) = match (last_result, runs.is_empty()) {
            (Some(r), _) => (format!("Sauvegarde {job} sans succès"), Some(r.finished_at)),
            (None, true) => (format!("Sauvegarde {job} jamais exécutée"), None),
            (None, false) => (format!("Sauvegarde {job} jamais réussie"), None),
        };
        out.push(
            Condition::new(Rule::BackupMissing, &job, Severity::Critical, text)
                .since(since)
                .evidence(deadline),
        );
    }
    out
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values.get(n / 2 - 1)? + values.get(n / 2)?) / 2),
    }
}

/// The last run against the median of the successes before it.
fn suspicious(job: &str, runs: &[BackupRun], t: &BackupThresholds) -> Option<Condition> {
    let (last, before) = runs.split_last()?;
    let history: Vec<&BackupRun> = before
        .iter()
        .rev()
        .filter(|r| r.status == BackupStatus::Success)
        .take(t.median_of_last)
        .collect();
    if history.len() < t.min_history {
        return None;
    }
    let keep = 100u64.saturating_sub(t.suspicious_drop_percent);
    let mut reasons = Vec::new();
    for (what, value, past) in [
        (
            "volume",
            last.bytes,
            history.iter().filter_map(|r| r.bytes).collect::<Vec<_>>(),
        ),
        (
            "fichiers",
            last.files,
            history.iter().filter_map(|r| r.files).collect(),
        ),
    ] {
        if let (Some(value), Some(median)) = (value, median(past))
            && u128::from(value) * 100 < u128::from(median) * u128::from(keep)
        {
            let drop = 100 - (u128::from(value) * 100 / u128::from(median.max(1)));
            reasons.push(format!("{what} en baisse de {drop} %"));
        }
    }
    let durations: Vec<u64> = history
        .iter()
        .filter_map(|r| r.duration())
        .map(|d| d.as_secs().unsigned_abs())
        .collect();
    if let (Some(took), Some(median)) = (last.duration(), median(durations))
        && median > 0
        && took.as_secs().unsigned_abs() > median.saturating_mul(t.suspicious_duration_factor)
    {
        reasons.push(format!(
            "durée {} fois la normale",
            took.as_secs().unsigned_abs() / median
        ));
    }
    if reasons.is_empty() {
        return None;
    }
    Some(
        Condition::new(
            Rule::BackupSuspicious,
            job,
            Severity::Warning,
            format!("Sauvegarde {job} suspecte : {}", reasons.join(", ")),
        )
        .evidence(last.finished_at),
    )
}
