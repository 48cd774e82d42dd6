//! UPS MIB (RFC 1628): battery status, charge, time left and whether the load runs on battery.

use serde::Serialize;

use super::value::SnmpValue;

/// upsBatteryStatus, upsSecondsOnBattery, upsEstimatedMinutesRemaining,
/// upsEstimatedChargeRemaining, upsOutputSource (all `.0` scalars).
pub const OIDS: &[&[u64]] = &[
    &[1, 3, 6, 1, 2, 1, 33, 1, 2, 1, 0],
    &[1, 3, 6, 1, 2, 1, 33, 1, 2, 2, 0],
    &[1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0],
    &[1, 3, 6, 1, 2, 1, 33, 1, 2, 4, 0],
    &[1, 3, 6, 1, 2, 1, 33, 1, 4, 1, 0],
];

/// upsOutputSource value `battery(5)`.
const OUTPUT_SOURCE_BATTERY: i64 = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpsStatus {
    /// "normal", "low", "depleted" or "unknown".
    pub battery_status: String,
    pub charge_percent: Option<f64>,
    pub on_battery: bool,
    pub minutes_remaining: Option<u64>,
}

/// `None` when the device answers none of the UPS MIB (not a UPS, or another MIB).
pub fn status(values: &[SnmpValue]) -> Option<UpsStatus> {
    let get = |i: usize| values.get(i).cloned().unwrap_or(SnmpValue::Absent);
    if (0..OIDS.len()).all(|i| get(i) == SnmpValue::Absent) {
        return None;
    }
    let battery_status = match get(0).as_i64() {
        Some(2) => "normal",
        Some(3) => "low",
        Some(4) => "depleted",
        _ => "unknown",
    };
    let seconds_on_battery = get(1).as_u64().unwrap_or(0);
    let output_on_battery = get(4).as_i64() == Some(OUTPUT_SOURCE_BATTERY);
    Some(UpsStatus {
        battery_status: battery_status.to_owned(),
        charge_percent: get(3).as_u64().map(|p| p.min(100) as f64),
        on_battery: output_on_battery || seconds_on_battery > 0,
        minutes_remaining: get(2).as_u64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use SnmpValue::{Absent, Int};

    #[test]
    fn on_battery_from_output_source_or_seconds() {
        let check = |values: &[SnmpValue],
                     expected: Option<(&str, Option<f64>, bool, Option<u64>)>| {
            let got = status(values);
            let got = got.as_ref().map(|s| {
                (
                    s.battery_status.as_str(),
                    s.charge_percent,
                    s.on_battery,
                    s.minutes_remaining,
                )
            });
            assert_eq!(got, expected, "{values:?}");
        };
        check(
            &[Int(2), Int(0), Int(45), Int(100), Int(3)],
            Some(("normal", Some(100.0), false, Some(45))),
        );
        check(
            &[Int(3), Int(120), Int(4), Int(18), Int(5)],
            Some(("low", Some(18.0), true, Some(4))),
        );
        check(
            &[Int(2), Int(0), Absent, Absent, Int(5)],
            Some(("normal", None, true, None)),
        );
        check(
            &[Int(1), Int(30), Absent, Absent, Absent],
            Some(("unknown", None, true, None)),
        );
        check(&[Absent, Absent, Absent, Absent, Absent], None);
        check(&[], None);
    }
}
