//! Backups somewhere else: another folder, or an S3-compatible bucket (`s3://bucket/prefix`), and bringing
//! the newest one back when a service starts on an empty volume.
//!
//! A [`Place`] is where backups are kept besides the database's own backup folder. [`send`] ships a
//! finished, verified backup there (the file, then its manifest; a backup only counts once its manifest is
//! there), [`list`] and [`prune`] work there as they do locally, and [`fetch`] brings one back into a local
//! folder, checked against its manifest, so that [`crate::restore`] can verify and restore it as any local
//! file; a restore onto an empty volume has it written straight into its staged file instead
//! (`fetch_into`). Whatever arrives is staged under a hidden name and compared with its manifest in one
//! place (`stage`). Each backend is a module of its own: `dir` (a folder) and [`s3`] (an S3-compatible bucket). With a
//! [`Policy`] that has recipients, what is sent is encrypted with age on the way and decrypted on the way
//! back (`crypt`); [`Destinations`] sends every backup to several places, one failing stopping none.

mod crypt;
mod dir;
mod dir_marker;
pub mod lineage;
mod many;
mod policy;
mod probe;
#[cfg(feature = "s3")]
pub mod s3;
mod stage;

pub use many::Destinations;
pub use policy::Policy;
pub use probe::check_identity;

use std::path::{Path, PathBuf};

use crate::manifest::{self, Manifest};
use crate::{fsx, Error, Result};

/// Where backups are kept: a folder, or an S3-compatible bucket and prefix.
#[derive(Debug)]
pub enum Place {
    /// A local (or mounted) folder.
    Dir(PathBuf),
    /// `s3://bucket/prefix`, configured from `AWS_*` variables.
    #[cfg(feature = "s3")]
    S3(s3::Remote),
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
            return s3::Remote::parse(location).map(Place::S3);
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

