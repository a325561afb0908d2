//! What a backup is called and what it holds: names `<app>-<yyyymmddTHHMMSSZ>.db`, the manifest
//! `<backup>.json` beside each one, and listing and pruning the backups of an app in a folder.
//!
//! A backup counts once its manifest is there; files outside the naming scheme are never listed or
//! deleted, so a backup folder may be shared with other files or other apps.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsx::{self, sidecar};
use crate::{clock, settings, Error, Result};

/// What a backup holds: written beside it as `<backup>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Page size.
    pub page_size: u64,
    /// Page count.
    pub page_count: u64,
    /// The last applied migration, if any.
    pub schema_version: Option<i64>,
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// The database it was taken from.
    pub source: PathBuf,
    /// When it was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The tool that made it.
    pub tool_version: String,
    /// How long it took.
    pub duration_ms: u64,
    /// Which check passed: `quick_check` or `integrity_check`.
    pub check: String,
    /// Off-site: the database's instance id (its lineage), from `_sqlite_vol_meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Off-site: the writer generation of the database it was taken from (see [`crate::store::lineage`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Off-site: the stored object is encrypted with age; `bytes` and `sha256` are the plaintext's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    /// Off-site: the stored object's size when it differs from `bytes` (encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
}

/// The default backup folder for a database: `SQLITE_VOL_BACKUP_DIR`, else `backups/` beside it.
pub fn default_dir(db: &Path) -> PathBuf {
    settings::env_path(settings::BACKUP_DIR).unwrap_or_else(|| beside(db))
}

/// `backups/` beside the database.
pub(crate) fn beside(db: &Path) -> PathBuf {
    db.parent().unwrap_or(Path::new(".")).join("backups")
}

/// The manifest beside a backup: `<backup>.json`.
pub fn manifest_path(backup: &Path) -> PathBuf {
    sidecar(backup, ".json")
}

/// Reads the manifest beside `backup`, if there is one.
pub fn read_manifest(backup: &Path) -> Option<Manifest> {
    serde_json::from_slice(&fs::read(manifest_path(backup)).ok()?).ok()
}

/// Writes the manifest beside `m.path`, whole or not at all (the caller fsyncs the folder).
pub(crate) fn write_manifest(m: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(m).unwrap_or_default();
    fsx::write_atomic(&manifest_path(&m.path), &json, "writing manifest")
}

/// A name `<app>-<yyyymmddTHHMMSSZ>.db` not yet taken in `dir` (`-1`, `-2`… within one second).
pub(crate) fn free_name(dir: &Path, app: &str) -> String {
    let stamp = clock::now_stamp();
    (0..)
        .map(|n| {
            if n == 0 {
                format!("{app}-{stamp}.db")
            } else {
                format!("{app}-{stamp}-{n}.db")
            }
        })
        .find(|n| !dir.join(n).exists() && !manifest_path(&dir.join(n)).exists())
        .unwrap_or_default()
}

/// If `name` is `<app>-<yyyymmddTHHMMSSZ>[-N].db`, its time as `(stamp, n)`.
pub(crate) fn parse_name(name: &str, app: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix(app)?
        .strip_prefix('-')?
        .strip_suffix(".db")?;
    let (stamp, n) = match rest.split_once('-') {
        Some((s, n)) => (s, n.parse::<u32>().ok()?),
        None => (rest, 0),
    };
    let b = stamp.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| (stamp.to_string(), n))
}

/// Sorts `(stamp, n, item)` newest first and keeps the items: the one order of backups everywhere.
pub(crate) fn newest_first<T>(mut found: Vec<(String, u32, T)>) -> Vec<T> {
    found.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
    found.into_iter().map(|(_, _, e)| e).collect()
}

/// One backup found in a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The backup file.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was taken (RFC 3339), from its name.
    pub created_at: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// Whether a manifest with a checksum is beside it (verification is [`crate::verify()`]).
    pub has_manifest: bool,
}

/// The backups of `app` in `dir`, newest first. Files outside the naming scheme are ignored.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be read (a missing folder is an empty list).
pub fn list(dir: &Path, app: &str) -> Result<Vec<Entry>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing backups in", dir, e)),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((stamp, n)) = parse_name(&name, app) else {
            continue;
        };
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let (created_at, age) = clock::stamp_time(&stamp, now);
        let path = e.path();
        let has_manifest = manifest_path(&path).is_file();
        out.push((
            stamp,
            n,
            Entry {
                path,
                bytes: meta.len(),
                created_at,
                age_seconds: age,
                has_manifest,
            },
        ));
    }
    Ok(newest_first(out))
}

/// Refuses `keep` = 0, which would delete every backup.
pub(crate) fn check_keep(keep: usize) -> Result<()> {
    if keep == 0 {
        return Err(Error::Config {
            variable: "keep".into(),
            value: "0".into(),
            reason: "keeping no backups would delete them all; use 1 or more".into(),
        });
    }
    Ok(())
}

/// Deletes all but the newest `keep` backups of `app` in `dir` (with their manifests), never `protect`.
/// Returns what was deleted.
///
/// # Errors
/// [`Error::Config`] for `keep` = 0, [`Error::Io`] when a file cannot be removed.
pub fn prune(dir: &Path, app: &str, keep: usize, protect: Option<&Path>) -> Result<Vec<PathBuf>> {
    check_keep(keep)?;
    let mut deleted = Vec::new();
    for e in list(dir, app)?.into_iter().skip(keep) {
        if protect == Some(e.path.as_path()) {
            continue;
        }
        fs::remove_file(&e.path).map_err(|err| Error::io("removing old backup", &e.path, err))?;
        let _ = fs::remove_file(manifest_path(&e.path));
        tracing::info!(backup = %e.path.display(), "pruned old backup");
        deleted.push(e.path);
    }
    if !deleted.is_empty() {
        fsx::sync_dir(dir)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_scheme_and_others_are_ignored() {
        assert_eq!(
            parse_name("app-20261122T101500Z.db", "app"),
            Some(("20261122T101500Z".into(), 0))
        );
        assert_eq!(
            parse_name("app-20261122T101500Z-2.db", "app"),
            Some(("20261122T101500Z".into(), 2))
        );
        for other in [
            "app.db",
            "app-latest.db",
            "other-20261122T101500Z.db",
            "app-20261122T101500Z.db.json",
            "app-2026112T101500Z.db",
            "app-20261122T101500Z-x.db",
        ] {
            assert_eq!(parse_name(other, "app"), None, "{other}");
        }
    }
}
