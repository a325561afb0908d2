//! Bringing a database back from a backup, safely, even while a service has it open.
//!
//! The backup is verified first, and refused if it is not SQLite, is truncated, fails its checksum or
//! integrity check, belongs to another app (unless forced), or has a schema newer than the caller knows.
//! Then, under the maintenance lock, a safety backup of the current database is taken, and the backup's
//! pages are copied into the live database with the SQLite backup API. That is one write transaction on the
//! live file: it works when the data folder is itself a mount point (no rename across devices), other
//! processes see the restored data at their next transaction, and a crash part-way leaves the old database
//! whole. A restore into an empty volume creates the database, after removing any `-wal`/`-shm`/`-journal`
//! left without their database, so no stale file survives; it is written under a hidden name beside the
//! database and renamed into place when whole, so a kill part-way leaves no database rather than half of
//! one (which the next start would take for a database and a restore-on-first-start would not replace).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::backup::{backup_locked, BackupOptions};
use crate::fsx::{self, has_content, remove_orphans, remove_with_sidecars};
use crate::lock::{MaintenanceLock, Wait};
use crate::sql::{copy_pages, open_immutable, pragma_u64, run_check, Progress};
use crate::store::{self, Place};
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
    let verified = check_backup(file, db, app, opts)?;
    let dir = db.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let _lock = MaintenanceLock::acquire(db, "restore", opts.wait)?;
    apply(&verified, file, db, app, opts, started)
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
    let verified = check_backup(file, db, app, opts)?;
    apply(&verified, file, db, app, opts, started)
}

/// Verifies the backup and refuses it for the wrong app or a newer schema; changes nothing.
fn check_backup(
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<crate::verify::Verified> {
    if same_file(file, db) {
        return Err(Error::Config {
            variable: "restore source".into(),
            value: file.display().to_string(),
            reason: "it is the live database itself; give a backup file".into(),
        });
    }
    let verified = crate::verify::verify(file, opts.full_check, None)?;
    let expected = identity::application_id(app);
    if verified.application_id != expected && !opts.force {
        return Err(Error::WrongApplication {
            path: file.to_path_buf(),
            app: app.into(),
            expected,
            found: verified.application_id,
            hint: ", or restore it anyway with `RestoreOptions { force: true, .. }` if it really is this app's data",
        });
    }
    if let (Some(known), Some(found)) = (opts.known_schema, verified.schema_version) {
        if found > known {
            return Err(Error::SchemaTooNew {
                path: file.to_path_buf(),
                db_version: found,
                known_version: known,
                unknown: "the backup was made by a newer build".into(),
            });
        }
    }
    Ok(verified)
}

/// Copies a verified backup into the live database; the caller holds the lock.
fn apply(
    verified: &crate::verify::Verified,
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
    started: Instant,
) -> Result<Restored> {
    // The folder exists: the caller's maintenance lock file is in it.
    let dir = db.parent().unwrap_or(Path::new("/"));
    let created = !has_content(db);
    let safety_backup = if !created && opts.safety_backup {
        let safety = BackupOptions {
            dir: opts.backup_dir.clone(),
            keep: None,
            full_check: false,
            wait: Wait::No,
            progress: None,
        };
        Some(backup_locked(db, app, &safety)?.path)
    } else {
        None
    };
    // Into a new database, the copy is made under a hidden name beside it and renamed into place when it
    // is whole, so a kill part-way never leaves a half-restored file (with a hot journal) that the next
    // start would take for a database. Into an existing one, it is one write transaction on the live file.
    let target = if created {
        remove_orphans(db)?;
        let tmp = dir.join(format!(".{}.restoring", fsx::file_name(db)));
        remove_with_sidecars(&tmp);
        tmp
    } else {
        db.to_path_buf()
    };
    let copied = copy_into(verified, file, &target, db, created, opts);
    let (page_count, schema_version) = match copied {
        Ok(c) => c,
        Err(e) => {
            if created {
                remove_with_sidecars(&target);
            }
            return Err(e);
        }
    };
    if created {
        if let Err(e) = fsx::sync_and_rename(&target, db) {
            remove_with_sidecars(&target);
            return Err(Error::io("placing the restored database at", db, e));
        }
    }
    fsx::sync_dir(dir)?;
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

/// Copies the backup's pages into `target` (the live database, or a new file that becomes it), checks the
/// result and closes it; returns (page count, schema version).
fn copy_into(
    verified: &crate::verify::Verified,
    file: &Path,
    target: &Path,
    db: &Path,
    created: bool,
    opts: &RestoreOptions<'_>,
) -> Result<(u64, Option<i64>)> {
    let src = open_immutable(file)?;
    let mut live =
        Connection::open(target).map_err(|e| Error::sqlite(db, "opening the live database", e))?;
    let live_err = |e| Error::sqlite(db, "restoring", e);
    live.busy_timeout(Duration::from_secs(10))
        .map_err(live_err)?;
    live.execute_batch("PRAGMA synchronous = FULL")
        .map_err(live_err)?;
    let live_mode: String = live
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(live_err)?;
    let live_page: u64 = pragma_u64(&live, "page_size").map_err(live_err)?;
    if live_mode.eq_ignore_ascii_case("wal") && live_page != verified.page_size {
        return Err(Error::BadBackup {
            path: file.to_path_buf(),
            reason: format!(
                "its page size {} differs from the live WAL database's {live_page}; stop the service, move the \
                 database away and restore into the empty folder",
                verified.page_size
            ),
        });
    }
    copy_pages(&src, &mut live, file, db, opts.progress)?;
    drop(src);

    // A restore into a new file leaves it in the backup's rollback mode; services expect WAL.
    if !live_mode.eq_ignore_ascii_case("wal") || created {
        if let Err(e) = live.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            tracing::warn!(db = %db.display(), error = %e, "restored, but could not switch to WAL; the next open will");
        }
    }
    let verdict = run_check(&live, "quick_check").map_err(live_err)?;
    if verdict != "ok" {
        return Err(Error::NotADatabase {
            path: db.to_path_buf(),
            reason: format!("after restore quick_check says {verdict}"),
        });
    }
    let _ = live.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    let page_count: u64 = pragma_u64(&live, "page_count").map_err(live_err)?;
    let schema_version = crate::migrate::schema_version(&live, db)?;
    live.close().map_err(|(_, e)| live_err(e))?;
    Ok((page_count, schema_version))
}

/// What [`restore_if_missing`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstStart {
    /// The database already had content; nothing was done.
    Exists,
    /// There was no database and no backup of this app in the place.
    NoBackup,
    /// There was no database; the backup (its location) was restored.
    Restored(String, Restored),
}

