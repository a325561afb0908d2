//! Adopting a database that already has the schema its migrations would create (made by a script with
//! `CREATE TABLE IF NOT EXISTS`, an ORM's `create_all`, or by hand) before migrations existed: V1..VN are
//! applied to an empty in-memory database, the two normalised [`Schema`]s are compared, and only when they
//! are the same are V1..VN recorded as applied in refinery's history (by refinery itself, with its "fake"
//! target), with the files' checksums and texts.
//! On any difference nothing is written and the difference is the answer. Data is never read or changed.

use std::path::{Path, PathBuf};

use refinery::{Migration, Runner, Target};
use rusqlite::{Connection, OpenFlags};

use super::ledger;
use super::schema::{Change, Schema};
use super::Migrations;
use crate::lock::{MaintenanceLock, Wait};
use crate::{identity, Error, Result};

/// What [`baseline`] recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Baselined {
    /// The database file.
    pub path: PathBuf,
    /// The version it is now at.
    pub version: i64,
    /// The migrations recorded as applied, as `V<n>__<name>`.
    pub marked: Vec<String>,
}

/// What differs between the database behind `conn` (before) and what V1..V`version` create (after).
/// Changes nothing.
///
/// # Errors
/// [`Error::MigrationRefused`] when `version` is not one of `migrations` or they fail on an empty
/// database; [`Error::Sqlite`] when a schema cannot be read.
pub fn baseline_diff(
    conn: &Connection,
    path: &Path,
    migrations: &Migrations,
    version: i64,
) -> Result<Vec<Change>> {
    let wanted = upto(migrations, path, version)?;
    let mut mem =
        Connection::open_in_memory().map_err(|e| Error::sqlite(path, "opening memory", e))?;
    Runner::new(&wanted.iter().map(|m| (*m).clone()).collect::<Vec<_>>())
        .set_grouped(true)
        .set_target(Target::Version(version_i32(version)))
        .run(&mut mem)
        .map_err(|e| {
            refused(
                path,
                version,
                format!("the migrations fail on an empty database: {e}"),
            )
        })?;
    let err = |e| Error::sqlite(path, "reading schema", e);
    let live = Schema::read(conn).map_err(err)?;
    let made = Schema::read(&mem).map_err(err)?;
    Ok(live.diff(&made))
}

/// Marks V1..V`version` of `migrations` as applied to the database at `db` for `app`, after proving that it
/// already has exactly the schema they create. Under the maintenance lock.
///
/// # Errors
/// [`Error::MigrationRefused`] with the schema difference, or when the database already has a history, is
/// missing, or `version` is unknown; [`Error::WrongApplication`] for another app's database;
/// [`Error::Locked`]; [`Error::Sqlite`]. On any error nothing was written.
pub fn baseline(
    db: &Path,
    app: &str,
    migrations: &Migrations,
    version: i64,
    wait: Wait,
) -> Result<Baselined> {
    if !crate::fsx::has_content(db) {
        return Err(refused(
            db,
            version,
            "there is no database there (check --db / DB_PATH)".into(),
        ));
    }
    let _lock = MaintenanceLock::acquire(db, "baseline", wait)?;
    let mut conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| Error::sqlite(db, "opening", e))?;
    let err = |e| Error::sqlite(db, "baselining", e);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let id = identity::read(&conn).map_err(|e| Error::NotADatabase {
        path: db.to_path_buf(),
        reason: e.to_string(),
    })?;
    let expected = identity::application_id(app);
    if id.application_id != 0 && id.application_id != expected {
        return Err(Error::WrongApplication {
            path: db.to_path_buf(),
            app: app.into(),
            expected,
            found: id.application_id,
            hint: "",
        });
    }
    let history = ledger::history(&conn).map_err(err)?;
    if !history.is_empty() {
        return Err(refused(
            db,
            version,
            format!(
                "it already has a migration history (up to V{}); baseline is for a database made before \
                 migrations existed. See `sqlite-vol migrate status`",
                history.iter().map(|h| h.version).max().unwrap_or(0)
            ),
        ));
    }
    let changes = baseline_diff(&conn, db, migrations, version)?;
    if !changes.is_empty() {
        let lines: Vec<String> = changes.iter().map(|c| format!("  {c}")).collect();
        return Err(refused(
            db,
            version,
            format!(
                "its schema is not what V1..V{version} create (- the database, + the migrations):\n{}\nNothing \
                 was changed. Make the schemas match (or baseline at the version that matches), then retry",
                lines.join("\n")
            ),
        ));
    }
    // refinery records them itself (its "fake" target: history rows, no statements run), so the history
    // is exactly what it would have written.
    let wanted = upto(migrations, db, version)?;
    Runner::new(&wanted.iter().map(|m| (*m).clone()).collect::<Vec<_>>())
        .set_grouped(true)
        .set_target(Target::FakeVersion(version_i32(version)))
        .run(&mut conn)
        .map_err(|e| {
            refused(
                db,
                version,
                format!("refinery could not record the history: {e}"),
            )
        })?;
    if let Err(e) = ledger::record_texts(&conn, &wanted) {
        tracing::warn!(db = %db.display(), error = %e, "could not record the text of the baselined migrations");
    }
    let marked: Vec<String> = wanted
        .iter()
        .map(|m| format!("V{}__{}", m.version(), m.name()))
        .collect();
    tracing::warn!(db = %db.display(), marked = ?marked, "baseline: migrations recorded as applied, the schema having been proven to match");
    Ok(Baselined {
        path: db.to_path_buf(),
        version,
        marked,
    })
}

/// V1..V`version` of `migrations`, refusing an unknown `version`.
fn upto<'a>(migrations: &'a Migrations, path: &Path, version: i64) -> Result<Vec<&'a Migration>> {
    if migrations.get(version).is_none() {
        return Err(refused(
            path,
            version,
            format!(
                "there is no migration V{version} (the latest is {})",
                migrations
                    .latest()
                    .map_or("none".into(), |v| format!("V{v}"))
            ),
        ));
    }
    Ok(migrations
        .list
        .iter()
        .filter(|m| i64::from(m.version()) <= version)
        .collect())
}

fn version_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn refused(path: &Path, version: i64, reason: String) -> Error {
    Error::MigrationRefused {
        path: path.to_path_buf(),
        action: format!("baseline to V{version}"),
        reason,
    }
}
