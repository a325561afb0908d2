//! Restore into an empty place (a new volume, a first start): one read of the backup for a byte copy that
//! is hashed as it is written, beside one read for its integrity check, at the same time.
//!
//! The copy goes to a hidden `.<name>.restoring` beside the database. It is only renamed into place once
//! the hash matches the manifest, the check says ok, the backup is this app's with a schema the caller
//! knows, the copy is fsynced and switched to WAL; then the folder is fsynced. Anything else removes it.
//! The name is taken only if it is still free: a file another process opened or created there meanwhile is
//! never replaced (the caller then restores into it through the live path).

use std::path::Path;

use rusqlite::Connection;

use super::{refusals, RestoreOptions};
use crate::fsx::{self, remove_orphans, remove_with_sidecars};
use crate::verify::{verify_copying, Verified};
use crate::{Error, Result};

/// How the empty-place restore ended.
pub(super) enum Placed {
    /// The copy is the database now: (page count, schema version).
    Done(u64, Option<i64>),
    /// A file appeared at the database's name meanwhile (another process opened or created it): nothing was
    /// replaced, and the verified backup must go in through the live path.
    Taken(Verified),
}

/// Restores `file` into the empty place `db`. The caller holds the lock and has seen that there is no
/// database with content.
pub(super) fn restore(
    file: &Path,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
) -> Result<Placed> {
    remove_orphans(db)?;
    let dir = db.parent().unwrap_or(Path::new("/"));
    let staged = dir.join(format!(".{}.restoring", fsx::file_name(db)));
    remove_with_sidecars(&staged);
    let placed = (|| {
        let v = verify_copying(file, opts.full_check, opts.progress, &staged)?;
        refusals(&v, file, app, opts)?;
        to_wal(&staged, db)?;
        let named = fsx::sync_and_rename_new(&staged, db)
            .map_err(|e| Error::io("placing the restored database at", db, e))?;
        Ok(if named {
            Placed::Done(v.page_count, v.schema_version)
        } else {
            Placed::Taken(v)
        })
    })();
    match placed {
        Ok(Placed::Done(pages, schema)) => {
            fsx::sync_dir(dir)?;
            Ok(Placed::Done(pages, schema))
        }
        other => {
            remove_with_sidecars(&staged);
            other
        }
    }
}

/// Switches the staged copy (a backup: rollback-journal mode) to WAL, which services expect. Closing the
/// only connection folds its tiny WAL back and removes it, so nothing but the file itself is renamed.
pub(super) fn to_wal(staged: &Path, db: &Path) -> Result<()> {
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
