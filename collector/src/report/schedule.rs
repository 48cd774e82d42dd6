//! `[reports]`: once a month, on `day` at `hour` (clinic time), the previous month's report of
//! every CMP1 and CMP3 clinic is generated into `DATA_DIR/reports/` and, when the clinic has a
//! contact address, e-mailed through the configured e-mail sink's SMTP settings, with the PDF
//! attached.
//!
//! Exactly once per clinic and month across restarts: a delivery marker (`storage/history.rs`)
//! is made durable as "sending", with the message's `Message-ID`, *before* the SMTP exchange,
//! and as "sent" right after. A crash between the two leaves "sending": the next round sends
//! again with the same `Message-ID` (the mail server or the clinic's mail program drops the
//! duplicate; a lost monthly report would be worse than a second copy of the same message).
//! A due month that the collector was down for is caught up at the next start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigie_domain::Tier;

use super::{Month, ReportContext, file_name, monthly_pdf_with};
use crate::alerts::clock::Clock;
use crate::config::CollectorConfig;
use crate::escalation::config::SinkKind;
use crate::escalation::sinks::SinkError;
use crate::escalation::sinks::email::EmailSink;
use crate::group_commit::GroupCommit;
use crate::model::Clinic;
use crate::storage::Storage;

pub const DEFAULT_DAY: u8 = 1;
pub const DEFAULT_HOUR: u8 = 7;
/// Seconds between two looks at the schedule.
pub const DEFAULT_CHECK_EVERY_SECONDS: u64 = 60;
/// After a failed send, the next try waits this long, doubled each time up to a day.
const RETRY_FIRST: SignedDuration = SignedDuration::from_mins(5);
const RETRY_MAX: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportsConfig {
    /// Generate and send the monthly reports by themselves. Default false.
    pub monthly: bool,
    /// Day of the month (1–28) and hour (0–23, clinic time) the previous month's reports go.
    pub day: u8,
    pub hour: u8,
    /// The `[[escalation.sinks]]` of type e-mail whose SMTP settings and sender are used;
    /// empty: the first e-mail sink.
    pub email_sink: String,
    /// Where generated reports are written; default `DATA_DIR/reports`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_dir: Option<PathBuf>,
    pub msp_name: String,
    pub msp_phone: String,
    pub check_every_seconds: u64,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            monthly: false,
            day: DEFAULT_DAY,
            hour: DEFAULT_HOUR,
            email_sink: String::new(),
            out_dir: None,
            msp_name: super::DEFAULT_MSP_NAME.to_owned(),
            msp_phone: super::DEFAULT_MSP_PHONE.to_owned(),
            check_every_seconds: DEFAULT_CHECK_EVERY_SECONDS,
        }
    }
}

impl ReportsConfig {
    pub fn is_default(&self) -> bool {
        *self == ReportsConfig::default()
    }

    /// Problems, as `reports.<field> ...` sentences; `config` for the sink's name.
    pub fn problems(&self, config: &CollectorConfig) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=28).contains(&self.day) {
            problems.push(format!(
                "reports.day = {} must be between 1 and 28 (every month has it)",
                self.day
            ));
        }
        if self.hour > 23 {
            problems.push(format!(
                "reports.hour = {} must be between 0 and 23",
                self.hour
            ));
        }
        if self.check_every_seconds == 0 {
            problems.push("reports.check_every_seconds must be at least 1".to_owned());
        }
        if !self.email_sink.is_empty() && email_settings(config).is_none() {
            problems.push(format!(
                "reports.email_sink = {:?} is not an [[escalation.sinks]] of type \"email\"",
                self.email_sink
            ));
        }
        problems
    }
}

/// The report context the configuration gives (SLAs, software references, MSP).
pub fn context_of(config: &CollectorConfig) -> ReportContext {
    ReportContext {
        zone: crate::alerts::opening_hours::clinic_zone(),
        sla: config.escalation.response_sla_hours.clone(),
        software_references: config.alerts.software.clone(),
        msp_name: config.reports.msp_name.clone(),
        msp_phone: config.reports.msp_phone.clone(),
    }
}

