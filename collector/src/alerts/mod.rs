//! Alerts: the tier policy, one rule family per file, the alert lifecycle, and the engine that
//! runs them. Policy, rules and lifecycle do no I/O; only `engine.rs` and `evaluator.rs` touch
//! storage and tasks.

pub mod alert;
pub mod clock;
pub mod engine;
pub mod evaluator;
pub mod holidays;
pub mod lifecycle;
pub mod opening_hours;
pub mod policy;
pub mod rules;
pub mod summary;
pub mod thresholds;

pub use alert::{
    Alert, AlertEvent, AlertState, EventKind, HistoryEntry, MaintenanceWindow, Severity,
    StoredEvent,
};
pub use policy::{Category, Family, Rule, RuleOverrides};

#[cfg(test)]
mod tests;
