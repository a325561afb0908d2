//! `sqlite-vol init [--migrations DIR]`: create and stamp a new, empty database on purpose.
//!
//! The counterpart of `SQLITE_VOL_EXPECT_EXISTING=1`: an operator provisions the volume once with `init`,
//! and from then on every start of the service refuses to create a database silently (a volume that was
//! not mounted then fails loudly instead of starting empty). The database is created through the
//! library's own startup path, so it gets the same identity stamp, pragmas, migrations and creation
//! record a service would give it, and the same refusals (strict mode on storage that will not persist).
//!
//! It never touches an existing database: one with content is refused (exit 1) and left alone; `migrate`
//! applies migrations to it, `reset` deletes it.

use sqlite_vol::Migrations;

use super::{Exit, Refused, Target};
use crate::cli::InitArgs;
use crate::ui;

/// Creates the target database; refuses when one is already there.
pub fn run(t: &Target, a: &InitArgs) -> anyhow::Result<Exit> {
    let path = &t.loc.path;
    if sqlite_vol::location::has_content(path) {
        return Err(Refused(format!(
            "refusing to initialize {}: a database is already there ({}). init only creates new databases; \
             use `sqlite-vol migrate --dir DIR` to bring it up to date, or `sqlite-vol reset` (development) \
             to start over",
            path.display(),
            ui::size(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        ))
        .into());
    }
    let migrations = match &a.migrations {
        Some(dir) => Migrations::from_dir(dir)?,
        None => Migrations::none(),
    };
    let db = t
        .builder(a.lock.wait)
        .migrations(migrations)
        .expect_existing(false)
        .open()
        .map_err(|e| t.app_hint(e.into()))?;
    let created = db.created();
    let applied = db.applied_migrations().to_vec();
    let version = db.schema_version();
    let volume = db.volume().clone();
    db.close()?;
    if !created {
        // Another process created it between the check above and the library's lock.
        return Err(Refused(format!(
            "{} was created by another process while init ran; it was opened, not created",
            path.display()
        ))
        .into());
    }
    if a.out.json {
        ui::json(&serde_json::json!({
            "path": path,
            "app": t.app,
            "application_id": sqlite_vol::identity::application_id(&t.app),
            "created": true,
            "applied": applied,
            "schema_version": version,
            "volume": volume,
        }))?;
    } else {
        ui::line(path.display())?;
        ui::note(
            t.quiet,
            format_args!(
                "created {}'s database (application id {:#x}), {} migration(s) applied, schema {}, on {}.\n\
                 Set SQLITE_VOL_EXPECT_EXISTING=1 for the service so that no later start creates one silently",
                t.app,
                sqlite_vol::identity::application_id(&t.app),
                applied.len(),
                ui::schema(version),
                volume.kind.describe()
            ),
        );
    }
    Ok(Exit::Ok)
}
