//! Keep a containerized service's SQLite database on a real volume, and never lose it silently.
//!
//! A service calls one function at startup. It resolves where the database lives (an explicit path,
//! `<APP>_DB_PATH`, `DB_PATH`, a `sqlite:` `DATABASE_URL`, or the per-user data directory), classifies the
//! storage from `/proc/self/mountinfo` (container layer, tmpfs, Docker anonymous or named volume, bind
//! mount, Kubernetes emptyDir or persistent volume, network filesystem, host), refuses or warns about
//! storage that will not survive the container, proves the directory is writable, creates the database only
//! when allowed (and says so loudly), applies refinery migrations under a cross-process lock with a safety
//! backup first, and returns an r2d2 pool whose connections use WAL and production pragmas.
//!
//! ```no_run
//! mod embedded {
//!     refinery::embed_migrations!("tests/fixtures/migrations_ok"); // your crate's `migrations/` folder
//! }
//!
//! fn main() -> Result<(), sqlite_vol::Error> {
//!     let db = sqlite_vol::Database::builder("accounts")
//!         .migrations(sqlite_vol::Migrations::from_runner(&embedded::migrations::runner()))
//!         .open()?;
//!     let n: i64 = db.conn()?.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).map_err(sqlite_vol::Error::from_sqlite)?;
//!     println!("{n} users in {}", db.location().path.display());
//!     Ok(())
//! }
//! ```
//!
//! The same crate takes online backups ([`backup::backup`]), verifies them ([`verify()`]), and restores them
//! into a live database ([`restore::restore`]), each under the maintenance lock ([`lock`]). The
//! `sqlite-vol` command line is a thin layer over these functions. [`offsite`] sends backups to another folder
//! or an S3-compatible bucket and brings the newest back when a service starts on an empty volume.
//!
//! Environment variables read: `<APP>_DB_PATH`, `DB_PATH`, `DATABASE_URL`, `SQLITE_VOL_REQUIRE_PERSISTENT`,
//! `SQLITE_VOL_EXPECT_EXISTING`, `SQLITE_VOL_SYNCHRONOUS`, `DB_POOL_SIZE`, `DB_TIMEOUT`,
//! `SQLITE_VOL_BACKUP_DIR`, `SQLITE_VOL_BACKUP_INTERVAL`, `SQLITE_VOL_BACKUP_KEEP`, `SQLITE_VOL_BACKUP_TO`,
//! `SQLITE_VOL_RESTORE_FROM` (see [`settings`]), and for `s3://` locations the usual `AWS_*` variables.
#![warn(missing_docs)]

pub mod backup;
#[cfg(feature = "tokio")]
pub mod concurrent;
mod error;
pub mod identity;
pub mod location;
pub mod lock;
pub mod migrate;
pub mod offsite;
mod open;
pub mod prepare;
pub mod restore;
#[cfg(feature = "s3")]
pub mod s3;
pub mod schedule;
pub mod settings;
mod status;
pub mod verify;
pub mod volume;

pub use backup::{BackupOptions, Manifest};
#[cfg(feature = "tokio")]
pub use concurrent::{AsyncDatabase, WriterOptions, WriterStats};
pub use error::{Error, Result};
pub use location::{Location, Source};
pub use migrate::Migrations;
pub use open::{Builder, Database, OnCreate, Pool, PooledConnection, Pragmas, Synchronous};
pub use restore::{RestoreOptions, Restored};
pub use status::{status, status_of, Status};
pub use verify::{verify, Verified};
pub use volume::{Volume, VolumeKind};

/// Re-exported so that apps use the exact versions this crate is built with.
pub use r2d2;
pub use refinery;
pub use rusqlite;

/// Now, as RFC 3339 UTC with second precision.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}
