//! The command line's shape: every flag, subcommand and help text, and nothing else.
//!
//! `--db`, `--app`, `--backup-dir` and `--quiet` are one flattened, global [`DbOpts`] group, so they mean the
//! same in every subcommand and may be given before or after it. The database is found exactly as the library finds it:
//! `--db`, then `<APP>_DB_PATH`, `DB_PATH`, a `sqlite:` `DATABASE_URL`, then the per-user data directory.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keep a containerized service's SQLite database safe: status, doctor, backup, restore, verify, list,
/// prune, check, migrate, init, reset, healthcheck.
///
/// Exit codes: 0 success; 1 a clean "no" (a refused or failed verification, a failed check, a doctor
/// failure, an unhealthy database); 2 an error (bad usage, lock held, I/O).
#[derive(Debug, Parser)]
#[command(name = "sqlite-vol", version, about, long_about)]
pub struct Cli {
    /// Where the database is (accepted before or after the subcommand).
    #[command(flatten)]
    pub db: DbOpts,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the database is and whose it is; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DbOpts {
    /// The database file, or a directory holding `<app>.db`. Default: `<APP>_DB_PATH`, `DB_PATH`, a
    /// `sqlite:` `DATABASE_URL`, else the per-user data directory.
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The application's name: it picks `<APP>_DB_PATH` and `<app>.db`, names backups, and is checked
    /// against the database's application id. Default: SQLITE_VOL_APP, else the database file's name
    /// without extension when --db, DB_PATH or DATABASE_URL names a file.
    #[arg(long, global = true, env = "SQLITE_VOL_APP", value_name = "NAME")]
    pub app: Option<String>,

    /// Where backups are kept. Default: SQLITE_VOL_BACKUP_DIR, else `backups/` beside the database.
    #[arg(long, global = true, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,

    /// Print only what was asked for (no progress bar, no notes, no warnings from the library).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// An age identity file (`AGE-SECRET-KEY-1…`, made by age-keygen) that decrypts encrypted backups for
    /// verify, restore, list and drill. Default: SQLITE_VOL_BACKUP_IDENTITY.
    #[arg(long, global = true, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// `--json`, shared by every subcommand that reports.
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--wait SECS`, shared by every subcommand that takes the maintenance lock.
#[derive(Debug, Clone, Copy, Args)]
pub struct LockWait {
    /// Wait up to SECS for another backup, restore or migration to finish (default: fail at once).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Where the database is, what holds it, its size and schema, the newest backup and the lock.
    Status(StatusArgs),
    /// Run every check (location, writable, volume, free space, journal, WAL safety, lock, backups,
    /// identity) and say how to fix each problem. Changes nothing.
    Doctor(DoctorArgs),
    /// Take an online, checked backup of the live database.
    Backup(BackupArgs),
    /// Restore a backup (a file, the newest in a directory or S3 bucket with --latest) into the live database:
    /// verified first, a safety backup taken first; --if-db-not-exists for a first start.
    Restore(RestoreArgs),
    /// Check that a backup file is intact: SQLite, checksum, integrity, application id, schema.
    Verify(VerifyArgs),
    /// List the backups, newest first, with age, size and whether each verifies.
    List(ListArgs),
    /// Delete all but the newest N backups.
    Prune(PruneArgs),
    /// Integrity check of the live database (read-only).
    Check(CheckArgs),
    /// Apply SQL migrations (`V1__name.sql`, …) from a directory, with the library's refusals; or, with a
    /// subcommand, see their status, create the next one, baseline, plan, repair or go back.
    Migrate(crate::cmd::migrate::MigrateArgs),
    /// Create and stamp a new, empty database on purpose (optionally migrated), so that every later start
    /// can run with SQLITE_VOL_EXPECT_EXISTING=1. Refuses when a database is already there.
    Init(InitArgs),
    /// Development only: delete the database and its -wal, -shm and -journal so the next start creates it
    /// fresh. Asks for the file name to be typed back, takes a safety backup first, and refuses a
    /// persistent volume inside a container without --force.
    Reset(ResetArgs),
    /// Fast liveness probe for a Docker HEALTHCHECK: exit 0 when the database opens and answers.
    Healthcheck(HealthcheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per subcommand into a directory with --dir.
    Man(ManArgs),
    /// Run an app in any language under supervision, after the same startup checks a Rust service gets
    /// (volume, writable, restore on first start, migrations, WAL), with scheduled backups while it runs,
    /// signals forwarded, orphans reaped as PID 1, and its exit status returned. Exit 2 before it starts
    /// when a check refuses.
    Exec(crate::cmd::exec::ExecArgs),
    /// Print the database's Prometheus series (sizes, schema, volume, backup and drill times, lock), or write
    /// them atomically for node_exporter's textfile collector with --textfile.
    Metrics(crate::cmd::metrics::MetricsArgs),
    /// Restore the newest backup into a temporary file and prove it: manifest, integrity, identity and
    /// schema against the live database, an optional sentinel query. The live database is never touched;
    /// the outcome is recorded for status, doctor and metrics. Exit 1 when the drill fails.
    Drill(crate::cmd::drill::DrillArgs),
    /// Internal: the shim `exec` starts the app through.
    #[command(name = "__child", hide = true)]
    Child(crate::cmd::exec::ChildArgs),
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the backup goes: a directory (instead of --backup-dir), or s3://BUCKET/PREFIX to upload it
    /// to S3-compatible storage after it is taken and checked in the backup directory; several places,
    /// comma-separated, each get it (and their own retention), and one failing stops none of the others
    /// (exit 2 naming it). S3 is configured from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and,
    /// for stores other than AWS, AWS_ENDPOINT_URL. Without --to, SQLITE_VOL_BACKUP_TO (as set for the
    /// service) also gets a copy.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX[,…]")]
    pub to: Option<String>,
    /// Encrypt what is sent to --to (or SQLITE_VOL_BACKUP_TO) to this age X25519 recipient (`age1…`);
    /// repeat it or separate several with commas. Default: SQLITE_VOL_BACKUP_RECIPIENTS.
    #[arg(long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,
    /// Afterwards keep only the newest N backups, in the backup directory and at --to (the new one always
    /// stays).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Check the backup with a full integrity_check instead of quick_check.
    #[arg(long)]
    pub full_check: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: a file, or s3://BUCKET/PREFIX/NAME.db. With --latest: a directory or
    /// s3://BUCKET/PREFIX to take the newest backup from (default: SQLITE_VOL_RESTORE_FROM, else the backup
    /// directory).
    #[arg(value_name = "BACKUP")]
    pub source: Option<String>,
    /// Restore the newest backup of the app found at BACKUP (a directory or s3://BUCKET/PREFIX).
    #[arg(long)]
    pub latest: bool,
    /// Restore only when there is no database yet (a new machine or an empty volume); otherwise do
    /// nothing and exit 0. Needs no confirmation, since nothing is replaced.
    #[arg(long)]
    pub if_db_not_exists: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Restore even if the backup belongs to another application.
    #[arg(long)]
    pub force: bool,
    /// Do not back up the current database first.
    #[arg(long)]
    pub no_safety_backup: bool,
    /// Verify the backup with a full integrity_check instead of quick_check.
    #[arg(long)]
    pub full_check: bool,
    /// The service's migrations: a backup whose schema is newer than the newest of them is refused.
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup file, or s3://BUCKET/PREFIX/NAME.db (downloaded to a temporary folder first).
    pub file: PathBuf,
    /// Run a full integrity_check instead of quick_check (`--full` is accepted too).
    #[arg(long, alias = "full")]
    pub full_check: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where to look: a directory or s3://BUCKET/PREFIX (default: the backup directory).
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX")]
    pub from: Option<String>,
    /// Do not read the files: "verified" then only means a manifest is present and the size matches it.
    #[arg(long)]
    pub fast: bool,
    /// Object storage too: download each backup (decrypting it with --identity when it is encrypted) into a
    /// temporary folder and verify it as a local one (checksum and quick_check).
    #[arg(long, conflicts_with = "fast")]
    pub verify: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// How many of the newest backups to keep (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// Where to prune: a directory or s3://BUCKET/PREFIX (default: the backup directory).
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX")]
    pub from: Option<String>,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Run a full integrity_check (reads every page and index) instead of quick_check (`--full` is
    /// accepted too).
    #[arg(long, alias = "full")]
    pub full_check: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// SQL migrations (`V1__name.sql`, …) to apply to the new database.
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask for the file name to be typed back (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Reset even a database on a persistent volume inside a container (where production data lives).
    #[arg(long)]
    pub force: bool,
    /// Do not take a safety backup first (`--no-backup` is accepted too).
    #[arg(long, alias = "no-backup")]
    pub no_safety_backup: bool,
    /// `--json`.
    #[command(flatten)]
    pub out: Output,
    /// `--wait SECS`.
    #[command(flatten)]
    pub lock: LockWait,
}

/// `healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `sqlite-vol.1` and one `sqlite-vol-<command>.1` per subcommand into DIR instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
