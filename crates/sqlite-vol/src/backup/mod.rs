//! Online backups with the SQLite backup API: consistent, checked, fsynced, named by time.
//!
//! A backup pins one read transaction on the source (so that commits by other processes cannot restart the
//! copy), copies pages in chunks through the backup API while reporting progress and flushing the copy to
//! disk as it grows (one large fsync at the end would stall writers on the same filesystem), then releases
//! the snapshot and runs a PASSIVE checkpoint so the writer is not left a large WAL. The copy is written to a
//! hidden `.partial` name in the target folder, switched to rollback-journal mode so it stands alone, checked
//! (`quick_check`, or `integrity_check` on request: beside the copy on the snapshot it copies when nobody
//! commits meanwhile, else on the copy once made), fsynced, and only then given its final name
//! `<app>-<yyyymmddTHHMMSSZ>.db` with mode 0600, after its manifest `<name>.json` (sha256, size, pages,
//! schema version, application id, source, time, tool version). A crash at any point leaves either a
//! complete backup with its manifest or a `.partial` file that the next backup removes; never a file that
//! looks good and is not. Retention keeps the newest N and never touches files outside the naming scheme.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::fsx::{self, hash_file, remove_with_sidecars, sync_dir, SIDECARS};
use crate::lock::{MaintenanceLock, Wait};
use crate::manifest::{self, free_name, manifest_path, parse_name, write_manifest, Manifest};
use crate::sql::{classify, copy_pages, pragma_u64, Progress};
use crate::verify::{check_file, FileFacts};
use crate::{clock, Error, Result};
use beside::{Outcome, Watch};

mod beside;

/// Options for [`backup`].
pub struct BackupOptions<'a> {
    /// The folder to write into (created if missing).
    pub dir: PathBuf,
    /// Keep only the newest N backups of this app in `dir` afterwards (the new one always stays).
    pub keep: Option<usize>,
    /// Run a full `integrity_check` on the copy instead of `quick_check`.
    pub full_check: bool,
    /// How long to wait for the maintenance lock.
    pub wait: Wait,
    /// Called after each step.
    pub progress: Option<&'a dyn Fn(Progress)>,
}

impl BackupOptions<'_> {
    /// Options writing into `dir`, with a quick check, no retention and no waiting.
    pub fn new(dir: impl Into<PathBuf>) -> BackupOptions<'static> {
        BackupOptions {
            dir: dir.into(),
            keep: None,
            full_check: false,
            wait: Wait::No,
            progress: None,
        }
    }
}

/// Takes an online backup of the database at `db` for `app`, under the maintenance lock.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tmp = tempfile::tempdir()?;
/// let db = tmp.path().join("app.db");
/// rusqlite::Connection::open(&db)?.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")?;
/// let m = sqlite_vol::backup::backup(&db, "app", &sqlite_vol::BackupOptions::new(tmp.path().join("b")))?;
/// assert!(m.path.exists() && m.page_count > 0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Locked`] when another maintenance operation runs, [`Error::NoSpace`] when the target fills up
/// (the partial file is removed), [`Error::NotADatabase`] when the source is not SQLite, [`Error::Io`] or
/// [`Error::Sqlite`] otherwise. The source database is never changed.
pub fn backup(db: &Path, app: &str, opts: &BackupOptions<'_>) -> Result<Manifest> {
    if !db.is_file() {
        return Err(Error::io(
            "backing up",
            db,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no database file there (check --db / DB_PATH)",
            ),
        ));
    }
    let _lock = MaintenanceLock::acquire(db, "backup", opts.wait)?;
    backup_locked(db, app, opts)
}

/// [`backup`] for a caller that already holds the maintenance lock of `db` (for example a reset that must
/// back up and delete with no gap between the two).
///
/// # Errors
/// [`Error::Config`] when `lock` is not the lock of `db`; otherwise as [`backup`].
pub fn backup_under(
    lock: &MaintenanceLock,
    db: &Path,
    app: &str,
    opts: &BackupOptions<'_>,
) -> Result<Manifest> {
    lock.ensure_lock_of(db)?;
    backup_locked(db, app, opts)
}

