//! Backups somewhere else: another folder, or an S3-compatible bucket (`s3://bucket/prefix`), and bringing
//! the newest one back when a service starts on an empty volume.
//!
//! A [`Place`] is where backups are kept besides the database's own backup folder. [`send`] ships a
//! finished, verified backup there (the file, then its manifest; a backup only counts once its manifest is
//! there), [`list`] and [`prune`] work there as they do locally, and [`fetch`] brings one back into a local
//! folder, checked against its manifest, so that [`crate::restore`] can verify and restore it as any local
//! file. [`restore_if_missing`] is restore-on-first-start: under the maintenance lock, if the database does
//! not exist, the newest backup from the place is restored, loudly; if there is none, it says so and the
//! caller creates an empty database as usual.

use std::fs;
use std::path::{Path, PathBuf};

use crate::backup::{self, Manifest};
use crate::lock::MaintenanceLock;
use crate::restore::{RestoreOptions, Restored};
use crate::{Error, Result};

/// Where backups are kept: a folder, or an S3-compatible bucket and prefix.
#[derive(Debug)]
pub enum Place {
    /// A local (or mounted) folder.
    Dir(PathBuf),
    /// `s3://bucket/prefix`, configured from `AWS_*` variables.
    #[cfg(feature = "s3")]
    S3(crate::s3::Remote),
}

impl Place {
    /// `s3://bucket/prefix` or a folder path. Other `scheme://` locations are refused.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown scheme, a malformed `s3://` URL, or S3 support compiled out.
    pub fn parse(location: &str) -> Result<Place> {
        let location = location.trim();
        let bad = |reason: &str| Error::Config {
            variable: "backup location".into(),
            value: location.into(),
            reason: reason.into(),
        };
        if location.is_empty() {
            return Err(bad("give a folder or s3://bucket/prefix"));
        }
        if location.starts_with("s3://") {
            #[cfg(feature = "s3")]
            return crate::s3::Remote::parse(location).map(Place::S3);
            #[cfg(not(feature = "s3"))]
            return Err(bad(
                "this build has no S3 support: build sqlite-vol with its `s3` feature",
            ));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(bad(&format!(
                "{scheme}:// is not supported; use a folder or s3://bucket/prefix (any S3-compatible store, \
                 with AWS_ENDPOINT_URL)"
            )));
        }
        let p = PathBuf::from(location);
        Ok(Place::Dir(std::path::absolute(&p).unwrap_or(p)))
    }

    /// True for object storage.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Place::Dir(_))
    }

    /// The folder path or URL, for messages.
    pub fn describe(&self) -> String {
        match self {
            Place::Dir(d) => d.display().to_string(),
            #[cfg(feature = "s3")]
            Place::S3(r) => r.url().to_string(),
        }
    }

    /// Where backup `name` is (or would be) in this place.
    pub fn location_of(&self, name: &str) -> String {
        match self {
            Place::Dir(d) => d.join(name).display().to_string(),
            #[cfg(feature = "s3")]
            Place::S3(r) => r.url_of(name),
        }
    }
}

/// A backup kept in a [`Place`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stored {
    /// Its file name, `<app>-<yyyymmddTHHMMSSZ>.db`.
    pub name: String,
    /// Its full path or URL.
    pub location: String,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was taken (RFC 3339), from its name.
    pub created_at: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// Whether its manifest is there. Object storage only lists backups with one.
    pub has_manifest: bool,
}

/// What [`list`] found in a place.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    /// The backups, newest first.
    pub backups: Vec<Stored>,
    /// Object storage only: data objects without a manifest (interrupted uploads). Not backups; [`prune`]
    /// removes those older than the newest backup.
    pub incomplete: Vec<String>,
}

