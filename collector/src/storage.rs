//! The collector's database: the only module that names `sled`. It speaks in domain records
//! (clinics, enrollment tokens, agents, reports) and offers [`Storage::flush_durably`], which
//! the group-commit flusher calls.
//!
//! Encoding: clinics, tokens and agents are JSON (serde) so a record can gain fields; reports
//! are kept as their protobuf encoding (`vigie.v1.Report`), exactly as received, so payload
//! kinds added by later protocol versions are stored whole.
//!
//! Trees: `clinics` (id → Clinic), `tokens` (SHA-256 of the secret → TokenRecord), `agents`
//! (id → AgentRecord), `reports` (agent UUID bytes ‖ report UUID bytes → protobuf),
//! `report_counts` (agent UUID bytes → u64 big-endian), the last two updated in one
//! transaction so the count is exact without a scan.
//!
//! Alert facts and alerts (JSON): `backup_runs` (agent ␟ job ␟ end time → BackupRun, the last
//! [`RUNS_KEPT`] per job), `declared_jobs` (agent ␟ job → DeclaredJobRecord), `latest_facts`
//! (agent ␟ kind → Stamped fact), `lan_devices` (agent ␟ device → DeviceRecord), `alerts`
//! (id → Alert), `alert_series` (series key → Series), `alert_events` (sequence → AlertEvent,
//! written in the same transaction as the alert change it describes), `silences`
//! (id → Silence), `counters` (name → next number).
//!
//! Durability: sled's own flush ends with `sync_file_range` on Linux, which does not flush the
//! drive cache or metadata (sled issue #1452), and sled writes large values to `blobs/` files
//! without syncing them. So [`Storage::flush_durably`] flushes, then `fsync`s the main log file
//! `db/db`, every blob file not yet synced, and the blob folder.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use uuid::Uuid;

use crate::alerts::alert::{Alert, AlertEvent, EventKind, Series, Silence};
use crate::facts::{
    BackupRun, DeclaredJob, DeclaredJobRecord, DeviceRecord, Fact, OsUpdates, Stamped,
};
use crate::model::{AgentRecord, Clinic, TokenRecord};

/// Backup runs kept per job: enough for the median of the last 7 successes, with failures
/// in between.
pub const RUNS_KEPT: usize = 60;

/// Separates the parts of a text key (the ASCII unit separator never occurs in ids or names
/// a technician types).
const SEP: char = '\u{1f}';

/// The latest fact of each kind an agent reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    OsUpdates,
    Antivirus,
    Software,
}

impl FactKind {
    fn key(self, agent_id: &str) -> String {
        let kind = match self {
            FactKind::OsUpdates => "os_updates",
            FactKind::Antivirus => "antivirus",
            FactKind::Software => "software",
        };
        format!("{agent_id}{SEP}{kind}")
    }
}

/// One batch of alert changes, written atomically with their events.
#[derive(Debug, Clone, Default)]
pub struct AlertWrite {
    pub alerts: Vec<Alert>,
    pub series: Vec<(String, Series)>,
    /// (kind, notify, alert id): the event carries that alert as written here.
    pub events: Vec<(EventKind, bool, u64)>,
    /// The next alert id, when new alerts were numbered.
    pub next_alert_id: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("cannot sync {path} to disk: {source}")]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("damaged {what} record: {source}")]
    Corrupt {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot encode a {what} record: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("agent id {0:?} is not a UUID")]
    AgentId(String),
}

impl StorageError {
    /// The disk failed under sled (full, I/O error): sled keeps such an error and fails every
    /// later write, so the database must be reopened.
    pub fn is_io_failure(&self) -> bool {
        matches!(
            self,
            StorageError::Sled(sled::Error::Io(_)) | StorageError::Sync { .. }
        )
    }
}

/// Why an enrollment token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("unknown enrollment token")]
    Unknown,
    #[error("enrollment token already used")]
    Used,
    #[error("enrollment token expired at {0}")]
    Expired(Timestamp),
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error(transparent)]
    Rejected(#[from] TokenRejection),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What happened to one batch of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOutcome {
    /// Reports written now.
    pub new: usize,
    /// Reports that were already stored (or repeated within the batch).
    pub duplicates: usize,
}

/// A report ready to store: its id and its protobuf encoding.
#[derive(Debug, Clone)]
pub struct EncodedReport {
    pub id: Uuid,
    pub bytes: Vec<u8>,
}

