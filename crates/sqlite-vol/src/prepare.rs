//! Making the database directory ready, and proving it is usable before SQLite touches it.
//!
//! SQLite needs to create `-wal`, `-shm` and journal files beside the database, so a writable file is not
//! enough: the directory itself must take new files. [`prepare`] creates the directory tree, then creates,
//! writes, fsyncs and removes a probe file. A failure names the path, this process's uid and gid, the
//! directory's owner and mode, and the fix; a read-only mount gets its own error. It also reports free space.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result, Volume};

/// What [`prepare`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirReport {
    /// The directory, now existing and writable.
    pub dir: PathBuf,
    /// Whether this call created it.
    pub created: bool,
    /// Bytes available to this process on its filesystem.
    pub free_bytes: Option<u64>,
    /// Size of the filesystem.
    pub total_bytes: Option<u64>,
}

/// Creates `dir` if missing and proves this process can create, write, fsync and remove files in it. If
/// `db_file` exists it must be writable too.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tmp = tempfile::tempdir()?;
/// let dir = tmp.path().join("data");
/// let report = sqlite_vol::prepare::prepare(&dir, None, &sqlite_vol::Volume::detect(&dir))?;
/// assert!(report.created && dir.is_dir());
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::ReadOnly`] on a read-only mount, [`Error::NotWritable`] when permissions forbid it (with the
/// `chown` fix), [`Error::NoSpace`] on a full filesystem, [`Error::Io`] otherwise (for example when `dir` is
/// a file).
pub fn prepare(dir: &Path, db_file: Option<&Path>, volume: &Volume) -> Result<DirReport> {
    let existed = dir.exists();
    if existed && !dir.is_dir() {
        return Err(Error::Io {
            action: "using as the database directory",
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "it exists and is not a directory",
            ),
        });
    }
    if !existed {
        std::fs::create_dir_all(dir).map_err(|e| classify(e, dir, volume, "creating directory"))?;
    }
    probe(dir).map_err(|e| classify(e, dir, volume, "writing a probe file in"))?;
    if let Some(file) = db_file.filter(|f| f.exists()) {
        // Ask the kernel (access(2) with the effective ids: owner, groups including supplementary ones,
        // ACLs) instead of opening the file: closing any descriptor of a database would drop the SQLite
        // locks this process may already hold on it (POSIX locks belong to the process).
        let access = rustix::fs::accessat(
            rustix::fs::CWD,
            file,
            rustix::fs::Access::WRITE_OK,
            rustix::fs::AtFlags::EACCESS,
        );
        if let Err(e) = access {
            return Err(classify(e.into(), file, volume, "opening for writing"));
        }
    }
    Ok(DirReport {
        dir: dir.to_path_buf(),
        created: !existed,
        free_bytes: fs2::available_space(dir).ok(),
        total_bytes: fs2::total_space(dir).ok(),
    })
}

/// Create, write, fsync and remove a uniquely named file.
fn probe(dir: &Path) -> std::io::Result<()> {
    let name = format!(".sqlite-vol-probe-{}-{}", std::process::id(), nanos());
    let path = dir.join(name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        f.write_all(b"probe")?;
        f.sync_all()
    })();
    let removed = std::fs::remove_file(&path);
    result?;
    removed
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Turns an I/O error on `path` into the error that tells the user what to do.
fn classify(e: std::io::Error, path: &Path, volume: &Volume, action: &'static str) -> Error {
    const EROFS: i32 = 30;
    match e.raw_os_error() {
        Some(EROFS) => Error::ReadOnly {
            path: path.to_path_buf(),
            mount_point: volume
                .mount_point
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "?".into()),
        },
        _ if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // Report the nearest existing ancestor: that is the folder whose owner must change.
            let owner = nearest_existing(path);
            let meta = std::fs::metadata(&owner).ok();
            let (uid, gid) = process_ids();
            let owner_uid = meta.as_ref().map(|m| m.uid()).unwrap_or(u32::MAX);
            let owner_gid = meta.as_ref().map(|m| m.gid()).unwrap_or(u32::MAX);
            Error::NotWritable {
                fix: fix_for(&owner, volume, (uid, gid), (owner_uid, owner_gid)),
                path: owner,
                uid,
                gid,
                owner_uid,
                owner_gid,
                mode: meta.as_ref().map(|m| m.mode() & 0o7777).unwrap_or(0),
                source: e,
            }
        }
        _ => Error::io(action, path, e),
    }
}

/// How to make `dir` writable for (uid, gid): `chown` where the folder really lives (on a bind mount inside
/// a container that is the host folder, not the path the container sees), or run as the owner when the
/// owner is not root (never advise running as root).
fn fix_for(
    dir: &Path,
    volume: &Volume,
    (uid, gid): (u32, u32),
    (owner_uid, owner_gid): (u32, u32),
) -> String {
    let where_ = match (&volume.mount_point, &volume.root) {
        (Some(mp), Some(root)) if volume.in_container && mp.as_path() != Path::new("/") => {
            let rest = dir.strip_prefix(mp).unwrap_or(Path::new(""));
            let host = Path::new(root).join(rest);
            match volume.kind {
                crate::VolumeKind::BindMount => {
                    format!("on the host: `chown -R {uid}:{gid} {}`", host.display())
                }
                _ => format!(
                    "in a one-off root container on the same volume: `chown -R {uid}:{gid} {}`",
                    dir.display()
                ),
            }
        }
        _ => format!("`chown -R {uid}:{gid} {}`", dir.display()),
    };
    let as_owner = if owner_uid != 0 && owner_uid != u32::MAX {
        format!(", or run the process as the owner (`--user {owner_uid}:{owner_gid}`)")
    } else {
        String::new()
    };
    format!("{where_}{as_owner}, or mount a volume this user can write")
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// This process's effective uid and gid, from `/proc/self/status` (no `unsafe` needed); `u32::MAX` when
/// unknown.
pub fn process_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX)
    };
    (field("Uid:"), field("Gid:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_tree_and_leaves_no_probe_behind() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("a/b/c");
        let r = prepare(&dir, None, &Volume::unknown())?;
        assert!(r.created);
        assert!(r.free_bytes.is_some_and(|b| b > 0));
        assert_eq!(
            std::fs::read_dir(&dir)?.count(),
            0,
            "probe file left behind"
        );
        let r = prepare(&dir, None, &Volume::unknown())?;
        assert!(!r.created);
        Ok(())
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x")?;
        let err = prepare(&file, None, &Volume::unknown()).expect_err("a file is not a directory");
        let cause = std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(cause.contains("not a directory"), "{err}: {cause}");
        Ok(())
    }

    #[test]
    fn process_ids_are_read() {
        let (uid, gid) = process_ids();
        assert_ne!(uid, u32::MAX);
        assert_ne!(gid, u32::MAX);
    }
}
