//! `drill` and `metrics`: a drill passes on a good backup and exits 1 naming what failed otherwise, leaving
//! the live database as it was; `metrics --textfile` writes the series whole, for promtool and node_exporter.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Env, TestResult};

#[test]
fn drill_passes_on_a_good_backup_and_exits_1_naming_what_failed() -> TestResult {
    let env = Env::with_db("app", 50);
    env.run(&["drill"])
        .expect(1)
        .stderr
        .contains("there is no backup of app")
        .then_some(())
        .ok_or("no reason")?;
    let backup = env.backup();
    let ok = env
        .run(&["drill", "--query", "SELECT 1 FROM items"])
        .expect(0);
    assert!(ok.stdout.contains("restore drill passed"), "{}", ok.stdout);
    let json = env.run(&["drill", "--json"]).expect(0).json();
    assert_eq!(json["ok"], true);

    let before = env.fingerprint();
    let failed = env
        .run(&["drill", "--query", "SELECT 1 FROM items WHERE id < 0"])
        .expect(1);
    assert!(
        failed.stderr.contains("returned no rows"),
        "{}",
        failed.stderr
    );
    let mut bytes = std::fs::read(&backup)?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&backup, bytes)?;
    let failed = env.run(&["drill"]).expect(1);
    assert!(
        failed.stderr.contains("restore drill FAILED"),
        "{}",
        failed.stderr
    );
    assert!(
        env.fingerprint() == before,
        "the drill changed the live database"
    );

    // status and doctor read the recorded outcome.
    let status = env.run(&["status", "--json"]).expect(0).json();
    assert_eq!(status["drills"]["last"]["ok"], false);
    assert_eq!(status["drills"]["ok"], 2);
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains("FAIL  restore drill"),
        "{}",
        doctor.stdout
    );
    Ok(())
}

#[test]
fn metrics_textfile_is_written_whole_and_passes_promtool() -> TestResult {
    let env = Env::with_db("app", 10);
    env.backup();
    let printed = env.run(&["metrics"]).expect(0).stdout;
    assert!(
        printed.contains("sqlite_vol_last_backup_timestamp_seconds{app=\"app\"}"),
        "{printed}"
    );
    let dir = env.root().join("textfile");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("sqlite_vol.prom");
    env.run(&["metrics", "--textfile", file.to_str().unwrap_or_default()])
        .expect(0);
    let text = std::fs::read_to_string(&file)?;
    assert!(
        text.contains("sqlite_vol_database_size_bytes{app=\"app\"}"),
        "{text}"
    );
    let names: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["sqlite_vol.prom"],
        "a partial file was left beside it"
    );
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool (apt-get install prometheus): {e}"))?;
    p.stdin.take().ok_or("stdin")?.write_all(text.as_bytes())?;
    let out = p.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A folder that cannot be written is an error (exit 2) and leaves the old file as it was.
    let missing = env.root().join("no-such-dir").join("x.prom");
    env.run(&[
        "metrics",
        "--textfile",
        missing.to_str().unwrap_or_default(),
    ])
    .expect(2);
    Ok(())
}
