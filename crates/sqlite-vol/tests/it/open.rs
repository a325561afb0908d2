//! Opening: creation as an event, the creation hook, identity, policies, permissions, concurrency.

use std::process::Command;

use sqlite_vol::{Database, Error, VolumeKind};

use crate::support::{
    add_user, count_users, db_bytes, migrations, open, seed_user, MountGuard, TestResult, Tmp,
};

#[test]
fn first_open_creates_and_later_opens_do_not() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    assert!(db.created());
    assert_eq!(db.location().path, tmp.path().join("it.db"));
    assert_eq!(db.applied_migrations(), ["V1__users"]);
    add_user(&db, "a@example.com")?;
    db.close()?;
    let db = open(tmp.path(), "migrations_ok")?;
    assert!(!db.created());
    assert!(db.applied_migrations().is_empty());
    assert_eq!(count_users(&db)?, 1, "data must survive reopening");
    Ok(())
}

#[test]
fn every_connection_gets_wal_and_production_pragmas() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let c = db.conn()?;
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let busy: i64 = c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    assert_eq!((mode.as_str(), fk, sync, busy), ("wal", 1, 1, 5000));
    Ok(())
}

#[test]
fn creation_hook_runs_exactly_once_across_reopenings() -> TestResult {
    let tmp = Tmp::new();
    for _ in 0..3 {
        let db = Database::builder("it")
            .path(tmp.path())
            .migrations(migrations("migrations_ok"))
            .on_create(seed_user)
            .open()?;
        assert_eq!(count_users(&db)?, 1);
    }
    Ok(())
}

#[test]
fn failing_creation_hook_keeps_nothing_and_runs_again_next_start() -> TestResult {
    let tmp = Tmp::new();
    let err = Database::builder("it")
        .path(tmp.path())
        .migrations(migrations("migrations_ok"))
        .on_create(|tx| {
            tx.execute("INSERT INTO users (email) VALUES ('half@example.com')", [])
                .map_err(|e| e.to_string())?;
            Err("seed source unavailable".into())
        })
        .open()
        .expect_err("hook failure must stop startup");
    assert!(matches!(err, Error::Hook { .. }), "{err}");
    let db = Database::builder("it")
        .path(tmp.path())
        .migrations(migrations("migrations_ok"))
        .on_create(seed_user)
        .open()?;
    let emails: Vec<String> = db
        .conn()?
        .prepare("SELECT email FROM users")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(emails, ["seed@example.com"]);
    Ok(())
}

#[test]
fn database_is_stamped_with_the_app_identity() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    let conn = db.conn()?;
    let id = sqlite_vol::identity::read(&conn)?;
    assert_eq!(
        id.application_id,
        sqlite_vol::identity::application_id("it")
    );
    assert_eq!(id.app.as_deref(), Some("it"));
    assert!(id.instance_id.is_some() && id.created_at.is_some() && id.initialized_at.is_some());
    Ok(())
}

#[test]
fn another_apps_database_is_refused_and_left_alone() -> TestResult {
    let tmp = Tmp::new();
    drop(
        Database::builder("billing")
            .path(tmp.path().join("it.db"))
            .open()?,
    );
    let before = db_bytes(&tmp.path().join("it.db"));
    let err = open(tmp.path(), "migrations_ok").expect_err("another app's file");
    assert!(matches!(err, Error::WrongApplication { .. }), "{err}");
    assert_eq!(db_bytes(&tmp.path().join("it.db")), before);
    Ok(())
}

#[test]
fn expect_existing_refuses_to_create_and_creates_nothing() -> TestResult {
    let tmp = Tmp::new();
    let dir = tmp.path().join("volume");
    let err = Database::builder("it")
        .path(&dir)
        .expect_existing(true)
        .open()
        .expect_err("no database yet");
    assert!(matches!(err, Error::Missing { .. }), "{err}");
    assert!(err.to_string().contains("Is the volume mounted"), "{err}");
    assert!(!dir.join("it.db").exists());
    Ok(())
}

#[test]
fn garbage_in_place_of_the_database_is_refused_untouched() -> TestResult {
    let tmp = Tmp::new();
    let path = tmp.path().join("it.db");
    std::fs::write(&path, vec![0x5a; 8192])?;
    let err = open(tmp.path(), "migrations_ok").expect_err("garbage file");
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&path)?, vec![0x5a; 8192]);
    Ok(())
}

#[test]
fn strict_mode_refuses_a_tmpfs_and_names_the_fix() -> TestResult {
    let tmp = Tmp::new();
    let at = tmp.path().join("mem");
    let _m = MountGuard::tmpfs(&at, "4m");
    let err = Database::builder("it")
        .path(&at)
        .require_persistent(true)
        .open()
        .expect_err("tmpfs is not persistent");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::NotPersistent { .. }) && msg.contains("-v NAME:"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(&at)?.count(),
        0,
        "strict refusal must create nothing"
    );
    // Without strict mode the same volume opens (with a warning).
    let db = Database::builder("it")
        .path(&at)
        .require_persistent(false)
        .open()?;
    assert_eq!(db.volume().kind, VolumeKind::Tmpfs);
    Ok(())
}

#[test]
fn read_only_directory_is_refused_with_its_own_error() -> TestResult {
    let tmp = Tmp::new();
    let at = tmp.path().join("ro");
    let m = MountGuard::tmpfs(&at, "4m");
    m.remount_ro();
    let err = Database::builder("it")
        .path(&at)
        .open()
        .expect_err("read-only mount");
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    Ok(())
}

