//! What `doctor` decides: every check a deployment needs (the restore drill's is [`crate::drill::finding`]), each pass / warn / fail (or skip, when it cannot
//! apply) with the fix, and the thresholds behind them. A function of the library, so that the command
//! line, a service's health endpoint and tests ask the same questions and get the same answers.

use std::path::Path;

use crate::prepare::DirReport;
use crate::store::{self, Place};
use crate::wal_reset::Exposure;
use crate::{human, settings, Location, Result, Settings, Status, Volume, VolumeKind};

/// Warn when less than this share of the filesystem is free…
const FREE_SHARE_MIN: f64 = 0.10;
/// …or less than this many bytes.
const FREE_BYTES_MIN: u64 = 100 << 20;
/// Warn when the newest backup is older than this (a daily schedule plus an hour of slack).
const BACKUP_AGE_MAX: i64 = 25 * 3600;

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
/// backups, off-site, identity). Changes nothing: the directory is probed only when it exists, and the
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
    out.push(database(t, &status));
    out.push(writable(t, probe));
    out.extend(volume(t, &status.volume));
    out.push(free_space(&status, total_bytes));
    out.push(journal(&status));
    out.push(wal_safety(&status));
    out.push(sqlite_version(&status));
    out.push(lock(&status));
    out.push(backups(t, &status));
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
        out.push(offsite(&t, &status));
        out.extend(lineage(&t, &status));
    }
    out.extend(last_send(&status));
    out.push(identity(t, &status));
    out.push(crate::drill::finding(&status));
    out
}

fn database(t: &Subject<'_>, s: &Status) -> Finding {
    if s.exists {
        return Finding::new(
            "database",
            Level::Pass,
            format!(
                "exists, {}, schema {}",
                human::size(s.size_bytes),
                human::schema(s.schema_version)
            ),
        );
    }
    let fix = format!(
        "if {} should hold data, the volume is not mounted there: mount it, or restore a backup with \
         `sqlite-vol restore FILE`",
        t.location.dir.display()
    );
    match t.settings.expect_existing {
        Some(true) => Finding::new(
            "database",
            Level::Fail,
            "does not exist, and SQLITE_VOL_EXPECT_EXISTING forbids creating it",
        )
        .fix(fix),
        _ => Finding::new(
            "database",
            Level::Warn,
            "does not exist yet; the service creates an empty one at its first start",
        )
        .fix(fix),
    }
}

/// `probe`: the library's directory probe, `None` when the directory does not exist.
fn writable(t: &Subject<'_>, probe: Option<Result<DirReport>>) -> Finding {
    let dir = &t.location.dir;
    let Some(probe) = probe else {
        return Finding::new(
            "writable",
            Level::Warn,
            format!("{} does not exist (not created by doctor)", dir.display()),
        )
        .fix(format!(
            "mount the volume at {} (the service creates the directory when its parent is writable)",
            dir.display()
        ));
    };
    match probe {
        Ok(_) => Finding::new(
            "writable",
            Level::Pass,
            format!("{} accepts writes and fsync", dir.display()),
        ),
        // The library's message already says how to fix it.
        Err(e) => Finding::new("writable", Level::Fail, e.to_string()),
    }
}

fn volume(t: &Subject<'_>, v: &Volume) -> Vec<Finding> {
    let detail = v.to_string();
    let mut out = vec![match v.persistent {
        Some(true) => Finding::new("volume", Level::Pass, detail),
        Some(false) => Finding::new("volume", Level::Fail, detail).fix(v.fix(&t.location.dir)),
        None => Finding::new("volume", Level::Warn, detail)
            .fix("make sure the directory is on a volume that outlives the container"),
    }];
    if v.read_only {
        out.push(
            Finding::new("read-only", Level::Fail, "the volume is mounted read-only").fix(
                "mount it read-write (drop `:ro` from `-v`, or `readOnly: false` in Kubernetes)",
            ),
        );
    }
    out
}

/// `total`: the filesystem's size, from the directory probe.
fn free_space(s: &Status, total: Option<u64>) -> Finding {
    let Some(free) = s.free_bytes else {
        return Finding::new("free space", Level::Skip, "unknown");
    };
    let share = total.filter(|t| *t > 0).map(|t| free as f64 / t as f64);
    let detail = match share {
        Some(p) => format!("{} free ({:.0}%)", human::size(free), p * 100.0),
        None => format!("{} free", human::size(free)),
    };
    if free < FREE_BYTES_MIN || share.is_some_and(|p| p < FREE_SHARE_MIN) {
        Finding::new("free space", Level::Warn, detail).fix(
            "free space or grow the volume: SQLite needs room for the WAL and for backups, and fails writes \
             when the disk is full",
        )
    } else {
        Finding::new("free space", Level::Pass, detail)
    }
}

