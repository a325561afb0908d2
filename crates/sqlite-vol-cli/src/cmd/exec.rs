//! `exec`: the library's supervisor ([`sqlite_vol::supervise`]) from flags, and the hidden `__child` shim.
//!
//! A refusal before the app starts is printed with its fix and exits 2 (whatever kind of refusal it is), so
//! a container engine's restart policy and an operator see one meaning: "the app never ran". Afterwards the
//! exit status is the app's.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use sqlite_vol::supervise::{self, ExecOptions};

use crate::cli::DbOpts;
use crate::cmd::Exit;

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// SQL migrations (`V1__name.sql`, …) to apply before the app starts (a safety backup first when the
    /// database holds data).
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// A SQL file run once, when the database is new, in the transaction that marks it initialized.
    #[arg(long, value_name = "FILE.sql")]
    pub on_create: Option<PathBuf>,
    /// When there is no database, restore the newest backup from here (a directory or s3://BUCKET/PREFIX;
    /// default SQLITE_VOL_RESTORE_FROM).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub restore_from: Option<String>,
    /// Take a backup this often while the app runs (e.g. 15m; default SQLITE_VOL_BACKUP_INTERVAL).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub backup_interval: Option<std::time::Duration>,
    /// Keep only the newest N scheduled backups (default SQLITE_VOL_BACKUP_KEEP).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub backup_keep: Option<u32>,
    /// Also send every scheduled backup here (default SQLITE_VOL_BACKUP_TO).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub backup_to: Option<String>,
    /// Take a last backup after the app exits.
    #[arg(long)]
    pub backup_on_exit: bool,
    /// Refuse storage that does not survive the container (default SQLITE_VOL_REQUIRE_PERSISTENT).
    #[arg(long)]
    pub require_persistent: bool,
    /// Refuse to create a missing database (default SQLITE_VOL_EXPECT_EXISTING).
    #[arg(long)]
    pub expect_existing: bool,
    /// Do not switch the database to WAL. Online backups then make the app's writers wait while the copy is
    /// taken.
    #[arg(long)]
    pub keep_journal_mode: bool,
    /// Switch to WAL even when the app's SQLite has the WAL-reset bug (3.7.0 to 3.51.2): safe only when the
    /// app writes through a single connection.
    #[arg(long, env = "SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", value_parser = strict_bool,
        num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub wal_despite_old_sqlite: Option<bool>,
    /// Serve the database's Prometheus series on `GET /metrics` at this address while the app runs (e.g.
    /// 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The app's command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `__child`.
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// The supervisor's pid.
    #[arg(long)]
    pub parent: u32,
    /// The command.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

fn strict_bool(v: &str) -> Result<bool, String> {
    sqlite_vol::settings::parse_bool(v.trim())
        .ok_or_else(|| "use 1 or 0 (true/false, yes/no, on/off)".into())
}

fn parse_interval(v: &str) -> Result<std::time::Duration, String> {
    sqlite_vol::settings::parse_duration(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{v:?} is not a duration: use e.g. 30s, 15m, 1h"))
}

/// Runs the app under supervision.
pub fn run(db: &DbOpts, a: &ExecArgs) -> anyhow::Result<Exit> {
    let opts = || -> anyhow::Result<ExecOptions> {
        let target = db.target()?;
        // The environment's settings (read once, in the target), with this command's flags laid over.
        let mut settings = target.settings;
        settings.db = db.db.clone();
        settings.backup_dir = Some(target.backup_dir);
        settings.restore_from = a.restore_from.clone().or(settings.restore_from);
        settings.backup_interval = a.backup_interval.or(settings.backup_interval);
        settings.backup_keep = a.backup_keep.or(settings.backup_keep);
        settings.backup_to = a.backup_to.clone().or(settings.backup_to);
        if a.require_persistent {
            settings.require_persistent = Some(true);
        }
        if a.expect_existing {
            settings.expect_existing = Some(true);
        }
        Ok(ExecOptions {
            app: target.app,
            settings,
            migrations: a.migrations.clone(),
            on_create: a.on_create.clone(),
            keep_journal_mode: a.keep_journal_mode,
            wal_despite_old_sqlite: a.wal_despite_old_sqlite.unwrap_or(false),
            backup_on_exit: a.backup_on_exit,
            shim: std::env::current_exe()?,
            command: a.command.clone(),
            metrics_addr: a.metrics_addr,
        })
    };
    let finished = opts().and_then(|o| Ok(supervise::run(&o)?));
    match finished {
        Ok(f) => Ok(Exit::Code(f.code)),
        Err(err) => {
            eprintln!(
                "sqlite-vol exec: {}{}\nsqlite-vol exec: the app was not started.",
                crate::ui::render(&err),
                super::hint(&err)
            );
            Ok(Exit::Code(2))
        }
    }
}

/// The shim the supervisor starts the app through; returns only when the app could not be started.
pub fn child(a: &ChildArgs) -> Exit {
    Exit::Code(supervise::become_child(a.parent, &a.command))
}
