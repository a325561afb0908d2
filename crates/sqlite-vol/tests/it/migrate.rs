//! Migrations: applied once, refused when divergent or unknown-newer, rolled back when failing.

use sqlite_vol::Error;

use crate::support::{add_user, count_users, db_bytes, open, TestResult, Tmp};

fn seed(dir: &std::path::Path) -> TestResult {
    let db = open(dir, "migrations_ok")?;
    add_user(&db, "kept@example.com")?;
    db.close()?;
    Ok(())
}

#[test]
fn pending_migrations_apply_after_a_safety_backup() -> TestResult {
    let tmp = Tmp::new();
    seed(tmp.path())?;
    let db = open(tmp.path(), "migrations_v2")?;
    assert_eq!(db.applied_migrations(), ["V2__notes"]);
    assert_eq!(db.schema_version(), Some(2));
    let backups = sqlite_vol::manifest::list(&tmp.path().join("backups"), "it")?;
    assert_eq!(
        backups.len(),
        1,
        "a safety backup precedes migrating a database with data"
    );
    let v = sqlite_vol::verify(&backups[0].path, true, None)?;
    assert_eq!(
        v.schema_version,
        Some(1),
        "the safety backup holds the pre-migration schema"
    );
    Ok(())
}

#[test]
fn failing_migration_rolls_back_and_leaves_the_database_as_it_was() -> TestResult {
    let tmp = Tmp::new();
    seed(tmp.path())?;
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let err = open(tmp.path(), "migrations_broken").expect_err("broken migration");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::MigrationFailed { .. })
            && msg.contains("V2__broken")
            && msg.contains("rolled back"),
        "{msg}"
    );
    assert_eq!(
        db_bytes(&path),
        before,
        "database bytes changed by a failed migration"
    );
    let db = open(tmp.path(), "migrations_ok")?;
    assert_eq!(count_users(&db)?, 1);
    Ok(())
}

#[test]
fn divergent_migration_is_refused_and_nothing_runs() -> TestResult {
    let tmp = Tmp::new();
    seed(tmp.path())?;
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let err = open(tmp.path(), "migrations_divergent").expect_err("changed migration");
    assert!(
        matches!(err, Error::DivergentMigration { version: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );
    assert_eq!(db_bytes(&path), before);
    Ok(())
}

#[test]
fn older_build_on_newer_database_is_refused_and_nothing_runs() -> TestResult {
    let tmp = Tmp::new();
    drop(open(tmp.path(), "migrations_v2")?);
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let err = open(tmp.path(), "migrations_ok").expect_err("older build");
    assert!(
        matches!(
            err,
            Error::SchemaTooNew {
                db_version: 2,
                known_version: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("older image"), "{err}");
    assert_eq!(db_bytes(&path), before);
    Ok(())
}

#[test]
fn migrate_plan_reports_pending_without_changing_anything() -> TestResult {
    let tmp = Tmp::new();
    seed(tmp.path())?;
    let path = tmp.path().join("it.db");
    let before = db_bytes(&path);
    let conn = rusqlite::Connection::open(&path)?;
    let plan = crate::support::migrations("migrations_v2").plan(&conn, &path)?;
    assert_eq!(
        (plan.current, plan.pending),
        (Some(1), vec!["V2__notes".to_string()])
    );
    drop(conn);
    assert_eq!(db_bytes(&path), before);
    Ok(())
}
