//! Restore on first start: when there is no database, the newest backup from a place, under the
//! maintenance lock, so that instances starting together restore once.

use std::path::Path;

use super::{remote, RestoreOptions, Restored};
use crate::fsx::has_content;
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
/// starting together restore once. The backup is fetched (downloaded, copied or decrypted) straight into a
/// hidden file beside the database, checked there and renamed into place; no copy is kept in
/// `opts.backup_dir` (the first scheduled backup makes one).
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
    // Chosen after the takeover above, then fetched straight into the staged file beside the database.
    let chosen = match name {
        Some(n) => n.to_string(),
        None => match store::list(place, app)?.backups.first() {
            Some(b) => b.name.clone(),
            None => return Ok(FirstStart::NoBackup),
        },
    };
    lock.ensure_lock_of(db)?;
    let staged = remote::stage(place, &chosen, db, app, opts, policy)?;
    let generation = match taken {
        Some(g) => Some(g),
        None => store::lineage::take_over(
            place,
            app,
            Some(&store::lineage::Lineage::of_file(staged.path())?),
        )?,
    };
    let from = place.location_of(&chosen);
    let r = staged.place(db, app, opts)?;
    if let Some(g) = generation {
        store::lineage::record_generation(db, g)?;
    }
    Ok(FirstStart::Restored(from, r))
}
