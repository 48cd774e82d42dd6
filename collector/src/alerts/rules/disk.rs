//! Disk rule (preventive): free space below a share of the disk (warning), and also below an
//! absolute floor (critical). Removable disks are not judged.

use super::Condition;
use crate::alerts::alert::Severity;
use crate::alerts::policy::Rule;
use crate::alerts::thresholds::DiskThresholds;
use crate::model::AgentRecord;

const GIB: u64 = 1024 * 1024 * 1024;

pub fn evaluate(agent: &AgentRecord, t: &DiskThresholds) -> Vec<Condition> {
    let (Some(snapshot), Some(at)) = (&agent.snapshot, agent.snapshot_collected_at) else {
        return Vec::new();
    };
    // A snapshot with more disks than the collector keeps says so in every disk alert.
    let cut = snapshot.cut.0.join(" ; ");
    snapshot
        .disks
        .iter()
        .filter(|d| !d.removable && d.total_bytes > 0)
        .filter_map(|d| {
            let free = d.available_bytes.min(d.total_bytes);
            let percent = u128::from(free) * 100 / u128::from(d.total_bytes);
            if percent >= u128::from(t.min_free_percent) {
                return None;
            }
            let severity = if free < t.min_free_gib.saturating_mul(GIB) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            Some(
                Condition::new(
                    Rule::DiskLow,
                    &d.mount_point,
                    severity,
                    format!(
                        "Disque {} : {:.1} Gio libres ({percent} %)",
                        d.mount_point,
                        free as f64 / GIB as f64
                    ),
                )
                .evidence(at)
                .detail(&cut),
            )
        })
        .collect()
}
