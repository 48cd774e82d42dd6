//! Vigie's wire contract. Only generated types live here; both binaries convert them to their
//! own domain types at the edge.

/// Protocol version 1: agent ↔ collector, and the collector's admin interface.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("vigie.v1");
}

/// The collector's side of `vigie.v1.Ingest`: the same service, whose requests keep each
/// report as the bytes received (`v1::ReceivedBatch`).
pub mod received {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/vigie.v1.Ingest.rs"));
}

pub mod codec;

/// Largest encoded message either side accepts, explicit so that an oversized message gets a
/// clear `ResourceExhausted` status instead of an allocation.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Most reports one `ReportBatch` may carry.
pub const MAX_REPORTS_PER_BATCH: usize = 1000;
