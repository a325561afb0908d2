//! Restore into a live database: a safety backup, then the backup's pages copied in with the SQLite backup
//! API in one write transaction, committed only once the backup is verified.
//!
//! The verification (sha256 against the manifest, and `quick_check`) runs on its own threads while the safety
//! backup is taken and the pages are copied, not as passes before them: the copy stops short of its last step,
//! which commits, until the verification has passed; a failed one finishes the copy early, which rolls the
//! live database back to exactly what it was. The result needs no check of its own: SQLite copied pages of a
//! file whose bytes the hash proves are the checked ones, and nothing after the commit could undo it anyway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{refusals, RestoreOptions};
use crate::backup::{backup_locked, BackupOptions};
use crate::fsx::remove_with_sidecars;
use crate::lock::Wait;
use crate::sql::{copy_pages_gated, open_immutable, pragma_u64};
use crate::verify::Verified;
use crate::{Error, Result};

/// Takes the safety backup and copies the backup `file` into the live database at `db`; returns (the safety
/// backup, page count, schema version). The caller holds the lock, and its [`Verified`] of `file` is the
/// proof that there is nothing left to check.
pub(super) fn restore(
    _verified: &Verified,
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<(Option<PathBuf>, u64, Option<i64>)> {
    let safety_backup = safety_backup(db, app, opts)?;
    let (pages, schema) = copy_into(file, db, opts, || Ok(()))?;
    Ok((safety_backup, pages, schema))
}

/// [`restore`] of a backup not verified yet: the verification (and the refusals that need it) runs beside
/// the safety backup and the copy, and the copy commits only if it passed. The caller holds the lock and
/// has made the cheap refusals from the backup's header (`verify::peek`).
pub(super) fn restore_verifying(
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<(Option<PathBuf>, u64, Option<i64>)> {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let full = opts.full_check;
        let verifying =
            s.spawn(move || crate::verify::verify(file, full, None).map(|v| (v, t0.elapsed())));
        let safety = safety_backup(db, app, opts)?;
        let safety_ms = t0.elapsed().as_millis() as u64;
        let mut verified_ms = 0;
        let mut waited_ms = 0;
        let mut refused = false;
        let copied = copy_into(file, db, opts, || {
            refused = true;
            let waiting = t0.elapsed();
            let (v, done) = crate::fsx::joined(verifying, "verifying", file)?;
            refusals(&v, file, app, opts)?;
            refused = false;
            verified_ms = done.as_millis() as u64;
            waited_ms = t0.elapsed().saturating_sub(waiting).as_millis() as u64;
            Ok(())
        });
        let copied = match copied {
            Ok(c) => c,
            Err(e) => {
                // Refused before the commit: the live database is as it was, so the safety backup taken
                // meanwhile is not needed, and a refused restore leaves no trace.
                if let (true, Some(p)) = (refused, &safety) {
                    remove_with_sidecars(p);
                    let _ = std::fs::remove_file(crate::manifest::manifest_path(p));
                }
                return Err(e);
            }
        };
        tracing::debug!(
            safety_backup_ms = safety_ms,
            verified_ms,
            waited_for_verification_ms = waited_ms,
            copied_and_checkpointed_ms = t0.elapsed().as_millis() as u64,
            "restore phases"
        );
        Ok((safety, copied.0, copied.1))
    })
}

/// The safety backup of the live database, when asked for.
fn safety_backup(db: &Path, app: &str, opts: &RestoreOptions<'_>) -> Result<Option<PathBuf>> {
    if !opts.safety_backup {
        return Ok(None);
    }
    let safety = BackupOptions {
        dir: opts.backup_dir.clone(),
        keep: None,
        full_check: false,
        wait: Wait::No,
        progress: None,
    };
    Ok(Some(backup_locked(db, app, &safety)?.path))
}

/// Copies the backup's pages into the live database (calling `before_commit` before the step that commits,
/// see [`copy_pages_gated`]) and closes it; returns (page count, schema version).
fn copy_into(
    file: &Path,
    db: &Path,
    opts: &RestoreOptions<'_>,
    before_commit: impl FnOnce() -> Result<()>,
) -> Result<(u64, Option<i64>)> {
    let src = open_immutable(file)?;
    let page_size = pragma_u64(&src, "page_size").map_err(|e| Error::BadBackup {
        path: file.to_path_buf(),
        reason: format!("SQLite cannot read it: {e}"),
    })?;
    let mut live =
        Connection::open(db).map_err(|e| Error::sqlite(db, "opening the live database", e))?;
    let live_err = |e| Error::sqlite(db, "restoring", e);
    live.busy_timeout(Duration::from_secs(10))
        .map_err(live_err)?;
    live.execute_batch("PRAGMA synchronous = FULL")
        .map_err(live_err)?;
    let live_mode: String = live
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(live_err)?;
    let live_page: u64 = pragma_u64(&live, "page_size").map_err(live_err)?;
    if live_mode.eq_ignore_ascii_case("wal") && live_page != page_size {
        return Err(Error::BadBackup {
            path: file.to_path_buf(),
            reason: format!(
                "its page size {page_size} differs from the live WAL database's {live_page}; stop the service, \
                 move the database away and restore into the empty folder"
            ),
        });
    }
    copy_pages_gated(&src, &mut live, file, db, opts.progress, before_commit)?;
    drop(src);

    // A database that was not in WAL mode is left in the backup's rollback mode; services expect WAL.
    if !live_mode.eq_ignore_ascii_case("wal") {
        if let Err(e) = live.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            tracing::warn!(db = %db.display(), error = %e, "restored, but could not switch to WAL; the next open will");
        }
    }
    let _ = live.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    let page_count: u64 = pragma_u64(&live, "page_count").map_err(live_err)?;
    let schema_version = crate::migrate::schema_version(&live, db)?;
    live.close().map_err(|(_, e)| live_err(e))?;
    Ok((page_count, schema_version))
}
