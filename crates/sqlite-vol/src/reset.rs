//! Development's "start fresh": delete a database and its `-wal`, `-shm` and `-journal`, so that the next
//! start creates a new, empty one — made hard to point at data that matters.
//!
//! The rules, in the order [`reset`] applies them:
//! 1. A database on a persistent volume inside a container (a Docker named volume, a bind mount, a
//!    Kubernetes persistent volume: where production data lives) is refused unless forced ([`refusal`]).
//! 2. A database another process has open (the service) is refused: reset takes SQLite's own exclusive
//!    lock, which an open WAL connection prevents, so a running service is never deleted from under.
//! 3. The maintenance lock is taken (a backup, restore or migration in progress fails the reset, naming its
//!    holder) and held to the end; under it the safety backup is taken, then SQLite's exclusive lock again,
//!    held while the files are deleted, so nobody can write between the check and the deletion. A one-shot
//!    writer that slips in between the safety backup and the exclusive lock is the only thing the backup
//!    can miss; a service keeps its connections open and is caught by rule 2.
//!
//! Asking a person to confirm is the caller's part.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::backup::{self, BackupOptions};
use crate::fsx::{sidecar, SIDECARS};
use crate::lock::{MaintenanceLock, Wait};
use crate::{Error, Progress, Result, Volume};

/// Options for [`reset`].
pub struct ResetOptions<'a> {
    /// Reset even a database on a persistent volume inside a container.
    pub force: bool,
    /// Take a safety backup first, into this folder (`None`: no backup).
    pub safety_backup: Option<PathBuf>,
    /// How long to wait for the maintenance lock.
    pub wait: Wait,
    /// Called as the safety backup is copied.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

/// What [`reset`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reset {
    /// The files deleted (none when there was no database).
    pub deleted: Vec<PathBuf>,
    /// The safety backup of what was deleted, if one was taken.
    pub safety_backup: Option<PathBuf>,
}

/// Why a database on `volume` must not be reset unless forced, or `None` when it may be: it is inside a
/// container and the storage outlives the container, which is where production data is kept. A container's
/// own layer, a tmpfs, an anonymous volume or an emptyDir is not refused (its data is throwaway already), nor
/// is anything outside a container (a developer's machine).
pub fn refusal(volume: &Volume) -> Option<String> {
    (volume.in_container && volume.persistent == Some(true)).then(|| {
        format!(
            "this runs inside a container and the database is on {}, which {}",
            volume.kind.describe(),
            volume.kind.survives()
        )
    })
}

/// The database's files that exist: the main file, then `-wal`, `-shm`, `-journal`.
pub fn files(db: &Path) -> Vec<PathBuf> {
    std::iter::once(db.to_path_buf())
        .chain(SIDECARS.iter().map(|s| sidecar(db, s)))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// Deletes the database of `app` at `db` and its sidecar files, after the rules above.
///
/// # Errors
/// [`Error::ResetRefused`] for a persistent volume in a container without `force`, [`Error::InUse`] when
/// another process has it open, [`Error::Locked`] for a maintenance operation in progress, the backup's
/// errors for the safety backup; in each case nothing was deleted. [`Error::Io`] when a file cannot be
/// deleted (its message lists what already was).
pub fn reset(db: &Path, app: &str, volume: &Volume, opts: &ResetOptions<'_>) -> Result<Reset> {
    if files(db).is_empty() {
        return Ok(Reset::default());
    }
    if !opts.force {
        if let Some(why) = refusal(volume) {
            return Err(Error::ResetRefused {
                path: db.to_path_buf(),
                why,
            });
        }
    }
    let exists = db.is_file();
    if exists {
        // Rule 2 before spending time on a backup; it is checked again under the lock.
        drop(hold_exclusive(db)?);
    }
    let lock = MaintenanceLock::acquire(db, "reset", opts.wait)?;
    let safety_backup = match (&opts.safety_backup, exists) {
        (Some(dir), true) => {
            let b = BackupOptions {
                progress: opts.progress,
                ..BackupOptions::new(dir.clone())
            };
            Some(backup::backup_under(&lock, db, app, &b)?.path)
        }
        _ => None,
    };
    let held = if exists { hold_exclusive(db)? } else { None };
    let mut deleted = remove(&files(db))?;
    if let Some(conn) = held {
        // Closing may still touch the (now unlinked) files; anything it leaves at the old names is removed
        // below, while the maintenance lock keeps a starting service from creating a new database.
        conn.close()
            .map_err(|(_, e)| Error::sqlite(db, "closing the database", e))?;
    }
    for p in remove(&files(db))? {
        if !deleted.contains(&p) {
            deleted.push(p);
        }
    }
    // Best effort: a failure to sync the folder changes nothing about the outcome.
    let _ = crate::fsx::sync_dir(db.parent().unwrap_or(Path::new("/")));
    drop(lock);
    Ok(Reset {
        deleted,
        safety_backup,
    })
}

/// Removes `paths`, returning those that were there.
fn remove(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => removed.push(p.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let done = removed
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>();
                tracing::error!(file = %p.display(), already_deleted = ?done, "reset stopped part-way");
                return Err(Error::io("deleting", p, e));
            }
        }
    }
    Ok(removed)
}

