//! `sqlite-vol drill [DIR|s3://…]`: the library's restore drill ([`sqlite_vol::drill`]) of the newest backup,
//! its outcome printed (text or JSON); exit 1 with what failed.

use clap::Args;

use super::{Exit, Target};
use crate::ui;

/// `drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Where the backups are: a folder or s3://BUCKET/PREFIX. Default: the backup folder.
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX")]
    pub from: Option<String>,
    /// A sentinel query run on the restored copy, which must return at least one row (default
    /// SQLITE_VOL_DRILL_QUERY).
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Drills the newest backup of the target's app; a failed drill exits 1.
pub fn run(t: &Target, a: &DrillArgs) -> anyhow::Result<Exit> {
    let place = t.place(a.from.as_deref())?;
    let query = a.query.clone().or_else(|| t.settings.drill_query.clone());
    let d = sqlite_vol::drill::drill_with(
        &place,
        &t.loc.path,
        &t.app,
        &t.backup_dir,
        query.as_deref(),
        &t.policy()?,
    )?;
    if a.json {
        ui::json(&d)?;
    } else if d.ok {
        ui::line(format_args!(
            "{}: restore drill passed in {} ms",
            d.backup, d.duration_ms
        ))?;
    }
    if !d.ok {
        eprintln!(
            "sqlite-vol: restore drill FAILED for {}: {}",
            d.backup, d.detail
        );
        return Ok(Exit::No);
    }
    Ok(Exit::Ok)
}
