//! Restore drills: a good backup passes; a tampered one, another app's, a truncated one and a failing
//! sentinel query each fail with the reason, are recorded, and leave the live database byte for byte as it
//! was.

use std::path::{Path, PathBuf};

use sqlite_vol::record::{self, Kind};
use sqlite_vol::store::Place;
use sqlite_vol::Database;

use crate::support::{add_user, open, TestResult, Tmp};

/// The live database's files, raw (no checkpoint: that would change them).
fn live_bytes(db: &Path) -> (Vec<u8>, Vec<u8>) {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    (
        std::fs::read(db).unwrap_or_default(),
        std::fs::read(wal).unwrap_or_default(),
    )
}

fn setup(tmp: &Tmp) -> Result<(Database, PathBuf), Box<dyn std::error::Error>> {
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "kept@example.com")?;
    let m = db.backup(None)?;
    Ok((db, m.path))
}

fn drill(db: &Database, query: Option<&str>) -> sqlite_vol::Result<sqlite_vol::drill::Drill> {
    db.drill(&Place::Dir(db.backup_dir().to_path_buf()), query)
}

/// Runs a drill that must fail with `reason` in its detail, and proves the live files did not change.
fn fails_untouched(db: &Database, query: Option<&str>, reason: &str) -> TestResult {
    let before = live_bytes(&db.location().path);
    let d = drill(db, query)?;
    assert!(!d.ok, "the drill passed: {d:?}");
    assert!(
        d.detail.contains(reason),
        "{:?} does not say {reason:?}",
        d.detail
    );
    assert!(
        live_bytes(&db.location().path) == before,
        "the drill changed the live database"
    );
    let r = record::read(db.backup_dir(), "it", Kind::Drill);
    assert_eq!(r.last.as_ref().map(|o| o.ok), Some(false));
    assert_eq!(r.error, 1);
    let doctor = drill_check(db)?;
    assert_eq!(doctor.status, sqlite_vol::Level::Fail, "{doctor:?}");
    Ok(())
}

#[test]
fn a_good_backup_passes_the_drill_with_its_sentinel_row_and_is_recorded() -> TestResult {
    let tmp = Tmp::new();
    let (db, backup) = setup(&tmp)?;
    let before = live_bytes(&db.location().path);
    let d = drill(
        &db,
        Some("SELECT 1 FROM users WHERE email = 'kept@example.com'"),
    )?;
    assert!(d.ok, "{d:?}");
    assert_eq!(d.backup, backup.display().to_string());
    assert!(live_bytes(&db.location().path) == before);
    let status = db.status()?;
    assert_eq!(
        status.drills.last_ok.as_ref().map(|o| o.backup.clone()),
        Some(d.backup.clone())
    );
    assert_eq!(drill_check(&db)?.status, sqlite_vol::Level::Pass);
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("sqlite-vol-drill-{}-", std::process::id()))
        })
        .collect();
    assert!(
        leftovers.len() <= 1,
        "temporary drill folders left behind: {leftovers:?}"
    ); // one may belong to a parallel test
    Ok(())
}

#[test]
fn a_backup_with_changed_bytes_fails_the_drill_on_its_checksum() -> TestResult {
    let tmp = Tmp::new();
    let (db, backup) = setup(&tmp)?;
    let mut bytes = std::fs::read(&backup)?;
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff; // free space at the end of the last page: SQLite alone would not notice
    std::fs::write(&backup, bytes)?;
    fails_untouched(&db, None, "checksum does not match its manifest")
}

#[test]
fn another_apps_backup_fails_the_drill() -> TestResult {
    let tmp = Tmp::new();
    let (db, _) = setup(&tmp)?;
    let other_dir = tmp.path().join("other");
    let other = Database::builder("other")
        .path(&other_dir)
        .backup_every(std::time::Duration::ZERO, None)
        .open()?;
    let m = other.backup(None)?;
    // Placed as this app's newest backup, manifest and all.
    let name = db.backup_dir().join("it-20991231T000000Z.db");
    std::fs::copy(&m.path, &name)?;
    std::fs::copy(
        sqlite_vol::manifest::manifest_path(&m.path),
        sqlite_vol::manifest::manifest_path(&name),
    )?;
    fails_untouched(&db, None, "belongs to another application")
}

#[test]
fn a_truncated_backup_fails_the_drill() -> TestResult {
    let tmp = Tmp::new();
    let (db, backup) = setup(&tmp)?;
    let len = std::fs::metadata(&backup)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&backup)?
        .set_len(len / 2)?;
    fails_untouched(&db, None, "truncated")
}

#[test]
fn a_sentinel_query_without_rows_fails_the_drill() -> TestResult {
    let tmp = Tmp::new();
    let (db, _) = setup(&tmp)?;
    fails_untouched(
        &db,
        Some("SELECT 1 FROM users WHERE email = 'nobody@example.com'"),
        "returned no rows",
    )
}

#[test]
fn no_backup_at_all_fails_the_drill() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    fails_untouched(&db, None, "there is no backup of it")
}

#[test]
fn a_scheduled_drill_runs_in_the_background_and_records_its_outcome() -> TestResult {
    let tmp = Tmp::new();
    let mut settings = sqlite_vol::Settings::default();
    settings.drill_interval = Some(std::time::Duration::from_secs(1));
    settings.drill_query = Some("SELECT 1 FROM users".into());
    let db = crate::support::builder(tmp.path(), "migrations_ok")
        .settings(&settings)
        .open()?;
    add_user(&db, "kept@example.com")?;
    db.backup(None)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    // (One drill may have run before the backup existed and failed; the next one passes.)
    while record::read(db.backup_dir(), "it", Kind::Drill)
        .last_ok
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled drill passed in 15 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    db.close()?;
    Ok(())
}

/// Doctor's restore-drill finding for `db`.
fn drill_check(
    db: &sqlite_vol::Database,
) -> Result<sqlite_vol::Finding, Box<dyn std::error::Error>> {
    let settings = sqlite_vol::Settings::default();
    let findings = sqlite_vol::diagnose(&sqlite_vol::Subject {
        location: db.location(),
        app: db.app(),
        backup_dir: db.backup_dir(),
        settings: &settings,
    });
    findings
        .into_iter()
        .find(|f| f.name == "restore drill")
        .ok_or_else(|| "doctor has no restore-drill check".into())
}
