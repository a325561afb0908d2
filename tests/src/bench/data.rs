//! The data set: an `accounts` database (created and migrated by the real service) grown to the requested
//! size with realistic rows: users with unique emails and 100-byte password hashes, and an indexed events
//! table with random payloads. Built once per size and reused.

use std::path::{Path, PathBuf};

use crate::support::Service;

/// A prepared database.
pub struct DataSet {
    /// The database file.
    pub db: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// An `accounts` database with the schema and no rows.
    pub empty_dir: PathBuf,
}

impl DataSet {
    /// Builds (or reuses) the data set of about `size` bytes under `dir`.
    ///
    /// # Errors
    /// Why it could not be built.
    pub fn ensure(dir: &Path, size: u64) -> Result<DataSet, String> {
        let data_dir = dir.join(format!("data-{}m", size >> 20));
        let db = data_dir.join("accounts.db");
        let done = data_dir.join("complete");
        let empty_dir = dir.join("empty");
        if !empty_dir.join("accounts.db").exists() {
            create_with_service(&empty_dir)?;
        }
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&data_dir);
            create_with_service(&data_dir)?;
            fill(&db, size)?;
            std::fs::write(&done, b"").map_err(|e| e.to_string())?;
        }
        let bytes = std::fs::metadata(&db).map_err(|e| e.to_string())?.len();
        Ok(DataSet {
            db,
            bytes,
            empty_dir,
        })
    }
}

fn create_with_service(dir: &Path) -> Result<(), String> {
    let svc = Service::start(dir);
    let status = svc.terminate();
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("accounts exited {status} while creating {}", dir.display()))
}

fn fill(db: &Path, size: u64) -> Result<(), String> {
    let t = std::time::Instant::now();
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let e = |e: rusqlite::Error| e.to_string();
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -262144;
         CREATE TABLE IF NOT EXISTS bench_events (
             id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind INTEGER NOT NULL, at INTEGER NOT NULL, payload BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS bench_events_user_at ON bench_events (user_id, at);",
    )
    .map_err(e)?;
    // About a tenth of the bytes in users (~260 B a row with its index), the rest in events (~520 B).
    let users = (size / 10 / 260).max(100);
    let events = (size * 9 / 10 / 520).max(100);
    let batch = 100_000u64;
    let mut done = 0;
    while done < users {
        let n = batch.min(users - done);
        c.execute(
            "INSERT INTO users (email, password_hash, created_at)
             SELECT printf('user%09d@bench.example', ?1 + i), '$argon2id$' || hex(randomblob(45)), '2026-01-01T00:00:00.000Z'
             FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?2) SELECT i FROM k)",
            [done as i64, n as i64],
        )
        .map_err(e)?;
        done += n;
    }
    let mut done = 0;
    while done < events {
        let n = batch.min(events - done);
        c.execute(
            "INSERT INTO bench_events (user_id, kind, at, payload)
             SELECT abs(random()) % ?1 + 1, abs(random()) % 16, 1767225600 + ?2 + i, randomblob(400 + abs(random()) % 64)
             FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?3) SELECT i FROM k)",
            [users as i64, done as i64, n as i64],
        )
        .map_err(e)?;
        done += n;
    }
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(e)?;
    eprintln!(
        "bench: built {users} users and {events} events in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
