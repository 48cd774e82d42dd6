//! HOST-RESOURCES-MIB storage (hrStorageTable): the disks and volumes of a NAS, in bytes.
//! Memory rows (RAM, swap, buffers) are left out: they are not storage a clinic fills. A row
//! without a type is kept.

use serde::Serialize;

use super::value::{Row, SnmpValue};

/// hrStorageEntry columns: type (2), description (3), allocation units (4), size (5), used (6).
pub const COLUMNS: [&[u64]; 5] = [
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 2],
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 3],
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 4],
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 5],
    &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 6],
];

/// hrStorageTypes (under 1.3.6.1.2.1.25.2.1) kept: fixed disk (4), removable disk (5), flash
/// memory (9), network disk (10). net-snmp files memory buffers and caches under "other" (1).
const DISK_TYPES: [u64; 4] = [4, 5, 9, 10];
const STORAGE_TYPES_PREFIX: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 2, 1];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageUse {
    pub description: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// Joins the five columns (in [`COLUMNS`] order; the type column holds OIDs, read as rows of
/// their own by the walk) on their index.
pub fn storage(columns: &[Vec<Row>]) -> Vec<StorageUse> {
    let column = |c: usize| columns.get(c).map(Vec::as_slice).unwrap_or_default();
    let find = |c: usize, index: &[u64]| {
        column(c)
            .iter()
            .find(|(i, _)| i == index)
            .map(|(_, v)| v.clone())
            .unwrap_or(SnmpValue::Absent)
    };
    column(1)
        .iter()
        .filter(|(index, _)| is_disk(&find(0, index)))
        .filter_map(|(index, description)| {
            let units = find(2, index).as_u64()?;
            let size = find(3, index).as_u64()?;
            let used = find(4, index).as_u64()?;
            if size == 0 {
                return None;
            }
            Some(StorageUse {
                description: description.as_text().unwrap_or_default(),
                total_bytes: units.saturating_mul(size),
                used_bytes: units.saturating_mul(used),
            })
        })
        .collect()
}

fn is_disk(kind: &SnmpValue) -> bool {
    match kind {
        SnmpValue::Oid(arcs) => arcs
            .strip_prefix(STORAGE_TYPES_PREFIX)
            .is_some_and(|rest| rest.len() == 1 && DISK_TYPES.contains(&rest[0])),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[SnmpValue]) -> Vec<Row> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (vec![i as u64 + 1], v.clone()))
            .collect()
    }

    fn storage_type(arc: u64) -> SnmpValue {
        let mut oid = STORAGE_TYPES_PREFIX.to_vec();
        oid.push(arc);
        SnmpValue::Oid(oid)
    }

    #[test]
    fn disks_in_bytes_without_memory_rows() {
        use SnmpValue::{Absent, Int, Text};
        let columns = vec![
            rows(&[storage_type(2), storage_type(4), storage_type(4), Absent]),
            rows(&[
                Text(b"Physical memory".to_vec()),
                Text(b"/volume1".to_vec()),
                Text(b"/empty".to_vec()),
                Text(b"/volume2".to_vec()),
            ]),
            rows(&[Int(1024), Int(4096), Int(4096), Int(512)]),
            rows(&[Int(1000), Int(1_000_000), Int(0), Int(10)]),
            rows(&[Int(500), Int(250_000), Int(0), Int(5)]),
        ];
        assert_eq!(
            storage(&columns),
            [
                StorageUse {
                    description: "/volume1".to_owned(),
                    total_bytes: 4_096_000_000,
                    used_bytes: 1_024_000_000,
                },
                StorageUse {
                    description: "/volume2".to_owned(),
                    total_bytes: 5120,
                    used_bytes: 2560,
                },
            ]
        );
        assert_eq!(storage(&[]), []);
    }
}
