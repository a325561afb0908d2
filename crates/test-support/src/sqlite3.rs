//! The stock `sqlite3` shell, a foreign client: SQL run by it, and its integrity check.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The shell's name on the PATH (Debian's `sqlite3` package; tests/run.sh installs it).
pub const SHELL: &str = "sqlite3";

/// Runs `sql` in the shell on `db`, with no standard input.
pub fn output(db: &Path, sql: &str) -> std::io::Result<Output> {
    Command::new(SHELL)
        .arg(db)
        .arg(sql)
        .stdin(Stdio::null())
        .output()
}

/// Runs `sql` in the shell on `db` and returns what it printed, trimmed; fails the test if it fails.
#[track_caller]
pub fn query(db: &Path, sql: &str) -> String {
    let o = output(db, sql).expect("run sqlite3 (apt-get install sqlite3)");
    assert!(
        o.status.success(),
        "sqlite3 {} {sql:?}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// What the shell's `PRAGMA integrity_check` prints on standard output (`ok` for a sound database).
pub fn integrity_check(db: &Path) -> std::io::Result<String> {
    let o = output(db, "PRAGMA integrity_check")?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The shell's `PRAGMA integrity_check` with its errors: standard output, then standard error, so that
/// anything but `ok` says what went wrong.
pub fn integrity_report(db: &Path) -> String {
    let o = output(db, "PRAGMA integrity_check;").expect("sqlite3 shell (apt-get install sqlite3)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}
