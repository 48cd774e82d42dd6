//! The month's figures of one clinic, pure: stored facts in ([`MonthInput`]), the numbers the
//! report prints out ([`MonthlyFigures`], also its JSON). No I/O, no clock: `now` is given,
//! and so is the clinic's time zone, in which days and the month are counted.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use serde::{Deserialize, Serialize};
use vigie_domain::Tier;

use super::month::{Month, start_of};
use crate::alerts::alert::{Alert, AlertState};
use crate::alerts::rules::software::{compare_versions, glob};
use crate::alerts::thresholds::SoftwareReference;
use crate::escalation::calendar::SupportCalendar;
use crate::escalation::config::TierSla;
use crate::escalation::queue::{Escalation, EscalationState};
use crate::facts::{
    Antivirus, BackupRun, BackupStatus, DeclaredJobRecord, DeviceRecord, DeviceState, OsUpdates,
    RunKind, Software, Stamped,
};
use crate::model::{AgentRecord, Clinic};
use crate::storage::DeviceTransition;

/// What the figures are computed from: one clinic's stored facts.
#[derive(Debug, Clone)]
pub struct MonthInput {
    pub clinic: Clinic,
    pub machines: Vec<MachineInput>,
    /// The clinic's alerts (any state).
    pub alerts: Vec<Alert>,
    /// The clinic's escalation records (every sink).
    pub escalations: Vec<Escalation>,
}

#[derive(Debug, Clone)]
pub struct MachineInput {
    pub agent: AgentRecord,
    pub declared: Vec<DeclaredJobRecord>,
    /// Runs per stored job name (checks under their suffixed name), oldest first.
    pub runs: BTreeMap<String, Vec<BackupRun>>,
    /// In force at the month's end (or now, if sooner).
    pub os_updates: Option<Stamped<OsUpdates>>,
    pub antivirus: Option<Stamped<Antivirus>>,
    pub software: Option<Stamped<Software>>,
    pub devices: Vec<DeviceInput>,
}

#[derive(Debug, Clone)]
pub struct DeviceInput {
    pub name: String,
    /// The latest record, when the device is still configured.
    pub current: Option<DeviceRecord>,
    pub transitions: Vec<DeviceTransition>,
}

/// What the figures depend on besides the facts.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub zone: TimeZone,
    pub sla: TierSla,
    pub software_references: Vec<SoftwareReference>,
    pub msp_name: String,
    pub msp_phone: String,
}

