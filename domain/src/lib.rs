//! Plain domain types shared by the agent and the collector. No networking, no storage.

pub mod identity;
pub mod token;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A clinic's contract tier (see `DOMAIN.md`): it decides which alert categories apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// "À la carte": facts are stored, nothing alerts by itself.
    Cmp0,
    /// "SAV illimité + sauvegarde": backup alerts.
    Cmp1,
    /// "Infogérance Prisme": backup and preventive alerts, priority queue.
    Cmp3,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Cmp0, Tier::Cmp1, Tier::Cmp3];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Cmp0 => "cmp0",
            Tier::Cmp1 => "cmp1",
            Tier::Cmp3 => "cmp3",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?}: expected cmp0, cmp1 or cmp3")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cmp0" => Ok(Tier::Cmp0),
            "cmp1" => Ok(Tier::Cmp1),
            "cmp3" => Ok(Tier::Cmp3),
            _ => Err(UnknownTier(s.to_owned())),
        }
    }
}

/// What a machine is for; the collector judges silence and thresholds by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    #[default]
    Workstation,
    Server,
    Imaging,
}

impl AgentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Workstation => "workstation",
            AgentRole::Server => "server",
            AgentRole::Imaging => "imaging",
        }
    }
}

impl fmt::Display for AgentRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected server, workstation or imaging")]
pub struct UnknownRole(pub String);

impl FromStr for AgentRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "workstation" => Ok(AgentRole::Workstation),
            "server" => Ok(AgentRole::Server),
            "imaging" => Ok(AgentRole::Imaging),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_and_role_round_trip_through_text() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
        }
        assert_eq!(" CMP3 ".parse::<Tier>(), Ok(Tier::Cmp3));
        assert!("cmp2".parse::<Tier>().is_err());
        for role in [
            AgentRole::Workstation,
            AgentRole::Server,
            AgentRole::Imaging,
        ] {
            assert_eq!(role.as_str().parse::<AgentRole>(), Ok(role));
        }
        assert!("printer".parse::<AgentRole>().is_err());
    }
}
