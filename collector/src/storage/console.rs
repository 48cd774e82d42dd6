//! The technician console's records: `technicians` (name → TechnicianRecord, with its argon2id
//! password hash), `console_sessions` (SHA-256 of the session cookie → SessionRecord),
//! `console_audit` (big-endian sequence number → AuditEntry, bounded to [`AUDIT_KEPT`]) and
//! `api_tokens` (SHA-256 of the token → ApiTokenRecord). Secrets are never stored, only their
//! hashes: a copy of the database gives no session and no token.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Storage, StorageError, decode, encode};

/// Audit entries kept: years of a small MSP's clicks; the oldest go first.
pub const AUDIT_KEPT: u64 = 200_000;

/// What an account may do. Technicians read, acknowledge, resolve and open maintenance
/// windows; only admins change tiers, configuration and accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleRole {
    Technician,
    Admin,
}

impl ConsoleRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleRole::Technician => "technician",
            ConsoleRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "technician" | "technicien" | "" => Some(ConsoleRole::Technician),
            "admin" => Some(ConsoleRole::Admin),
            _ => None,
        }
    }

    /// In French, for the pages and tables.
    pub fn label(self) -> &'static str {
        match self {
            ConsoleRole::Technician => "technicien",
            ConsoleRole::Admin => "administrateur",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TechnicianRecord {
    pub name: String,
    pub role: ConsoleRole,
    /// PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: Timestamp,
    #[serde(default)]
    pub last_login_at: Option<Timestamp>,
    /// Bad passwords in a row since the last good one.
    #[serde(default)]
    pub failed_logins: u32,
    #[serde(default)]
    pub last_failed_at: Option<Timestamp>,
    #[serde(default)]
    pub locked_until: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub technician: String,
    /// The session's CSRF token, sent back in every form that changes something.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub address: String,
}

/// One action in the console or the API, or on accounts through the admin interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(default)]
    pub seq: u64,
    pub at: Timestamp,
    /// A technician's name, `api:NAME` for an API token, `admin-cli:USER` for the admin CLI.
    pub who: String,
    /// The client's address, or `admin` for the loopback admin interface.
    pub address: String,
    /// `login`, `login_failed`, `logout`, `acknowledge`, `resolve`, `maintenance_add`, ...
    pub action: String,
    /// What it was done to: `alerte 12`, a clinic id, an account name.
    pub target: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub name: String,
    pub role: ConsoleRole,
    pub created_at: Timestamp,
    pub revoked: bool,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
}

impl Storage {
    // ---- technicians ----

    pub fn technician(&self, name: &str) -> Result<Option<TechnicianRecord>, StorageError> {
        self.console
            .technicians
            .get(name.as_bytes())?
            .map(|v| decode("technician", &v))
            .transpose()
    }

    /// Adds an account; `false` (nothing written) when the name is taken.
    pub fn add_technician(&self, record: &TechnicianRecord) -> Result<bool, StorageError> {
        let _turn = self.writing();
        let value = encode("technician", record)?;
        Ok(self
            .console
            .technicians
            .compare_and_swap(record.name.as_bytes(), None::<&[u8]>, Some(value))?
            .is_ok())
    }

    pub fn list_technicians(&self) -> Result<Vec<TechnicianRecord>, StorageError> {
        self.console
            .technicians
            .iter()
            .map(|item| decode("technician", &item?.1))
            .collect()
    }

    /// Compare-and-swap change of one account; `None` if there is no such account.
    pub fn update_technician(
        &self,
        name: &str,
        mut change: impl FnMut(&mut TechnicianRecord),
    ) -> Result<Option<TechnicianRecord>, StorageError> {
        let _turn = self.writing();
        let tree = &self.console.technicians;
        loop {
            let Some(old) = tree.get(name.as_bytes())? else {
                return Ok(None);
            };
            let mut record: TechnicianRecord = decode("technician", &old)?;
            change(&mut record);
            let new = encode("technician", &record)?;
            if tree
                .compare_and_swap(name.as_bytes(), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(record));
            }
        }
    }

    // ---- sessions ----

    pub fn put_session(
        &self,
        hash: &[u8; 32],
        session: &SessionRecord,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        self.console
            .sessions
            .insert(hash, encode("session", session)?)?;
        Ok(())
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StorageError> {
        self.console
            .sessions
            .get(hash)?
            .map(|v| decode("session", &v))
            .transpose()
    }

    pub fn remove_session(&self, hash: &[u8; 32]) -> Result<(), StorageError> {
        let _turn = self.writing();
        self.console.sessions.remove(hash)?;
        Ok(())
    }

    /// Ends every session of an account (disabled, new password), and every expired one.
    pub fn remove_sessions(
        &self,
        technician: Option<&str>,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        let _turn = self.writing();
        let mut removed = 0;
        for item in self.console.sessions.iter() {
            let (key, value) = item?;
            let session: SessionRecord = decode("session", &value)?;
            if session.expires_at <= now || technician == Some(session.technician.as_str()) {
                self.console.sessions.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    // ---- audit ----

    /// Appends an entry under the next number (numbers survive a backup and restore, unlike
    /// sled's generated ids), dropping the oldest beyond [`AUDIT_KEPT`].
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StorageError> {
        let _turn = self.writing();
        let tree = &self.console.audit;
        loop {
            let seq = match tree.last()? {
                Some((key, _)) => seq_of(&key) + 1,
                None => 1,
            };
            let mut entry = entry.clone();
            entry.seq = seq;
            let value = encode("audit entry", &entry)?;
            if tree
                .compare_and_swap(seq.to_be_bytes(), None::<&[u8]>, Some(value))?
                .is_ok()
            {
                if seq > AUDIT_KEPT {
                    tree.remove((seq - AUDIT_KEPT).to_be_bytes())?;
                }
                return Ok(seq);
            }
        }
    }

    /// The newest `limit` entries, newest first.
    pub fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StorageError> {
        self.console
            .audit
            .iter()
            .rev()
            .take(limit)
            .map(|item| decode("audit entry", &item?.1))
            .collect()
    }

    // ---- API tokens ----

    /// Adds a token; `false` (nothing written) when an unrevoked token has that name.
    pub fn add_api_token(
        &self,
        hash: &[u8; 32],
        record: &ApiTokenRecord,
    ) -> Result<bool, StorageError> {
        let _turn = self.writing();
        if self
            .list_api_tokens()?
            .iter()
            .any(|(_, t)| t.name == record.name && !t.revoked)
        {
            return Ok(false);
        }
        self.console
            .api_tokens
            .insert(hash, encode("API token", record)?)?;
        Ok(true)
    }

    pub fn api_token(&self, hash: &[u8; 32]) -> Result<Option<ApiTokenRecord>, StorageError> {
        self.console
            .api_tokens
            .get(hash)?
            .map(|v| decode("API token", &v))
            .transpose()
    }

    pub fn list_api_tokens(&self) -> Result<Vec<(Vec<u8>, ApiTokenRecord)>, StorageError> {
        self.console
            .api_tokens
            .iter()
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), decode("API token", &value)?))
            })
            .collect()
    }

    /// Changes every token record `select` picks; returns the changed ones.
    pub fn update_api_tokens(
        &self,
        select: impl Fn(&[u8], &ApiTokenRecord) -> bool,
        change: impl Fn(&mut ApiTokenRecord),
    ) -> Result<Vec<ApiTokenRecord>, StorageError> {
        let _turn = self.writing();
        let mut changed = Vec::new();
        for (key, mut record) in self.list_api_tokens()? {
            if select(&key, &record) {
                change(&mut record);
                self.console
                    .api_tokens
                    .insert(&key, encode("API token", &record)?)?;
                changed.push(record);
            }
        }
        Ok(changed)
    }
}

