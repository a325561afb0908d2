//! `sqlite-vol reset`: development's "start fresh" ([`sqlite_vol::reset::reset`], whose rules refuse a
//! persistent volume in a container without `--force` and a database a service has open). This command
//! adds the person's part: on a terminal the database's file name must be typed back; without one `--yes`
//! is required.

use std::io::IsTerminal;

use anyhow::bail;
use sqlite_vol::reset::{self, ResetOptions};
use sqlite_vol::{Progress, Volume};

use super::{Exit, Refused, Target};
use crate::cli::ResetArgs;
use crate::{prompt, ui};

/// Deletes the target database after its guards pass.
pub fn run(t: &Target, a: &ResetArgs) -> anyhow::Result<Exit> {
    let db = &t.loc.path;
    let present = reset::files(db);
    if present.is_empty() {
        if a.out.json {
            ui::json(&serde_json::json!({ "path": db, "deleted": [], "safety_backup": null }))?;
        } else {
            ui::note(
                t.quiet,
                format_args!(
                    "no database at {} ({}): nothing to reset",
                    db.display(),
                    t.loc.source
                ),
            );
        }
        return Ok(Exit::Ok);
    }
    let volume = Volume::detect(&t.loc.dir);
    if !a.force {
        // Refused before anyone is asked to confirm; the library applies the same rule again.
        if let Some(why) = reset::refusal(&volume) {
            let path = db.clone();
            return Err(hinted(db, sqlite_vol::Error::ResetRefused { path, why }));
        }
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to reset {} without confirmation: stdin is not a terminal. Pass --yes to delete \
                 it (a safety backup is taken first unless --no-safety-backup)",
                db.display()
            );
        }
        prompt::confirm_reset(t, &volume, &present, a.no_safety_backup)?;
    }
    let exists = db.is_file();
    let bar = ui::Bar::new(t.quiet || a.out.json, "backing up");
    let update = |p: Progress| bar.update(p);
    let opts = ResetOptions {
        force: a.force,
        safety_backup: (!a.no_safety_backup).then(|| t.backup_dir.clone()),
        wait: super::wait(a.lock.wait),
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
    };
    let done = reset::reset(db, &t.app, &volume, &opts).map_err(|e| hinted(db, e))?;
    bar.clear();
    let (deleted, safety) = (done.deleted, done.safety_backup);
    if a.out.json {
        ui::json(&serde_json::json!({
            "path": db,
            "deleted": deleted,
            "safety_backup": safety,
        }))?;
    } else {
        for p in &deleted {
            ui::line(p.display())?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "deleted {} file(s); the next start creates a new, empty database at {}",
                deleted.len(),
                db.display()
            ),
        );
        match &safety {
            Some(p) => ui::note(
                t.quiet,
                format_args!(
                    "the deleted database was saved as {}; bring it back with `sqlite-vol restore {}`",
                    p.display(),
                    p.display()
                ),
            ),
            None if exists => ui::note(t.quiet, "no safety backup was taken (--no-safety-backup)"),
            None => {}
        }
    }
    Ok(Exit::Ok)
}

/// The library's error, with what this command's flags can do about it.
fn hinted(db: &std::path::Path, e: sqlite_vol::Error) -> anyhow::Error {
    match e {
        e @ sqlite_vol::Error::ResetRefused { .. } => Refused(format!(
            "{e}. If you really mean to delete this one, pass --force as well (a safety backup is still \
             taken unless --no-safety-backup)"
        ))
        .into(),
        // Deleting failed part-way: the message says which file; the log what was already deleted.
        e @ sqlite_vol::Error::Io { .. } => e.into(),
        e => anyhow::Error::new(e).context(format!("resetting {}; nothing was deleted", db.display())),
    }
}
