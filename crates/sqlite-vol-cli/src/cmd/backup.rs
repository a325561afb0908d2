//! `sqlite-vol backup`: one online, checked backup of the live database, optionally sent to an S3-compatible
//! bucket (`--to s3://…`), or to several places (comma-separated), after it is taken and checked locally;
//! encrypted on the way with `--recipient` (or SQLITE_VOL_BACKUP_RECIPIENTS).

use anyhow::Context;
use sqlite_vol::store::{Destinations, Place};
use sqlite_vol::BackupOptions;
use sqlite_vol::Progress;

use super::{Exit, Target};
use crate::cli::BackupArgs;
use crate::ui;

/// Takes a backup and prints its path (or JSON); with `--to s3://…` uploads it too.
pub fn run(t: &Target, a: &BackupArgs) -> anyhow::Result<Exit> {
    // `--to DIR` writes there instead of the backup directory; `--to s3://…` (or several places, or any
    // place with --recipient) sends it there after the local backup. SQLITE_VOL_BACKUP_TO (the service's
    // setting) always means "also send it there".
    let mut policy = t.policy()?;
    if !a.recipients.is_empty() {
        policy = policy.encrypt_to(&a.recipients.join(","))?;
    }
    let (dir, dests) = match &a.to {
        Some(to) => {
            let mut d = Destinations::parse(to, policy)?;
            match d.places.as_slice() {
                [Place::Dir(only)] if !d.policy.encrypts() => {
                    let only = only.clone();
                    d.places.clear();
                    (only, d)
                }
                _ => (t.backup_dir.clone(), d),
            }
        }
        None => {
            let mut d = Destinations::from_settings(&t.settings)?;
            d.policy = policy;
            (t.backup_dir.clone(), d)
        }
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
    let keep = a.keep.map(|k| k as usize);
    let sent = match dests.is_empty() {
        true => Vec::new(),
        false => dests.send(m.clone(), &t.app, keep).with_context(|| {
            format!(
                "the backup {} was taken and checked, but sending it to {} failed",
                m.path.display(),
                dests.describe()
            )
        })?,
    };
    let uploaded: Vec<&str> = sent.iter().map(|s| s.to.as_str()).collect();
    let pruned: Vec<String> = sent.iter().flat_map(|s| s.pruned.clone()).collect();
    let encrypted = sent.iter().any(|s| s.manifest.encrypted);
    if a.out.json {
        let mut v = serde_json::to_value(&m)?;
        v["verified"] = true.into();
        v["uploaded_to"] = match uploaded.as_slice() {
            [] => serde_json::Value::Null,
            [one] => (*one).into(),
            _ => uploaded.clone().into(),
        };
        v["pruned_remote"] = pruned.into();
        v["encrypted"] = encrypted.into();
        ui::json(&v)?;
    } else {
        ui::line(m.path.display())?;
        for url in &uploaded {
            ui::line(url)?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "backed up {} ({}, {} pages, schema {}) in {} ms; {}: ok",
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
