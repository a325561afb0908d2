//! The open database: its pool, what is known about where it lives, and the maintenance a service runs
//! on it while it is open (backups, restores, the backup schedule, checkpoints, closing).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::TransactionBehavior;

use super::{Builder, Pool, PooledConnection, Pragmas};
use crate::backup::{self, BackupOptions};
use crate::lock::Wait;
use crate::manifest::Manifest;
use crate::schedule::Schedule;
use crate::store::{self, Place, Sent};
use crate::{Error, Location, Result, Volume};

/// An open database: its pool and what is known about where it lives.
pub struct Database {
    app: String,
    pool: Pool,
    location: Location,
    volume: Volume,
    created: bool,
    applied: Vec<String>,
    schema_version: Option<i64>,
    known_schema: Option<i64>,
    backup_dir: PathBuf,
    schedule: Mutex<Option<Schedule>>,
    backup_to: Arc<store::Destinations>,
    pragmas: Pragmas,
    counters: crate::counters::Counters,
    background: Mutex<Vec<crate::ticker::Ticker>>,
}

/// What [`Database::new`] assembles: everything the builder established.
pub(super) struct Parts {
    pub(super) app: String,
    pub(super) pool: Pool,
    pub(super) location: Location,
    pub(super) volume: Volume,
    pub(super) created: bool,
    pub(super) applied: Vec<String>,
    pub(super) schema_version: Option<i64>,
    pub(super) known_schema: Option<i64>,
    pub(super) backup_dir: PathBuf,
    pub(super) backup_to: Arc<store::Destinations>,
    pub(super) pragmas: Pragmas,
    pub(super) counters: crate::counters::Counters,
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    /// Frames in the WAL when it ran.
    pub wal_frames: i64,
    /// Frames folded into the database file.
    pub checkpointed: i64,
    /// Whether a reader (or writer) kept the WAL from being reset; PASSIVE was run instead.
    pub busy: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("app", &self.app)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Starts configuring the database of `app`.
    pub fn builder(app: &str) -> Builder {
        Builder::new(app)
    }

    pub(super) fn new(p: Parts) -> Database {
        Database {
            app: p.app,
            pool: p.pool,
            location: p.location,
            volume: p.volume,
            created: p.created,
            applied: p.applied,
            schema_version: p.schema_version,
            known_schema: p.known_schema,
            backup_dir: p.backup_dir,
            schedule: Mutex::new(None),
            backup_to: p.backup_to,
            pragmas: p.pragmas,
            counters: p.counters,
            background: Mutex::new(Vec::new()),
        }
    }

    /// Keeps a background job (drills, the checkpoint policy) running until [`Database::close`].
    pub(crate) fn keep_running(&self, job: crate::ticker::Ticker) {
        if let Ok(mut jobs) = self.background.lock() {
            jobs.push(job);
        }
    }

    /// What this service counts for its metrics (see [`crate::metrics`]).
    pub fn counters(&self) -> &crate::counters::Counters {
        &self.counters
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`Error::Pool`] when none is free within the connection timeout.
    pub fn conn(&self) -> Result<PooledConnection> {
        self.pool.get().map_err(|e| Error::Pool {
            path: self.location.path.clone(),
            source: e,
        })
    }