fn email_settings(config: &CollectorConfig) -> Option<&crate::escalation::config::EmailConfig> {
    let wanted = &config.reports.email_sink;
    config
        .escalation
        .sinks
        .iter()
        .filter(|s| wanted.is_empty() || &s.name == wanted)
        .find_map(|s| match &s.kind {
            SinkKind::Email(e) => Some(e),
            _ => None,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Written to disk; the clinic has no contact address.
    NoContact,
    /// Sending may have started: the next round sends again with the same Message-ID.
    Sending,
    Sent,
    /// The mail server refused it for good (address, credentials): a person must look.
    Refused,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::NoContact => "no_contact",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Refused => "refused",
        }
    }
}

/// What the schedule did for one clinic and month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDelivery {
    pub month: String,
    pub state: DeliveryState,
    pub generated_at: Timestamp,
    pub pdf_file: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub message_id: String,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
}

/// The month whose reports are due at `now`, once `day` at `hour` of this month has passed.
pub fn due_month(now: Timestamp, config: &ReportsConfig, zone: &jiff::tz::TimeZone) -> Month {
    let current = Month::containing(now, zone);
    let at = date(current.year, current.month, config.day.clamp(1, 28) as i8)
        .to_datetime(jiff::civil::time(config.hour.min(23) as i8, 0, 0, 0))
        .to_zoned_datetime(zone.clone())
        .map(|z| z.timestamp())
        .unwrap_or(now);
    if now >= at {
        current.previous()
    } else {
        current.previous().previous()
    }
}

/// The same Message-ID on every attempt for a clinic and month.
pub fn message_id(clinic_id: &str, month: Month) -> String {
    format!("<report-{month}-{clinic_id}@vigie>")
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Report(#[from] super::ReportError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("a flush to disk failed: {0}")]
    Durable(String),
    #[error("the storage task failed: {0}")]
    Task(String),
}

/// What sends the e-mail: the SMTP transport of an e-mail sink (tests record instead).
pub enum Mailer {
    Smtp(Box<EmailSink>),
    #[cfg(test)]
    Recorder(tests::Recorder),
}

impl Mailer {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        file_name: &str,
        pdf: Vec<u8>,
        message_id: &str,
    ) -> Result<(), SinkError> {
        match self {
            Mailer::Smtp(sink) => {
                sink.send_report(to, subject, body, file_name, pdf, message_id)
                    .await
            }
            #[cfg(test)]
            Mailer::Recorder(r) => r.send(to, file_name, &pdf, message_id),
        }
    }
}

/// The schedule's state: what it needs to generate and send.
pub struct Schedule {
    storage: Storage,
    commit: GroupCommit,
    config: ReportsConfig,
    context: ReportContext,
    out_dir: PathBuf,
    mailer: Option<Mailer>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("out_dir", &self.out_dir)
            .finish_non_exhaustive()
    }
}

impl Schedule {
    pub fn new(
        storage: Storage,
        commit: GroupCommit,
        config: &CollectorConfig,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SinkError> {
        let mailer = match email_settings(config) {
            Some(email) => {
                crate::install_crypto_provider();
                Some(Mailer::Smtp(Box::new(EmailSink::new(email)?)))
            }
            None => None,
        };
        Ok(Self::with_mailer(
            storage, commit, config, data_dir, clock, mailer,
        ))
    }

    pub fn with_mailer(
        storage: Storage,
        commit: GroupCommit,
        config: &CollectorConfig,
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        mailer: Option<Mailer>,
    ) -> Self {
        Schedule {
            storage,
            commit,
            config: config.reports.clone(),
            context: context_of(config),
            out_dir: config
                .reports
                .out_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("reports")),
            mailer,
            clock,
        }
    }

    async fn durable(&self) -> Result<(), ScheduleError> {
        self.commit
            .durable()
            .await
            .map_err(|e| ScheduleError::Durable(e.to_string()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Storage) -> T + Send + 'static,
    ) -> Result<T, ScheduleError> {
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || f(storage))
            .await
            .map_err(|e| ScheduleError::Task(e.to_string()))
    }

