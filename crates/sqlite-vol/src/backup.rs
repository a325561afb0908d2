//! Online backups with the SQLite backup API: consistent, checked, fsynced, named by time.
//!
//! A backup pins one read transaction on the source (so that commits by other processes cannot restart the
//! copy), copies pages in chunks through the backup API while reporting progress and flushing the copy to
//! disk as it grows (one large fsync at the end would stall writers on the same filesystem), then releases
//! the snapshot and runs a PASSIVE checkpoint so the writer is not left a large WAL. The copy is written to a
//! hidden `.partial` name in the target folder, switched to rollback-journal mode so it stands alone, checked
//! (`quick_check`, or `integrity_check` on request), fsynced, and only then given its final name
//! `<app>-<yyyymmddTHHMMSSZ>.db` with mode 0600, after its manifest `<name>.json` (sha256, size, pages,
//! schema version, application id, source, time, tool version). A crash at any point leaves either a
//! complete backup with its manifest or a `.partial` file that the next backup removes; never a file that
//! looks good and is not. Retention keeps the newest N and never touches files outside the naming scheme.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};
use sha2::Digest;

use crate::location::{sidecar, SIDECARS};
use crate::lock::{MaintenanceLock, Wait};
use crate::verify::{check_file, FileFacts};
use crate::{settings, Error, Result};

/// The time in a backup's name, `yyyymmddTHHMMSSZ` (UTC).
const STAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// How far a backup, restore or verification has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Pages copied so far.
    pub done: u64,
    /// Pages in all.
    pub total: u64,
}

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

/// What a backup holds: written beside it as `<backup>.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// Page size.
    pub page_size: u64,
    /// Page count.
    pub page_count: u64,
    /// The last applied migration, if any.
    pub schema_version: Option<i64>,
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// The database it was taken from.
    pub source: PathBuf,
    /// When it was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The tool that made it.
    pub tool_version: String,
    /// How long it took.
    pub duration_ms: u64,
    /// Which check passed: `quick_check` or `integrity_check`.
    pub check: String,
}

/// The default backup folder for a database: `SQLITE_VOL_BACKUP_DIR`, else `backups/` beside it.
pub fn default_dir(db: &Path) -> PathBuf {
    settings::env_path(settings::BACKUP_DIR)
        .unwrap_or_else(|| db.parent().unwrap_or(Path::new(".")).join("backups"))
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
            created_at: crate::now_rfc3339(),
            tool_version: concat!("sqlite-vol ", env!("CARGO_PKG_VERSION")).into(),
            duration_ms: started.elapsed().as_millis() as u64,
            check: c.check,
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
        prune(dir, app, keep, Some(&final_path))?;
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

/// Copies `db` into `partial` with the backup API and checks the copy.
///
/// Nothing here opens the live database file or its `-shm` except through SQLite. POSIX advisory locks
/// belong to the process, and closing any descriptor of a file drops all of the process's locks on it,
/// including the WAL read lock that pins the snapshot. (A raw file-copy fast path that read the wal-index
/// through its own descriptor was tried and corrupted 4 backups in 8 under a foreign writer.)
fn copy_checked(db: &Path, partial: &Path, opts: &BackupOptions<'_>) -> Result<Checked> {
    // Create the file ourselves so it is 0600 from the first byte. The handle stays open until the copy is
    // closed: it flushes pages to disk as they arrive (see `flushing_while`).
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

    let t0 = Instant::now();
    // Pin one snapshot: commits by other connections then cannot restart the copy.
    src.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;")
        .map_err(|e| not_a_db(db, e))?;
    let copied = flushing_while(&handle, || {
        copy_pages(&src, &mut dst, db, partial, opts.progress)
    });
    let _ = src.execute_batch("COMMIT");
    copied?;
    let pinned = t0.elapsed();
    // Leave the writer a short WAL; PASSIVE never blocks anyone. (Its fsync of the backlog still stalls a
    // writer on the same filesystem in proportion to the backlog: see BENCHMARKS.md.)
    let _ = src.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    drop(src);

    let mode: String = dst
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(dst_err)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::BadBackup {
            path: partial.into(),
            reason: format!("could not leave WAL mode ({mode})"),
        });
    }
    dst.close().map_err(|(_, e)| dst_err(e))?;
    handle
        .sync_all()
        .map_err(|e| Error::io("syncing backup", partial, e))?;
    drop(handle);
    let written = t0.elapsed();

    // Check, then hash, on one core: a backup runs beside a live service and should leave it the rest of
    // the machine (hashing beside the check on a second core cost a foreign writer a third of its commits
    // on two cores).
    let check = if opts.full_check {
        "integrity_check"
    } else {
        "quick_check"
    };
    let facts = check_file(
        partial,
        check,
        |e| Error::sqlite(partial, "checking backup", e),
        |verdict| Error::BadBackup {
            path: partial.into(),
            reason: format!("{check} of the copy: {verdict}"),
        },
    )?;
    let (bytes, sha256) = hash_file(partial)?;
    tracing::debug!(
        snapshot_pinned_ms = pinned.as_millis() as u64,
        written_ms = written.as_millis() as u64,
        checked_and_hashed_ms = t0.elapsed().as_millis() as u64,
        "backup phases"
    );
    Ok(Checked {
        check: check.into(),
        facts,
        bytes,
        sha256,
    })
}

