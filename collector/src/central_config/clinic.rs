//! `[clinic]` of a clinic's central configuration, read by the collector only: the clinic's
//! time zone and opening hours, which the silent-agent rule uses instead of the defaults.
//!
//! ```toml
//! [clinic]
//! time_zone = "Indian/Reunion"          # the default
//! [clinic.opening_hours]                # absent: the default hours; a day not listed: closed
//! mon = ["07:30-12:00", "13:30-18:00"]
//! tue = ["07:30-18:00"]
//! sat = ["08:00-12:00"]
//! ```
//! Public holidays of La Réunion are closed whatever the hours say.

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::alerts::opening_hours::{CLINIC_TIME_ZONE, OpeningHours, Period};

/// Day keys, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES: [&str; 7] = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."];

/// `[clinic]`, as stored with the clinic's version (already validated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClinicSection {
    pub time_zone: String,
    /// Day (`mon` ... `sun`) → periods `"HH:MM-HH:MM"`; `None`: the default hours.
    pub opening_hours: Option<BTreeMap<String, Vec<String>>>,
}

impl Default for ClinicSection {
    fn default() -> Self {
        ClinicSection {
            time_zone: CLINIC_TIME_ZONE.to_owned(),
            opening_hours: None,
        }
    }
}

fn period(text: &str) -> Result<Period, String> {
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?} is not a period like \"07:30-12:00\""))?;
    let time = |t: &str| {
        Time::strptime("%H:%M", t.trim())
            .map_err(|_| format!("{t:?} in {text:?} is not a time like \"07:30\""))
    };
    let (start, end) = (time(start)?, time(end)?);
    if start >= end {
        return Err(format!("{text:?} ends before it starts"));
    }
    Ok(Period { start, end })
}

impl ClinicSection {
    /// Every problem, with the key path it concerns (for its line).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if TimeZone::get(&self.time_zone).is_err() {
            problems.push((
                "clinic.time_zone".to_owned(),
                format!(
                    "clinic.time_zone = {:?} is not a known time zone (e.g. \"Indian/Reunion\")",
                    self.time_zone
                ),
            ));
        }
        for (day, periods) in self.opening_hours.iter().flatten() {
            let at = format!("clinic.opening_hours.{day}");
            if !DAYS.contains(&day.as_str()) {
                problems.push((
                    at.clone(),
                    format!("{at}: unknown day (write {})", DAYS.join(", ")),
                ));
                continue;
            }
            for text in periods {
                if let Err(e) = period(text) {
                    problems.push((at.clone(), format!("{at}: {e}")));
                }
            }
        }
        problems
    }

    /// The hours the silent-agent rule uses (invalid parts, which `problems` refused at
    /// `set`, are left out).
    pub fn hours(&self) -> OpeningHours {
        let zone = self.zone();
        let Some(days) = &self.opening_hours else {
            return OpeningHours::default().in_zone(zone);
        };
        let week = DAYS.map(|day| {
            days.get(day)
                .into_iter()
                .flatten()
                .filter_map(|t| period(t).ok())
                .collect()
        });
        OpeningHours::new(week, zone)
    }

    /// The clinic's time zone (one `set` refused when invalid), else Réunion's.
    pub fn zone(&self) -> TimeZone {
        TimeZone::get(&self.time_zone)
            .unwrap_or_else(|_| crate::alerts::opening_hours::clinic_zone())
    }

    /// "lun. 07:30-12:00 13:30-18:00, sam. 08:00-12:00" (French, for technicians).
    pub fn label(&self) -> String {
        let Some(days) = &self.opening_hours else {
            return "horaires par défaut".to_owned();
        };
        let parts: Vec<String> = DAYS
            .iter()
            .zip(DAY_NAMES)
            .filter_map(|(day, name)| {
                let periods = days.get(*day).filter(|p| !p.is_empty())?;
                Some(format!("{name} {}", periods.join(" ")))
            })
            .collect();
        if parts.is_empty() {
            "toujours fermé".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_problems() {
        let mut days = BTreeMap::new();
        days.insert("mon".to_owned(), vec!["08:00-17:00".to_owned()]);
        let section = ClinicSection {
            time_zone: "Indian/Reunion".to_owned(),
            opening_hours: Some(days.clone()),
        };
        assert!(section.problems().is_empty());
        assert_eq!(section.label(), "lun. 08:00-17:00");
        days.insert(
            "mon".to_owned(),
            vec!["18:00-08:00".to_owned(), "9h".to_owned()],
        );
        days.insert("lundi".to_owned(), vec![]);
        let bad = ClinicSection {
            time_zone: "Mars/Olympus".to_owned(),
            opening_hours: Some(days),
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
