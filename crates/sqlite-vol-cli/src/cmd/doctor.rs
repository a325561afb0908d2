//! `sqlite-vol doctor`: every check a deployment needs, each pass / warn / fail (or skip, when it cannot
//! apply) with the fix. It changes nothing: the directory is probed with the library's `prepare` only when
//! it already exists, and the database is opened read-only.

use serde::Serialize;
use sqlite_vol::prepare::DirReport;
use sqlite_vol::{settings, Status, Volume, VolumeKind};

use super::{Exit, Target};
use crate::cli::{DbOpts, DoctorArgs};
use crate::ui;

/// Warn when less than this share of the filesystem is free…
const FREE_SHARE_MIN: f64 = 0.10;
/// …or less than this many bytes.
const FREE_BYTES_MIN: u64 = 100 << 20;
/// Warn when the newest backup is older than this (a daily schedule plus an hour of slack).
const BACKUP_AGE_MAX: i64 = 25 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Skip,
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Verdict,
    detail: String,
    fix: Option<String>,
}

fn check(name: &'static str, status: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: None,
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check and prints them; any failure is exit code 1.
pub fn run(opts: &DbOpts, a: &DoctorArgs) -> anyhow::Result<Exit> {
    let checks = match opts.target() {
        Ok(t) => checks(&t),
        Err(e) => vec![check("location", Verdict::Fail, ui::render(&e)).fix(
            "set DB_PATH (or <APP>_DB_PATH) to the database directory on a volume, and SQLITE_VOL_APP to the \
             app's name, or pass --db and --app",
        )],
    };
    let worst = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Verdict::Pass);
    if a.json {
        ui::json(&serde_json::json!({
            "ok": worst != Verdict::Fail,
            "worst": worst,
            "checks": checks,
        }))?;
    } else {
        for c in &checks {
            let tag = match c.status {
                Verdict::Pass => "pass",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "skip",
            };
            ui::line(format_args!("{tag}  {:<13} {}", c.name, c.detail))?;
            if let Some(fix) = &c.fix {
                ui::line(format_args!("      {:<13} fix: {fix}", ""))?;
            }
        }
    }
    Ok(if worst == Verdict::Fail {
        Exit::No
    } else {
        Exit::Ok
    })
}