/// Copies (folder) or uploads (S3) the finished backup described by `m` to `place`; the manifest goes last.
/// Returns where it now is.
///
/// # Errors
/// [`Error::Remote`] from object storage, [`Error::BadBackup`] if the file no longer matches its manifest,
/// [`Error::Io`] / [`Error::NoSpace`] for a folder.
pub fn send(place: &Place, m: &Manifest) -> Result<String> {
    let name = file_name(&m.path)?;
    let started = std::time::Instant::now();
    let to = match place {
        Place::Dir(dir) => copy_to_dir(m, dir, &name)?,
        #[cfg(feature = "s3")]
        Place::S3(r) => r.upload(&m.path, m, &name)?,
    };
    tracing::info!(backup = %m.path.display(), to = %to, bytes = m.bytes,
        duration_ms = started.elapsed().as_millis() as u64, "backup sent off-site");
    Ok(to)
}

/// [`send`], then, with `keep`, [`prune`] `place` to the newest `keep` backups of `app`. Returns where the
/// backup now is and what was pruned. The one sequence for scheduled, library and command-line backups.
///
/// # Errors
/// As [`send`] and [`prune`]; nothing is pruned when sending fails.
pub fn send_keeping(
    place: &Place,
    m: &Manifest,
    app: &str,
    keep: Option<usize>,
) -> Result<(String, Vec<String>)> {
    let to = send(place, m)?;
    let pruned = match keep {
        Some(k) => prune(place, app, k)?,
        None => Vec::new(),
    };
    Ok((to, pruned))
}

fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Config {
            variable: "backup".into(),
            value: p.display().to_string(),
            reason: "not a file path".into(),
        })
}

fn copy_to_dir(m: &Manifest, dir: &Path, name: &str) -> Result<String> {
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
    let (bytes, sha256) = backup::hash_file(&partial)?;
    if bytes != m.bytes || sha256 != m.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(Error::BadBackup {
            path: m.path.clone(),
            reason: "the copy does not match its manifest; take a new backup".into(),
        });
    }
    backup::write_manifest(&Manifest {
        path: target.clone(),
        ..m.clone()
    })?;
    fs::rename(&partial, &target).map_err(|e| Error::io("naming backup", &target, e))?;
    backup::sync_dir(dir)?;
    Ok(target.display().to_string())
}

/// The backups of `app` in `place`, newest first.
///
/// # Errors
/// [`Error::Io`] for an unreadable folder, [`Error::Remote`] from object storage.
pub fn list(place: &Place, app: &str) -> Result<Listing> {
    match place {
        Place::Dir(dir) => Ok(Listing {
            backups: backup::list(dir, app)?
                .into_iter()
                .map(|e| Stored {
                    name: e
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    location: e.path.display().to_string(),
                    bytes: e.bytes,
                    created_at: e.created_at,
                    age_seconds: e.age_seconds,
                    has_manifest: e.has_manifest,
                })
                .collect(),
            incomplete: Vec::new(),
        }),
        #[cfg(feature = "s3")]
        Place::S3(r) => {
            let objects = r.objects()?;
            let manifests: std::collections::HashSet<&str> = objects
                .iter()
                .filter_map(|o| o.name.strip_suffix(".json"))
                .collect();
            let now = time::OffsetDateTime::now_utc();
            let mut found: Vec<(String, u32, Stored)> = Vec::new();
            let mut incomplete = Vec::new();
            for o in &objects {
                let Some((stamp, n)) = backup::parse_name(&o.name, app) else {
                    continue;
                };
                if !manifests.contains(o.name.as_str()) {
                    incomplete.push(o.name.clone());
                    continue;
                }
                let (created_at, age_seconds) = backup::stamp_time(&stamp, now);
                found.push((
                    stamp,
                    n,
                    Stored {
                        name: o.name.clone(),
                        location: r.url_of(&o.name),
                        bytes: o.bytes,
                        created_at,
                        age_seconds,
                        has_manifest: true,
                    },
                ));
            }
            found.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
            incomplete.sort();
            Ok(Listing {
                backups: found.into_iter().map(|(_, _, s)| s).collect(),
                incomplete,
            })
        }
    }
}

