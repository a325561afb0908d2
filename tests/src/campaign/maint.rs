//! Kills during maintenance: SIGKILL the `sqlite-vol` command in the middle of a backup, a restore and a
//! migration of a database big enough to have a middle, repeatedly. After each kill the live database opens,
//! passes `integrity_check`, holds either the whole old or the whole new content, the maintenance lock is
//! free (the kernel released the dead holder's lock), and no listed backup fails verification.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;
use sqlite_vol::lock::{MaintenanceLock, Wait};

use super::{Config, Report};
use crate::support::{bin, Rng};

const APP: &str = "campaign";

/// Writes the two migration folders: V1 (tables), and V1 + a slow V2 (copy and index the big table).
pub(super) fn migration_dirs(root: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let (m1, m2) = (root.join("m1"), root.join("m2"));
    for d in [&m1, &m2] {
        std::fs::create_dir_all(d)?;
        std::fs::write(d.join("V1__big.sql"), "CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB NOT NULL);\nCREATE TABLE marker (v TEXT NOT NULL);\n")?;
    }
    std::fs::write(
        m2.join("V2__copy.sql"),
        "CREATE TABLE big2 AS SELECT * FROM big;\nCREATE INDEX big2_b ON big2 (b);\n",
    )?;
    Ok((m1, m2))
}

/// Creates a database of about `mib` MiB with marker `marker`.
pub(super) fn make_big(dir: &Path, m1: &Path, mib: usize, marker: &str) -> Result<PathBuf, String> {
    let db = sqlite_vol::Database::builder(APP)
        .path(dir)
        .migrations(sqlite_vol::Migrations::from_dir(m1).map_err(|e| e.to_string())?)
        .backup_every(std::time::Duration::ZERO, None)
        .open()
        .map_err(|e| e.to_string())?;
    let rows = mib * 1024 / 4;
    db.write(|tx| {
        tx.execute(
            "INSERT INTO big (b) SELECT randomblob(4000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) SELECT i FROM n)",
            [rows as i64],
        )
        .and_then(|_| tx.execute("INSERT INTO marker (v) VALUES (?1)", [marker]))
        .map(|_| ())
        .map_err(sqlite_vol::Error::from_sqlite)
    })
    .map_err(|e| e.to_string())?;
    let path = db.location().path.clone();
    db.close().map_err(|e| e.to_string())?;
    Ok(path)
}

/// A digest of the whole content: marker, schema, and every blob in order.
pub(super) fn digest(db: &Path) -> Result<String, String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let mut h = sha2::Sha256::new();
    let marker: String = c
        .query_row("SELECT v FROM marker", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    h.update(marker.as_bytes());
    let mut s = c
        .prepare("SELECT b FROM big ORDER BY id")
        .map_err(|e| e.to_string())?;
    let mut rows = s.query([]).map_err(|e| e.to_string())?;
    while let Some(r) = rows.next().map_err(|e| e.to_string())? {
        let b: Vec<u8> = r.get(0).map_err(|e| e.to_string())?;
        h.update(&b);
    }
    Ok(format!("{marker}:{}", hex::encode(h.finalize())))
}

pub(super) fn integrity(db: &Path) -> String {
    crate::support::sqlite3_integrity(db)
}

pub(super) fn lock_free(db: &Path) -> bool {
    MaintenanceLock::acquire(db, "campaign probe", Wait::No).is_ok()
}

pub(super) fn cli(args: &[&str], db: &Path) -> Command {
    let mut c = Command::new(bin("sqlite-vol"));
    c.args(args)
        .arg("--db")
        .arg(db)
        .arg("--app")
        .arg(APP)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Runs the command to completion once to learn how long it takes.
pub(super) fn timed(mut c: Command) -> Result<Duration, String> {
    let t = Instant::now();
    let s = c.status().map_err(|e| e.to_string())?;
    if !s.success() {
        return Err(format!("{c:?} failed with {s}"));
    }
    Ok(t.elapsed())
}

/// Starts the command, kills it at a random moment within `span`, and says whether it was still running.
pub(super) fn kill_within(mut c: Command, span: Duration, rng: &mut Rng) -> Result<bool, String> {
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_micros(
        rng.below(span.as_micros() as u64 + 1),
    ));
    let running = child.try_wait().map_err(|e| e.to_string())?.is_none();
    let _ = child.kill();
    let _ = child.wait();
    Ok(running)
}

