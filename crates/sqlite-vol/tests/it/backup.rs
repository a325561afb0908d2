//! Backups, verification and restore through the library.

use std::path::Path;

use sqlite_vol::{BackupOptions, Error, RestoreOptions};

use crate::support::{
    add_user, builder, count_users, db_bytes, open, sqlite3_integrity_check, TestResult, Tmp,
};

fn users(db: &Path) -> Result<Vec<String>, rusqlite::Error> {
    let c = rusqlite::Connection::open(db)?;
    let mut s = c.prepare("SELECT email FROM users ORDER BY id")?;
    let v = s.query_map([], |r| r.get(0))?.collect();
    v
}

#[test]
fn backup_is_checked_named_private_and_has_a_manifest() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "a@example.com")?;
    let m = db.backup(None)?;
    let name = m
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        name.starts_with("it-")
            && name.ends_with("Z.db")
            && name.len() == "it-20261122T101500Z.db".len(),
        "{name}"
    );
    assert_eq!(
        std::fs::metadata(&m.path)?.permissions().mode() & 0o077,
        0,
        "backup readable by others"
    );
    let manifest = sqlite_vol::manifest::read_manifest(&m.path).ok_or("manifest missing")?;
    assert_eq!(manifest, m);
    assert_eq!(m.schema_version, Some(1));
    assert_eq!(m.application_id, sqlite_vol::identity::application_id("it"));
    assert_eq!(users(&m.path)?, ["a@example.com"]);
    let v = sqlite_vol::verify(&m.path, true, None)?;
    assert!(v.manifest && v.sha256 == m.sha256);
    // The stock sqlite3 shell agrees.
    assert_eq!(sqlite3_integrity_check(&m.path)?, "ok");
    Ok(())
}

#[test]
fn restore_brings_back_the_snapshot_into_an_open_database() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "before@example.com")?;
    let snap = db.backup(None)?;
    add_user(&db, "after@example.com")?;
    let r = db.restore(&snap.path)?;
    assert!(
        r.safety_backup.is_some(),
        "a safety backup of the current state is taken"
    );
    // The pool that stayed open sees the restored data at its next transaction.
    assert_eq!(count_users(&db)?, 1);
    assert_eq!(
        users(&r.safety_backup.ok_or("safety")?)?,
        ["before@example.com", "after@example.com"]
    );
    Ok(())
}

#[test]
fn restore_into_an_empty_volume_creates_the_database() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "a@example.com")?;
    let snap = db.backup(None)?;
    let fresh = tmp.path().join("fresh/it.db");
    let r = sqlite_vol::restore::restore(
        &snap.path,
        &fresh,
        "it",
        &RestoreOptions::new(tmp.path().join("fresh/backups")),
    )?;
    assert!(r.created && r.safety_backup.is_none());
    assert_eq!(users(&fresh)?, ["a@example.com"]);
    let db2 = open(&tmp.path().join("fresh"), "migrations_ok")?;
    assert!(!db2.created(), "a restored database is not new");
    Ok(())
}

#[test]
fn restore_refuses_bad_files_and_leaves_the_live_database_unchanged() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "a@example.com")?;
    let good = db.backup(None)?;
    let live = tmp.path().join("it.db");
    let bad_dir = tmp.path().join("bad");
    std::fs::create_dir(&bad_dir)?;
    let good_bytes = std::fs::read(&good.path)?;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("text.db", b"hello, I am not a database\n".to_vec()),
        ("empty.db", Vec::new()),
        ("truncated.db", good_bytes[..good_bytes.len() / 2].to_vec()),
    ];
    let mut noise = good_bytes[..100].to_vec();
    noise.extend((0..good_bytes.len() - 100).map(|i| (i * 7919 % 251) as u8));
    cases.push(("noise.db", noise));
    for (name, bytes) in &cases {
        std::fs::write(bad_dir.join(name), bytes)?;
    }
    // A good file whose manifest no longer matches.
    let tampered = bad_dir.join("it-20200101T000000Z.db");
    let mut t = good_bytes.clone();
    let last = t.len() - 1;
    t[last] ^= 0xff;
    std::fs::write(&tampered, t)?;
    std::fs::copy(
        sqlite_vol::manifest::manifest_path(&good.path),
        sqlite_vol::manifest::manifest_path(&tampered),
    )?;

    let before = db_bytes(&live);
    let mut files: Vec<_> = cases.iter().map(|(n, _)| bad_dir.join(n)).collect();
    files.push(tampered);
    files.push(bad_dir.join("does-not-exist.db"));
    files.push(bad_dir.clone());
    for f in files {
        let err = db
            .restore(&f)
            .expect_err(&format!("{} must be refused", f.display()));
        assert!(!err.to_string().is_empty());
        assert_eq!(
            db_bytes(&live),
            before,
            "live database changed by refusing {}",
            f.display()
        );
    }
    Ok(())
}

