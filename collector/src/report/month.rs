//! A calendar month in a clinic's time zone: `2026-11` and its bounds as instants.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i16,
    pub month: i8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("le mois « {0} » n'est pas au format AAAA-MM (par exemple 2026-11)")]
pub struct BadMonth(pub String);

impl FromStr for Month {
    type Err = BadMonth;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadMonth(text.to_owned());
        let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !(1970..=9998).contains(&year) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

impl Month {
    pub fn first_day(self) -> Date {
        date(self.year, self.month, 1)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month `at` falls in, in `zone`.
    pub fn containing(at: Timestamp, zone: &TimeZone) -> Month {
        let d = at.to_zoned_datetime(zone.clone()).date();
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    /// Midnight of the 1st, local, as an instant.
    pub fn start(self, zone: &TimeZone) -> Timestamp {
        start_of(self.first_day(), zone)
    }

    /// Midnight of the next month's 1st: the end, excluded.
    pub fn end(self, zone: &TimeZone) -> Timestamp {
        self.next().start(zone)
    }

    /// The month's days, in order.
    pub fn days(self) -> Vec<Date> {
        let first = self.first_day();
        (0..i64::from(first.days_in_month()))
            .filter_map(|i| first.checked_add(i.days()).ok())
            .collect()
    }

    /// "novembre 2026".
    pub fn label(self) -> String {
        let name = MONTHS
            .get(usize::try_from(self.month - 1).unwrap_or(0))
            .copied()
            .unwrap_or("?");
        format!("{name} {}", self.year)
    }
}

/// Local midnight of `day` as an instant (the earliest instant of that day).
pub fn start_of(day: Date, zone: &TimeZone) -> Timestamp {
    day.to_zoned_datetime(zone.clone())
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bounds_in_reunion_time() {
        let zone = crate::alerts::opening_hours::clinic_zone();
        let m: Month = "2026-11".parse().expect("month");
        assert_eq!(m.to_string(), "2026-11");
        assert_eq!(m.start(&zone).to_string(), "2026-10-31T20:00:00Z");
        assert_eq!(m.end(&zone).to_string(), "2026-11-30T20:00:00Z");
        assert_eq!(m.days().len(), 30);
        assert_eq!(m.label(), "novembre 2026");
        assert_eq!(
            "2026-12".parse::<Month>().map(Month::next),
            "2027-01".parse()
        );
        for bad in ["2026-13", "2026-1", "26-11", "novembre", ""] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
    }
}