/// Reads the manifest of backup `name` in `place`.
///
/// # Errors
/// [`Error::Remote`] / [`Error::BadBackup`] when it cannot be read or parsed.
pub fn manifest(place: &Place, name: &str) -> Result<Option<Manifest>> {
    match place {
        Place::Dir(dir) => Ok(backup::read_manifest(&dir.join(name))),
        #[cfg(feature = "s3")]
        Place::S3(r) => r.manifest(name).map(Some),
    }
}

/// Deletes all but the newest `keep` backups of `app` in `place` (manifest first, then data), and, in
/// object storage, data objects left without a manifest by uploads that died before the newest backup was
/// made. Returns the locations deleted.
///
/// # Errors
/// [`Error::Config`] for `keep` = 0; [`Error::Io`] or [`Error::Remote`] when deleting fails.
pub fn prune(place: &Place, app: &str, keep: usize) -> Result<Vec<String>> {
    match place {
        Place::Dir(dir) => Ok(backup::prune(dir, app, keep, None)?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect()),
        #[cfg(feature = "s3")]
        Place::S3(r) => {
            if keep == 0 {
                return Err(Error::Config {
                    variable: "--keep".into(),
                    value: "0".into(),
                    reason: "keeping no backups would delete them all; use 1 or more".into(),
                });
            }
            let listing = list(place, app)?;
            let mut deleted = Vec::new();
            for b in listing.backups.iter().skip(keep) {
                r.delete(&b.name, true)?;
                tracing::info!(backup = %b.location, "pruned old off-site backup");
                deleted.push(b.location.clone());
            }
            if let Some(newest) = listing.backups.first() {
                for name in listing.incomplete.iter().filter(|n| **n < newest.name) {
                    r.delete(name, false)?;
                    tracing::info!(object = %r.url_of(name), "removed an interrupted upload");
                    deleted.push(r.url_of(name));
                }
            }
            Ok(deleted)
        }
    }
}

/// Brings backup `name` from `place` into the local folder `staging` (object storage: downloaded and
/// checked against its manifest; a folder: used where it is). Returns the local file.
///
/// # Errors
/// [`Error::Remote`], [`Error::BadBackup`], [`Error::Io`].
pub fn fetch(place: &Place, name: &str, staging: &Path) -> Result<PathBuf> {
    match place {
        Place::Dir(dir) => {
            let _ = staging; // a folder's backups are used where they are
            Ok(dir.join(name))
        }
        #[cfg(feature = "s3")]
        Place::S3(r) => {
            let started = std::time::Instant::now();
            let file = r.download(name, staging)?;
            tracing::info!(from = %r.url_of(name), to = %file.display(),
                duration_ms = started.elapsed().as_millis() as u64, "off-site backup downloaded and checked");
            Ok(file)
        }
    }
}

/// The newest backup of `app` in `place`, brought into `staging` (see [`fetch`]); `None` when there is none.
///
/// # Errors
/// As [`list`] and [`fetch`].
pub fn fetch_latest(place: &Place, app: &str, staging: &Path) -> Result<Option<PathBuf>> {
    match list(place, app)?.backups.first() {
        None => Ok(None),
        Some(b) => fetch(place, &b.name, staging).map(Some),
    }
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
    if crate::location::has_content(db) {
        return Ok(FirstStart::Exists);
    }
    let dir = db.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let lock = MaintenanceLock::acquire(db, "restore", opts.wait)?;
    if crate::location::has_content(db) {
        return Ok(FirstStart::Exists);
    }
    let file = match name {
        Some(n) => fetch(place, n, &opts.backup_dir)?,
        None => match fetch_latest(place, app, &opts.backup_dir)? {
            Some(f) => f,
            None => return Ok(FirstStart::NoBackup),
        },
    };
    let from = place.location_of(&file_name(&file)?);
    let r = crate::restore::restore_under(&lock, &file, db, app, opts)?;
    Ok(FirstStart::Restored(from, r))
}
