//! Restore on first start: when there is no database, the newest backup from a place, under the
//! maintenance lock, so that instances starting together restore once.

use std::path::Path;

use super::{restore_under, RestoreOptions, Restored};
use crate::fsx::{self, has_content};
use crate::lock::MaintenanceLock;
use crate::store::{self, Place, Policy};
use crate::{Error, Result};

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
    restore_if_missing_with(place, name, db, app, opts, &Policy::default())
}

/// [`restore_if_missing`], decrypting an encrypted backup with the policy's identity (see
/// [`store::fetch_with`]).
///
/// # Errors
/// As [`restore_if_missing`]; [`Error::Encryption`] when the backup is encrypted and cannot be decrypted
/// (the database is left absent).
pub fn restore_if_missing_with(
    place: &Place,
    name: Option<&str>,
    db: &Path,
    app: &str,
    opts: &RestoreOptions<'_>,
    policy: &Policy,
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
    // An encrypted backup that the identity given cannot open (none, or not one of its recipients) is
    // refused from its header before the takeover below, so that a misconfigured new instance fences nobody
    // out.
    store::check_identity(place, app, name, policy)?;
    // Fencing: the next writer generation is taken before the newest backup is chosen, so any backup the
    // previous writer finishes after this point is refused and removed by that writer itself.
    let taken = match marker {
        Some(_) => store::lineage::take_over(place, app, None)?,
        None => None,
    };
    let file = match name {
        Some(n) => store::fetch_with(place, n, &opts.backup_dir, policy)?,
        None => match store::fetch_latest_with(place, app, &opts.backup_dir, policy)? {
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
