//! The tools around migrations on real files: status in every state, the next numbered file, baseline of
//! a database made before migrations, a timed rehearsal on a copy, checksum repair and the way back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use sqlite_vol::lock::{MaintenanceLock, Wait};
use sqlite_vol::migrate::{self, RepairOptions, State};
use sqlite_vol::{Database, Error, Migrations, RestoreOptions};

use crate::support::{add_user, count_users, db_bytes, fixture, migrations, open, TestResult, Tmp};

fn reason(text: &str, force: bool) -> RepairOptions {
    RepairOptions {
        reason: text.into(),
        force,
        wait: Wait::No,
    }
}

/// Copies the first `n` migration files of a fixture folder into `into`.
fn first(fixture_name: &str, n: usize, into: &Path) -> Result<PathBuf, std::io::Error> {
    std::fs::create_dir_all(into)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture(fixture_name))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    for f in files.into_iter().take(n) {
        std::fs::copy(&f, into.join(f.file_name().unwrap_or_default()))?;
    }
    Ok(into.to_path_buf())
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap_or_default()))
}

fn builder(dir: &Path, m: Migrations) -> sqlite_vol::Builder {
    Database::builder("it")
        .path(dir)
        .migrations(m)
        .backup_every(Duration::ZERO, None)
}

fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

fn legacy_db(path: &Path, script: &str) -> TestResult {
    let c = Connection::open(path)?;
    c.execute_batch(&std::fs::read_to_string(fixture("adopt").join(script))?)?;
    c.execute_batch(
        "INSERT INTO users VALUES (1, 'a@example.com', '2020-01-01');
         INSERT INTO notes (user_id, body) VALUES (1, 'kept');",
    )?;
    Ok(())
}

#[test]
fn repair_accepts_a_comment_only_edit_and_records_who_and_why() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "kept@example.com")?;
    db.close()?;
    let path = tmp.path().join("it.db");
    let edited = migrations("migrations_comment_edit");
    let refused = open(tmp.path(), "migrations_comment_edit").err();
    assert!(
        matches!(refused, Some(Error::DivergentMigration { .. })),
        "{refused:?}"
    );

    let r = migrate::repair(
        &path,
        &edited,
        1,
        &reason("reflowed V1, added a comment", false),
    )?;
    assert!(r.same_statements && !r.repair.forced, "{r:?}");
    assert!(!r.repair.user.is_empty() && !r.repair.host.is_empty());
    assert_ne!(r.repair.old_checksum, r.repair.new_checksum);

    let db = open(tmp.path(), "migrations_comment_edit")?;
    assert_eq!(
        count_users(&db)?,
        1,
        "the service starts again, data intact"
    );
    db.close()?;
    let st = migrate::status(Some(&read_only(&path)?), &path, &edited)?;
    assert!(st.is_clean());
    assert_eq!(st.repairs.len(), 1);
    assert_eq!(st.repairs[0].reason, "reflowed V1, added a comment");
    Ok(())
}