/// Restore on first start: if the database at `db` does not exist (or is empty), restores backup `name` (or,
/// with `None`, the newest backup of `app`) from `place` into it; otherwise does nothing. Runs under the maintenance lock, so two instances
/// starting together restore once. Object-storage backups are downloaded into `opts.backup_dir` first.
///
/// # Errors
/// [`Error::Locked`] when the lock is busy past `opts.wait`; [`Error::Remote`] when the place cannot be
/// read (a service should not start empty because the network was down); the refusals of
/// [`crate::restore::restore`] (wrong app, newer schema, bad backup): the database is left absent.
pub fn restore_if_missing(
    place: &Place,
    name: Option<&str>,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<FirstStart> {
    if has_content(db) {
        return Ok(FirstStart::Exists);
    }
    let dir = db.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let lock = MaintenanceLock::acquire(db, "restore", opts.wait)?;
    if has_content(db) {
        return Ok(FirstStart::Exists);
    }
    // A place with a lineage marker should hold a backup: refuse to start empty when it does not.
    let marker = store::lineage::read_marker(place, app)?;
    if let (Some(m), None) = (&marker, name) {
        if store::list(place, app)?.backups.is_empty() {
            return Err(Error::LineageWithoutBackup {
                place: place.describe(),
                marker: place.location_of(&store::lineage::marker_name(app)),
                owner: m.describe(),
                missing: format!("it holds no backup of {app} with a manifest"),
            });
        }
    }
    // Fencing: the next writer generation is taken before the newest backup is chosen, so any backup the
    // previous writer finishes after this point is refused and removed by that writer itself.
    let taken = match marker {
        Some(_) => store::lineage::take_over(place, app, None)?,
        None => None,
    };
    let file = match name {
        Some(n) => store::fetch(place, n, &opts.backup_dir)?,
        None => match store::fetch_latest(place, app, &opts.backup_dir)? {
            Some(f) => f,
            None => return Ok(FirstStart::NoBackup),
        },
    };
    let generation = match taken {
        Some(g) => Some(g),
        None => {
            store::lineage::take_over(place, app, Some(&store::lineage::Lineage::of_file(&file)?))?
        }
    };
    let from = place.location_of(&fsx::file_name(&file));
    let r = restore_under(&lock, &file, db, app, opts)?;
    if let Some(g) = generation {
        store::lineage::record_generation(db, g)?;
    }
    Ok(FirstStart::Restored(from, r))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
