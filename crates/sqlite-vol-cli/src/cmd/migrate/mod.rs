//! `sqlite-vol migrate`: apply (the default), status, new, baseline, plan, repair, back. Each subcommand is
//! one call into the library's `migrate` module and the printing of its answer.

mod apply;
mod args;
mod back;
mod inspect;
mod write;

pub use args::MigrateArgs;

use args::MigrateCommand;
use sqlite_vol::Migrations;

use super::{Exit, Target};

/// Runs `migrate` and its subcommands.
pub fn run(t: &Target, a: &MigrateArgs) -> anyhow::Result<Exit> {
    let dir = &a.migrations;
    let load = || Migrations::from_dir(dir);
    let x = &a.apply;
    if a.action.is_some()
        && (x.dry_run || x.no_safety_backup || x.out.json || x.lock.wait.is_some())
    {
        anyhow::bail!(
            "--dry-run, --no-safety-backup, --json and --wait before a `migrate` subcommand belong to applying; \
             give them after the subcommand (`sqlite-vol migrate status --json`)"
        );
    }
    match &a.action {
        None => apply::run(t, dir, &a.apply),
        Some(MigrateCommand::Apply(x)) => apply::run(t, dir, x),
        Some(MigrateCommand::Status(x)) => inspect::status(t, &load()?, x),
        Some(MigrateCommand::Plan(x)) => inspect::plan(t, &load()?, x),
        Some(MigrateCommand::New(x)) => write::new(t, dir, x),
        Some(MigrateCommand::Baseline(x)) => write::baseline(t, &load()?, x),
        Some(MigrateCommand::Repair(x)) => write::repair(t, &load()?, x),
        Some(MigrateCommand::Back(x)) => back::run(t, x),
    }
}
