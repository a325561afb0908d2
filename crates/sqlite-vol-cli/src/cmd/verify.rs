//! `sqlite-vol verify FILE|s3://…/NAME.db`: prove a backup file is good, and say whose and which schema it is.
//! An object-storage backup is downloaded into a temporary folder first (its hash checked against its manifest),
//! and an encrypted one (in a bucket or a folder) is decrypted there with `--identity`.

use sqlite_vol::Progress;

use super::Exit;
use crate::cli::{DbOpts, VerifyArgs};
use crate::ui;

/// Verifies `a.file`; a bad file is an error with exit code 1.
pub fn run(opts: &DbOpts, a: &VerifyArgs) -> anyhow::Result<Exit> {
    // The app is optional here: when it is known, say whether the backup is its.
    let target = opts.target().ok();
    let app = target.as_ref().map(|t| t.app.clone());
    let bar = ui::Bar::new(opts.quiet || a.out.json, "verifying");
    let update = |p: Progress| bar.update(p);
    // An object-storage backup is downloaded (and checked against its manifest) into a folder that is
    // removed afterwards; then verified like a local file, and reported under its URL.
    // So is an encrypted backup in a folder: it is decrypted into that folder first.
    let encrypted = sqlite_vol::manifest::read_manifest(&a.file).is_some_and(|m| m.encrypted);
    let remote = a
        .file
        .to_str()
        .filter(|f| f.starts_with("s3://") || encrypted)
        .map(str::to_string);
    let staging = tempfile::tempdir()?;
    let file = match &remote {
        Some(url) => {
            let (place, name) = sqlite_vol::store::Place::parse_backup(url)?;
            let policy = match &target {
                Some(t) => t.policy()?,
                None => match &opts.identity {
                    Some(id) => sqlite_vol::store::Policy::default().decrypt_with(id),
                    None => {
                        sqlite_vol::store::Policy::from_settings(&sqlite_vol::Settings::from_env()?)?
                    }
                },
            };
            sqlite_vol::store::fetch_with(&place, &name, staging.path(), &policy)?
        }
        None => a.file.clone(),
    };
    let mut v = sqlite_vol::verify(
        &file,
        a.full_check,
        bar.active().then_some(&update as &dyn Fn(Progress)),
    )?;
    bar.clear();
    if let Some(url) = &remote {
        v.path = url.into();
    }
    let matches = app
        .as_deref()
        .map(|app| sqlite_vol::identity::application_id(app) == v.application_id);
    if a.out.json {
        let mut value = serde_json::to_value(&v)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("verified".into(), true.into());
            obj.insert("app".into(), app.clone().into());
            obj.insert("application_matches".into(), matches.into());
        }
        ui::json(&value)?;
    } else {
        ui::line(format_args!("{}: ok", v.path.display()))?;
        let checksum = if v.manifest {
            "matches its manifest"
        } else {
            "not compared (no manifest beside the file)"
        };
        let whose = match (&app, matches) {
            (Some(app), Some(true)) => format!("{app}'s"),
            (Some(app), _) => format!("NOT {app}'s"),
            _ => "unknown app".into(),
        };
        ui::note(
            opts.quiet,
            format_args!(
                "  {} in {} pages; {} ok; sha256 {} {checksum}\n  application id {:#x} ({whose}), schema {}{}",
                ui::size(v.bytes),
                v.page_count,
                v.check,
                v.sha256,
                v.application_id,
                ui::schema(v.schema_version),
                v.created_at
                    .as_deref()
                    .map(|c| format!(", taken {c}"))
                    .unwrap_or_default()
            ),
        );
    }
    Ok(Exit::Ok)
}
