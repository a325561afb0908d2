//! A database's identity: which app it belongs to and when it was born.
//!
//! A database is stamped once, at creation, with `PRAGMA application_id` (a number derived from the app
//! name, so a backup of another app is recognised) and a small table `_sqlite_vol_meta` holding an instance
//! id, the creation time, the creating version, and the moment the app's creation hook finished. The stamp
//! is what lets status reports, backups and restores say whose data a file holds.

use std::io::Read;

use rusqlite::{Connection, OptionalExtension};

/// The metadata table.
pub const META_TABLE: &str = "_sqlite_vol_meta";

/// What a database says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// The app name recorded at creation.
    pub app: Option<String>,
    /// A random id given at creation; a restored copy keeps it.
    pub instance_id: Option<String>,
    /// When the database was created (RFC 3339).
    pub created_at: Option<String>,
    /// Which tool version created it.
    pub created_by: Option<String>,
    /// When the app's creation hook completed; `None` if it has not run yet.
    pub initialized_at: Option<String>,
}

/// The application id for an app name: FNV-1a of the name, never 0.
///
/// ```
/// assert_eq!(sqlite_vol::identity::application_id("accounts"), sqlite_vol::identity::application_id("accounts"));
/// assert_ne!(sqlite_vol::identity::application_id("accounts"), sqlite_vol::identity::application_id("billing"));
/// ```
pub fn application_id(app: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in app.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let id = i32::from_ne_bytes(h.to_ne_bytes());
    if id == 0 {
        1
    } else {
        id
    }
}

/// Reads the identity. Changes nothing.
///
/// # Errors
/// A SQLite error when the file cannot be read.
pub fn read(conn: &Connection) -> rusqlite::Result<Identity> {
    let application_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let mut id = Identity {
        application_id,
        ..Identity::default()
    };
    if crate::sql::has_table(conn, META_TABLE)? {
        let get = |key: &str| -> rusqlite::Result<Option<String>> {
            conn.query_row(
                &format!("SELECT value FROM {META_TABLE} WHERE key = ?1"),
                [key],
                |r| r.get(0),
            )
            .optional()
        };
        id.app = get("app")?;
        id.instance_id = get("instance_id")?;
        id.created_at = get("created_at")?;
        id.created_by = get("created_by")?;
        id.initialized_at = get("initialized_at")?;
    }
    Ok(id)
}

/// Stamps a database for `app` (inside the caller's transaction, if any). Keeps existing values.
pub(crate) fn stamp(conn: &Connection, app: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA application_id = {};
         CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;",
        application_id(app)
    ))?;
    let now = crate::clock::now_rfc3339();
    let version = concat!("sqlite-vol ", env!("CARGO_PKG_VERSION"));
    for (k, v) in [
        ("app", app),
        ("instance_id", &random_id()),
        ("created_at", &now),
        ("created_by", version),
    ] {
        conn.execute(
            &format!("INSERT OR IGNORE INTO {META_TABLE} (key, value) VALUES (?1, ?2)"),
            [k, v],
        )?;
    }
    Ok(())
}

/// Records that the creation hook completed.
pub(crate) fn mark_initialized(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        &format!("INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES ('initialized_at', ?1)"),
        [crate::clock::now_rfc3339()],
    )?;
    Ok(())
}

/// 128 random bits as hex, from the kernel.
pub(crate) fn random_id() -> String {
    let mut buf = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf = (t ^ u128::from(std::process::id()) << 64).to_le_bytes();
    }
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_idempotent_and_readable() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        stamp(&conn, "accounts")?;
        let first = read(&conn)?;
        stamp(&conn, "accounts")?;
        let second = read(&conn)?;
        assert_eq!(first, second);
        assert_eq!(first.application_id, application_id("accounts"));
        assert_eq!(first.app.as_deref(), Some("accounts"));
        assert_eq!(first.instance_id.as_ref().map(String::len), Some(32));
        assert!(first.initialized_at.is_none());
        mark_initialized(&conn)?;
        assert!(read(&conn)?.initialized_at.is_some());
        Ok(())
    }

    #[test]
    fn unstamped_database_reads_as_zero() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        assert_eq!(read(&conn)?, Identity::default());
        Ok(())
    }
}
