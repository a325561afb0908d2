//! Schema migrations with refinery, with the refusals that keep data safe.
//!
//! Before anything runs, the database's history is compared with the migrations this build carries:
//! a migration changed after it was applied is refused ([`Error::DivergentMigration`]), and a database that
//! has migrations this build does not know — an older image started on a newer database — is refused
//! ([`Error::SchemaTooNew`]) and never touched. Pending migrations run in one transaction, so a failing one
//! leaves the database exactly as it was. Nothing here drops or recreates a table.
//!
//! Around that engine, the tools to live with migrations: [`status`](status()) (applied, pending,
//! divergent, unknown), [`new`](new_migration) (the next numbered file), [`baseline`](baseline()) (adopt a
//! database made before migrations existed, after proving its [`schema`]), [`repair`](repair()) (accept a comment-only edit,
//! audited); rehearsing on a copy and going back to the pre-migration backup are in [`crate::migration`],
//! which needs the backup and restore paths. The text of each applied migration and the repair audit
//! trail are kept in the toolkit's own tables ([`ledger`]).

mod baseline;
pub mod ledger;
mod new;
pub(crate) mod plan_record;
mod repair;
pub mod schema;
mod sqltext;
mod status;

pub use baseline::{baseline, baseline_diff, Baselined};
pub use ledger::{HistoryRow, Repair};
pub use new::{new_migration, Created};
pub use plan_record::{recorded_plan, PlanRecord, Step};
pub use repair::{repair, RepairOptions, Repaired};
pub use sqltext::line_diff;
pub use status::{status, Entry, Report, State};

use std::path::{Path, PathBuf};

use refinery::{Migration, Runner, Target};
use rusqlite::Connection;

use crate::{Error, Result};

/// The table refinery records applied migrations in.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

/// One migration as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Version number.
    pub version: i64,
    /// Name (the part after `V<n>__`).
    pub name: String,
    /// Checksum recorded when it was applied.
    pub checksum: u64,
}

/// What migrating would do: computed without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// The highest applied version, or `None` for a database with no history.
    pub current: Option<i64>,
    /// The pending migrations, as `V<n>__<name>`, in order.
    pub pending: Vec<String>,
}

/// A set of migrations: embedded in the binary (`refinery::embed_migrations!`) or read from a folder.
#[derive(Debug, Default)]
pub struct Migrations {
    pub(crate) list: Vec<Migration>,
}

impl Migrations {
    /// No migrations.
    pub fn none() -> Migrations {
        Migrations::default()
    }

    /// The migrations of an embedded runner (`embedded::migrations::runner()`).
    pub fn from_runner(runner: &Runner) -> Migrations {
        let mut list = runner.get_migrations().clone();
        list.sort();
        Migrations { list }
    }

