//! `sqlite-vol check [--full]`: quick_check (or integrity_check) of the live database, opened read-only.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlite_vol::rusqlite::ErrorCode;

use super::{Exit, Target};
use crate::cli::CheckArgs;
use crate::ui;

/// Checks the live database; problems are exit code 1, an unreadable setup exit code 2.
pub fn run(t: &Target, a: &CheckArgs) -> anyhow::Result<Exit> {
    let path = &t.loc.path;
    let check = if a.full {
        "integrity_check"
    } else {
        "quick_check"
    };
    if !path.is_file() {
        anyhow::bail!(
            "no database file at {} ({}); check --db, DB_PATH or --app",
            path.display(),
            t.loc.source
        );
    }
    let started = Instant::now();
    let problems = problems(path, check)?;
    let ok = problems.is_empty();
    if a.json {
        ui::json(&serde_json::json!({
            "path": path,
            "check": check,
            "ok": ok,
            "problems": problems,
            "duration_ms": started.elapsed().as_millis() as u64,
        }))?;
    } else if ok {
        ui::line(format_args!("{}: {check} ok", path.display()))?;
    } else {
        ui::line(format_args!("{}: {check} FAILED", path.display()))?;
        for p in problems.iter().take(50) {
            ui::line(format_args!("  {p}"))?;
        }
        ui::note(
            t.quiet,
            "restore the newest good backup with `sqlite-vol restore FILE` (see `sqlite-vol list`)",
        );
    }
    Ok(if ok { Exit::Ok } else { Exit::No })
}

/// What the check found wrong (nothing: it said `ok`); SQLite saying the file is not a database or is
/// corrupt is one problem, any other failure to run the check an error.
fn problems(path: &std::path::Path, check: &str) -> anyhow::Result<Vec<String>> {
    let result = (|| {
        let conn = super::open_read_only(path, Duration::from_secs(5))?;
        let mut stmt = conn.prepare(&format!("PRAGMA {check}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<_>, _>>()
    })();
    match result {
        Ok(rows) if rows == ["ok"] => Ok(Vec::new()),
        Ok(rows) => Ok(rows),
        Err(e) => match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Ok(vec![e.to_string()]),
            _ => Err(e).with_context(|| format!("running {check} on {}", path.display())),
        },
    }
}
