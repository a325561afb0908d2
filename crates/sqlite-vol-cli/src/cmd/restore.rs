//! `sqlite-vol restore FILE`: bring the live database back to a backup, after confirmation.
//!
//! On a terminal the backup is verified and described first, then the user is asked; without a terminal
//! `--yes` is required, so a script never restores by accident.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::bail;
use sqlite_vol::backup::Progress;
use sqlite_vol::{Migrations, RestoreOptions};

use super::{Exit, Refused, Target};
use crate::cli::RestoreArgs;
use crate::ui;

/// Restores `a.file` into the target database.
pub fn run(t: &Target, a: &RestoreArgs) -> anyhow::Result<Exit> {
    let db = &t.loc.path;
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to restore {} into {} without confirmation: stdin is not a terminal. Pass --yes \
                 to replace the database (a safety backup is taken first unless --no-safety-backup)",
                a.file.display(),
                db.display()
            );
        }
        confirm(t, a)?;
    }
    let known_schema = match &a.migrations {
        Some(dir) => Migrations::from_dir(dir)?.latest(),
        None => None,
    };
    let bar = ui::Bar::new(t.quiet || a.json, "restoring");
    let update = |p: Progress| bar.update(p);
    let opts = RestoreOptions {
        force: a.force,
        safety_backup: !a.no_safety_backup,
        backup_dir: t.backup_dir.clone(),
        known_schema,
        full_check: a.full_check,
        wait: super::wait(a.wait),
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
    };
    let r = sqlite_vol::restore::restore(&a.file, db, &t.app, &opts)
        .map_err(|e| t.app_hint(e.into()))?;
    bar.clear();
    if a.json {
        ui::json(&r)?;
    } else {
        ui::line(format_args!(
            "restored {} from {} ({} pages, schema {}) in {} ms",
            r.into.display(),
            r.from.display(),
            r.page_count,
            r.schema_version
                .map_or_else(|| "none".to_string(), |v| v.to_string()),
            r.duration_ms
        ))?;
        match &r.safety_backup {
            Some(p) => ui::note(
                t.quiet,
                format_args!("the previous database was saved as {}", p.display()),
            ),
            None if r.created => ui::note(t.quiet, "there was no database before: it was created"),
            None => ui::note(t.quiet, "no safety backup was taken (--no-safety-backup)"),
        }
    }
    Ok(Exit::Ok)
}

/// Verifies and describes the backup, then asks on the terminal; anything but "y"/"yes" declines.
fn confirm(t: &Target, a: &RestoreArgs) -> anyhow::Result<()> {
    let bar = ui::Bar::new(t.quiet, "verifying");
    let update = |p: Progress| bar.update(p);
    let v = sqlite_vol::verify(
        &a.file,
        a.full_check,
        bar.active().then_some(&update as &dyn Fn(Progress)),
    )?;
    bar.clear();
    let current = sqlite_vol::status_of(&t.loc, &t.backup_dir, &t.app).ok();
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "backup:   {} ({}, schema {}, taken {})",
        v.path.display(),
        ui::size(v.bytes),
        v.schema_version
            .map_or_else(|| "none".to_string(), |s| s.to_string()),
        v.created_at.as_deref().unwrap_or("at an unknown time")
    )?;
    match current.filter(|s| s.exists) {
        Some(s) => writeln!(
            err,
            "replaces: {} ({}, schema {}){}",
            s.path.display(),
            ui::size(s.size_bytes),
            s.schema_version
                .map_or_else(|| "none".to_string(), |v| v.to_string()),
            if a.no_safety_backup {
                ", WITHOUT a safety backup"
            } else {
                ", after a safety backup"
            }
        )?,
        None => writeln!(
            err,
            "creates:  {} (no database there yet)",
            t.loc.path.display()
        )?,
    }
    write!(
        err,
        "Restore? Connected services see the restored data at once. [y/N] "
    )?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        return Err(Refused("restore cancelled; nothing was changed".into()).into());
    }
    Ok(())
}