/// Runs `work` while another thread flushes `file` to disk every 50 ms.
///
/// Without this a whole gigabyte of copy waits in the page cache for the final fsync, and on ext4
/// (`data=ordered`) one large flush stalls every concurrent writer's WAL append on the same filesystem for
/// its whole duration: measured, a foreign writer's worst commit was 460–600 ms during a 1 GiB backup, lined
/// up with that fsync. Flushing as the copy grows keeps each flush, and so each stall, small, and leaves the
/// pages in the page cache for the check that follows.
fn flushing_while<T>(file: &File, work: impl FnOnce() -> T) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = file.sync_data();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let out = work();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

/// Steps the backup API in chunks of about 16 MiB, retrying while the target is busy.
/// A full disk is reported against `dst_path`, where the pages are written; other errors against the source.
pub(crate) fn copy_pages(
    src: &Connection,
    dst: &mut Connection,
    src_path: &Path,
    dst_path: &Path,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<()> {
    let page_size = pragma_u64(src, "page_size").map_err(|e| not_a_db(src_path, e))?;
    let chunk = i32::try_from((16 << 20) / page_size.max(512)).unwrap_or(4096);
    let b = rusqlite::backup::Backup::new(src, dst)
        .map_err(|e| Error::sqlite(src_path, "starting backup", e))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let step = b.step(chunk).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Error::NoSpace {
                action: "copying pages",
                path: dst_path.to_path_buf(),
            },
            _ => Error::sqlite(src_path, "copying pages", e),
        })?;
        let p = b.progress();
        if let Some(f) = progress {
            let total = p.pagecount.max(0) as u64;
            f(Progress {
                done: total.saturating_sub(p.remaining.max(0) as u64),
                total,
            });
        }
        match step {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if Instant::now() > deadline {
                    return Err(Error::sqlite(
                        src_path,
                        "copying pages",
                        rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("database stayed busy for 60 s".into()),
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {}
        }
    }
}

/// Reads an integer pragma such as `page_count`.
pub(crate) fn pragma_u64(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
        .map(|v| v.max(0) as u64)
}

pub(crate) fn run_check(conn: &Connection, check: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA {check}"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.join("; "))
}

fn not_a_db(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.into(),
            reason: "the file has no SQLite header".into(),
        },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::NotADatabase {
            path: path.into(),
            reason: e.to_string(),
        },
        _ => Error::sqlite(path, "reading", e),
    }
}

/// A name `<app>-<yyyymmddTHHMMSSZ>.db` not yet taken in `dir` (`-1`, `-2`… within one second).
fn free_name(dir: &Path, app: &str) -> String {
    let stamp = time::OffsetDateTime::now_utc()
        .format(STAMP)
        .unwrap_or_else(|_| "00000000T000000Z".into());
    (0..)
        .map(|n| {
            if n == 0 {
                format!("{app}-{stamp}.db")
            } else {
                format!("{app}-{stamp}-{n}.db")
            }
        })
        .find(|n| !dir.join(n).exists() && !manifest_path(&dir.join(n)).exists())
        .unwrap_or_default()
}

/// The manifest beside a backup: `<backup>.json`.
pub fn manifest_path(backup: &Path) -> PathBuf {
    sidecar(backup, ".json")
}

/// Reads the manifest beside `backup`, if there is one.
pub fn read_manifest(backup: &Path) -> Option<Manifest> {
    serde_json::from_slice(&fs::read(manifest_path(backup)).ok()?).ok()
}

pub(crate) fn write_manifest(m: &Manifest) -> Result<()> {
    let path = manifest_path(&m.path);
    let tmp = path.with_extension("json.partial");
    let json = serde_json::to_vec_pretty(m).unwrap_or_default();
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("writing manifest", &path, e)
    })
}

