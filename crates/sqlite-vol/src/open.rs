//! The one call a service makes at startup: locate, check, create or open, migrate, pool.
//!
//! [`Builder::open`] resolves the location, classifies the volume and applies the persistence policy
//! before anything is created, proves the directory is writable, then opens the database. Work that changes
//! the file — creating and stamping it, applying migrations (after a safety backup when it holds data), and
//! running the app's creation hook exactly once — happens under the maintenance lock, so two instances
//! starting together on one volume do it once. A database that needs nothing is opened without the lock, so
//! a restart is not held up by a backup in progress. Every connection of the returned r2d2 pool is set up
//! with WAL, `synchronous`, `busy_timeout`, `foreign_keys` and the other pragmas in [`Pragmas`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::backup::{self, BackupOptions};
use crate::location::{has_content, sidecar, SIDECARS};
use crate::lock::{MaintenanceLock, Wait};
use crate::migrate::Migrations;
use crate::offsite::{FirstStart, Place};
use crate::schedule::Schedule;
use crate::{identity, prepare, settings, Error, Location, Result, Volume, VolumeKind};

/// The connection pool type.
pub type Pool = r2d2::Pool<SqliteConnectionManager>;
/// A connection borrowed from the pool.
pub type PooledConnection = r2d2::PooledConnection<SqliteConnectionManager>;

/// The creation hook: runs once, inside the transaction that marks the database initialized.
pub type OnCreate =
    Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> std::result::Result<(), String> + Send>;

/// `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Synchronous {
    /// Durable across process crashes; a power loss may roll back the last commits. SQLite's recommendation
    /// for WAL, and the default.
    Normal,
    /// Every commit is fsynced: durable across power loss too.
    Full,
}

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

/// Configures and opens a [`Database`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let db = sqlite_vol::Database::builder("accounts")
///     .path(tmp.path())                       // usually from DB_PATH; omit to use the environment
///     .migrations(sqlite_vol::Migrations::none())
///     .open()?;
/// db.write(|tx| tx.execute_batch("CREATE TABLE IF NOT EXISTS t(x)").map_err(sqlite_vol::Error::from_sqlite))?;
/// # Ok(()) }
/// ```
pub struct Builder {
    app: String,
    path: Option<PathBuf>,
    migrations: Migrations,
    require_persistent: Option<bool>,
    expect_existing: Option<bool>,
    synchronous: Option<Synchronous>,
    busy_timeout: Duration,
    pool_size: Option<u32>,
    connection_timeout: Option<Duration>,
    lock_wait: Duration,
    backup_dir: Option<PathBuf>,
    safety_backup: bool,
    on_create: Option<OnCreate>,
    schedule: Option<(Duration, Option<usize>)>,
    schedule_from_env: bool,
    restore_from_env: bool,
    backup_to: Option<String>,
    restore_from: Option<String>,
}

impl Builder {
    fn new(app: &str) -> Builder {
        Builder {
            app: app.into(),
            path: None,
            migrations: Migrations::none(),
            require_persistent: None,
            expect_existing: None,
            synchronous: None,
            busy_timeout: Duration::from_secs(5),
            pool_size: None,
            connection_timeout: None,
            lock_wait: Duration::from_secs(600),
            backup_dir: None,
            safety_backup: true,
            on_create: None,
            schedule: None,
            schedule_from_env: true,
            restore_from_env: true,
            backup_to: None,
            restore_from: None,
        }
    }

