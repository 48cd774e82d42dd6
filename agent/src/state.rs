//! The state directory: the enrollment files and the outbox's place.
//!
//! ```text
//! STATE_DIR/agent.key   private key, PEM (0600 on unix); generated here, never sent
//! STATE_DIR/agent.crt   client certificate issued by the collector, PEM
//! STATE_DIR/ca.crt      the collector's CA, PEM: the only CA the agent trusts
//! STATE_DIR/agent.json  collector_addr, clinic_id, agent_id, role, enrolled_at
//! STATE_DIR/outbox/     the outbox: one file per queued report (see `outbox/mod.rs`)
//! STATE_DIR/central-config.json  the last central configuration applied (`central`)
//! ```
//!
//! `agent.json` is written last, so its presence means a complete enrollment.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigie_domain::AgentRole;

pub const KEY_FILE: &str = "agent.key";
pub const CERT_FILE: &str = "agent.crt";
pub const CA_FILE: &str = "ca.crt";
pub const ENROLLMENT_FILE: &str = "agent.json";
pub const OUTBOX_DIR: &str = "outbox";
pub const CENTRAL_CONFIG_FILE: &str = "central-config.json";

/// `central-config.json`: the last version of the collector's configuration this agent
/// applied, kept for its restarts and for while the collector is unreachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedConfig {
    pub version: u64,
    pub toml: String,
    pub applied_at: jiff::Timestamp,
}

/// `agent.json`: who this agent is and where it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// `HOST:PORT` of the collector's agent listener, from the token.
    pub collector_addr: String,
    pub clinic_id: String,
    pub agent_id: String,
    pub role: AgentRole,
    pub enrolled_at: jiff::Timestamp,
}

/// Everything `run` needs to talk to the collector.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub enrollment: Enrollment,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("this agent is not enrolled: {path} is missing; run `vigie-agent enroll` first")]
    NotEnrolled { path: String },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged")]
    Damaged {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.path.join(OUTBOX_DIR)
    }

    pub fn is_enrolled(&self) -> bool {
        self.path.join(ENROLLMENT_FILE).exists()
    }

    /// Reads the enrollment and its PEM files.
    pub fn load(&self) -> Result<Credentials, StateError> {
        let info_path = self.path.join(ENROLLMENT_FILE);
        if !info_path.exists() {
            return Err(StateError::NotEnrolled {
                path: info_path.display().to_string(),
            });
        }
        let info = self.read(ENROLLMENT_FILE)?;
        let enrollment = serde_json::from_str(&info).map_err(|source| StateError::Damaged {
            path: info_path.display().to_string(),
            source,
        })?;
        Ok(Credentials {
            enrollment,
            key_pem: self.read(KEY_FILE)?,
            cert_pem: self.read(CERT_FILE)?,
            ca_pem: self.read(CA_FILE)?,
        })
    }

    /// Writes a new enrollment, each file atomically (temp file, fsync, rename), `agent.json`
    /// last.
    pub fn save(&self, credentials: &Credentials) -> Result<(), StateError> {
        self.create_dir()?;
        let info = serde_json::to_string_pretty(&credentials.enrollment).map_err(|source| {
            StateError::Damaged {
                path: self.path.join(ENROLLMENT_FILE).display().to_string(),
                source,
            }
        })?;
        self.write(KEY_FILE, credentials.key_pem.as_bytes(), true)?;
        self.write(CERT_FILE, credentials.cert_pem.as_bytes(), false)?;
        self.write(CA_FILE, credentials.ca_pem.as_bytes(), false)?;
        self.write(ENROLLMENT_FILE, format!("{info}\n").as_bytes(), false)?;
        #[cfg(unix)]
        std::fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(|source| self.write_error(&self.path, source))?;
        Ok(())
    }

    /// The cached central configuration, if there is one. A damaged cache is an error (the
    /// caller says so and runs the local file alone), never silently nothing.
    pub fn load_central(&self) -> Result<Option<CachedConfig>, StateError> {
        let path = self.path.join(CENTRAL_CONFIG_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = self.read(CENTRAL_CONFIG_FILE)?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Damaged {
                path: path.display().to_string(),
                source,
            })
    }

    /// Replaces the cached central configuration atomically; `None` removes it.
    pub fn save_central(&self, cached: Option<&CachedConfig>) -> Result<(), StateError> {
        let path = self.path.join(CENTRAL_CONFIG_FILE);
        let Some(cached) = cached else {
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(self.write_error(&path, source)),
            };
        };
        let text = serde_json::to_string_pretty(cached).map_err(|source| StateError::Damaged {
            path: path.display().to_string(),
            source,
        })?;
        // Not secret, but the SNMP communities it may hold are nobody else's business.
        self.write(CENTRAL_CONFIG_FILE, format!("{text}\n").as_bytes(), true)
    }

    /// Creates the directory (0700 on unix: it holds the private key).
    pub fn create_dir(&self) -> Result<(), StateError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.path)
            .map_err(|source| self.write_error(&self.path, source))
    }

    fn read(&self, name: &str) -> Result<String, StateError> {
        let path = self.path.join(name);
        std::fs::read_to_string(&path).map_err(|source| StateError::Read {
            path: path.display().to_string(),
            source,
        })
    }

    fn write(&self, name: &str, contents: &[u8], secret: bool) -> Result<(), StateError> {
        let path = self.path.join(name);
        let tmp = self.path.join(format!("{name}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        #[cfg(not(unix))]
        let _ = secret;
        let result = options.open(&tmp).and_then(|mut file| {
            #[cfg(unix)]
            if secret {
                // A stale temp file may have been created with wider permissions.
                use std::os::unix::fs::PermissionsExt as _;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(contents)?;
            file.sync_all()
        });
        result
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| self.write_error(&path, source))
    }

    fn write_error(&self, path: &Path, source: std::io::Error) -> StateError {
        StateError::Write {
            path: path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            enrollment: Enrollment {
                collector_addr: "127.0.0.1:7443".into(),
                clinic_id: "c1".into(),
                agent_id: "a1".into(),
                role: AgentRole::Imaging,
                enrolled_at: "2025-03-01T08:00:00Z".parse().expect("timestamp"),
            },
            key_pem: "KEY".into(),
            cert_pem: "CERT".into(),
            ca_pem: "CA".into(),
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path().join("state"));
        assert!(matches!(state.load(), Err(StateError::NotEnrolled { .. })));
        state.save(&credentials()).expect("save");
        assert!(state.is_enrolled());
        let loaded = state.load().expect("load");
        assert_eq!(loaded.enrollment, credentials().enrollment);
        assert_eq!(loaded.key_pem, "KEY");
        let json = std::fs::read_to_string(state.path().join(ENROLLMENT_FILE)).expect("read");
        assert!(json.contains("\"role\": \"imaging\""), "{json}");
    }

    #[cfg(unix)]
    #[test]
    fn private_key_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        state.save(&credentials()).expect("save");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
