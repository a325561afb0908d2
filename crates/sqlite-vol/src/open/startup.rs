//! The startup steps that change the file, under the maintenance lock: create and stamp the database,
//! adopt an unstamped one, take a safety backup and apply migrations, run the creation hook once. A
//! database that needs none of it is opened without the lock, so a restart is not held up by a backup in
//! progress. Also the persistence policy that decides, before anything is created, whether to go on.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::pragmas::{not_a_db, open_conn, OnCreate, Pragmas};
use crate::backup::{self, BackupOptions};
use crate::fsx::{has_content, remove_orphans};
use crate::lock::{MaintenanceLock, Wait};
use crate::migrate::Migrations;
use crate::{identity, Error, Location, Result, Volume, VolumeKind};

/// What the steps need of the builder.
pub(super) struct Setup<'a> {
    pub(super) app: &'a str,
    pub(super) migrations: &'a Migrations,
    pub(super) lock_wait: Duration,
    pub(super) safety_backup: bool,
    pub(super) on_create: Option<OnCreate>,
    pub(super) migration_limit: Option<Duration>,
}

impl Setup<'_> {
    /// Creates, stamps, migrates and seeds as needed; returns (created, migrations applied).
    pub(super) fn run(
        mut self,
        loc: &Location,
        volume: &Volume,
        pragmas: &Pragmas,
        backup_dir: &Path,
    ) -> Result<(bool, Vec<String>)> {
        // Fast path: an existing database that needs nothing is opened without the lock.
        if has_content(&loc.path) {
            let conn = open_conn(&loc.path, pragmas, false)?;
            if !self.needs_work(&conn, loc)? {
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
            identity::stamp(&conn, self.app).map_err(err)?;
            tracing::warn!(db = %loc.path.display(), source = %loc.source, volume = volume.kind.describe(),
                survives = volume.kind.survives(), "created a NEW, EMPTY database (first start on this volume?)");
        }
        let id = check_identity(&conn, loc, self.app)?;
        if id.application_id == 0 {
            tracing::info!(db = %loc.path.display(), "adopting an existing database: stamping its identity");
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            identity::stamp(&tx, self.app).map_err(err)?;
            identity::mark_initialized(&tx).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        let plan = self.migrations.plan(&conn, &loc.path)?;
        let mut applied = Vec::new();
        if !plan.pending.is_empty() {
            if let Some(limit) = self.migration_limit.filter(|_| !created) {
                if holds_data(&conn).map_err(err)? {
                    self.migrations
                        .check_planned(&loc.path, &plan.pending, limit)?;
                }
            }
            if !created && self.safety_backup && holds_data(&conn).map_err(err)? {
                let m =
                    backup::backup_locked(&loc.path, self.app, &BackupOptions::new(backup_dir))?;
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

    fn needs_work(&self, conn: &Connection, loc: &Location) -> Result<bool> {
        let id = check_identity(conn, loc, self.app)?;
        let plan = self.migrations.plan(conn, &loc.path)?;
        Ok(id.application_id == 0 || !plan.pending.is_empty() || id.initialized_at.is_none())
    }
}

/// Logs or refuses storage that will not survive.
pub(super) fn check_policy(loc: &Location, volume: &Volume, require: bool) -> Result<()> {
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

/// Whether any table besides the toolkit's own holds rows worth protecting.
fn holds_data(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> ?1",
        [identity::META_TABLE],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}
