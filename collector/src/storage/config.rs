//! Central configuration versions: `config_versions` (scope key, SEP, version big-endian →
//! `ConfigVersionRecord`), every version kept (`config history`). Numbers come from one
//! counter (`config_version` in `counters`), taken in the same transaction as the write, so
//! a newer change anywhere has a larger number and no two versions share one.

use jiff::Timestamp;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{SEP, Storage, StorageError, decode, encode, read_counter};
use crate::central_config::clinic::ClinicSection;
use crate::central_config::{ConfigScope, ConfigVersionRecord};

const COUNTER: &str = "config_version";

fn prefix(scope: &ConfigScope) -> Vec<u8> {
    let (kind, id) = match scope {
        ConfigScope::Clinic(id) => ("c", id),
        ConfigScope::Agent(id) => ("a", id),
    };
    format!("{kind}{SEP}{id}{SEP}").into_bytes()
}

impl Storage {
    /// Stores a new version of `scope`'s configuration under the next number.
    pub fn put_config_version(
        &self,
        scope: &ConfigScope,
        author: &str,
        now: Timestamp,
        toml: &str,
        clinic: Option<ClinicSection>,
    ) -> Result<ConfigVersionRecord, StorageError> {
        let _turn = self.writing();
        let result = (&self.counters, &self.config_versions).transaction(|(counters, versions)| {
            let last = read_counter(COUNTER, counters.get(COUNTER)?.as_deref())
                .map_err(ConflictableTransactionError::Abort)?
                .unwrap_or(0);
            let record = ConfigVersionRecord {
                version: last + 1,
                scope: scope.clone(),
                author: author.to_owned(),
                created_at: now,
                toml: toml.to_owned(),
                clinic: clinic.clone(),
            };
            let bytes =
                encode("config version", &record).map_err(ConflictableTransactionError::Abort)?;
            let mut key = prefix(scope);
            key.extend_from_slice(&record.version.to_be_bytes());
            counters.insert(COUNTER, &record.version.to_be_bytes())?;
            versions.insert(key, bytes)?;
            Ok(record)
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// The newest version of `scope`, if it has any.
    pub fn latest_config(
        &self,
        scope: &ConfigScope,
    ) -> Result<Option<ConfigVersionRecord>, StorageError> {
        self.config_versions
            .scan_prefix(prefix(scope))
            .next_back()
            .transpose()?
            .map(|(_, v)| decode("config version", &v))
            .transpose()
    }

    /// `[clinic]` of the clinic's newest version: its own time zone and opening hours.
    pub fn clinic_section(&self, clinic_id: &str) -> Result<Option<ClinicSection>, StorageError> {
        Ok(self
            .latest_config(&ConfigScope::Clinic(clinic_id.to_owned()))?
            .and_then(|version| version.clinic))
    }

    /// Every version of `scope`, newest first.
    pub fn config_history(
        &self,
        scope: &ConfigScope,
    ) -> Result<Vec<ConfigVersionRecord>, StorageError> {
        self.config_versions
            .scan_prefix(prefix(scope))
            .rev()
            .map(|item| decode("config version", &item?.1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_share_one_sequence_and_history_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&dir.path().join("db")).expect("open");
        let clinic = ConfigScope::Clinic("c1".into());
        let other = ConfigScope::Clinic("c10".into());
        let agent = ConfigScope::Agent("a1".into());
        let now = Timestamp::UNIX_EPOCH;
        assert!(storage.latest_config(&clinic).expect("read").is_none());
        let v1 = storage
            .put_config_version(&clinic, "tech", now, "[antivirus]\n", None)
            .expect("put");
        let v2 = storage
            .put_config_version(&agent, "tech", now, "", None)
            .expect("put");
        let v3 = storage
            .put_config_version(&clinic, "other", now, "[updates]\n", None)
            .expect("put");
        storage
            .put_config_version(&other, "x", now, "", None)
            .expect("put");
        assert_eq!((v1.version, v2.version, v3.version), (1, 2, 3));
        let latest = storage.latest_config(&clinic).expect("read").expect("some");
        assert_eq!((latest.version, latest.author.as_str()), (3, "other"));
        let history: Vec<u64> = storage
            .config_history(&clinic)
            .expect("history")
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(history, vec![3, 1]);
    }
}
