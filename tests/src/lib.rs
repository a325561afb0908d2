//! Shared machinery for the restart-persistence tests (`it/`) and the fault campaign (`campaign` binary):
//! spawning the real binaries, speaking minimal HTTP/1.1 to the service, and foreign clients (the stock
//! `sqlite3` shell, Python's sqlite3 module).

pub mod bench;
pub mod campaign;
pub mod keys;
pub mod offsite;
pub mod support;
