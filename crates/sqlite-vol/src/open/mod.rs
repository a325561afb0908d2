//! The one call a service makes at startup: locate, check, create or open, migrate, pool.
//!
//! [`Builder::open`] resolves the location, classifies the volume and applies the persistence policy
//! before anything is created, proves the directory is writable, restores the newest backup when the
//! database is missing and a place to restore from is configured, then opens the database. Work that
//! changes the file — creating and stamping it, applying migrations (after a safety backup when it holds
//! data), and running the app's creation hook exactly once — happens under the maintenance lock (see
//! `startup`), so two instances starting together on one volume do it once. Every connection of the
//! returned pool is set up as [`Pragmas`] says. The handle itself is [`Database`].
//!
//! Settings come from one [`Settings`] value: read from the environment at [`Builder::open`] unless the
//! caller gives its own ([`Builder::settings`]) or none at all ([`Builder::ignore_env`]); the builder's
//! own setters win over either.

mod database;
mod pragmas;
mod startup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use database::{Checkpoint, Database};
pub use pragmas::{OnCreate, Pool, PooledConnection, Pragmas};

use crate::lock::Wait;
use crate::migrate::Migrations;
use crate::restore::{self, FirstStart, RestoreOptions};
use crate::store::Place;
use crate::{manifest, prepare, Error, Location, Result, Settings, Synchronous, Volume};

/// Where the settings not given to the builder come from.
enum Base {
    /// [`Settings::from_env`] at open.
    Env,
    /// The caller's.
    Given(Box<Settings>),
    /// Nowhere: defaults only, and the database path is not looked up in the environment either.
    Nothing,
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
/// db.write(|tx| Ok::<_, sqlite_vol::Error>(tx.execute_batch("CREATE TABLE IF NOT EXISTS t(x)")?))?;
/// # Ok(()) }
/// ```
pub struct Builder {
    app: String,
    explicit: Settings,
    base: Base,
    migrations: Migrations,
    busy_timeout: Duration,
    lock_wait: Duration,
    safety_backup: bool,
    on_create: Option<OnCreate>,
    wal: bool,
}

impl Builder {
    fn new(app: &str) -> Builder {
        Builder {
            app: app.into(),
            explicit: Settings::default(),
            base: Base::Env,
            migrations: Migrations::none(),
            busy_timeout: Duration::from_secs(5),
            lock_wait: Duration::from_secs(600),
            safety_backup: true,
            on_create: None,
            wal: true,
        }
    }

    /// Takes these settings instead of reading the environment (the builder's own setters still win). The
    /// database path, when `settings.db` is unset, is still looked up in `<APP>_DB_PATH`, `DB_PATH` and
    /// `DATABASE_URL`.
    pub fn settings(mut self, settings: &Settings) -> Builder {
        self.base = Base::Given(Box::new(settings.clone()));
        self
    }

    /// Reads nothing from the environment: only the builder's setters and the defaults count, and with no
    /// [`Builder::path`] the database goes in the per-user data directory.
    pub fn ignore_env(mut self) -> Builder {
        self.base = Base::Nothing;
        self
    }

    /// An explicit database path (file, or directory for `<app>.db`): overrides the environment.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Builder {
        self.explicit.db = Some(path.into());
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
        self.explicit.require_persistent = Some(on);
        self
    }

    /// Refuse to create a missing database (default: `SQLITE_VOL_EXPECT_EXISTING`, else off).
    pub fn expect_existing(mut self, on: bool) -> Builder {
        self.explicit.expect_existing = Some(on);
        self
    }

    /// `PRAGMA synchronous` (default: `SQLITE_VOL_SYNCHRONOUS`, else NORMAL).
    pub fn synchronous(mut self, s: Synchronous) -> Builder {
        self.explicit.synchronous = Some(s);
        self
    }

    /// `busy_timeout` for every connection (default 5 s).
    pub fn busy_timeout(mut self, d: Duration) -> Builder {
        self.busy_timeout = d;
        self
    }

