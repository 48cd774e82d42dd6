//! Who a certificate speaks for. The collector writes this into every certificate it issues
//! as a URI subject alternative name and reads it back from the verified peer certificate:
//! identity never comes from a message field.

use std::fmt;

const AGENT_PREFIX: &str = "urn:vigie:clinic:";
const ADMIN_URI: &str = "urn:vigie:admin";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertIdentity {
    Agent {
        clinic_id: String,
        agent_id: String,
    },
    /// The admin client made by `vigie-collector init`.
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Vigie identity URI: {0:?}")]
pub struct NotAnIdentity(pub String);

impl CertIdentity {
    pub fn agent(clinic_id: impl Into<String>, agent_id: impl Into<String>) -> Self {
        CertIdentity::Agent {
            clinic_id: clinic_id.into(),
            agent_id: agent_id.into(),
        }
    }

    /// The URI SAN form: `urn:vigie:clinic:<clinic>:agent:<agent>` or `urn:vigie:admin`.
    pub fn to_uri(&self) -> String {
        self.to_string()
    }

    pub fn from_uri(uri: &str) -> Result<Self, NotAnIdentity> {
        if uri == ADMIN_URI {
            return Ok(CertIdentity::Admin);
        }
        let rest = uri
            .strip_prefix(AGENT_PREFIX)
            .ok_or_else(|| NotAnIdentity(uri.to_owned()))?;
        let (clinic_id, agent_id) = rest
            .split_once(":agent:")
            .ok_or_else(|| NotAnIdentity(uri.to_owned()))?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !valid(clinic_id) || !valid(agent_id) {
            return Err(NotAnIdentity(uri.to_owned()));
        }
        Ok(CertIdentity::agent(clinic_id, agent_id))
    }
}

impl fmt::Display for CertIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertIdentity::Agent {
                clinic_id,
                agent_id,
            } => write!(f, "{AGENT_PREFIX}{clinic_id}:agent:{agent_id}"),
            CertIdentity::Admin => f.write_str(ADMIN_URI),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_uri_round_trips_and_rejects_lookalikes() {
        let id = CertIdentity::agent("0193-clinic", "0193-agent");
        assert_eq!(CertIdentity::from_uri(&id.to_uri()), Ok(id));
        assert_eq!(
            CertIdentity::from_uri("urn:vigie:admin"),
            Ok(CertIdentity::Admin)
        );
        for bad in [
            "urn:vigie:clinic::agent:a",
            "urn:vigie:clinic:c:agent:",
            "urn:vigie:clinic:c",
            "urn:vigie:clinic:c:agent:a:agent:b",
            "https://example.org",
            "urn:vigie:admin2",
        ] {
            assert!(CertIdentity::from_uri(bad).is_err(), "{bad}");
        }
    }
}
