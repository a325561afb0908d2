//! Helpers: fixture migrations and the `users` table those migrations make; temp folders kept on failure,
//! mounts that undo themselves and the `sqlite3` shell come from the workspace's test-support crate.

use std::path::{Path, PathBuf};

use sqlite_vol::{Builder, Database, Error, Migrations};
pub use test_support::MountGuard;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A temp folder that is kept (and its path printed) when the test panics.
pub type Tmp = test_support::TestDir;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn migrations(name: &str) -> Migrations {
    Migrations::from_dir(&fixture(name)).expect("fixture migrations")
}

/// A builder for app `it` in `dir` with the named fixture migrations and no schedule from the environment.
pub fn builder(dir: &Path, fixture_name: &str) -> Builder {
    Database::builder("it")
        .path(dir)
        .migrations(migrations(fixture_name))
        .backup_every(std::time::Duration::ZERO, None)
}

/// Opens `dir` for app `it` with the named fixture migrations.
pub fn open(dir: &Path, fixture_name: &str) -> sqlite_vol::Result<Database> {
    builder(dir, fixture_name).open()
}

/// Inserts a row into the fixtures' `users` table.
pub fn add_user(db: &Database, email: &str) -> sqlite_vol::Result<()> {
    db.write(|tx| {
        tx.execute("INSERT INTO users (email) VALUES (?1)", [email])
            .map(|_| ())
            .map_err(Error::from_sqlite)
    })
}

/// The creation hook the tests seed with: one user, `seed@example.com`.
pub fn seed_user(tx: &rusqlite::Transaction<'_>) -> Result<(), String> {
    tx.execute("INSERT INTO users (email) VALUES ('seed@example.com')", [])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Rows in `users`, read through the pool.
pub fn count_users(db: &Database) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(db
        .conn()?
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// What the stock `sqlite3` shell's `PRAGMA integrity_check` prints for `db`.
pub use test_support::sqlite3::integrity_check as sqlite3_integrity_check;

/// All bytes of the database after folding its WAL in, for "left exactly as it was" checks.
pub fn db_bytes(db: &Path) -> Vec<u8> {
    if let Ok(c) = rusqlite::Connection::open(db) {
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    std::fs::read(db).unwrap_or_default()
}