    /// An explicit database path (file, or directory for `<app>.db`): overrides the environment.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Builder {
        self.path = Some(path.into());
        self
    }

    /// An explicit path if `Some`, else the environment decides.
    pub fn path_opt(mut self, path: Option<PathBuf>) -> Builder {
        self.path = path;
        self
    }

    /// The migrations to apply at open.
    pub fn migrations(mut self, migrations: Migrations) -> Builder {
        self.migrations = migrations;
        self
    }

    /// Refuse storage that does not survive the container (default: `SQLITE_VOL_REQUIRE_PERSISTENT`, else
    /// off with a warning).
    pub fn require_persistent(mut self, on: bool) -> Builder {
        self.require_persistent = Some(on);
        self
    }

    /// Refuse to create a missing database (default: `SQLITE_VOL_EXPECT_EXISTING`, else off).
    pub fn expect_existing(mut self, on: bool) -> Builder {
        self.expect_existing = Some(on);
        self
    }

    /// `PRAGMA synchronous` (default: `SQLITE_VOL_SYNCHRONOUS`, else NORMAL).
    pub fn synchronous(mut self, s: Synchronous) -> Builder {
        self.synchronous = Some(s);
        self
    }

    /// `busy_timeout` for every connection (default 5 s).
    pub fn busy_timeout(mut self, d: Duration) -> Builder {
        self.busy_timeout = d;
        self
    }

    /// Pool size (default: `DB_POOL_SIZE`, else 8).
    pub fn pool_size(mut self, n: u32) -> Builder {
        self.pool_size = Some(n.max(1));
        self
    }

    /// How long to wait for a pooled connection (default: `DB_TIMEOUT`, else 30 s).
    pub fn connection_timeout(mut self, d: Duration) -> Builder {
        self.connection_timeout = Some(d);
        self
    }

    /// How long to wait for another process's migration, backup or restore at startup (default 10 min).
    pub fn lock_wait(mut self, d: Duration) -> Builder {
        self.lock_wait = d;
        self
    }

    /// Where safety and scheduled backups go (default: `SQLITE_VOL_BACKUP_DIR`, else `backups/` beside the
    /// database).
    pub fn backup_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.backup_dir = Some(dir.into());
        self
    }

    /// Whether to back up a database that holds data before applying migrations to it (default on).
    pub fn safety_backup(mut self, on: bool) -> Builder {
        self.safety_backup = on;
        self
    }

    /// A hook that runs exactly once, when the database is first created, after migrations (seed data). It
    /// runs in the transaction that marks the database initialized: if it fails, nothing it did is kept and
    /// it runs again at the next start.
    pub fn on_create(
        mut self,
        hook: impl FnOnce(&rusqlite::Transaction<'_>) -> std::result::Result<(), String>
            + Send
            + 'static,
    ) -> Builder {
        self.on_create = Some(Box::new(hook));
        self
    }

    /// Back up every `interval` into the backup folder, keeping the newest `keep` (overrides
    /// `SQLITE_VOL_BACKUP_INTERVAL` / `SQLITE_VOL_BACKUP_KEEP`).
    pub fn backup_every(mut self, interval: Duration, keep: Option<usize>) -> Builder {
        self.schedule = Some((interval, keep));
        self
    }

    /// Also send every scheduled backup to `location` (`s3://bucket/prefix` or a folder), keeping the same
    /// number there (overrides `SQLITE_VOL_BACKUP_TO`). Checked at [`Builder::open`].
    pub fn backup_to(mut self, location: impl Into<String>) -> Builder {
        self.backup_to = Some(location.into());
        self
    }

    /// Restore on first start: when the database does not exist, restore the newest backup from `location`
    /// (`s3://bucket/prefix` or a folder) before opening it, and log loudly that it did (overrides
    /// `SQLITE_VOL_RESTORE_FROM`). With no backup there, a new database is created as usual (or, with
    /// [`Builder::expect_existing`], refused). A location that cannot be read stops the start.
    pub fn restore_from(mut self, location: impl Into<String>) -> Builder {
        self.restore_from = Some(location.into());
        self
    }

    /// Ignore `SQLITE_VOL_RESTORE_FROM` (restore on first start only through [`Builder::restore_from`]), as a
    /// tool that creates a database on purpose must.
    pub fn no_restore_from_env(mut self) -> Builder {
        self.restore_from_env = false;
        self
    }

    /// Ignore `SQLITE_VOL_BACKUP_INTERVAL` (scheduled backups only through [`Builder::backup_every`]).
    pub fn no_backup_schedule_from_env(mut self) -> Builder {
        self.schedule_from_env = false;
        self
    }

    /// Locates, checks, creates or opens, migrates, and returns the database with its pool.
    ///
    /// # Errors
    /// Every refusal in [`Error`]: unusable configuration, storage that will not persist (strict mode), a
    /// read-only or unwritable directory, a missing database when creation is forbidden, another app's file,
    /// a divergent or too-new schema, a failing migration or creation hook.
    pub fn open(mut self) -> Result<Database> {
        let loc = Location::resolve(&self.app, self.path.as_deref())?;
        let volume = Volume::detect(&loc.dir);
        let require = pick(
            self.require_persistent,
            settings::env_bool(settings::REQUIRE_PERSISTENT)?,
            false,
        );
        let expect = pick(
            self.expect_existing,
            settings::env_bool(settings::EXPECT_EXISTING)?,
            false,
        );
        let restore_from = self
            .restore_from
            .take()
            .or_else(|| {
                self.restore_from_env
                    .then(|| settings::env_str(settings::RESTORE_FROM))
                    .flatten()
            })
            .map(|l| Place::parse(&l))
            .transpose()?;
        let backup_to = self
            .backup_to
            .take()
            .or_else(|| settings::env_str(settings::BACKUP_TO))
            .map(|l| Place::parse(&l).map(Arc::new))
            .transpose()?;
        check_policy(&loc, &volume, require)?;
        if volume.read_only {
            return Err(Error::ReadOnly {
                path: loc.dir.clone(),
                mount_point: volume
                    .mount_point
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            });
        }
        let missing = || Error::Missing {
            path: loc.path.clone(),
            dir: loc.dir.clone(),
            volume: volume.kind.describe().into(),
        };
        if expect && restore_from.is_none() && !has_content(&loc.path) {
            return Err(missing());
        }
        let dir_report = prepare::prepare(&loc.dir, Some(&loc.path), &volume)?;
        let backup_dir = self
            .backup_dir
            .clone()
            .unwrap_or_else(|| backup::default_dir(&loc.path));
        // `restore_if_missing` returns `Exists` at once, without the lock, when there is a database.
        if let Some(place) = &restore_from {
            let opts = crate::restore::RestoreOptions {
                known_schema: self.migrations.latest(),
                wait: Wait::For(self.lock_wait),
                ..crate::restore::RestoreOptions::new(&backup_dir)
            };
            match crate::offsite::restore_if_missing(place, None, &loc.path, &self.app, &opts)? {
                FirstStart::Restored(from, r) => {
                    tracing::warn!(db = %loc.path.display(), from = %from, schema_version = r.schema_version,
                        pages = r.page_count, "RESTORED the database from the newest backup, because it did not exist at startup (new machine or new volume?)");
                }
                FirstStart::NoBackup if expect => return Err(missing()),
                FirstStart::NoBackup => {
                    tracing::warn!(db = %loc.path.display(), from = %place.describe(),
                        "no database here and no backup of this app to restore from: starting with a new, empty database");
                }
                FirstStart::Exists => {}
            }
        }
        let synchronous = match self.synchronous {
            Some(s) => s,
            None => match settings::env_str(settings::SYNCHRONOUS)
                .map(|s| s.to_ascii_uppercase())
                .as_deref()
            {
                None | Some("NORMAL") => Synchronous::Normal,
                Some("FULL") => Synchronous::Full,
                Some(other) => {
                    return Err(Error::Config {
                        variable: settings::SYNCHRONOUS.into(),
                        value: other.into(),
                        reason: "use NORMAL or FULL".into(),
                    })
                }
            },
        };
        let pragmas = Pragmas {
            wal: volume.kind.wal_safe(),
            synchronous,
            busy_timeout: self.busy_timeout,
        };
        if !pragmas.wal {
            tracing::warn!(db = %loc.path.display(), fs = ?volume.fs_type,
                "network filesystem: using a rollback journal, since WAL needs shared memory; prefer a local volume");
        }
        let (created, applied) = self.setup(&loc, &volume, &pragmas, &backup_dir)?;

        let size = pick(self.pool_size, settings::env_count(settings::POOL_SIZE)?, 8);
        let timeout = pick(
            self.connection_timeout,
            settings::env_duration(settings::TIMEOUT)?,
            Duration::from_secs(30),
        );
        let init = pragmas.clone();
        let manager = SqliteConnectionManager::file(&loc.path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_init(move |c| init.apply(c));
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(manager)
            .map_err(|e| Error::Pool {
                path: loc.path.clone(),
                source: e,
            })?;

        let schema_version = {
            let c = pool.get().map_err(|e| Error::Pool {
                path: loc.path.clone(),
                source: e,
            })?;
            crate::migrate::schema_version(&c, &loc.path)?
        };
        tracing::info!(app = %self.app, db = %loc.path.display(), source = %loc.source, volume = volume.kind.describe(),
            survives = volume.kind.survives(), free_bytes = dir_report.free_bytes, schema_version, created,
            migrations_applied = applied.len(), "database ready");

        let db = Database {
            app: self.app.clone(),
            pool,
            location: loc,
            volume,
            created,
            applied,
            schema_version,
            known_schema: self.migrations.latest(),
            backup_dir,
            schedule: Mutex::new(None),
            backup_to,
            pragmas,
        };
        let schedule = match self.schedule {
            Some(s) => Some(s),
            None if self.schedule_from_env => {
                match settings::env_duration(settings::BACKUP_INTERVAL)? {
                    Some(d) if !d.is_zero() => Some((
                        d,
                        settings::env_count(settings::BACKUP_KEEP)?.map(|k| k as usize),
                    )),
                    _ => None,
                }
            }
            None => None,
        };
        if let Some((interval, keep)) = schedule {
            db.start_backups(interval, keep);
        }
        Ok(db)
    }

    /// Creates, stamps, migrates and seeds as needed; returns (created, migrations applied).
    fn setup(
        &mut self,
        loc: &Location,
        volume: &Volume,
        pragmas: &Pragmas,
        backup_dir: &Path,
    ) -> Result<(bool, Vec<String>)> {
        // Fast path: an existing database that needs nothing is opened without the lock.
        if has_content(&loc.path) {
            let conn = open_conn(&loc.path, pragmas, false)?;
            if !needs_work(self, &conn, loc)? {
                return Ok((false, Vec::new()));
            }
        }
        let _lock = MaintenanceLock::acquire(&loc.path, "migrate", Wait::For(self.lock_wait))?;
        let created = !has_content(&loc.path);
        if created {
            remove_orphans(&loc.path)?;
        }
        let mut conn = open_conn(&loc.path, pragmas, true)?;
        let err = |e| Error::sqlite(&loc.path, "setting up", e);
        if created {
            identity::stamp(&conn, &self.app).map_err(err)?;
            tracing::warn!(db = %loc.path.display(), source = %loc.source, volume = volume.kind.describe(),
                survives = volume.kind.survives(), "created a NEW, EMPTY database (first start on this volume?)");
        }
        let id = check_identity(&conn, loc, &self.app)?;
        if id.application_id == 0 {
            tracing::info!(db = %loc.path.display(), "adopting an existing database: stamping its identity");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            identity::stamp(&tx, &self.app).map_err(err)?;
            identity::mark_initialized(&tx).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        let plan = self.migrations.plan(&conn, &loc.path)?;
        let mut applied = Vec::new();
        if !plan.pending.is_empty() {
            if !created && self.safety_backup && holds_data(&conn).map_err(err)? {
                let m =
                    backup::backup_locked(&loc.path, &self.app, &BackupOptions::new(backup_dir))?;
                tracing::info!(backup = %m.path.display(), pending = ?plan.pending, "safety backup taken before migrating");
            }
            applied = self.migrations.apply(&mut conn, &loc.path)?;
            tracing::info!(db = %loc.path.display(), applied = ?applied, "migrations applied");
        }
        if identity::read(&conn).map_err(err)?.initialized_at.is_none() {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            if let Some(hook) = self.on_create.take() {
                // On failure the transaction is dropped (rolled back) and the hook runs again next start.
                hook(&tx).map_err(|message| Error::Hook {
                    path: loc.path.clone(),
                    message,
                })?;
                tracing::info!(db = %loc.path.display(), "creation hook ran");
            }
            identity::mark_initialized(&tx).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        // Fold the new pages into the main file so it is never a 0-byte file with all content in the WAL.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        Ok((created, applied))
    }
}

/// Picks the builder's value, else the environment's, else the default.
fn pick<T>(builder: Option<T>, env: Option<T>, default: T) -> T {
    builder.or(env).unwrap_or(default)
}

/// Logs or refuses storage that will not survive.
fn check_policy(loc: &Location, volume: &Volume, require: bool) -> Result<()> {
    if volume.persistent != Some(false) {
        if volume.kind == VolumeKind::NetworkFilesystem {
            tracing::warn!(dir = %loc.dir.display(), "database on {}: {}", volume.kind.describe(), volume.kind.survives());
        }
        return Ok(());
    }
    let fix = volume.fix(&loc.dir);
    if require {
        return Err(Error::NotPersistent {
            path: loc.path.clone(),
            kind: volume.kind.describe().into(),
            survives: volume.kind.survives().into(),
            fix,
        });
    }
    tracing::warn!(db = %loc.path.display(), volume = volume.kind.describe(), survives = volume.kind.survives(),
        fix = %fix, "the database will NOT survive the container being removed");
    Ok(())
}

fn needs_work(b: &Builder, conn: &Connection, loc: &Location) -> Result<bool> {
    let id = check_identity(conn, loc, &b.app)?;
    let plan = b.migrations.plan(conn, &loc.path)?;
    Ok(id.application_id == 0 || !plan.pending.is_empty() || id.initialized_at.is_none())
}

fn check_identity(conn: &Connection, loc: &Location, app: &str) -> Result<identity::Identity> {
    let id = identity::read(conn).map_err(|e| not_a_db(&loc.path, e))?;
    let expected = identity::application_id(app);
    if id.application_id != 0 && id.application_id != expected {
        return Err(Error::WrongApplication {
            path: loc.path.clone(),
            app: app.into(),
            expected,
            found: id.application_id,
            hint: "",
        });
    }
    Ok(id)
}

fn not_a_db(path: &Path, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::NotADatabase {
                path: path.into(),
                reason: format!(
                    "{e}. Restore a backup with `sqlite-vol restore`, or move the file away"
                ),
            }
        }
        _ => Error::sqlite(path, "reading", e),
    }
}

/// Whether any table besides the toolkit's own holds rows worth protecting.
fn holds_data(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1",
        [identity::META_TABLE],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn open_conn(path: &Path, pragmas: &Pragmas, create: bool) -> Result<Connection> {
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

/// Removes `-wal`, `-shm` and `-journal` files whose database is missing or empty, so that SQLite cannot
/// replay a stale log onto a new database. Call only under the maintenance lock.
pub(crate) fn remove_orphans(db: &Path) -> Result<()> {
    for suffix in SIDECARS {
        let p = sidecar(db, suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {
                tracing::warn!(file = %p.display(), "removed a stale file left without its database")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing stale file", &p, e)),
        }
    }
    Ok(())
}

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
    backup_to: Option<Arc<Place>>,
    pragmas: Pragmas,
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
    pub fn backup(&self, keep: Option<usize>) -> Result<backup::Manifest> {
        let opts = BackupOptions {
            keep,
            wait: Wait::For(Duration::from_secs(60)),
            ..BackupOptions::new(&self.backup_dir)
        };
        backup::backup(&self.location.path, &self.app, &opts)
    }

    /// Takes a backup into the backup folder and sends it to `place` (see [`crate::offsite::send`]); with
    /// `keep`, both the folder and the place keep only the newest `keep`. Returns the manifest and where the
    /// backup now is off-site.
    ///
    /// # Errors
    /// As [`Database::backup`] and [`crate::offsite::send`]; the local backup stays when sending fails.
    pub fn backup_to(
        &self,
        place: &Place,
        keep: Option<usize>,
    ) -> Result<(backup::Manifest, String)> {
        let m = self.backup(keep)?;
        let (to, _) = crate::offsite::send_keeping(place, &m, &self.app, keep)?;
        Ok((m, to))
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

    /// Starts scheduled backups every `interval`, keeping the newest `keep`; replaces a running schedule.
    pub fn start_backups(&self, interval: Duration, keep: Option<usize>) {
        let s = Schedule::start(
            self.location.path.clone(),
            self.app.clone(),
            self.backup_dir.clone(),
            interval,
            keep,
            self.backup_to.clone(),
        );
        if let Ok(mut slot) = self.schedule.lock() {
            *slot = Some(s);
        }
        tracing::info!(every = ?interval, dir = %self.backup_dir.display(), keep,
            to = self.backup_to.as_ref().map(|p| p.describe()), "scheduled backups on");
    }

    /// Folds the WAL into the main file: a TRUNCATE checkpoint that gives up at once if a reader (such as a
    /// Litestream sidecar) is in the way, then a PASSIVE one. Call at shutdown.
    ///
    /// # Errors
    /// [`Error::Pool`] or [`Error::Sqlite`].
    pub fn checkpoint(&self) -> Result<(i64, i64)> {
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
        Ok((log, done))
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
        let r = self.checkpoint();
        drop(self.pool);
        r.map(|_| ())
    }
}
