//! Integration tests of the core crate on real files, real mounts and real processes.

mod backup;
mod common;
mod drill;
mod metrics;
mod migrate;
mod open;
mod wal;
