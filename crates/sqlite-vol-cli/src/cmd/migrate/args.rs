//! The arguments of `sqlite-vol migrate` and its subcommands (status, new, baseline, plan, repair, back,
//! apply). Without a subcommand, `migrate` applies, as it always has.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cli::{LockWait, Output};

/// `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The directory of SQL migrations (`V1__create_users.sql`, …); `--dir` is accepted too.
    #[arg(
        long,
        alias = "dir",
        value_name = "DIR",
        default_value = "migrations",
        global = true
    )]
    pub migrations: PathBuf,
    /// Applying, when no subcommand is given.
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// What to do instead of applying.
    #[command(subcommand)]
    pub action: Option<MigrateCommand>,
}

/// The subcommands of `migrate`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply the pending migrations (the default): after a safety backup, in one transaction, with the
    /// same refusals as a service's startup.
    Apply(ApplyArgs),
    /// Every migration in the folder and in the database: applied (when, checksum), pending, divergent
    /// (what changed), unknown; and the repairs made. Exit 1 when anything is divergent or unknown.
    Status(StatusArgs),
    /// Create the next numbered migration file, `V<n>__NAME.sql`, with a header comment.
    New(NewArgs),
    /// Adopt a database made before migrations existed: prove its schema is what V1..VN create (on an
    /// empty in-memory copy of the migrations), then record V1..VN as applied. Never touches data; on any
    /// difference, prints it and changes nothing.
    Baseline(BaselineArgs),
    /// Rehearse the pending migrations on a copy of the live database: each one's time, how long the
    /// write lock would be held, and the schema change. The live database is not changed.
    Plan(PlanArgs),
    /// Accept the current file of an applied migration as what was applied, when only comments or
    /// whitespace changed (or anything, with --force); recorded with who, when and why.
    Repair(RepairArgs),
    /// Go back before the newest applied migration: restore the safety backup taken just before it ran,
    /// after showing how many rows written since would be lost. Needs --yes.
    Back(BackArgs),
}

/// `migrate [apply]`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print the plan (current version, pending migrations) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not back up a database that holds data before migrating it.
    #[arg(long)]
    pub no_safety_backup: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `migrate status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `migrate new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The migration's name: letters, digits and underscores (`add_email_index`).
    pub name: String,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `migrate baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Record V1..VERSION as applied (the migrations whose schema the database already has).
    #[arg(long)]
    pub version: i64,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `migrate plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `migrate repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The applied migration's version.
    pub version: i64,
    /// Why (kept in the audit trail that `migrate status` shows).
    #[arg(long)]
    pub reason: String,
    /// Accept the file even though its statements differ from what was applied (the database must
    /// already have what the file now says), or when what was applied was never recorded.
    #[arg(long)]
    pub force: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `migrate back`.
#[derive(Debug, Args)]
pub struct BackArgs {
    /// Restore after showing what would be lost (without it, only show).
    #[arg(long, short)]
    pub yes: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}
