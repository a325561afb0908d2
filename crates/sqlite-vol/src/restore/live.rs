//! Restore into a live database: a safety backup, then the backup's pages copied in with the SQLite backup
//! API in one write transaction, checked before it is closed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::RestoreOptions;
use crate::backup::{backup_locked, BackupOptions};
use crate::lock::Wait;
use crate::sql::{copy_pages, open_immutable, pragma_u64, run_check};
use crate::verify::Verified;
use crate::{Error, Result};

/// Takes the safety backup and copies `verified` into the live database at `db`; returns (the safety
/// backup, page count, schema version). The caller holds the lock.
pub(super) fn restore(
    verified: &Verified,
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<(Option<PathBuf>, u64, Option<i64>)> {
    let safety_backup = if opts.safety_backup {
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
    let (pages, schema) = copy_into(verified, file, db, opts)?;
    Ok((safety_backup, pages, schema))
}

/// Copies the backup's pages into the live database, checks the result and closes it; returns (page
/// count, schema version).
fn copy_into(
    verified: &Verified,
    file: &Path,
    db: &Path,
    opts: &RestoreOptions<'_>,
) -> Result<(u64, Option<i64>)> {
    let src = open_immutable(file)?;
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

    // A database that was not in WAL mode is left in the backup's rollback mode; services expect WAL.
    if !live_mode.eq_ignore_ascii_case("wal") {
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
