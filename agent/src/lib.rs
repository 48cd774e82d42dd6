//! Vigie's endpoint agent as a library: the binary is a thin command line over these modules.
//! A new check is a new file under `facts/` and one variant of [`facts::Fact`].

#![forbid(unsafe_code)]

pub mod backoff;
pub mod central;
pub mod checks;
pub mod command;
pub mod config;
pub mod duration_text;
pub mod enroll;
pub mod facts;
pub mod logging;
pub mod outbox;
pub mod pin;
pub mod probe;
pub mod run;
pub mod sender;
pub mod service;
pub mod state;
pub mod text;
pub mod transport;
