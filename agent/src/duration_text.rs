//! Durations written as text in the configuration, e.g. `"90s"`, `"5m"`, `"1h 30m"`: the one
//! deserializer every section uses (`#[serde(with = "crate::duration_text")]`, or
//! `crate::duration_text::option` for an optional field).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

fn parse<E: serde::de::Error>(text: &str) -> Result<Duration, E> {
    humantime::parse_duration(text).map_err(|e| {
        E::custom(format!(
            "invalid duration {text:?} ({e}); write e.g. \"30s\", \"5m\", \"1h\" or \"7days\""
        ))
    })
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse(&String::deserialize(d)?)
}

/// An optional duration: absent is `None` (with `#[serde(default)]`).
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::parse(&String::deserialize(d)?).map(Some)
    }
}
