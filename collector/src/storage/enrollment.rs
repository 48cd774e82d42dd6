//! Clinics, enrollment tokens and agents: `clinics` (id → Clinic), `tokens` (SHA-256 of the
//! secret → TokenRecord), `agents` (id → AgentRecord), all JSON so a record can gain fields.
//! Spending a token and recording its agent is one transaction; an agent record is only ever
//! changed by compare-and-swap, so concurrent writers (ingest, admin) never undo each other.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{Storage, StorageError, decode, encode};
use crate::model::{AgentIdentity, AgentRecord, Clinic, TokenRecord};

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

impl Storage {
    // ---- clinics ----

    pub fn add_clinic(&self, clinic: &Clinic) -> Result<(), StorageError> {
        let _turn = self.writing();
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
        let _turn = self.writing();
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
        let _turn = self.writing();
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
        let _turn = self.writing();
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

    /// Only what the per-call identity check needs: serde skips the rest of the record (the
    /// snapshot above all) without building it, on every `Report` call.
    pub fn agent_identity(&self, id: &str) -> Result<Option<AgentIdentity>, StorageError> {
        self.agent_as(id)
    }

    pub fn agent(&self, id: &str) -> Result<Option<AgentRecord>, StorageError> {
        self.agent_as(id)
    }

    /// An agent's stored record, read as `T` (the whole record or a view of it).
    fn agent_as<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StorageError> {
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

    /// Read-modify-write of one agent record without losing a concurrent update: every write
    /// of an agent record is a sled transaction (this one, enrollment, a stored batch), so
    /// writers are serialised. `None` if there is no such agent.
    pub fn update_agent(
        &self,
        id: &str,
        change: impl Fn(&mut AgentRecord),
    ) -> Result<Option<AgentRecord>, StorageError> {
        let _turn = self.writing();
        let result = self.agents.transaction(|agents| {
            let Some(old) = agents.get(id.as_bytes())? else {
                return Ok(None);
            };
            let mut agent: AgentRecord =
                decode("agent", &old).map_err(ConflictableTransactionError::Abort)?;
            change(&mut agent);
            let new = encode("agent", &agent).map_err(ConflictableTransactionError::Abort)?;
            agents.insert(id.as_bytes(), new)?;
            Ok(Some(agent))
        });
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    /// Marks an agent revoked. `None` if there is no such agent.
    pub fn revoke_agent(
        &self,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<AgentRecord>, StorageError> {
        let _turn = self.writing();
        self.update_agent(id, |agent| {
            if !agent.revoked {
                agent.revoked = true;
                agent.revoked_at = Some(now);
            }
        })
    }
}

fn abort<T>(error: EnrollError) -> Result<T, ConflictableTransactionError<EnrollError>> {
    Err(ConflictableTransactionError::Abort(error))
}
