//! `sqlite-vol migrate [apply] --dir DIR [--dry-run]`: apply SQL migrations from a directory through the library's
//! own startup path, so the refusals are the same as a service's: a changed applied migration, a database
//! newer than the files, a failing migration (rolled back whole). A database holding data is backed up
//! first.

use std::time::Duration;

use sqlite_vol::rusqlite::Connection;
use sqlite_vol::Migrations;

use super::args::ApplyArgs;
use crate::cmd::{Exit, Target};
use crate::ui;

/// Plans or applies the migrations in `dir`.
pub fn run(t: &Target, dir: &std::path::Path, a: &ApplyArgs) -> anyhow::Result<Exit> {
    let migrations = Migrations::from_dir(dir)?;
    let path = &t.loc.path;
    if a.dry_run {
        let exists = path.is_file();
        let conn = if exists {
            crate::cmd::open_read_only(path, Duration::from_secs(5))?
        } else {
            Connection::open_in_memory()?
        };
        let plan = migrations.plan(&conn, path)?;
        if a.out.json {
            ui::json(&serde_json::json!({
                "path": path,
                "exists": exists,
                "current": plan.current,
                "pending": plan.pending,
                "latest": migrations.latest(),
                "dry_run": true,
            }))?;
        } else {
            ui::note(
                t.quiet,
                format_args!(
                    "{} is at schema {}; {} migration(s) pending (dry run, nothing changed):",
                    path.display(),
                    ui::schema(plan.current),
                    plan.pending.len()
                ),
            );
            for m in &plan.pending {
                ui::line(m)?;
            }
        }
        return Ok(Exit::Ok);
    }
    let db = t
        .builder(a.lock.wait)
        .migrations(migrations)
        .safety_backup(!a.no_safety_backup)
        .open()
        .map_err(|e| t.app_hint(e.into()))?;
    let applied = db.applied_migrations().to_vec();
    let created = db.created();
    let version = db.schema_version();
    db.close()?;
    if a.out.json {
        ui::json(&serde_json::json!({
            "path": path,
            "created": created,
            "applied": applied,
            "schema_version": version,
            "dry_run": false,
        }))?;
    } else {
        for m in &applied {
            ui::line(m)?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "{}{}: {} migration(s) applied, schema {}",
                path.display(),
                if created { " (created)" } else { "" },
                applied.len(),
                ui::schema(version)
            ),
        );
    }
    Ok(Exit::Ok)
}
