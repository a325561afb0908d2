//! Async access for tokio services: reads on tokio's blocking threads, writes through one writer that
//! commits many callers' changes together.
//!
//! [`AsyncDatabase`] wraps an open [`Database`]. [`AsyncDatabase::read`] runs a closure with a pooled
//! connection on tokio's blocking thread pool. [`AsyncDatabase::write`] queues a closure to the process's
//! one writer connection, which runs on its own thread: it takes what is queued, runs every closure inside
//! its own savepoint of one `BEGIN IMMEDIATE` transaction, commits once (one fsync under
//! `synchronous=FULL` for the whole group), and only then answers each caller. A closure that fails or
//! panics is rolled back alone and its caller gets the error; the others commit.
//!
//! Back-pressure is explicit: a full queue answers [`Error::WriteQueueFull`] at once, and a write that has
//! not started within [`WriterOptions::queue_timeout`] is dropped unapplied with [`Error::WriteTimeout`]
//! ([`Error::is_overloaded`] is true for both, so a service can answer 503). Dropping a caller's future
//! never leaves half a change: a write not yet started is skipped, one that started finishes or is rolled
//! back with its savepoint. Other processes writing the same file are waited for with `busy_timeout` as
//! with any connection. [`AsyncDatabase::shutdown`] stops taking writes and drains the queue.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let rt = tokio::runtime::Runtime::new()?;
//! # rt.block_on(async {
//! use sqlite_vol::{AsyncDatabase, Database, Error};
//!
//! let db = Database::builder("notes").path(tmp.path()).open()?;
//! let db = AsyncDatabase::new(db)?;
//! db.write(|c| c.execute_batch("CREATE TABLE IF NOT EXISTS notes(body TEXT)").map_err(Error::from_sqlite))
//!     .await?;
//! db.write(|c| c.execute("INSERT INTO notes VALUES ('hello')", []).map_err(Error::from_sqlite))
//!     .await?; // committed (and durable under the configured `synchronous`) when this returns
//! let n: i64 = db
//!     .read(|c| c.query_row("SELECT count(*) FROM notes", [], |r| r.get(0)).map_err(Error::from_sqlite))
//!     .await?;
//! assert_eq!(n, 1);
//! db.shutdown().await;
//! # Ok::<(), Error>(()) })?;
//! # Ok(()) }
//! ```

mod job;
mod stats;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Database, Error, Result};
use job::{Job, Ticket};
use stats::Counters;
pub use stats::{WriterStats, BATCH_BUCKETS};

/// How the writer queues and groups writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    queue_capacity: usize,
    max_batch: usize,
    queue_timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            queue_capacity: 1024,
            max_batch: 256,
            queue_timeout: Duration::from_secs(5),
        }
    }
}

impl WriterOptions {
    /// How many writes may wait in the queue before [`Error::WriteQueueFull`] (default 1024, at least 1).
    pub fn queue_capacity(mut self, n: usize) -> WriterOptions {
        self.queue_capacity = n.max(1);
        self
    }

    /// The most writes committed in one transaction (default 256, at least 1).
    pub fn max_batch(mut self, n: usize) -> WriterOptions {
        self.max_batch = n.max(1);
        self
    }

    /// How long a write may wait in the queue before it is dropped unapplied with [`Error::WriteTimeout`]
    /// (default 5 s). A write that has started is always waited for.
    pub fn queue_timeout(mut self, d: Duration) -> WriterOptions {
        self.queue_timeout = d;
        self
    }
}

