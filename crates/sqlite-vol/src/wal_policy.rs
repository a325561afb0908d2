//! A WAL that stays bounded: the checkpoint policy a service runs in the background, and the warning when a
//! reader keeps it from working.
//!
//! SQLite folds the WAL back into the database file only as far as the oldest open read transaction allows;
//! a reader that holds an old snapshot (a forgotten transaction, a long report, another process) lets the
//! WAL grow until the disk is full. The policy runs a PASSIVE checkpoint every `interval` (default 1 min) and
//! at once when the `-wal` file passes `limit` (default 64 MiB, checked every second from its size alone).
//! PASSIVE never waits and never blocks a reader or a writer, so a Litestream sidecar, which holds a read
//! transaction on purpose, keeps working. When a checkpoint did fold every frame and the file is still past
//! the limit, one TRUNCATE is tried that gives up at once if anyone is reading or writing (busy timeout zero),
//! which shrinks the file of an idle service. When checkpoints cannot progress and the WAL is past the limit,
//! one WARN says how big it is, how long checkpoints have been stuck, how long the oldest pooled connection
//! of this process has been out, and which other processes hold the database open (from `/proc/*/fd`); one
//! INFO says when they progress again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::counters::Counters;
use crate::{fsx, Database};

pub use crate::settings::{
    DEFAULT_CHECKPOINT_INTERVAL as DEFAULT_INTERVAL, DEFAULT_WAL_LIMIT as DEFAULT_LIMIT,
};

/// What one checkpoint did: frames in the WAL and frames folded into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Folded {
    wal_frames: i64,
    checkpointed: i64,
}

/// The policy's memory between ticks.
struct Policy {
    db: PathBuf,
    conn: Option<Connection>,
    limit: u64,
    interval: Duration,
    last: Instant,
    stuck_since: Option<Instant>,
    warned: bool,
    counters: Counters,
}

impl Policy {
    fn tick(&mut self) {
        let wal = wal_bytes(&self.db);
        if wal == 0 || (wal < self.limit && self.last.elapsed() < self.interval) {
            return;
        }
        self.last = Instant::now();
        self.open();
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let folded = passive(conn);
        let folded = match folded {
            Ok(f) => f,
            Err(e) => {
                self.counters
                    .checkpoint(if is_busy(&e) { "busy" } else { "error" });
                tracing::debug!(db = %self.db.display(), error = %e, "checkpoint did not run");
                return;
            }
        };
        let complete = folded.checkpointed >= folded.wal_frames;
        self.counters
            .checkpoint(if complete { "ok" } else { "busy" });
        if complete {
            if wal_bytes(&self.db) > self.limit {
                let _ = truncate_if_idle(conn);
            }
            if self.warned {
                tracing::info!(db = %self.db.display(), wal_bytes = wal_bytes(&self.db),
                    "checkpoints progress again: the reader that held the WAL let go");
            }
            self.stuck_since = None;
            self.warned = false;
            return;
        }
        let since = *self.stuck_since.get_or_insert_with(Instant::now);
        if wal >= self.limit && !self.warned {
            self.warned = true;
            let oldest = self.counters.pool().oldest_out();
            let others = holders(&self.db);
            tracing::warn!(db = %self.db.display(), wal_bytes = wal, limit_bytes = self.limit,
                stuck_seconds = since.elapsed().as_secs(), wal_frames = folded.wal_frames,
                checkpointed = folded.checkpointed, oldest_read_in_this_process_seconds = oldest.as_secs(),
                other_pids = ?others,
                "the WAL is past its limit and checkpoints cannot fold it: a reader holds an old snapshot. End \
                 long read transactions (in this process, or in the other processes listed); the WAL shrinks \
                 at the next checkpoint after they let go");
        }
    }

    fn open(&mut self) {
        if self.conn.is_none() {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            self.conn = Connection::open_with_flags(&self.db, flags)
                .and_then(|c| c.busy_timeout(Duration::ZERO).map(|()| c))
                .map_err(|e| tracing::debug!(error = %e, "the checkpoint policy cannot open the database"))
                .ok();
        }
    }
}

fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(fsx::sidecar(db, "-wal")).map_or(0, |m| m.len())
}

fn passive(conn: &Connection) -> rusqlite::Result<Folded> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Folded {
            wal_frames: r.get(1)?,
            checkpointed: r.get(2)?,
        })
    })
}

/// A TRUNCATE checkpoint that never waits: the busy timeout of this connection is zero.
fn truncate_if_idle(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|busy| busy == 0)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The other processes that hold the database, its `-wal` or its `-shm` open, from `/proc/*/fd` (only those
/// this process may look at).
pub fn holders(db: &Path) -> Vec<u32> {
    let real = db.canonicalize().unwrap_or_else(|_| db.to_path_buf());
    let names: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|s| {
            if s.is_empty() {
                real.clone()
            } else {
                fsx::sidecar(&real, s)
            }
        })
        .collect();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| names.contains(&t)))
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

impl Database {
    /// Runs the checkpoint policy in the background: a PASSIVE checkpoint every `interval` and whenever the
    /// WAL passes `limit` bytes, with one warning when a reader keeps it from progressing (see
    /// [`crate::wal_policy`]). An `interval` of zero turns it off. Stops when the database is closed.
    pub fn bound_wal(&self, interval: Duration, limit: u64) {
        if interval.is_zero() {
            return;
        }
        let mut policy = Policy {
            db: self.location().path.clone(),
            conn: None,
            limit: limit.max(1),
            interval,
            last: Instant::now(),
            stuck_since: None,
            warned: false,
            counters: self.counters().clone(),
        };
        let period = Duration::from_secs(1).min(interval);
        self.keep_running(crate::ticker::Ticker::start(
            "sqlite-vol-checkpoints",
            period,
            move || policy.tick(),
        ));
    }
}
