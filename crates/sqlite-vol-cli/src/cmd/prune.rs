//! `sqlite-vol prune --keep N [DIR|s3://…]`: delete all but the newest N backups (files outside the naming
//! scheme are never touched; in a bucket, uploads that never finished are removed too).

use super::{Exit, Target};
use crate::cli::PruneArgs;
use crate::ui;

/// Prunes the target app's backups and prints what was deleted.
pub fn run(t: &Target, a: &PruneArgs) -> anyhow::Result<Exit> {
    let place = t.place(a.from.as_deref())?;
    let deleted = sqlite_vol::store::prune(&place, &t.app, a.keep as usize)?;
    if a.out.json {
        ui::json(&serde_json::json!({ "kept": a.keep, "deleted": deleted }))?;
        return Ok(Exit::Ok);
    }
    for p in &deleted {
        ui::line(p)?;
    }
    ui::note(
        t.quiet,
        format_args!(
            "deleted {} backup(s) from {}, kept the newest {}",
            deleted.len(),
            place.describe(),
            a.keep
        ),
    );
    Ok(Exit::Ok)
}