    /// One backup named by `location`: a file path, or `s3://bucket/prefix/NAME.db`; returns its place and
    /// its name there. The one parser of backup URLs.
    ///
    /// # Errors
    /// [`Error::Config`] for an `s3://` URL that names a bucket or prefix rather than a backup, and as
    /// [`Place::parse`].
    pub fn parse_backup(location: &str) -> Result<(Place, String)> {
        let location = location.trim();
        if let Some(rest) = location.strip_prefix("s3://") {
            return match rest.trim_end_matches('/').rsplit_once('/') {
                Some((parent, name)) => Ok((Place::parse(&format!("s3://{parent}"))?, name.into())),
                None => Err(Error::Config {
                    variable: "backup".into(),
                    value: location.into(),
                    reason: format!(
                        "it names a bucket, not a backup: give s3://BUCKET/PREFIX/NAME.db (see `sqlite-vol list \
                         {location}`)"
                    ),
                }),
            };
        }
        let file = PathBuf::from(location);
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok((Place::Dir(dir), fsx::file_name(&file)))
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

impl std::fmt::Display for Place {
    /// The folder path or URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
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
    put(place, m, &[]).map(|(to, _)| to)
}

/// [`send`], encrypted to `recipients` when there are any; returns where it is and its manifest there.
fn put(
    place: &Place,
    m: &Manifest,
    recipients: &[age::x25519::Recipient],
) -> Result<(String, Manifest)> {
    let name = fsx::file_name(&m.path);
    if name.is_empty() {
        return Err(Error::Config {
            variable: "backup".into(),
            value: m.path.display().to_string(),
            reason: "not a file path".into(),
        });
    }
    let started = std::time::Instant::now();
    let (to, placed) = match place {
        Place::Dir(dir) => dir::copy_to(m, dir, &name, recipients)?,
        #[cfg(feature = "s3")]
        Place::S3(r) => r.upload(m, &name, recipients)?,
    };
    tracing::info!(backup = %m.path.display(), to = %to, bytes = m.bytes, encrypted = placed.encrypted,
        duration_ms = started.elapsed().as_millis() as u64, "backup sent off-site");
    Ok((to, placed))
}

/// A backup taken and sent to a place: what [`send_keeping`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    /// The backup's manifest as sent (the local path; its generation, and whether it is encrypted there).
    pub manifest: Manifest,
    /// Where the backup now is in the place.
    pub to: String,
    /// What was pruned in the place afterwards.
    pub pruned: Vec<String>,
}

/// [`send_with`] with the default [`Policy`] (no adoption, no encryption).
///
/// # Errors
/// As [`send_with`].
pub fn send_keeping(place: &Place, m: Manifest, app: &str, keep: Option<usize>) -> Result<Sent> {
    send_with(place, m, app, keep, &Policy::default())
}

/// The one sequence for scheduled, library and command-line backups: checks the place's lineage and
/// writer generation ([`lineage`]), [`send`]s the backup with its generation in its manifest, checks that
/// no takeover happened meanwhile, then, with `keep`, [`prune`]s `place` to the newest `keep` backups of
/// `app`. With the policy's recipients the backup is encrypted on the way (see [`Policy::encrypt_to`]).
///
/// # Errors
/// [`Error::OtherLineage`] when the place belongs to another database, [`Error::TakenOver`] when another
/// instance took a newer generation (nothing of this backup is left listed there); as [`send`] and
/// [`prune`]. Nothing is pruned when sending fails.
pub fn send_with(
    place: &Place,
    m: Manifest,
    app: &str,
    keep: Option<usize>,
    policy: &Policy,
) -> Result<Sent> {
    let started = std::time::Instant::now();
    let sent = attempt(place, &m, app, policy);
    // The outcome is kept beside the local backup, where status, doctor and the metrics read it.
    let took = started.elapsed().as_millis() as u64;
    let detail = sent.as_ref().err().map_or("ok".into(), ToString::to_string);
    let outcome = crate::record::Outcome::now(
        place.location_of(&fsx::file_name(&m.path)),
        sent.is_ok(),
        took,
        detail,
    );
    let dir = m.path.parent().unwrap_or(Path::new("."));
    if let Err(e) = crate::record::note(dir, app, crate::record::Kind::Offsite, outcome) {
        tracing::warn!(error = %e, "could not record the off-site send's outcome");
    }
    let (to, manifest) = sent?;
    pruned_after(place, app, keep, to, manifest)
}

/// What a send to `place` came to once the place is pruned to its newest `keep` (when asked).
pub(super) fn pruned_after(
    place: &Place,
    app: &str,
    keep: Option<usize>,
    to: String,
    manifest: Manifest,
) -> Result<Sent> {
    let pruned = match keep {
        Some(k) => prune(place, app, k)?,
        None => Vec::new(),
    };
    Ok(Sent {
        manifest,
        to,
        pruned,
    })
}

/// One send to one place, unrecorded: the lineage check, the backup (with its generation in its manifest,
/// encrypted by the policy), the takeover check. Returns where it is and its manifest there.
pub(super) fn attempt(
    place: &Place,
    m: &Manifest,
    app: &str,
    policy: &Policy,
) -> Result<(String, Manifest)> {
    let who = lineage::Lineage::of_file(&m.path)?;
    let m = Manifest {
        instance_id: who.instance_id.clone(),
        generation: Some(who.generation),
        ..m.clone()
    };
    let version = lineage::before_send(place, app, &who, policy.adopt)?;
    let (to, placed) = put(place, &m, &policy.recipients)?;
    lineage::after_send(place, app, &fsx::file_name(&m.path), &who, &version)?;
    Ok((
        to,
        Manifest {
            path: m.path,
            ..placed
        },
    ))
}

/// Deletes backup `name` from `place`, manifest first.
pub(crate) fn delete(place: &Place, name: &str) -> Result<()> {
    match place {
        Place::Dir(dir) => {
            let file = dir.join(name);
            let _ = std::fs::remove_file(manifest::manifest_path(&file));
            std::fs::remove_file(&file).map_err(|e| Error::io("removing backup", &file, e))?;
            fsx::sync_dir(dir)
        }
        #[cfg(feature = "s3")]
        Place::S3(r) => r.delete(name, true),
    }
}

/// The backups of `app` in `place`, newest first.
///
/// # Errors
/// [`Error::Io`] for an unreadable folder, [`Error::Remote`] from object storage.
pub fn list(place: &Place, app: &str) -> Result<Listing> {
    match place {
        Place::Dir(dir) => dir::list(dir, app),
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
                let Some((stamp, n)) = manifest::parse_name(&o.name, app) else {
                    continue;
                };
                if !manifests.contains(o.name.as_str()) {
                    incomplete.push(o.name.clone());
                    continue;
                }
                let (created_at, age_seconds) = crate::clock::stamp_time(&stamp, now);
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
            incomplete.sort();
            Ok(Listing {
                backups: manifest::newest_first(found),
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
        Place::Dir(dir) => Ok(manifest::read_manifest(&dir.join(name))),
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
        Place::Dir(dir) => Ok(manifest::prune(dir, app, keep, None)?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect()),
        #[cfg(feature = "s3")]
        Place::S3(r) => {
            manifest::check_keep(keep)?;
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

/// What [`fetch_into`] wrote: the backup's plaintext, matched with its manifest.
pub(crate) struct Fetched {
    /// Its size.
    pub(crate) bytes: u64,
    /// Its hex sha256.
    pub(crate) sha256: String,
    /// Its manifest (`None` only for a folder backup that has none: then it was only copied).
    pub(crate) manifest: Option<Manifest>,
}

/// [`fetch_with`] with no identity: an encrypted backup is refused with what to set.
///
/// # Errors
/// As [`fetch_with`].
pub fn fetch(place: &Place, name: &str, staging: &Path) -> Result<PathBuf> {
    fetch_with(place, name, staging, &Policy::default())
}

/// Brings backup `name` from `place` into the local folder `staging` (object storage: downloaded and
/// checked against its manifest; a folder: used where it is), decrypting it on the way with the policy's
/// identity when its manifest says it is encrypted. Returns the local, plaintext file.
///
/// # Errors
/// [`Error::Remote`], [`Error::BadBackup`], [`Error::Io`]; [`Error::Encryption`] for an encrypted backup
/// without an identity that opens it, or whose ciphertext is damaged or truncated (nothing is kept).
pub fn fetch_with(place: &Place, name: &str, staging: &Path, policy: &Policy) -> Result<PathBuf> {
    match place {
        Place::Dir(dir) => dir::fetch(dir, name, staging, policy),
        #[cfg(feature = "s3")]
        Place::S3(r) => {
            let started = std::time::Instant::now();
            let file = r.download(name, staging, policy)?;
            tracing::info!(from = %r.url_of(name), to = %file.display(),
                duration_ms = started.elapsed().as_millis() as u64, "off-site backup downloaded and checked");
            Ok(file)
        }
    }
}

/// Brings backup `name` of `place` straight into the new file `to` (the staged file of a restore onto an
/// empty volume), in one pass: downloaded, copied or decrypted, hashed as it is written, and compared with
/// its manifest. It is not fsynced here: the restore does that beside its check, and again before it gives
/// the file the database's name. Nothing else is written (no local copy in a backup folder). Returns the
/// size and sha256 of what it wrote, and the manifest.
///
/// # Errors
/// As [`fetch_with`]; on any failure `to` is removed.
pub(crate) fn fetch_into(place: &Place, name: &str, to: &Path, policy: &Policy) -> Result<Fetched> {
    let started = std::time::Instant::now();
    let m = match place {
        Place::Dir(dir) => dir::fetch_into(dir, name, to, policy)?,
        #[cfg(feature = "s3")]
        Place::S3(r) => r.download_into(name, to, policy)?,
    };
    tracing::info!(from = %place.location_of(name), to = %to.display(),
        duration_ms = started.elapsed().as_millis() as u64, "backup fetched into place and checked");
    Ok(m)
}

/// The newest backup of `app` in `place`, brought into `staging` (see [`fetch`]); `None` when there is none.
///
/// # Errors
/// As [`list`] and [`fetch`].
pub fn fetch_latest(place: &Place, app: &str, staging: &Path) -> Result<Option<PathBuf>> {
    fetch_latest_with(place, app, staging, &Policy::default())
}

/// [`fetch_latest`], decrypting with the policy's identity (see [`fetch_with`]).
///
/// # Errors
/// As [`list`] and [`fetch_with`].
pub fn fetch_latest_with(
    place: &Place,
    app: &str,
    staging: &Path,
    policy: &Policy,
) -> Result<Option<PathBuf>> {
    match list(place, app)?.backups.first() {
        None => Ok(None),
        Some(b) => fetch_with(place, &b.name, staging, policy).map(Some),
    }
}