#[test]
fn restore_into_a_live_database_commits_only_after_the_backup_is_verified() -> TestResult {
    // Big enough that the copy takes several steps before the verification's verdict is needed.
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let big = "x".repeat(8000);
    db.write(|tx| {
        for i in 0..5000 {
            tx.execute(
                "INSERT INTO users (email) VALUES (?1)",
                [format!("{i}{big}")],
            )
            .map_err(Error::from_sqlite)?;
        }
        Ok::<(), Error>(())
    })?;
    let good = db.backup(None)?;
    let good_bytes = std::fs::read(&good.path)?;
    assert!(
        good_bytes.len() > 40 << 20,
        "the backup spans several copy steps"
    );
    let page = 4096;
    let bad_dir = tmp.path().join("bad");
    std::fs::create_dir(&bad_dir)?;
    // One byte flipped near the end, under the good backup's manifest: only the hash can tell.
    let tampered = bad_dir.join("it-20200101T000000Z.db");
    let mut t = good_bytes.clone();
    let at = t.len() - 3 * page + 700;
    t[at] ^= 0x01;
    std::fs::write(&tampered, &t)?;
    std::fs::copy(
        sqlite_vol::manifest::manifest_path(&good.path),
        sqlite_vol::manifest::manifest_path(&tampered),
    )?;
    // A b-tree leaf in the middle zeroed, no manifest: only the integrity check can tell.
    let damaged = bad_dir.join("damaged.db");
    let mut d = good_bytes.clone();
    let mid = (d.len() / page / 2..d.len() / page)
        .map(|p| p * page)
        .find(|&at| d[at] == 0x0d)
        .ok_or("no table leaf page in the second half")?;
    d[mid..mid + page].fill(0);
    std::fs::write(&damaged, &d)?;

    db.write(|tx| {
        tx.execute("DELETE FROM users WHERE id % 2 = 0", [])
            .map(|_| ())
            .map_err(Error::from_sqlite)
    })?;
    let live = tmp.path().join("it.db");
    let users_before = count_users(&db)?;
    let before = db_bytes(&live);
    for f in [&tampered, &damaged] {
        let err = db
            .restore(f)
            .expect_err(&format!("{} must be refused", f.display()));
        assert!(
            matches!(err, Error::BadBackup { .. }),
            "{}: {err}",
            f.display()
        );
        assert_eq!(
            count_users(&db)?,
            users_before,
            "the pool sees the old rows"
        );
        assert_eq!(
            db_bytes(&live),
            before,
            "live database changed by refusing {}",
            f.display()
        );
        assert_eq!(sqlite3_integrity_check(&live)?, "ok");
    }
    // The good one goes in, and the pool that stayed open sees it.
    db.restore(&good.path)?;
    assert_eq!(count_users(&db)?, 5000);
    Ok(())
}

#[test]
fn restore_refuses_another_apps_backup_unless_forced() -> TestResult {
    let tmp = Tmp::new();
    let other = sqlite_vol::Database::builder("billing")
        .path(tmp.path().join("billing"))
        .open()?;
    let other_backup = other.backup(None)?;
    let db = open(tmp.path(), "migrations_ok")?;
    let err = db
        .restore(&other_backup.path)
        .expect_err("another app's backup");
    assert!(
        // The library names its own option; the command line's message names `--force` (its own test).
        matches!(err, Error::WrongApplication { .. }) && err.to_string().contains("force: true"),
        "{err}"
    );
    let forced = RestoreOptions {
        force: true,
        ..RestoreOptions::new(tmp.path().join("backups"))
    };
    sqlite_vol::restore::restore(&other_backup.path, &tmp.path().join("it.db"), "it", &forced)?;
    Ok(())
}

