//! Declared jobs: the `[[backup.jobs]]` entries of the agent config — which jobs should exist,
//! their expected schedule, and where their results come from — and the `DeclaredJob` list
//! every backup report carries, with the last result known for each.
//!
//! ```toml
//! [[backup.jobs]]
//! name = "nightly-nas"            # the job name results carry
//! every = "24h"                   # expected cadence ...
//! source = "robocopy"             # spool (default, where `exec` writes), robocopy,
//!                                 # restic, borg, rsync, windows_server_backup, veeam
//! path = 'C:\Vigie\logs\nightly-nas.log'   # the log or JSON file, for file sources
//! target = "NAS \\nas01\sauvegardes"        # shown to technicians
//! check_every = "30d"             # a successful `exec --kind check` expected this often
//!
//! [[backup.jobs]]
//! name = "weekly-usb"
//! days = ["mon", "wed", "fri"]    # ... or days of the week and a local time
//! at = "22:30"
//! ```

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::BackupConfig;
use super::ledger::Ledger;
use super::products::{self, Product};
use super::{BackupReport, DeclaredJob, MAX_NAME_CHARS};

/// Shortest expected cadence: backups are not minute-level events.
const MIN_EVERY: Duration = Duration::from_secs(60);
const MIN_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Where a job's results come from: a product of the table ([`super::PRODUCTS`]) that has
/// a reader, or the spool (the default, also where `exec` writes).
#[derive(Clone, Copy)]
pub struct JobSource(&'static Product);

impl JobSource {
    pub fn named(name: &str) -> Option<JobSource> {
        products::job_sources()
            .contains(&name)
            .then(|| products::named(name).map(JobSource))
            .flatten()
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn product(self) -> &'static Product {
        self.0
    }

    /// Sources that read a file named by `path`.
    fn needs_path(self) -> bool {
        self.0.reads_file
    }
}

impl Default for JobSource {
    fn default() -> Self {
        JobSource(&super::spool::PRODUCT)
    }
}

impl PartialEq for JobSource {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for JobSource {}

impl std::fmt::Debug for JobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for JobSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        JobSource::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown source {name:?}: expected one of {}",
                products::job_sources().join(", ")
            ))
        })
    }
}

/// One `[[backup.jobs]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupJob {
    pub name: String,
    /// Expected every this long, e.g. `"24h"`.
    #[serde(default, with = "crate::duration_text::option")]
    pub every: Option<Duration>,
    /// Or on these days (`mon` ... `sun`) ...
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// ... at this local time, `"HH:MM"`.
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub source: JobSource,
    /// The product's log or JSON output, for file sources.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Where the backup goes, as technicians name it; never a data file name.
    #[serde(default)]
    pub target: String,
    /// How often the backup must be verified (`exec --kind check`), e.g. `"30d"`.
    #[serde(default, with = "crate::duration_text::option")]
    pub check_every: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// ISO number, 1 = Monday.
    pub fn iso(self) -> u32 {
        self as u32 + 1
    }
}

/// `"HH:MM"` with a valid hour and minute.
fn valid_time_of_day(text: &str) -> bool {
    let Some((h, m)) = text.split_once(':') else {
        return false;
    };
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    two_digits(h)
        && two_digits(m)
        && h.parse::<u32>().is_ok_and(|h| h < 24)
        && m.parse::<u32>().is_ok_and(|m| m < 60)
}

/// Every problem in `[backup]`, for `config::validate`.
pub fn problems(config: &BackupConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if config.scan_interval < MIN_SCAN_INTERVAL {
        problems.push("backup.scan_interval must be at least 1s".to_owned());
    }
    let mut names = HashSet::new();
    for (i, job) in config.jobs.iter().enumerate() {
        let at = format!("backup.jobs[{i}]");
        let name = job.name.trim();
        if name.is_empty() {
            problems.push(format!("{at}: name is empty"));
        } else if name.chars().count() > MAX_NAME_CHARS {
            problems.push(format!(
                "{at}: name is longer than {MAX_NAME_CHARS} characters"
            ));
        } else if !names.insert(name) {
            problems.push(format!("{at}: job {name:?} is declared twice"));
        }
        match (job.every, job.days.is_empty(), &job.at) {
            (Some(every), true, None) if every < MIN_EVERY => problems.push(format!(
                "{at}: every = {} is below the minimum of 1m",
                humantime::format_duration(every)
            )),
            (Some(_), true, None) => {}
            (None, false, Some(time)) if !valid_time_of_day(time) => {
                problems.push(format!("{at}: at = {time:?} is not a time like \"22:30\""));
            }
            (None, false, Some(_)) => {}
            (None, true, None) => problems.push(format!(
                "{at}: give a schedule: every = \"24h\", or days = [\"mon\", ...] with at = \"22:30\""
            )),
            (None, _, _) => problems.push(format!("{at}: days and at go together")),
            (Some(_), _, _) => problems.push(format!(
                "{at}: every and days/at are two ways to give the schedule: pick one"
            )),
        }
        if let Some(every) = job.check_every
            && every < MIN_EVERY
        {
            problems.push(format!(
                "{at}: check_every = {} is below the minimum of 1m",
                humantime::format_duration(every)
            ));
        }
        match (job.source.needs_path(), &job.path) {
            (true, None) => problems.push(format!(
                "{at}: source = \"{}\" needs path = the file to read",
                job.source.name()
            )),
            (false, Some(_)) => problems.push(format!(
                "{at}: source = \"{}\" reads no file: remove path",
                job.source.name()
            )),
            _ => {}
        }
    }
    problems
}

