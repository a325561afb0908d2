//! Accepting the current file of an applied migration as what was applied: the escape hatch for
//! "migration V3 was changed after it was applied" when only a comment or the layout changed. The SQL
//! applied (recorded in the toolkit's ledger when it ran) and the file are compared with comments and
//! whitespace set aside; only when they are the same statements is the new checksum accepted, unless the
//! caller forces it. Every repair is recorded with who (user, uid, host), when, why, and both checksums,
//! and `status` shows the trail. Runs under the maintenance lock, and not at all while another process
//! holds it (a migration or restore in progress).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

use super::ledger::{self, Repair};
use super::sqltext::{line_diff, same_statements};
use super::{Migrations, HISTORY_TABLE};
use crate::lock::{MaintenanceLock, Wait};
use crate::{Error, Result};

/// Options for [`repair`].
#[derive(Debug, Clone)]
pub struct RepairOptions {
    /// Why (recorded; required, not empty).
    pub reason: String,
    /// Accept the file even though its statements differ from what was applied, or when what was applied
    /// was never recorded.
    pub force: bool,
    /// How long to wait for the maintenance lock (default: not at all).
    pub wait: Wait,
}

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Repaired {
    /// The database file.
    pub path: PathBuf,
    /// The audit record written.
    pub repair: Repair,
    /// Whether the statements were proven the same (false: forced).
    pub same_statements: bool,
}

/// Accepts the current text of applied migration `version` in `migrations` as its checksum in the
/// database at `db`.
///
/// # Errors
/// [`Error::MigrationRefused`] when the reason is empty, the migration is not applied or not in the
/// folder, nothing differs, or (without `force`) the statements changed or what was applied is unknown;
/// [`Error::Locked`] while another maintenance operation runs; [`Error::Sqlite`]. Nothing is written on
/// any error.
pub fn repair(
    db: &Path,
    migrations: &Migrations,
    version: i64,
    opts: &RepairOptions,
) -> Result<Repaired> {
    let refuse = |reason: String| Error::MigrationRefused {
        path: db.to_path_buf(),
        action: format!("repair of V{version}"),
        reason,
    };
    if opts.reason.trim().is_empty() {
        return Err(refuse(
            "give the reason (--reason TEXT): it is kept in the audit trail".into(),
        ));
    }
    if !crate::fsx::has_content(db) {
        return Err(refuse(
            "there is no database there (check --db / DB_PATH)".into(),
        ));
    }
    let _lock = MaintenanceLock::acquire(db, "repair", opts.wait)?;
    let mut conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| Error::sqlite(db, "opening", e))?;
    let err = |e| Error::sqlite(db, "repairing", e);
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let history = ledger::history(&conn).map_err(err)?;
    let Some(applied) = history.iter().find(|h| h.version == version) else {
        return Err(refuse(format!(
            "V{version} was never applied to this database; nothing to repair"
        )));
    };
    let Some(file) = migrations.get(version) else {
        return Err(refuse(format!(
            "there is no V{version} in the migrations folder to accept"
        )));
    };
    if file.checksum() == applied.checksum {
        return Err(refuse(format!(
            "V{version}__{} already matches what was applied",
            applied.name
        )));
    }
    let new_sql = file.sql().unwrap_or_default();
    let old_sql = ledger::text_of(&conn, version, applied.checksum).map_err(err)?;
    let same = old_sql
        .as_deref()
        .is_some_and(|old| same_statements(old, new_sql));
    if !same && !opts.force {
        let reason = match &old_sql {
            Some(old) => {
                let diff: Vec<String> = line_diff(old, new_sql)
                    .into_iter()
                    .filter(|l| !l.starts_with(' '))
                    .map(|l| format!("  {l}"))
                    .collect();
                format!(
                    "the file changes what the migration does, not only comments or layout:\n{}\nRestore the \
                     file as it was applied and put the change in a new migration (`sqlite-vol migrate new`); \
                     or, if the database already has that change, pass --force",
                    diff.join("\n")
                )
            }
            None => "the text that was applied was not recorded (it was applied before sqlite-vol kept \
                     migration texts), so a comment-only change cannot be proven. Compare the file with its \
                     history (`git log -p`), then pass --force"
                .into(),
        };
        return Err(refuse(reason));
    }
    let (user, uid, host) = who();
    let record = Repair {
        version,
        name: file.name().into(),
        old_checksum: applied.checksum,
        new_checksum: file.checksum(),
        reason: opts.reason.trim().into(),
        forced: !same,
        user,
        uid,
        host,
        at: crate::clock::now_rfc3339(),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute(
        &format!("UPDATE {HISTORY_TABLE} SET checksum = ?1, name = ?2 WHERE version = ?3"),
        params![file.checksum().to_string(), file.name(), version],
    )
    .map_err(err)?;
    ledger::record_texts(&tx, &[file]).map_err(err)?;
    ledger::record_repair(&tx, &record).map_err(err)?;
    tx.commit().map_err(err)?;
    tracing::warn!(db = %db.display(), version, old = record.old_checksum, new = record.new_checksum,
        forced = record.forced, reason = %record.reason, "migration checksum repaired");
    Ok(Repaired {
        path: db.to_path_buf(),
        repair: record,
        same_statements: same,
    })
}

/// The user name, uid and host name of this process.
fn who() -> (String, u32, String) {
    let uid = rustix::process::getuid().as_raw();
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| user_name(uid))
        .unwrap_or_else(|| format!("uid {uid}"));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    (user, uid, host)
}

/// The name `/etc/passwd` gives `uid`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?;
        (id.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}
