//! How far an agent's clock is from the collector's, and what time of an agent's report the
//! collector can trust. Pure: times in, times out.
//!
//! A PC whose clock jumped a year ahead once (a flat CMOS battery, a bad NTP answer) must not
//! freeze its facts on that report: "newest wins" compares trusted times, and nothing can have
//! been collected after the collector received it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Below this, an offset is network delay and ordinary drift: times are taken as the agent
/// says. Above it, the agent's times are corrected by the offset it showed in the same batch.
pub const TOLERANCE: SignedDuration = SignedDuration::from_secs(60);

/// One measure of an agent's clock: `sent_at` of a batch against the collector's time when
/// it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    /// Agent clock minus collector clock, in seconds (positive: the agent is ahead).
    pub offset_seconds: i64,
    /// Collector time of the measure.
    pub measured_at: Timestamp,
}

impl ClockReading {
    /// The reading of one batch; `None` from agents that do not send `sent_at`.
    pub fn of(sent_at: Option<Timestamp>, received_at: Timestamp) -> Option<ClockReading> {
        let sent_at = sent_at?;
        Some(ClockReading {
            offset_seconds: sent_at.duration_since(received_at).as_secs(),
            measured_at: received_at,
        })
    }

    pub fn offset(&self) -> SignedDuration {
        SignedDuration::from_secs(self.offset_seconds)
    }
}

/// The time the collector orders a report's facts by: `collected_at` corrected by the batch's
/// clock offset when it exceeds [`TOLERANCE`], and never later than the report's arrival.
pub fn trusted_time(
    collected_at: Timestamp,
    received_at: Timestamp,
    reading: Option<&ClockReading>,
) -> Timestamp {
    let corrected = match reading {
        Some(r) if r.offset().abs() > TOLERANCE => {
            collected_at.checked_sub(r.offset()).unwrap_or(received_at)
        }
        _ => collected_at,
    };
    corrected.min(received_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("ts")
    }

    fn reading(offset: i64) -> ClockReading {
        ClockReading {
            offset_seconds: offset,
            measured_at: t(0),
        }
    }

    #[test]
    fn trusted_time_table() {
        let year = 365 * 86_400;
        let check = |collected: i64, received: i64, offset: Option<i64>, expected: i64| {
            let r = offset.map(reading);
            assert_eq!(
                trusted_time(t(collected), t(received), r.as_ref()),
                t(expected),
                "collected {collected} received {received} offset {offset:?}"
            );
        };
        // A good clock: as the agent says; a backlog keeps its own (earlier) times.
        check(-5, 0, Some(0), -5);
        check(-7200, 0, Some(1), -7200);
        // Small drift is tolerated, but nothing is trusted after its arrival.
        check(30, 0, Some(30), 0);
        // A year ahead, sent by the same wrong clock: corrected.
        check(year - 10, 0, Some(year), -10);
        // A year ahead when collected, sent after the clock was fixed: bounded by arrival.
        check(year, 0, Some(0), 0);
        // An old agent without sent_at: bounded by arrival only.
        check(year, 0, None, 0);
        // An agent a day behind: its reports are not taken for a backlog.
        check(-86_400 - 10, 0, Some(-86_400), -10);
    }

    #[test]
    fn reading_is_agent_minus_collector() {
        let r = ClockReading::of(Some(t(120)), t(0)).expect("reading");
        assert_eq!(r.offset_seconds, 120);
        assert_eq!(ClockReading::of(None, t(0)), None);
    }
}
