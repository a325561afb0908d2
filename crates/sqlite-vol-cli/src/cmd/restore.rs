//! `sqlite-vol restore BACKUP`: bring the live database back to a backup, after confirmation.
//!
//! BACKUP is a file or `s3://bucket/prefix/NAME.db`; with `--latest`, a directory or `s3://bucket/prefix` to
//! take the newest from. Object-storage backups are downloaded into the backup directory and checked against
//! their manifest first. On a terminal the backup is verified and described first, then the user is asked;
//! without a terminal `--yes` is required, so a script never restores by accident. `--if-db-not-exists`
//! (restore on a first start) replaces nothing, so it asks nothing: when a database is there it does
//! nothing, and when no backup exists it says so; both exit 0.

use std::io::IsTerminal;

use anyhow::{bail, Context};
use sqlite_vol::restore::FirstStart;
use sqlite_vol::store::Place;
use sqlite_vol::Progress;
use sqlite_vol::{Migrations, RestoreOptions, Restored};

use super::{Exit, Target};
use crate::cli::RestoreArgs;
use crate::{prompt, ui};

/// Where the backup comes from: a place, and a name in it (`None`: the newest).
struct Source {
    place: Place,
    name: Option<String>,
}

impl Source {
    fn describe(&self) -> String {
        match &self.name {
            Some(n) => self.place.location_of(n),
            None => format!("the newest backup in {}", self.place.describe()),
        }
    }
}

fn source(a: &RestoreArgs, t: &Target) -> anyhow::Result<Source> {
    if a.latest {
        let from = a.source.clone().or_else(|| t.settings.restore_from.clone());
        let place = match from {
            Some(f) => Place::parse(&f)?,
            None => Place::Dir(t.backup_dir.clone()),
        };
        return Ok(Source { place, name: None });
    }
    let Some(given) = a.source.as_deref() else {
        bail!(
            "nothing to restore from: give a backup file (see `sqlite-vol list`), s3://BUCKET/PREFIX/NAME.db, or --latest [DIR|s3://BUCKET/PREFIX] for the newest backup"
        );
    };
    let (place, name) = Place::parse_backup(given)?;
    Ok(Source {
        place,
        name: Some(name),
    })
}

/// Restores the chosen backup into the target database.
pub fn run(t: &Target, a: &RestoreArgs) -> anyhow::Result<Exit> {
    let db = &t.loc.path;
    let src = source(a, t)?;
    let policy = t.policy()?;
    if a.if_db_not_exists && sqlite_vol::location::has_content(db) {
        return exists(t, a);
    }
    if !a.yes && !a.if_db_not_exists && !std::io::stdin().is_terminal() {
        bail!(
            "refusing to restore {} into {} without confirmation: stdin is not a terminal. Pass --yes \
             to replace the database (a safety backup is taken first unless --no-safety-backup)",
            src.describe(),
            db.display()
        );
    }
    let known_schema = match &a.migrations {
        Some(dir) => Migrations::from_dir(dir)?.latest(),
        None => None,
    };
    let bar = ui::Bar::new(t.quiet || a.out.json, "restoring");
    let update = |p: Progress| bar.update(p);
    let opts = RestoreOptions {
        force: a.force,
        safety_backup: !a.no_safety_backup,
        backup_dir: t.backup_dir.clone(),
        known_schema,
        full_check: a.full_check,
        wait: super::wait(a.lock.wait),
        progress: bar.active().then_some(&update as &dyn Fn(Progress)),
    };
    let (from, r) = if a.if_db_not_exists {
        let outcome = sqlite_vol::restore::restore_if_missing_with(
            &src.place,
            src.name.as_deref(),
            db,
            &t.app,
            &opts,
            &policy,
        )
        .map_err(|e| t.app_hint(e.into()))?;
        match outcome {
            FirstStart::Exists => return exists(t, a),
            FirstStart::NoBackup => {
                bar.clear();
                return nothing(t, a, &src);
            }
            FirstStart::Restored(from, r) => (from, r),
        }
    } else {
        // An encrypted backup the identity cannot open is refused from its header, before anything is
        // downloaded or the place is taken over below.
        sqlite_vol::store::check_identity(&src.place, &t.app, src.name.as_deref(), &policy)?;
        let file = match &src.name {
            Some(n) => sqlite_vol::store::fetch_with(&src.place, n, &t.backup_dir, &policy)?,
            None => {
                sqlite_vol::store::fetch_latest_with(&src.place, &t.app, &t.backup_dir, &policy)?
                    .with_context(|| {
                        format!(
                            "no backup of {} in {}: nothing to restore (see `sqlite-vol list {}`)",
                            t.app,
                            src.place.describe(),
                            src.place.describe()
                        )
                    })?
            }
        };
        if !a.yes {
            prompt::confirm_restore(t, &file, a.full_check, a.no_safety_backup)?;
        }
        // Fencing: a restore from a place takes its next writer generation (a folder only when it has a
        // lineage marker, so a local backup folder never gets one).
        let restored = src
            .place
            .is_remote()
            .then(|| sqlite_vol::store::lineage::Lineage::of_file(&file))
            .transpose()?;
        let generation =
            sqlite_vol::store::lineage::take_over(&src.place, &t.app, restored.as_ref())?;
        let r = sqlite_vol::restore::restore(&file, db, &t.app, &opts)
            .map_err(|e| t.app_hint(e.into()))?;
        if let Some(g) = generation {
            sqlite_vol::store::lineage::record_generation(db, g)?;
        }
        // Where it came from: its URL for object storage, the file itself for a folder.
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        (src.place.location_of(&name), r)
    };
    bar.clear();
    report(t, a, &from, &r)
}

fn exists(t: &Target, a: &RestoreArgs) -> anyhow::Result<Exit> {
    if a.out.json {
        ui::json(&serde_json::json!({
            "restored": false,
            "reason": "database exists",
            "into": t.loc.path,
        }))?;
    } else {
        ui::line(format_args!(
            "{} already holds a database: nothing restored (--if-db-not-exists)",
            t.loc.path.display()
        ))?;
    }
    Ok(Exit::Ok)
}

fn nothing(t: &Target, a: &RestoreArgs, src: &Source) -> anyhow::Result<Exit> {
    if a.out.json {
        ui::json(&serde_json::json!({
            "restored": false,
            "reason": "no backup",
            "from": src.place.describe(),
            "into": t.loc.path,
        }))?;
    } else {
        ui::line(format_args!(
            "no backup of {} in {}: nothing restored; the service will start with a new, empty database",
            t.app,
            src.place.describe()
        ))?;
    }
    Ok(Exit::Ok)
}

fn report(t: &Target, a: &RestoreArgs, from: &str, r: &Restored) -> anyhow::Result<Exit> {
    if a.out.json {
        let mut v = serde_json::to_value(r)?;
        v["restored"] = true.into();
        v["from"] = from.into();
        ui::json(&v)?;
    } else {
        ui::line(format_args!(
            "restored {} from {} ({} pages, schema {}) in {} ms",
            r.into.display(),
            from,
            r.page_count,
            ui::schema(r.schema_version),
            r.duration_ms
        ))?;
        match &r.safety_backup {
            Some(p) => ui::note(
                t.quiet,
                format_args!("the previous database was saved as {}", p.display()),
            ),
            None if r.created => ui::note(t.quiet, "there was no database before: it was created"),
            None => ui::note(t.quiet, "no safety backup was taken (--no-safety-backup)"),
        }
    }
    Ok(Exit::Ok)
}