    /// SQL migrations (`V1__name.sql`, …) read from `dir`.
    ///
    /// # Errors
    /// [`Error::MigrationFiles`] when the folder cannot be read or a file is misnamed.
    pub fn from_dir(dir: &Path) -> Result<Migrations> {
        if !dir.is_dir() {
            return Err(Error::Io {
                action: "reading migrations from",
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            });
        }
        let mut list = refinery::load_sql_migrations(dir).map_err(|e| Error::MigrationFiles {
            path: dir.to_path_buf(),
            source: Box::new(e),
        })?;
        list.sort();
        Ok(Migrations { list })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The highest version known to this build, if any.
    pub fn latest(&self) -> Option<i64> {
        self.list.iter().map(|m| i64::from(m.version())).max()
    }

    /// The migration numbered `version`, if this set has it.
    fn get(&self, version: i64) -> Option<&Migration> {
        self.list.iter().find(|m| i64::from(m.version()) == version)
    }

    fn runner(&self) -> Runner {
        Runner::new(&self.list)
            .set_grouped(true)
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .set_target(Target::Latest)
    }

    /// Compares the database's history with these migrations and returns what would be applied.
    ///
    /// # Errors
    /// [`Error::DivergentMigration`], [`Error::SchemaTooNew`], or [`Error::Sqlite`] when the history cannot
    /// be read.
    pub fn plan(&self, conn: &Connection, path: &Path) -> Result<Plan> {
        let applied = applied(conn, path)?;
        let known = self.latest().unwrap_or(-1);
        let unknown: Vec<String> = applied
            .iter()
            .filter(|a| {
                !self
                    .list
                    .iter()
                    .any(|m| i64::from(m.version()) == a.version)
            })
            .map(|a| format!("V{}__{}", a.version, a.name))
            .collect();
        if let Some(db_version) = applied
            .iter()
            .map(|a| a.version)
            .max()
            .filter(|_| !unknown.is_empty())
        {
            return Err(Error::SchemaTooNew {
                path: path.to_path_buf(),
                db_version,
                known_version: known,
                unknown: format!("unknown to this build: {}", unknown.join(", ")),
            });
        }
        for a in &applied {
            if let Some(m) = self
                .list
                .iter()
                .find(|m| i64::from(m.version()) == a.version)
            {
                if m.checksum() != a.checksum {
                    return Err(Error::DivergentMigration {
                        path: path.to_path_buf(),
                        version: a.version,
                        name: a.name.clone(),
                        applied: a.checksum,
                        embedded: m.checksum(),
                    });
                }
            }
        }
        let current = applied.iter().map(|a| a.version).max();
        let pending = self
            .list
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == i64::from(m.version())))
            .map(|m| format!("V{}__{}", m.version(), m.name()))
            .collect::<Vec<_>>();
        // A pending migration numbered below the current version means history has a hole the build would
        // fill out of order; refinery refuses it too, so say it plainly here.
        if let Some(cur) = current {
            if let Some(m) = self.list.iter().find(|m| {
                i64::from(m.version()) < cur
                    && !applied.iter().any(|a| a.version == i64::from(m.version()))
            }) {
                return Err(Error::Config {
                    variable: "migrations".into(),
                    value: format!("V{}__{}", m.version(), m.name()),
                    reason: format!(
                        "it is numbered below the database's current version {cur} but was never applied; \
                         renumber it above {cur}"
                    ),
                });
            }
        }
        Ok(Plan { current, pending })
    }

    /// Applies the pending migrations in one transaction and returns the names applied.
    ///
    /// # Errors
    /// As [`Migrations::plan`], and [`Error::MigrationFailed`] when a migration fails (everything this call
    /// did is rolled back).
    pub fn apply(&self, conn: &mut Connection, path: &Path) -> Result<Vec<String>> {
        let plan = self.plan(conn, path)?;
        if plan.pending.is_empty() {
            return Ok(Vec::new());
        }
        match self.runner().run(conn) {
            Ok(report) => {
                let applied: Vec<&Migration> = report
                    .applied_migrations()
                    .iter()
                    .filter_map(|m| self.get(i64::from(m.version())))
                    .collect();
                // Kept so that a later change to a file can be shown and judged; the migrations are
                // applied whether or not this succeeds.
                if let Err(e) = ledger::record_texts(conn, &applied) {
                    tracing::warn!(db = %path.display(), error = %e, "could not record the text of the applied migrations");
                }
                Ok(applied
                    .iter()
                    .map(|m| format!("V{}__{}", m.version(), m.name()))
                    .collect())
            }
            Err(e) => Err(Error::MigrationFailed {
                path: PathBuf::from(path),
                migration: if plan.pending.len() == 1 {
                    plan.pending[0].clone()
                } else {
                    format!("batch [{}]", plan.pending.join(", "))
                },
                version_before: plan.current.unwrap_or(0),
                source: Box::new(e),
            }),
        }
    }
}

/// The migrations recorded in the database (empty when it has no history table). Changes nothing.
///
/// # Errors
/// [`Error::Sqlite`] when the history cannot be read.
pub fn applied(conn: &Connection, path: &Path) -> Result<Vec<Applied>> {
    if !crate::sql::has_table(conn, HISTORY_TABLE)
        .map_err(|e| Error::sqlite(path, "reading schema", e))?
    {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT version, name, checksum FROM {HISTORY_TABLE} ORDER BY version");
    let read = || -> rusqlite::Result<Vec<Applied>> {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            let checksum: String = r.get(2)?;
            Ok(Applied {
                version: r.get(0)?,
                name: r.get(1)?,
                checksum: checksum.parse().unwrap_or(0),
            })
        })?;
        rows.collect()
    };
    read().map_err(|e| Error::sqlite(path, "reading migration history", e))
}

/// The last applied version, or `None`. Changes nothing.
///
/// # Errors
/// [`Error::Sqlite`] when the history cannot be read.
pub fn schema_version(conn: &Connection, path: &Path) -> Result<Option<i64>> {
    Ok(applied(conn, path)?.iter().map(|a| a.version).max())
}