    /// Runs `f` in a write transaction that begins with `BEGIN IMMEDIATE`, so two writers never dead-end in
    /// `SQLITE_BUSY` on a lock upgrade; commits if `f` returns `Ok`, rolls back otherwise.
    ///
    /// # Errors
    /// `f`'s error, or a pool or SQLite error converted with `E::from`.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.conn()?;
        let path = &self.location.path;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::sqlite(path, "beginning a write", e))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(|e| Error::sqlite(path, "committing", e))?;
        Ok(out)
    }

    /// The pragmas every connection of the pool gets (for a connection of one's own, such as a writer's).
    pub fn pragmas(&self) -> &Pragmas {
        &self.pragmas
    }

    /// Where the database is and how that was decided.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The storage that holds it.
    pub fn volume(&self) -> &Volume {
        &self.volume
    }

    /// The app name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Whether this open created the database.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The migrations this open applied.
    pub fn applied_migrations(&self) -> &[String] {
        &self.applied
    }

    /// The schema version at open.
    pub fn schema_version(&self) -> Option<i64> {
        self.schema_version
    }

    /// Where backups go.
    pub fn backup_dir(&self) -> &Path {
        &self.backup_dir
    }

    /// A status report (see [`crate::status()`]).
    ///
    /// # Errors
    /// As [`crate::status()`].
    pub fn status(&self) -> Result<crate::Status> {
        crate::status::status_of(&self.location, &self.backup_dir, &self.app)
    }

    /// Takes a backup into the backup folder (see [`crate::backup::backup`]).
    ///
    /// # Errors
    /// As [`crate::backup::backup`].
    pub fn backup(&self, keep: Option<usize>) -> Result<Manifest> {
        let opts = BackupOptions {
            keep,
            wait: Wait::For(Duration::from_secs(60)),
            ..BackupOptions::new(&self.backup_dir)
        };
        let started = std::time::Instant::now();
        let taken = backup::backup(&self.location.path, &self.app, &opts);
        self.counters
            .backup(taken.is_ok().then(|| started.elapsed().as_secs_f64()));
        taken
    }

    /// Takes a backup into the backup folder and sends it to `place` (see [`crate::store::send`]); with
    /// `keep`, both the folder and the place keep only the newest `keep`.
    ///
    /// # Errors
    /// As [`Database::backup`] and [`crate::store::send`]; the local backup stays when sending fails.
    pub fn backup_to(&self, place: &Place, keep: Option<usize>) -> Result<Sent> {
        let m = self.backup(keep)?;
        store::send_with(place, m, &self.app, keep, &self.backup_to.policy)
    }

    /// Where scheduled backups are sent (the builder's [`Builder::backup_to`] places, maybe none), and the
    /// policy (adoption, encryption keys) they are sent and brought back with.
    pub fn offsite(&self) -> &store::Destinations {
        &self.backup_to
    }

    /// Restores `file` into this database while the pool stays open (see [`crate::restore::restore`]);
    /// backups with a schema newer than this build's migrations are refused.
    ///
    /// # Errors
    /// As [`crate::restore::restore`].
    pub fn restore(&self, file: &Path) -> Result<crate::restore::Restored> {
        let opts = crate::restore::RestoreOptions {
            known_schema: self.known_schema,
            wait: Wait::For(Duration::from_secs(60)),
            ..crate::restore::RestoreOptions::new(&self.backup_dir)
        };
        crate::restore::restore(file, &self.location.path, &self.app, &opts)
    }

    /// Backs up every `interval`, keeping the newest `keep` (and sending each to the builder's
    /// [`Builder::backup_to`] place); replaces a running schedule. An `interval` of zero stops it.
    pub fn backup_every(&self, interval: Duration, keep: Option<usize>) {
        if interval.is_zero() {
            if let Ok(mut slot) = self.schedule.lock() {
                slot.take();
            }
            return;
        }
        let s = Schedule::start(
            self.location.path.clone(),
            self.app.clone(),
            self.backup_dir.clone(),
            interval,
            keep,
            self.backup_to.clone(),
            self.counters.clone(),
        );
        if let Ok(mut slot) = self.schedule.lock() {
            *slot = Some(s);
        }
        tracing::info!(every = ?interval, dir = %self.backup_dir.display(), keep,
            to = self.backup_to.describe(), encrypted = self.backup_to.policy.encrypts(), "scheduled backups on");
    }

    /// Folds the WAL into the main file: a TRUNCATE checkpoint that gives up at once if a reader (such as a
    /// Litestream sidecar) is in the way, then a PASSIVE one. Call at shutdown.
    ///
    /// # Errors
    /// [`Error::Pool`] or [`Error::Sqlite`].
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let conn = self.conn()?;
        let path = &self.location.path;
        let err = |e| Error::sqlite(path, "checkpointing", e);
        conn.busy_timeout(Duration::ZERO).map_err(err)?;
        let q = |mode: &str| {
            conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
        };
        let (busy, log, done) = match q("TRUNCATE") {
            Ok((0, l, d)) => (0, l, d),
            _ => q("PASSIVE").map_err(err)?,
        };
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        tracing::info!(db = %path.display(), busy, wal_frames = log, checkpointed = done, "WAL checkpointed");
        Ok(Checkpoint {
            wal_frames: log,
            checkpointed: done,
            busy: busy != 0,
        })
    }

    /// Stops scheduled backups, checkpoints the WAL and closes every connection. The WAL file is removed
    /// when the last connection in any process closes.
    ///
    /// # Errors
    /// As [`Database::checkpoint`].
    pub fn close(self) -> Result<()> {
        if let Ok(mut s) = self.schedule.lock() {
            s.take();
        }
        if let Ok(mut jobs) = self.background.lock() {
            jobs.clear();
        }
        let r = self.checkpoint();
        drop(self.pool);
        r.map(|_| ())
    }
}
