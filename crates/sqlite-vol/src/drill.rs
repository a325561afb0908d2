//! Restore drills: proving that the newest backup would restore, before anyone needs it to.
//!
//! [`drill`] fetches the newest backup of an app from a [`Place`] (checked against its manifest on the way),
//! restores it with [`crate::restore::restore`] into a fresh database in a temporary folder — never the live
//! one, which is only ever opened read-only —, runs `integrity_check` on the restored copy, compares its
//! identity (application and instance) and schema (version, tables and indexes) with the live database, and
//! runs an optional sentinel query that must return at least one row. Whatever happens, the outcome (time,
//! backup, ok or what failed, duration) is recorded beside the backups ([`crate::record`]), where `status`,
//! `doctor` and the metrics read it, and the temporary folder is removed. [`Database::drill_every`] runs
//! drills on a schedule (`SQLITE_VOL_DRILL_INTERVAL`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::record::{self, Kind, Outcome};
use crate::restore::RestoreOptions;
use crate::store::{self, Place, Policy};
use crate::{identity, migrate, Database, Result};

/// What a drill established: its recorded outcome.
pub type Drill = Outcome;

/// Runs a restore drill of the newest backup of `app` in `place` against the live database at `db`,
/// recording the outcome in `backup_dir`; `query` is the sentinel query (at least one row).
///
/// # Errors
/// Only when the outcome cannot be recorded; a failed drill is an `Ok` outcome with `ok: false` and what
/// failed in `detail`.
pub fn drill(
    place: &Place,
    db: &Path,
    app: &str,
    backup_dir: &Path,
    query: Option<&str>,
) -> Result<Drill> {
    drill_with(place, db, app, backup_dir, query, &Policy::default())
}

/// [`drill`], decrypting an encrypted backup with the policy's identity: a drill that cannot decrypt the
/// newest backup fails, as the restore that needs it would.
///
/// # Errors
/// As [`drill`].
pub fn drill_with(
    place: &Place,
    db: &Path,
    app: &str,
    backup_dir: &Path,
    query: Option<&str>,
    policy: &Policy,
) -> Result<Drill> {
    let started = Instant::now();
    let staging = Staging::new()?;
    let (backup, result) = run(place, db, app, &staging.0, query, policy);
    let took = started.elapsed().as_millis() as u64;
    drop(staging);
    let outcome = match result {
        Ok(()) => {
            tracing::info!(backup, duration_ms = took, "restore drill passed");
            Outcome::now(backup, true, took, "ok")
        }
        Err(why) => {
            tracing::error!(backup, reason = %why, "RESTORE DRILL FAILED: the newest backup would not restore as it should");
            Outcome::now(backup, false, took, why)
        }
    };
    record::note(backup_dir, app, Kind::Drill, outcome.clone())?;
    Ok(outcome)
}

/// The drill's steps; returns the backup's location and `Err(what failed)`.
fn run(
    place: &Place,
    db: &Path,
    app: &str,
    staging: &Path,
    query: Option<&str>,
    policy: &Policy,
) -> (String, std::result::Result<(), String>) {
    let newest = match store::list(place, app) {
        Ok(l) => l.backups.into_iter().next(),
        Err(e) => {
            return (
                place.to_string(),
                Err(format!("cannot list the backups: {e}")),
            )
        }
    };
    let Some(newest) = newest else {
        return (
            place.to_string(),
            Err(format!("there is no backup of {app} in {place}")),
        );
    };
    let at = newest.location.clone();
    let steps = || -> std::result::Result<(), String> {
        match store::manifest(place, &newest.name) {
            Ok(Some(_)) => {}
            Ok(None) => return Err("it has no manifest, so its checksum cannot be checked".into()),
            Err(e) => return Err(format!("its manifest cannot be read: {e}")),
        }
        let file = store::fetch_with(place, &newest.name, staging, policy)
            .map_err(|e| format!("fetching it failed: {e}"))?;
        let copy = staging.join("restored").join(format!("{app}.db"));
        let opts = RestoreOptions {
            safety_backup: false,
            ..RestoreOptions::new(staging)
        };
        crate::restore::restore(&file, &copy, app, &opts)
            .map_err(|e| format!("restoring it failed: {e}"))?;
        let problems = crate::verify::check_live(&copy, true)
            .map_err(|e| format!("checking the restored copy failed: {e}"))?;
        if !problems.is_empty() {
            return Err(format!(
                "integrity_check of the restored copy failed: {}",
                problems.join("; ")
            ));
        }
        let restored =
            open_read_only(&copy).map_err(|e| format!("opening the restored copy failed: {e}"))?;
        if crate::fsx::has_content(db) {
            let live = open_read_only(db)
                .map_err(|e| format!("opening the live database read-only failed: {e}"))?;
            compare(&live, &restored, db, &copy)?;
        }
        if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
            let mut stmt = restored
                .prepare(q)
                .map_err(|e| format!("the sentinel query {q:?} failed: {e}"))?;
            let mut rows = stmt
                .query([])
                .map_err(|e| format!("the sentinel query {q:?} failed: {e}"))?;
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(format!(
                        "the sentinel query {q:?} returned no rows on the restored copy"
                    ))
                }
                Err(e) => return Err(format!("the sentinel query {q:?} failed: {e}")),
            }
        }
        Ok(())
    };
    (at, steps())
}