    /// One look at the schedule: every due report not done yet. Returns how many e-mails went.
    pub async fn round(&self) -> Result<u32, ScheduleError> {
        let now = self.clock.now();
        let month = due_month(now, &self.config, &self.context.zone);
        let end = month.end(&self.context.zone);
        let clinics = self.blocking(|s| s.list_clinics()).await??;
        let mut sent = 0;
        for clinic in clinics {
            if clinic.tier == Tier::Cmp0 || clinic.created_at >= end {
                continue;
            }
            match self.deliver(&clinic, month, now).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(clinic_id = %clinic.id, %month, %error, "monthly report failed");
                    if matches!(error, ScheduleError::Durable(_)) {
                        return Err(error);
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Generates and sends one clinic's report if not done; `true` when an e-mail went.
    async fn deliver(
        &self,
        clinic: &Clinic,
        month: Month,
        now: Timestamp,
    ) -> Result<bool, ScheduleError> {
        let key = (clinic.id.clone(), month.to_string());
        let previous = {
            let (id, m) = key.clone();
            self.blocking(move |s| s.report_delivery(&id, &m)).await??
        };
        let contact = clinic.contact_email.clone().unwrap_or_default();
        if self.mailer.is_none() && previous.is_some() {
            return Ok(false);
        }
        match &previous {
            Some(d) if matches!(d.state, DeliveryState::Sent | DeliveryState::Refused) => {
                return Ok(false);
            }
            Some(d) if d.state == DeliveryState::NoContact && contact.is_empty() => {
                return Ok(false);
            }
            Some(d) if d.next_attempt_at.is_some_and(|at| now < at) => return Ok(false),
            _ => {}
        }
        // Generate (again after a crash: the same facts give the same figures).
        let (pdf, figures) = {
            let (id, context) = (clinic.id.clone(), self.context.clone());
            self.blocking(move |s| monthly_pdf_with(&s, &id, month, now, &context))
                .await??
        };
        let pdf_name = file_name(&clinic.name, month, "pdf");
        write_atomic(&self.out_dir.join(&pdf_name), &pdf)?;
        let json = serde_json::to_vec_pretty(&figures).unwrap_or_default();
        write_atomic(
            &self.out_dir.join(file_name(&clinic.name, month, "json")),
            &json,
        )?;
        let mut delivery = previous.unwrap_or(ReportDelivery {
            month: month.to_string(),
            state: DeliveryState::NoContact,
            generated_at: now,
            pdf_file: pdf_name.clone(),
            to: String::new(),
            message_id: message_id(&clinic.id, month),
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            sent_at: None,
        });
        delivery.generated_at = now;
        let Some(mailer) = self.mailer.as_ref().filter(|_| !contact.is_empty()) else {
            if contact.is_empty() {
                tracing::info!(clinic_id = %clinic.id, %month, file = %pdf_name,
                    "monthly report written; the clinic has no contact address");
            } else {
                tracing::warn!(clinic_id = %clinic.id, %month, file = %pdf_name,
                    "monthly report written; no [[escalation.sinks]] of type email to send it");
            }
            delivery.state = DeliveryState::NoContact;
            self.put(&key, delivery).await?;
            return Ok(false);
        };
        delivery.state = DeliveryState::Sending;
        delivery.to = contact.clone();
        delivery.attempts += 1;
        self.put(&key, delivery.clone()).await?;
        let subject = format!("Rapport mensuel {} — {}", month.label(), clinic.name);
        let body = format!(
            "Bonjour,\n\nVeuillez trouver ci-joint le rapport mensuel de {} pour le cabinet {} : \
             sauvegardes, maintenance et suivi des incidents.\n\n{}\n{}\n",
            month.label(),
            clinic.name,
            self.context.msp_name,
            self.context.msp_phone
        );
        let result = mailer
            .send(
                &contact,
                &subject,
                &body,
                &pdf_name,
                pdf,
                &delivery.message_id,
            )
            .await;
        match result {
            Ok(()) => {
                delivery.state = DeliveryState::Sent;
                delivery.sent_at = Some(self.clock.now());
                delivery.last_error = None;
                delivery.next_attempt_at = None;
                tracing::info!(clinic_id = %clinic.id, %month, to = %contact, "monthly report sent");
                self.put(&key, delivery).await?;
                Ok(true)
            }
            Err(error) => {
                let permanent = matches!(error, SinkError::Refused(_) | SinkError::Config(_));
                delivery.last_error = Some(error.to_string());
                if permanent {
                    delivery.state = DeliveryState::Refused;
                    delivery.next_attempt_at = None;
                    tracing::error!(clinic_id = %clinic.id, %month, to = %contact, %error,
                        "monthly report refused by the mail server");
                } else {
                    // Still "sending": the outcome may be unknown; the retry keeps the Message-ID.
                    let wait = crate::escalation::queue::backoff(
                        delivery.attempts,
                        RETRY_FIRST,
                        RETRY_MAX,
                    );
                    delivery.next_attempt_at = now.checked_add(wait).ok();
                    tracing::warn!(clinic_id = %clinic.id, %month, to = %contact, %error,
                        attempts = delivery.attempts, "monthly report not sent, will retry");
                }
                self.put(&key, delivery).await?;
                Ok(false)
            }
        }
    }

    async fn put(
        &self,
        key: &(String, String),
        delivery: ReportDelivery,
    ) -> Result<(), ScheduleError> {
        let (id, month) = key.clone();
        self.blocking(move |s| s.put_report_delivery(&id, &month, &delivery))
            .await??;
        self.durable().await
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ScheduleError> {
    let fail = |source| ScheduleError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Runs the schedule until `stop`, when `[reports] monthly = true`.
pub fn spawn(schedule: Schedule, mut stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    if !schedule.config.monthly {
        return None;
    }
    let every = Duration::from_secs(schedule.config.check_every_seconds.max(1));
    Some(tokio::spawn(async move {
        loop {
            match schedule.round().await {
                Ok(0) => {}
                Ok(sent) => tracing::info!(sent, "monthly reports sent"),
                Err(error) => {
                    tracing::error!(%error, "monthly report schedule stopped");
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::alerts::clock::FixedClock;

    /// One e-mail as the recorder saw it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sent {
        pub to: String,
        pub file_name: String,
        pub message_id: String,
        pub is_pdf: bool,
    }

    /// Records e-mails; fails them while `fail` holds an error.
    #[derive(Debug, Clone, Default)]
    pub struct Recorder {
        pub sent: Arc<Mutex<Vec<Sent>>>,
        pub fail: Arc<Mutex<Option<SinkError>>>,
    }

    impl Recorder {
        pub fn send(
            &self,
            to: &str,
            file_name: &str,
            pdf: &[u8],
            message_id: &str,
        ) -> Result<(), SinkError> {
            if let Some(error) = self.fail.lock().expect("lock").clone() {
                return Err(error);
            }
            self.sent.lock().expect("lock").push(Sent {
                to: to.to_owned(),
                file_name: file_name.to_owned(),
                message_id: message_id.to_owned(),
                is_pdf: pdf.starts_with(b"%PDF-"),
            });
            Ok(())
        }

        fn sent(&self) -> Vec<Sent> {
            self.sent.lock().expect("lock").clone()
        }
    }

    fn clinic(name: &str, tier: Tier, contact: Option<&str>) -> Clinic {
        Clinic {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            tier,
            created_at: at("2026-10-01 09:00"),
            rule_overrides: Default::default(),
            contact_email: contact.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn once_per_clinic_and_month_a_crash_resends_with_the_same_message_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let flusher = storage.clone();
        let (commit, _task) = GroupCommit::spawn(move || flusher.flush_durably().map(drop));
        let payet = clinic("Cabinet Dr Payet", Tier::Cmp1, Some("secretariat@payet.re"));
        let ouest = clinic("Radiologie de l'Ouest", Tier::Cmp3, None);
        let barachois = clinic("Cabinet du Barachois", Tier::Cmp0, Some("a@barachois.re"));
        for c in [&payet, &ouest, &barachois] {
            storage.add_clinic(c).expect("clinic");
        }
        let clock = Arc::new(FixedClock::new(at("2026-12-01 06:59")));
        let recorder = Recorder::default();
        let mut config = CollectorConfig::default();
        config.reports.monthly = true;
        let schedule = Schedule::with_mailer(
            storage.clone(),
            commit,
            &config,
            dir.path(),
            clock.clone(),
            Some(Mailer::Recorder(recorder.clone())),
        );
        // Before the 1st at 07:00: October's turn was last month (nothing recorded for it
        // here, so it is caught up: both clinics existed in October).
        assert_eq!(schedule.round().await.expect("round"), 1);
        assert_eq!(recorder.sent()[0].file_name, "Cabinet-Dr-Payet-2026-10.pdf");

        clock.set(at("2026-12-01 07:00"));
        assert_eq!(schedule.round().await.expect("round"), 1);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[1],
            Sent {
                to: "secretariat@payet.re".into(),
                file_name: "Cabinet-Dr-Payet-2026-11.pdf".into(),
                message_id: message_id(&payet.id, "2026-11".parse().expect("month")),
                is_pdf: true,
            }
        );
        // Written for the clinic without an address; CMP0 never.
        let reports = dir.path().join("reports");
        assert!(reports.join("Radiologie-de-l-Ouest-2026-11.pdf").is_file());
        assert!(reports.join("Radiologie-de-l-Ouest-2026-11.json").is_file());
        assert!(!reports.join("Cabinet-du-Barachois-2026-11.pdf").exists());
        // Again, and again later in the month: nothing more.
        assert_eq!(schedule.round().await.expect("round"), 0);
        clock.set(at("2026-12-20 10:00"));
        assert_eq!(schedule.round().await.expect("round"), 0);

        // An address given later: that month's report goes then.
        storage
            .update_clinic(&ouest.id, |c| {
                c.contact_email = Some("direction@ouest.re".into())
            })
            .expect("contact");
        assert_eq!(
            schedule.round().await.expect("round"),
            1,
            "the due month: November"
        );
        assert_eq!(schedule.round().await.expect("round"), 0);

        // The crash window: "sending" was made durable, then the process died. The next
        // round sends again, with the same Message-ID for the receiver to drop a duplicate.
        let december: Month = "2026-12".parse().expect("month");
        let id = message_id(&payet.id, december);
        let before = recorder.sent().len();
        storage
            .put_report_delivery(
                &payet.id,
                "2026-12",
                &ReportDelivery {
                    month: "2026-12".into(),
                    state: DeliveryState::Sending,
                    generated_at: at("2027-01-01 07:00"),
                    pdf_file: "Cabinet-Dr-Payet-2026-12.pdf".into(),
                    to: "secretariat@payet.re".into(),
                    message_id: id.clone(),
                    attempts: 1,
                    last_error: None,
                    next_attempt_at: None,
                    sent_at: None,
                },
            )
            .expect("marker");
        clock.set(at("2027-01-01 07:01"));
        // A mail server that is down: retried later, same message.
        *recorder.fail.lock().expect("lock") = Some(SinkError::Transient("refused".into()));
        assert_eq!(schedule.round().await.expect("round"), 0);
        let marker = storage
            .report_delivery(&payet.id, "2026-12")
            .expect("read")
            .expect("marker");
        assert_eq!((marker.state, marker.attempts), (DeliveryState::Sending, 2));
        *recorder.fail.lock().expect("lock") = None;
        assert_eq!(
            schedule.round().await.expect("round"),
            0,
            "not before the backoff"
        );
        clock.set(at("2027-01-01 07:30"));
        assert_eq!(schedule.round().await.expect("round"), 2);
        let resent: Vec<Sent> = recorder.sent().split_off(before);
        assert!(resent.iter().any(|s| s.message_id == id), "{resent:?}");
        assert_eq!(schedule.round().await.expect("round"), 0);
    }

    fn at(text: &str) -> Timestamp {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", text)
            .expect("datetime")
            .to_zoned_datetime(crate::alerts::opening_hours::clinic_zone())
            .expect("zoned")
            .timestamp()
    }

    #[test]
    fn the_previous_month_is_due_from_the_configured_moment() {
        let zone = crate::alerts::opening_hours::clinic_zone();
        let config = ReportsConfig::default();
        let due = |t: &str| due_month(at(t), &config, &zone).to_string();
        assert_eq!(due("2026-12-01 06:59"), "2026-10");
        assert_eq!(due("2026-12-01 07:00"), "2026-11");
        assert_eq!(due("2026-12-31 23:59"), "2026-11");
        assert_eq!(due("2027-01-01 07:00"), "2026-12");
        assert_eq!(
            message_id("c1", "2026-11".parse().expect("month")),
            "<report-2026-11-c1@vigie>"
        );
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let text = include_str!("../../../deploy/collector-reports.toml");
        let config: CollectorConfig = toml::from_str(text).expect("deploy/collector-reports.toml");
        assert!(config.reports.monthly);
        assert_eq!((config.reports.day, config.reports.hour), (1, 7));
        assert_eq!(config.reports.problems(&config), Vec::<String>::new());
        assert!(email_settings(&config).is_some());
        assert!(
            !CollectorConfig::default().reports.monthly,
            "off unless asked"
        );
    }

    #[test]
    fn bad_settings_are_all_reported() {
        let mut config = CollectorConfig::default();
        config.reports.day = 31;
        config.reports.hour = 24;
        config.reports.email_sink = "nope".into();
        let problems = config.reports.problems(&config);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