/// sled page cache of the collector database.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Handle on the open database; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    db: sled::Db,
    clinics: sled::Tree,
    tokens: sled::Tree,
    agents: sled::Tree,
    reports: sled::Tree,
    report_counts: sled::Tree,
    backup_runs: sled::Tree,
    declared_jobs: sled::Tree,
    latest_facts: sled::Tree,
    lan_devices: sled::Tree,
    alerts: sled::Tree,
    alert_series: sled::Tree,
    alert_events: sled::Tree,
    silences: sled::Tree,
    counters: sled::Tree,
    durability: Arc<Durability>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("path", &self.durability.dir)
            .finish_non_exhaustive()
    }
}

/// What `fsync` needs beyond sled: the log file handle and the blob files already synced.
struct Durability {
    dir: PathBuf,
    log: File,
    synced_blobs: Mutex<HashSet<PathBuf>>,
    /// Benchmark-only switch (`[bench] fsync`): `false` skips the `fsync`s. Default `true`.
    fsync: AtomicBool,
}

impl Storage {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        // sled's page cache defaults to 1 GiB; bounded so that 10,000 connected agents and a
        // full cache stay well under 1 GiB of RSS.
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()?;
        // sled 0.34 keeps its log in `<dir>/db`; opened for writing so `sync_all` works on
        // every platform (Windows needs write access for FlushFileBuffers).
        let log_path = dir.join("db");
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|source| StorageError::Open {
                path: log_path.clone(),
                source,
            })?;
        let storage = Storage {
            clinics: db.open_tree("clinics")?,
            tokens: db.open_tree("tokens")?,
            agents: db.open_tree("agents")?,
            reports: db.open_tree("reports")?,
            report_counts: db.open_tree("report_counts")?,
            backup_runs: db.open_tree("backup_runs")?,
            declared_jobs: db.open_tree("declared_jobs")?,
            latest_facts: db.open_tree("latest_facts")?,
            lan_devices: db.open_tree("lan_devices")?,
            alerts: db.open_tree("alerts")?,
            alert_series: db.open_tree("alert_series")?,
            alert_events: db.open_tree("alert_events")?,
            silences: db.open_tree("silences")?,
            counters: db.open_tree("counters")?,
            db,
            durability: Arc::new(Durability {
                dir: dir.to_owned(),
                log,
                synced_blobs: Mutex::new(HashSet::new()),
                fsync: AtomicBool::new(true),
            }),
        };
        // The files sled just created must survive a power cut too.
        sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(storage)
    }

    /// Makes every write done before the call durable: sled flush, then `fsync` of the log
    /// file and of new blob files. Returns the bytes sled flushed.
    pub fn flush_durably(&self) -> Result<usize, StorageError> {
        let flushed = self.db.flush()?;
        let d = &self.durability;
        if !d.fsync.load(Ordering::Relaxed) {
            return Ok(flushed);
        }
        d.log.sync_all().map_err(|source| StorageError::Sync {
            path: d.dir.join("db"),
            source,
        })?;
        self.sync_new_blobs()?;
        Ok(flushed)
    }

    /// Benchmark only (`[bench] fsync = false`, to measure what the `fsync`s cost): `false`
    /// makes [`Storage::flush_durably`] stop after sled's own flush, which does not survive a
    /// power cut. Never turn it off on a real collector.
    pub fn set_fsync(&self, on: bool) {
        self.durability.fsync.store(on, Ordering::Relaxed);
    }

    fn sync_new_blobs(&self) -> Result<(), StorageError> {
        let blobs = self.durability.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else {
            return Ok(());
        };
        let mut synced = self
            .durability
            .synced_blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut any_new = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if synced.contains(&path) {
                continue;
            }
            let sync = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .and_then(|f| f.sync_all());
            match sync {
                Ok(()) => {
                    synced.insert(path);
                    any_new = true;
                }
                // sled removes blobs it no longer needs, possibly while we list them.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StorageError::Sync { path, source }),
            }
        }
        if any_new {
            sync_dir(&blobs)?;
        }
        Ok(())
    }

    // ---- clinics ----

    pub fn add_clinic(&self, clinic: &Clinic) -> Result<(), StorageError> {
        self.clinics
            .insert(clinic.id.as_bytes(), encode("clinic", clinic)?)?;
        Ok(())
    }

    pub fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        self.clinics
            .get(id.as_bytes())?
            .map(|v| decode("clinic", &v))
            .transpose()
    }

    /// Read-modify-write of one clinic (the admin service is its only writer). `None` if there
    /// is no such clinic.
    pub fn update_clinic(
        &self,
        id: &str,
        change: impl FnOnce(&mut Clinic),
    ) -> Result<Option<Clinic>, StorageError> {
        let Some(mut clinic) = self.clinic(id)? else {
            return Ok(None);
        };
        change(&mut clinic);
        self.add_clinic(&clinic)?;
        Ok(Some(clinic))
    }

    /// All clinics, oldest first (ids are UUIDv7, so key order is creation order).
    pub fn list_clinics(&self) -> Result<Vec<Clinic>, StorageError> {
        self.clinics
            .iter()
            .map(|item| decode("clinic", &item?.1))
            .collect()
    }

    // ---- enrollment tokens ----

    pub fn put_token(
        &self,
        secret_hash: &[u8; 32],
        token: &TokenRecord,
    ) -> Result<(), StorageError> {
        self.tokens
            .insert(secret_hash.as_slice(), encode("token", token)?)?;
        Ok(())
    }

    pub fn token(&self, secret_hash: &[u8; 32]) -> Result<Option<TokenRecord>, StorageError> {
        self.tokens
            .get(secret_hash.as_slice())?
            .map(|v| decode("token", &v))
            .transpose()
    }

    /// Spends a token and records the new agent, atomically: of two enrollments racing with one
    /// token, exactly one succeeds. `make_agent` builds the record from the token (it may be
    /// called more than once if the transaction retries).
    pub fn enroll_agent(
        &self,
        secret_hash: &[u8; 32],
        now: Timestamp,
        make_agent: impl Fn(&TokenRecord) -> AgentRecord,
    ) -> Result<AgentRecord, EnrollError> {
        let result = (&self.tokens, &self.agents).transaction(|(tokens, agents)| {
            let Some(raw) = tokens.get(secret_hash.as_slice())? else {
                return abort(EnrollError::Rejected(TokenRejection::Unknown));
            };
            let mut token: TokenRecord = decode("token", &raw).or_else(|e| abort(e.into()))?;
            if token.used {
                return abort(TokenRejection::Used.into());
            }
            if token.expires_at <= now {
                return abort(TokenRejection::Expired(token.expires_at).into());
            }
            let agent = make_agent(&token);
            token.used = true;
            token.used_by = Some(agent.id.clone());
            let token_bytes = encode("token", &token).or_else(|e| abort(e.into()))?;
            let agent_bytes = encode("agent", &agent).or_else(|e| abort(e.into()))?;
            tokens.insert(secret_hash.as_slice(), token_bytes)?;
            agents.insert(agent.id.as_bytes(), agent_bytes)?;
            Ok(agent)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => EnrollError::Storage(e.into()),
        })
    }

    // ---- agents ----

    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StorageError> {
        self.agents
            .get(id.as_bytes())?
            .map(|v| decode("agent", &v))
            .transpose()
    }

    /// Agents, oldest enrollment first, optionally only those of one clinic.
    pub fn list_agents(&self, clinic_id: Option<&str>) -> Result<Vec<AgentRecord>, StorageError> {
        let mut agents = Vec::new();
        for item in self.agents.iter() {
            let agent: AgentRecord = decode("agent", &item?.1)?;
            if clinic_id.is_none_or(|c| c == agent.clinic_id) {
                agents.push(agent);
            }
        }
        Ok(agents)
    }

    /// Read-modify-write of one agent record without losing a concurrent update (compare and
    /// swap, retried). `None` if there is no such agent.
    pub fn update_agent(
        &self,
        id: &str,
        mut change: impl FnMut(&mut AgentRecord),
    ) -> Result<Option<AgentRecord>, StorageError> {
        loop {
            let Some(old) = self.agents.get(id.as_bytes())? else {
                return Ok(None);
            };
            let mut agent: AgentRecord = decode("agent", &old)?;
            change(&mut agent);
            let new = encode("agent", &agent)?;
            if self
                .agents
                .compare_and_swap(id.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(agent));
            }
        }
    }

    /// Marks an agent revoked. `None` if there is no such agent.
    pub fn revoke_agent(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AgentRecord>, StorageError> {
        self.update_agent(id, |agent| {
            if !agent.revoked {
                agent.revoked = true;
                agent.revoked_at = Some(now);
            }
        })
    }

    // ---- reports ----

    /// Stores the reports not already stored for this agent, and counts them, in one
    /// transaction. Resending a stored id writes nothing.
    pub fn store_reports(
        &self,
        agent_id: &str,
        reports: &[EncodedReport],
    ) -> Result<StoreOutcome, StorageError> {
        let agent = agent_key(agent_id)?;
        let result = (&self.reports, &self.report_counts).transaction(|(stored, counts)| {
            let mut seen = HashSet::new();
            let mut outcome = StoreOutcome::default();
            for report in reports {
                let key = report_key(&agent, &report.id);
                if !seen.insert(report.id) || stored.get(key)?.is_some() {
                    outcome.duplicates += 1;
                    continue;
                }
                stored.insert(key.as_slice(), report.bytes.as_slice())?;
                outcome.new += 1;
            }
            if outcome.new > 0 {
                let count = counts.get(agent)?.map_or(0, |v| read_u64(&v));
                let count = count + outcome.new as u64;
                counts.insert(agent.as_slice(), count.to_be_bytes().as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<Infallible>>(outcome)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(never) => match never {},
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// How many reports are stored for this agent (kept by [`Storage::store_reports`]).
    pub fn report_count(&self, agent_id: &str) -> Result<u64, StorageError> {
        let agent = agent_key(agent_id)?;
        Ok(self.report_counts.get(agent)?.map_or(0, |v| read_u64(&v)))
    }

    /// The stored protobuf encoding of one report.
    pub fn report(
        &self,
        agent_id: &str,
        report_id: &Uuid,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let agent = agent_key(agent_id)?;
        Ok(self
            .reports
            .get(report_key(&agent, report_id))?
            .map(|v| v.to_vec()))
    }

    /// The protobuf encodings of an agent's reports, in id (so collection time) order.
    pub fn reports_of(&self, agent_id: &str) -> Result<Vec<(Uuid, Vec<u8>)>, StorageError> {
        let agent = agent_key(agent_id)?;
        self.reports
            .scan_prefix(agent)
            .map(|item| {
                let (key, value) = item?;
                let id = Uuid::from_slice(&key[16..]).unwrap_or_default();
                Ok((id, value.to_vec()))
            })
            .collect()
    }
}

impl Storage {
    // ---- facts the alert rules judge ----

    /// Records what one report says, keeping only what is newer than what is kept.
    pub fn record_fact(
        &self,
        agent_id: &str,
        collected_at: Timestamp,
        fact: &Fact,
    ) -> Result<(), StorageError> {
        match fact {
            Fact::Backup { runs, declared } => {
                for run in runs {
                    self.put_backup_run(agent_id, run)?;
                }
                if !declared.is_empty() {
                    self.note_declared_jobs(agent_id, collected_at, declared)?;
                }
            }
            Fact::OsUpdates(status) => {
                self.update_json(
                    &self.latest_facts,
                    &FactKind::OsUpdates.key(agent_id),
                    |prev| {
                        let prev: Option<Stamped<OsUpdates>> = prev;
                        match prev {
                            Some(p) if p.collected_at > collected_at => Some(p),
                            p => Some(Stamped {
                                collected_at,
                                value: status.clone().merge(p.as_ref(), collected_at),
                            }),
                        }
                    },
                )?;
            }
            Fact::Antivirus(av) => {
                self.put_latest(agent_id, FactKind::Antivirus, collected_at, av)?
            }
            Fact::Software(sw) => {
                self.put_latest(agent_id, FactKind::Software, collected_at, sw)?
            }
            Fact::Lan(devices) => self.note_devices(agent_id, collected_at, devices)?,
        }
        Ok(())
    }

    fn put_latest<T: Serialize + DeserializeOwned + Clone>(
        &self,
        agent_id: &str,
        kind: FactKind,
        collected_at: Timestamp,
        value: &T,
    ) -> Result<(), StorageError> {
        self.update_json(&self.latest_facts, &kind.key(agent_id), |prev| {
            let prev: Option<Stamped<T>> = prev;
            match prev {
                Some(p) if p.collected_at > collected_at => Some(p),
                _ => Some(Stamped {
                    collected_at,
                    value: value.clone(),
                }),
            }
        })
    }

    /// The latest fact of `kind` an agent reported.
    pub fn latest_fact<T: DeserializeOwned>(
        &self,
        agent_id: &str,
        kind: FactKind,
    ) -> Result<Option<Stamped<T>>, StorageError> {
        self.latest_facts
            .get(kind.key(agent_id).as_bytes())?
            .map(|v| decode("fact", &v))
            .transpose()
    }

    fn put_backup_run(&self, agent_id: &str, run: &BackupRun) -> Result<(), StorageError> {
        let prefix = format!("{agent_id}{SEP}{}{SEP}", run.job);
        // Big-endian with the sign bit flipped: byte order is time order.
        let at = (run.finished_at.as_second() as u64) ^ (1 << 63);
        let mut key = prefix.clone().into_bytes();
        key.extend_from_slice(&at.to_be_bytes());
        self.backup_runs.insert(key, encode("backup run", run)?)?;
        let kept = self.backup_runs.scan_prefix(prefix.as_bytes()).count();
        if kept > RUNS_KEPT {
            let old: Vec<_> = self
                .backup_runs
                .scan_prefix(prefix.as_bytes())
                .keys()
                .take(kept - RUNS_KEPT)
                .collect::<Result<_, _>>()?;
            for key in old {
                self.backup_runs.remove(key)?;
            }
        }
        Ok(())
    }

    /// An agent's backup runs per job, oldest first.
    pub fn backup_runs(
        &self,
        agent_id: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<BackupRun>>, StorageError> {
        let mut jobs = std::collections::BTreeMap::<String, Vec<BackupRun>>::new();
        for item in self
            .backup_runs
            .scan_prefix(format!("{agent_id}{SEP}").as_bytes())
        {
            let run: BackupRun = decode("backup run", &item?.1)?;
            jobs.entry(run.job.clone()).or_default().push(run);
        }
        for runs in jobs.values_mut() {
            runs.sort_by_key(|r| r.finished_at);
        }
        Ok(jobs)
    }

    /// Replaces an agent's declared jobs with a newer declaration, keeping since when each
    /// job has been declared.
    fn note_declared_jobs(
        &self,
        agent_id: &str,
        at: Timestamp,
        jobs: &[DeclaredJob],
    ) -> Result<(), StorageError> {
        let current = self.declared_jobs(agent_id)?;
        if current.iter().any(|d| d.declared_at > at) {
            return Ok(());
        }
        for old in &current {
            if !jobs.iter().any(|j| j.name == old.job.name) {
                self.declared_jobs
                    .remove(format!("{agent_id}{SEP}{}", old.job.name).as_bytes())?;
            }
        }
        for job in jobs {
            let first = current
                .iter()
                .find(|d| d.job.name == job.name)
                .map_or(at, |d| d.first_declared_at);
            let record = DeclaredJobRecord {
                job: job.clone(),
                first_declared_at: first,
                declared_at: at,
            };
            self.declared_jobs.insert(
                format!("{agent_id}{SEP}{}", job.name).as_bytes(),
                encode("declared job", &record)?,
            )?;
        }
        Ok(())
    }

    pub fn declared_jobs(&self, agent_id: &str) -> Result<Vec<DeclaredJobRecord>, StorageError> {
        self.declared_jobs
            .scan_prefix(format!("{agent_id}{SEP}").as_bytes())
            .map(|item| decode("declared job", &item?.1))
            .collect()
    }

    /// Applies a LAN report: devices it lists are updated (down since when), devices it no
    /// longer lists are forgotten.
    fn note_devices(
        &self,
        agent_id: &str,
        at: Timestamp,
        devices: &[crate::facts::Device],
    ) -> Result<(), StorageError> {
        let current = self.devices(agent_id)?;
        if current.iter().any(|d| d.reported_at > at) {
            return Ok(());
        }
        for old in &current {
            if !devices.iter().any(|d| d.name == old.device.name) {
                self.lan_devices
                    .remove(format!("{agent_id}{SEP}{}", old.device.name).as_bytes())?;
            }
        }
        for device in devices {
            let key = format!("{agent_id}{SEP}{}", device.name);
            self.update_json(&self.lan_devices, &key, |prev| {
                Some(DeviceRecord::merge(prev, device.clone(), at))
            })?;
        }
        Ok(())
    }

    pub fn devices(&self, agent_id: &str) -> Result<Vec<DeviceRecord>, StorageError> {
        self.lan_devices
            .scan_prefix(format!("{agent_id}{SEP}").as_bytes())
            .map(|item| decode("device", &item?.1))
            .collect()
    }

    /// Compare-and-swap read-modify-write of one JSON value.
    fn update_json<T: Serialize + DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Option<T>,
    ) -> Result<(), StorageError> {
        loop {
            let old = tree.get(key.as_bytes())?;
            let value = old.as_ref().map(|v| decode("fact", v)).transpose()?;
            let new = change(value).map(|v| encode("fact", &v)).transpose()?;
            if tree.compare_and_swap(key.as_bytes(), old, new)?.is_ok() {
                return Ok(());
            }
        }
    }

    // ---- alerts ----

    pub fn alert(&self, id: u64) -> Result<Option<Alert>, StorageError> {
        self.alerts
            .get(id.to_be_bytes())?
            .map(|v| decode("alert", &v))
            .transpose()
    }

    /// Every alert, oldest first.
    pub fn list_alerts(&self) -> Result<Vec<Alert>, StorageError> {
        self.alerts
            .iter()
            .map(|item| decode("alert", &item?.1))
            .collect()
    }

    pub fn series(&self, key: &str) -> Result<Option<Series>, StorageError> {
        self.alert_series
            .get(key.as_bytes())?
            .map(|v| decode("alert series", &v))
            .transpose()
    }

    /// The series whose key starts with `prefix` (one agent's: see `lifecycle::agent_prefix`).
    pub fn series_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<std::collections::BTreeMap<String, Series>, StorageError> {
        self.alert_series
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (k, v) = item?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    decode("alert series", &v)?,
                ))
            })
            .collect()
    }

    /// The number the next new alert gets (ids start at 1).
    pub fn next_alert_id(&self) -> Result<u64, StorageError> {
        Ok(self
            .counters
            .get("alert")?
            .map_or(1, |v| read_u64(&v))
            .max(1))
    }

    /// Writes alert changes and their events in one transaction: an event exists if and only
    /// if its change does. Returns the sequence number of the last event written.
    pub fn write_alerts(
        &self,
        write: &AlertWrite,
        now: Timestamp,
    ) -> Result<Option<u64>, StorageError> {
        let mut alerts = Vec::with_capacity(write.alerts.len());
        for alert in &write.alerts {
            alerts.push((alert.id.to_be_bytes(), encode("alert", alert)?));
        }
        let mut series = Vec::with_capacity(write.series.len());
        for (key, s) in &write.series {
            series.push((key.as_bytes().to_vec(), encode("alert series", s)?));
        }
        let mut events = Vec::with_capacity(write.events.len());
        for &(kind, notify, id) in &write.events {
            let Some(alert) = write.alerts.iter().find(|a| a.id == id) else {
                continue;
            };
            events.push((kind, notify, alert.clone()));
        }
        let result = (
            &self.alerts,
            &self.alert_series,
            &self.alert_events,
            &self.counters,
        )
            .transaction(|(alert_tree, series_tree, event_tree, counters)| {
                for (key, value) in &alerts {
                    alert_tree.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &series {
                    series_tree.insert(key.as_slice(), value.as_slice())?;
                }
                let mut seq = counters.get("event")?.map_or(1, |v| read_u64(&v)).max(1);
                for (kind, notify, alert) in &events {
                    let event = AlertEvent {
                        seq,
                        at: now,
                        kind: *kind,
                        notify: *notify,
                        alert: alert.clone(),
                    };
                    let bytes = serde_json::to_vec(&event).map_err(|e| {
                        ConflictableTransactionError::Abort(StorageError::Encode {
                            what: "alert event",
                            source: e,
                        })
                    })?;
                    event_tree.insert(seq.to_be_bytes().as_slice(), bytes)?;
                    seq += 1;
                }
                counters.insert("event", seq.to_be_bytes().as_slice())?;
                if let Some(next) = write.next_alert_id {
                    counters.insert("alert", next.to_be_bytes().as_slice())?;
                }
                Ok((!events.is_empty()).then(|| seq - 1))
            });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// Alert events with a sequence number above `after`, oldest first, at most `limit`: what
    /// a ticket sink reads from its last processed number on.
    pub fn alert_events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        self.alert_events
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|item| decode("alert event", &item?.1))
            .collect()
    }

    // ---- silences ----

    /// Stores a new silence under the next silence number, and returns it.
    pub fn add_silence(&self, make: impl Fn(u64) -> Silence) -> Result<Silence, StorageError> {
        let result = (&self.silences, &self.counters).transaction(|(silences, counters)| {
            let id = counters.get("silence")?.map_or(1, |v| read_u64(&v)).max(1);
            let silence = make(id);
            let bytes = serde_json::to_vec(&silence).map_err(|e| {
                ConflictableTransactionError::Abort(StorageError::Encode {
                    what: "silence",
                    source: e,
                })
            })?;
            silences.insert(id.to_be_bytes().as_slice(), bytes)?;
            counters.insert("silence", (id + 1).to_be_bytes().as_slice())?;
            Ok(silence)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    pub fn list_silences(&self) -> Result<Vec<Silence>, StorageError> {
        self.silences
            .iter()
            .map(|item| decode("silence", &item?.1))
            .collect()
    }

    /// Removes a silence; `false` if there was none with that id.
    pub fn remove_silence(&self, id: u64) -> Result<bool, StorageError> {
        Ok(self.silences.remove(id.to_be_bytes())?.is_some())
    }
}

fn abort<T>(error: EnrollError) -> Result<T, ConflictableTransactionError<EnrollError>> {
    Err(ConflictableTransactionError::Abort(error))
}

fn agent_key(agent_id: &str) -> Result<[u8; 16], StorageError> {
    Uuid::parse_str(agent_id)
        .map(|id| id.into_bytes())
        .map_err(|_| StorageError::AgentId(agent_id.to_owned()))
}

fn report_key(agent: &[u8; 16], report: &Uuid) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(agent);
    key[16..].copy_from_slice(report.as_bytes());
    key
}

fn read_u64(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

fn encode(what: &'static str, value: &impl Serialize) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|source| StorageError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|source| StorageError::Corrupt { what, source })
}

/// `fsync` of a directory, so new entries in it are durable. Not possible on Windows, where
/// file metadata is journaled by NTFS; there it is a no-op.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StorageError::Sync {
                path: dir.to_owned(),
                source,
            })?;
    }
    Ok(())
}

