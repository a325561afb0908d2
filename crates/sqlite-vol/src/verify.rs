//! Proving a backup file is good before anyone relies on it.
//!
//! [`verify()`] checks, cheapest first: the path is a non-empty regular file; it starts with the SQLite
//! header; its size is whole pages and not shorter than the header says (a truncated copy); its sha256 and
//! size match its manifest, when one is beside it; it opens read-only without touching it (`immutable=1`, so
//! no `-wal` or `-shm` is created beside a backup); and `quick_check` (or `integrity_check`) says `ok`. It
//! reports the application id and schema version, so a caller can refuse another app's data or a newer
//! schema.

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::fsx::{self, hash_file};
use crate::manifest::read_manifest;
use crate::sql::{open_immutable, pragma_u64, run_check, Progress};
use crate::{identity, migrate, Error, Result};

/// What [`verify()`] established.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its sha256.
    pub sha256: String,
    /// Whether a manifest was found beside it (and so the checksum was compared).
    pub manifest: bool,
    /// Page size.
    pub page_size: u64,
    /// Page count.
    pub page_count: u64,
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// The last applied migration, if any.
    pub schema_version: Option<i64>,
    /// The check that passed.
    pub check: String,
    /// When the backup was taken, from its manifest.
    pub created_at: Option<String>,
}

/// Verifies the backup file at `path`; `full` runs `integrity_check` instead of `quick_check`.
///
/// # Errors
/// [`Error::BadBackup`] (or [`Error::NotADatabase`]) saying what is wrong with the file, [`Error::Io`] when
/// it cannot be read. The file is never changed.
pub fn verify(path: &Path, full: bool, progress: Option<&dyn Fn(Progress)>) -> Result<Verified> {
    verify_with(path, full, progress, || hash_file(path))
}

/// [`verify()`], copying the backup to `to` in the pass that hashes it (see [`fsx::copy_hashing`]): when
/// it returns `Ok`, `to` holds the same bytes as the verified backup, fsynced. On any error `to` is removed.
/// This is how a restore into an empty place reads the backup once for its copy and once for its check,
/// at the same time, instead of four times.
///
/// # Errors
/// As [`verify()`], and [`Error::Io`] / [`Error::NoSpace`] for the copy.
pub(crate) fn verify_copying(
    path: &Path,
    full: bool,
    progress: Option<&dyn Fn(Progress)>,
    to: &Path,
) -> Result<Verified> {
    let v = verify_with(path, full, progress, || fsx::copy_hashing(path, to));
    if v.is_err() {
        fsx::remove_with_sidecars(to);
    }
    v
}

/// [`verify()`] with the hashing pass given: `hash` returns the file's size and sha256.
fn verify_with(
    path: &Path,
    full: bool,
    progress: Option<&dyn Fn(Progress)>,
    hash: impl FnOnce() -> Result<(u64, String)> + Send,
) -> Result<Verified> {
    let bad = |reason: String| Error::BadBackup {
        path: path.to_path_buf(),
        reason,
    };
    let (len, page_size) = sane_header(path)?;
    let check = if full {
        "integrity_check"
    } else {
        "quick_check"
    };
    if let Some(f) = progress {
        f(Progress {
            done: 0,
            total: len / page_size,
        });
    }
    // Hash and check at the same time: two read passes over the file, two cores.
    let (hashed, checked) = std::thread::scope(|s| {
        let hashing = s.spawn(hash);
        let checked = check_file(
            path,
            check,
            |e| bad(format!("SQLite cannot read it: {e}")),
            |verdict| bad(format!("{check} failed: {}", truncate(&verdict, 300))),
        );
        let hashed = crate::fsx::joined(hashing, "hashing", path);
        (hashed, checked)
    });
    let (bytes, sha256) = hashed?;
    let manifest = read_manifest(path);
    if let Some(m) = &manifest {
        if m.sha256 != sha256 || m.bytes != bytes {
            return Err(bad(format!(
                "its checksum does not match its manifest (sha256 {sha256}, {bytes} bytes; manifest says {}, {} \
                 bytes): the file changed or was damaged after the backup",
                m.sha256, m.bytes
            )));
        }
    }
    let facts = checked?;
    if let Some(f) = progress {
        f(Progress {
            done: facts.page_count,
            total: facts.page_count,
        });
    }
    Ok(Verified {
        path: path.to_path_buf(),
        bytes,
        sha256,
        manifest: manifest.is_some(),
        page_size,
        page_count: facts.page_count,
        application_id: facts.application_id,
        schema_version: facts.schema_version,
        check: check.into(),
        created_at: manifest.map(|m| m.created_at),
    })
}

