//! `sqlite-vol list`: the backups, newest first, with age, size and whether each verifies.
//!
//! "Verified" means a manifest is beside the file and [`sqlite_vol::verify()`] passes (checksum and
//! quick_check). With `--fast` the files are not read: it then means a manifest is present and its size
//! matches. Encrypted backups in a folder, and with `--verify` every object-storage backup, are fetched
//! (decrypted with `--identity`) into a temporary folder and verified there.

use std::path::{Path, PathBuf};

use sqlite_vol::store::{Place, Stored};

use super::{Exit, Target};
use crate::cli::ListArgs;
use crate::ui;

#[derive(serde::Serialize)]
struct Row {
    /// A file path, or an s3:// URL.
    path: String,
    bytes: u64,
    created_at: String,
    age_seconds: i64,
    has_manifest: bool,
    verified: bool,
    /// `sha256+quick_check`, `manifest-size`, `remote-manifest-size` (object storage: the manifest is read
    /// and the object's size compared; the data is checked when it is downloaded to restore), or
    /// `fetched+sha256+quick_check` (downloaded and decrypted into a temporary folder, then checked).
    checked: &'static str,
    /// Why it did not verify.
    problem: Option<String>,
}

/// Lists the backups of the target app in its backup directory, another directory, or an S3 bucket.
pub fn run(t: &Target, a: &ListArgs) -> anyhow::Result<Exit> {
    let place = t.place(a.from.as_deref())?;
    let listing = sqlite_vol::store::list(&place, &t.app)?;
    let policy = t.policy()?;
    let staging = tempfile::tempdir()?;
    let rows: Vec<Row> = listing
        .backups
        .into_iter()
        .map(|e| {
            let encrypted = !place.is_remote()
                && sqlite_vol::manifest::read_manifest(Path::new(&e.location))
                    .is_some_and(|m| m.encrypted);
            let (checked, problem) = if (a.verify && place.is_remote()) || (encrypted && !a.fast) {
                fetched_check(&place, &e, &policy, staging.path())
            } else if place.is_remote() || encrypted {
                remote_check(&place, &e)
            } else {
                local_check(&PathBuf::from(&e.location), e.bytes, a.fast)
            };
            Row {
                verified: e.has_manifest && problem.is_none(),
                path: e.location,
                bytes: e.bytes,
                created_at: e.created_at,
                age_seconds: e.age_seconds,
                has_manifest: e.has_manifest,
                checked,
                problem,
            }
        })
        .collect();
    for name in &listing.incomplete {
        ui::note(
            t.quiet,
            format_args!(
                "{}: no manifest, so not a backup (an upload that did not finish; `prune` removes it once a newer backup exists)",
                place.location_of(name)
            ),
        );
    }
    if a.out.json {
        ui::json(&rows)?;
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        ui::note(
            t.quiet,
            format_args!("no backups of {} in {}", t.app, place.describe()),
        );
        return Ok(Exit::Ok);
    }
    ui::line(format_args!(
        "{:<21} {:>8} {:>10}  {:<8} PATH",
        "CREATED", "AGE", "SIZE", "VERIFIED"
    ))?;
    for r in &rows {
        ui::line(format_args!(
            "{:<21} {:>8} {:>10}  {:<8} {}",
            r.created_at,
            ui::age(r.age_seconds),
            ui::size(r.bytes),
            if r.verified { "yes" } else { "NO" },
            r.path
        ))?;
    }
    for r in rows.iter().filter(|r| r.problem.is_some()) {
        ui::note(
            t.quiet,
            format_args!("{}: {}", r.path, r.problem.as_deref().unwrap_or_default()),
        );
    }
    Ok(Exit::Ok)
}

/// A local backup: checksum and quick_check, or with `fast` the manifest's size.
fn local_check(path: &Path, bytes: u64, fast: bool) -> (&'static str, Option<String>) {
    match sqlite_vol::manifest::read_manifest(path) {
        None => ("", Some("no manifest beside it".to_string())),
        Some(m) if fast => (
            "manifest-size",
            (m.bytes != bytes)
                .then(|| format!("size {bytes} differs from the manifest's {}", m.bytes)),
        ),
        Some(_) => (
            "sha256+quick_check",
            sqlite_vol::verify(path, false, None)
                .err()
                .map(|err| err.to_string()),
        ),
    }
}

/// A backup fetched (downloaded, decrypted) into `staging`, then checksum and quick_check; removed after.
fn fetched_check(
    place: &Place,
    e: &Stored,
    policy: &sqlite_vol::store::Policy,
    staging: &Path,
) -> (&'static str, Option<String>) {
    let problem = sqlite_vol::store::fetch_with(place, &e.name, staging, policy)
        .and_then(|file| {
            let v = sqlite_vol::verify(&file, false, None);
            let _ = std::fs::remove_file(sqlite_vol::manifest::manifest_path(&file));
            let _ = std::fs::remove_file(&file);
            v
        })
        .err()
        .map(|err| err.to_string());
    ("fetched+sha256+quick_check", problem)
}

/// A backup in object storage (or encrypted): its manifest is read and the stored size compared with it.
fn remote_check(place: &Place, e: &Stored) -> (&'static str, Option<String>) {
    let problem = match sqlite_vol::store::manifest(place, &e.name) {
        Ok(Some(m)) if m.stored_bytes.unwrap_or(m.bytes) == e.bytes => None,
        Ok(Some(m)) => Some(format!(
            "size {} differs from the manifest's {}",
            e.bytes,
            m.stored_bytes.unwrap_or(m.bytes)
        )),
        Ok(None) => Some("no manifest".to_string()),
        Err(err) => Some(err.to_string()),
    };
    ("remote-manifest-size", problem)
}