/// Opens the database and takes SQLite's exclusive lock, held until the connection is closed.
/// [`Error::InUse`] when another process has the database open; `None` when the file is not a readable
/// SQLite database (there is nothing to lock, and nothing that could be using it).
fn hold_exclusive(db: &Path) -> Result<Option<Connection>> {
    let err = |e| Error::sqlite(db, "locking", e);
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(Duration::from_millis(500)).map_err(err)?;
    let locked = conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;");
    match locked {
        Ok(()) => Ok(Some(conn)),
        Err(e) => match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Err(Error::InUse {
                path: db.to_path_buf(),
            }),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Ok(None),
            _ => Err(err(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VolumeKind;

    fn mountinfo(root: &str, mount_point: &str, fs: &str, source: &str) -> String {
        format!(
            "1 0 254:0 / / rw,relatime - overlay overlay rw\n\
             2 1 254:1 {root} {mount_point} rw,relatime - {fs} {source} rw\n"
        )
    }

    #[test]
    fn refuses_persistent_volumes_inside_a_container() {
        let cases = [
            (
                "/var/lib/docker/volumes/accounts-data/_data",
                VolumeKind::DockerNamedVolume,
            ),
            ("/srv/accounts", VolumeKind::BindMount),
            (
                "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~csi/pvc-1234/mount",
                VolumeKind::KubernetesPersistentVolume,
            ),
        ];
        for (root, kind) in cases {
            let v = Volume::classify(
                &mountinfo(root, "/data", "ext4", "/dev/sdb"),
                Path::new("/data"),
                true,
            );
            assert_eq!(v.kind, kind, "{root}");
            let why = refusal(&v).unwrap_or_default();
            assert!(why.contains(kind.describe()), "{root}: {why:?}");
        }
    }

    #[test]
    fn allows_throwaway_storage_and_anything_outside_a_container() {
        let layer = Volume::classify(
            &mountinfo("/", "/x", "ext4", "/dev/sdb"),
            Path::new("/data"),
            true,
        );
        assert_eq!(layer.kind, VolumeKind::ContainerLayer);
        assert_eq!(refusal(&layer), None);
        let empty_dir = Volume::classify(
            &mountinfo(
                "/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~empty-dir/data",
                "/data",
                "ext4",
                "/dev/sdb",
            ),
            Path::new("/data"),
            true,
        );
        assert_eq!(empty_dir.kind, VolumeKind::KubernetesEmptyDir);
        assert_eq!(refusal(&empty_dir), None);
        let tmpfs = Volume::classify(
            &mountinfo("/", "/data", "tmpfs", "tmpfs"),
            Path::new("/data"),
            true,
        );
        assert_eq!(refusal(&tmpfs), None);
        let host = Volume::classify(
            "1 0 254:0 / / rw,relatime - ext4 /dev/vda rw\n",
            Path::new("/home/dev/app"),
            false,
        );
        assert_eq!(host.kind, VolumeKind::HostFilesystem);
        assert_eq!(refusal(&host), None);
    }
}
