//! `migrate status` and `migrate plan`: what the migrations are to this database, and what applying the
//! pending ones would cost. Neither changes the live database.

use std::time::Duration;

use sqlite_vol::migrate::{self, State};
use sqlite_vol::Migrations;

use super::args::{PlanArgs, StatusArgs};
use crate::cmd::{open_read_only, wait, Exit, Target};
use crate::ui;

/// Prints every migration's state; exit 1 when any is divergent or unknown.
pub fn status(t: &Target, migrations: &Migrations, a: &StatusArgs) -> anyhow::Result<Exit> {
    let path = &t.loc.path;
    let conn = if path.is_file() {
        Some(open_read_only(path, Duration::from_secs(5))?)
    } else {
        None
    };
    let r = migrate::status(conn.as_ref(), path, migrations)?;
    if a.out.json {
        ui::json(&serde_json::json!({ "clean": r.is_clean(), "status": r }))?;
    } else {
        ui::line(format_args!(
            "{}{}: schema {}; {} applied, {} pending, {} divergent, {} unknown",
            path.display(),
            if r.exists { "" } else { " (no database yet)" },
            ui::schema(r.current),
            r.count(State::Applied),
            r.count(State::Pending),
            r.count(State::Divergent),
            r.count(State::Unknown)
        ))?;
        for e in &r.migrations {
            let name = format!("V{}__{}", e.version, e.name);
            let when = e.applied_on.as_deref().unwrap_or("");
            match e.state {
                State::Applied => ui::line(format_args!("  {name:<32} applied    {when}"))?,
                State::Pending => ui::line(format_args!("  {name:<32} pending"))?,
                State::Unknown => ui::line(format_args!(
                    "  {name:<32} unknown    {when}: in the database, not in the folder (a newer build ran?)"
                ))?,
                State::Divergent => {
                    ui::line(format_args!(
                        "  {name:<32} divergent  {when}: the file changed after it was applied (checksum {} \
                         applied, {} now)",
                        e.checksum.unwrap_or(0),
                        e.file_checksum.unwrap_or(0)
                    ))?;
                    match &e.changes {
                        Some(lines) => {
                            for l in lines {
                                ui::line(format_args!("      {l}"))?;
                            }
                        }
                        None => ui::line("      (the applied text was not recorded; compare with `git log -p`)")?,
                    }
                }
            }
        }
        for x in &r.repairs {
            ui::line(format_args!(
                "  repaired V{}__{} at {} by {} (uid {}) on {}{}: {:?} (checksum {} -> {})",
                x.version,
                x.name,
                x.at,
                x.user,
                x.uid,
                x.host,
                if x.forced { ", forced" } else { "" },
                x.reason,
                x.old_checksum,
                x.new_checksum
            ))?;
        }
        if !r.is_clean() {
            ui::note(
                t.quiet,
                "a divergent or unknown migration stops the service at startup: restore the file (or accept a \
                 comment-only edit with `sqlite-vol migrate repair VERSION --reason TEXT`), or deploy the build \
                 that knows the unknown ones",
            );
        }
    }
    Ok(if r.is_clean() { Exit::Ok } else { Exit::No })
}

/// Rehearses the pending migrations on a copy and prints the times and the schema change.
pub fn plan(t: &Target, migrations: &Migrations, a: &PlanArgs) -> anyhow::Result<Exit> {
    let p = sqlite_vol::migration::plan(&t.loc.path, &t.app, migrations, wait(a.lock.wait))?;
    if a.out.json {
        ui::json(&p)?;
        return Ok(Exit::Ok);
    }
    ui::line(format_args!(
        "rehearsed on a copy of {} ({}, copied in {} ms, {}):",
        p.path.display(),
        ui::size(p.bytes),
        p.copy_ms,
        if p.same_volume {
            "beside the database"
        } else {
            "in the temporary folder, another disk"
        }
    ))?;
    if p.steps.is_empty() {
        ui::line("  nothing pending")?;
    }
    for s in &p.steps {
        ui::line(format_args!("  {:<32} {:>8} ms", s.migration, s.ms))?;
    }
    ui::line(format_args!(
        "the write lock would be held about {} ms (startup runs the pending migrations in one transaction)",
        p.write_lock_ms
    ))?;
    if !p.changes.is_empty() {
        ui::line("schema changes (- before, + after):")?;
        for c in &p.changes {
            ui::line(format_args!("  {c}"))?;
        }
    }
    ui::note(
        t.quiet,
        format_args!(
            "the live database was not changed; the times were recorded in {}",
            p.record.display()
        ),
    );
    Ok(Exit::Ok)
}
