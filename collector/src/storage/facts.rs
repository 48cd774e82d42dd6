//! The facts the alert rules judge, kept per agent as reports arrive (JSON): `backup_runs`
//! (agent ␟ job ␟ end time → BackupRun, the last [`RUNS_KEPT`] per job), `declared_jobs`
//! (agent ␟ job → DeclaredJobRecord), `latest_facts` (agent ␟ kind → Stamped fact; for
//! backups and LAN, only what the collector left out of the latest report),
//! `lan_devices` (agent ␟ device → DeviceRecord).

use std::collections::{BTreeMap, BTreeSet};

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
        self.record_facts(agent_id, [(collected_at, fact)])
    }

    /// Records what several reports of one agent say, in their order: the same result as
    /// [`Storage::record_fact`] for each in turn. Backup facts are folded in memory first, so
    /// that each run, the declaration and the cut are written once: every backup report
    /// repeats the declared jobs and their last runs, and a backlog holds many.
    pub fn record_facts<'f>(
        &self,
        agent_id: &str,
        facts: impl IntoIterator<Item = (Timestamp, &'f Fact)>,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        let mut backups = BackupFold::default();
        for (collected_at, fact) in facts {
            match fact {
                Fact::Backup {
                    runs,
                    declared,
                    cut,
                } => {
                    for run in runs {
                        backups.add_run(agent_id, run);
                    }
                    if !declared.is_empty() {
                        backups.declarations.push((collected_at, declared));
                    }
                    backups.cuts.push((collected_at, cut));
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
                    self.put_cut(agent_id, CUT_LAN, &[(collected_at, &lan.cut)])?;
                }
            }
            self.note_fact_history(agent_id, collected_at, fact)?;
        }
        self.put_backup_runs(&backups.runs)?;
        if !backups.declarations.is_empty() {
            self.note_declared_jobs(agent_id, &backups.declarations)?;
        }
        if !backups.cuts.is_empty() {
            self.put_cut(agent_id, CUT_BACKUP, &backups.cuts)?;
        }
        Ok(())
    }

    /// Keeps what the latest report of a kind without a fact record of its own (backups, LAN)
    /// left out, or forgets it when that report was whole; `cuts` in the order they came.
    fn put_cut(
        &self,
        agent_id: &str,
        kind: &str,
        cuts: &[(Timestamp, &Cut)],
    ) -> Result<(), StorageError> {
        let key = format!("{agent_id}{SEP}{kind}");
        if cuts.iter().all(|(_, cut)| cut.is_empty())
            && self.latest_facts.get(key.as_bytes())?.is_none()
        {
            return Ok(());
        }
        self.update_json(
            &self.latest_facts,
            &key,
            |mut kept: Option<Stamped<Cut>>| {
                for (at, cut) in cuts {
                    kept = match kept {
                        Some(p) if p.collected_at > *at => Some(p),
                        _ if cut.is_empty() => None,
                        _ => Some(Stamped {
                            collected_at: *at,
                            value: (*cut).clone(),
                        }),
                    };
                }
                kept
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

    #[cfg(test)]
    pub(super) fn put_backup_run(
        &self,
        agent_id: &str,
        run: &BackupRun,
    ) -> Result<(), StorageError> {
        let mut fold = BackupFold::default();
        fold.add_run(agent_id, run);
        self.put_backup_runs(&fold.runs)
    }

    /// Writes folded runs, then trims each job that gained one to its newest [`RUNS_KEPT`]
    /// (the same runs as trimming after each insert: the newest of all).
    fn put_backup_runs(&self, runs: &BTreeMap<Vec<u8>, FoldedRun<'_>>) -> Result<(), StorageError> {
        let mut grown = BTreeSet::new();
        for (key, folded) in runs {
            let value = encode("backup run", folded.run)?;
            // A declared job's last run repeats a run of the same report, and agents resend it
            // with every backup report: a run already stored as is changes nothing.
            if self.backup_runs.get(key)?.is_some_and(|old| old == value) {
                continue;
            }
            // A run that replaces one of the same job and finish time leaves the count as it was.
            if self.backup_runs.insert(key.as_slice(), value)?.is_none() {
                grown.insert(&key[..folded.prefix_len]);
            }
        }
        for prefix in grown {
            let kept = self.backup_runs.scan_prefix(prefix).count();
            if kept > RUNS_KEPT {
                let old: Vec<_> = self
                    .backup_runs
                    .scan_prefix(prefix)
                    .keys()
                    .take(kept - RUNS_KEPT)
                    .collect::<Result<_, _>>()?;
                for key in old {
                    self.backup_runs.remove(key)?;
                }
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

    /// Replaces an agent's declared jobs with each newer declaration in turn (in the order they
    /// came), keeping since when each job has been declared; writes only what changed.
    fn note_declared_jobs(
        &self,
        agent_id: &str,
        declarations: &[(Timestamp, &[DeclaredJob])],
    ) -> Result<(), StorageError> {
        let stored: BTreeMap<String, DeclaredJobRecord> = self
            .declared_jobs(agent_id)?
            .into_iter()
            .map(|d| (d.job.name.clone(), d))
            .collect();
        let mut current: BTreeMap<&str, DeclaredJobRecord> = stored
            .iter()
            .map(|(name, d)| (name.as_str(), d.clone()))
            .collect();
        for (at, jobs) in declarations {
            if current.values().any(|d| d.declared_at > *at) {
                continue;
            }
            let next = jobs
                .iter()
                .map(|job| {
                    let first = current
                        .get(job.name.as_str())
                        .map_or(*at, |d| d.first_declared_at);
                    let record = DeclaredJobRecord {
                        job: job.clone(),
                        first_declared_at: first,
                        declared_at: *at,
                    };
                    (job.name.as_str(), record)
                })
                .collect();
            current = next;
        }
        for name in stored.keys() {
            if !current.contains_key(name.as_str()) {
                self.declared_jobs
                    .remove(format!("{agent_id}{SEP}{name}").as_bytes())?;
            }
        }
        for (name, record) in &current {
            if stored.get(*name) == Some(record) {
                continue;
            }
            self.declared_jobs.insert(
                format!("{agent_id}{SEP}{name}").as_bytes(),
                encode("declared job", record)?,
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
            if new.as_deref() == old.as_deref() {
                return Ok(());
            }
            if tree.compare_and_swap(key.as_bytes(), old, new)?.is_ok() {
                return Ok(());
            }
        }
    }
}

/// A run to write: the last one given for its key (as an insert would keep), and how much of
/// the key is the job's prefix.
struct FoldedRun<'f> {
    run: &'f BackupRun,
    prefix_len: usize,
}

/// One agent's backup facts, folded before they are written (see [`Storage::record_facts`]).
#[derive(Default)]
struct BackupFold<'f> {
    /// By key: agent ␟ job ␟ finish time.
    runs: BTreeMap<Vec<u8>, FoldedRun<'f>>,
    declarations: Vec<(Timestamp, &'f [DeclaredJob])>,
    cuts: Vec<(Timestamp, &'f Cut)>,
}

impl<'f> BackupFold<'f> {
    fn add_run(&mut self, agent_id: &str, run: &'f BackupRun) {
        let mut key = format!("{agent_id}{SEP}{}{SEP}", run.job).into_bytes();
        let prefix_len = key.len();
        // Big-endian with the sign bit flipped: byte order is time order.
        let at = (run.finished_at.as_second() as u64) ^ (1 << 63);
        key.extend_from_slice(&at.to_be_bytes());
        self.runs.insert(key, FoldedRun { run, prefix_len });
    }
}