// ---- escalations (issue 6): `escalations` (alert id big-endian ‖ sink name → Escalation),
// `escalation_todo` (same keys, empty values: the records with operations left, so the worker
// does not decode every solved ticket each round), `escalation_meta` ("cursor" → last alert
// event sequence taken into account) ----

impl Storage {
    fn escalation_trees(&self) -> Result<(sled::Tree, sled::Tree, sled::Tree), StorageError> {
        Ok((
            self.db.open_tree("escalations")?,
            self.db.open_tree("escalation_meta")?,
            self.db.open_tree("escalation_todo")?,
        ))
    }

    fn escalation_key(alert_id: u64, sink: &str) -> Vec<u8> {
        let mut key = alert_id.to_be_bytes().to_vec();
        key.extend_from_slice(sink.as_bytes());
        key
    }

    /// The sequence number of the last alert event the escalation worker took into account.
    pub fn escalation_cursor(&self) -> Result<u64, StorageError> {
        let (_, meta, _) = self.escalation_trees()?;
        Ok(meta.get("cursor")?.map_or(0, |v| read_u64(&v)))
    }

    /// Stores escalation records and, when given, moves the cursor, in one transaction: an
    /// event is taken into account exactly once.
    pub fn write_escalations(
        &self,
        records: &[crate::escalation::queue::Escalation],
        cursor: Option<u64>,
    ) -> Result<(), StorageError> {
        let mut encoded = Vec::with_capacity(records.len());
        for r in records {
            encoded.push((
                Self::escalation_key(r.alert_id, &r.sink),
                encode("escalation", r)?,
                r.has_work(),
            ));
        }
        let (tree, meta, todo) = self.escalation_trees()?;
        let result: Result<(), TransactionError<Infallible>> =
            (&tree, &meta, &todo).transaction(|(tree, meta, todo)| {
                for (key, value, has_work) in &encoded {
                    tree.insert(key.as_slice(), value.as_slice())?;
                    if *has_work {
                        todo.insert(key.as_slice(), &[])?;
                    } else {
                        todo.remove(key.as_slice())?;
                    }
                }
                if let Some(cursor) = cursor {
                    meta.insert("cursor", cursor.to_be_bytes().as_slice())?;
                }
                Ok(())
            });
        result.map_err(|e| match e {
            TransactionError::Abort(never) => match never {},
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    pub fn escalation(
        &self,
        alert_id: u64,
        sink: &str,
    ) -> Result<Option<crate::escalation::queue::Escalation>, StorageError> {
        let (tree, _, _) = self.escalation_trees()?;
        tree.get(Self::escalation_key(alert_id, sink))?
            .map(|v| decode("escalation", &v))
            .transpose()
    }

    /// Every escalation record, by alert id then sink name.
    pub fn list_escalations(
        &self,
    ) -> Result<Vec<crate::escalation::queue::Escalation>, StorageError> {
        let (tree, _, _) = self.escalation_trees()?;
        tree.iter()
            .map(|item| decode("escalation", &item?.1))
            .collect()
    }

    /// The escalation records with ticket operations left, by alert id then sink name.
    pub fn escalations_with_work(
        &self,
    ) -> Result<Vec<crate::escalation::queue::Escalation>, StorageError> {
        let (tree, _, todo) = self.escalation_trees()?;
        let mut records = Vec::new();
        for key in todo.iter().keys() {
            if let Some(value) = tree.get(key?)? {
                records.push(decode("escalation", &value)?);
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_domain::{AgentRole, Tier};

    fn open() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        (dir, storage)
    }

    fn agent_from(token: &TokenRecord, id: &str) -> AgentRecord {
        AgentRecord {
            id: id.to_owned(),
            clinic_id: token.clinic_id.clone(),
            hostname: "pc-1".into(),
            os: "Linux".into(),
            role: AgentRole::Workstation,
            agent_version: "0.1.0".into(),
            enrolled_at: Timestamp::now(),
            last_seen: None,
            revoked: false,
            revoked_at: None,
            outbox_dropped_total: 0,
            outbox_health: Default::default(),
            snapshot: None,
            snapshot_collected_at: None,
        }
    }

    fn token(expires_in_secs: i64) -> TokenRecord {
        let now = Timestamp::now();
        TokenRecord {
            clinic_id: "clinic".into(),
            created_at: now,
            expires_at: now + jiff::SignedDuration::from_secs(expires_in_secs),
            used: false,
            used_by: None,
        }
    }

    fn reports(ids: &[Uuid]) -> Vec<EncodedReport> {
        ids.iter()
            .map(|id| EncodedReport {
                id: *id,
                bytes: id.as_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn sled_keeps_its_log_where_we_fsync_it() {
        let (dir, storage) = open();
        storage.flush_durably().expect("flush");
        assert!(dir.path().join("db").join("db").is_file());
    }

    #[test]
    fn report_insert_is_idempotent_and_counted() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let first = storage
            .store_reports(&agent, &reports(&[a, b]))
            .expect("store");
        assert_eq!(
            first,
            StoreOutcome {
                new: 2,
                duplicates: 0
            }
        );
        let again = storage
            .store_reports(&agent, &reports(&[a, b, c, c]))
            .expect("store");
        assert_eq!(
            again,
            StoreOutcome {
                new: 1,
                duplicates: 3
            }
        );
        assert_eq!(storage.report_count(&agent).expect("count"), 3);
        assert_eq!(storage.reports_of(&agent).expect("scan").len(), 3);
        let other = Uuid::now_v7().to_string();
        assert_eq!(storage.report_count(&other).expect("count"), 0);
        assert_eq!(
            storage.report(&agent, &a).expect("get"),
            Some(a.as_bytes().to_vec())
        );
    }

    #[test]
    fn a_full_batch_fits_in_one_transaction() {
        let (_dir, storage) = open();
        let agent = Uuid::now_v7().to_string();
        let batch: Vec<_> = (0..vigie_proto::MAX_REPORTS_PER_BATCH)
            .map(|_| EncodedReport {
                id: Uuid::now_v7(),
                bytes: vec![7u8; 2048],
            })
            .collect();
        let outcome = storage.store_reports(&agent, &batch).expect("store");
        assert_eq!(outcome.new, batch.len());
        storage.flush_durably().expect("flush");
        assert_eq!(
            storage.report_count(&agent).expect("count"),
            batch.len() as u64
        );
    }

    #[test]
    fn token_is_single_use_under_concurrency() {
        let (_dir, storage) = open();
        let hash = [9u8; 32];
        storage.put_token(&hash, &token(3600)).expect("put");
        let winners: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let storage = storage.clone();
                    scope.spawn(move || {
                        storage.enroll_agent(&hash, Timestamp::now(), |t| {
                            agent_from(t, &format!("agent-{i}"))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let ok = winners.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{winners:?}");
        assert!(winners.iter().all(|r| match r {
            Ok(_) => true,
            Err(EnrollError::Rejected(TokenRejection::Used)) => true,
            Err(_) => false,
        }));
        assert_eq!(storage.list_agents(None).expect("list").len(), 1);
        let stored = storage.token(&hash).expect("get").expect("present");
        assert!(stored.used);
    }

    #[test]
    fn unknown_and_expired_tokens_are_refused() {
        let (_dir, storage) = open();
        let make = |t: &TokenRecord| agent_from(t, "a");
        assert!(matches!(
            storage.enroll_agent(&[1; 32], Timestamp::now(), make),
            Err(EnrollError::Rejected(TokenRejection::Unknown))
        ));
        storage.put_token(&[2; 32], &token(-1)).expect("put");
        assert!(matches!(
            storage.enroll_agent(&[2; 32], Timestamp::now(), make),
            Err(EnrollError::Rejected(TokenRejection::Expired(_)))
        ));
        assert!(storage.list_agents(None).expect("list").is_empty());
    }

    #[test]
    fn clinics_list_in_creation_order_and_agents_filter_by_clinic() {
        let (_dir, storage) = open();
        for name in ["A", "B"] {
            let clinic = Clinic {
                id: Uuid::now_v7().to_string(),
                name: name.into(),
                tier: Tier::Cmp1,
                created_at: Timestamp::now(),
                rule_overrides: Default::default(),
            };
            storage.add_clinic(&clinic).expect("add");
        }
        let clinics = storage.list_clinics().expect("list");
        let names: Vec<_> = clinics.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        storage.put_token(&[3; 32], &token(60)).expect("put");
        storage
            .enroll_agent(&[3; 32], Timestamp::now(), |t| agent_from(t, "x"))
            .expect("enroll");
        assert_eq!(storage.list_agents(Some("clinic")).expect("list").len(), 1);
        assert!(
            storage
                .list_agents(Some(&clinics[0].id))
                .expect("list")
                .is_empty()
        );
        let revoked = storage.revoke_agent("x", Timestamp::now()).expect("revoke");
        assert!(revoked.is_some_and(|a| a.revoked));
        assert!(
            storage
                .revoke_agent("nope", Timestamp::now())
                .expect("revoke")
                .is_none()
        );
    }
}