/// Size and hex sha256 of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing folder", dir, e))
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

/// Removes a file and the `-journal`, `-wal` and `-shm` SQLite may have left beside it.
pub(crate) fn remove_with_sidecars(p: &Path) {
    let _ = fs::remove_file(p);
    for s in SIDECARS {
        let _ = fs::remove_file(sidecar(p, s));
    }
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

/// If `name` is `<app>-<yyyymmddTHHMMSSZ>[-N].db`, its time as `(stamp, n)`.
pub(crate) fn parse_name(name: &str, app: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix(app)?
        .strip_prefix('-')?
        .strip_suffix(".db")?;
    let (stamp, n) = match rest.split_once('-') {
        Some((s, n)) => (s, n.parse::<u32>().ok()?),
        None => (rest, 0),
    };
    let b = stamp.as_bytes();
    let ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    ok.then(|| (stamp.to_string(), n))
}

/// One backup found in a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The backup file.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was taken (RFC 3339), from its name.
    pub created_at: String,
    /// Seconds since then.
    pub age_seconds: i64,
    /// Whether a manifest with a checksum is beside it (verification is [`crate::verify()`]).
    pub has_manifest: bool,
}

/// The backups of `app` in `dir`, newest first. Files outside the naming scheme are ignored.
///
/// # Errors
/// [`Error::Io`] when the folder cannot be read (a missing folder is an empty list).
pub fn list(dir: &Path, app: &str) -> Result<Vec<Entry>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("listing backups in", dir, e)),
    };
    let now = time::OffsetDateTime::now_utc();
    let mut out: Vec<(String, u32, Entry)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((stamp, n)) = parse_name(&name, app) else {
            continue;
        };
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let (created_at, age) = stamp_time(&stamp, now);
        let path = e.path();
        let has_manifest = manifest_path(&path).is_file();
        out.push((
            stamp,
            n,
            Entry {
                path,
                bytes: meta.len(),
                created_at,
                age_seconds: age,
                has_manifest,
            },
        ));
    }
    out.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
    Ok(out.into_iter().map(|(_, _, e)| e).collect())
}

/// A name's `yyyymmddTHHMMSSZ` stamp as (RFC 3339, seconds before `now`).
pub(crate) fn stamp_time(stamp: &str, now: time::OffsetDateTime) -> (String, i64) {
    let when = time::PrimitiveDateTime::parse(stamp, STAMP).map(|t| t.assume_utc());
    match when {
        Ok(t) => (crate::rfc3339(t), (now - t).whole_seconds()),
        Err(_) => (stamp.to_string(), 0),
    }
}

/// Deletes all but the newest `keep` backups of `app` in `dir` (with their manifests), never `protect`.
/// Returns what was deleted.
///
/// # Errors
/// [`Error::Config`] for `keep` = 0, [`Error::Io`] when a file cannot be removed.
pub fn prune(dir: &Path, app: &str, keep: usize, protect: Option<&Path>) -> Result<Vec<PathBuf>> {
    if keep == 0 {
        return Err(Error::Config {
            variable: "--keep".into(),
            value: "0".into(),
            reason: "keeping no backups would delete them all; use 1 or more".into(),
        });
    }
    let mut deleted = Vec::new();
    for e in list(dir, app)?.into_iter().skip(keep) {
        if protect == Some(e.path.as_path()) {
            continue;
        }
        fs::remove_file(&e.path).map_err(|err| Error::io("removing old backup", &e.path, err))?;
        let _ = fs::remove_file(manifest_path(&e.path));
        tracing::info!(backup = %e.path.display(), "pruned old backup");
        deleted.push(e.path);
    }
    if !deleted.is_empty() {
        sync_dir(dir)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_scheme_and_others_are_ignored() {
        assert_eq!(
            parse_name("app-20261122T101500Z.db", "app"),
            Some(("20261122T101500Z".into(), 0))
        );
        assert_eq!(
            parse_name("app-20261122T101500Z-2.db", "app"),
            Some(("20261122T101500Z".into(), 2))
        );
        for other in [
            "app.db",
            "app-latest.db",
            "other-20261122T101500Z.db",
            "app-20261122T101500Z.db.json",
            "app-2026112T101500Z.db",
            "app-20261122T101500Z-x.db",
        ] {
            assert_eq!(parse_name(other, "app"), None, "{other}");
        }
    }
}