/// [`backup`] for a caller that already holds the maintenance lock.
pub(crate) fn backup_locked(db: &Path, app: &str, opts: &BackupOptions<'_>) -> Result<Manifest> {
    let started = Instant::now();
    let dir = &opts.dir;
    fs::create_dir_all(dir).map_err(|e| Error::io("creating backup folder", dir, e))?;
    remove_partials(dir, app);
    let name = free_name(dir, app);
    let final_path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let result = copy_checked(db, &partial, opts);
    let c = match result {
        Ok(c) => c,
        Err(e) => {
            let e = full_disk_as_no_space(e, dir);
            remove_with_sidecars(&partial);
            return Err(e);
        }
    };
    let finish = || -> Result<Manifest> {
        let manifest = Manifest {
            path: final_path.clone(),
            bytes: c.bytes,
            sha256: c.sha256,
            page_size: c.facts.page_size,
            page_count: c.facts.page_count,
            schema_version: c.facts.schema_version,
            application_id: c.facts.application_id,
            source: db.to_path_buf(),
            created_at: clock::now_rfc3339(),
            tool_version: concat!("sqlite-vol ", env!("CARGO_PKG_VERSION")).into(),
            duration_ms: started.elapsed().as_millis() as u64,
            check: c.check,
            ..Manifest::default()
        };
        write_manifest(&manifest)?;
        fs::rename(&partial, &final_path)
            .map_err(|e| Error::io("renaming backup", &final_path, e))?;
        sync_dir(dir)?;
        Ok(manifest)
    };
    let manifest = finish().map_err(|e| {
        let e = full_disk_as_no_space(e, dir);
        remove_with_sidecars(&partial);
        let _ = fs::remove_file(manifest_path(&final_path));
        e
    })?;
    tracing::info!(backup = %manifest.path.display(), bytes = manifest.bytes, pages = manifest.page_count,
        duration_ms = manifest.duration_ms, "backup written and checked");
    if let Some(keep) = opts.keep {
        manifest::prune(dir, app, keep, Some(&final_path))?;
    }
    Ok(manifest)
}

/// What copying and checking established about a backup.
struct Checked {
    check: String,
    facts: FileFacts,
    bytes: u64,
    sha256: String,
}

/// Copies `db` into `partial` with the backup API and checks it: beside the copy on the database itself
/// when nobody commits meanwhile (see [`beside`]), else the copy once it is made.
///
/// Nothing here opens the live database file or its `-shm` except through SQLite. POSIX advisory locks
/// belong to the process, and closing any descriptor of a file drops all of the process's locks on it,
/// including the WAL read lock that pins the snapshot. (A raw file-copy fast path that read the wal-index
/// through its own descriptor was tried and corrupted 4 backups in 8 under a foreign writer.)
fn copy_checked(db: &Path, partial: &Path, opts: &BackupOptions<'_>) -> Result<Checked> {
    // Create the file ourselves so it is 0600 from the first byte. The handle stays open until the copy is
    // closed: it flushes pages to disk as they arrive (see `fsx::flushing_while`).
    let handle = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| Error::io("creating backup file", partial, e))?;
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(db, "opening source", e))?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(|e| Error::sqlite(db, "opening source", e))?;
    let mut dst =
        Connection::open(partial).map_err(|e| Error::sqlite(partial, "opening backup file", e))?;
    let dst_err = |e| Error::sqlite(partial, "writing backup", e);
    // The partial file is thrown away if anything fails, so it needs no journal and no syncs until the
    // end. A small cache makes SQLite write pages out as the copy goes, so write-back can start early.
    dst.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -16384;",
    )
    .map_err(dst_err)?;

    let check = if opts.full_check {
        "integrity_check"
    } else {
        "quick_check"
    };
    // In rollback-journal mode a reader's lock keeps writers out: there the check must not outlast the copy.
    let wal = src
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .is_ok_and(|m| m.eq_ignore_ascii_case("wal"));
    let t0 = Instant::now();
    // Pin one snapshot: commits by other connections then cannot restart the copy.
    src.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;")
        .map_err(|e| classify(db, "reading", e))?;
    // `data_version` differs between two readings when another connection committed in between: read in
    // the pinned snapshot and again after it, it tells whether anyone wrote during the copy.
    let version = || pragma_u64(&src, "data_version").ok();
    let at_snapshot = version();
    let beside = if wal { beside::pin(db) } else { None };
    std::thread::scope(|s| {
        let (watch, checking) = match beside {
            Some((watch, checker)) => (
                Some(watch),
                Some(s.spawn(move || beside::run(checker, db, check))),
            ),
            None => (None, None),
        };
        let progress = |p: Progress| {
            if let Some(w) = &watch {
                w.poll();
            }
            if let Some(f) = opts.progress {
                f(p);
            }
        };
        let copied = fsx::flushing_while(&handle, || {
            copy_pages(&src, &mut dst, db, partial, Some(&progress))
        });
        let _ = src.execute_batch("COMMIT");
        let pinned = t0.elapsed();
        // Without a watcher (rollback-journal mode, or its snapshot could not be pinned) there is no check
        // beside the copy: its outcome is `NotRun` and the copy is checked below; `data_version` alone
        // then says whether the hash may run beside the fsync.
        let writer_seen = at_snapshot.is_none()
            || at_snapshot != version()
            || watch.as_ref().is_some_and(Watch::poll);
        if let (Some(w), true) = (&watch, writer_seen || copied.is_err()) {
            w.stop_check();
        }
        let beside_outcome = || {
            checking
                .map(|h| h.join().unwrap_or(Outcome::NotRun))
                .unwrap_or(Outcome::NotRun)
        };
        if let Err(e) = copied {
            beside_outcome();
            return Err(e);
        }
        // Leave the writer a short WAL; PASSIVE never blocks anyone. (Its fsync of the backlog still stalls a
        // writer on the same filesystem in proportion to the backlog: see BENCHMARKS.md.)
        let _ = src.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        let closed = close_copy(dst, partial);
        // With nobody writing, the check beside the copy covered its pages: only the hash is left, read from
        // the page cache while the copy is fsynced and the check finishes. Beside a writer the check of the
        // copy and the hash run one after the other on one core, to leave the writer the rest of the machine
        // (hashing beside the check on a second core cost a foreign writer a third of its commits on two
        // cores).
        let hashing = (!writer_seen && closed.is_ok()).then(|| s.spawn(|| hash_file(partial)));
        let synced = closed.and_then(|()| {
            handle
                .sync_all()
                .map_err(|e| Error::io("syncing backup", partial, e))
        });
        let written = t0.elapsed();
        let hashed = hashing.map(|h| fsx::joined(h, "hashing", partial));
        let outcome = beside_outcome();
        synced?;
        let checked_beside = matches!(outcome, Outcome::Passed(_));
        let (facts, hashed) = match (outcome, hashed) {
            (Outcome::Passed(facts), Some(hashed)) => (facts, hashed),
            (Outcome::Failed(verdict), Some(_)) => {
                return Err(Error::NotADatabase {
                    path: db.into(),
                    reason: format!(
                        "{check} of the snapshot being backed up says: {verdict}. No backup was \
                         written; `sqlite-vol check --full` lists the damage, and restoring the newest \
                         good backup replaces it"
                    ),
                })
            }
            (_, hashed) => (
                check_copy(partial, check)?,
                hashed.unwrap_or_else(|| hash_file(partial)),
            ),
        };
        let (bytes, sha256) = hashed?;
        tracing::debug!(
            snapshot_pinned_ms = pinned.as_millis() as u64,
            written_ms = written.as_millis() as u64,
            checked_and_hashed_ms = t0.elapsed().as_millis() as u64,
            writer_seen,
            checked_beside,
            "backup phases"
        );
        Ok(Checked {
            check: check.into(),
            facts,
            bytes,
            sha256,
        })
    })
}

