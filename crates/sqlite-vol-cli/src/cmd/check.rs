//! `sqlite-vol check [--full]`: quick_check (or integrity_check) of the live database, opened read-only.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlite_vol::rusqlite::{Connection, ErrorCode, OpenFlags};

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
    let verdict = run_check(path, check)?;
    let problems: Vec<String> = match &verdict {
        Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Vec::new(),
        Ok(rows) => rows.clone(),
        Err(reason) => vec![reason.clone()],
    };
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

/// The check's rows, or `Err(reason)` when SQLite says the file is not a database or is corrupt.
fn run_check(path: &std::path::Path, check: &str) -> anyhow::Result<Result<Vec<String>, String>> {
    let result = (|| {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mut stmt = conn.prepare(&format!("PRAGMA {check}"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<_>, _>>()
    })();
    match result {
        Ok(rows) => Ok(Ok(rows)),
        Err(e) => match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Ok(Err(e.to_string())),
            _ => Err(e).with_context(|| format!("running {check} on {}", path.display())),
        },
    }
}
