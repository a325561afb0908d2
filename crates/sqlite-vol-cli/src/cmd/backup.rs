//! `sqlite-vol backup`: one online, checked backup of the live database.

use anyhow::Context;
use sqlite_vol::backup::Progress;
use sqlite_vol::BackupOptions;

use super::{Exit, Target};
use crate::cli::BackupArgs;
use crate::ui;

/// Takes a backup and prints its path (or JSON).
pub fn run(t: &Target, a: &BackupArgs) -> anyhow::Result<Exit> {
    let bar = ui::Bar::new(t.quiet || a.json, "backing up");
    let update = |p: Progress| bar.update(p);
    let dir = a.to.clone().unwrap_or_else(|| t.backup_dir.clone());
    let opts = BackupOptions {
        dir: dir.clone(),
        keep: a.keep.map(|k| k as usize),
        full_check: a.full_check,
        wait: super::wait(a.wait),
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
    };
    let m = sqlite_vol::backup::backup(&t.loc.path, &t.app, &opts)
        .with_context(|| format!("backing up {} into {}", t.loc.path.display(), dir.display()))?;
    bar.clear();
    if a.json {
        ui::json(&serde_json::json!({
            "path": m.path,
            "bytes": m.bytes,
            "sha256": m.sha256,
            "page_size": m.page_size,
            "page_count": m.page_count,
            "schema_version": m.schema_version,
            "application_id": m.application_id,
            "source": m.source,
            "created_at": m.created_at,
            "duration_ms": m.duration_ms,
            "check": m.check,
            "verified": true,
        }))?;
    } else {
        ui::line(m.path.display())?;
        ui::note(
            t.quiet,
            format_args!(
                "backed up {} ({}, {} pages, schema {}) in {} ms; {} of the copy: ok",
                t.loc.path.display(),
                ui::size(m.bytes),
                m.page_count,
                m.schema_version
                    .map_or_else(|| "none".to_string(), |v| v.to_string()),
                m.duration_ms,
                m.check
            ),
        );
    }
    Ok(Exit::Ok)
}
