//! `sqlite-vol prune --keep N`: delete all but the newest N backups (files outside the naming scheme are
//! never touched).

use super::{Exit, Target};
use crate::cli::PruneArgs;
use crate::ui;

/// Prunes the target app's backups and prints what was deleted.
pub fn run(t: &Target, a: &PruneArgs) -> anyhow::Result<Exit> {
    let deleted = sqlite_vol::backup::prune(&t.backup_dir, &t.app, a.keep as usize, None)?;
    if a.json {
        ui::json(&serde_json::json!({ "kept": a.keep, "deleted": deleted }))?;
        return Ok(Exit::Ok);
    }
    for p in &deleted {
        ui::line(p.display())?;
    }
    ui::note(
        t.quiet,
        format_args!(
            "deleted {} backup(s) from {}, kept the newest {}",
            deleted.len(),
            t.backup_dir.display(),
            a.keep
        ),
    );
    Ok(Exit::Ok)
}
