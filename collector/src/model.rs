//! The collector's own record types: what it keeps about clinics, tokens and agents. Wire
//! types (`vigie_proto`) are converted to and from these at the gRPC edge.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use vigie_domain::{AgentRole, Tier};

use crate::alerts::policy::RuleOverrides;
use crate::limits::Cut;

/// A clinic under contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clinic {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub created_at: Timestamp,
    /// Rule families switched on or off against the tier (`clinic rules`).
    #[serde(default, skip_serializing_if = "RuleOverrides::is_empty")]
    pub rule_overrides: RuleOverrides,
    /// Where the monthly report is e-mailed (`clinic set-contact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
}

/// What the collector keeps of an enrollment token: never the secret, only its hash (the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub clinic_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used: bool,
    /// The agent enrolled with it, once used.
    #[serde(default)]
    pub used_by: Option<String>,
}

/// An enrolled agent and the latest facts it sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: String,
    pub clinic_id: String,
    pub hostname: String,
    pub os: String,
    pub role: AgentRole,
    pub agent_version: String,
    pub enrolled_at: Timestamp,
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// Reports the agent's outbox dropped when full, cumulative, as last reported.
    #[serde(default)]
    pub outbox_dropped_total: u64,
    /// Write failures and quarantine of the agent's outbox, as last reported.
    #[serde(default)]
    pub outbox_health: OutboxHealth,
    /// The most recent system snapshot (by collection time) and when it was collected.
    #[serde(default)]
    pub snapshot: Option<SystemSnapshot>,
    #[serde(default)]
    pub snapshot_collected_at: Option<Timestamp>,
    /// The agent's clock against the collector's, as of its latest batch that said.
    #[serde(default)]
    pub clock: Option<crate::agent_clock::ClockReading>,
    /// The central configuration it runs and what it refused (`central_config`).
    #[serde(default)]
    pub config: crate::central_config::AgentConfigState,
}

/// The two fields of an [`AgentRecord`] the ingest checks on every call, read without building
/// the rest (serde skips the other fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentIdentity {
    pub clinic_id: String,
    #[serde(default)]
    pub revoked: bool,
}

/// What an agent's outbox went through, as its last batch said (agents older than these
/// fields send zeros).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxHealth {
    /// Writes or syncs of the outbox that failed (disk full, I/O error), cumulative.
    pub write_failures_total: u64,
    pub last_write_error: String,
    /// Reports the collector refused for good, kept in the agent's quarantine now.
    pub quarantined: u64,
    pub quarantined_total: u64,
    /// Quarantined reports the agent discarded because its quarantine was full.
    pub quarantine_dropped_total: u64,
    pub last_quarantine_reason: String,
}

/// A machine's system state, as of one collection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SystemSnapshot {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub cpu_arch: String,
    pub uptime_seconds: u64,
    pub cpu_count: u32,
    pub load_1: f64,
    pub load_5: f64,
    pub load_15: f64,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
    pub disks: Vec<Disk>,
    /// What the collector left out (`limits.rs`): "500 disques, 64 pris en compte".
    #[serde(default, skip_serializing_if = "Cut::is_empty")]
    pub cut: Cut,
}

impl SystemSnapshot {
    /// "os_name os_version", as shown for an agent.
    pub fn os_label(&self) -> String {
        format!("{} {}", self.os_name.trim(), self.os_version.trim())
            .trim()
            .to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Disk {
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub removable: bool,
    pub kind: String,
}
