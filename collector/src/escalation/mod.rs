//! Escalation of alerts to tickets (GLPI, webhook, e-mail) within La Réunion's support hours.
//!
//! `policy.rs` (which events make or update a ticket, grace, priority) and `calendar.rs`
//! (support hours, response deadlines) do no I/O; `ticket.rs` writes what a ticket says;
//! `queue.rs` is the durable record per (alert, sink), stored by `storage.rs`; `worker.rs`
//! consumes alert events after its cursor and drives the `sinks/`, one file per system.

pub mod calendar;
pub mod config;
pub mod policy;
pub mod queue;
pub mod sinks;
pub mod ticket;
pub mod worker;

pub use config::EscalationConfig;
pub use queue::Escalation;
pub use worker::Escalator;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    #[error("escalation sink {sink:?}: {source}")]
    Sink {
        sink: String,
        source: sinks::SinkError,
    },
    #[error("aucune destination de tickets nommée {name:?} (configurées : {})", configured.join(", "))]
    UnknownSink {
        name: String,
        configured: Vec<String>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("escalation queue not flushed to disk: {0}")]
    Durability(String),
    #[error("escalation task failed")]
    Task,
}
