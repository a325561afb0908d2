//! Backups under a foreign writer: Python's sqlite3 module commits as fast as it can into the database
//! while `sqlite-vol backup` runs again and again. Each copy must be a point-in-time snapshot (the writer
//! keeps `count(t) = c.n = max(t.id)` in every transaction) and pass `integrity_check` in the stock sqlite3
//! shell.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Config, Report};
use crate::support::bin;

/// The writer: commits one row and one counter update per transaction until a stop file appears.
pub(super) const WRITER: &str = r#"
import os, sqlite3, sys, time
db, stop = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=NORMAL")
c.execute("PRAGMA busy_timeout=30000")
n, t0 = 0, time.time()
while not os.path.exists(stop):
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO t (v) VALUES (randomblob(100))")
    c.execute("UPDATE c SET n = n + 1")
    c.execute("COMMIT")
    n += 1
print(n, time.time() - t0, flush=True)
"#;

/// Creates the writer's tables, stamped for app `campaign`, with `rows` rows to start from.
pub(super) fn prepare(dir: &Path, rows: u64) -> Result<std::path::PathBuf, String> {
    let db = sqlite_vol::Database::builder("campaign")
        .path(dir)
        .backup_every(std::time::Duration::ZERO, None)
        .open()
        .map_err(|e| e.to_string())?;
    db.write(|tx| {
        tx.execute_batch(&format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
             CREATE TABLE c (n INTEGER NOT NULL);
             INSERT INTO t (v) SELECT randomblob(1000) FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {rows}) SELECT i FROM k);
             INSERT INTO c (n) SELECT count(*) FROM t;"
        ))
        .map_err(sqlite_vol::Error::from_sqlite)
    })
    .map_err(|e| e.to_string())?;
    let path = db.location().path.clone();
    db.close().map_err(|e| e.to_string())?;
    Ok(path)
}

/// Asks the stock sqlite3 shell whether a copy is whole and consistent: (integrity, invariant holds).
pub(super) fn check_copy(copy: &Path) -> (String, bool) {
    let integrity = crate::support::sqlite3_integrity(copy);
    let out = Command::new("sqlite3")
        .arg(copy)
        .arg("SELECT (SELECT count(*) FROM t) = (SELECT n FROM c) AND (SELECT count(*) FROM t) = (SELECT max(id) FROM t);")
        .output();
    let invariant = out
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
        .unwrap_or(false);
    (integrity, invariant)
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = prepare(&tmp.path().join("live"), 60_000)?;
    let stop = tmp.path().join("stop");
    let writer = Command::new("python3")
        .args(["-c", WRITER])
        .arg(&db)
        .arg(&stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    let backups = tmp.path().join("backups");
    let (mut failed, mut bad_integrity, mut not_snapshot, mut durations) =
        (0u64, 0u64, 0u64, Vec::new());
    for _ in 0..cfg.foreign_backups {
        let t = Instant::now();
        let out = Command::new(bin("sqlite-vol"))
            .args(["backup", "--json", "--keep", "3", "--to"])
            .arg(&backups)
            .arg("--db")
            .arg(&db)
            .args(["--app", "campaign"])
            .output()
            .map_err(|e| e.to_string())?;
        durations.push(t.elapsed().as_millis() as u64);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let Some(path) = json["path"].as_str().filter(|_| out.status.success()) else {
            eprintln!("backup failed: {}", String::from_utf8_lossy(&out.stderr));
            failed += 1;
            continue;
        };
        let (integrity, invariant) = check_copy(Path::new(path));
        bad_integrity += u64::from(integrity != "ok");
        not_snapshot += u64::from(!invariant);
    }
    std::fs::write(&stop, b"").map_err(|e| e.to_string())?;
    let out = writer.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let commits: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let secs: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    durations.sort_unstable();
    report.info(
        "backups under a foreign writer",
        "backups taken while Python commits",
        cfg.foreign_backups,
    );
    report.info(
        "backups under a foreign writer",
        "writer commits during the run (commits/s)",
        format!("{commits:.0} ({:.0}/s)", commits / secs),
    );
    report.info(
        "backups under a foreign writer",
        "median backup time (ms)",
        durations.get(durations.len() / 2).copied().unwrap_or(0),
    );
    report.zero(
        "backups under a foreign writer",
        "backups that did not finish",
        failed,
    );
    report.zero(
        "backups under a foreign writer",
        "copies failing integrity_check (sqlite3 shell)",
        bad_integrity,
    );
    report.zero(
        "backups under a foreign writer",
        "copies that are not a point-in-time snapshot",
        not_snapshot,
    );
    if commits < 100.0 {
        return Err(format!(
            "the writer made only {commits} commits: the load did not run"
        ));
    }
    Ok(())
}
