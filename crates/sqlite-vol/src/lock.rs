//! The maintenance lock: one migration, backup or restore at a time, across processes.
//!
//! A lock file beside the database (`<db>.lock`, mode 0600) is locked exclusively with `flock` (through
//! fs2). The kernel drops the lock when its holder dies, so a lock left by a killed process is simply taken
//! over; there is nothing stale to clean. While held, the file holds the holder's pid, operation and start
//! time as JSON, so that a second operation fails with "restore in progress by pid N since T", or waits if
//! asked to.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt;

use crate::{Error, Result};

/// How long to wait for a lock another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once with [`Error::Locked`] (after a short grace of 200 ms for a holder that is just
    /// finishing).
    No,
    /// Wait up to this long, then fail with [`Error::Locked`].
    For(Duration),
    /// Wait as long as it takes.
    Forever,
}

/// Who holds the maintenance lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// What it is doing: "backup", "restore", "migrate", …
    pub operation: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl std::fmt::Display for Holder {
    /// `backup in progress by pid 42 since 2026-12-01T10:00:00Z`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in progress by pid {} since {}",
            self.operation, self.pid, self.since
        )
    }
}

/// A held maintenance lock; released on drop (and by the kernel if the process dies).
#[derive(Debug)]
pub struct MaintenanceLock {
    file: File,
    path: PathBuf,
}

/// The lock file for a database: `<db>.lock` beside it.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

impl MaintenanceLock {
    /// Takes the maintenance lock of the database at `db` for `operation`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use sqlite_vol::lock::{MaintenanceLock, Wait};
    /// let tmp = tempfile::tempdir()?;
    /// let db = tmp.path().join("app.db");
    /// let held = MaintenanceLock::acquire(&db, "backup", Wait::No)?;
    /// assert_eq!(MaintenanceLock::holder(&db).map(|h| h.operation), Some("backup".to_string()));
    /// drop(held);
    /// assert!(MaintenanceLock::holder(&db).is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Locked`] naming the holder when another process holds it past `wait`; [`Error::Io`] when the
    /// lock file cannot be created.
    pub fn acquire(db: &Path, operation: &str, wait: Wait) -> Result<MaintenanceLock> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        let deadline = match wait {
            Wait::No => Some(Instant::now() + Duration::from_millis(200)),
            Wait::For(d) => Some(Instant::now() + d),
            Wait::Forever => None,
        };
        loop {
            match file.try_lock_exclusive() {
                Ok(()) => break,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(11) =>
                {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        let h = read_holder(&path).unwrap_or(Holder {
                            pid: 0,
                            operation: "another operation".into(),
                            since: "an unknown time".into(),
                        });
                        return Err(Error::Locked {
                            lock: path,
                            operation: h.operation,
                            pid: h.pid,
                            since: h.since,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(Error::io("locking", &path, e)),
            }
        }
        let mut lock = MaintenanceLock { file, path };
        let holder = Holder {
            pid: std::process::id(),
            operation: operation.into(),
            since: crate::clock::now_rfc3339(),
        };
        lock.write_holder(&holder)?;
        tracing::debug!(lock = %lock.path.display(), operation, "maintenance lock taken");
        Ok(lock)
    }

    /// Who holds the lock of the database at `db`, if anyone. Changes nothing.
    pub fn holder(db: &Path) -> Option<Holder> {
        let path = lock_path(db);
        let file = File::open(&path).ok()?;
        // A shared lock that succeeds proves nobody holds the exclusive one.
        if file.try_lock_shared().is_ok() {
            let _ = FileExt::unlock(&file);
            return None;
        }
        read_holder(&path)
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a lock that is not the lock of `db`, for the `*_under` functions that trust a caller's lock.
    ///
    /// # Errors
    /// [`Error::Config`] naming both.
    pub(crate) fn ensure_lock_of(&self, db: &Path) -> Result<()> {
        if self.path == lock_path(db) {
            return Ok(());
        }
        Err(Error::Config {
            variable: "maintenance lock".into(),
            value: self.path.display().to_string(),
            reason: format!("it is not the lock of {}", db.display()),
        })
    }

    fn write_holder(&mut self, holder: &Holder) -> Result<()> {
        let json = serde_json::to_vec(holder).unwrap_or_default();
        let r = (|| {
            self.file.set_len(0)?;
            self.file.rewind()?;
            self.file.write_all(&json)
        })();
        r.map_err(|e| Error::io("writing lock file", &self.path, e))
    }
}

impl Drop for MaintenanceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_naming_the_holder() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("app.db");
        let _held = MaintenanceLock::acquire(&db, "restore", Wait::No)?;
        // flock locks belong to the open file description, so a second open in this process conflicts too.
        let err = MaintenanceLock::acquire(&db, "backup", Wait::No).expect_err("lock is held");
        let msg = err.to_string();
        assert!(
            msg.contains("restore in progress by pid")
                && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        assert!(err.is_locked());
        Ok(())
    }

    #[test]
    fn waiting_acquire_gets_the_lock_when_released() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("app.db");
        let held = MaintenanceLock::acquire(&db, "migrate", Wait::No)?;
        let db2 = db.clone();
        let t = std::thread::spawn(move || {
            MaintenanceLock::acquire(&db2, "backup", Wait::For(Duration::from_secs(10))).map(|_| ())
        });
        std::thread::sleep(Duration::from_millis(150));
        drop(held);
        t.join().map_err(|_| "thread panicked")??;
        Ok(())
    }

    #[test]
    fn lock_file_is_private_and_left_empty_after_release() -> Result<(), Box<dyn std::error::Error>>
    {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("app.db");
        drop(MaintenanceLock::acquire(&db, "backup", Wait::No)?);
        let meta = std::fs::metadata(lock_path(&db))?;
        assert_eq!(
            meta.permissions().mode() & 0o077,
            0,
            "lock file readable by others"
        );
        assert_eq!(meta.len(), 0);
        Ok(())
    }

    #[test]
    fn stale_holder_text_without_a_lock_is_ignored() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("app.db");
        std::fs::write(
            lock_path(&db),
            br#"{"pid":999999,"operation":"restore","since":"2020-01-01T00:00:00Z"}"#,
        )?;
        assert!(MaintenanceLock::holder(&db).is_none());
        let _l = MaintenanceLock::acquire(&db, "backup", Wait::No)?;
        Ok(())
    }
}