fn checks(t: &Target) -> Vec<Check> {
    let loc = &t.loc;
    let mut out = vec![check(
        "location",
        Verdict::Pass,
        format!(
            "{} (from {}; app {})",
            loc.path.display(),
            loc.source,
            t.app
        ),
    )];
    let status = match sqlite_vol::status_of(loc, &t.backup_dir, &t.app) {
        Ok(s) => s,
        Err(e) => {
            out.push(
                check("database", Verdict::Fail, e.to_string()).fix(
                    "move the file away and restore a backup with `sqlite-vol restore FILE` (see `sqlite-vol list`)",
                ),
            );
            return out;
        }
    };
    // One probe of the directory serves both the writable check and the filesystem's size; only when the
    // directory exists, since doctor creates nothing.
    let dir = &t.loc.dir;
    let probe = dir.exists().then(|| {
        let db = Some(t.loc.path.as_path()).filter(|p| p.exists());
        sqlite_vol::prepare::prepare(dir, db, &status.volume)
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
    out.push(lock(&status));
    out.push(backups(t, &status));
    out.push(offsite(t, &status));
    out.push(identity(t, &status));
    out
}

fn database(t: &Target, s: &Status) -> Check {
    if s.exists {
        return check(
            "database",
            Verdict::Pass,
            format!(
                "exists, {}, schema {}",
                ui::size(s.size_bytes),
                ui::schema(s.schema_version)
            ),
        );
    }
    let fix = format!(
        "if {} should hold data, the volume is not mounted there: mount it, or restore a backup with \
         `sqlite-vol restore FILE`",
        t.loc.dir.display()
    );
    match settings::env_bool(settings::EXPECT_EXISTING) {
        Ok(Some(true)) => check(
            "database",
            Verdict::Fail,
            "does not exist, and SQLITE_VOL_EXPECT_EXISTING forbids creating it",
        )
        .fix(fix),
        _ => check(
            "database",
            Verdict::Warn,
            "does not exist yet; the service creates an empty one at its first start",
        )
        .fix(fix),
    }
}

/// `probe`: the library's directory probe, `None` when the directory does not exist.
fn writable(t: &Target, probe: Option<sqlite_vol::Result<DirReport>>) -> Check {
    let dir = &t.loc.dir;
    let Some(probe) = probe else {
        return check(
            "writable",
            Verdict::Warn,
            format!("{} does not exist (not created by doctor)", dir.display()),
        )
        .fix(format!(
            "mount the volume at {} (the service creates the directory when its parent is writable)",
            dir.display()
        ));
    };
    match probe {
        Ok(_) => check(
            "writable",
            Verdict::Pass,
            format!("{} accepts writes and fsync", dir.display()),
        ),
        // The library's message already says how to fix it.
        Err(e) => check("writable", Verdict::Fail, e.to_string()),
    }
}

fn volume(t: &Target, v: &Volume) -> Vec<Check> {
    let detail = format!(
        "{}{}: {}",
        v.kind.describe(),
        v.mount_point
            .as_ref()
            .map(|m| format!(" at {}", m.display()))
            .unwrap_or_default(),
        v.kind.survives()
    );
    let mut out = vec![match v.persistent {
        Some(true) => check("volume", Verdict::Pass, detail),
        Some(false) => check("volume", Verdict::Fail, detail).fix(v.fix(&t.loc.dir)),
        None => check("volume", Verdict::Warn, detail)
            .fix("make sure the directory is on a volume that outlives the container"),
    }];
    if v.read_only {
        out.push(
            check(
                "read-only",
                Verdict::Fail,
                "the volume is mounted read-only",
            )
            .fix("mount it read-write (drop `:ro` from `-v`, or `readOnly: false` in Kubernetes)"),
        );
    }
    out
}

/// `total`: the filesystem's size, from the directory probe.
fn free_space(s: &Status, total: Option<u64>) -> Check {
    let Some(free) = s.free_bytes else {
        return check("free space", Verdict::Skip, "unknown");
    };
    let share = total.filter(|t| *t > 0).map(|t| free as f64 / t as f64);
    let detail = match share {
        Some(p) => format!("{} free ({:.0}%)", ui::size(free), p * 100.0),
        None => format!("{} free", ui::size(free)),
    };
    if free < FREE_BYTES_MIN || share.is_some_and(|p| p < FREE_SHARE_MIN) {
        check("free space", Verdict::Warn, detail).fix(
            "free space or grow the volume: SQLite needs room for the WAL and for backups, and fails writes \
             when the disk is full",
        )
    } else {
        check("free space", Verdict::Pass, detail)
    }
}

fn journal(s: &Status) -> Check {
    let Some(mode) = s.journal_mode.as_deref() else {
        return check("journal", Verdict::Skip, "no database yet");
    };
    let wal = mode.eq_ignore_ascii_case("wal");
    match (wal, s.volume.kind.wal_safe()) {
        (true, _) => check("journal", Verdict::Pass, "WAL"),
        (false, false) => check(
            "journal",
            Verdict::Pass,
            format!("{mode} (rollback journal, right for a network filesystem)"),
        ),
        (false, true) => check("journal", Verdict::Warn, format!("{mode}, not WAL")).fix(
            "open the database through sqlite_vol::Database (it switches to WAL), or run `PRAGMA \
             journal_mode=WAL` once: readers then never block the writer",
        ),
    }
}

fn wal_safety(s: &Status) -> Check {
    let kind = s.volume.kind;
    let wal = s
        .journal_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("wal"));
    match (kind.wal_safe(), wal) {
        (true, _) if kind == VolumeKind::Unknown => check(
            "wal safety",
            Verdict::Warn,
            "the filesystem is unknown; WAL needs local locks and shared memory",
        ),
        (true, _) => check(
            "wal safety",
            Verdict::Pass,
            format!(
                "{} supports WAL",
                s.volume.fs_type.as_deref().unwrap_or("the filesystem")
            ),
        ),
        (false, true) => check(
            "wal safety",
            Verdict::Fail,
            "WAL on a network filesystem: shared memory and locks are unreliable there (corruption risk)",
        )
        .fix("move the database to a local disk volume"),
        (false, false) => check(
            "wal safety",
            Verdict::Warn,
            "network filesystem: WAL is off, but SQLite locking over the network remains fragile",
        )
        .fix("move the database to a local disk volume"),
    }
}

fn lock(s: &Status) -> Check {
    match &s.lock {
        None => check(
            "lock",
            Verdict::Pass,
            "free: no backup, restore or migration running",
        ),
        Some(h) => check(
            "lock",
            Verdict::Warn,
            format!(
                "{} in progress by pid {} since {}",
                h.operation, h.pid, h.since
            ),
        )
        .fix("wait for it to finish; the kernel releases the lock if that process dies"),
    }
}

fn backups(t: &Target, s: &Status) -> Check {
    let schedule = "run `sqlite-vol backup` now, and schedule it (SQLITE_VOL_BACKUP_INTERVAL=24h in the service, \
                    or cron `docker exec <container> sqlite-vol backup --keep 7`)";
    let newest = |b: &sqlite_vol::backup::Entry| {
        format!(
            "newest is {} old: {}",
            ui::age(b.age_seconds),
            b.path.display()
        )
    };
    match &s.last_backup {
        None if !s.exists => check("backups", Verdict::Skip, "no database to back up yet"),
        None => check(
            "backups",
            Verdict::Warn,
            format!("none of {} in {}", t.app, s.backup_dir.display()),
        )
        .fix(schedule),
        Some(b) if b.age_seconds > BACKUP_AGE_MAX => {
            check("backups", Verdict::Warn, newest(b)).fix(schedule)
        }
        Some(b) if !b.has_manifest => check(
            "backups",
            Verdict::Warn,
            format!(
                "newest ({}) has no manifest, so it cannot be verified",
                b.path.display()
            ),
        )
        .fix("take a new backup with `sqlite-vol backup`"),
        Some(b) => check("backups", Verdict::Pass, newest(b)),
    }
}

/// Off-site backups (`SQLITE_VOL_BACKUP_TO`, else `SQLITE_VOL_RESTORE_FROM`): reachable, and how old the newest is.
fn offsite(t: &Target, s: &Status) -> Check {
    let var = [settings::BACKUP_TO, settings::RESTORE_FROM]
        .into_iter()
        .find_map(|v| settings::env_str(v).map(|l| (v, l)));
    let Some((var, location)) = var else {
        return check(
            "off-site",
            Verdict::Skip,
            "SQLITE_VOL_BACKUP_TO is not set: backups stay on this machine",
        )
        .fix("set SQLITE_VOL_BACKUP_TO=s3://bucket/prefix (with AWS_* credentials) so scheduled backups survive the machine");
    };
    let listing = sqlite_vol::offsite::Place::parse(&location)
        .and_then(|p| sqlite_vol::offsite::list(&p, &t.app));
    let upload = format!("run `sqlite-vol backup --to {location}`, and keep SQLITE_VOL_BACKUP_INTERVAL set in the service");
    match listing {
        Err(e) => check("off-site", Verdict::Fail, format!("{var}: {e}")),
        Ok(l) => match l.backups.first() {
            None if !s.exists => check(
                "off-site",
                Verdict::Skip,
                format!(
                    "no backup of {} in {location} yet, and no database to back up",
                    t.app
                ),
            ),
            None => check(
                "off-site",
                Verdict::Warn,
                format!("{location} is reachable but holds no backup of {}", t.app),
            )
            .fix(upload),
            Some(b) if b.age_seconds > BACKUP_AGE_MAX => check(
                "off-site",
                Verdict::Warn,
                format!("newest is {} old: {}", ui::age(b.age_seconds), b.location),
            )
            .fix(upload),
            Some(b) => check(
                "off-site",
                Verdict::Pass,
                format!(
                    "newest is {} old: {} ({} there)",
                    ui::age(b.age_seconds),
                    b.location,
                    l.backups.len()
                ),
            ),
        },
    }
}

fn identity(t: &Target, s: &Status) -> Check {
    let Some(id) = &s.identity else {
        return check("identity", Verdict::Skip, "no database yet");
    };
    let expected = sqlite_vol::identity::application_id(&t.app);
    if id.application_id == expected {
        check(
            "identity",
            Verdict::Pass,
            format!("belongs to {} (application id {expected:#x})", t.app),
        )
    } else if id.application_id == 0 {
        check(
            "identity",
            Verdict::Warn,
            "not stamped with an application id yet",
        )
        .fix(format!(
            "start the service once (it stamps the database as {})",
            t.app
        ))
    } else {
        check(
            "identity",
            Verdict::Fail,
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