pub(super) fn reset(db: &Path, pristine: &Path) -> Result<(), String> {
    for s in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{s}", db.display()));
    }
    std::fs::copy(pristine, db)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    let mut rng = Rng::new(cfg.seed ^ 0x6d61_696e);
    let (m1, m2) = migration_dirs(root).map_err(|e| e.to_string())?;
    let live = make_big(&root.join("live"), &m1, cfg.big_mib, "old")?;
    let newer = make_big(&root.join("newer"), &m1, cfg.big_mib, "new")?;
    let (old_digest, new_digest) = (digest(&live)?, digest(&newer)?);
    let pristine = root.join("pristine.db");
    std::fs::copy(&live, &pristine).map_err(|e| e.to_string())?;
    let backups = root.join("backups");
    let new_backup = sqlite_vol::backup::backup(
        &newer,
        APP,
        &sqlite_vol::BackupOptions::new(root.join("newbackup")),
    )
    .map_err(|e| e.to_string())?
    .path;

    let (mut bad_integrity, mut wrong_content, mut stuck_locks, mut bad_listed, mut mid_kills) =
        (0, 0, 0, 0, 0);
    let mut check = |db: &Path, allowed: &[&str]| -> Result<String, String> {
        if integrity(db) != "ok" {
            bad_integrity += 1;
        }
        let d = digest(db)?;
        if !allowed.contains(&d.as_str()) {
            wrong_content += 1;
        }
        if !lock_free(db) {
            stuck_locks += 1;
        }
        Ok(d)
    };

    // Backups.
    let backup = || cli(&["backup", "--to", &backups.to_string_lossy()], &live);
    let t_backup = timed(backup())?;
    for _ in 0..cfg.maint_kills {
        mid_kills += u64::from(kill_within(backup(), t_backup, &mut rng)?);
        check(&live, &[&old_digest])?;
        for e in sqlite_vol::manifest::list(&backups, APP).map_err(|e| e.to_string())? {
            if sqlite_vol::verify(&e.path, false, None).is_err() {
                bad_listed += 1;
            }
        }
    }
    // Restores of the "new" content over the "old".
    let restore = || {
        let from = new_backup.to_string_lossy();
        cli(&["restore", &from, "--yes", "--no-safety-backup"], &live)
    };
    let t_restore = timed(restore())?;
    let (mut became_new, mut stayed_old) = (0, 0);
    for _ in 0..cfg.maint_kills {
        reset(&live, &pristine)?;
        mid_kills += u64::from(kill_within(restore(), t_restore, &mut rng)?);
        let d = check(&live, &[&old_digest, &new_digest])?;
        if d == new_digest {
            became_new += 1;
        } else {
            stayed_old += 1;
        }
    }
    // Migrations (V2 copies and indexes the big table).
    reset(&live, &pristine)?;
    let migrate = || cli(&["migrate", "--dir", &m2.to_string_lossy()], &live);
    let t_migrate = timed(migrate())?;
    let (mut at_v1, mut at_v2, mut half_migrated) = (0, 0, 0);
    for _ in 0..cfg.maint_kills {
        reset(&live, &pristine)?;
        mid_kills += u64::from(kill_within(migrate(), t_migrate, &mut rng)?);
        check(&live, &[&old_digest])?;
        let c = rusqlite::Connection::open(&live).map_err(|e| e.to_string())?;
        let version = sqlite_vol::migrate::schema_version(&c, &live).map_err(|e| e.to_string())?;
        let big2: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('big2', 'big2_b')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        match (version, big2) {
            (Some(1), 0) => at_v1 += 1,
            (Some(2), 2) => at_v2 += 1,
            _ => half_migrated += 1,
        }
    }
    report.info(
        "kill during maintenance",
        "database size; uninterrupted backup / restore / migrate",
        format!(
            "{} MiB; {:.1} s / {:.1} s / {:.1} s",
            cfg.big_mib,
            t_backup.as_secs_f64(),
            t_restore.as_secs_f64(),
            t_migrate.as_secs_f64()
        ),
    );
    report.info(
        "kill during maintenance",
        "kills (backup, restore, migrate)",
        3 * cfg.maint_kills as u64,
    );
    report.info(
        "kill during maintenance",
        "kills that landed mid-operation",
        mid_kills,
    );
    report.info(
        "kill during maintenance",
        "restores killed: whole new content / whole old content",
        format!("{became_new} / {stayed_old}"),
    );
    report.info(
        "kill during maintenance",
        "migrations killed: at V2 / at V1",
        format!("{at_v2} / {at_v1}"),
    );
    report.zero(
        "kill during maintenance",
        "integrity_check failures",
        bad_integrity,
    );
    report.zero(
        "kill during maintenance",
        "mixed or wrong content",
        wrong_content,
    );
    report.zero(
        "kill during maintenance",
        "half-applied migrations",
        half_migrated,
    );
    report.zero(
        "kill during maintenance",
        "maintenance locks left stuck",
        stuck_locks,
    );
    report.zero(
        "kill during maintenance",
        "listed backups failing verification",
        bad_listed,
    );
    Ok(())
}
