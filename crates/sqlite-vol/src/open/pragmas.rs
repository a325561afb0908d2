//! How every connection is set up: the pool types, the pragmas each pooled connection gets, and opening
//! one connection with them.

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use crate::sql::classify;
use crate::{Error, Result, Synchronous};

/// The connection pool type.
pub type Pool = r2d2::Pool<SqliteConnectionManager>;
/// A connection borrowed from the pool.
pub type PooledConnection = r2d2::PooledConnection<SqliteConnectionManager>;

/// The creation hook: runs once, inside the transaction that marks the database initialized.
pub type OnCreate =
    Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> std::result::Result<(), String> + Send>;

/// The pragmas every pooled connection gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragmas {
    /// WAL journal (off only on filesystems where WAL is unsafe).
    pub wal: bool,
    /// `synchronous`.
    pub synchronous: Synchronous,
    /// `busy_timeout`.
    pub busy_timeout: Duration,
}

impl Pragmas {
    /// Applies these pragmas to a connection.
    ///
    /// # Errors
    /// The SQLite error if a pragma fails.
    pub fn apply(&self, c: &Connection) -> rusqlite::Result<()> {
        c.busy_timeout(self.busy_timeout)?;
        let mode = if self.wal { "WAL" } else { "DELETE" };
        c.query_row(&format!("PRAGMA journal_mode = {mode}"), [], |_| Ok(()))?;
        let sync = match self.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        // foreign_keys: enforce what the schema declares. journal_size_limit: truncate the WAL back to 64 MiB
        // after a checkpoint instead of keeping its high-water mark. temp_store: sorts in memory, not in
        // /tmp on the container layer. trusted_schema=OFF: SQL functions in the schema cannot run with
        // side effects (defence against a hostile database file).
        c.execute_batch(&format!(
            "PRAGMA synchronous = {sync};
             PRAGMA foreign_keys = ON;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -16000;
             PRAGMA trusted_schema = OFF;"
        ))
    }
}

/// Builds the r2d2 pool over `path`: read-write, never creating it, each connection set up with `pragmas`.
pub(super) fn pool(
    path: &Path,
    pragmas: &Pragmas,
    size: u32,
    timeout: Duration,
    events: Box<dyn r2d2::HandleEvent>,
) -> Result<Pool> {
    let init = pragmas.clone();
    let manager = SqliteConnectionManager::file(path)
        .with_flags(
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_init(move |c| init.apply(c));
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .event_handler(events)
        .build(manager)
        .map_err(|e| Error::Pool {
            path: path.to_path_buf(),
            source: e,
        })
}

/// A SQLite error reading the live database: a file that is not a database (or is damaged) says what to do.
pub(super) fn not_a_db(path: &Path, e: rusqlite::Error) -> Error {
    match classify(path, "reading", e) {
        Error::NotADatabase { path, reason } => Error::NotADatabase {
            path,
            reason: format!(
                "{reason}. Restore a backup with `sqlite-vol restore`, or move the file away"
            ),
        },
        other => other,
    }
}

/// Opens one read-write connection with `pragmas`, creating the file only when `create`.
pub(super) fn open_conn(path: &Path, pragmas: &Pragmas, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| not_a_db(path, e))?;
    pragmas.apply(&conn).map_err(|e| not_a_db(path, e))?;
    Ok(conn)
}
