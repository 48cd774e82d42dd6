//! The support calendar: when each tier's support line is staffed, in La Réunion time (see
//! `DOMAIN.md`), and when a response is due — the tier's SLA counted in those hours only.
//!
//! CMP0: Monday–Friday 09:00–12:00 and 13:30–16:00, closed on public holidays.
//! CMP1 and CMP3: Monday–Friday 07:00–20:00, Saturday 07:00–16:00, Sunday and public holidays
//! 09:00–12:00, remote work only.

use jiff::civil::{Date, Time, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan as _};
use vigie_domain::Tier;

use crate::alerts::holidays::is_public_holiday;
use crate::alerts::opening_hours::clinic_zone;

/// One staffed period of a day, `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Time,
    pub end: Time,
    /// Sunday and public-holiday windows: remote work only, nobody goes on site.
    pub remote_only: bool,
}

const fn window(start: Time, end: Time, remote_only: bool) -> Window {
    Window {
        start,
        end,
        remote_only,
    }
}

/// When a response is due, and whether that moment falls in a remote-only window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseDue {
    pub at: Timestamp,
    pub remote_only: bool,
}

/// The support hours of the tiers, in one time zone.
#[derive(Debug, Clone)]
pub struct SupportCalendar {
    zone: TimeZone,
}

impl Default for SupportCalendar {
    fn default() -> Self {
        SupportCalendar {
            zone: clinic_zone(),
        }
    }
}

/// Days looked ahead before giving up (a year covers any run of holidays and weekends).
const MAX_DAYS: i64 = 366;

impl SupportCalendar {
    /// The staffed windows of `tier` on `date`, in order.
    pub fn windows(&self, tier: Tier, date: Date) -> Vec<Window> {
        let holiday = is_public_holiday(date);
        let weekday = date.weekday().to_monday_zero_offset();
        match tier {
            Tier::Cmp0 if holiday || weekday >= 5 => Vec::new(),
            Tier::Cmp0 => vec![
                window(time(9, 0, 0, 0), time(12, 0, 0, 0), false),
                window(time(13, 30, 0, 0), time(16, 0, 0, 0), false),
            ],
            Tier::Cmp1 | Tier::Cmp3 if holiday || weekday == 6 => {
                vec![window(time(9, 0, 0, 0), time(12, 0, 0, 0), true)]
            }
            Tier::Cmp1 | Tier::Cmp3 if weekday == 5 => {
                vec![window(time(7, 0, 0, 0), time(16, 0, 0, 0), false)]
            }
            Tier::Cmp1 | Tier::Cmp3 => vec![window(time(7, 0, 0, 0), time(20, 0, 0, 0), false)],
        }
    }

    /// Whether `tier`'s support line is staffed at `at`.
    pub fn is_open(&self, tier: Tier, at: Timestamp) -> bool {
        let local = at.to_zoned_datetime(self.zone.clone());
        let now = local.time();
        self.windows(tier, local.date())
            .iter()
            .any(|w| w.start <= now && now < w.end)
    }

    /// `sla` of support time after `from`: the moment the response is due. A zero SLA is due
    /// at the next staffed moment. `None` only if nothing is staffed within a year.
    pub fn response_due(
        &self,
        tier: Tier,
        from: Timestamp,
        sla: SignedDuration,
    ) -> Option<ResponseDue> {
        let local = from.to_zoned_datetime(self.zone.clone());
        let mut date = local.date();
        let mut left = sla.max(SignedDuration::ZERO);
        for day in 0..MAX_DAYS {
            for w in self.windows(tier, date) {
                let start = if day == 0 {
                    w.start.max(local.time())
                } else {
                    w.start
                };
                if start >= w.end {
                    continue;
                }
                let available = w.end.duration_since(start);
                if left <= available {
                    let at = date
                        .to_datetime(start)
                        .checked_add(left)
                        .ok()?
                        .to_zoned_datetime(self.zone.clone())
                        .ok()?
                        .timestamp();
                    return Some(ResponseDue {
                        at,
                        remote_only: w.remote_only,
                    });
                }
                left -= available;
            }
            date = date.checked_add(1.day()).ok()?;
        }
        None
    }

