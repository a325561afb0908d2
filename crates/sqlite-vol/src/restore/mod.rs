//! Bringing a database back from a backup, safely, even while a service has it open.
//!
//! The backup is verified, and refused if it is not SQLite, is truncated, fails its checksum or integrity
//! check, belongs to another app (unless forced), or has a schema newer than the caller knows. Then, under
//! the maintenance lock, one of two paths:
//! - **into a live database** (`live`): a safety backup of the current database is taken, and the backup's
//!   pages are copied into it with the SQLite backup API. That is one write transaction on the live file: it
//!   works when the data folder is itself a mount point (no rename across devices), other processes see the
//!   restored data at their next transaction, and a crash part-way leaves the old database whole. The hash
//!   and integrity check run beside the safety backup and the copy, and the transaction commits only once
//!   they have passed (the header's refusals come first, before the lock);
//! - **into an empty place** (`empty`: a new volume, a first start): the backup is copied byte for byte under
//!   a hidden name beside the database in the same read that hashes it for verification, while its integrity
//!   check runs on the backup file at the same time (the hash then proves the copy is those bytes); fsynced,
//!   switched to WAL, renamed into place. A kill part-way leaves no database rather than half of one (which
//!   the next start would take for a database and a restore-on-first-start would not replace), and any
//!   `-wal`/`-shm`/`-journal` left without their database is removed first.
//!
//! [`restore_if_missing`] is restore on first start from a [`crate::store::Place`]: the empty-place path in one
//! pass (`remote`), the backup fetched straight into the hidden name beside the database, hashed on the
//! way, and checked there.

mod empty;
mod first_start;
mod live;
mod remote;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use first_start::{restore_if_missing, restore_if_missing_with, FirstStart};

use crate::fsx::has_content;
use crate::lock::{MaintenanceLock, Wait};
use crate::sql::Progress;
use crate::verify::Verified;
use crate::{identity, Error, Result};

/// Options for [`restore`].
pub struct RestoreOptions<'a> {
    /// Restore even if the backup belongs to another application id.
    pub force: bool,
    /// Take a safety backup of the current database first (default on).
    pub safety_backup: bool,
    /// Where the safety backup goes.
    pub backup_dir: PathBuf,
    /// The newest migration version the caller knows; a backup with a newer schema is refused.
    pub known_schema: Option<i64>,
    /// Verify with `integrity_check` instead of `quick_check`.
    pub full_check: bool,
    /// How long to wait for the maintenance lock.
    pub wait: Wait,
    /// Called as pages are copied.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

impl RestoreOptions<'_> {
    /// Defaults: safety backup into `backup_dir`, quick check, no force, no waiting.
    pub fn new(backup_dir: impl Into<PathBuf>) -> RestoreOptions<'static> {
        RestoreOptions {
            force: false,
            safety_backup: true,
            backup_dir: backup_dir.into(),
            known_schema: None,
            full_check: false,
            wait: Wait::No,
            progress: None,
        }
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    /// The backup restored from.
    pub from: PathBuf,
    /// The database restored into.
    pub into: PathBuf,
    /// The safety backup of what was there before, if one was taken.
    pub safety_backup: Option<PathBuf>,
    /// Whether the database did not exist before.
    pub created: bool,
    /// Pages now in the database.
    pub page_count: u64,
    /// Its schema version now.
    pub schema_version: Option<i64>,
    /// How long it took.
    pub duration_ms: u64,
}

/// Restores the backup `file` into the database at `db` for `app`.
///
/// # Errors
/// [`Error::BadBackup`], [`Error::NotADatabase`], [`Error::WrongApplication`] or [`Error::SchemaTooNew`]
/// when the backup is refused (the live database is untouched); [`Error::Locked`] when another maintenance
/// operation runs; [`Error::NoSpace`], [`Error::Io`] or [`Error::Sqlite`] when copying fails (the live
/// database keeps its old content).
pub fn restore(file: &Path, db: &Path, app: &str, opts: &RestoreOptions<'_>) -> Result<Restored> {
    let started = Instant::now();
    refuse_itself(file, db)?;
    // The cheap refusals (not SQLite, truncated, another app's, a newer schema) before the lock, so that the
    // usual mistakes hold nobody up; the hash and the integrity check run during the restore itself.
    let facts = crate::verify::peek(file)?;
    refuse(facts.application_id, facts.schema_version, file, app, opts)?;
    let dir = db.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let _lock = MaintenanceLock::acquire(db, "restore", opts.wait)?;
    apply(file, db, app, opts, started)
}

/// [`restore`] for a caller that already holds the maintenance lock of `db` (for example a restore on
/// first start that must check "no database yet" and restore with no gap between the two).
///
/// # Errors
/// [`Error::Config`] when `lock` is not the lock of `db`; otherwise as [`restore`].
pub fn restore_under(
    lock: &MaintenanceLock,
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<Restored> {
    let started = Instant::now();
    lock.ensure_lock_of(db)?;
    refuse_itself(file, db)?;
    apply(file, db, app, opts, started)
}

/// Refuses to restore the live database onto itself.
fn refuse_itself(file: &Path, db: &Path) -> Result<()> {
    if same_file(file, db) {
        return Err(Error::Config {
            variable: "restore source".into(),
            value: file.display().to_string(),
            reason: "it is the live database itself; give a backup file".into(),
        });
    }
    Ok(())
}

/// Refuses a verified backup of another app (unless forced) or with a schema newer than the caller knows.
fn refusals(verified: &Verified, file: &Path, app: &str, opts: &RestoreOptions<'_>) -> Result<()> {
    refuse(
        verified.application_id,
        verified.schema_version,
        file,
        app,
        opts,
    )
}

/// [`refusals`] from what a backup says about itself: its application id and schema version.
fn refuse(
    application_id: i32,
    schema_version: Option<i64>,
    file: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<()> {
    let expected = identity::application_id(app);
    if application_id != expected && !opts.force {
        return Err(Error::WrongApplication {
            path: file.to_path_buf(),
            app: app.into(),
            expected,
            found: application_id,
            hint: ", or restore it anyway with `RestoreOptions { force: true, .. }` if it really is this app's data",
        });
    }
    if let (Some(known), Some(found)) = (opts.known_schema, schema_version) {
        if found > known {
            return Err(Error::SchemaTooNew {
                path: file.to_path_buf(),
                db_version: found,
                known_version: known,
                unknown: "the backup was made by a newer build".into(),
            });
        }
    }
    Ok(())
}

/// The path for what is at `db` now; the caller holds the lock.
fn apply(
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
    started: Instant,
) -> Result<Restored> {
    let (safety_backup, page_count, schema_version, created) = if has_content(db) {
        let (safety, pages, schema) = live::restore_verifying(file, db, app, opts)?;
        (safety, pages, schema, false)
    } else {
        match empty::restore(file, db, app, opts)? {
            empty::Placed::Done(pages, schema) => (None, pages, schema, true),
            empty::Placed::Taken(verified) => {
                tracing::warn!(db = %db.display(), "a file appeared at the database's name during the restore: restoring into it instead of replacing it");
                let (safety, pages, schema) = live::restore(&verified, file, db, app, opts)?;
                (safety, pages, schema, false)
            }
        }
    };
    let restored = Restored {
        from: file.to_path_buf(),
        into: db.to_path_buf(),
        safety_backup,
        created,
        page_count,
        schema_version,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    tracing::warn!(from = %file.display(), into = %db.display(), safety_backup = ?restored.safety_backup,
        "database restored from backup");
    Ok(restored)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
