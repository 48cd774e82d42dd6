//! Escalations: `escalations` (alert id big-endian ‖ sink name → Escalation),
//! `escalation_todo` (same keys, empty values: the records with operations left, so the worker
//! does not decode every solved ticket each round), `escalation_meta` ("cursor" → last alert
//! event sequence taken into account).

use std::convert::Infallible;

use sled::Transactional;
use sled::transaction::TransactionError;

use super::{Storage, StorageError, decode, encode, read_counter};
use crate::escalation::queue::Escalation;

impl Storage {
    fn escalation_key(alert_id: u64, sink: &str) -> Vec<u8> {
        let mut key = alert_id.to_be_bytes().to_vec();
        key.extend_from_slice(sink.as_bytes());
        key
    }

    /// The sequence number of the last alert event the escalation worker took into account.
    pub fn escalation_cursor(&self) -> Result<u64, StorageError> {
        let cursor = self.escalation_meta.get("cursor")?;
        Ok(read_counter("escalation cursor", cursor.as_deref())?.unwrap_or(0))
    }

    /// Stores escalation records and, when given, moves the cursor, in one transaction: an
    /// event is taken into account exactly once.
    pub fn write_escalations(
        &self,
        records: &[Escalation],
        cursor: Option<u64>,
    ) -> Result<(), StorageError> {
        let _turn = self.writing();
        let mut encoded = Vec::with_capacity(records.len());
        for r in records {
            encoded.push((
                Self::escalation_key(r.alert_id, &r.sink),
                encode("escalation", r)?,
                r.has_work(),
            ));
        }
        let result: Result<(), TransactionError<Infallible>> = (
            &self.escalations,
            &self.escalation_meta,
            &self.escalation_todo,
        )
            .transaction(|(tree, meta, todo)| {
                for (key, value, has_work) in &encoded {
                    tree.insert(key.as_slice(), value.as_slice())?;
                    if *has_work {
                        todo.insert(key.as_slice(), &[])?;
                    } else {
                        todo.remove(key.as_slice())?;
                    }
                }
                if let Some(cursor) = cursor {
                    meta.insert("cursor", cursor.to_be_bytes().as_slice())?;
                }
                Ok(())
            });
        result.map_err(|e| match e {
            TransactionError::Abort(never) => match never {},
            TransactionError::Storage(e) => StorageError::Sled(e),
        })
    }

    pub fn escalation(
        &self,
        alert_id: u64,
        sink: &str,
    ) -> Result<Option<Escalation>, StorageError> {
        self.escalations
            .get(Self::escalation_key(alert_id, sink))?
            .map(|v| decode("escalation", &v))
            .transpose()
    }

    /// Every escalation record, by alert id then sink name.
    pub fn list_escalations(&self) -> Result<Vec<Escalation>, StorageError> {
        self.escalations
            .iter()
            .map(|item| decode("escalation", &item?.1))
            .collect()
    }

    /// The escalation records with ticket operations left, by alert id then sink name.
    pub fn escalations_with_work(&self) -> Result<Vec<Escalation>, StorageError> {
        let mut records = Vec::new();
        for key in self.escalation_todo.iter().keys() {
            if let Some(value) = self.escalations.get(key?)? {
                records.push(decode("escalation", &value)?);
            }
        }
        Ok(records)
    }
}