fn journal(s: &Status) -> Finding {
    let Some(mode) = s.journal_mode.as_deref() else {
        return Finding::new("journal", Level::Skip, "no database yet");
    };
    let wal = mode.eq_ignore_ascii_case("wal");
    match (wal, s.volume.kind.wal_safe()) {
        (true, _) => Finding::new("journal", Level::Pass, "WAL"),
        (false, false) => Finding::new(
            "journal",
            Level::Pass,
            format!("{mode} (rollback journal, right for a network filesystem)"),
        ),
        (false, true) => Finding::new("journal", Level::Warn, format!("{mode}, not WAL")).fix(
            "open the database through sqlite_vol::Database (it switches to WAL), or run `PRAGMA \
             journal_mode=WAL` once: readers then never block the writer",
        ),
    }
}

fn wal_safety(s: &Status) -> Finding {
    let kind = s.volume.kind;
    let wal = s
        .journal_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("wal"));
    match (kind.wal_safe(), wal) {
        (true, _) if kind == VolumeKind::Unknown => Finding::new(
            "wal safety",
            Level::Warn,
            "the filesystem is unknown; WAL needs local locks and shared memory",
        ),
        (true, _) => Finding::new(
            "wal safety",
            Level::Pass,
            format!(
                "{} supports WAL",
                s.volume.fs_type.as_deref().unwrap_or("the filesystem")
            ),
        ),
        (false, true) => Finding::new(
            "wal safety",
            Level::Fail,
            "WAL on a network filesystem: shared memory and locks are unreliable there (corruption risk)",
        )
        .fix("move the database to a local disk volume"),
        (false, false) => Finding::new(
            "wal safety",
            Level::Warn,
            "network filesystem: WAL is off, but SQLite locking over the network remains fragile",
        )
        .fix("move the database to a local disk volume"),
    }
}

/// The SQLite that last wrote the file: one with the WAL-reset bug (3.7.0 to 3.51.2) writing a WAL database
/// from two connections at once can corrupt it.
fn sqlite_version(s: &Status) -> Finding {
    let Some(w) = &s.written_by else {
        return Finding::new("sqlite", Level::Skip, "no database yet");
    };
    let wal = s
        .journal_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("wal"));
    match (w.exposure, wal) {
        (Exposure::Affected, true) => Finding::new(
            "sqlite",
            Level::Warn,
            format!(
                "last written by SQLite {}, which has the WAL-reset bug (fixed in 3.51.3, 3.44.6, 3.50.7): two \
                 connections writing or checkpointing this WAL database at once can corrupt it",
                w.version
            ),
        )
        .fix(
            "give the app a fixed SQLite (3.51.3 or later), or make it write through one connection; \
             this toolkit's own SQLite is fixed",
        ),
        (Exposure::Affected, false) => Finding::new(
            "sqlite",
            Level::Pass,
            format!(
                "last written by SQLite {} (it has the WAL-reset bug, which does not apply outside WAL mode)",
                w.version
            ),
        ),
        _ => Finding::new(
            "sqlite",
            Level::Pass,
            format!("last written by SQLite {}", w.version),
        ),
    }
}

fn lock(s: &Status) -> Finding {
    match &s.lock {
        None => Finding::new(
            "lock",
            Level::Pass,
            "free: no backup, restore or migration running",
        ),
        Some(h) => Finding::new("lock", Level::Warn, h.to_string())
            .fix("wait for it to finish; the kernel releases the lock if that process dies"),
    }
}

fn backups(t: &Subject<'_>, s: &Status) -> Finding {
    let schedule = "run `sqlite-vol backup` now, and schedule it (SQLITE_VOL_BACKUP_INTERVAL=24h in the service, \
                    or cron `docker exec <container> sqlite-vol backup --keep 7`)";
    let newest = |b: &crate::manifest::Entry| {
        format!(
            "newest is {} old: {}",
            human::age(b.age_seconds),
            b.path.display()
        )
    };
    match &s.last_backup {
        None if !s.exists => Finding::new("backups", Level::Skip, "no database to back up yet"),
        None => Finding::new(
            "backups",
            Level::Warn,
            format!("none of {} in {}", t.app, s.backup_dir.display()),
        )
        .fix(schedule),
        Some(b) if b.age_seconds > BACKUP_AGE_MAX => {
            Finding::new("backups", Level::Warn, newest(b)).fix(schedule)
        }
        Some(b) if !b.has_manifest => Finding::new(
            "backups",
            Level::Warn,
            format!(
                "newest ({}) has no manifest, so it cannot be verified",
                b.path.display()
            ),
        )
        .fix("take a new backup with `sqlite-vol backup`"),
        Some(b) => Finding::new("backups", Level::Pass, newest(b)),
    }
}

