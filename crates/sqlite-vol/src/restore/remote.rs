//! Restore on first start from a place, in one pass: the backup is fetched (downloaded, or decrypted)
//! straight into the staged `.<db>.restoring` beside the database, hashed as it is written and compared
//! with its manifest ([`crate::store`]'s `fetch_into`); the integrity check then runs on the staged file
//! while its pages are still in the page cache, as they are written to disk. A plain backup in a folder is copied as a local restore
//! copies one (hashed as it is copied, checked on the backup itself at the same time). The same refusals as
//! any restore apply (another app's backup, a newer schema). Only then is it switched to WAL, fsynced and given the
//! database's name, never over a file that appeared there meanwhile (another process opened or created the
//! database: the verified staged file then goes into it through the live path); the folder is fsynced.
//!
//! No copy is kept in the backup folder: the restored database is itself the only copy written, and the
//! service's first scheduled backup makes a local one. Any failure removes the staged file and leaves the
//! place as it was: no database, no staged file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{empty, live, refusals, RestoreOptions, Restored};
use crate::fsx::{self, remove_orphans, remove_with_sidecars};
use crate::store::{self, Place, Policy};
use crate::verify::{check_file, verify_copying, Verified};
use crate::{Error, Result};

/// A backup fetched into the staged file beside the database, matched with its manifest, checked and
/// accepted; removed when dropped unless it was given the database's name.
pub(super) struct Staged {
    path: PathBuf,
    verified: Verified,
    started: Instant,
}

impl Drop for Staged {
    fn drop(&mut self) {
        remove_with_sidecars(&self.path);
    }
}

/// Fetches backup `name` of `place` into `.<db>.restoring`, checks it and applies the refusals. The caller
/// holds the maintenance lock and has seen that there is no database with content.
///
/// # Errors
/// As [`store::fetch_with`]; [`Error::BadBackup`] / [`Error::NotADatabase`] when the check fails,
/// [`Error::WrongApplication`] / [`Error::SchemaTooNew`] as [`super::restore`]. Nothing is left behind.
pub(super) fn stage(
    place: &Place,
    name: &str,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
    policy: &Policy,
) -> Result<Staged> {
    let started = Instant::now();
    remove_orphans(db)?;
    let dir = db.parent().unwrap_or(Path::new("/"));
    let path = dir.join(format!(".{}.restoring", fsx::file_name(db)));
    remove_with_sidecars(&path);
    let from = place.location_of(name);
    let staged = (|| {
        let (verified, fetched_ms) = match place {
            // A plain backup in a folder: copied while it is hashed, while its check runs on the backup
            // itself, on the other core (the hash then proves the copy is the checked bytes).
            Place::Dir(dir) if !store::manifest(place, name)?.is_some_and(|m| m.encrypted) => {
                let v = verify_copying(&dir.join(name), opts.full_check, opts.progress, &path)?;
                (v, started.elapsed().as_millis() as u64)
            }
            _ => {
                let fetched = store::fetch_into(place, name, &path, policy)?;
                let fetched_ms = started.elapsed().as_millis() as u64;
                // The staged file goes to disk while its check reads it from the page cache: the fsync
                // before it is placed then has only the switch to WAL left to write.
                let (checked, synced) = std::thread::scope(|s| {
                    let syncing = s.spawn(|| fsx::sync_file(&path));
                    let checked = check(&path, &from, fetched, opts);
                    let synced = fsx::joined(syncing, "syncing", &path);
                    (checked, synced)
                });
                let verified = checked?;
                synced?;
                (verified, fetched_ms)
            }
        };
        refusals(&verified, Path::new(&from), app, opts)?;
        tracing::debug!(
            fetched_ms,
            checked_ms = started.elapsed().as_millis() as u64,
            "restore phases"
        );
        Ok(verified)
    })();
    match staged {
        Ok(verified) => Ok(Staged {
            path,
            verified,
            started,
        }),
        Err(e) => {
            remove_with_sidecars(&path);
            Err(e)
        }
    }
}

impl Staged {
    /// The staged file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Switches the staged file to WAL and gives it the name `db` if that is still free (fsynced, then the
    /// folder fsynced); when a file appeared there meanwhile, restores into it through the live path
    /// instead (after its safety backup), never replacing it. The staged file is gone afterwards either way.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::NoSpace`] / [`Error::Sqlite`]; as [`super::restore`] on the live path.
    pub(super) fn place(self, db: &Path, app: &str, opts: &RestoreOptions<'_>) -> Result<Restored> {
        let dir = db.parent().unwrap_or(Path::new("/"));
        empty::to_wal(&self.path, db)?;
        let wal_ms = self.started.elapsed().as_millis() as u64;
        let named = fsx::sync_and_rename_new(&self.path, db)
            .map_err(|e| Error::io("placing the restored database at", db, e))?;
        let (safety_backup, page_count, schema_version) = if named {
            fsx::sync_dir(dir)?;
            (None, self.verified.page_count, self.verified.schema_version)
        } else {
            tracing::warn!(db = %db.display(), "a file appeared at the database's name during the restore: restoring into it instead of replacing it");
            live::restore(&self.verified, &self.path, db, app, opts)?
        };
        tracing::debug!(
            wal_ms,
            placed_ms = self.started.elapsed().as_millis() as u64,
            live = !named,
            "restore phases"
        );
        let restored = Restored {
            from: self.verified.path.clone(),
            into: db.to_path_buf(),
            safety_backup,
            created: named,
            page_count,
            schema_version,
            duration_ms: self.started.elapsed().as_millis() as u64,
        };
        tracing::warn!(from = %restored.from.display(), into = %db.display(), safety_backup = ?restored.safety_backup,
            "database restored from backup");
        Ok(restored)
    }
}

/// The integrity check of the staged file (its bytes are the backup's: the hash said so), and what a
/// verification reports, for the refusals and the live path.
fn check(
    staged: &Path,
    from: &str,
    fetched: store::Fetched,
    opts: &RestoreOptions<'_>,
) -> Result<Verified> {
    let bad = |reason: String| Error::BadBackup {
        path: PathBuf::from(from),
        reason,
    };
    let mut header = [0u8; 16];
    let n = std::fs::File::open(staged)
        .and_then(|mut f| f.read(&mut header))
        .map_err(|e| Error::io("reading the staged restore", staged, e))?;
    if n < header.len() || &header != b"SQLite format 3\0" {
        return Err(Error::NotADatabase {
            path: PathBuf::from(from),
            reason: "it does not start with the SQLite header (not a database, or not a backup)"
                .into(),
        });
    }
    let check = if opts.full_check {
        "integrity_check"
    } else {
        "quick_check"
    };
    let facts = check_file(
        staged,
        check,
        |e| bad(format!("SQLite cannot read it: {e}")),
        |verdict| {
            bad(format!(
                "{check} failed: {}",
                verdict.chars().take(300).collect::<String>()
            ))
        },
    )?;
    if let Some(f) = opts.progress {
        f(crate::Progress {
            done: facts.page_count,
            total: facts.page_count,
        });
    }
    let manifest = fetched.manifest;
    Ok(Verified {
        path: PathBuf::from(from),
        bytes: fetched.bytes,
        sha256: fetched.sha256,
        manifest: manifest.is_some(),
        page_size: facts.page_size,
        page_count: facts.page_count,
        application_id: facts.application_id,
        schema_version: facts.schema_version,
        check: check.into(),
        created_at: manifest.map(|m| m.created_at),
    })
}
