//! The writer thread: one connection, one transaction per batch, one savepoint per write.
//!
//! The thread takes whatever is queued (at most `max_batch` writes), drops those whose callers gave up,
//! opens `BEGIN IMMEDIATE` (waiting for other processes with the connection's `busy_timeout`, like any
//! writer), and runs each write inside its own `SAVEPOINT`: a write whose closure fails or panics is rolled
//! back to its savepoint and the others go on. Then it commits once and only after `COMMIT` returns does it
//! answer anyone, so an acknowledgement always means the change is as durable as `synchronous` makes it.
//! While one batch commits the next one queues up, which is what groups commits under load without any
//! artificial delay.
//!
//! Failures never double-apply and never lose silently: a busy or failing `BEGIN` answers the batch with
//! the error before any closure ran; a failing `COMMIT` (retried while SQLite says busy) rolls back and
//! tells every caller their write was not kept. Closures cannot end the writer's transaction: the
//! connection's authorizer refuses `BEGIN`, `COMMIT`, `ROLLBACK` and the writer's own savepoint while a
//! closure runs; should SQLite itself roll the transaction back (a full disk, an `ON CONFLICT ROLLBACK`),
//! the writes already run are reported as rolled back and the rest go into the next batch.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::job::{Job, Ran};
use super::stats::Counters;
use crate::{Database, Error, Result};

/// The writer's savepoint name; closures may not touch it.
const SAVEPOINT: &str = "sqlite_vol_write";

// The writer's own statements, prepared once and cached. The leading comment keeps their cache keys apart
// from anything a closure could prepare (a statement authorized outside a closure must not be handed to one).
const BEGIN: &str = "/* sqlite-vol writer */ BEGIN IMMEDIATE";
const COMMIT: &str = "/* sqlite-vol writer */ COMMIT";
const OPEN_SAVEPOINT: &str = "/* sqlite-vol writer */ SAVEPOINT sqlite_vol_write";
const RELEASE_SAVEPOINT: &str = "/* sqlite-vol writer */ RELEASE sqlite_vol_write";
const UNDO_SAVEPOINT: &str = "/* sqlite-vol writer */ ROLLBACK TO sqlite_vol_write";
/// How often a `COMMIT` that SQLite calls busy is tried again (each try waits `busy_timeout`).
const COMMIT_TRIES: u32 = 3;

/// The writer's connection and what it needs to report.
pub(crate) struct Writer {
    conn: Connection,
    path: PathBuf,
    max_batch: usize,
    counters: Arc<Counters>,
    /// True while a caller's closure runs: the authorizer then refuses transaction control.
    in_closure: Arc<AtomicBool>,
}

