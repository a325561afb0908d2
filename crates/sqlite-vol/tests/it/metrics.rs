//! Metrics: every series the dashboards and alert rules rely on is there with an `app` label, the times of
//! the last backup and drill survive a restart, the text passes `promtool check metrics` (Debian's
//! `prometheus` package), and the textfile is written whole.

use std::io::Write;
use std::process::{Command, Stdio};

use sqlite_vol::store::Place;

use crate::support::{add_user, open, TestResult, Tmp};

/// The series named by the dashboards and alert rules (docker/prometheus); `sqlite_vol_last_restore_drill_ok`
/// appears once a drill has run.
pub const SERIES: [&str; 16] = [
    "sqlite_vol_database_size_bytes",
    "sqlite_vol_wal_size_bytes",
    "sqlite_vol_schema_version",
    "sqlite_vol_volume_persistent",
    "sqlite_vol_last_backup_timestamp_seconds",
    "sqlite_vol_backups_total",
    "sqlite_vol_backup_duration_seconds_bucket",
    "sqlite_vol_last_offsite_backup_timestamp_seconds",
    "sqlite_vol_offsite_backups_total",
    "sqlite_vol_last_verified_restore_timestamp_seconds",
    "sqlite_vol_restore_drills_total",
    "sqlite_vol_checkpoints_total",
    "sqlite_vol_oldest_read_transaction_seconds",
    "sqlite_vol_maintenance_lock_held",
    "sqlite_vol_pool_connections",
    "sqlite_vol_pool_wait_seconds_bucket",
];

/// The value of the first sample of `name` in `text`.
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` on `text`: its complaints (empty when clean).
fn promtool_check(text: &str) -> Result<String, Box<dyn std::error::Error>> {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool (apt-get install prometheus): {e}"))?;
    p.stdin.take().ok_or("stdin")?.write_all(text.as_bytes())?;
    let out = p.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(if out.status.success() {
        String::new()
    } else {
        said
    })
}

#[test]
fn every_series_is_there_labelled_with_the_app_and_passes_promtool() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    add_user(&db, "a@example.com")?;
    db.backup(None)?;
    let text = sqlite_vol::metrics::render(&db);
    for name in SERIES {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(sample.contains("app=\"it\""), "no app label: {sample}");
    }
    assert_eq!(value(&text, "sqlite_vol_schema_version"), Some(1.0));
    assert_eq!(
        value(&text, "sqlite_vol_database_size_bytes"),
        Some(std::fs::metadata(&db.location().path)?.len() as f64)
    );
    assert!(
        text.contains("sqlite_vol_backups_total{app=\"it\",result=\"ok\"} 1")
            || text.contains("sqlite_vol_backups_total{result=\"ok\",app=\"it\"} 1"),
        "{text}"
    );
    assert_eq!(
        promtool_check(&text)?,
        "",
        "promtool check metrics complains"
    );
    Ok(())
}

#[test]
fn backup_and_drill_times_survive_a_restart_and_a_read_without_a_pool() -> TestResult {
    let tmp = Tmp::new();
    let db = open(tmp.path(), "migrations_ok")?;
    assert_eq!(
        value(
            &sqlite_vol::metrics::render(&db),
            "sqlite_vol_last_backup_timestamp_seconds"
        ),
        Some(0.0)
    );
    let before = time_now();
    db.backup(None)?;
    let d = db.drill(&Place::Dir(db.backup_dir().to_path_buf()), None)?;
    assert!(d.ok, "{d:?}");
    let (loc, dir) = (db.location().clone(), db.backup_dir().to_path_buf());
    db.close()?;
    let db = open(tmp.path(), "migrations_ok")?;
    for text in [
        sqlite_vol::metrics::render(&db),
        sqlite_vol::metrics::render_at(&loc, &dir, "it")?,
    ] {
        let backup =
            value(&text, "sqlite_vol_last_backup_timestamp_seconds").ok_or("no backup time")?;
        let drill = value(&text, "sqlite_vol_last_verified_restore_timestamp_seconds")
            .ok_or("no drill time")?;
        assert!(backup >= before - 1.0 && drill >= before - 1.0, "{text}");
        assert_eq!(value(&text, "sqlite_vol_last_restore_drill_ok"), Some(1.0));
        assert_eq!(promtool_check(&text)?, "");
    }
    Ok(())
}

#[test]
fn the_textfile_is_replaced_whole_and_readable_by_the_collector() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let tmp = Tmp::new();
    let file = tmp.path().join("sqlite_vol.prom");
    std::fs::write(&file, "old\n")?;
    sqlite_vol::metrics::write_textfile(&file, "# HELP x y\n# TYPE x gauge\nx 1\n")?;
    assert_eq!(
        std::fs::read_to_string(&file)?,
        "# HELP x y\n# TYPE x gauge\nx 1\n"
    );
    assert_eq!(
        std::fs::metadata(&file)?.permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<String> = std::fs::read_dir(tmp.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sqlite_vol.prom"], "a partial file was left");
    Ok(())
}

fn time_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor())
}
