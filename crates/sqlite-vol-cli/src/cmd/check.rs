//! `sqlite-vol check [--full]`: quick_check (or integrity_check) of the live database, opened read-only.

use std::time::Instant;

use anyhow::Context;

use super::{Exit, Target};
use crate::cli::CheckArgs;
use crate::ui;

/// Checks the live database; problems are exit code 1, an unreadable setup exit code 2.
pub fn run(t: &Target, a: &CheckArgs) -> anyhow::Result<Exit> {
    let path = &t.loc.path;
    let check = if a.full_check {
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
    let problems = sqlite_vol::verify::check_live(path, a.full_check)
        .with_context(|| format!("running {check} on {}", path.display()))?;
    let ok = problems.is_empty();
    if a.out.json {
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
