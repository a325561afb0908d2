//! Restart-persistence tests that drive the real `accounts` and `sqlite-vol` binaries as processes:
//! graceful restarts, SIGKILL under concurrent load, two instances sharing one volume, off-site backups
//! to a real S3-compatible server (moto) and a Litestream sidecar replicating the live database.

mod destinations;
mod encryption;
mod fencing;
mod litestream;
mod offsite;
mod offsite_into;
mod offsite_more;
mod prometheus;
mod restart;
mod wrong_identity;
