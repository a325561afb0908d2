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
    /// When there is no database, restore the newest backup from here (a directory or s3://BUCKET/PREFIX).
    #[arg(
        long,
        env = "SQLITE_VOL_RESTORE_FROM",
        value_name = "DIR|s3://BUCKET/PREFIX"
    )]
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
    #[arg(long, env = "SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", value_parser = clap::builder::FalseyValueParser::new())]
    pub wal_despite_old_sqlite: bool,
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

fn parse_interval(v: &str) -> Result<std::time::Duration, String> {
    sqlite_vol::settings::parse_duration(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{v:?} is not a duration: use e.g. 30s, 15m, 1h"))
}

/// Runs the app under supervision.
pub fn run(db: &DbOpts, a: &ExecArgs) -> anyhow::Result<Exit> {
    let opts = || -> anyhow::Result<ExecOptions> {
        let target = db.target()?;
        Ok(ExecOptions {
            app: target.app,
            path: db.db.clone(),
            backup_dir: Some(target.backup_dir),
            migrations: a.migrations.clone(),
            on_create: a.on_create.clone(),
            restore_from: a.restore_from.clone(),
            backup_every: a
                .backup_interval
                .map(|d| (d, a.backup_keep.map(|k| k as usize))),
            backup_to: a.backup_to.clone(),
            require_persistent: a.require_persistent.then_some(true),
            expect_existing: a.expect_existing.then_some(true),
            keep_journal_mode: a.keep_journal_mode,
            wal_despite_old_sqlite: a.wal_despite_old_sqlite,
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
                "sqlite-vol exec: {}\nsqlite-vol exec: the app was not started.",
                crate::ui::render(&err)
            );
            Ok(Exit::Code(2))
        }
    }
}

/// The shim the supervisor starts the app through; returns only when the app could not be started.
pub fn child(a: &ChildArgs) -> Exit {
    Exit::Code(supervise::become_child(a.parent, &a.command))
}