impl Writer {
    /// Opens the writer's own connection to `db`'s file, with the same pragmas as the pool's connections
    /// (so `synchronous` and `busy_timeout` are exactly the configured ones). Takes nothing from the pool.
    pub(crate) fn open(db: &Database, max_batch: usize, counters: Arc<Counters>) -> Result<Writer> {
        let path = db.location().path.clone();
        let err = |e| Error::sqlite(&path, "opening the writer connection", e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(err)?;
        db.pragmas().apply(&conn).map_err(err)?;
        let in_closure = Arc::new(AtomicBool::new(false));
        let flag = in_closure.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if !flag.load(Ordering::Relaxed) {
                return Authorization::Allow;
            }
            match ctx.action {
                AuthAction::Transaction { .. } => Authorization::Deny,
                AuthAction::Savepoint { savepoint_name, .. }
                    if savepoint_name.eq_ignore_ascii_case(SAVEPOINT) =>
                {
                    Authorization::Deny
                }
                _ => Authorization::Allow,
            }
        }))
        .map_err(err)?;
        Ok(Writer {
            conn,
            path,
            max_batch: max_batch.max(1),
            counters,
            in_closure,
        })
    }

    /// Serves the queue until every sender is gone and the queue is empty (so shutdown drains it).
    pub(crate) fn serve(self, queue: Receiver<Job>) {
        let mut pending: VecDeque<Job> = VecDeque::new();
        loop {
            if pending.is_empty() {
                match queue.recv() {
                    Ok(job) => self.took(&mut pending, job),
                    Err(_) => break,
                }
            }
            while pending.len() < self.max_batch {
                match queue.try_recv() {
                    Ok(job) => self.took(&mut pending, job),
                    Err(_) => break,
                }
            }
            let n = pending.len().min(self.max_batch);
            let mut batch = Vec::with_capacity(n);
            for job in pending.drain(..n) {
                if job.claim.is_queued() {
                    batch.push(job);
                } else {
                    self.counters.update(|s| s.abandoned += 1);
                }
            }
            // Writes not reached when SQLite ended the transaction early go first in the next batch.
            for job in self.run_batch(batch).into_iter().rev() {
                pending.push_front(job);
            }
        }
        tracing::debug!(db = %self.path.display(), "writer drained and stopped");
    }

    fn took(&self, pending: &mut VecDeque<Job>, job: Job) {
        self.counters.depth.fetch_sub(1, Ordering::Relaxed);
        pending.push_back(job);
    }

    /// Runs one batch in one transaction; returns the writes it did not reach.
    fn run_batch(&self, batch: Vec<Job>) -> Vec<Job> {
        if batch.is_empty() {
            return Vec::new();
        }
        // A lone write needs no savepoint: if it fails, the whole transaction is rolled back instead.
        let lone = batch.len() == 1;
        if let Err(e) = self.cached(BEGIN) {
            let e = Error::sqlite(&self.path, "beginning a write", e);
            tracing::warn!(db = %self.path.display(), error = %e, writes = batch.len(), "could not begin a batch; its writes were not run");
            for job in batch {
                if job.claim.start() {
                    job.refuse(each(&e, &self.path));
                }
            }
            return Vec::new();
        }
        let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
        let mut broken: Option<String> = None;
        let mut jobs = batch.into_iter();
        for job in jobs.by_ref() {
            if !job.claim.start() {
                self.counters.update(|s| s.abandoned += 1);
                continue;
            }
            let opened = if lone {
                Ok(())
            } else {
                self.cached(OPEN_SAVEPOINT)
            };
            if let Err(e) = opened {
                broken = Some(format!("opening its savepoint failed: {e}"));
                job.refuse(Error::sqlite(&self.path, "opening a savepoint", e));
                break;
            }
            self.in_closure.store(true, Ordering::Relaxed);
            let outcome = job.run(&self.conn);
            self.in_closure.store(false, Ordering::Relaxed);
            let Some(r) = outcome else { continue };
            if r.panicked {
                tracing::error!(db = %self.path.display(), "a write closure panicked; its savepoint was rolled back");
            }
            if !r.ok {
                self.counters.update(|s| {
                    s.failed += 1;
                    s.panicked += u64::from(r.panicked);
                });
            }
            if self.conn.is_autocommit() {
                broken = Some("SQLite rolled the transaction back after a write failed".into());
                ran.push(r);
                break;
            }
            if lone {
                if !r.ok {
                    // Its own error is its answer; nothing of it is kept.
                    self.rollback();
                    (r.answer)(Ok(()));
                    return Vec::new();
                }
                ran.push(r);
                continue;
            }
            let end = if r.ok {
                self.cached(RELEASE_SAVEPOINT)
            } else {
                self.cached(UNDO_SAVEPOINT)
                    .and_then(|()| self.cached(RELEASE_SAVEPOINT))
            };
            ran.push(r);
            if let Err(e) = end {
                broken = Some(format!("closing a savepoint failed: {e}"));
                break;
            }
        }
        let rest: Vec<Job> = jobs.collect();
        let kept = ran.iter().filter(|r| r.ok).count();
        if let Some(reason) = broken {
            self.rollback();
            tracing::warn!(db = %self.path.display(), reason, "a write batch was rolled back whole");
            self.counters.update(|s| s.rolled_back += kept as u64);
            for r in ran {
                (r.answer)(Err(Error::BatchRolledBack {
                    path: self.path.clone(),
                    reason: reason.clone(),
                }));
            }
            return rest;
        }
        let start = Instant::now();
        match self.commit() {
            Ok(()) => {
                self.counters.batch(kept, start.elapsed());
                for r in ran {
                    (r.answer)(Ok(()));
                }
            }
            Err(e) => {
                let e = Error::sqlite(&self.path, "committing", e);
                tracing::warn!(db = %self.path.display(), error = %e, writes = kept, "a write batch failed to commit and was rolled back");
                self.counters.update(|s| s.rolled_back += kept as u64);
                for r in ran {
                    (r.answer)(Err(each(&e, &self.path)));
                }
            }
        }
        rest
    }

    fn sql(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }

    /// Runs one of the writer's own statements through the statement cache.
    fn cached(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    /// `COMMIT`, tried again while SQLite answers busy (a rollback journal waiting for readers); rolled back
    /// when it finally fails, so the connection is always left outside a transaction.
    fn commit(&self) -> rusqlite::Result<()> {
        let mut tries = 0;
        loop {
            match self.cached(COMMIT) {
                Ok(()) => return Ok(()),
                Err(e) if is_busy(&e) && tries + 1 < COMMIT_TRIES && !self.conn.is_autocommit() => {
                    tries += 1;
                }
                Err(e) => {
                    self.rollback();
                    return Err(e);
                }
            }
        }
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.sql("ROLLBACK") {
                tracing::error!(db = %self.path.display(), error = %e, "rolling back a write batch failed");
            }
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A copy of a batch-wide error for one caller: the same SQLite code where there is one (so a busy
/// database still reads as busy), else the message.
fn each(e: &Error, path: &Path) -> Error {
    match e {
        Error::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, m),
            ..
        } => Error::Sqlite {
            path: path.into(),
            source: rusqlite::Error::SqliteFailure(*f, m.clone()),
        },
        Error::NoSpace { action, .. } => Error::NoSpace {
            action,
            path: path.into(),
        },
        other => Error::BatchRolledBack {
            path: path.into(),
            reason: other.to_string(),
        },
    }
}