    /// Pool size (default: `DB_POOL_SIZE`, else 8).
    pub fn pool_size(mut self, n: u32) -> Builder {
        self.explicit.pool_size = Some(n.max(1));
        self
    }

    /// How long to wait for a pooled connection (default: `DB_TIMEOUT`, else 30 s).
    pub fn connection_timeout(mut self, d: Duration) -> Builder {
        self.explicit.db_timeout = Some(d);
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
        self.explicit.backup_dir = Some(dir.into());
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
    /// `SQLITE_VOL_BACKUP_INTERVAL` / `SQLITE_VOL_BACKUP_KEEP`); an `interval` of zero means no scheduled
    /// backups, whatever the environment says. The same as [`Database::backup_every`] after opening.
    pub fn backup_every(mut self, interval: Duration, keep: Option<usize>) -> Builder {
        self.explicit.backup_interval = Some(interval);
        self.explicit.backup_keep = keep.map(|k| u32::try_from(k).unwrap_or(u32::MAX));
        self
    }

    /// Also send every scheduled backup to `location` (`s3://bucket/prefix` or a folder), keeping the same
    /// number there (overrides `SQLITE_VOL_BACKUP_TO`). Checked at [`Builder::open`].
    pub fn backup_to(mut self, location: impl Into<String>) -> Builder {
        self.explicit.backup_to = Some(location.into());
        self
    }

    /// Restore on first start: when the database does not exist, restore the newest backup from `location`
    /// (`s3://bucket/prefix` or a folder) before opening it, and log loudly that it did (overrides
    /// `SQLITE_VOL_RESTORE_FROM`). With no backup there, a new database is created as usual (or, with
    /// [`Builder::expect_existing`], refused). A location that cannot be read stops the start.
    pub fn restore_from(mut self, location: impl Into<String>) -> Builder {
        self.explicit.restore_from = Some(location.into());
        self
    }

    /// Refuse to apply, to a database that holds data, a pending migration whose rehearsal by
    /// [`crate::migration::plan`] took longer than `limit`, or that was never rehearsed with its current text
    /// (overrides `SQLITE_VOL_MIGRATION_LIMIT`; default: no limit).
    pub fn migration_limit(mut self, limit: Duration) -> Builder {
        self.explicit.migration_limit = Some(limit);
        self
    }

    /// The checkpoint policy (see [`crate::wal_policy`]): a PASSIVE checkpoint every `interval` and whenever
    /// the WAL passes `wal_limit` bytes (overrides `SQLITE_VOL_CHECKPOINT_INTERVAL` / `SQLITE_VOL_WAL_LIMIT`;
    /// defaults 1 min and 64 MiB); an `interval` of zero turns it off.
    pub fn checkpoint_policy(mut self, interval: Duration, wal_limit: u64) -> Builder {
        self.explicit.checkpoint_interval = Some(interval);
        self.explicit.wal_limit = Some(wal_limit);
        self
    }

    /// Whether to switch the database to WAL where the volume allows it (default on). Off keeps a rollback
    /// journal: online backups then make writers wait while the copy is pinned.
    pub fn wal(mut self, on: bool) -> Builder {
        self.wal = on;
        self
    }

    /// Locates, checks, creates or opens, migrates, and returns the database with its pool.
    ///
    /// # Errors
    /// Every refusal in [`Error`]: unusable configuration, storage that will not persist (strict mode), a
    /// read-only or unwritable directory, a missing database when creation is forbidden, another app's file,
    /// a divergent or too-new schema, a failing migration or creation hook.
    pub fn open(mut self) -> Result<Database> {
        let (base, env) = match std::mem::replace(&mut self.base, Base::Env) {
            Base::Env => (Settings::from_env()?, true),
            Base::Given(s) => (*s, true),
            Base::Nothing => (Settings::default(), false),
        };
        let s = std::mem::take(&mut self.explicit).or(base);
        let loc = if env {
            Location::resolve(&self.app, s.db.as_deref())?
        } else {
            Location::resolve_with(&self.app, s.db.as_deref(), |_| None)?
        };
        let volume = Volume::detect(&loc.dir);
        let restore_from = s.restore_from.as_deref().map(Place::parse).transpose()?;
        let backup_to = Arc::new(crate::store::Destinations::from_settings(&s)?);
        let expect = s.expect_existing.unwrap_or(false);
        startup::check_policy(&loc, &volume, s.require_persistent.unwrap_or(false))?;
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
        if expect && restore_from.is_none() && !crate::fsx::has_content(&loc.path) {
            return Err(missing());
        }
        let dir_report = prepare::prepare(&loc.dir, Some(&loc.path), &volume)?;
        let backup_dir = s
            .backup_dir
            .clone()
            .unwrap_or_else(|| manifest::beside(&loc.path));
        // `restore_if_missing` returns `Exists` at once, without the lock, when there is a database.
        if let Some(place) = &restore_from {
            let opts = RestoreOptions {
                known_schema: self.migrations.latest(),
                wait: Wait::For(self.lock_wait),
                ..RestoreOptions::new(&backup_dir)
            };
            match restore::restore_if_missing_with(
                place,
                None,
                &loc.path,
                &self.app,
                &opts,
                &backup_to.policy,
            )? {
                FirstStart::Restored(from, r) => {
                    tracing::warn!(db = %loc.path.display(), from = %from, schema_version = r.schema_version,
                        pages = r.page_count, "RESTORED the database from the newest backup, because it did not exist at startup (new machine or new volume?)");
                }
                FirstStart::NoBackup if expect => return Err(missing()),
                FirstStart::NoBackup => {
                    tracing::warn!(db = %loc.path.display(), from = %place,
                        "no database here and no backup of this app to restore from: starting with a new, empty database");
                }
                FirstStart::Exists => {}
            }
        }
        let pragmas = Pragmas {
            wal: self.wal && volume.kind.wal_safe(),
            synchronous: s.synchronous.unwrap_or(Synchronous::Normal),
            busy_timeout: self.busy_timeout,
        };
        if !pragmas.wal && self.wal {
            tracing::warn!(db = %loc.path.display(), fs = ?volume.fs_type,
                "network filesystem: using a rollback journal, since WAL needs shared memory; prefer a local volume");
        }
        let setup = startup::Setup {
            app: &self.app,
            migrations: &self.migrations,
            lock_wait: self.lock_wait,
            safety_backup: self.safety_backup,
            on_create: self.on_create.take(),
            migration_limit: s.migration_limit,
        };
        let (created, applied) = setup.run(&loc, &volume, &pragmas, &backup_dir)?;

        let counters = crate::counters::Counters::new();
        let pool = pragmas::pool(
            &loc.path,
            &pragmas,
            s.pool_size.unwrap_or(8),
            s.db_timeout.unwrap_or(Duration::from_secs(30)),
            counters.pool().handler(),
        )?;
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

        let db = Database::new(database::Parts {
            app: self.app.clone(),
            pool,
            location: loc,
            volume,
            created,
            applied,
            schema_version,
            known_schema: self.migrations.latest(),
            backup_dir,
            backup_to,
            pragmas,
            counters,
        });
        if let Some((interval, keep)) = s.schedule() {
            db.backup_every(interval, keep);
        }
        db.bound_wal(
            s.checkpoint_interval
                .unwrap_or(crate::settings::DEFAULT_CHECKPOINT_INTERVAL),
            s.wal_limit.unwrap_or(crate::settings::DEFAULT_WAL_LIMIT),
        );
        if let Some(interval) = s.drill_interval.filter(|d| !d.is_zero()) {
            // Drills test the off-site copy when there is one: that is the one a lost volume needs.
            // With several destinations, the first.
            let place = match s.backup_to.as_deref() {
                Some(to) => Place::parse(to.split(',').next().unwrap_or(to))?,
                None => Place::Dir(db.backup_dir().to_path_buf()),
            };
            db.drill_every(interval, place, s.drill_query.clone());
        }
        Ok(db)
    }
}
