//! Printer MIB (RFC 3805) supplies: prtMarkerSuppliesDescription, MaxCapacity and Level,
//! joined on their index. The MIB's special values (-1 unlimited, -2 unknown, -3 "some
//! remaining") leave the percentage absent; the raw numbers travel as they are.

use serde::Serialize;

use super::value::Row;

/// prtMarkerSuppliesEntry columns: description (6), max capacity (8), level (9).
pub const COLUMNS: [&[u64]; 3] = [
    &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 6],
    &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 8],
    &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9],
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrinterSupply {
    pub description: String,
    /// 0-100 when level and capacity are both known.
    pub percent: Option<f64>,
    /// The MIB's raw level, including -2 (unknown) and -3 (some remaining).
    pub level: i64,
    pub max_capacity: i64,
}

/// One supply per level row, in the printer's order.
pub fn supplies(descriptions: &[Row], capacities: &[Row], levels: &[Row]) -> Vec<PrinterSupply> {
    let find = |rows: &[Row], index: &[u64]| {
        rows.iter()
            .find(|(i, _)| i == index)
            .map(|(_, v)| v.clone())
    };
    levels
        .iter()
        .filter_map(|(index, level)| {
            let level = level.as_i64()?;
            let max_capacity = find(capacities, index)
                .and_then(|v| v.as_i64())
                .unwrap_or(-2);
            let description = find(descriptions, index)
                .and_then(|v| v.as_text())
                .unwrap_or_else(|| format!("supply {}", dotted(index)));
            Some(PrinterSupply {
                description,
                percent: percent(level, max_capacity),
                level,
                max_capacity,
            })
        })
        .collect()
}

fn percent(level: i64, max_capacity: i64) -> Option<f64> {
    if level < 0 || max_capacity <= 0 {
        return None;
    }
    Some(((level as f64) * 100.0 / (max_capacity as f64)).clamp(0.0, 100.0))
}

fn dotted(index: &[u64]) -> String {
    index
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::super::value::SnmpValue;
    use super::*;

    fn row(index: u64, value: SnmpValue) -> Row {
        (vec![1, index], value)
    }

    fn text(s: &str) -> SnmpValue {
        SnmpValue::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn special_values_leave_the_percentage_absent() {
        let descriptions = [
            row(1, text("Black Toner")),
            row(2, text("Cyan")),
            row(3, text("Waste")),
        ];
        let capacities = [
            row(1, SnmpValue::Int(20000)),
            row(2, SnmpValue::Int(1000)),
            row(3, SnmpValue::Int(-2)),
            row(4, SnmpValue::Int(100)),
        ];
        let levels = [
            row(1, SnmpValue::Int(5000)),
            row(2, SnmpValue::Int(-3)),
            row(3, SnmpValue::Int(-2)),
            row(4, SnmpValue::Int(150)),
            row(5, SnmpValue::Absent),
        ];
        let got = supplies(&descriptions, &capacities, &levels);
        let summary: Vec<_> = got
            .iter()
            .map(|s| (s.description.as_str(), s.percent, s.level, s.max_capacity))
            .collect();
        assert_eq!(
            summary,
            [
                ("Black Toner", Some(25.0), 5000, 20000),
                ("Cyan", None, -3, 1000),
                ("Waste", None, -2, -2),
                ("supply 1.4", Some(100.0), 150, 100),
            ]
        );
    }
}
