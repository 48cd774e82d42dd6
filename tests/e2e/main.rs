//! End-to-end tests with the real binaries on 127.0.0.1 (see `vigie_tests` for the harness).
//! Build the binaries first: `cargo build --workspace --bins`.

mod alerts;
mod backup;
mod backup_exec;
mod bench_switches;
mod bounds;
mod collector_backup;
mod config;
mod console;
mod disk_faults;
mod durability;
mod enrollment;
mod escalation;
mod facts;
mod flood;
mod isolation;
mod lan;
mod limits;
mod quarantine;
mod refusals;
mod reliability;
mod report;
mod revoked;
mod secrets;
mod tiers;
mod upgrade;
