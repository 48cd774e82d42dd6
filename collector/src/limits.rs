//! How much of what an agent sends the collector keeps: the documented bound of every text
//! field and list that becomes a collector record (`server/convert.rs` applies them). A report
//! is never refused for being too long: a backup result must not be lost for a verbose
//! message. Text over its bound is cut at a character boundary and ends with [`CUT_MARK`];
//! a list over its bound keeps its first items (disks: the fullest) and the record says how
//! many there were ([`Cut`]), so a technician sees "500 disques, 64 pris en compte".
//!
//! The raw report is still stored as received (bounded by the message size limit) and pruned
//! by the retention task; these bounds cap what every later write copies (agent record,
//! facts, alerts, ticket text).

use serde::{Deserialize, Serialize};

/// Ends a text the collector shortened.
pub const CUT_MARK: &str = " […]";

/// A host name: the longest DNS name (RFC 1035), in bytes.
pub const HOSTNAME_BYTES: usize = 253;
/// A name: backup job, LAN device, antivirus product, software, watched name, configured target.
pub const NAME_BYTES: usize = 256;
/// A short label: OS name and version, kernel, CPU architecture, file system, device kind,
/// address, update manager, software version, battery status.
pub const LABEL_BYTES: usize = 128;
/// A path: mount point, backup source and target.
pub const PATH_BYTES: usize = 512;
/// What a product or device said: backup message, device error, reboot reason.
pub const MESSAGE_BYTES: usize = 1024;

/// Disks kept per system snapshot (a PC has a few; hundreds are loop or overlay mounts).
pub const DISKS: usize = 64;
/// Backup runs kept per backup report (the agent sends each result once; a backlog is spread
/// over several reports).
pub const BACKUP_RUNS: usize = 256;
/// Declared backup jobs kept per backup report.
pub const DECLARED_JOBS: usize = 64;
/// Reboot reasons kept per update status.
pub const REBOOT_REASONS: usize = 16;
/// Antivirus products kept per antivirus status.
pub const ANTIVIRUS_PRODUCTS: usize = 16;
/// Business software entries kept per inventory.
pub const SOFTWARE_ITEMS: usize = 256;
/// LAN devices kept per LAN report, and configured target names.
pub const LAN_DEVICES: usize = 256;
/// Printer supplies kept per device.
pub const SUPPLIES: usize = 32;
/// History entries kept per alert: the first (opened) and the latest ones.
pub const ALERT_HISTORY: usize = 50;

/// `text` within `max_bytes`, marked with [`CUT_MARK`] when it was shortened.
pub fn text(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let mut end = max_bytes.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + CUT_MARK.len());
    out.push_str(&text[..end]);
    out.push_str(CUT_MARK);
    out
}

/// Whether `text` was shortened by [`text`].
pub fn is_cut(text: &str) -> bool {
    text.ends_with(CUT_MARK)
}

/// The feminine nouns [`Cut::list`] is called with.
const FEMININE: &[&str] = &[
    "exécutions",
    "tâches déclarées",
    "raisons de redémarrage",
    "cibles configurées",
];

/// What the collector left out of one record, as a technician reads it (French).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cut(pub Vec<String>);

impl Cut {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Notes that a list of `what` (a French plural noun) had `total` items of which `kept`
    /// were kept.
    pub fn list(&mut self, what: &str, total: usize, kept: usize) {
        if total > kept {
            // "pris" agrees with the noun's gender.
            let taken = if FEMININE.contains(&what) {
                "prises"
            } else {
                "pris"
            };
            self.0
                .push(format!("{total} {what}, {kept} {taken} en compte"));
        }
    }

    /// Notes that a text field was shortened.
    pub fn field(&mut self, what: &str, original_bytes: usize, max_bytes: usize) {
        if original_bytes > max_bytes {
            self.0
                .push(format!("{what} tronqué ({original_bytes} octets reçus)"));
        }
    }
}

/// The first `max` items of `items`, converted; notes the cut under `what`.
pub fn list<T, U>(
    items: &[T],
    max: usize,
    what: &str,
    cut: &mut Cut,
    f: impl FnMut(&T) -> U,
) -> Vec<U> {
    cut.list(what, items.len(), max.min(items.len()));
    items.iter().take(max).map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_char_boundary_and_marked() {
        let check = |input: &str, max: usize, expected: &str| {
            let got = text(input, max);
            assert_eq!(got, expected);
            assert!(got.len() <= max.max(input.len().min(max)));
        };
        check("PC-ACCUEIL", 253, "PC-ACCUEIL");
        check("abcdefghij", 10, "abcdefghij");
        check("abcdefghijk", 10, "abcd […]");
        // "é" is two bytes: never split.
        check("ééééééé", 10, "éé […]");
        let long = "x".repeat(65_536);
        let cut = text(&long, HOSTNAME_BYTES);
        assert_eq!(cut.len(), HOSTNAME_BYTES);
        assert!(is_cut(&cut));
        assert_eq!(
            text(&cut, HOSTNAME_BYTES),
            cut,
            "cutting again changes nothing"
        );
    }

    #[test]
    fn lists_keep_their_first_items_and_say_how_many_there_were() {
        let mut cut = Cut::default();
        let kept = list(&[1, 2, 3, 4, 5], 3, "disques", &mut cut, |x| x * 10);
        assert_eq!(kept, [10, 20, 30]);
        let _ = list(&[1], 3, "exécutions", &mut cut, |x| *x);
        cut.field("nom de machine", 65_536, HOSTNAME_BYTES);
        cut.field("système", 10, LABEL_BYTES);
        assert_eq!(
            cut.0,
            [
                "5 disques, 3 pris en compte",
                "nom de machine tronqué (65536 octets reçus)"
            ]
        );
    }
}
