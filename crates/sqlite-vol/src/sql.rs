//! SQL helpers every layer above shares: integer pragmas, integrity checks, the one classifier of "this
//! file is not a database", opening a file read-only without touching it, and stepping the backup API.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};

use crate::{Error, Result};

/// How far a backup, restore or verification has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Pages copied so far.
    pub done: u64,
    /// Pages in all.
    pub total: u64,
}

/// Reads an integer pragma such as `page_count`.
pub(crate) fn pragma_u64(conn: &Connection, name: &str) -> rusqlite::Result<u64> {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
        .map(|v| v.max(0) as u64)
}

/// Whether the database has a table called `name`.
pub(crate) fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Runs `PRAGMA quick_check` or `PRAGMA integrity_check`; `ok` when the database is sound.
pub(crate) fn run_check(conn: &Connection, check: &str) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA {check}"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows.join("; "))
}

/// A SQLite error while `action` on `path`, as [`Error::NotADatabase`] when SQLite says the file is not a
/// database or is damaged, else as [`Error::Sqlite`].
pub(crate) fn classify(path: &Path, action: &'static str, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.into(),
            reason: "the file has no SQLite header".into(),
        },
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::NotADatabase {
            path: path.into(),
            reason: e.to_string(),
        },
        _ => Error::sqlite(path, action, e),
    }
}

/// Opens a file read-only without locks, `-wal` or `-shm`: it is treated as a file nobody changes.
pub(crate) fn open_immutable(path: &Path) -> Result<Connection> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::BadBackup {
        path: path.to_path_buf(),
        reason: format!("SQLite cannot open it: {e}"),
    })
}

/// Steps the backup API from `src` into `dst` in chunks of about 16 MiB, retrying while the target is
/// busy. A full disk is reported against `dst_path`, where the pages are written; other errors against the
/// source.
pub(crate) fn copy_pages(
    src: &Connection,
    dst: &mut Connection,
    src_path: &Path,
    dst_path: &Path,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<()> {
    copy_pages_gated(src, dst, src_path, dst_path, progress, || Ok(()))
}

/// [`copy_pages`], calling `before_commit` once just before the step that copies the last pages (the step
/// that commits the destination's write transaction). An error from it ends the copy with nothing
/// committed: the backup is finished early, which rolls the destination back. This is how a restore into a
/// live database copies while the backup is still being verified, and commits only a verified backup.
pub(crate) fn copy_pages_gated(
    src: &Connection,
    dst: &mut Connection,
    src_path: &Path,
    dst_path: &Path,
    progress: Option<&dyn Fn(Progress)>,
    before_commit: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let page_size = pragma_u64(src, "page_size").map_err(|e| classify(src_path, "reading", e))?;
    let chunk = i32::try_from((16 << 20) / page_size.max(512)).unwrap_or(4096);
    let mut remaining =
        pragma_u64(src, "page_count").map_err(|e| classify(src_path, "reading", e))?;
    let mut gate = Some(before_commit);
    let b = rusqlite::backup::Backup::new(src, dst)
        .map_err(|e| Error::sqlite(src_path, "starting backup", e))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if remaining <= chunk as u64 {
            if let Some(gate) = gate.take() {
                gate()?;
            }
        }
        let step = b.step(chunk).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Error::NoSpace {
                action: "copying pages",
                path: dst_path.to_path_buf(),
            },
            _ => Error::sqlite(src_path, "copying pages", e),
        })?;
        let p = b.progress();
        if step == StepResult::More {
            remaining = p.remaining.max(0) as u64;
        }
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