/// The cheap checks, before any pass over the file: a non-empty regular file with the SQLite header, a valid
/// page size, whole pages, and not shorter than its header says. Returns (its size, its page size).
fn sane_header(path: &Path) -> Result<(u64, u64)> {
    let bad = |reason: String| Error::BadBackup {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io("reading backup", path, e))?;
    if meta.is_dir() {
        return Err(bad(
            "it is a directory; give the path of a backup file (see `sqlite-vol list`)".into(),
        ));
    }
    if meta.len() == 0 {
        return Err(bad("the file is empty".into()));
    }
    let mut header = [0u8; 100];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut header))
        .map_err(|e| Error::io("reading backup", path, e))?;
    if n < 100 || &header[..16] != b"SQLite format 3\0" {
        return Err(Error::NotADatabase {
            path: path.to_path_buf(),
            reason: "it does not start with the SQLite header (not a database, or not a backup)"
                .into(),
        });
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        p if p >= 512 && p.is_power_of_two() => u64::from(p),
        p => {
            return Err(bad(format!(
                "the header's page size {p} is invalid: the file is damaged"
            )))
        }
    };
    let change = u32::from_be_bytes([header[24], header[25], header[26], header[27]]);
    let valid_for = u32::from_be_bytes([header[92], header[93], header[94], header[95]]);
    let header_pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    if meta.len() % page_size != 0 {
        return Err(bad(format!(
            "its size {} is not a whole number of {page_size}-byte pages: it is truncated or padded",
            meta.len()
        )));
    }
    if change == valid_for && header_pages * page_size > meta.len() {
        return Err(bad(format!(
            "it is truncated: the header says {header_pages} pages ({} bytes) but the file has {} bytes",
            header_pages * page_size,
            meta.len()
        )));
    }
    Ok((meta.len(), page_size))
}

/// What a backup file says about itself (page size and count, application id, schema version), after the
/// cheap header checks but without hashing or checking it: so that the cheap refusals (another app's
/// backup, a newer schema) come before anything slow.
///
/// # Errors
/// As [`verify()`] for what the header shows; [`Error::BadBackup`] when SQLite cannot read its schema.
pub(crate) fn peek(path: &Path) -> Result<FileFacts> {
    sane_header(path)?;
    let conn = open_immutable(path)?;
    let sql_err = |e: rusqlite::Error| Error::BadBackup {
        path: path.to_path_buf(),
        reason: format!("SQLite cannot read it: {e}"),
    };
    Ok(FileFacts {
        page_size: pragma_u64(&conn, "page_size").map_err(sql_err)?,
        page_count: pragma_u64(&conn, "page_count").map_err(sql_err)?,
        application_id: identity::read(&conn).map_err(sql_err)?.application_id,
        schema_version: migrate::schema_version(&conn, path)?,
    })
}

/// Runs `quick_check` (or, with `full`, `integrity_check`) on the live database at `path`, opened
/// read-only and waiting up to 5 s for a writer; returns what it found wrong (empty: `ok`). SQLite saying
/// the file is not a database or is damaged is one problem, not an error.
///
/// # Errors
/// [`Error::Sqlite`] when the check cannot run at all (the file cannot be opened, a lock is held).
pub fn check_live(path: &Path, full: bool) -> Result<Vec<String>> {
    let check = if full {
        "integrity_check"
    } else {
        "quick_check"
    };
    let result = (|| {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        run_check(&conn, check)
    })();
    match result {
        Ok(verdict) if verdict == "ok" => Ok(Vec::new()),
        Ok(verdict) => Ok(verdict.split("; ").map(str::to_string).collect()),
        Err(e) => match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                Ok(vec![e.to_string()])
            }
            _ => Err(Error::sqlite(path, "checking", e)),
        },
    }
}

/// What checking a whole database file established.
pub(crate) struct FileFacts {
    pub(crate) page_size: u64,
    pub(crate) page_count: u64,
    pub(crate) application_id: i32,
    pub(crate) schema_version: Option<i64>,
}

/// Opens `path` without touching it (read-only, `immutable=1`), runs `check` and reads what a manifest or a
/// verification reports. `sql_err` words a SQLite error and `failed` a verdict other than `ok`, so that a
/// backup and a verification each describe a bad file in their own terms.
pub(crate) fn check_file(
    path: &Path,
    check: &str,
    sql_err: impl Fn(rusqlite::Error) -> Error,
    failed: impl FnOnce(String) -> Error,
) -> Result<FileFacts> {
    let conn = open_immutable(path)?;
    checked_facts(&conn, path, check, sql_err)?.map_err(failed)
}

/// Runs `check` on `conn` (the database at `path`) and, when it says `ok`, reads what a manifest records;
/// `Ok(Err(verdict))` when it says anything else.
pub(crate) fn checked_facts(
    conn: &Connection,
    path: &Path,
    check: &str,
    sql_err: impl Fn(rusqlite::Error) -> Error,
) -> Result<std::result::Result<FileFacts, String>> {
    // SQLite stops some checks of a damaged file with an error rather than a verdict: that is a verdict.
    let verdict = match run_check(conn, check) {
        Ok(verdict) => verdict,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ) =>
        {
            e.to_string()
        }
        Err(e) => return Err(sql_err(e)),
    };
    if verdict != "ok" {
        return Ok(Err(verdict));
    }
    Ok(Ok(FileFacts {
        page_size: pragma_u64(conn, "page_size").map_err(&sql_err)?,
        page_count: pragma_u64(conn, "page_count").map_err(&sql_err)?,
        application_id: identity::read(conn).map_err(&sql_err)?.application_id,
        schema_version: migrate::schema_version(conn, path)?,
    }))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
