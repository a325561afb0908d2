//! Integration tests of the core crate on real files, real mounts and real processes.

mod backup;
mod migrate;
mod open;
mod support;
