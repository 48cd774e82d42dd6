//! The values an SNMP answer carries, copied out of the response buffer: what the MIB
//! decoders (`printer.rs`, `ups.rs`, `nas.rs`) read.

use snmp2::Value;

/// A value copied out of the response buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum SnmpValue {
    Int(i64),
    /// Counter32, Gauge32/Unsigned32, TimeTicks, Counter64.
    Unsigned(u64),
    Text(Vec<u8>),
    /// An OBJECT IDENTIFIER value, e.g. hrStorageType.
    Oid(Vec<u64>),
    /// Null, noSuchObject, noSuchInstance, or a type we do not read.
    Absent,
}

impl SnmpValue {
    pub(super) fn from_value(value: &Value<'_>) -> Self {
        match value {
            Value::Integer(i) => SnmpValue::Int(*i),
            Value::Counter32(u) | Value::Unsigned32(u) | Value::Timeticks(u) => {
                SnmpValue::Unsigned(u64::from(*u))
            }
            Value::Counter64(u) => SnmpValue::Unsigned(*u),
            Value::OctetString(bytes) => SnmpValue::Text(bytes.to_vec()),
            Value::ObjectIdentifier(oid) => oid
                .iter()
                .map(|arcs| SnmpValue::Oid(arcs.collect()))
                .unwrap_or(SnmpValue::Absent),
            _ => SnmpValue::Absent,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SnmpValue::Int(i) => Some(*i),
            SnmpValue::Unsigned(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            SnmpValue::Int(i) => u64::try_from(*i).ok(),
            SnmpValue::Unsigned(u) => Some(*u),
            _ => None,
        }
    }

    /// Display text: printers and NAS put Latin-1 or NUL-padded text in their strings.
    pub fn as_text(&self) -> Option<String> {
        match self {
            SnmpValue::Text(bytes) => {
                let text = match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_owned(),
                    Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
                };
                Some(text.trim_end_matches('\0').trim().to_owned())
            }
            _ => None,
        }
    }
}

/// A table row: the index after the column's OID, and the value.
pub type Row = (Vec<u64>, SnmpValue);