/// Switches the finished copy to rollback-journal mode so that it stands alone, and closes it.
fn close_copy(dst: Connection, partial: &Path) -> Result<()> {
    let dst_err = |e| Error::sqlite(partial, "writing backup", e);
    let mode: String = dst
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(dst_err)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::BadBackup {
            path: partial.into(),
            reason: format!("could not leave WAL mode ({mode})"),
        });
    }
    dst.close().map_err(|(_, e)| dst_err(e))
}

/// Checks the finished copy itself (when the check beside it did not cover it).
fn check_copy(partial: &Path, check: &str) -> Result<FileFacts> {
    check_file(
        partial,
        check,
        |e| Error::sqlite(partial, "checking backup", e),
        |verdict| Error::BadBackup {
            path: partial.into(),
            reason: format!("{check} of the copy: {verdict}"),
        },
    )
}

/// SQLite reports a full disk as SQLITE_FULL only where it expects it; elsewhere (growing the `-shm`, a
/// short write) it says "disk I/O error". When the target filesystem has under 1 MiB left (checked before
/// the partial files are removed), say what the user can act on: no space.
fn full_disk_as_no_space(e: Error, dir: &Path) -> Error {
    let io = matches!(e, Error::Sqlite { .. } | Error::Io { .. });
    if io && fs2::available_space(dir).is_ok_and(|free| free < 1 << 20) {
        return Error::NoSpace {
            action: "writing the backup",
            path: dir.to_path_buf(),
        };
    }
    e
}

/// Removes `.partial` files of `app` (and their SQLite sidecars) left by a backup that died; the caller
/// holds the lock.
fn remove_partials(dir: &Path, app: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let base = SIDECARS
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        if let Some(inner) = base
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".partial"))
        {
            if parse_name(inner, app).is_some() {
                tracing::warn!(file = %e.path().display(), "removing a partial backup left by an interrupted run");
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