#[test]
fn restore_refuses_a_backup_with_a_newer_schema() -> TestResult {
    let tmp = Tmp::new();
    let newer = open(&tmp.path().join("new"), "migrations_v2")?;
    let b = newer.backup(None)?;
    let db = open(tmp.path(), "migrations_ok")?;
    let err = db.restore(&b.path).expect_err("newer schema");
    assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
    Ok(())
}

#[test]
fn retention_keeps_newest_and_ignores_foreign_files() -> TestResult {
    let tmp = Tmp::new();
    let dir = tmp.path().join("b");
    std::fs::create_dir(&dir)?;
    for stamp in ["20200101T000000Z", "20200102T000000Z", "20200103T000000Z"] {
        std::fs::write(dir.join(format!("it-{stamp}.db")), b"x")?;
    }
    std::fs::write(dir.join("it-important.db"), b"keep me")?;
    std::fs::write(dir.join("other-20200101T000000Z.db"), b"keep me")?;
    let db = open(tmp.path(), "migrations_ok")?;
    let m = sqlite_vol::backup::backup(
        &db.location().path,
        "it",
        &BackupOptions {
            keep: Some(2),
            ..BackupOptions::new(&dir)
        },
    )?;
    let left: Vec<_> = sqlite_vol::manifest::list(&dir, "it")?
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(left, [m.path.clone(), dir.join("it-20200103T000000Z.db")]);
    assert!(dir.join("it-important.db").exists() && dir.join("other-20200101T000000Z.db").exists());
    assert!(
        sqlite_vol::manifest::prune(&dir, "it", 0, None).is_err(),
        "keep 0 is refused"
    );
    Ok(())
}

#[test]
fn backup_to_a_full_filesystem_removes_the_partial_and_says_no_space() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    db.write(|tx| {
        tx.execute_batch("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 3000) INSERT INTO users (email) SELECT printf('user%05d@example.com', i) || hex(randomblob(64)) FROM n")
            .map_err(Error::from_sqlite)
    })?;
    let live = db.location().path.clone();
    let before = db_bytes(&live);
    let full = tmp.path().join("full");
    let _m = crate::support::MountGuard::tmpfs(&full, "64k");
    let err = sqlite_vol::backup::backup(&live, "it", &BackupOptions::new(&full))
        .expect_err("64 KiB cannot hold it");
    assert!(
        matches!(err, Error::NoSpace { .. }) && err.to_string().contains("no space"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&full)?.count(),
        0,
        "partial file left behind"
    );
    assert_eq!(db_bytes(&live), before);
    Ok(())
}

#[test]
fn a_second_maintenance_operation_fails_naming_the_first() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let _held = sqlite_vol::lock::MaintenanceLock::acquire(
        &db.location().path,
        "restore",
        sqlite_vol::lock::Wait::No,
    )?;
    let err = sqlite_vol::backup::backup(
        &db.location().path,
        "it",
        &BackupOptions::new(tmp.path().join("b")),
    )
    .expect_err("locked");
    assert!(
        err.is_locked() && err.to_string().contains("restore in progress by pid"),
        "{err}"
    );
    Ok(())
}

/// Python's sqlite3 module commits as fast as it can, keeping `count(*) = max(id)`, until `stop` exists.
const FOREIGN_WRITER: &str = r#"
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, pad BLOB NOT NULL)")
db.execute("BEGIN IMMEDIATE")
db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
           "INSERT INTO t (pad) SELECT randomblob(200) FROM c")
db.execute("COMMIT")
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t (id, pad) VALUES ((SELECT max(id) FROM t) + 1, randomblob(100))")
    db.execute("COMMIT")
"#;

