//! Restore into an empty place (a new volume, a first start): one read of the backup for a byte copy that
//! is hashed as it is written, beside one read for its integrity check, at the same time.
//!
//! The copy goes to a hidden `.<name>.restoring` beside the database. It is only renamed into place once
//! the hash matches the manifest, the check says ok, the backup is this app's with a schema the caller
//! knows, the copy is fsynced and switched to WAL; then the folder is fsynced. Anything else removes it.

use std::path::Path;

use rusqlite::Connection;

use super::{refusals, RestoreOptions};
use crate::fsx::{self, remove_orphans, remove_with_sidecars};
use crate::verify::verify_copying;
use crate::{Error, Result};

/// Restores `file` into the empty place `db`; returns (page count, schema version). The caller holds the
/// lock and has seen that there is no database.
pub(super) fn restore(
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<(u64, Option<i64>)> {
    remove_orphans(db)?;
    let dir = db.parent().unwrap_or(Path::new("/"));
    let staged = dir.join(format!(".{}.restoring", fsx::file_name(db)));
    remove_with_sidecars(&staged);
    let placed = (|| {
        let v = verify_copying(file, opts.full_check, opts.progress, &staged)?;
        refusals(&v, file, app, opts)?;
        to_wal(&staged, db)?;
        fsx::sync_and_rename(&staged, db)
            .map_err(|e| Error::io("placing the restored database at", db, e))?;
        Ok((v.page_count, v.schema_version))
    })();
    if placed.is_err() {
        remove_with_sidecars(&staged);
        return placed;
    }
    fsx::sync_dir(dir)?;
    placed
}

/// Switches the staged copy (a backup: rollback-journal mode) to WAL, which services expect. Closing the
/// only connection folds its tiny WAL back and removes it, so nothing but the file itself is renamed.
fn to_wal(staged: &Path, db: &Path) -> Result<()> {
    let err = |e| Error::sqlite(db, "switching the restored database to WAL", e);
    let c = Connection::open(staged).map_err(err)?;
    let mode: String = c
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(db = %db.display(), mode, "restored, but could not switch to WAL; the next open will");
    }
    c.close().map_err(|(_, e)| err(e))
}
