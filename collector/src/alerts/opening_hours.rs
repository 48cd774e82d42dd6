//! When a clinic is open, in its time zone (La Réunion's by default): by default Monday–Friday
//! 07:30–19:00, Saturday 08:00–12:00, closed on Sundays and public holidays; a clinic's own
//! hours come from `[clinic]` of its central configuration (`central_config::clinic`). Workstations are only expected to
//! report while the clinic is open.

use jiff::Timestamp;
use jiff::civil::{Time, time};
use jiff::tz::{Offset, TimeZone};

use super::holidays::is_public_holiday;

/// The clinics' time zone.
pub const CLINIC_TIME_ZONE: &str = "Indian/Reunion";

/// `Indian/Reunion` from the system's tz database (bundled on Windows by jiff); on a host
/// without tz data, its fixed UTC+4, which is exact: La Réunion has no daylight saving time.
pub fn clinic_zone() -> TimeZone {
    TimeZone::get(CLINIC_TIME_ZONE).unwrap_or_else(|_| TimeZone::fixed(Offset::constant(4)))
}

/// One opening period within a day, `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Time,
    pub end: Time,
}

/// A clinic's weekly opening hours; closed on public holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    /// Index 0 is Monday.
    week: [Vec<Period>; 7],
    zone: TimeZone,
}

impl Default for OpeningHours {
    fn default() -> Self {
        let weekday = vec![Period {
            start: time(7, 30, 0, 0),
            end: time(19, 0, 0, 0),
        }];
        let saturday = vec![Period {
            start: time(8, 0, 0, 0),
            end: time(12, 0, 0, 0),
        }];
        OpeningHours {
            week: [
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday.clone(),
                weekday,
                saturday,
                Vec::new(),
            ],
            zone: clinic_zone(),
        }
    }
}

impl OpeningHours {
    /// A clinic's own hours (`[clinic]` of its central configuration), Monday first.
    pub fn new(week: [Vec<Period>; 7], zone: TimeZone) -> Self {
        OpeningHours { week, zone }
    }

    /// The same hours in another time zone.
    pub fn in_zone(mut self, zone: TimeZone) -> Self {
        self.zone = zone;
        self
    }

    /// When the opening period containing `at` began, or `None` when the clinic is closed.
    pub fn open_since(&self, at: Timestamp) -> Option<Timestamp> {
        let local = at.to_zoned_datetime(self.zone.clone());
        let date = local.date();
        if is_public_holiday(date) {
            return None;
        }
        let index = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let now = local.time();
        let period = self
            .week
            .get(index)?
            .iter()
            .find(|p| p.start <= now && now < p.end)?;
        date.to_datetime(period.start)
            .to_zoned_datetime(self.zone.clone())
            .ok()
            .map(|z| z.timestamp())
    }

    pub fn is_open(&self, at: Timestamp) -> bool {
        self.open_since(at).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        // Local Réunion time, written as in the clinic.
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", text)
            .expect("datetime")
            .to_zoned_datetime(clinic_zone())
            .expect("zoned")
            .timestamp()
    }

    #[test]
    fn the_zone_is_utc_plus_four() {
        let ts = at("2026-06-01 12:00");
        assert_eq!(ts.to_string(), "2026-06-01T08:00:00Z");
    }

    #[test]
    fn default_hours_table() {
        let hours = OpeningHours::default();
        let check = |when: &str, open: bool| assert_eq!(hours.is_open(at(when)), open, "{when}");
        check("2026-06-01 07:29", false); // Monday, before opening
        check("2026-06-01 07:30", true);
        check("2026-06-01 18:59", true);
        check("2026-06-01 19:00", false);
        check("2026-06-06 09:00", true); // Saturday morning
        check("2026-06-06 12:30", false); // Saturday afternoon
        check("2026-06-07 10:00", false); // Sunday
        check("2026-12-20 10:00", false); // 20 December (a Sunday in 2026, but a holiday anyway)
        check("2026-05-14 10:00", false); // Ascension Thursday
        check("2026-05-25 10:00", false); // Whit Monday
        assert_eq!(
            hours.open_since(at("2026-06-01 10:00")),
            Some(at("2026-06-01 07:30"))
        );
    }
}
