//! Small autocommit inserts per second: through the toolkit's pool and defaults, through a bare rusqlite
//! connection with the same pragmas, and with SQLite's defaults (rollback journal, synchronous=FULL).

use std::time::{Duration, Instant};

use super::{median, secs, Config, Results};

const SQL: &str = "INSERT INTO t (v) VALUES (?1)";

fn rate(n: u32, f: &mut dyn FnMut(u32) -> Result<(), String>) -> Result<f64, String> {
    let t = Instant::now();
    for i in 0..n {
        f(i)?;
    }
    Ok(f64::from(n) / secs(t.elapsed()))
}

/// How many inserts fit in about `target` at this rate (at least 50).
fn count_for(first: f64, target: Duration) -> u32 {
    ((first * secs(target)) as u32).max(50)
}

pub fn run(cfg: &Config, r: &mut Results) -> Result<(), String> {
    let dir = cfg.dir.join("commits");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let e = |e: rusqlite::Error| e.to_string();
    let db = sqlite_vol::Database::builder("bench")
        .path(dir.join("pool.db"))
        .backup_every(std::time::Duration::ZERO, None)
        .open()
        .map_err(|e| e.to_string())?;
    db.conn()
        .map_err(|e| e.to_string())?
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        .map_err(e)?;
    let bare = rusqlite::Connection::open(dir.join("bare.db")).map_err(e)?;
    sqlite_vol::Pragmas {
        wal: true,
        synchronous: sqlite_vol::Synchronous::Normal,
        busy_timeout: Duration::from_secs(5),
    }
    .apply(&bare)
    .map_err(e)?;
    bare.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        .map_err(e)?;
    let defaults = rusqlite::Connection::open(dir.join("defaults.db")).map_err(e)?;
    defaults.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)").map_err(e)?;
    let blob = vec![7u8; 100];

    let mut pool_insert = |_| -> Result<(), String> {
        db.conn()
            .map_err(|e| e.to_string())?
            .prepare_cached(SQL)
            .and_then(|mut s| s.execute([&blob]))
            .map(|_| ())
            .map_err(e)
    };
    let mut bare_insert = |_| -> Result<(), String> {
        bare.prepare_cached(SQL)
            .and_then(|mut s| s.execute([&blob]))
            .map(|_| ())
            .map_err(e)
    };
    let mut default_insert = |_| -> Result<(), String> {
        defaults
            .prepare_cached(SQL)
            .and_then(|mut s| s.execute([&blob]))
            .map(|_| ())
            .map_err(e)
    };
    // Size each run to about 2 s from a short first probe.
    let n_fast = count_for(rate(500, &mut bare_insert)?, Duration::from_secs(2));
    let n_slow = count_for(rate(20, &mut default_insert)?, Duration::from_secs(2));
    let (mut pool, mut bare_r, mut def) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cfg.runs {
        pool.push(rate(n_fast, &mut pool_insert)?);
        bare_r.push(rate(n_fast, &mut bare_insert)?);
        def.push(rate(n_slow, &mut default_insert)?);
    }
    let (pool, bare_r, def) = (median(&mut pool), median(&mut bare_r), median(&mut def));
    r.line(
        "small commits",
        "sqlite-vol pool, defaults (WAL, NORMAL)",
        pool,
        "commits/s",
        Some(pool / bare_r),
        "ratio to bare rusqlite",
    );
    r.line(
        "small commits",
        "bare rusqlite, same pragmas",
        bare_r,
        "commits/s",
        Some(1.0),
        "",
    );
    r.line(
        "small commits",
        "SQLite defaults (rollback journal, FULL)",
        def,
        "commits/s",
        Some(def / bare_r),
        "",
    );
    r.target("pool ÷ bare rusqlite", pool / bare_r, 0.9, false);
    r.target(
        "toolkit defaults ÷ SQLite defaults",
        pool / def,
        50.0,
        false,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