/// The declared jobs with the last result the ledger knows for each.
pub fn declared_jobs(jobs: &[BackupJob], known: &Ledger) -> Vec<DeclaredJob> {
    jobs.iter()
        .map(|job| {
            let mut days: Vec<u32> = job.days.iter().map(|d| d.iso()).collect();
            days.sort_unstable();
            days.dedup();
            DeclaredJob {
                name: job.name.trim().to_owned(),
                every_seconds: job.every.map(|d| d.as_secs()),
                days_of_week: days,
                at: job.at.clone(),
                last_run: known.last_runs.get(job.name.trim()).cloned(),
                check_every_seconds: job.check_every.map(|d| d.as_secs()),
                last_check: known.last_checks.get(job.name.trim()).cloned(),
                last_good_check_at: known.last_good_checks.get(job.name.trim()).copied(),
            }
        })
        .collect()
}

/// What identifies the declared list as sent: names and schedules, not the last results
/// (those travel with each run).
pub fn digest(report: &BackupReport) -> String {
    report
        .declared_jobs
        .iter()
        .map(|d| {
            format!(
                "{}|{:?}|{:?}|{:?}|{:?}",
                d.name, d.every_seconds, d.days_of_week, d.at, d.check_every_seconds
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;

    fn problems_of(toml: &str) -> Vec<String> {
        match parse_config(toml) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.messages(),
        }
    }

    #[test]
    fn schedules_parse_into_declared_jobs() {
        let config = parse_config(
            r#"
            [backup]
            scan_interval = "30s"
            [[backup.jobs]]
            name = "nightly-nas"
            every = "24h"
            target = "NAS"
            [[backup.jobs]]
            name = "weekly-usb"
            days = ["fri", "mon", "mon"]
            at = "22:30"
            check_every = "30d"
            "#,
        )
        .expect("valid");
        let jobs = declared_jobs(&config.backup.jobs, &Ledger::default());
        assert_eq!(jobs[0].every_seconds, Some(86_400));
        assert_eq!(jobs[1].days_of_week, [1, 5]);
        assert_eq!(jobs[1].at.as_deref(), Some("22:30"));
        assert_eq!(jobs[1].check_every_seconds, Some(30 * 86_400));
        assert_eq!(jobs[0].check_every_seconds, None);
        assert!(jobs.iter().all(|j| j.last_run.is_none()));
    }

    #[test]
    fn every_schedule_problem_is_reported() {
        let problems = problems_of(
            r#"
            [[backup.jobs]]
            name = "a"
            [[backup.jobs]]
            name = "a"
            every = "10s"
            [[backup.jobs]]
            name = "b"
            every = "1h"
            at = "22:30"
            [[backup.jobs]]
            name = "c"
            days = ["mon"]
            at = "25:00"
            [[backup.jobs]]
            name = "d"
            days = ["mon"]
            [[backup.jobs]]
            name = " "
            every = "1h"
            path = "/tmp/x"
            "#,
        );
        let expect = [
            "backup.jobs[0]: give a schedule",
            "backup.jobs[1]: job \"a\" is declared twice",
            "backup.jobs[1]: every = 10s is below",
            "backup.jobs[2]: every and days/at",
            "backup.jobs[3]: at = \"25:00\"",
            "backup.jobs[4]: days and at go together",
            "backup.jobs[5]: name is empty",
            "backup.jobs[5]: source = \"spool\" reads no file",
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        for (p, e) in problems.iter().zip(expect) {
            assert!(p.starts_with(e), "{p:?} !~ {e:?}");
        }
        assert!(
            problems_of("[[backup.jobs]]\nname = \"x\"\nevery = \"1d\"\ndays = [\"xyz\"]\n")[0]
                .contains("unknown variant")
        );
    }
}