#[test]
fn repair_refuses_a_real_change_unless_forced() -> TestResult {
    let tmp = Tmp::new();
    open(tmp.path(), "migrations_ok")?.close()?;
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let changed = migrations("migrations_divergent");
    let e = migrate::repair(&path, &changed, 1, &reason("added a name", false))
        .expect_err("a changed statement must be refused");
    let msg = e.to_string();
    assert!(matches!(e, Error::MigrationRefused { .. }), "{e:?}");
    assert!(
        msg.contains(
            "+CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);"
        ),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(db_bytes(&path), before, "a refused repair writes nothing");

    let e = migrate::repair(&path, &changed, 1, &reason("  ", true)).expect_err("no reason");
    assert!(e.to_string().contains("--reason"), "{e}");

    let r = migrate::repair(
        &path,
        &changed,
        1,
        &reason("the column was added by hand", true),
    )?;
    assert!(r.repair.forced && !r.same_statements);
    let st = migrate::status(Some(&read_only(&path)?), &path, &changed)?;
    assert!(st.is_clean() && st.repairs[0].forced);
    Ok(())
}

#[test]
fn repair_refuses_while_the_maintenance_lock_is_held() -> TestResult {
    let tmp = Tmp::new();
    open(tmp.path(), "migrations_ok")?.close()?;
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let held = MaintenanceLock::acquire(&path, "restore", Wait::No)?;
    let e = migrate::repair(
        &path,
        &migrations("migrations_comment_edit"),
        1,
        &reason("typo", false),
    )
    .expect_err("the lock is held");
    assert!(e.is_locked(), "{e:?}");
    drop(held);
    assert_eq!(db_bytes(&path), before);
    Ok(())
}

#[test]
fn baseline_adopts_a_matching_schema_without_touching_data_then_migrates_forward() -> TestResult {
    let tmp = Tmp::new();
    let path = tmp.path().join("it.db");
    legacy_db(&path, "legacy.sql")?;
    let all = Migrations::from_dir(&fixture("adopt/migrations"))?;
    let b = migrate::baseline(&path, "it", &all, 2, Wait::No)?;
    assert_eq!(b.marked, ["V1__users", "V2__notes"]);
    let st = migrate::status(Some(&read_only(&path)?), &path, &all)?;
    let states: Vec<State> = st.migrations.iter().map(|e| e.state).collect();
    assert_eq!(states, [State::Applied, State::Applied, State::Pending]);

    let db = builder(
        tmp.path(),
        Migrations::from_dir(&fixture("adopt/migrations"))?,
    )
    .open()?;
    assert_eq!(db.applied_migrations(), ["V3__note_titles"]);
    let (body, title): (String, String) =
        db.conn()?
            .query_row("SELECT body, title FROM notes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
    assert_eq!((body.as_str(), title.as_str()), ("kept", ""));
    Ok(())
}

fn refused_baseline(script: &str, expect: &str) -> TestResult {
    let tmp = Tmp::new();
    let path = tmp.path().join("it.db");
    legacy_db(&path, script)?;
    let before = sha256(&path);
    let all = Migrations::from_dir(&fixture("adopt/migrations"))?;
    let e = migrate::baseline(&path, "it", &all, 2, Wait::No).expect_err("schemas differ");
    let msg = e.to_string();
    assert!(e.is_refusal() && msg.contains(expect), "{msg}");
    assert_eq!(sha256(&path), before, "a refused baseline writes nothing");
    Ok(())
}

#[test]
fn baseline_refuses_a_missing_index_and_names_it() -> TestResult {
    refused_baseline(
        "legacy_missing_index.sql",
        "+ index notes_user: create index notes_user on notes ( user_id )",
    )
}

#[test]
fn baseline_refuses_a_different_column_type() -> TestResult {
    refused_baseline(
        "legacy_other_type.sql",
        "~ table users, column created_at: #3 INTEGER NOT NULL -> #3 TEXT NOT NULL",
    )
}

#[test]
fn plan_on_a_128_mib_database_leaves_it_byte_identical_and_reports_times() -> TestResult {
    let tmp = Tmp::new();
    let two = first("migrations_plan", 2, &tmp.path().join("m2"))?;
    let db = builder(tmp.path(), Migrations::from_dir(&two)?).open()?;
    db.write(|tx| {
        tx.execute_batch(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 34000) \
             INSERT INTO blobs (k, data) SELECT hex(randomblob(8)), randomblob(4000) FROM c",
        )?;
        Ok::<_, Error>(())
    })?;
    db.close()?;
    let path = tmp.path().join("it.db");
    assert!(std::fs::metadata(&path)?.len() >= 128 << 20);
    let before = sha256(&path);
    let all = || Migrations::from_dir(&fixture("migrations_plan"));

    let p = sqlite_vol::migration::plan(&path, "it", &all()?, Wait::No)?;
    assert_eq!(sha256(&path), before, "the live database is byte-identical");
    eprintln!(
        "plan: {} bytes copied in {} ms; steps {:?}; write lock {} ms",
        p.bytes, p.copy_ms, p.steps, p.write_lock_ms
    );
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.steps[0].migration, "V3__blob_sizes");
    assert!(p.steps[0].ms > 0 && p.write_lock_ms >= p.steps[0].ms);
    assert!(p.same_volume && !p.copy_dir.exists(), "the copy is gone");
    let changes: Vec<String> = p.changes.iter().map(ToString::to_string).collect();
    assert!(
        changes.contains(&"+ table blobs, column size: #4 INTEGER".to_string()),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|c| c.starts_with("+ index blobs_k")),
        "{changes:?}"
    );

    // Startup refuses a migration whose rehearsal took longer than the limit, and nothing changes.
    let slow = builder(tmp.path(), all()?)
        .migration_limit(Duration::from_millis(p.steps[0].ms / 2))
        .open()
        .err();
    assert!(
        matches!(&slow, Some(Error::MigrationRefused { reason, .. }) if reason.contains("rehearsal took")),
        "{slow:?}"
    );
    assert_eq!(sha256(&path), before);
    let db = builder(tmp.path(), all()?)
        .migration_limit(Duration::from_secs(3600))
        .open()?;
    assert_eq!(db.applied_migrations(), ["V3__blob_sizes"]);
    Ok(())
}

