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
//!     let n: i64 = db.conn()?.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
//!     println!("{n} users in {}", db.location().path.display());
//!     Ok(())
//! }
//! ```
//!
//! The same crate takes online backups ([`backup::backup`]), verifies them ([`verify()`]), and restores them
//! into a live database ([`restore::restore`]), each under the maintenance lock ([`lock`]). The
//! `sqlite-vol` command line is a thin layer over these functions. [`store`] sends backups to another folder
//! or an S3-compatible bucket, and [`restore::restore_if_missing`] brings the newest back when a service
//! starts on an empty volume. [`diagnose()`] holds every check that `sqlite-vol doctor` prints.
//!
//! # Layers
//! A module uses only modules of its own layer or of the layers above it, and no two modules import each
//! other, directly or round a circle:
//! 1. foundations: [`error`](Error), [`settings`] (configuration read once), [`human`] (sizes and ages in
//!    words), and crate-private helpers for files (`fsx`), time (`clock`) and SQL (`sql`);
//! 2. finding and preparing the place: [`location`], [`volume`], [`prepare`];
//! 3. the database file: [`identity`], [`migrate`] (refinery migrations, their status, baseline and
//!    repair), [`lock`], [`wal_reset`] (the SQLite a file was last written by, and the WAL-reset bug);
//! 4. maintenance: [`manifest`], [`verify`](verify()), [`backup`], [`record`] (the outcomes of off-site sends
//!    and drills, beside the backups), [`status`](status()), [`store`] (a folder and S3 behind one
//!    [`store::Place`], with lineage and fencing), [`restore`] (live, empty place, first start),
//!    [`migration`] (rehearsing pending migrations on a copy, and going back), [`reset`];
//! 5. the service: [`counters`] (what a running service counts), the backup schedule and background ticker,
//!    [`open`](Builder) (builder, startup steps, pragmas and pool, the [`Database`] handle), [`diagnose()`],
//!    [`drill`] (restore drills), [`wal_policy`] (checkpoints that keep the WAL bounded), [`metrics`]
//!    (Prometheus series), [`supervise`] (`sqlite-vol exec`: any app under the same startup checks), and,
//!    with the `tokio` feature, `concurrent` (async reads and one writer with group commit).
//!
//! Settings are read in one place: [`Settings::from_env`] (`<APP>_DB_PATH`, `DB_PATH` and `DATABASE_URL` by
//! [`location`]). Variables: `SQLITE_VOL_REQUIRE_PERSISTENT`, `SQLITE_VOL_EXPECT_EXISTING`,
//! `SQLITE_VOL_SYNCHRONOUS`, `DB_POOL_SIZE`, `DB_TIMEOUT`, `SQLITE_VOL_BACKUP_DIR`,
//! `SQLITE_VOL_BACKUP_INTERVAL`, `SQLITE_VOL_BACKUP_KEEP`, `SQLITE_VOL_BACKUP_TO`, `SQLITE_VOL_RESTORE_FROM`,
//! `SQLITE_VOL_MIGRATION_LIMIT`, `SQLITE_VOL_BACKUP_ADOPT` (see [`store::lineage`]),
//! `SQLITE_VOL_BACKUP_RECIPIENTS` and `SQLITE_VOL_BACKUP_IDENTITY` (encrypted backups, see [`store::Policy`]),
//! `SQLITE_VOL_DRILL_INTERVAL`, `SQLITE_VOL_DRILL_QUERY`, `SQLITE_VOL_WAL_LIMIT`,
//! `SQLITE_VOL_CHECKPOINT_INTERVAL`, and for `s3://` locations the usual `AWS_*` variables.
#![warn(missing_docs)]

// 1. Foundations.
mod clock;
mod error;
mod fsx;
pub mod human;
pub mod settings;
mod sql;

// 2. Finding and preparing the place.
pub mod location;
pub mod prepare;
pub mod volume;

// 3. The database file.
pub mod identity;
pub mod lock;
pub mod migrate;
pub mod wal_reset;

// 4. Maintenance.
pub mod backup;
pub mod manifest;
pub mod migration;
pub mod record;
pub mod reset;
pub mod restore;
mod status;
pub mod store;
pub mod verify;

// 5. The service.
#[cfg(feature = "tokio")]
pub mod concurrent;
pub mod counters;
mod diagnose;
pub mod drill;
pub mod metrics;
mod open;
mod schedule;
pub mod supervise;
mod ticker;
pub mod wal_policy;

pub use backup::BackupOptions;
#[cfg(feature = "tokio")]
pub use concurrent::{AsyncDatabase, WriterOptions, WriterStats};
pub use diagnose::{diagnose, worst, Finding, Level, Subject};
pub use error::{Error, Result};
pub use location::{Location, Source};
pub use manifest::Manifest;
pub use migrate::Migrations;
pub use open::{Builder, Checkpoint, Database, OnCreate, Pool, PooledConnection, Pragmas};
pub use restore::{RestoreOptions, Restored};
pub use settings::{Settings, Synchronous};
pub use sql::Progress;
pub use status::{status, status_of, Status};
pub use verify::{verify, Verified};
pub use volume::{Volume, VolumeKind};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// Re-exported so that apps use the exact versions this crate is built with.
pub use r2d2;
pub use refinery;
pub use rusqlite;
