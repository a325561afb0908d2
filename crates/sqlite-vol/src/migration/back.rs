//! The way back from a migration that turned out wrong: restoring the safety backup taken just before the
//! newest applied migration ran. The backup is found in the backup folder by its time (taken no later
//! than the migration was applied) and its schema version (older than that migration); before anything
//! is restored, [`back_plan`] counts the rows of every table now and in that backup, so that the caller
//! can show how much written since would be lost. [`back`] then restores through the library's own
//! restore: verified first, a safety backup of the current state taken first, under the maintenance lock.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::migrate::ledger;
use crate::migrate::schema::ignored;
use crate::restore::{restore, RestoreOptions, Restored};
use crate::sql::open_immutable;
use crate::{manifest, Error, Result};

/// One table's rows now and in the backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableRows {
    /// The table.
    pub table: String,
    /// Rows in the live database (`None`: the table is only in the backup).
    pub now: Option<u64>,
    /// Rows in the backup (`None`: the table is not in the backup, e.g. the migration made it).
    pub in_backup: Option<u64>,
}

/// What going back would do; computed without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackPlan {
    /// The live database.
    pub path: PathBuf,
    /// The newest applied migration, `V<n>__<name>`.
    pub newest: String,
    /// When it was applied (RFC 3339).
    pub applied_on: String,
    /// The backup to restore.
    pub backup: PathBuf,
    /// When it was taken (RFC 3339).
    pub backup_created_at: String,
    /// Its schema version.
    pub backup_schema: Option<i64>,
    /// Rows per table, now and in the backup.
    pub tables: Vec<TableRows>,
    /// Rows that would go: the sum, over tables, of rows now beyond those in the backup. (Rows changed
    /// or deleted since are lost too; counts cannot show those.)
    pub rows_lost: u64,
}

/// Finds the pre-migration backup of the newest applied migration and compares row counts. Changes
/// nothing.
///
/// # Errors
/// [`Error::MigrationRefused`] when the database has no applied migration or no backup in `backup_dir`
/// fits; [`Error::Sqlite`] when a database cannot be read.
pub fn back_plan(db: &Path, app: &str, backup_dir: &Path) -> Result<BackPlan> {
    let refuse = |reason: String| Error::MigrationRefused {
        path: db.to_path_buf(),
        action: "going back before the newest migration".into(),
        reason,
    };
    if !crate::fsx::has_content(db) {
        return Err(refuse(
            "there is no database there (check --db / DB_PATH)".into(),
        ));
    }
    let live = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| Error::sqlite(db, "opening", e))?;
    let err = |e| Error::sqlite(db, "reading", e);
    live.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let history = ledger::history(&live).map_err(err)?;
    let Some(newest) = history.iter().max_by_key(|h| h.version) else {
        return Err(refuse("it has no applied migrations".into()));
    };
    let applied = OffsetDateTime::parse(&newest.applied_on, &Rfc3339).map_err(|_| {
        refuse(format!(
            "the time V{} was applied is unreadable ({:?})",
            newest.version, newest.applied_on
        ))
    })?;
    // Backup names have whole seconds; the safety backup is taken just before the migration runs.
    let latest_ok = applied + time::Duration::seconds(1);
    let found = manifest::list(backup_dir, app)?.into_iter().find_map(|e| {
        let m = manifest::read_manifest(&e.path)?;
        let taken = OffsetDateTime::parse(&e.created_at, &Rfc3339).ok()?;
        let older = m.schema_version.is_none_or(|v| v < newest.version);
        (older && taken <= latest_ok).then_some((e, m))
    });
    let Some((entry, m)) = found else {
        return Err(refuse(format!(
            "no backup in {} was taken before V{}__{} was applied ({}) with an older schema. Pick a backup \
             with `sqlite-vol list` and use `sqlite-vol restore FILE`",
            backup_dir.display(),
            newest.version,
            newest.name,
            newest.applied_on
        )));
    };
    let old = open_immutable(&entry.path)?;
    let now_counts = counts(&live).map_err(err)?;
    let old_counts = counts(&old).map_err(|e| Error::sqlite(&entry.path, "reading", e))?;
    let mut names: Vec<&String> = now_counts
        .iter()
        .chain(&old_counts)
        .map(|(t, _)| t)
        .collect();
    names.sort();
    names.dedup();
    let get = |v: &[(String, u64)], t: &str| v.iter().find(|(n, _)| n == t).map(|(_, c)| *c);
    let tables: Vec<TableRows> = names
        .into_iter()
        .map(|t| TableRows {
            table: t.clone(),
            now: get(&now_counts, t),
            in_backup: get(&old_counts, t),
        })
        .collect();
    let rows_lost = tables
        .iter()
        .map(|t| t.now.unwrap_or(0).saturating_sub(t.in_backup.unwrap_or(0)))
        .sum();
    Ok(BackPlan {
        path: db.to_path_buf(),
        newest: format!("V{}__{}", newest.version, newest.name),
        applied_on: newest.applied_on.clone(),
        backup: entry.path,
        backup_created_at: entry.created_at,
        backup_schema: m.schema_version,
        tables,
        rows_lost,
    })
}

/// Restores `plan.backup` into the database at `db` for `app` through [`crate::restore::restore`]
/// (verified, safety backup first, under the maintenance lock).
///
/// # Errors
/// As [`crate::restore::restore`].
pub fn back(db: &Path, app: &str, plan: &BackPlan, opts: &RestoreOptions<'_>) -> Result<Restored> {
    let r = restore(&plan.backup, db, app, opts)?;
    tracing::warn!(db = %db.display(), undone = %plan.newest, from = %plan.backup.display(),
        "went back to the backup taken before the newest migration");
    Ok(r)
}

/// Rows in every table of the app (the toolkit's and SQLite's own left out).
fn counts(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
    )?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|n| !ignored(n))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let q = format!("SELECT count(*) FROM \"{}\"", n.replace('"', "\"\""));
            conn.query_row(&q, [], |r| r.get::<_, i64>(0))
                .map(|c| (n, c.max(0) as u64))
        })
        .collect()
}
