//! `sqlite-vol reset`: development's "start fresh". It deletes the database and its `-wal`, `-shm` and
//! `-journal`, so that the next start of the service creates a new, empty one — and it is made hard to
//! point at data that matters.
//!
//! The guards, in the order they run:
//! 1. A database on a persistent volume inside a container (a Docker named volume, a bind mount, a
//!    Kubernetes persistent volume: where production data lives) is refused unless `--force` is given.
//! 2. On a terminal the database's file name must be typed back; without a terminal `--yes` is required.
//! 3. A database another process has open (the service) is refused: reset takes SQLite's own exclusive
//!    lock, which an open WAL connection prevents, so a running service is never deleted from under.
//! 4. The maintenance lock is taken (a backup, restore or migration in progress fails the reset, naming its
//!    holder) and held to the end; under it the safety backup is taken (`--no-backup` skips it), then
//!    SQLite's exclusive lock again, held while the files are deleted, so nobody can write between the check
//!    and the deletion. A one-shot writer that slips in between the safety backup and the exclusive lock is
//!    the only thing the backup can miss; a service keeps its connections open and is caught by guard 3.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use sqlite_vol::backup::Progress;
use sqlite_vol::location::{sidecar, SIDECARS};
use sqlite_vol::lock::MaintenanceLock;
use sqlite_vol::rusqlite::{Connection, ErrorCode, OpenFlags};
use sqlite_vol::{BackupOptions, Volume};

use super::{Exit, Refused, Target};
use crate::cli::ResetArgs;
use crate::ui;

/// Deletes the target database after its guards pass.
pub fn run(t: &Target, a: &ResetArgs) -> anyhow::Result<Exit> {
    let db = &t.loc.path;
    let present = files(db);
    if present.is_empty() {
        if a.json {
            ui::json(&serde_json::json!({ "path": db, "deleted": [], "safety_backup": null }))?;
        } else {
            ui::note(
                t.quiet,
                format_args!(
                    "no database at {} ({}): nothing to reset",
                    db.display(),
                    t.loc.source
                ),
            );
        }
        return Ok(Exit::Ok);
    }
    let volume = Volume::detect(&t.loc.dir);
    if !a.force {
        if let Some(why) = refusal(&volume) {
            return Err(Refused(format!(
                "refusing to reset {}: {why}. reset is for development databases; if you really mean to \
                 delete this one, pass --force as well (a safety backup is still taken unless --no-backup)",
                db.display()
            ))
            .into());
        }
    }
    let exists = db.is_file();
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to reset {} without confirmation: stdin is not a terminal. Pass --yes to delete \
                 it (a safety backup is taken first unless --no-backup)",
                db.display()
            );
        }
        confirm(t, a, &volume, &present)?;
    }
    let wait = super::wait(a.wait);
    if exists {
        // Guard 3 before spending time on a backup; it is checked again under the lock.
        drop(hold_exclusive(db)?);
    }
    let lock = MaintenanceLock::acquire(db, "reset", wait)
        .with_context(|| format!("resetting {}; nothing was deleted", db.display()))?;
    let safety = if exists && !a.no_backup {
        Some(safety_backup(t, a, &lock)?)
    } else {
        None
    };
    let held = if exists { hold_exclusive(db)? } else { None };
    let mut deleted = remove(&files(db))?;
    if let Some(conn) = held {
        // Closing may still touch the (now unlinked) files; anything it leaves at the old names is removed
        // below, while the maintenance lock keeps a starting service from creating a new database.
        conn.close()
            .map_err(|(_, e)| e)
            .context("closing the database")?;
    }
    for p in remove(&files(db))? {
        if !deleted.contains(&p) {
            deleted.push(p);
        }
    }
    sync_dir(&t.loc.dir);
    drop(lock);

    if a.json {
        ui::json(&serde_json::json!({
            "path": db,
            "deleted": deleted,
            "safety_backup": safety,
        }))?;
    } else {
        for p in &deleted {
            ui::line(p.display())?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "deleted {} file(s); the next start creates a new, empty database at {}",
                deleted.len(),
                db.display()
            ),
        );
        match &safety {
            Some(p) => ui::note(
                t.quiet,
                format_args!(
                    "the deleted database was saved as {}; bring it back with `sqlite-vol restore {}`",
                    p.display(),
                    p.display()
                ),
            ),
            None if exists => ui::note(t.quiet, "no safety backup was taken (--no-backup)"),
            None => {}
        }
    }
    Ok(Exit::Ok)
}