#[test]
fn a_migration_limit_refuses_a_migration_never_rehearsed() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "a@example.com")?;
    db.close()?;
    let e = builder(tmp.path(), migrations("migrations_v2"))
        .migration_limit(Duration::from_secs(60))
        .open()
        .err();
    assert!(
        matches!(&e, Some(Error::MigrationRefused { reason, .. }) if reason.contains("never rehearsed")),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn status_reports_applied_pending_divergent_and_unknown() -> TestResult {
    let tmp = Tmp::new();
    open(tmp.path(), "migrations_status_applied")?.close()?;
    let path = tmp.path().join("it.db");
    let now = migrations("migrations_status_now");
    let r = migrate::status(Some(&read_only(&path)?), &path, &now)?;
    let states: Vec<(i64, State)> = r.migrations.iter().map(|e| (e.version, e.state)).collect();
    assert_eq!(
        states,
        [
            (1, State::Applied),
            (2, State::Divergent),
            (3, State::Unknown),
            (4, State::Pending)
        ]
    );
    assert!(!r.is_clean());
    let changes = r.migrations[1]
        .changes
        .clone()
        .unwrap_or_default()
        .join("\n");
    assert!(changes.contains("-CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), body TEXT NOT NULL);"), "{changes}");
    assert!(changes.contains("+CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), title TEXT, body TEXT NOT NULL);"), "{changes}");
    assert!(r.migrations[0].applied_on.is_some() && r.migrations[3].applied_on.is_none());

    let none = migrate::status(None, &path, &now)?;
    assert!(none.is_clean() && none.migrations.iter().all(|e| e.state == State::Pending));
    Ok(())
}

#[test]
fn new_numbers_after_the_highest_version_leaving_gaps() -> TestResult {
    let tmp = Tmp::new();
    let dir = tmp.path().join("migrations");
    std::fs::create_dir_all(&dir)?;
    for f in std::fs::read_dir(fixture("migrations_gaps"))?.flatten() {
        std::fs::copy(f.path(), dir.join(f.file_name()))?;
    }
    let made = migrate::new_migration(&dir, "add_tags")?;
    assert_eq!(made.path, dir.join("V6__add_tags.sql"));
    let text = std::fs::read_to_string(&made.path)?;
    assert!(
        text.starts_with("-- V6__add_tags.sql: add tags\n"),
        "{text}"
    );
    let loaded = Migrations::from_dir(&dir)?;
    assert_eq!(loaded.latest(), Some(6), "refinery loads the new file");
    assert!(dir.join("V2__b.sql").exists() && !dir.join("V3__add_tags.sql").exists());
    Ok(())
}

#[test]
fn back_restores_the_backup_taken_before_the_newest_migration_after_counting_rows() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "before@example.com")?;
    db.close()?;
    let db = open(tmp.path(), "migrations_v2")?; // safety backup, then V2
    add_user(&db, "after1@example.com")?;
    add_user(&db, "after2@example.com")?;
    db.close()?;
    let path = tmp.path().join("it.db");
    let backups = tmp.path().join("backups");

    let plan = sqlite_vol::migration::back_plan(&path, "it", &backups)?;
    assert_eq!(plan.newest, "V2__notes");
    assert_eq!(plan.backup_schema, Some(1));
    let users = plan.tables.iter().find(|t| t.table == "users").cloned();
    assert_eq!(
        users.map(|t| (t.now, t.in_backup)),
        Some((Some(3), Some(1)))
    );
    let notes = plan.tables.iter().find(|t| t.table == "notes").cloned();
    assert_eq!(notes.map(|t| (t.now, t.in_backup)), Some((Some(0), None)));
    assert_eq!(plan.rows_lost, 2);

    let r = sqlite_vol::migration::back(&path, "it", &plan, &RestoreOptions::new(&backups))?;
    assert_eq!(r.schema_version, Some(1));
    let safety = r
        .safety_backup
        .clone()
        .ok_or("a safety backup of the current state")?;
    assert_eq!(
        sqlite_vol::verify(&safety, false, None)?.schema_version,
        Some(2)
    );
    let db = open(tmp.path(), "migrations_ok")?;
    assert_eq!(count_users(&db)?, 1);
    Ok(())
}
