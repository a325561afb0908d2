//! Integration tests of the core crate on real files, real mounts and real processes.

mod backup;
#[cfg(feature = "tokio")]
mod concurrent;
mod drill;
mod lineage;
mod metrics;
mod migrate;
mod migrate_tools;
mod open;
mod support;
mod wal;
