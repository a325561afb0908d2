//! Integration tests of the core crate on real files, real mounts and real processes.

mod backup;
mod common;
#[cfg(feature = "tokio")]
mod concurrent;
mod lineage;
mod migrate;
mod open;
