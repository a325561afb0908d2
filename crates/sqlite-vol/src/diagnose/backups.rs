//! The checks of whether the data could be brought back: local backups, off-site copies, the last restore
//! drill, whose backups a place holds (lineage), and whose database this is.

use super::{Finding, Level, Subject, BACKUP_AGE_MAX};
use crate::store::{self, Place};
use crate::{human, settings, Status};

pub(super) fn backups(t: &Subject<'_>, s: &Status) -> Finding {
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
pub(super) fn offsite(t: &Subject<'_>, s: &Status) -> Finding {
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
pub(super) fn lineage(t: &Subject<'_>, s: &Status) -> Option<Finding> {
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
pub(super) fn last_send(s: &Status) -> Option<Finding> {
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

pub(super) fn identity(t: &Subject<'_>, s: &Status) -> Finding {
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

/// Warn when the last good drill is older than this (a weekly drill plus a day of slack).
pub(super) const DRILL_AGE_MAX: i64 = 8 * 86400;

/// Doctor's check of the restore drills recorded for the database `s` reports on: fail when the last drill
/// failed, warn when none passed within [`DRILL_AGE_MAX`] (or none ran while backups exist).
pub(super) fn drill(s: &Status) -> Finding {
    let schedule = "run `sqlite-vol drill` (or set SQLITE_VOL_DRILL_INTERVAL=1d in the service) so that a backup \
                    that would not restore is found before it is needed";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match (&s.drills.last, &s.drills.last_ok) {
        (Some(last), _) if !last.ok => Finding::new(
            "restore drill",
            Level::Fail,
            format!(
                "the last drill ({}, {}) FAILED: {}",
                last.at, last.backup, last.detail
            ),
        )
        .fix("fix what the drill names, take a new backup and run `sqlite-vol drill` again"),
        (_, Some(good)) if now - good.at_unix > DRILL_AGE_MAX => Finding::new(
            "restore drill",
            Level::Warn,
            format!(
                "the last good drill was {} ago ({})",
                crate::human::age(now - good.at_unix),
                good.backup
            ),
        )
        .fix(schedule),
        (_, Some(good)) => Finding::new(
            "restore drill",
            Level::Pass,
            format!(
                "the last drill passed {} ago ({}, {} ms)",
                crate::human::age(now - good.at_unix),
                good.backup,
                good.duration_ms
            ),
        ),
        _ if s.last_backup.is_none() => {
            Finding::new("restore drill", Level::Skip, "no backup to drill yet")
        }
        _ => Finding::new(
            "restore drill",
            Level::Warn,
            "no restore drill has run: nobody knows whether the backups restore",
        )
        .fix(schedule),
    }
}
