//! Rehearsing the pending migrations on a consistent copy of the live database, timed, before they run
//! for real. The copy is an ordinary online backup (the backup path: consistent, checked) written into a
//! private temporary folder beside the database when the volume has room (same disk, so the times are
//! the ones production will see), else in the system's temporary folder; the migrations are applied to it
//! one at a time, each timed, and the schema before and after compared. The copy is deleted afterwards
//! (and a copy left by a killed plan is deleted by the next one); the live database is only read.
//!
//! The result is also recorded beside the database (see [`crate::migrate::PlanRecord`]), so that a service's
//! startup can refuse a migration whose rehearsal took longer than allowed
//! ([`crate::Builder::migration_limit`], `SQLITE_VOL_MIGRATION_LIMIT`).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use refinery::{Runner, Target};
use rusqlite::Connection;

use crate::backup::{backup, BackupOptions};
use crate::fsx::sidecar;
use crate::lock::Wait;
use crate::migrate::plan_record::record_path;
use crate::migrate::schema::{Change, Schema};
use crate::migrate::{Migrations, PlanRecord, Step};
use crate::{Error, Result};

/// What [`plan`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    /// The live database (only read).
    pub path: PathBuf,
    /// The folder the copy was made in (deleted since).
    pub copy_dir: PathBuf,
    /// Whether that folder was on the database's own volume.
    pub same_volume: bool,
    /// The size of the copy.
    pub bytes: u64,
    /// How long taking the copy took.
    pub copy_ms: u64,
    /// The schema version before.
    pub current: Option<i64>,
    /// Each pending migration, in order, with its time.
    pub steps: Vec<Step>,
    /// How long the write lock would be held: the migrations run in one transaction at startup.
    pub write_lock_ms: u64,
    /// What they change in the schema (before → after).
    pub changes: Vec<Change>,
    /// Where the record for startup's limit was written.
    pub record: PathBuf,
}

const COPY_PREFIX: &str = ".sqlite-vol-plan-";

/// Rehearses the pending `migrations` on a copy of the database at `db` for `app`; the live database is
/// left byte-identical. The copy is taken under the maintenance lock (waiting as `wait` says).
///
/// # Errors
/// The refusals of [`Migrations::plan`] (divergent, too new); [`Error::NoSpace`] when neither the volume
/// nor the temporary folder has room for a copy; [`Error::MigrationFailed`] when a migration fails on the
/// copy (which is what a plan is for: nothing live was touched); the errors of [`crate::backup::backup`].
pub fn plan(db: &Path, app: &str, migrations: &Migrations, wait: Wait) -> Result<Planned> {
    let bytes = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(sidecar(db, "-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let (parent, same_volume) = copy_parent(db, bytes)?;
    remove_stale_copies(&parent);
    let dir = parent.join(format!(
        "{COPY_PREFIX}{}-{}",
        std::process::id(),
        crate::identity::random_id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io("creating the plan's folder", &dir, e))?;
    let guard = RemoveOnDrop(dir.clone());
    let started = Instant::now();
    let copy = backup(
        db,
        app,
        &BackupOptions {
            wait,
            ..BackupOptions::new(&dir)
        },
    )?;
    let copy_ms = started.elapsed().as_millis() as u64;
    let mut conn = Connection::open(&copy.path)
        .map_err(|e| Error::sqlite(&copy.path, "opening the copy", e))?;
    let err = |e| Error::sqlite(&copy.path, "rehearsing", e);
    // As a service runs it: WAL, synchronous NORMAL.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
        .map_err(err)?;
    let pending = migrations.plan(&conn, db)?;
    let before = Schema::read(&conn).map_err(err)?;
    let mut steps = Vec::new();
    for name in &pending.pending {
        let Some(m) = migrations
            .list
            .iter()
            .find(|m| format!("V{}__{}", m.version(), m.name()) == *name)
        else {
            continue;
        };
        let t = Instant::now();
        Runner::new(&migrations.list)
            .set_grouped(false)
            .set_abort_divergent(true)
            .set_target(Target::Version(m.version()))
            .run(&mut conn)
            .map_err(|e| Error::MigrationFailed {
                path: db.to_path_buf(),
                migration: format!(
                    "{name} (rehearsed on a copy; the live database was not touched)"
                ),
                version_before: pending.current.unwrap_or(0),
                source: Box::new(e),
            })?;
        steps.push(Step {
            migration: name.clone(),
            version: i64::from(m.version()),
            checksum: m.checksum(),
            ms: t.elapsed().as_millis() as u64,
        });
    }
    let after = Schema::read(&conn).map_err(err)?;
    drop(conn);
    drop(guard);
    let record = PlanRecord {
        planned_at: crate::clock::now_rfc3339(),
        bytes,
        steps: steps.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    crate::fsx::write_atomic(&record_path(db), &json, "writing the migration plan record")?;
    Ok(Planned {
        path: db.to_path_buf(),
        copy_dir: dir,
        same_volume,
        bytes,
        copy_ms,
        current: pending.current,
        write_lock_ms: steps.iter().map(|s| s.ms).sum(),
        steps,
        changes: before.diff(&after),
        record: record_path(db),
    })
}

/// Beside the database when its volume has room for a copy and growth, else the temporary folder.
fn copy_parent(db: &Path, bytes: u64) -> Result<(PathBuf, bool)> {
    let need = bytes.saturating_mul(2) + (16 << 20);
    let dir = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    if fs2::available_space(&dir).is_ok_and(|free| free >= need) {
        return Ok((dir, true));
    }
    let tmp = std::env::temp_dir();
    if fs2::available_space(&tmp).is_ok_and(|free| free >= need) {
        tracing::warn!(db = %db.display(), tmp = %tmp.display(), "not enough room beside the database for a copy; rehearsing in the temporary folder, so times are from another disk");
        return Ok((tmp, false));
    }
    Err(Error::NoSpace {
        action: "making a copy to rehearse the migrations on",
        path: dir,
    })
}

/// Deletes copies left by plans whose process is gone.
fn remove_stale_copies(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(COPY_PREFIX)
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            tracing::warn!(dir = %e.path().display(), "removing a copy left by an interrupted migration plan");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