impl Default for ReportContext {
    fn default() -> Self {
        ReportContext {
            zone: crate::alerts::opening_hours::clinic_zone(),
            sla: TierSla::default(),
            software_references: Vec::new(),
            msp_name: super::DEFAULT_MSP_NAME.to_owned(),
            msp_phone: super::DEFAULT_MSP_PHONE.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyFigures {
    pub clinic_id: String,
    pub clinic_name: String,
    pub tier: Tier,
    pub month: Month,
    pub time_zone: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub generated_at: Timestamp,
    pub msp_name: String,
    /// False when nothing was reported for the month: the report says so.
    pub has_data: bool,
    pub inventory: Inventory,
    /// CMP1 and CMP3.
    pub backups: Option<BackupFigures>,
    /// CMP3.
    pub preventive: Option<PreventiveFigures>,
    /// CMP1 and CMP3.
    pub incidents: Option<IncidentFigures>,
}

// ---- inventory ----

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub machines: Vec<MachineInventory>,
    pub devices: Vec<DeviceInventory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInventory {
    pub hostname: String,
    pub role: String,
    pub os: String,
    pub agent_version: String,
    pub enrolled_at: Timestamp,
    pub last_seen: Option<Timestamp>,
    pub memory_total_bytes: Option<u64>,
    pub disks: Vec<DiskFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskFigures {
    pub mount_point: String,
    pub total_bytes: u64,
    pub used_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInventory {
    pub name: String,
    pub kind: String,
    pub address: String,
    pub state: DeviceState,
    pub probed_by: String,
}

// ---- backups ----

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BackupFigures {
    pub jobs: Vec<BackupJobFigures>,
    pub runs_expected: u32,
    pub runs_seen: u32,
    pub successes: u32,
    pub warnings: u32,
    pub failures: u32,
    /// Successes against the runs expected (or seen, where more ran): whole percent.
    pub success_percent: Option<u32>,
}

/// One day of a job's month strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayMark {
    /// No run, none expected (or the job not declared yet).
    NotExpected,
    /// Expected, and nothing ran.
    Missing,
    Success,
    /// A warning, or a failure made good the same day.
    Warning,
    Failed,
    /// After the report's `now`.
    Future,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupJobFigures {
    pub machine: String,
    pub job: String,
    /// Declared in the agent's configuration (else only seen in results).
    pub declared: bool,
    /// "tous les jours", "lun., mer., ven.", "toutes les 12 h".
    pub cadence: String,
    pub runs_expected: Option<u32>,
    pub runs_seen: u32,
    pub successes: u32,
    pub warnings: u32,
    pub failures: u32,
    pub success_percent: Option<u32>,
    /// The longest stretch of the month without a successful run (from the last success
    /// before it, when known).
    pub longest_without_success_seconds: i64,
    pub last_success_at: Option<Timestamp>,
    pub check_expected: bool,
    pub last_good_check_at: Option<Timestamp>,
    pub days: Vec<DayMark>,
    /// The storage keeps the newest runs of a job only (`storage::RUNS_KEPT`): true when
    /// older runs of the month are no longer there, so the counts are lower bounds.
    #[serde(default)]
    pub runs_truncated: bool,
}

// ---- preventive ----

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PreventiveFigures {
    pub machines: Vec<MachinePreventive>,
    /// Imaging modalities and PACS first.
    pub devices: Vec<DeviceAvailability>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachinePreventive {
    pub machine: String,
    pub updates: Option<UpdatesFigures>,
    pub antivirus: Option<AntivirusFigures>,
    pub software: Vec<SoftwareFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatesFigures {
    pub pending: u32,
    pub security: u32,
    pub reboot_required: bool,
    pub as_of: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AntivirusFigures {
    pub none_found: bool,
    pub products: Vec<AntivirusProductFigures>,
    pub as_of: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AntivirusProductFigures {
    pub name: String,
    pub enabled: bool,
    pub realtime_protection: Option<bool>,
    /// Whole days between the signatures' date and the month's end.
    pub signature_age_days: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareStatus {
    UpToDate,
    Behind,
    NoReference,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftwareFigures {
    pub name: String,
    pub version: String,
    pub reference_version: Option<String>,
    pub status: SoftwareStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceAvailability {
    pub name: String,
    pub kind: String,
    pub address: String,
    pub probed_by: String,
    /// Time up (or degraded) over the time its state was known, one decimal.
    pub availability_percent: Option<f64>,
    pub observed_seconds: i64,
    /// The month so far: what `observed_seconds` is out of.
    pub window_seconds: i64,
    pub down_seconds: i64,
    pub outages: u32,
}

// ---- alerts and tickets ----

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IncidentFigures {
    pub alerts_opened: u32,
    pub alerts_resolved: u32,
    /// Of the alerts resolved in the month, from first seen to resolved.
    pub median_resolve_seconds: Option<i64>,
    pub longest_resolve_seconds: Option<i64>,
    /// The tier's response SLA, in support hours.
    pub sla_hours: u64,
    pub tickets: Vec<TicketFigures>,
    pub sla_met: u32,
    pub sla_missed: u32,
    pub sla_pending: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaOutcome {
    Met,
    Missed,
    /// No response yet, and not due yet.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketFigures {
    pub alert_id: u64,
    pub summary: String,
    pub machine: String,
    /// When the ticket was sent (the end of the alert's grace).
    pub opened_at: Timestamp,
    pub response_due: Timestamp,
    /// The first acknowledgement or resolution.
    pub responded_at: Option<Timestamp>,
    /// Support time between opened and responded (or now), in seconds.
    pub response_support_seconds: i64,
    pub outcome: SlaOutcome,
}

// ---- the computation ----

/// The month's figures of `input.clinic`.
pub fn monthly_figures(
    input: &MonthInput,
    month: Month,
    now: Timestamp,
    context: &ReportContext,
) -> MonthlyFigures {
    let zone = &context.zone;
    let start = month.start(zone);
    let end = month.end(zone);
    let upto = end.min(now).max(start);
    let tier = input.clinic.tier;
    let machines: Vec<&MachineInput> = input
        .machines
        .iter()
        .filter(|m| m.agent.enrolled_at < end)
        .filter(|m| m.agent.revoked_at.is_none_or(|at| at >= start))
        .collect();
    let has_data = machines.iter().any(|m| {
        m.agent.last_seen.is_some_and(|at| at >= start)
            || m.runs
                .values()
                .flatten()
                .any(|r| r.finished_at >= start && r.finished_at < end)
    });
    let backups = (tier != Tier::Cmp0).then(|| backup_figures(&machines, month, upto, zone));
    let preventive =
        (tier == Tier::Cmp3).then(|| preventive_figures(&machines, start, upto, context));
    let incidents = (tier != Tier::Cmp0).then(|| incident_figures(input, start, end, now, context));
    MonthlyFigures {
        clinic_id: input.clinic.id.clone(),
        clinic_name: input.clinic.name.clone(),
        tier,
        month,
        time_zone: zone.iana_name().unwrap_or("UTC+4").to_owned(),
        period_start: start,
        period_end: end,
        generated_at: now,
        msp_name: context.msp_name.clone(),
        has_data,
        inventory: inventory(&machines),
        backups,
        preventive,
        incidents,
    }
}

fn percent(part: u32, whole: u32) -> Option<u32> {
    (whole > 0).then(|| ((u64::from(part) * 100 + u64::from(whole) / 2) / u64::from(whole)) as u32)
}

fn inventory(machines: &[&MachineInput]) -> Inventory {
    let mut out = Inventory::default();
    for m in machines {
        let snapshot = m.agent.snapshot.as_ref();
        out.machines.push(MachineInventory {
            hostname: m.agent.hostname.clone(),
            role: m.agent.role.as_str().to_owned(),
            os: snapshot
                .map(|s| s.os_label())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| m.agent.os.clone()),
            agent_version: m.agent.agent_version.clone(),
            enrolled_at: m.agent.enrolled_at,
            last_seen: m.agent.last_seen,
            memory_total_bytes: snapshot.map(|s| s.memory_total_bytes),
            disks: snapshot
                .map(|s| {
                    s.disks
                        .iter()
                        .filter(|d| !d.removable && d.total_bytes > 0)
                        .map(|d| DiskFigures {
                            mount_point: d.mount_point.clone(),
                            total_bytes: d.total_bytes,
                            used_percent: (d.total_bytes.saturating_sub(d.available_bytes) * 100
                                / d.total_bytes) as u32,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        for d in &m.devices {
            if let Some(current) = &d.current {
                out.devices.push(DeviceInventory {
                    name: current.device.name.clone(),
                    kind: current.device.kind.clone(),
                    address: current.device.address.clone(),
                    state: current.device.state,
                    probed_by: m.agent.hostname.clone(),
                });
            }
        }
    }
    out.devices
        .sort_by_key(|d| (kind_rank(&d.kind), d.name.clone()));
    out
}

/// Imaging modalities and PACS first, then the rest by kind.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "imaging-modality" => 0,
        "pacs" => 1,
        "nas" => 2,
        "router" | "switch" => 3,
        "ups" => 4,
        "printer" => 5,
        _ => 6,
    }
}

// ---- backups ----

fn backup_figures(
    machines: &[&MachineInput],
    month: Month,
    upto: Timestamp,
    zone: &TimeZone,
) -> BackupFigures {
    let mut out = BackupFigures::default();
    for m in machines {
        // Declared jobs first, then jobs only seen in results this month.
        let mut names: Vec<(String, Option<&DeclaredJobRecord>)> = m
            .declared
            .iter()
            .map(|d| (d.job.name.clone(), Some(d)))
            .collect();
        let start = month.start(zone);
        let end = month.end(zone);
        for runs in m.runs.values() {
            for run in runs {
                if run.kind == RunKind::Backup
                    && run.finished_at >= start
                    && run.finished_at < end
                    && !names.iter().any(|(n, _)| n == run.job_name())
                {
                    names.push((run.job_name().to_owned(), None));
                }
            }
        }
        for (name, declared) in names {
            let runs: Vec<&BackupRun> = m
                .runs
                .values()
                .flatten()
                .filter(|r| r.job_name() == name)
                .collect();
            out.jobs.push(job_figures(
                &m.agent.hostname,
                &name,
                declared,
                &runs,
                month,
                upto,
                zone,
            ));
        }
    }
    for j in &out.jobs {
        out.runs_expected += j.runs_expected.unwrap_or(0);
        out.runs_seen += j.runs_seen;
        out.successes += j.successes;
        out.warnings += j.warnings;
        out.failures += j.failures;
    }
    let denominator: u32 = out
        .jobs
        .iter()
        .map(|j| j.runs_expected.unwrap_or(0).max(j.runs_seen))
        .sum();
    out.success_percent = percent(out.successes, denominator);
    out
}

fn cadence_text(record: Option<&DeclaredJobRecord>) -> String {
    const DAYS: [&str; 7] = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."];
    let Some(job) = record.map(|r| &r.job) else {
        return "non déclarée".to_owned();
    };
    if !job.days_of_week.is_empty() {
        if job.days_of_week.len() == 7 {
            return "tous les jours".to_owned();
        }
        return job
            .days_of_week
            .iter()
            .filter_map(|d| DAYS.get(usize::from(d.saturating_sub(1))))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
    }
    match job.every_seconds {
        0 => "sans cadence".to_owned(),
        86_400 => "tous les jours".to_owned(),
        604_800 => "toutes les semaines".to_owned(),
        s if s % 86_400 == 0 => format!("tous les {} jours", s / 86_400),
        s if s % 3600 == 0 => format!("toutes les {} h", s / 3600),
        s => format!("toutes les {} min", s.div_ceil(60)),
    }
}

/// Whether a run is expected on `day` (ISO weekday cadences, or one every day or more often).
fn expected_on(record: &DeclaredJobRecord, day: Date) -> bool {
    let job = &record.job;
    if !job.days_of_week.is_empty() {
        let iso = day.weekday().to_monday_zero_offset() + 1;
        return job
            .days_of_week
            .iter()
            .any(|d| i16::from(*d) == i16::from(iso));
    }
    job.every_seconds > 0 && job.every_seconds <= 86_400
}

#[allow(clippy::too_many_arguments)]
fn job_figures(
    machine: &str,
    name: &str,
    declared: Option<&DeclaredJobRecord>,
    runs: &[&BackupRun],
    month: Month,
    upto: Timestamp,
    zone: &TimeZone,
) -> BackupJobFigures {
    let start = month.start(zone);
    let end = month.end(zone);
    let backups: Vec<&BackupRun> = runs
        .iter()
        .copied()
        .filter(|r| r.kind == RunKind::Backup)
        .collect();
    let in_month: Vec<&BackupRun> = backups
        .iter()
        .copied()
        .filter(|r| r.finished_at >= start && r.finished_at < end)
        .collect();
    let count = |s: BackupStatus| in_month.iter().filter(|r| r.status == s).count() as u32;
    let (successes, warnings, failures) = (
        count(BackupStatus::Success),
        count(BackupStatus::Warning),
        count(BackupStatus::Failed),
    );
    let runs_seen = in_month.len() as u32;

    // The window the job was declared in, within the month.
    let from = declared.map_or(start, |d| d.first_declared_at.max(start));
    let runs_expected = declared.and_then(|d| {
        if from >= upto {
            return Some(0);
        }
        if !d.job.days_of_week.is_empty() {
            let n = month
                .days()
                .into_iter()
                .filter(|day| {
                    let day_start = start_of(*day, zone);
                    let day_end = day
                        .checked_add(1.day())
                        .map_or(end, |next| start_of(next, zone));
                    day_start >= from && day_end <= upto && expected_on(d, *day)
                })
                .count();
            Some(n as u32)
        } else if d.job.every_seconds > 0 {
            let span = upto.duration_since(from).as_secs();
            Some((span / i64::try_from(d.job.every_seconds).unwrap_or(i64::MAX)) as u32)
        } else {
            None
        }
    });
    let denominator = runs_expected.unwrap_or(0).max(runs_seen);
    let runs_truncated = backups.len() >= crate::storage::RUNS_KEPT
        && backups
            .iter()
            .map(|r| r.finished_at)
            .min()
            .is_some_and(|t| t > from);

    // Longest stretch without a success: from the last success before the month (or the
    // window's start) through each success to the window's end.
    let successes_at: Vec<Timestamp> = backups
        .iter()
        .filter(|r| r.status == BackupStatus::Success && r.finished_at < upto)
        .map(|r| r.finished_at)
        .collect();
    let mut last = successes_at
        .iter()
        .copied()
        .filter(|t| *t < from)
        .max()
        .unwrap_or(from);
    let mut longest = SignedDuration::ZERO;
    for t in successes_at.iter().copied().filter(|t| *t >= from) {
        longest = longest.max(t.duration_since(last));
        last = t;
    }
    longest = longest.max(upto.duration_since(last));

    let checks_ok = runs
        .iter()
        .filter(|r| r.kind == RunKind::Check && r.status == BackupStatus::Success)
        .map(|r| r.finished_at);
    let last_good_check_at = declared
        .and_then(|d| d.job.last_good_check_at)
        .into_iter()
        .chain(checks_ok)
        .filter(|t| *t < end)
        .max();

    let days = month
        .days()
        .into_iter()
        .map(|day| {
            let day_start = start_of(day, zone);
            let day_end = day
                .checked_add(1.day())
                .map_or(end, |next| start_of(next, zone));
            if day_start >= upto {
                return DayMark::Future;
            }
            let of_day: Vec<&&BackupRun> = in_month
                .iter()
                .filter(|r| r.finished_at >= day_start && r.finished_at < day_end)
                .collect();
            let any = |s: BackupStatus| of_day.iter().any(|r| r.status == s);
            if of_day.is_empty() {
                let expected = declared
                    .is_some_and(|d| expected_on(d, day) && day_end > from && day_end <= upto);
                if expected {
                    DayMark::Missing
                } else {
                    DayMark::NotExpected
                }
            } else if any(BackupStatus::Failed) && !any(BackupStatus::Success) {
                DayMark::Failed
            } else if any(BackupStatus::Warning)
                || any(BackupStatus::Failed)
                || any(BackupStatus::Unknown)
            {
                DayMark::Warning
            } else {
                DayMark::Success
            }
        })
        .collect();

    BackupJobFigures {
        machine: machine.to_owned(),
        job: name.to_owned(),
        declared: declared.is_some(),
        cadence: cadence_text(declared),
        runs_expected,
        runs_seen,
        successes,
        warnings,
        failures,
        success_percent: percent(successes, denominator),
        longest_without_success_seconds: longest.as_secs(),
        last_success_at: successes_at.iter().copied().filter(|t| *t < end).max(),
        check_expected: declared.is_some_and(|d| d.job.check_every_seconds > 0),
        last_good_check_at,
        days,
        runs_truncated,
    }
}

// ---- preventive ----

fn preventive_figures(
    machines: &[&MachineInput],
    start: Timestamp,
    upto: Timestamp,
    context: &ReportContext,
) -> PreventiveFigures {
    let mut out = PreventiveFigures::default();
    for m in machines {
        let updates = m.os_updates.as_ref().map(|u| UpdatesFigures {
            pending: u.value.pending_count,
            security: u.value.security_count,
            reboot_required: u.value.reboot_required,
            as_of: u.collected_at,
        });
        let antivirus = m.antivirus.as_ref().map(|av| AntivirusFigures {
            none_found: av.value.none_found,
            products: av
                .value
                .products
                .iter()
                .map(|p| AntivirusProductFigures {
                    name: p.name.clone(),
                    enabled: p.enabled,
                    realtime_protection: p.realtime_protection,
                    signature_age_days: p
                        .signatures_updated_at
                        .map(|at| upto.duration_since(at).as_secs().max(0) / 86_400),
                })
                .collect(),
            as_of: av.collected_at,
        });
        let software =
            m.software
                .iter()
                .flat_map(|s| &s.value.items)
                .map(|item| {
                    let reference = context.software_references.iter().find(|r| {
                        glob(&r.pattern, &item.watch_name) || glob(&r.pattern, &item.name)
                    });
                    let status = match reference {
                        None => SoftwareStatus::NoReference,
                        Some(r) if compare_versions(&item.version, &r.min_version).is_lt() => {
                            SoftwareStatus::Behind
                        }
                        Some(_) => SoftwareStatus::UpToDate,
                    };
                    SoftwareFigures {
                        name: item.name.clone(),
                        version: item.version.clone(),
                        reference_version: reference.map(|r| r.min_version.clone()),
                        status,
                    }
                })
                .collect();
        out.machines.push(MachinePreventive {
            machine: m.agent.hostname.clone(),
            updates,
            antivirus,
            software,
        });
        for d in &m.devices {
            out.devices
                .push(availability(d, &m.agent.hostname, start, upto));
        }
    }
    out.devices
        .sort_by_key(|d| (kind_rank(&d.kind), d.name.clone()));
    out
}

/// Up (or degraded) time over the time the device's state was known within `[start, upto)`.
fn availability(
    device: &DeviceInput,
    probed_by: &str,
    start: Timestamp,
    upto: Timestamp,
) -> DeviceAvailability {
    let mut observed = 0_i64;
    let mut down = 0_i64;
    let mut outages = 0_u32;
    let mut state_before: Option<DeviceState> = None;
    let mut segments: Vec<(Timestamp, DeviceState)> = Vec::new();
    for t in &device.transitions {
        if t.at <= start {
            state_before = Some(t.state);
        } else if t.at < upto {
            segments.push((t.at, t.state));
        }
    }
    let mut cursor = start;
    let mut state = state_before;
    for (at, next) in segments
        .iter()
        .copied()
        .chain([(upto, DeviceState::Unknown)])
    {
        let span = at.duration_since(cursor).as_secs().max(0);
        match state {
            Some(DeviceState::Up | DeviceState::Degraded) => observed += span,
            Some(DeviceState::Down) => {
                observed += span;
                down += span;
            }
            Some(DeviceState::Unknown) | None => {}
        }
        if next == DeviceState::Down && state != Some(DeviceState::Down) && at < upto {
            outages += 1;
        }
        cursor = at;
        state = Some(next);
    }
    let (kind, address) = device
        .current
        .as_ref()
        .map(|c| (c.device.kind.clone(), c.device.address.clone()))
        .unwrap_or_default();
    DeviceAvailability {
        name: device.name.clone(),
        kind,
        address,
        probed_by: probed_by.to_owned(),
        availability_percent: (observed > 0)
            .then(|| ((observed - down) as f64 * 1000.0 / observed as f64).round() / 10.0),
        observed_seconds: observed,
        window_seconds: upto.duration_since(start).as_secs().max(0),
        down_seconds: down,
        outages,
    }
}

// ---- alerts and tickets ----

fn incident_figures(
    input: &MonthInput,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
    context: &ReportContext,
) -> IncidentFigures {
    let tier = input.clinic.tier;
    let in_month = |t: Timestamp| t >= start && t < end;
    let mut out = IncidentFigures {
        sla_hours: match tier {
            Tier::Cmp0 => context.sla.cmp0,
            Tier::Cmp1 => context.sla.cmp1,
            Tier::Cmp3 => context.sla.cmp3,
        },
        ..IncidentFigures::default()
    };
    out.alerts_opened = input
        .alerts
        .iter()
        .filter(|a| in_month(a.first_seen))
        .count() as u32;
    let mut resolve: Vec<i64> = input
        .alerts
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .filter_map(|a| a.resolved_at.map(|r| (a, r)))
        .filter(|(_, r)| in_month(*r))
        .map(|(a, r)| r.duration_since(a.first_seen).as_secs().max(0))
        .collect();
    resolve.sort_unstable();
    out.alerts_resolved = resolve.len() as u32;
    out.median_resolve_seconds = resolve.get(resolve.len() / 2).copied();
    out.longest_resolve_seconds = resolve.last().copied();

    let calendar = SupportCalendar::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut records: Vec<&Escalation> = input
        .escalations
        .iter()
        .filter(|e| e.state != EscalationState::Cancelled)
        .filter(|e| e.ticket_id.is_some() || e.create_sent)
        .filter(|e| in_month(e.create_after))
        .collect();
    records.sort_by_key(|e| (e.create_after, e.alert_id));
    for e in records {
        if !seen.insert(e.alert_id) {
            continue;
        }
        let alert = input
            .alerts
            .iter()
            .find(|a| a.id == e.alert_id)
            .unwrap_or(&e.alert);
        let responded_at = alert
            .history
            .iter()
            .filter(|h| h.action == "acknowledged" || h.action == "resolved")
            .map(|h| h.at)
            .min()
            .or(alert.resolved_at);
        let until = responded_at.unwrap_or(now);
        let outcome = match responded_at {
            Some(at) if at <= e.response_due => SlaOutcome::Met,
            Some(_) => SlaOutcome::Missed,
            None if now > e.response_due => SlaOutcome::Missed,
            None => SlaOutcome::Pending,
        };
        match outcome {
            SlaOutcome::Met => out.sla_met += 1,
            SlaOutcome::Missed => out.sla_missed += 1,
            SlaOutcome::Pending => out.sla_pending += 1,
        }
        out.tickets.push(TicketFigures {
            alert_id: e.alert_id,
            summary: alert.text.clone(),
            machine: alert
                .device
                .clone()
                .unwrap_or_else(|| alert.hostname.clone()),
            opened_at: e.create_after,
            response_due: e.response_due,
            responded_at,
            response_support_seconds: support_seconds(
                &calendar,
                &context.zone,
                tier,
                e.create_after,
                until,
            ),
            outcome,
        });
    }
    out
}

/// Support time of `tier` between `from` and `to`, counted in the tier's staffed windows in
/// `zone` (public holidays and weekends as the calendar says).
pub fn support_seconds(
    calendar: &SupportCalendar,
    zone: &TimeZone,
    tier: Tier,
    from: Timestamp,
    to: Timestamp,
) -> i64 {
    if to <= from {
        return 0;
    }
    let mut total = 0_i64;
    let mut day = from.to_zoned_datetime(zone.clone()).date();
    let last = to.to_zoned_datetime(zone.clone()).date();
    while day <= last {
        for w in calendar.windows(tier, day) {
            let (Ok(ws), Ok(we)) = (
                day.to_datetime(w.start).to_zoned_datetime(zone.clone()),
                day.to_datetime(w.end).to_zoned_datetime(zone.clone()),
            ) else {
                continue;
            };
            let a = ws.timestamp().max(from);
            let b = we.timestamp().min(to);
            if b > a {
                total += b.duration_since(a).as_secs();
            }
        }
        let Ok(next) = day.checked_add(1.day()) else {
            break;
        };
        day = next;
    }
    total
}
