//! `sqlite-vol backup`: one online, checked backup of the live database, optionally sent to an S3-compatible
//! bucket (`--to s3://…`) after it is taken and checked locally.

use anyhow::Context;
use sqlite_vol::store::Place;
use sqlite_vol::BackupOptions;
use sqlite_vol::Progress;

use super::{Exit, Target};
use crate::cli::BackupArgs;
use crate::ui;

/// Takes a backup and prints its path (or JSON); with `--to s3://…` uploads it too.
pub fn run(t: &Target, a: &BackupArgs) -> anyhow::Result<Exit> {
    // `--to DIR` writes there instead of the backup directory; `--to s3://…` uploads after the local
    // backup. SQLITE_VOL_BACKUP_TO (the service's setting) always means "also send it there".
    let (dir, place) = match &a.to {
        Some(to) => match Place::parse(to)? {
            Place::Dir(d) => (d, None),
            remote => (t.backup_dir.clone(), Some(remote)),
        },
        None => (
            t.backup_dir.clone(),
            t.settings
                .backup_to
                .as_deref()
                .map(Place::parse)
                .transpose()?,
        ),
    };
    let bar = ui::Bar::new(t.quiet || a.out.json, "backing up");
    let update = |p: Progress| bar.update(p);
    let opts = BackupOptions {
        dir: dir.clone(),
        keep: a.keep.map(|k| k as usize),
        full_check: a.full_check,
        wait: super::wait(a.lock.wait),
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
    };
    let m = sqlite_vol::backup::backup(&t.loc.path, &t.app, &opts)
        .with_context(|| format!("backing up {} into {}", t.loc.path.display(), dir.display()))?;
    bar.clear();
    let (uploaded, pruned) = match place.as_ref() {
        Some(place) => {
            let keep = a.keep.map(|k| k as usize);
            let policy = sqlite_vol::store::Policy::from_settings(&t.settings)?;
            let sent = sqlite_vol::store::send_with(place, m.clone(), &t.app, keep, &policy)
                .with_context(|| {
                    format!(
                        "the backup {} was taken and checked, but sending it to {place} failed",
                        m.path.display(),
                    )
                })?;
            (Some(sent.to), sent.pruned)
        }
        None => (None, Vec::new()),
    };
    if a.out.json {
        let mut v = serde_json::to_value(&m)?;
        v["verified"] = true.into();
        v["uploaded_to"] = uploaded.into();
        v["pruned_remote"] = pruned.into();
        ui::json(&v)?;
    } else {
        ui::line(m.path.display())?;
        if let Some(url) = &uploaded {
            ui::line(url)?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "backed up {} ({}, {} pages, schema {}) in {} ms; {} of the copy: ok",
                t.loc.path.display(),
                ui::size(m.bytes),
                m.page_count,
                ui::schema(m.schema_version),
                m.duration_ms,
                m.check
            ),
        );
    }
    Ok(Exit::Ok)
}
