//! `migrate new`, `migrate baseline` and `migrate repair`: the subcommands that write a migration file or
//! the database's migration history (under the maintenance lock), never its data.

use std::path::Path;

use sqlite_vol::migrate::{self, RepairOptions};
use sqlite_vol::Migrations;

use super::args::{BaselineArgs, NewArgs, RepairArgs};
use crate::cmd::{wait, Exit, Target};
use crate::ui;

/// Creates the next numbered migration file in `dir`.
pub fn new(t: &Target, dir: &Path, a: &NewArgs) -> anyhow::Result<Exit> {
    let made = migrate::new_migration(dir, &a.name)?;
    if a.out.json {
        ui::json(&made)?;
    } else {
        ui::line(made.path.display())?;
        ui::note(
            t.quiet,
            "write the migration's SQL below its header, then `sqlite-vol migrate plan`",
        );
    }
    Ok(Exit::Ok)
}

/// Proves the schema and records V1..VN as applied.
pub fn baseline(t: &Target, migrations: &Migrations, a: &BaselineArgs) -> anyhow::Result<Exit> {
    let b = migrate::baseline(
        &t.loc.path,
        &t.app,
        migrations,
        a.version,
        wait(a.lock.wait),
    )
    .map_err(|e| t.app_hint(e.into()))?;
    if a.out.json {
        ui::json(&b)?;
    } else {
        for m in &b.marked {
            ui::line(m)?;
        }
        ui::note(
            t.quiet,
            format_args!(
                "{}: the schema is what V1..V{} create; {} migration(s) recorded as applied, no data touched",
                b.path.display(),
                b.version,
                b.marked.len()
            ),
        );
    }
    Ok(Exit::Ok)
}

/// Accepts the current file of an applied migration, audited.
pub fn repair(t: &Target, migrations: &Migrations, a: &RepairArgs) -> anyhow::Result<Exit> {
    let opts = RepairOptions {
        reason: a.reason.clone(),
        force: a.force,
        wait: wait(a.lock.wait),
    };
    let r = migrate::repair(&t.loc.path, migrations, a.version, &opts)?;
    if a.out.json {
        ui::json(&r)?;
    } else {
        let x = &r.repair;
        ui::line(format_args!(
            "V{}__{}: checksum {} -> {} ({})",
            x.version,
            x.name,
            x.old_checksum,
            x.new_checksum,
            if r.same_statements {
                "only comments or whitespace changed"
            } else {
                "FORCED: the statements differ from what was applied"
            }
        ))?;
        ui::note(
            t.quiet,
            format_args!(
                "recorded: by {} (uid {}) on {} at {}: {:?}",
                x.user, x.uid, x.host, x.at, x.reason
            ),
        );
    }
    Ok(Exit::Ok)
}
