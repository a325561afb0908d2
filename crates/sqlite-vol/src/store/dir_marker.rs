//! A small file in a folder place written conditionally, for the lineage marker: created only if absent
//! (a hard link of a finished temporary file, which fails when the name exists), replaced only if
//! unchanged (under a lock file made with create-exclusive, then an atomic rename over the old file).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{fsx, identity, Error, Result};

/// A lock older than this was left by a killed writer and is broken.
const STALE_LOCK: Duration = Duration::from_secs(30);

/// The file's bytes, or `None` when it does not exist.
pub(super) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("reading the lineage marker", path, e)),
    }
}

/// A whole, fsynced temporary file beside `dir/name`.
fn staged(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    let tmp = dir.join(format!(".{name}.{}", identity::random_id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("writing the lineage marker", &tmp, e)
    })?;
    Ok(tmp)
}

/// Creates `dir/name` with `bytes` if it does not exist; `false` when it does.
pub(super) fn create(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool> {
    let tmp = staged(dir, name, bytes)?;
    let target = dir.join(name);
    let linked = fs::hard_link(&tmp, &target);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            fsx::sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("creating the lineage marker", &target, e)),
    }
}

/// Replaces `dir/name` with `bytes` if `still(current bytes)` holds; `false` when it changed.
pub(super) fn update(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    still: impl Fn(&[u8]) -> bool,
) -> Result<bool> {
    let target = dir.join(name);
    let lock = dir.join(format!(".{name}.lock"));
    let _held = Held::take(&lock)?;
    match read(&target)? {
        Some(cur) if still(&cur) => {}
        _ => return Ok(false),
    }
    let tmp = staged(dir, name, bytes)?;
    fs::rename(&tmp, &target).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("replacing the lineage marker", &target, e)
    })?;
    fsx::sync_dir(dir)?;
    Ok(true)
}

/// The lock file, removed when dropped.
struct Held(PathBuf);

impl Held {
    fn take(lock: &Path) -> Result<Held> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(lock) {
                Ok(_) => return Ok(Held(lock.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = fs::remove_file(lock);
                        continue;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(Error::io(
                            "locking the lineage marker",
                            lock,
                            std::io::Error::new(
                                std::io::ErrorKind::WouldBlock,
                                "another instance holds it; if none is running, remove the lock file",
                            ),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(Error::io("locking the lineage marker", lock, e)),
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