/// An open database for async code: pooled reads on the blocking threads, and the process's one writer.
///
/// Cheap to clone (all clones share the writer). The writer thread stops when [`AsyncDatabase::shutdown`]
/// is called or the last clone is dropped, after running every write still queued. Needs a tokio runtime
/// with the time driver (`#[tokio::main]` has it).
#[derive(Clone)]
pub struct AsyncDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    path: PathBuf,
    options: WriterOptions,
    queue: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AsyncDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDatabase")
            .field("path", &self.inner.path)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl AsyncDatabase {
    /// Starts the writer for `db` with the default [`WriterOptions`].
    ///
    /// # Errors
    /// As [`AsyncDatabase::with_options`].
    pub fn new(db: impl Into<Arc<Database>>) -> Result<AsyncDatabase> {
        AsyncDatabase::with_options(db, WriterOptions::default())
    }

    /// Starts the writer for `db`: opens its own connection (with the pool's pragmas) and its thread. Call
    /// once per process and share the handle; it blocks briefly to open the connection.
    ///
    /// # Errors
    /// [`Error::Sqlite`] if the writer's connection cannot be opened, [`Error::Io`] if
    /// its thread cannot be started.
    pub fn with_options(
        db: impl Into<Arc<Database>>,
        options: WriterOptions,
    ) -> Result<AsyncDatabase> {
        let db = db.into();
        let path = db.location().path.clone();
        let counters = Arc::new(Counters::default());
        let writer = writer::Writer::open(&db, options.max_batch, counters.clone())?;
        let (tx, rx) = mpsc::sync_channel(options.queue_capacity);
        let thread = std::thread::Builder::new()
            .name("sqlite-vol-writer".into())
            .spawn(move || writer.serve(rx))
            .map_err(|e| Error::io("starting the writer thread for", &path, e))?;
        Ok(AsyncDatabase {
            inner: Arc::new(Inner {
                db,
                path,
                options,
                queue: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                counters,
            }),
        })
    }

    /// The database underneath (location, status, backups, the pool).
    pub fn database(&self) -> &Arc<Database> {
        &self.inner.db
    }

    /// Runs `f` with a pooled connection on tokio's blocking threads and returns its result. Reads see the
    /// last committed state and are not held up by the writer (WAL). Dropping the future lets `f` finish
    /// on its own.
    ///
    /// # Errors
    /// `f`'s error; [`Error::Pool`] when no connection is free within the connection timeout;
    /// [`Error::Panicked`] if `f` panicked; [`Error::Stopped`] if the runtime is shutting down.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let db = self.inner.db.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let conn = db.conn()?;
            f(&conn)
        })
        .await;
        joined.map_err(|e| E::from(self.join_error(e)))?
    }

    /// Runs `f` on the writer's connection inside its own savepoint of the next group commit, and returns
    /// its result once the transaction holding it has committed. If `f` returns an error or panics, only its
    /// own changes are rolled back. Do not begin, commit or roll back in `f` (SQLite refuses it there);
    /// nested savepoints of your own are fine.
    ///
    /// # Errors
    /// `f`'s error; [`Error::WriteQueueFull`] at once when the queue is full; [`Error::WriteTimeout`] when
    /// the write did not start within the queue timeout (it was not applied); [`Error::Panicked`];
    /// [`Error::Stopped`] after shutdown; [`Error::BatchRolledBack`] or [`Error::Sqlite`] (for example
    /// busy: another process held the write lock past `busy_timeout`) when the change was not kept.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (job, mut answer) = Job::new(self.inner.path.clone(), f);
        let ticket = Ticket(job.claim.clone());
        self.enqueue(job).map_err(E::from)?;
        let timeout = self.inner.options.queue_timeout;
        let gone = || E::from(self.stopped());
        match tokio::time::timeout(timeout, &mut answer).await {
            Ok(r) => r.unwrap_or_else(|_| Err(gone())),
            Err(_) if ticket.0.abandon() => {
                self.inner.counters.update(|s| s.abandoned += 1);
                Err(E::from(Error::WriteTimeout {
                    path: self.inner.path.clone(),
                    waited: timeout,
                }))
            }
            // The writer has started it: its answer is on the way and is the truth.
            Err(_) => answer.await.unwrap_or_else(|_| Err(gone())),
        }
    }

    /// The status report of the database (see [`crate::status()`]), read on the blocking threads.
    ///
    /// # Errors
    /// As [`crate::status()`].
    pub async fn status(&self) -> Result<crate::Status> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || db.status())
            .await
            .map_err(|e| self.join_error(e))?
    }

    /// A snapshot of the writer's counters.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner
            .counters
            .snapshot(self.inner.options.queue_capacity)
    }

    /// Stops taking writes ([`Error::Stopped`] from now on, on every clone), runs every write still queued,
    /// and waits for the writer thread to finish. Safe to call more than once.
    pub async fn shutdown(&self) {
        drop(lock(&self.inner.queue).take());
        let thread = lock(&self.inner.thread).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    fn enqueue(&self, job: Job) -> Result<()> {
        let queue = lock(&self.inner.queue);
        let Some(tx) = queue.as_ref() else {
            return Err(self.stopped());
        };
        let depth = &self.inner.counters.depth;
        depth.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                depth.fetch_sub(1, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => {
                        self.inner.counters.update(|s| s.refused_full += 1);
                        Err(Error::WriteQueueFull {
                            path: self.inner.path.clone(),
                            capacity: self.inner.options.queue_capacity,
                        })
                    }
                    TrySendError::Disconnected(_) => Err(self.stopped()),
                }
            }
        }
    }

    fn stopped(&self) -> Error {
        Error::Stopped {
            path: self.inner.path.clone(),
        }
    }

    fn join_error(&self, e: tokio::task::JoinError) -> Error {
        match e.try_into_panic() {
            Ok(payload) => Error::Panicked {
                path: self.inner.path.clone(),
                message: job::panic_message(payload.as_ref()),
            },
            Err(_) => self.stopped(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Error {
    /// True when the database is only busy or overloaded right now and the same request may succeed after a
    /// short pause: a full write queue, a write that timed out in the queue, a handle shutting down, no free
    /// pooled connection, or SQLite busy (another process held the lock past `busy_timeout`). Services
    /// answer these with 503 and `Retry-After`.
    pub fn is_overloaded(&self) -> bool {
        match self {
            Error::WriteQueueFull { .. }
            | Error::WriteTimeout { .. }
            | Error::Stopped { .. }
            | Error::Pool { .. } => true,
            Error::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}
