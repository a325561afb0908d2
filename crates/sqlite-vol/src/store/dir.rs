//! A folder as a store: backups copied in whole, checked against their manifest, then named.

use std::fs;
use std::path::Path;

use super::{Listing, Stored};
use crate::fsx;
use crate::manifest::{self, Manifest};
use crate::{Error, Result};

/// Copies the finished backup `m` into `dir` as `name`: staged under a hidden name, hashed against the
/// manifest, the manifest written, then the copy renamed into place and the folder fsynced.
pub(super) fn copy_to(m: &Manifest, dir: &Path, name: &str) -> Result<String> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let target = dir.join(name);
    if target == m.path {
        return Ok(target.display().to_string());
    }
    let partial = dir.join(format!(".{name}.download"));
    let copy = || -> std::io::Result<()> {
        fs::copy(&m.path, &partial)?;
        fs::File::open(&partial)?.sync_all()
    };
    if let Err(e) = copy() {
        let _ = fs::remove_file(&partial);
        return Err(Error::io("copying backup to", dir, e));
    }
    let (bytes, sha256) = fsx::hash_file(&partial)?;
    if bytes != m.bytes || sha256 != m.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(Error::BadBackup {
            path: m.path.clone(),
            reason: "the copy does not match its manifest; take a new backup".into(),
        });
    }
    manifest::write_manifest(&Manifest {
        path: target.clone(),
        ..m.clone()
    })?;
    fs::rename(&partial, &target).map_err(|e| Error::io("naming backup", &target, e))?;
    fsx::sync_dir(dir)?;
    Ok(target.display().to_string())
}

/// The backups of `app` in `dir`, as a [`Listing`].
pub(super) fn list(dir: &Path, app: &str) -> Result<Listing> {
    Ok(Listing {
        backups: manifest::list(dir, app)?
            .into_iter()
            .map(|e| Stored {
                name: fsx::file_name(&e.path),
                location: e.path.display().to_string(),
                bytes: e.bytes,
                created_at: e.created_at,
                age_seconds: e.age_seconds,
                has_manifest: e.has_manifest,
            })
            .collect(),
        incomplete: Vec::new(),
    })
}