/// Off-site backups (`SQLITE_VOL_BACKUP_TO`, else `SQLITE_VOL_RESTORE_FROM`): reachable, and how old the newest is.
fn offsite(t: &Subject<'_>, s: &Status) -> Finding {
    let var = [
        (settings::BACKUP_TO, &t.settings.backup_to),
        (settings::RESTORE_FROM, &t.settings.restore_from),
    ]
    .into_iter()
    .find_map(|(v, l)| l.clone().map(|l| (v, l)));
    let Some((var, location)) = var else {
        return Finding::new(
            "off-site",
            Level::Skip,
            "SQLITE_VOL_BACKUP_TO is not set: backups stay on this machine",
        )
        .fix("set SQLITE_VOL_BACKUP_TO=s3://bucket/prefix (with AWS_* credentials) so scheduled backups survive the machine");
    };
    let listing = Place::parse(&location).and_then(|p| store::list(&p, t.app));
    let upload = format!("run `sqlite-vol backup --to {location}`, and keep SQLITE_VOL_BACKUP_INTERVAL set in the service");
    match listing {
        Err(e) => Finding::new("off-site", Level::Fail, format!("{var}: {e}")),
        Ok(l) => match l.backups.first() {
            None if !s.exists => Finding::new(
                "off-site",
                Level::Skip,
                format!(
                    "no backup of {} in {location} yet, and no database to back up",
                    t.app
                ),
            ),
            None => Finding::new(
                "off-site",
                Level::Warn,
                format!("{location} is reachable but holds no backup of {}", t.app),
            )
            .fix(upload),
            Some(b) if b.age_seconds > BACKUP_AGE_MAX => Finding::new(
                "off-site",
                Level::Warn,
                format!(
                    "newest is {} old: {}",
                    human::age(b.age_seconds),
                    b.location
                ),
            )
            .fix(upload),
            Some(b) => Finding::new(
                "off-site",
                Level::Pass,
                format!(
                    "newest is {} old: {} ({} there)",
                    human::age(b.age_seconds),
                    b.location,
                    l.backups.len()
                ),
            ),
        },
    }
}

/// Whether this database still owns its off-site place and holds its writer generation.
fn lineage(t: &Subject<'_>, s: &Status) -> Option<Finding> {
    use store::lineage::{standing, Standing};
    let location = t.settings.backup_to.as_deref()?;
    if !s.exists {
        return None;
    }
    let place = Place::parse(location).ok()?;
    let f = match standing(&place, t.app, &t.location.path) {
        Err(e) => Finding::new("lineage", Level::Warn, e.to_string()),
        Ok(Standing::NoMarker) => Finding::new("lineage", Level::Skip, format!("{place} has no lineage marker yet; the next backup creates it")),
        Ok(Standing::Current(g)) => Finding::new("lineage", Level::Pass, format!("this database owns {place} (writer generation {g})")),
        Ok(Standing::TakenOver { current, ours }) => Finding::new("lineage", Level::Fail,
            format!("another instance has taken over {place}: its writer generation is {current}, this database's is {ours}; backups from here are refused"))
            .fix("stop this instance, or restore it from the place to follow the new writer"),
        Ok(Standing::Other(owner)) => Finding::new("lineage", Level::Fail, format!("{place} belongs to another database ({owner})"))
            .fix("restore from it, choose another prefix, or adopt it with SQLITE_VOL_BACKUP_ADOPT=1"),
    };
    Some(f)
}

/// The last off-site send: fail when it did not reach every destination (naming those it missed).
fn last_send(s: &Status) -> Option<Finding> {
    let last = s.offsite.last.as_ref()?;
    Some(match last.ok {
        true => Finding::new(
            "off-site send",
            Level::Pass,
            format!("the last backup ({}) reached {}", last.at, last.backup),
        ),
        false => Finding::new(
            "off-site send",
            Level::Fail,
            format!(
                "the last backup sent at {} failed: {}",
                last.at, last.detail
            ),
        )
        .fix("see the error above for each place; the next backup is sent to every place again"),
    })
}

fn identity(t: &Subject<'_>, s: &Status) -> Finding {
    let Some(id) = &s.identity else {
        return Finding::new("identity", Level::Skip, "no database yet");
    };
    let expected = crate::identity::application_id(t.app);
    if id.application_id == expected {
        Finding::new(
            "identity",
            Level::Pass,
            format!("belongs to {} (application id {expected:#x})", t.app),
        )
    } else if id.application_id == 0 {
        Finding::new(
            "identity",
            Level::Warn,
            "not stamped with an application id yet",
        )
        .fix(format!(
            "start the service once (it stamps the database as {})",
            t.app
        ))
    } else {
        Finding::new(
            "identity",
            Level::Fail,
            format!(
                "application id {:#x} ({}), but {} expects {expected:#x}: another application's database",
                id.application_id,
                id.app.as_deref().unwrap_or("unknown app"),
                t.app
            ),
        )
        .fix(format!(
            "point DB_PATH at {}'s own database, or pass the right --app / SQLITE_VOL_APP",
            t.app
        ))
    }
}