fn seq_of(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map_or(0, u64::from_be_bytes)
}

/// The console's trees, opened with the database.
#[derive(Clone)]
pub(super) struct ConsoleTrees {
    technicians: sled::Tree,
    sessions: sled::Tree,
    audit: sled::Tree,
    api_tokens: sled::Tree,
}

impl ConsoleTrees {
    pub(super) fn open(db: &sled::Db) -> Result<Self, StorageError> {
        Ok(ConsoleTrees {
            technicians: db.open_tree("technicians")?,
            sessions: db.open_tree("console_sessions")?,
            audit: db.open_tree("console_audit")?,
            api_tokens: db.open_tree("api_tokens")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Storage) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&tmp.path().join("db")).expect("open");
        (tmp, storage)
    }

    fn technician(name: &str) -> TechnicianRecord {
        TechnicianRecord {
            name: name.into(),
            role: ConsoleRole::Technician,
            password_hash: "$argon2id$x".into(),
            disabled: false,
            created_at: Timestamp::UNIX_EPOCH,
            last_login_at: None,
            failed_logins: 0,
            last_failed_at: None,
            locked_until: None,
        }
    }

    #[test]
    fn a_name_is_taken_once() {
        let (_tmp, storage) = storage();
        assert!(storage.add_technician(&technician("lea")).expect("add"));
        assert!(!storage.add_technician(&technician("lea")).expect("add"));
        let changed = storage
            .update_technician("lea", |t| t.failed_logins += 1)
            .expect("update")
            .expect("exists");
        assert_eq!(changed.failed_logins, 1);
        assert!(
            storage
                .update_technician("nobody", |_| {})
                .expect("update")
                .is_none()
        );
    }

    #[test]
    fn audit_numbers_follow_and_newest_comes_first() {
        let (_tmp, storage) = storage();
        for action in ["login", "acknowledge", "logout"] {
            storage
                .append_audit(&AuditEntry {
                    seq: 0,
                    at: Timestamp::UNIX_EPOCH,
                    who: "lea".into(),
                    address: "127.0.0.1".into(),
                    action: action.into(),
                    target: String::new(),
                    note: String::new(),
                })
                .expect("append");
        }
        let latest = storage.audit_latest(2).expect("latest");
        assert_eq!(
            latest
                .iter()
                .map(|e| (e.seq, e.action.as_str()))
                .collect::<Vec<_>>(),
            [(3, "logout"), (2, "acknowledge")]
        );
    }

    #[test]
    fn expired_and_named_sessions_go() {
        let (_tmp, storage) = storage();
        let now = Timestamp::from_second(1_000_000).expect("ts");
        let session = |who: &str, expires: i64| SessionRecord {
            technician: who.into(),
            csrf: "c".into(),
            created_at: now,
            expires_at: Timestamp::from_second(expires).expect("ts"),
            address: "127.0.0.1".into(),
        };
        storage
            .put_session(&[1; 32], &session("lea", 2_000_000))
            .expect("put");
        storage
            .put_session(&[2; 32], &session("max", 2_000_000))
            .expect("put");
        storage
            .put_session(&[3; 32], &session("max", 10))
            .expect("put");
        assert_eq!(storage.remove_sessions(None, now).expect("prune"), 1);
        assert_eq!(storage.remove_sessions(Some("lea"), now).expect("end"), 1);
        assert!(storage.session(&[2; 32]).expect("get").is_some());
    }
}
