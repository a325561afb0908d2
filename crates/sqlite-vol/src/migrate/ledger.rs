//! What the toolkit keeps about migrations beside refinery's history: the text of each migration as it
//! was applied (`_sqlite_vol_migration_text`), so that a changed file can be shown as a diff and a
//! comment-only edit proven harmless, and the audit trail of checksum repairs
//! (`_sqlite_vol_migration_repairs`). Both tables are the toolkit's own and are left out of schema
//! comparisons, like `_sqlite_vol_meta`.

use refinery::Migration;
use rusqlite::{params, Connection, OptionalExtension};

use super::HISTORY_TABLE;
use crate::sql::has_table;

/// The table holding each applied migration's text.
pub const TEXT_TABLE: &str = "_sqlite_vol_migration_text";
/// The table holding the audit trail of checksum repairs.
pub const REPAIR_TABLE: &str = "_sqlite_vol_migration_repairs";

/// One row of refinery's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    /// Version number.
    pub version: i64,
    /// Name (the part after `V<n>__`).
    pub name: String,
    /// When it was applied (RFC 3339), as refinery wrote it.
    pub applied_on: String,
    /// Checksum recorded when it was applied.
    pub checksum: u64,
}

/// One checksum repair, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Repair {
    /// The migration's version.
    pub version: i64,
    /// Its name after the repair.
    pub name: String,
    /// The checksum recorded before.
    pub old_checksum: u64,
    /// The checksum accepted.
    pub new_checksum: u64,
    /// Why, as given.
    pub reason: String,
    /// Whether `--force` accepted a change to the statements themselves.
    pub forced: bool,
    /// Who: the user name.
    pub user: String,
    /// Who: the numeric user id.
    pub uid: u32,
    /// Where: the host name.
    pub host: String,
    /// When (RFC 3339).
    pub at: String,
}

/// refinery's history, oldest version first (empty without a history table).
pub(crate) fn history(conn: &Connection) -> rusqlite::Result<Vec<HistoryRow>> {
    if !has_table(conn, HISTORY_TABLE)? {
        return Ok(Vec::new());
    }
    let sql =
        format!("SELECT version, name, applied_on, checksum FROM {HISTORY_TABLE} ORDER BY version");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(HistoryRow {
            version: r.get(0)?,
            name: r.get(1)?,
            applied_on: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            checksum: r.get::<_, String>(3)?.parse().unwrap_or(0),
        })
    })?;
    rows.collect()
}

/// Records the text of migrations just applied (or baselined, or repaired), replacing older records.
pub(crate) fn record_texts(conn: &Connection, applied: &[&Migration]) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {TEXT_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, sql TEXT NOT NULL, recorded_at TEXT NOT NULL)"
    ))?;
    let now = crate::clock::now_rfc3339();
    for m in applied {
        let Some(sql) = m.sql() else { continue };
        conn.execute(
            &format!("INSERT OR REPLACE INTO {TEXT_TABLE} VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                i64::from(m.version()),
                m.name(),
                m.checksum().to_string(),
                sql,
                now
            ],
        )?;
    }
    Ok(())
}

/// The recorded text of migration `version`, if it was recorded with `checksum`.
pub(crate) fn text_of(
    conn: &Connection,
    version: i64,
    checksum: u64,
) -> rusqlite::Result<Option<String>> {
    if !has_table(conn, TEXT_TABLE)? {
        return Ok(None);
    }
    conn.query_row(
        &format!("SELECT sql FROM {TEXT_TABLE} WHERE version = ?1 AND checksum = ?2"),
        params![version, checksum.to_string()],
        |r| r.get(0),
    )
    .optional()
}

/// Appends a repair to the audit trail.
pub(crate) fn record_repair(conn: &Connection, r: &Repair) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {REPAIR_TABLE} (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, \
         name TEXT NOT NULL, old_checksum TEXT NOT NULL, new_checksum TEXT NOT NULL, reason TEXT NOT NULL, \
         forced INTEGER NOT NULL, user TEXT NOT NULL, uid INTEGER NOT NULL, host TEXT NOT NULL, \
         at TEXT NOT NULL)"
    ))?;
    conn.execute(
        &format!(
            "INSERT INTO {REPAIR_TABLE} (version, name, old_checksum, new_checksum, reason, forced, user, \
             uid, host, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            r.version,
            r.name,
            r.old_checksum.to_string(),
            r.new_checksum.to_string(),
            r.reason,
            r.forced,
            r.user,
            r.uid,
            r.host,
            r.at
        ],
    )?;
    Ok(())
}

/// The audit trail of repairs, oldest first.
pub(crate) fn repairs(conn: &Connection) -> rusqlite::Result<Vec<Repair>> {
    if !has_table(conn, REPAIR_TABLE)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT version, name, old_checksum, new_checksum, reason, forced, user, uid, host, at \
         FROM {REPAIR_TABLE} ORDER BY id"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(Repair {
            version: r.get(0)?,
            name: r.get(1)?,
            old_checksum: r.get::<_, String>(2)?.parse().unwrap_or(0),
            new_checksum: r.get::<_, String>(3)?.parse().unwrap_or(0),
            reason: r.get(4)?,
            forced: r.get(5)?,
            user: r.get(6)?,
            uid: r.get(7)?,
            host: r.get(8)?,
            at: r.get(9)?,
        })
    })?;
    rows.collect()
}