#[test]
fn unwritable_directory_names_uid_owner_mode_and_chown_fix() -> TestResult {
    // Root ignores modes, so run the probe as an unprivileged user in a child process.
    let tmp = Tmp::new();
    let dir = tmp.path().join("owned-by-root");
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let out = test_support::as_user(65534, 65534, &[])
        .arg(std::env::current_exe()?)
        .args([
            "--exact",
            "open::child_probe_dir",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SQLITE_VOL_IT_CHILD_DIR", &dir)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("NOT-WRITABLE"), "{text}");
    assert!(
        text.contains("uid 65534")
            && text.contains("chown -R 65534:65534")
            && text.contains("mode 755"),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0, "nothing half-created");
    Ok(())
}

#[test]
fn a_database_writable_through_a_supplementary_group_opens() -> TestResult {
    // As with a Kubernetes fsGroup: the files belong to another user and to a group the process has only
    // as a supplementary group. The kernel lets it write; so must the writability check.
    use std::os::unix::fs::PermissionsExt;
    let tmp = Tmp::new();
    let dir = tmp.path().join("shared");
    Database::builder("it").path(&dir).open()?.close()?;
    std::fs::set_permissions(tmp.path(), PermissionsExt::from_mode(0o755))?;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.push(dir.clone());
    for path in paths {
        std::os::unix::fs::chown(&path, Some(4243), Some(4242))?;
        let mode = if path.is_dir() { 0o770 } else { 0o660 };
        std::fs::set_permissions(&path, PermissionsExt::from_mode(mode))?;
    }
    let out = test_support::as_user(65534, 65534, &[4242])
        .arg(std::env::current_exe()?)
        .args([
            "--exact",
            "open::child_probe_dir",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SQLITE_VOL_IT_CHILD_DIR", &dir)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OPENED"), "{text}");
    Ok(())
}

/// Runs only as the child of `unwritable_directory_names_uid_owner_mode_and_chown_fix`.
#[test]
fn child_probe_dir() {
    let Some(dir) = std::env::var_os("SQLITE_VOL_IT_CHILD_DIR") else {
        return;
    };
    match Database::builder("it").path(&dir).open() {
        Err(e @ Error::NotWritable { .. }) => println!("NOT-WRITABLE {e}"),
        Err(e) => println!("OTHER {e}"),
        Ok(_) => println!("OPENED"),
    }
}

#[test]
fn two_processes_starting_together_create_and_migrate_once() -> TestResult {
    let tmp = Tmp::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "open::child_open_and_seed",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("SQLITE_VOL_IT_CHILD_OPEN", tmp.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut created = 0;
    for c in children {
        let out = c.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("OPENED"), "{text}");
        created += text.matches("CREATED=true").count();
    }
    assert_eq!(created, 1, "exactly one process creates the database");
    let db = open(tmp.path(), "migrations_v2")?;
    let c = db.conn()?;
    let seeds: i64 = c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    let history: i64 = c.query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
        r.get(0)
    })?;
    assert_eq!(
        (seeds, history),
        (1, 2),
        "seeded once, each migration applied once"
    );
    Ok(())
}

/// Runs only as a child of `two_processes_starting_together_create_and_migrate_once`.
#[test]
fn child_open_and_seed() {
    let Some(dir) = std::env::var_os("SQLITE_VOL_IT_CHILD_OPEN") else {
        return;
    };
    let db = Database::builder("it")
        .path(&dir)
        .migrations(migrations("migrations_v2"))
        .on_create(|tx| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            seed_user(tx)
        })
        .open();
    match db {
        Ok(db) => println!("OPENED CREATED={}", db.created()),
        Err(e) => println!("FAILED {e}"),
    }
}

#[test]
fn stale_wal_without_its_database_is_not_replayed_into_a_new_one() -> TestResult {
    let tmp = Tmp::new();
    // Make a real WAL full of another database's pages, then lose the main file.
    let other = tmp.path().join("it.db");
    {
        let c = rusqlite::Connection::open(&other)?;
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE ghost(x); INSERT INTO ghost VALUES (1);")?;
        let wal = std::fs::read(tmp.path().join("it.db-wal"))?;
        drop(c);
        std::fs::remove_file(&other)?;
        std::fs::write(tmp.path().join("it.db-wal"), wal)?;
    }
    let db = open(tmp.path(), "migrations_ok")?;
    assert!(db.created());
    let ghosts: i64 = db.conn()?.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'ghost'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(ghosts, 0);
    Ok(())
}

#[test]
fn status_changes_nothing_and_reports_the_basics() -> TestResult {
    let tmp = Tmp::new();
    let missing = sqlite_vol::status("it", Some(&tmp.path().join("nothing/")))?;
    assert!(!missing.exists);
    assert!(
        !tmp.path().join("nothing").exists(),
        "status must not create the folder"
    );
    let db = open(tmp.path(), "migrations_ok")?;
    let s = db.status()?;
    assert!(s.exists);
    assert_eq!(s.journal_mode.as_deref(), Some("wal"));
    assert_eq!(s.schema_version, Some(1));
    assert_eq!(s.identity_matches, Some(true));
    assert!(s.page_count.is_some_and(|p| p > 0) && s.lock.is_none());
    Ok(())
}
