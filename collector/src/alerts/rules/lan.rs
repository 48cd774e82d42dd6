//! LAN device rules (preventive): a device down for too long (imaging modality and PACS are
//! critical), a printer supply low, a UPS on battery or with a low charge.

use jiff::Timestamp;

use super::{AgentFacts, Condition, minutes, older_than};
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::LanThresholds;
use crate::facts::DeviceState;

pub fn evaluate(now: Timestamp, facts: &AgentFacts, t: &LanThresholds) -> Vec<Condition> {
    let mut out = Vec::new();
    for record in &facts.devices {
        let d = &record.device;
        let at = record.reported_at;
        if let Some(since) = record.down_since
            && d.state == DeviceState::Down
            && older_than(now, since, minutes(t.down_after_minutes))
        {
            let severity = match d.kind.as_str() {
                "imaging-modality" | "pacs" => Severity::Critical,
                _ => Severity::Major,
            };
            out.push(
                Condition::new(
                    Rule::LanDeviceDown,
                    "",
                    severity,
                    format!("{} ({}) injoignable", d.name, d.kind),
                )
                .device(&d.name)
                .since(Some(since))
                .detail(&d.error)
                .evidence(at),
            );
        }
        for supply in &d.supplies {
            if let Some(percent) = supply.percent
                && percent < t.supply_low_percent as f64
            {
                out.push(
                    Condition::new(
                        Rule::PrinterSupplyLow,
                        &supply.description,
                        Severity::Warning,
                        format!(
                            "Imprimante {} : {} à {percent:.0} %",
                            d.name, supply.description
                        ),
                    )
                    .device(&d.name)
                    .evidence(at),
                );
            }
        }
        if let Some(ups) = &d.ups {
            if ups.on_battery {
                out.push(
                    Condition::new(
                        Rule::UpsOnBattery,
                        "",
                        Severity::Critical,
                        format!("Onduleur {} sur batterie", d.name),
                    )
                    .device(&d.name)
                    .evidence(at),
                );
            }
            let low_charge = ups
                .charge_percent
                .is_some_and(|c| c < t.ups_charge_low_percent as f64);
            if low_charge || matches!(ups.battery_status.as_str(), "low" | "depleted") {
                let charge = ups
                    .charge_percent
                    .map_or_else(String::new, |c| format!(" ({c:.0} %)"));
                out.push(
                    Condition::new(
                        Rule::UpsBatteryLow,
                        "",
                        Severity::Major,
                        format!("Onduleur {} : batterie faible{charge}", d.name),
                    )
                    .device(&d.name)
                    .evidence(at),
                );
            }
        }
    }
    out
}