/// Why a database on `volume` must not be reset without `--force`, or `None` when it may be: it is inside a
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
fn files(db: &Path) -> Vec<PathBuf> {
    std::iter::once(db.to_path_buf())
        .chain(SIDECARS.iter().map(|s| sidecar(db, s)))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// Removes `paths`, returning those that were there.
fn remove(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => removed.push(p.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "deleting {} (already deleted: {})",
                        p.display(),
                        if removed.is_empty() {
                            "nothing".to_string()
                        } else {
                            removed
                                .iter()
                                .map(|r| r.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )
                })
            }
        }
    }
    Ok(removed)
}

/// Opens the database and takes SQLite's exclusive lock, held until the connection is closed; an error
/// naming the cause when another process has the database open. `None` when the file is not a readable
/// SQLite database (there is nothing to lock, and nothing that could be using it).
fn hold_exclusive(db: &Path) -> anyhow::Result<Option<Connection>> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", db.display()))?;
    conn.busy_timeout(Duration::from_millis(500))?;
    let locked = conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;");
    match locked {
        Ok(()) => Ok(Some(conn)),
        Err(e) => match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => bail!(
                "{} is open in another process (the service?): stop it first, then reset; nothing was \
                 deleted",
                db.display()
            ),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Ok(None),
            _ => Err(e).with_context(|| format!("locking {}", db.display())),
        },
    }
}

/// Takes the safety backup under the held maintenance lock and returns its path.
fn safety_backup(t: &Target, a: &ResetArgs, lock: &MaintenanceLock) -> anyhow::Result<PathBuf> {
    let bar = ui::Bar::new(t.quiet || a.json, "backing up");
    let update = |p: Progress| bar.update(p);
    // The lock is already held, so no wait; no retention, a quick check.
    let opts = BackupOptions {
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
        ..BackupOptions::new(t.backup_dir.clone())
    };
    let m =
        sqlite_vol::backup::backup_under(lock, &t.loc.path, &t.app, &opts).with_context(|| {
            format!(
            "taking the safety backup of {} into {}; nothing was deleted (--no-backup skips it)",
            t.loc.path.display(),
            t.backup_dir.display()
        )
        })?;
    bar.clear();
    Ok(m.path)
}

/// Describes what will be deleted and asks for the database's file name; anything else declines.
fn confirm(t: &Target, a: &ResetArgs, volume: &Volume, present: &[PathBuf]) -> anyhow::Result<()> {
    let name = t.loc.file_name();
    let mut err = std::io::stderr().lock();
    writeln!(err, "reset deletes, for good:")?;
    for p in present {
        let bytes = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        writeln!(err, "  {} ({})", p.display(), ui::size(bytes))?;
    }
    writeln!(
        err,
        "on {}; the next start creates a new, empty database.",
        volume.kind.describe()
    )?;
    if a.no_backup {
        writeln!(err, "NO safety backup will be taken (--no-backup).")?;
    } else {
        writeln!(
            err,
            "A safety backup goes to {} first.",
            t.backup_dir.display()
        )?;
    }
    write!(err, "Type the database's file name ({name}) to delete it: ")?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != name {
        return Err(Refused(format!(
            "reset cancelled: {:?} is not {name:?}; nothing was deleted",
            answer.trim()
        ))
        .into());
    }
    Ok(())
}

/// Makes the deletions durable (best effort: a failure here changes nothing about the outcome).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlite_vol::VolumeKind;

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
