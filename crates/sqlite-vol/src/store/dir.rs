//! A folder as a store: backups copied in whole (or encrypted on the way), checked against their manifest,
//! then named; encrypted ones are decrypted into a staging folder when they are fetched, and a restore takes
//! one straight into its staged file (copied or decrypted, hashed on the way). Staging and comparing with
//! the manifest is `stage`'s.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{crypt, stage, Fetched, Listing, Policy, Stored};
use crate::fsx;
use crate::manifest::{self, Manifest};
use crate::{Error, Result};

/// Copies the finished backup `m` into `dir` as `name` (encrypted to `recipients` when there are any):
/// staged under a hidden name, the plaintext hashed against the manifest as it is read, the manifest
/// written, then the copy renamed into place and the folder fsynced. Returns where it is and its manifest.
pub(super) fn copy_to(
    m: &Manifest,
    dir: &Path,
    name: &str,
    recipients: &[age::x25519::Recipient],
) -> Result<(String, Manifest)> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let target = dir.join(name);
    if target == m.path {
        if !recipients.is_empty() {
            return Err(Error::Config {
                variable: crate::settings::BACKUP_RECIPIENTS.into(),
                value: dir.display().to_string(),
                reason: "the place is the backup folder itself, where a backup cannot be replaced by its \
                         ciphertext; send encrypted backups to another folder or a bucket"
                    .into(),
            });
        }
        return Ok((target.display().to_string(), m.clone()));
    }
    let partial = stage::partial(dir, name);
    let source = m.path.display().to_string();
    let expected = stage::Expected {
        manifest: Some(m),
        source: &source,
        what: "the copy",
        fix: "Take a new backup".into(),
    };
    let (_, _, (encrypted, stored)) = stage::stage(&partial, &expected, || {
        let mut src = crypt::Outgoing::open(&m.path, recipients, 1 << 20)?;
        // Owner-only, as every backup sqlite-vol writes, ciphertext or not.
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| Error::io("copying backup to", dir, e))?;
        loop {
            let piece = src.next()?;
            if piece.is_empty() {
                break;
            }
            out.write_all(&piece)
                .map_err(|e| Error::io("copying backup to", dir, e))?;
        }
        out.sync_all()
            .map_err(|e| Error::io("copying backup to", dir, e))?;
        let encrypted = src.encrypted();
        let (bytes, sha256, stored) = src.totals();
        Ok((bytes, sha256, (encrypted, stored)))
    })?;
    let placed = Manifest {
        path: target.clone(),
        encrypted,
        stored_bytes: encrypted.then_some(stored),
        ..m.clone()
    };
    stage::name(&partial, &placed)?;
    Ok((target.display().to_string(), placed))
}

/// Backup `name` of `dir` as a plaintext file: itself, or, when its manifest says it is encrypted, decrypted
/// into `staging` (under `.decrypted/` when `staging` is `dir`) and checked against the manifest first.
pub(super) fn fetch(dir: &Path, name: &str, staging: &Path, policy: &Policy) -> Result<PathBuf> {
    let file = dir.join(name);
    let Some(m) = manifest::read_manifest(&file).filter(|m| m.encrypted) else {
        return Ok(file);
    };
    let into = if staging == dir {
        staging.join(".decrypted")
    } else {
        staging.to_path_buf()
    };
    let target = into.join(name);
    if manifest::read_manifest(&target).is_some_and(|l| !l.encrypted && l.sha256 == m.sha256)
        && fsx::hash_file(&target).is_ok_and(|(n, h)| n == m.bytes && h == m.sha256)
    {
        return Ok(target);
    }
    let identities = policy.identities(&file.display().to_string())?;
    fs::create_dir_all(&into).map_err(|e| Error::io("creating directory", &into, e))?;
    let partial = stage::partial(&into, name);
    write_plain(&file, Some(&m), Some(identities), &partial)?;
    stage::name_plain(&partial, &target, m)?;
    Ok(target)
}

/// Backup `name` of `dir` written straight into the new file `to` (decrypted on the way when its manifest
/// says it is encrypted), hashed as it is written and compared with its manifest, if it has one. On any
/// failure `to` is removed.
pub(super) fn fetch_into(dir: &Path, name: &str, to: &Path, policy: &Policy) -> Result<Fetched> {
    let file = dir.join(name);
    let m = manifest::read_manifest(&file);
    let identities = match &m {
        Some(m) if m.encrypted => Some(policy.identities(&file.display().to_string())?),
        _ => None,
    };
    let (bytes, sha256) = write_plain(&file, m.as_ref(), identities, to)?;
    Ok(Fetched {
        bytes,
        sha256,
        manifest: m,
    })
}

/// Writes the plaintext of the backup `file` into the new file `partial` in one read: copied while it is
/// hashed, or, with `identities`, decrypted; compared with `m` (see [`stage::stage`]).
fn write_plain(
    file: &Path,
    m: Option<&Manifest>,
    identities: Option<Vec<age::x25519::Identity>>,
    partial: &Path,
) -> Result<(u64, String)> {
    let source = file.display().to_string();
    let expected = stage::Expected {
        manifest: m,
        source: &source,
        what: match identities {
            Some(_) => "the decrypted bytes",
            None => "the copied bytes",
        },
        fix: "Try an older backup".into(),
    };
    let (bytes, sha256, ()) = stage::stage(partial, &expected, || {
        let Some(identities) = identities else {
            let (bytes, sha256) = fsx::copy_hashing(file, partial)?;
            return Ok((bytes, sha256, ()));
        };
        let mut f = fs::File::open(file).map_err(|e| Error::io("reading backup", file, e))?;
        let mut sink = crypt::Incoming::create(partial, &source, Some(identities))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = crypt::read_full(&mut f, &mut buf)
                .map_err(|e| Error::io("reading backup", file, e))?;
            if n == 0 {
                break;
            }
            sink.push(&buf[..n])?;
        }
        expected.stored(sink.received())?;
        let (bytes, sha256) = sink.finish()?;
        Ok((bytes, sha256, ()))
    })?;
    Ok((bytes, sha256))
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
