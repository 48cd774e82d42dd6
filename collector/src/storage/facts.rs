//! The facts the alert rules judge, kept per agent as reports arrive (JSON): `backup_runs`
//! (agent ␟ job ␟ end time → BackupRun, the last [`RUNS_KEPT`] per job), `declared_jobs`
//! (agent ␟ job → DeclaredJobRecord), `latest_facts` (agent ␟ kind → Stamped fact; for
//! backups and LAN, only what the collector left out of the latest report),
//! `lan_devices` (agent ␟ device → DeviceRecord).

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SEP, Storage, StorageError, decode, encode};
use crate::facts::{
    Antivirus, BackupRun, DeclaredJob, DeclaredJobRecord, DeviceRecord, Fact, LanFact, OsUpdates,
    Software, Stamped,
};
use crate::limits::Cut;

/// `latest_facts` kinds that keep only what a backup or LAN report left out.
const CUT_BACKUP: &str = "backup_cut";
const CUT_LAN: &str = "lan_cut";

/// How long a device an old agent (one that does not list its targets) stopped reporting is
/// kept: longer than any probe interval.
const LEGACY_DEVICE_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Backup runs kept per job: enough for the median of the last 7 successes, with failures
/// in between.
pub const RUNS_KEPT: usize = 60;

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

impl Storage {
    /// Records what one report says, keeping only what is newer than what is kept.
    pub fn record_fact(
        &self,
        agent_id: &str,
        collected_at: Timestamp,
        fact: &Fact,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        match fact {
            Fact::Backup {
                runs,
                declared,
                cut,
            } => {
                for run in runs {
                    self.put_backup_run(agent_id, run)?;
                }
                if !declared.is_empty() {
                    self.note_declared_jobs(agent_id, collected_at, declared)?;
                }
                self.put_cut(agent_id, CUT_BACKUP, collected_at, cut)?;
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
            Fact::Lan(lan) => {
                self.note_devices(agent_id, collected_at, lan)?;
                self.put_cut(agent_id, CUT_LAN, collected_at, &lan.cut)?;
            }
        }
        self.note_fact_history(agent_id, collected_at, fact)?;
        Ok(())
    }

    /// Keeps what the latest report of a kind without a fact record of its own (backups, LAN)
    /// left out, or forgets it when that report was whole.
    fn put_cut(
        &self,
        agent_id: &str,
        kind: &str,
        collected_at: Timestamp,
        cut: &Cut,
    ) -> Result<(), StorageError> {
        let key = format!("{agent_id}{SEP}{kind}");
        if cut.is_empty() && self.latest_facts.get(key.as_bytes())?.is_none() {
            return Ok(());
        }
        self.update_json(
            &self.latest_facts,
            &key,
            |prev: Option<Stamped<Cut>>| match prev {
                Some(p) if p.collected_at > collected_at => Some(p),
                _ if cut.is_empty() => None,
                _ => Some(Stamped {
                    collected_at,
                    value: cut.clone(),
                }),
            },
        )
    }

    /// What the collector left out of an agent's latest reports (`limits.rs`), each note
    /// prefixed with the kind of report, in French for the technician.
    pub fn fact_cuts(&self, agent_id: &str) -> Result<Vec<String>, StorageError> {
        let mut notes = Vec::new();
        let mut add = |what: &str, cut: Option<Cut>| {
            for note in cut.into_iter().flat_map(|c| c.0) {
                notes.push(format!("{what} : {note}"));
            }
        };
        let own = |kind: &str| -> Result<Option<Cut>, StorageError> {
            self.latest_facts
                .get(format!("{agent_id}{SEP}{kind}").as_bytes())?
                .map(|v| decode::<Stamped<Cut>>("fact", &v).map(|s| s.value))
                .transpose()
        };
        add("sauvegardes", own(CUT_BACKUP)?);
        add("réseau", own(CUT_LAN)?);
        let updates: Option<Stamped<OsUpdates>> =
            self.latest_fact(agent_id, FactKind::OsUpdates)?;
        add("mises à jour", updates.map(|s| s.value.cut));
        let av: Option<Stamped<Antivirus>> = self.latest_fact(agent_id, FactKind::Antivirus)?;
        add("antivirus", av.map(|s| s.value.cut));
        let sw: Option<Stamped<Software>> = self.latest_fact(agent_id, FactKind::Software)?;
        add("logiciels", sw.map(|s| s.value.cut));
        Ok(notes)
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

    pub(super) fn put_backup_run(
        &self,
        agent_id: &str,
        run: &BackupRun,
    ) -> Result<(), StorageError> {
        let prefix = format!("{agent_id}{SEP}{}{SEP}", run.job);
        // Big-endian with the sign bit flipped: byte order is time order.
        let at = (run.finished_at.as_second() as u64) ^ (1 << 63);
        let mut key = prefix.clone().into_bytes();
        key.extend_from_slice(&at.to_be_bytes());
        let value = encode("backup run", run)?;
        // A declared job's last run repeats a run of the same report, and agents resend it
        // with every backup report: a run already stored as is changes nothing.
        if self.backup_runs.get(&key)?.is_some_and(|old| old == value) {
            return Ok(());
        }
        // A run that replaces one of the same job and finish time leaves the count as it was.
        if self.backup_runs.insert(key, value)?.is_some() {
            return Ok(());
        }
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

    /// Applies a LAN report. Each device it lists is updated (down since when) unless what is
    /// kept is newer; a device leaves only when it left the agent's configuration, so one
    /// probed on a longer interval keeps its last known state between its rounds.
    fn note_devices(
        &self,
        agent_id: &str,
        at: Timestamp,
        lan: &LanFact,
    ) -> Result<(), StorageError> {
        let current = self.devices(agent_id)?;
        let newest = current.iter().map(|d| d.reported_at).max();
        for old in &current {
            let gone = if lan.configured.is_empty() {
                // An agent older than the target list: forget what it stopped reporting long ago.
                old.reported_at < at - LEGACY_DEVICE_KEPT
            } else {
                // Only a report at least as new as everything kept speaks for the configuration.
                newest.is_none_or(|n| at >= n) && !lan.configured.contains(&old.device.name)
            };
            if gone {
                self.lan_devices
                    .remove(format!("{agent_id}{SEP}{}", old.device.name).as_bytes())?;
            }
        }
        for device in &lan.devices {
            let key = format!("{agent_id}{SEP}{}", device.name);
            let mut merged = None;
            self.update_json(&self.lan_devices, &key, |prev| {
                merged = Some(DeviceRecord::merge(prev, device.clone(), at));
                merged.clone()
            })?;
            if let Some(record) = merged.filter(|r| r.reported_at == at) {
                self.note_device_history(agent_id, &record)?;
            }
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
}
