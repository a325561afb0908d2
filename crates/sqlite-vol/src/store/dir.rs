//! A folder as a store: backups copied in whole (or encrypted on the way), checked against their manifest,
//! then named; encrypted ones are decrypted into a staging folder when they are fetched.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{crypt, Listing, Policy, Stored};
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
    let partial = dir.join(format!(".{name}.download"));
    let copy = || -> Result<(bool, u64, String, u64)> {
        let mut src = crypt::Outgoing::open(&m.path, recipients, 1 << 20)?;
        let mut out =
            fs::File::create(&partial).map_err(|e| Error::io("copying backup to", dir, e))?;
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
        Ok((encrypted, bytes, sha256, stored))
    };
    let (encrypted, bytes, sha256, stored) = match copy() {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    if bytes != m.bytes || sha256 != m.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(Error::BadBackup {
            path: m.path.clone(),
            reason: "the copy does not match its manifest; take a new backup".into(),
        });
    }
    let placed = Manifest {
        path: target.clone(),
        encrypted,
        stored_bytes: encrypted.then_some(stored),
        ..m.clone()
    };
    manifest::write_manifest(&placed)?;
    fs::rename(&partial, &target).map_err(|e| Error::io("naming backup", &target, e))?;
    fsx::sync_dir(dir)?;
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
    let source = file.display().to_string();
    let identities = policy.identities(&source)?;
    fs::create_dir_all(&into).map_err(|e| Error::io("creating directory", &into, e))?;
    let partial = into.join(format!(".{name}.download"));
    let staged = (|| -> Result<crypt::Staged> {
        let mut f = fs::File::open(&file).map_err(|e| Error::io("reading backup", &file, e))?;
        let mut sink = crypt::Incoming::create(&partial, &source, Some(identities))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = crypt::read_full(&mut f, &mut buf)
                .map_err(|e| Error::io("reading backup", &file, e))?;
            if n == 0 {
                break;
            }
            sink.push(&buf[..n])?;
        }
        if let Some(stored) = m.stored_bytes.filter(|s| *s != sink.received()) {
            return Err(Error::Encryption {
                path: file.clone(),
                reason: format!(
                    "it is {} bytes, its manifest says {stored}: it is truncated or was replaced; nothing was \
                     kept. Try an older backup",
                    sink.received()
                ),
            });
        }
        sink.finish()
    })();
    let (bytes, sha256) = match staged {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    if bytes != m.bytes || sha256 != m.sha256 {
        let _ = fs::remove_file(&partial);
        return Err(Error::BadBackup {
            path: file,
            reason: format!(
                "it decrypts to {bytes} bytes (sha256 {sha256}), its manifest says {} bytes, {}; nothing was \
                 kept. Try an older backup",
                m.bytes, m.sha256
            ),
        });
    }
    manifest::write_manifest(&Manifest {
        path: target.clone(),
        encrypted: false,
        stored_bytes: None,
        ..m
    })?;
    fs::rename(&partial, &target).map_err(|e| Error::io("naming backup", &target, e))?;
    fsx::sync_dir(&into)?;
    Ok(target)
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