    /// `at` as a technician reads it: "lundi 29/03/2027 10:00" (the calendar's zone is La
    /// Réunion's, as `time_text` shows it).
    pub fn local_text(&self, at: Timestamp) -> String {
        crate::time_text::local_with_weekday(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", text)
            .expect("datetime")
            .to_zoned_datetime(clinic_zone())
            .expect("zoned")
            .timestamp()
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    /// One line per case: tier, local start, SLA, expected local due time, remote only.
    fn check(tier: Tier, from: &str, sla: SignedDuration, due: &str, remote_only: bool) {
        let calendar = SupportCalendar::default();
        let got = calendar
            .response_due(tier, at(from), sla)
            .expect("a due time");
        assert_eq!(
            (calendar.local_text(got.at), got.remote_only),
            (calendar.local_text(at(due)), remote_only),
            "{tier} from {from} + {sla:?}"
        );
    }

    #[test]
    fn response_due_in_support_hours() {
        use Tier::*;
        // Saturday 17:00 (after Saturday's 16:00 close), before Easter 2027: Easter Sunday
        // 09–12 remote (3 h), then Easter Monday, a holiday, 09–10 remote.
        check(Cmp1, "2027-03-27 17:00", hours(4), "2027-03-29 10:00", true);
        check(Cmp3, "2027-03-27 17:00", hours(2), "2027-03-28 11:00", true);
        // Saturday within hours: 15:00 + 2 h → 1 h Saturday, 1 h Sunday morning.
        check(Cmp1, "2026-06-06 15:00", hours(2), "2026-06-07 10:00", true);
        // Sunday: 10:00 + 4 h → 2 h Sunday, then Monday 07:00 + 2 h.
        check(
            Cmp3,
            "2026-06-07 10:00",
            hours(4),
            "2026-06-08 09:00",
            false,
        );
        // Sunday for CMP0: closed until Monday 09:00.
        check(
            Cmp0,
            "2026-06-07 10:00",
            hours(2),
            "2026-06-08 11:00",
            false,
        );
        // Easter Monday 2027 (29 March): CMP1 remote 09–12; CMP0 closed until Tuesday.
        check(Cmp1, "2027-03-29 08:00", hours(3), "2027-03-29 12:00", true);
        check(
            Cmp1,
            "2027-03-29 08:00",
            hours(4),
            "2027-03-30 08:00",
            false,
        );
        check(
            Cmp0,
            "2027-03-29 10:00",
            hours(2),
            "2027-03-30 11:00",
            false,
        );
        // 20 December 2027, a Monday and a Réunion holiday: 09–12 remote, then Tuesday.
        check(
            Cmp1,
            "2027-12-20 08:00",
            hours(4),
            "2027-12-21 08:00",
            false,
        );
        check(
            Cmp0,
            "2027-12-20 08:00",
            hours(1),
            "2027-12-21 10:00",
            false,
        );
        // 31 December 2027 (Friday) evening: 1 h until 20:00, New Year's Day 09–12 remote.
        check(Cmp1, "2027-12-31 19:00", hours(4), "2028-01-01 12:00", true);
        check(Cmp3, "2027-12-31 21:30", hours(2), "2028-01-01 11:00", true);
        // CMP0 from 31 December evening: holiday, Sunday, then Monday 3 January 09–12 and
        // 13:30–16:00 (5 h 30), Tuesday 09:00 + 2 h 30.
        check(
            Cmp0,
            "2027-12-31 18:00",
            hours(8),
            "2028-01-04 11:30",
            false,
        );
        // CMP0 lunch break: 11:00 + 2 h → 1 h before noon, 1 h after 13:30.
        check(
            Cmp0,
            "2026-06-08 11:00",
            hours(2),
            "2026-06-08 14:30",
            false,
        );
    }

    #[test]
    fn open_hours_table() {
        let calendar = SupportCalendar::default();
        let check = |tier: Tier, when: &str, open: bool| {
            assert_eq!(calendar.is_open(tier, at(when)), open, "{tier} {when}");
        };
        check(Tier::Cmp1, "2027-03-27 15:59", true); // Saturday
        check(Tier::Cmp1, "2027-03-27 17:00", false);
        check(Tier::Cmp3, "2027-03-28 09:00", true); // Sunday, remote
        check(Tier::Cmp0, "2027-03-28 09:00", false);
        check(Tier::Cmp1, "2027-03-29 13:00", false); // Easter Monday afternoon
        check(Tier::Cmp0, "2027-03-30 12:30", false); // lunch
        check(Tier::Cmp0, "2027-03-30 13:30", true);
        check(Tier::Cmp1, "2027-12-20 10:00", true); // 20 December, remote
        check(Tier::Cmp0, "2027-12-20 10:00", false);
        check(Tier::Cmp1, "2027-12-31 19:59", true);
        check(Tier::Cmp1, "2027-12-31 20:00", false);
    }
}
