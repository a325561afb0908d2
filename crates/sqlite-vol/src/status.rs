//! A report on a database that changes nothing and scans nothing.
//!
//! [`status()`] opens the file read-only (or not at all if it does not exist) and reads only the header
//! pragmas, the migration history table and the identity table, so it is cheap on a database of any size.
//! It adds the volume class, free space, WAL size, the newest backup and the maintenance lock's holder.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::lock::{Holder, MaintenanceLock};
use crate::{identity, manifest, migrate, Error, Location, Result, Volume};

/// What [`status()`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// The database file.
    pub path: std::path::PathBuf,
    /// How the location was decided.
    pub source: String,
    /// Whether the database exists (with content).
    pub exists: bool,
    /// Size of the main file.
    pub size_bytes: u64,
    /// Size of the `-wal` file.
    pub wal_bytes: u64,
    /// `PRAGMA journal_mode`.
    pub journal_mode: Option<String>,
    /// `PRAGMA page_size`.
    pub page_size: Option<u64>,
    /// `PRAGMA page_count`.
    pub page_count: Option<u64>,
    /// The last applied migration.
    pub schema_version: Option<i64>,
    /// Identity stamp.
    pub identity: Option<identity::Identity>,
    /// Whether the identity is this app's.
    pub identity_matches: Option<bool>,
    /// The storage.
    pub volume: Volume,
    /// Bytes free on its filesystem.
    pub free_bytes: Option<u64>,
    /// The backup folder.
    pub backup_dir: std::path::PathBuf,
    /// The newest backup.
    pub last_backup: Option<manifest::Entry>,
    /// Who holds the maintenance lock.
    pub lock: Option<Holder>,
    /// The SQLite that last wrote the file (header offset 96) and whether it has the WAL-reset bug.
    pub written_by: Option<crate::wal_reset::Finding>,
    /// The last restore drill, and the last one that passed (see [`crate::drill`]).
    pub drills: crate::record::Record,
    /// The last backup sent off-site, and the last one that arrived.
    pub offsite: crate::record::Record,
}

/// Reports on the database of `app` at `loc`, with backups looked for in `backup_dir`.
///
/// # Errors
/// [`Error::NotADatabase`] when the file exists but is not SQLite; [`Error::Sqlite`] when it cannot be read.
pub fn status_of(loc: &Location, backup_dir: &Path, app: &str) -> Result<Status> {
    let path = &loc.path;
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let exists = crate::fsx::has_content(path);
    let mut s = Status {
        path: path.clone(),
        source: loc.source.to_string(),
        exists,
        size_bytes: len(path),
        wal_bytes: len(&crate::fsx::sidecar(path, "-wal")),
        journal_mode: None,
        page_size: None,
        page_count: None,
        schema_version: None,
        identity: None,
        identity_matches: None,
        volume: Volume::detect(&loc.dir),
        free_bytes: fs2::available_space(
            loc.dir
                .ancestors()
                .find(|p| p.exists())
                .unwrap_or(Path::new("/")),
        )
        .ok(),
        backup_dir: backup_dir.to_path_buf(),
        last_backup: manifest::list(backup_dir, app)
            .ok()
            .and_then(|l| l.into_iter().next()),
        lock: MaintenanceLock::holder(path),
        written_by: crate::wal_reset::written_by(path),
        drills: crate::record::read(backup_dir, app, crate::record::Kind::Drill),
        offsite: crate::record::read(backup_dir, app, crate::record::Kind::Offsite),
    };
    if !exists {
        return Ok(s);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::sqlite(path, "opening read-only", e))?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(2));
    let bad = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.clone(),
            reason: e.to_string(),
        },
        _ => Error::sqlite(path, "reading status", e),
    };
    s.journal_mode = Some(
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(bad)?,
    );
    s.page_size = Some(crate::sql::pragma_u64(&conn, "page_size").map_err(bad)?);
    s.page_count = Some(crate::sql::pragma_u64(&conn, "page_count").map_err(bad)?);
    s.schema_version = migrate::schema_version(&conn, path)?;
    let id = identity::read(&conn).map_err(bad)?;
    s.identity_matches = Some(id.application_id == identity::application_id(app));
    s.identity = Some(id);
    Ok(s)
}

/// Resolves the location of `app` (explicit path, then environment) and reports on it.
///
/// # Errors
/// As [`Location::resolve`] and [`status_of`].
pub fn status(app: &str, explicit: Option<&Path>) -> Result<Status> {
    let loc = Location::resolve(app, explicit)?;
    let dir = manifest::default_dir(&loc.path);
    status_of(&loc, &dir, app)
}
