//! The webhook sink: a signed JSON POST per ticket operation (format in the README,
//! "Webhook"). The body is signed with HMAC-SHA256 over `TIMESTAMP.BODY` with the shared
//! secret; `X-Vigie-Delivery` is the idempotency key a receiver uses to drop repeats.

use jiff::Timestamp;
use ring::hmac;
use serde::Serialize;

use super::{Lookup, SinkError, TicketSink, http_client, http_error, status_error};
use crate::escalation::config::WebhookConfig;
use crate::escalation::ticket::{TicketDraft, TicketNote};

/// Version of the JSON body; bumped only for incompatible changes.
pub const BODY_VERSION: u32 = 1;

#[derive(Debug)]
pub struct WebhookSink {
    url: reqwest::Url,
    key: hmac::Key,
    client: reqwest::Client,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    version: u32,
    /// `ticket.create`, `ticket.follow_up`, `ticket.solve`.
    event: &'a str,
    delivery: &'a str,
    tag: &'a str,
    sent_at: Timestamp,
    /// The ticket id the receiver answered to the create (absent for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<&'a TicketDraft>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a TicketNote>,
}

/// `sha256=HEX(HMAC-SHA256(secret, "TIMESTAMP.BODY"))`.
pub fn signature(key: &hmac::Key, timestamp: i64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl WebhookSink {
    pub fn new(config: &WebhookConfig) -> Result<Self, SinkError> {
        let url =
            reqwest::Url::parse(&config.url).map_err(|e| SinkError::Config(format!("url: {e}")))?;
        Ok(WebhookSink {
            url,
            key: hmac::Key::new(hmac::HMAC_SHA256, config.secret.as_bytes()),
            client: http_client(config.timeout_seconds, config.ca_file.as_deref())?,
        })
    }

    async fn post(&self, body: &Body<'_>) -> Result<String, SinkError> {
        let bytes = serde_json::to_vec(body).map_err(|e| SinkError::Config(e.to_string()))?;
        let timestamp = body.sent_at.as_second();
        let response = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header("X-Vigie-Event", body.event)
            .header("X-Vigie-Delivery", body.delivery)
            .header("X-Vigie-Timestamp", timestamp.to_string())
            .header("X-Vigie-Signature", signature(&self.key, timestamp, &bytes))
            .body(bytes)
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(status_error(status, &text));
        }
        Ok(text)
    }
}

impl TicketSink for WebhookSink {
    async fn create(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let text = self
            .post(&Body {
                version: BODY_VERSION,
                event: "ticket.create",
                delivery: &draft.key,
                tag: &draft.tag,
                sent_at: Timestamp::now(),
                ticket_id: None,
                ticket: Some(draft),
                note: None,
            })
            .await?;
        // A receiver may answer `{"ticket_id": "..."}`; otherwise the key names the ticket.
        let answered = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| match &v["ticket_id"] {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        Ok(answered.unwrap_or_else(|| draft.key.clone()))
    }

    async fn find(&self, _draft: &TicketDraft) -> Result<Lookup, SinkError> {
        Ok(Lookup::Unsupported)
    }

    async fn add_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.post(&Body {
            version: BODY_VERSION,
            event: if note.solves {
                "ticket.solve"
            } else {
                "ticket.follow_up"
            },
            delivery: &note.key,
            tag: &note.tag,
            sent_at: Timestamp::now(),
            ticket_id: Some(ticket_id),
            ticket: None,
            note: Some(note),
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value: python3 -c 'import hmac,hashlib;
        //   print(hmac.new(b"0123456789abcdef", b"1700000000.{}", hashlib.sha256).hexdigest())'
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef");
        assert_eq!(
            signature(&key, 1_700_000_000, b"{}"),
            "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }
}