#[test]
fn backups_under_a_continuous_foreign_writer_are_point_in_time_snapshots() -> TestResult {
    use std::io::BufRead;
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let live = db.location().path.clone();
    let stop = tmp.path().join("stop");
    let mut writer = std::process::Command::new("python3")
        .args(["-c", FOREIGN_WRITER])
        .arg(&live)
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(writer.stdout.take().ok_or("stdout")?).read_line(&mut line)?;
    assert_eq!(line.trim(), "ready");
    let result = (|| -> TestResult {
        // Twelve in a row: a backup that lost its snapshot lock corrupted about one copy in two here.
        for _ in 0..12 {
            let m = db.backup(None)?;
            let c = rusqlite::Connection::open(&m.path)?;
            let (n, max): (i64, i64) = c.query_row("SELECT count(*), max(id) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            assert_eq!(n, max, "not a point-in-time snapshot");
            assert_eq!(sqlite3_integrity_check(&m.path)?, "ok");
        }
        Ok(())
    })();
    std::fs::write(&stop, b"")?;
    writer.wait()?;
    result?;
    Ok(())
}

#[test]
fn backup_under_a_held_lock_works_and_refuses_another_databases_lock() -> TestResult {
    use sqlite_vol::lock::{MaintenanceLock, Wait};
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let live = db.location().path.clone();
    let held = MaintenanceLock::acquire(&live, "reset", Wait::No)?;
    let opts = BackupOptions::new(tmp.path().join("b"));
    let m = sqlite_vol::backup::backup_under(&held, &live, "it", &opts)?;
    assert!(sqlite_vol::verify(&m.path, false, None).is_ok());
    let other = MaintenanceLock::acquire(&tmp.path().join("other.db"), "reset", Wait::No)?;
    assert!(sqlite_vol::backup::backup_under(&other, &live, "it", &opts).is_err());
    Ok(())
}

/// Opens `dir` for app `it`, restoring from `from` when there is no database.
fn open_restoring(dir: &Path, from: &Path) -> sqlite_vol::Result<sqlite_vol::Database> {
    builder(dir, "migrations_ok")
        .restore_from(from.display().to_string())
        .open()
}

#[test]
fn instances_starting_together_on_an_empty_volume_restore_the_newest_backup_once() -> TestResult {
    let tmp = Tmp::new();
    let old = tmp.path().join("old");
    let offsite = tmp.path().join("offsite");
    let place = sqlite_vol::store::Place::parse(&offsite.display().to_string())?;
    let db = open(&old, "migrations_ok")?;
    add_user(&db, "first@example.com")?;
    db.backup_to(&place, Some(5))?;
    add_user(&db, "second@example.com")?;
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a later name
    let sent = db.backup_to(&place, Some(5))?.to;
    add_user(&db, "after-the-last-backup@example.com")?;
    assert_eq!(sqlite_vol::manifest::list(&offsite, "it")?.len(), 2);

    let new = tmp.path().join("new");
    let opened: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| open_restoring(&new, &offsite).map(|d| d.created())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for o in &opened {
        assert_eq!(
            o.as_ref().ok(),
            Some(&false),
            "each open succeeds on the restored database: {o:?}"
        );
    }
    let restored = new.join("it.db");
    assert_eq!(
        users(&restored)?,
        ["first@example.com", "second@example.com"],
        "the newest: {sent}"
    );
    // A second restore would have taken a safety backup of the first one's result.
    assert!(
        sqlite_vol::manifest::list(&new.join("backups"), "it")?.is_empty(),
        "restored once"
    );

    // Later starts never restore over the database, whatever the backup place holds.
    let d = open_restoring(&new, &offsite)?;
    add_user(&d, "third@example.com")?;
    d.close()?;
    let d = open_restoring(&new, &offsite)?;
    assert_eq!(users(&restored)?.len(), 3);
    d.close()?;
    Ok(())
}

#[test]
fn an_empty_backup_place_creates_a_new_database_unless_one_is_expected() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("nothing-here");
    let strict = sqlite_vol::Database::builder("it")
        .path(tmp.path().join("a"))
        .backup_every(std::time::Duration::ZERO, None)
        .restore_from(offsite.display().to_string())
        .expect_existing(true)
        .open();
    assert!(matches!(strict, Err(Error::Missing { .. })), "{strict:?}");
    assert!(!sqlite_vol::location::has_content(
        &tmp.path().join("a/it.db")
    ));
    let db = open_restoring(&tmp.path().join("b"), &offsite)?;
    assert!(db.created());
    Ok(())
}

#[test]
fn restore_on_first_start_refuses_another_apps_backup_and_creates_nothing() -> TestResult {
    let tmp = Tmp::new();
    let offsite = tmp.path().join("offsite");
    let other = sqlite_vol::Database::builder("other")
        .path(tmp.path().join("other"))
        .backup_every(std::time::Duration::ZERO, None)
        .open()?;
    other.backup_to(
        &sqlite_vol::store::Place::parse(&offsite.display().to_string())?,
        None,
    )?;
    // Named like ours, so that the listing picks it: the identity check must still refuse it.
    let theirs = sqlite_vol::manifest::list(&offsite, "other")?;
    let from = &theirs[0].path;
    let name = from
        .file_name()
        .ok_or("name")?
        .to_string_lossy()
        .replace("other-", "it-");
    std::fs::copy(from, offsite.join(&name))?;
    std::fs::copy(
        sqlite_vol::manifest::manifest_path(from),
        offsite.join(format!("{name}.json")),
    )?;
    let r = open_restoring(&tmp.path().join("new"), &offsite);
    assert!(matches!(r, Err(Error::WrongApplication { .. })), "{r:?}");
    assert!(!sqlite_vol::location::has_content(
        &tmp.path().join("new/it.db")
    ));
    Ok(())
}

