//! What `doctor` decides: every check a deployment needs, each pass / warn / fail (or skip, when it cannot
//! apply) with the fix, and the thresholds behind them. A function of the library, so that the command
//! line, a service's health endpoint and tests ask the same questions and get the same answers. The checks
//! of where the database lives are in `storage`, those of whether it could be brought back in `backups`.

mod backups;
mod litestream;
mod storage;

use std::path::Path;

use crate::{Location, Settings};

/// Warn when less than this share of the filesystem is free…
pub(crate) const FREE_SHARE_MIN: f64 = 0.10;
/// …or less than this many bytes.
pub(crate) const FREE_BYTES_MIN: u64 = 100 << 20;
/// Warn when the newest backup is older than this (a daily schedule plus an hour of slack).
pub(crate) const BACKUP_AGE_MAX: i64 = 25 * 3600;

/// How a check came out, from least to most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The check cannot apply (no database yet, unknown size).
    Skip,
    /// All is well.
    Pass,
    /// Works now, but something will hurt later.
    Warn,
    /// Data is at risk or the service will not start.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The check, e.g. `volume`.
    pub name: &'static str,
    /// How it came out.
    pub status: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Finding {
    /// A finding without a fix.
    pub fn new(name: &'static str, status: Level, detail: impl Into<String>) -> Finding {
        Finding {
            name,
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    /// The same finding with `fix`.
    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
}

/// The most serious level among `findings` (`Pass` for none).
pub fn worst(findings: &[Finding]) -> Level {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Level::Pass)
}

/// What is being diagnosed: the database, whose it is, where its backups go, and the settings in force.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Where the database is.
    pub location: &'a Location,
    /// The app's name.
    pub app: &'a str,
    /// The backup folder.
    pub backup_dir: &'a Path,
    /// The settings (`expect_existing`, `backup_to`, `restore_from` matter here).
    pub settings: &'a Settings,
}

/// Runs every check on `t` (location, database, writable, volume, free space, journal, WAL safety, lock,
/// a Litestream sidecar's SQLite when one is seen, backups, off-site, identity). Changes nothing: the directory is probed only when it exists, and the
/// database is opened read-only. The command line's `doctor` prints these; a service may serve them.
pub fn diagnose(t: &Subject<'_>) -> Vec<Finding> {
    let loc = t.location;
    let mut out = vec![Finding::new(
        "location",
        Level::Pass,
        format!(
            "{} (from {}; app {})",
            loc.path.display(),
            loc.source,
            t.app
        ),
    )];
    let status = match crate::status_of(loc, t.backup_dir, t.app) {
        Ok(s) => s,
        Err(e) => {
            out.push(
                Finding::new("database", Level::Fail, e.to_string()).fix(
                    "move the file away and restore a backup with `sqlite-vol restore FILE` (see `sqlite-vol list`)",
                ),
            );
            return out;
        }
    };
    // One probe of the directory serves both the writable check and the filesystem's size; only when the
    // directory exists, since doctor creates nothing.
    let dir = &t.location.dir;
    let probe = dir.exists().then(|| {
        let db = Some(t.location.path.as_path()).filter(|p| p.exists());
        crate::prepare::prepare(dir, db, &status.volume)
    });
    let total_bytes = probe
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .and_then(|r| r.total_bytes);
    out.push(storage::database(t, &status));
    out.push(storage::writable(t, probe));
    out.extend(storage::volume(t, &status.volume));
    out.push(storage::free_space(&status, total_bytes));
    out.push(storage::journal(&status));
    out.push(storage::wal_safety(&status));
    out.push(storage::sqlite_version(&status));
    out.push(storage::lock(&status));
    out.extend(litestream::litestream(&t.location.path));
    out.push(backups::backups(t, &status));
    // Each destination of SQLITE_VOL_BACKUP_TO (comma-separated) is checked on its own.
    let places = t.settings.backup_to.as_deref().map(|to| {
        to.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    });
    for one in places.unwrap_or_else(|| vec![String::new()]) {
        let settings = Settings {
            backup_to: (!one.is_empty()).then_some(one),
            ..t.settings.clone()
        };
        let t = Subject {
            settings: &settings,
            ..*t
        };
        out.push(backups::offsite(&t, &status));
        out.extend(backups::lineage(&t, &status));
    }
    out.extend(backups::last_send(&status));
    out.push(backups::identity(t, &status));
    out.push(backups::drill(&status));
    out
}
