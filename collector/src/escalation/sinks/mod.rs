//! Ticket sinks: where tickets go. One file per ticket system; [`TicketSink`] is what each
//! implements and [`Sink`] the registry (a plain enum and a match).
//!
//! Exactly-once in effect: the worker records "a create was sent" before sending it and the
//! ticket id after. A sink that can search (GLPI) finds the ticket by its tag when a create's
//! outcome is unknown; the others get the same create again with the same idempotency key
//! (`X-Vigie-Delivery`, the e-mail's `Message-ID`) for the receiver to drop.

pub mod email;
pub mod glpi;
pub mod webhook;

use std::future::Future;

use super::config::{SinkConfig, SinkKind};
use super::ticket::{TicketDraft, TicketNote};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Not delivered (refused connection, 5xx, 429…): try again later.
    #[error("{0}")]
    Transient(String),
    /// Sent, but no answer: it may or may not have been done.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// Refused for a reason retrying will not fix without a person (credentials, 4xx).
    #[error("refused: {0}")]
    Refused(String),
    /// The sink cannot be set up from its configuration.
    #[error("configuration: {0}")]
    Config(String),
}

/// Looking a ticket up by its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(String),
    NotFound,
    /// This sink cannot search: send again with the same idempotency key.
    Unsupported,
}

pub trait TicketSink: Send + Sync {
    /// Creates the ticket; returns its id in the ticket system.
    fn create(&self, draft: &TicketDraft)
    -> impl Future<Output = Result<String, SinkError>> + Send;
    /// Finds the ticket carrying `draft.tag`, if the sink can search.
    fn find(&self, draft: &TicketDraft) -> impl Future<Output = Result<Lookup, SinkError>> + Send;
    /// Adds a follow-up to the ticket (and marks it solved when `note.solves`).
    fn add_note(
        &self,
        ticket_id: &str,
        note: &TicketNote,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Called when the worker is done for now (GLPI ends its session).
    fn end_round(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A configured sink.
#[derive(Debug)]
pub enum Sink {
    Glpi(glpi::GlpiSink),
    Webhook(webhook::WebhookSink),
    Email(email::EmailSink),
}

impl Sink {
    pub fn from_config(config: &SinkConfig) -> Result<Sink, SinkError> {
        crate::install_crypto_provider();
        Ok(match &config.kind {
            SinkKind::Glpi(c) => Sink::Glpi(glpi::GlpiSink::new(c)?),
            SinkKind::Webhook(c) => Sink::Webhook(webhook::WebhookSink::new(c)?),
            SinkKind::Email(c) => Sink::Email(email::EmailSink::new(c)?),
        })
    }
}

impl TicketSink for Sink {
    async fn create(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        match self {
            Sink::Glpi(s) => s.create(draft).await,
            Sink::Webhook(s) => s.create(draft).await,
            Sink::Email(s) => s.create(draft).await,
        }
    }

    async fn find(&self, draft: &TicketDraft) -> Result<Lookup, SinkError> {
        match self {
            Sink::Glpi(s) => s.find(draft).await,
            Sink::Webhook(s) => s.find(draft).await,
            Sink::Email(s) => s.find(draft).await,
        }
    }

    async fn add_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), SinkError> {
        match self {
            Sink::Glpi(s) => s.add_note(ticket_id, note).await,
            Sink::Webhook(s) => s.add_note(ticket_id, note).await,
            Sink::Email(s) => s.add_note(ticket_id, note).await,
        }
    }

    async fn end_round(&self) {
        match self {
            Sink::Glpi(s) => s.end_round().await,
            Sink::Webhook(s) => s.end_round().await,
            Sink::Email(s) => s.end_round().await,
        }
    }
}

/// An HTTP client error as a [`SinkError`]: not connected → transient; sent but timed out
/// or cut → unknown outcome.
pub(crate) fn http_error(error: &reqwest::Error) -> SinkError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_connect() || error.is_builder() {
        SinkError::Transient(text)
    } else {
        SinkError::Unknown(text)
    }
}

/// An HTTP status that is not success, as a [`SinkError`].
pub(crate) fn status_error(status: reqwest::StatusCode, body: &str) -> SinkError {
    let body: String = body.chars().take(300).collect();
    let text = format!("HTTP {status}: {body}");
    if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        SinkError::Transient(text)
    } else {
        SinkError::Refused(text)
    }
}

/// The PEM of a sink's `ca_file`.
pub(crate) fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, SinkError> {
    std::fs::read(path).map_err(|e| SinkError::Config(format!("ca_file {}: {e}", path.display())))
}

/// An HTTP client on rustls with the process's ring provider, the system's roots and the
/// optional private CA.
pub(crate) fn http_client(
    timeout_seconds: u64,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, SinkError> {
    let mut builder = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout_seconds.max(1)))
        .connect_timeout(std::time::Duration::from_secs(timeout_seconds.clamp(1, 10)))
        .user_agent(concat!("vigie-collector/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let ca = reqwest::Certificate::from_pem(&read_ca(path)?)
            .map_err(|e| SinkError::Config(format!("ca_file {}: {e}", path.display())))?;
        builder = builder.add_root_certificate(ca);
    }
    builder
        .build()
        .map_err(|e| SinkError::Config(e.to_string()))
}
