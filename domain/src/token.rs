//! The enrollment token a technician pastes on a clinic PC: where the collector is, which CA to
//! pin (SHA-256 of its DER, as `kubeadm join --discovery-token-ca-cert-hash`), and a
//! single-use secret. The collector keeps only a hash of the secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "vigie1_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// `HOST:PORT` of the collector's agent listener.
    #[serde(rename = "a")]
    pub collector_addr: String,
    /// Lower-case hex SHA-256 of the collector CA certificate (DER).
    #[serde(rename = "h")]
    pub ca_sha256: String,
    /// Random secret, URL-safe base64.
    #[serde(rename = "s")]
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a Vigie enrollment token (it should start with {PREFIX:?})")]
    Prefix,
    #[error("enrollment token is damaged (bad encoding): was it copied whole?")]
    Encoding,
    #[error("enrollment token has an invalid CA fingerprint (expected 64 hex digits)")]
    Fingerprint,
    #[error("enrollment token has an empty collector address or secret")]
    Empty,
}

impl EnrollmentToken {
    pub fn encode(&self) -> String {
        // Serializing a struct of three strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let body = text.trim().strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Encoding)?;
        let token: EnrollmentToken =
            serde_json::from_slice(&json).map_err(|_| TokenError::Encoding)?;
        if token.ca_sha256.len() != 64 || !token.ca_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Fingerprint);
        }
        if token.collector_addr.is_empty() || token.secret.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(EnrollmentToken {
            ca_sha256: token.ca_sha256.to_ascii_lowercase(),
            ..token
        })
    }
}

/// Lower-case hex, as fingerprints are printed and compared.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnrollmentToken {
        EnrollmentToken {
            collector_addr: "collector.example:7443".into(),
            ca_sha256: "AB".repeat(32),
            secret: "s3cr3t".into(),
        }
    }

    #[test]
    fn token_round_trips_and_normalises_fingerprint() {
        let decoded = EnrollmentToken::decode(&sample().encode()).expect("decodes");
        assert_eq!(decoded.ca_sha256, "ab".repeat(32));
        assert_eq!(decoded.collector_addr, "collector.example:7443");
    }

    #[test]
    fn damaged_tokens_say_what_is_wrong() {
        let good = sample().encode();
        assert_eq!(EnrollmentToken::decode("abc"), Err(TokenError::Prefix));
        assert_eq!(
            EnrollmentToken::decode(&good[..good.len() - 5]),
            Err(TokenError::Encoding)
        );
        let short = EnrollmentToken {
            ca_sha256: "abcd".into(),
            ..sample()
        };
        assert_eq!(
            EnrollmentToken::decode(&short.encode()),
            Err(TokenError::Fingerprint)
        );
    }
}
