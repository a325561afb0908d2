//! The checks of where the database lives and how it is kept: the database itself, a writable
//! directory, the volume, free space, the journal and WAL safety, the SQLite that wrote it, the lock.

use super::{Finding, Level, Subject, FREE_BYTES_MIN, FREE_SHARE_MIN};
use crate::prepare::DirReport;
use crate::wal_reset::Exposure;
use crate::{human, Result, Status, Volume, VolumeKind};

pub(super) fn database(t: &Subject<'_>, s: &Status) -> Finding {
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
pub(super) fn writable(t: &Subject<'_>, probe: Option<Result<DirReport>>) -> Finding {
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

pub(super) fn volume(t: &Subject<'_>, v: &Volume) -> Vec<Finding> {
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
pub(super) fn free_space(s: &Status, total: Option<u64>) -> Finding {
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

pub(super) fn journal(s: &Status) -> Finding {
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

pub(super) fn wal_safety(s: &Status) -> Finding {
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
pub(super) fn sqlite_version(s: &Status) -> Finding {
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

pub(super) fn lock(s: &Status) -> Finding {
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