/// A Python process that opens the (empty) file at argv[1], says `open`, and after a line on stdin counts
/// the users it sees through that same open connection.
const HOLDS_AN_EMPTY_FILE: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA schema_version").fetchone()
print("open", flush=True)
sys.stdin.readline()
print(c.execute("SELECT count(*) FROM users").fetchone()[0], flush=True)
"#;

#[test]
fn restore_onto_an_empty_file_another_process_has_open_goes_into_it_not_around_it() -> TestResult {
    use std::io::{BufRead, Write};
    let tmp = Tmp::new();
    let src = open(&tmp.path().join("src"), "migrations_ok")?;
    add_user(&src, "kept@example.com")?;
    let backup = src.backup(None)?.path;
    let dir = tmp.path().join("new");
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("it.db");
    let mut py = std::process::Command::new("python3")
        .args(["-c", HOLDS_AN_EMPTY_FILE])
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut out = std::io::BufReader::new(py.stdout.take().ok_or("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    assert_eq!(line.trim(), "open");
    assert!(
        db.is_file() && std::fs::metadata(&db)?.len() == 0,
        "an empty file is there"
    );
    let restored = sqlite_vol::restore::restore(
        &backup,
        &db,
        "it",
        &RestoreOptions::new(tmp.path().join("safety")),
    )?;
    // Replacing the name would have left the Python process on the old, empty file.
    py.stdin.take().ok_or("stdin")?.write_all(b"go\n")?;
    line.clear();
    out.read_line(&mut line)?;
    py.wait()?;
    assert_eq!(
        line.trim(),
        "1",
        "the process that had the file open sees the restored data"
    );
    assert_eq!(users(&db)?, ["kept@example.com"]);
    assert!(restored.page_count > 0);
    assert!(
        std::fs::read_dir(&dir)?
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("restoring")),
        "no staged copy is left behind"
    );
    Ok(())
}

#[test]
fn a_damaged_database_is_refused_by_the_check_and_leaves_no_backup() -> TestResult {
    // In WAL mode the check runs beside the copy on the database itself and names it; in rollback-journal
    // mode it runs on the copy and names that.
    for mode in ["wal", "delete"] {
        let tmp = Tmp::new();
        let db = tmp.path().join("damaged.db");
        rusqlite::Connection::open(&db)?.execute_batch(&format!(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = {mode}; CREATE TABLE t(x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO t SELECT printf('%0200d', i) FROM n; PRAGMA wal_checkpoint(TRUNCATE);"
        ))?;
        // Overwrite a page in the middle (not page 1, so SQLite still opens the file).
        let mut bytes = std::fs::read(&db)?;
        let page = 4096;
        let at = bytes.len() / 2 / page * page;
        for (i, b) in bytes[at..at + page].iter_mut().enumerate() {
            *b = (i * 37 % 251) as u8;
        }
        std::fs::write(&db, &bytes)?;
        let dir = tmp.path().join("b");
        for full in [false, true] {
            let mut opts = BackupOptions::new(&dir);
            opts.full_check = full;
            let e = sqlite_vol::backup::backup(&db, "damaged", &opts).unwrap_err();
            let check = if full {
                "integrity_check"
            } else {
                "quick_check"
            };
            let named = match (&e, mode) {
                (Error::NotADatabase { path, .. }, "wal") => path == &db,
                (Error::BadBackup { path, .. }, "delete") => path.starts_with(&dir),
                _ => false,
            };
            assert!(named && e.to_string().contains(check), "{mode}: {e:?}");
            assert_eq!(
                std::fs::read_dir(&dir)?.count(),
                0,
                "{mode}: a file was left"
            );
        }
        assert_eq!(std::fs::read(&db)?, bytes, "{mode}: the source was changed");
    }
    Ok(())
}
