//! The check of a backup made beside its copy, on the database itself.
//!
//! Right after the copy pins its snapshot, a second connection pins one too and runs the check there while
//! the pages are copied, on the other core; a third connection watches `data_version` between copy steps and
//! stops the check at the first commit by anyone else, so that a writer never shares the machine with it for
//! long. When nobody committed from the copy's snapshot until it was released, both connections read the same
//! snapshot: the check covered exactly the pages the backup API copied, and the copy is read once more only
//! for its hash. Otherwise (a writer came, the check could not run, or the database is in rollback-journal
//! mode, where the check's read lock would keep writers out after the copy) the copy is checked after it is
//! made.

use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::sql::pragma_u64;
use crate::verify::{checked_facts, FileFacts};
use crate::Error;

/// What the check beside the copy found.
pub(crate) enum Outcome {
    /// The check said `ok`; what it read of the database at that snapshot.
    Passed(FileFacts),
    /// The check said something other than `ok`.
    Failed(String),
    /// It could not run to its end (stopped for a writer, or an error): check the copy instead.
    NotRun,
}

/// Watches for commits by other connections during a copy and stops the check beside it at the first.
pub(crate) struct Watch {
    conn: Connection,
    at_start: Option<u64>,
    stop: Arc<AtomicBool>,
    seen: Cell<bool>,
}

impl Watch {
    /// Whether someone committed since the check's snapshot was pinned; the first time it sees a commit (or
    /// cannot tell), it stops the check.
    pub(crate) fn poll(&self) -> bool {
        if !self.seen.get() {
            let now = pragma_u64(&self.conn, "data_version").ok();
            if now.is_none() || now != self.at_start {
                self.stop_check();
            }
        }
        self.seen.get()
    }

    /// Stops the check (a writer came, or the copy failed): it then ends as [`Outcome::NotRun`].
    pub(crate) fn stop_check(&self) {
        self.seen.set(true);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The check's connection, its snapshot pinned, and the flag that stops it.
pub(crate) struct Checker {
    conn: Connection,
    stop: Arc<AtomicBool>,
}

/// Opens the check's connection and the watcher on `db` and pins the check's snapshot. Call it right after
/// pinning the copy's. `None` when either cannot be opened: the copy is then checked after it is made.
pub(crate) fn pin(db: &Path) -> Option<(Watch, Checker)> {
    let open = || -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(Duration::from_secs(5))?;
        Ok(c)
    };
    let checker = open().ok()?;
    // A small page cache: the check reads each page once and the kernel's cache serves the rest. With
    // SQLite's default (2 MiB), the cache's churn on the check's own thread grew that thread's malloc arena
    // with the database: a 1 GiB backup peaked at 54-56 MiB, a 64 MiB one at 37 MiB; with 256 KiB, 32 MiB
    // at both, as fast.
    checker
        .execute_batch(
            "PRAGMA cache_size = -256; BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;",
        )
        .ok()?;
    // A progress handler rather than `sqlite3_interrupt`, which is lost when it comes before the check's
    // statement starts.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    checker
        .progress_handler(100, Some(move || flag.load(Ordering::Relaxed)))
        .ok()?;
    let conn = open().ok()?;
    let at_start = pragma_u64(&conn, "data_version").ok();
    let watch = Watch {
        conn,
        at_start,
        stop: Arc::clone(&stop),
        seen: Cell::new(false),
    };
    Some((
        watch,
        Checker {
            conn: checker,
            stop,
        },
    ))
}

/// Runs `check` (`quick_check` or `integrity_check`) on the pinned `checker`, then ends its snapshot.
pub(crate) fn run(checker: Checker, db: &Path, check: &str) -> Outcome {
    if checker.stop.load(Ordering::Relaxed) {
        return Outcome::NotRun;
    }
    let sql_err = |e| Error::sqlite(db, "checking beside the copy", e);
    let outcome = match checked_facts(&checker.conn, db, check, sql_err) {
        Ok(Ok(facts)) => Outcome::Passed(facts),
        Ok(Err(verdict)) => Outcome::Failed(verdict),
        Err(e) => {
            tracing::debug!(error = %e, "the check beside the copy did not finish; checking the copy");
            Outcome::NotRun
        }
    };
    // Closing ends the snapshot (and no progress handler can stop a COMMIT).
    drop(checker);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with_rows(dir: &Path) -> std::path::PathBuf {
        let db = dir.join("a.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t(x); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
             INSERT INTO t SELECT i FROM n; CREATE INDEX tx ON t(x);",
        )
        .unwrap();
        db
    }

    #[test]
    fn a_check_with_nobody_writing_passes_and_reads_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_with_rows(tmp.path());
        let (watch, checker) = pin(&db).unwrap();
        assert!(!watch.poll());
        match run(checker, &db, "quick_check") {
            Outcome::Passed(f) => assert!(f.page_count >= 3),
            _ => panic!("the check should pass"),
        }
        assert!(!watch.poll());
    }

    #[test]
    fn a_commit_by_another_connection_is_seen_and_the_check_does_not_report() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_with_rows(tmp.path());
        let (watch, checker) = pin(&db).unwrap();
        Connection::open(&db)
            .unwrap()
            .execute("INSERT INTO t VALUES (3)", [])
            .unwrap();
        assert!(watch.poll());
        assert!(matches!(
            run(checker, &db, "integrity_check"),
            Outcome::NotRun
        ));
    }

    #[test]
    fn a_stopped_check_ends_its_running_statement() {
        let tmp = tempfile::tempdir().unwrap();
        let db = db_with_rows(tmp.path());
        let (watch, checker) = pin(&db).unwrap();
        watch.stop_check();
        let r = checker
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0));
        assert_eq!(
            r.unwrap_err().sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
    }
}