/// The restored copy must be the live database's: same application and instance, same schema.
fn compare(
    live: &Connection,
    restored: &Connection,
    db: &Path,
    copy: &Path,
) -> std::result::Result<(), String> {
    let read = |c: &Connection,
                p: &Path|
     -> std::result::Result<(identity::Identity, Option<i64>, Vec<String>), String> {
        let id = identity::read(c).map_err(|e| e.to_string())?;
        let version = migrate::schema_version(c, p).map_err(|e| e.to_string())?;
        let mut stmt = c
            .prepare("SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
            .map_err(|e| e.to_string())?;
        let schema = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| e.to_string())?;
        Ok((id, version, schema))
    };
    let (live_id, live_version, live_schema) =
        read(live, db).map_err(|e| format!("reading the live database failed: {e}"))?;
    let (id, version, schema) =
        read(restored, copy).map_err(|e| format!("reading the restored copy failed: {e}"))?;
    if id.application_id != live_id.application_id {
        return Err(format!(
            "its application id {:#x} is not the live database's {:#x}: it is another app's backup",
            id.application_id, live_id.application_id
        ));
    }
    if let (Some(a), Some(b)) = (&id.instance_id, &live_id.instance_id) {
        if a != b {
            return Err(format!(
                "it is a backup of another database of this app (instance {a}; the live one is {b})"
            ));
        }
    }
    if version != live_version {
        return Err(format!(
            "its schema version {} is not the live database's {}: the newest backup predates a migration (take a backup)",
            version.map_or("none".into(), |v| v.to_string()),
            live_version.map_or("none".into(), |v| v.to_string())
        ));
    }
    if schema != live_schema {
        let first = schema
            .iter()
            .zip(live_schema.iter())
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!(" (backup: {a:?}; live: {b:?})"))
            .unwrap_or_default();
        return Err(format!(
            "its tables and indexes differ from the live database's{first}"
        ));
    }
    Ok(())
}

fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    Ok(c)
}

/// A private temporary folder for one drill, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    /// A new folder; first removes those of drills whose process is gone (killed before it cleaned up).
    fn new() -> Result<Staging> {
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("sqlite-vol-drill-")
                    .and_then(|r| r.split('-').next());
                if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("sqlite-vol-drill-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::Error::io("creating the drill's temporary folder", &dir, e))?;
        Ok(Staging(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Database {
    /// Runs a restore drill of the newest backup in `place` (see [`drill`]) against this database,
    /// recording the outcome in its backup folder; `query` is the sentinel query.
    ///
    /// # Errors
    /// As [`drill`].
    pub fn drill(&self, place: &Place, query: Option<&str>) -> Result<Drill> {
        drill(
            place,
            &self.location().path,
            self.app(),
            self.backup_dir(),
            query,
        )
    }

    /// Runs a restore drill every `interval` in the background (the first after one interval), of the newest
    /// backup in `place`, with the sentinel `query`; stops when the database is closed. A failed drill is
    /// logged as an error and recorded; it never stops the service.
    pub fn drill_every(&self, interval: Duration, place: Place, query: Option<String>) {
        if interval.is_zero() {
            return;
        }
        let (db, app, dir) = (
            self.location().path.clone(),
            self.app().to_string(),
            self.backup_dir().to_path_buf(),
        );
        let policy = self.offsite().policy.clone();
        tracing::info!(every = ?interval, from = %place, "scheduled restore drills on");
        let mut since = Instant::now();
        self.keep_running(crate::ticker::Ticker::start("sqlite-vol-drills", Duration::from_secs(1).min(interval), move || {
            if since.elapsed() < interval {
                return;
            }
            since = Instant::now();
            if let Err(e) = drill_with(&place, &db, &app, &dir, query.as_deref(), &policy) {
                tracing::error!(error = %e, "the restore drill's outcome could not be recorded");
            }
        }));
    }
}
