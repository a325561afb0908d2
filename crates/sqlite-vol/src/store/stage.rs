//! Staging a backup under a hidden name: the one place where a copy, a decryption or a download is written
//! whole, compared with the manifest it must match, and removed when it does not, before anything gives it
//! a name.
//!
//! Every way a backup file arrives somewhere (copied or encrypted into a folder place, decrypted out of one,
//! downloaded from a bucket, or fetched straight into the staged file of a restore) goes through [`stage`]:
//! the writer returns the size and sha256 of the plaintext it wrote, and a file whose figures differ from
//! its manifest is removed with a refusal that says what to do. [`name`] then gives a staged backup its
//! name in a backup folder, manifest first.

use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Manifest};
use crate::{fsx, Error, Result};

/// What a staged file must match, and how a refusal names it.
pub(super) struct Expected<'a> {
    /// The manifest it must match (`None`: a folder backup without one, written but compared with nothing).
    pub(super) manifest: Option<&'a Manifest>,
    /// The backup as the user knows it (a path or URL), named in a refusal.
    pub(super) source: &'a str,
    /// What was staged, as a refusal says it: "the downloaded bytes", "the copy".
    pub(super) what: &'static str,
    /// What to do instead, ending a refusal.
    pub(super) fix: String,
}

impl Expected<'_> {
    /// Refuses stored bytes whose count is not what the manifest says is stored (`stored_bytes` for
    /// ciphertext, `bytes` for plaintext), before they are decrypted or compared to the end: a truncated or
    /// replaced object says so rather than failing as damaged.
    ///
    /// # Errors
    /// [`Error::Encryption`] for ciphertext, [`Error::BadBackup`] for plaintext, naming both sizes.
    pub(super) fn stored(&self, received: u64) -> Result<()> {
        let Some(m) = self.manifest else {
            return Ok(());
        };
        let stored = match (m.stored_bytes, m.encrypted) {
            (Some(s), _) => s,
            (None, false) => m.bytes,
            // Ciphertext of unknown size: age and the plaintext hash judge it.
            (None, true) => return Ok(()),
        };
        if stored == received {
            return Ok(());
        }
        let path = PathBuf::from(self.source);
        let reason = format!(
            "it is {received} bytes, its manifest says {stored}: it is truncated or was replaced; nothing was \
             kept. {}",
            self.fix
        );
        Err(match m.stored_bytes {
            Some(_) => Error::Encryption { path, reason },
            None => Error::BadBackup { path, reason },
        })
    }

    /// Refuses plaintext whose size or sha256 is not the manifest's.
    fn matches(&self, bytes: u64, sha256: &str) -> Result<()> {
        match self.manifest {
            Some(m) if m.bytes != bytes || m.sha256 != sha256 => Err(Error::BadBackup {
                path: PathBuf::from(self.source),
                reason: format!(
                    "{} came to {bytes} bytes (sha256 {sha256}), which do not match its manifest ({} bytes, \
                     {}); nothing was kept. {}",
                    self.what, m.bytes, m.sha256, self.fix
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The hidden name a backup `name` is staged under in `dir` before it gets its own.
pub(super) fn partial(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.download"))
}

/// Writes the new file `partial` with `write`, which returns the plaintext's size and sha256 (and whatever
/// else it reports), then compares them with the manifest. A stale `partial` from an earlier, interrupted
/// attempt is removed first; on any failure (writing, or a mismatch) `partial` is removed, so nothing of
/// it is left.
///
/// # Errors
/// What `write` returns; [`Error::BadBackup`] when the plaintext does not match the manifest.
pub(super) fn stage<T>(
    partial: &Path,
    expected: &Expected<'_>,
    write: impl FnOnce() -> Result<(u64, String, T)>,
) -> Result<(u64, String, T)> {
    let _ = fs::remove_file(partial);
    let written = write().and_then(|w| expected.matches(w.0, &w.1).map(|()| w));
    if written.is_err() {
        let _ = fs::remove_file(partial);
    }
    written
}

/// Gives the staged, matching `partial` the name `m.path` in its folder: `partial` fsynced, the manifest
/// (a backup only counts once its manifest is there), then the rename, then the folder fsynced. On failure
/// `partial` is removed.
///
/// # Errors
/// [`Error::Io`] / [`Error::NoSpace`] when the manifest cannot be written or the file renamed.
pub(super) fn name(partial: &Path, m: &Manifest) -> Result<()> {
    let target = &m.path;
    let named = fsx::sync_file(partial)
        .and_then(|()| manifest::write_manifest(m))
        .and_then(|()| {
            fs::rename(partial, target).map_err(|e| Error::io("naming backup", target, e))
        });
    if named.is_err() {
        let _ = fs::remove_file(partial);
    }
    named?;
    fsx::sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// [`name`] for a local copy of a stored backup at `target`: the copy is plaintext whatever the stored object
/// was, and its manifest (the stored one's, `m`) says so.
pub(super) fn name_plain(partial: &Path, target: &Path, m: Manifest) -> Result<()> {
    let local = Manifest {
        path: target.to_path_buf(),
        encrypted: false,
        stored_bytes: None,
        ..m
    };
    name(partial, &local)
}
