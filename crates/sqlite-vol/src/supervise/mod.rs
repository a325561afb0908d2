//! Run an app in any language as a supervised child, with the library's startup guarantees around it.
//!
//! [`run`] is `sqlite-vol exec`: a preflight ([`preflight`]) opens the database through the same
//! [`crate::Builder`] a Rust service uses (locating, volume policy, writable check, restore on first start,
//! expect-existing, migrations with a safety backup, the on-create SQL, scheduled backups), and any refusal
//! returns before a child exists. Then the command starts through a small re-exec shim ([`child`]) that makes
//! the kernel kill it if the supervisor dies; the supervisor forwards signals to it ([`signals`]), reaps
//! orphans when it is PID 1 ([`reap`]), and when the child exits it stops the backup schedule (a backup in
//! progress finishes first), optionally takes a last backup, checkpoints, and returns the child's exit status.
//! It never restarts the child: that is the container engine's job.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::lock::Wait;
use crate::{BackupOptions, Database, Result, Settings};

pub mod child;
pub mod preflight;
pub mod reap;
pub mod signals;

pub use child::{become_child, SHIM_SUBCOMMAND};

/// The variable the child gets: the absolute path of the database file.
pub const DB_VAR: &str = "SQLITE_VOL_DB";

/// Everything `exec` needs.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The app name.
    pub app: String,
    /// The toolkit's settings (database path, persistence policy, backups, restore on first start), as the
    /// builder takes them: read once from the environment by the caller, with its own flags laid over.
    pub settings: Settings,
    /// A folder of SQL migrations (`V1__name.sql`, …).
    pub migrations: Option<PathBuf>,
    /// A SQL file run once, in the transaction that marks a new database initialized.
    pub on_create: Option<PathBuf>,
    /// Leave the journal mode as it is (no switch to WAL).
    pub keep_journal_mode: bool,
    /// Switch to WAL even when a SQLite with the WAL-reset bug is seen.
    pub wal_despite_old_sqlite: bool,
    /// Take a last backup after the child exits.
    pub backup_on_exit: bool,
    /// The executable that understands [`SHIM_SUBCOMMAND`] (normally `sqlite-vol` itself).
    pub shim: PathBuf,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Serve the database's metrics on `GET /metrics` at this address while the app runs.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// What [`run`] ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The exit status to return: the child's, or 128+N when signal N ended it.
    pub code: u8,
}

/// Preflight, then run the command under supervision until it exits.
///
/// # Errors
/// Every refusal of [`preflight::prepare`] (the command is then never started), and [`crate::Error::Child`]
/// when it cannot be started. Failures after the child ran (the last backup, the checkpoint) are logged and
/// do not change the exit status.
pub fn run(opts: &ExecOptions) -> Result<Finished> {
    let db = std::sync::Arc::new(preflight::prepare(opts)?);
    let metrics = match opts.metrics_addr {
        Some(addr) => {
            let db = db.clone();
            Some(crate::metrics::serve(addr, move || {
                crate::metrics::render(&db)
            })?)
        }
        None => None,
    };
    let mut signals = signals::Forwarder::register()?;
    let child = child::spawn(opts, &db.location().path)?;
    let pid = child.id();
    tracing::info!(pid, command = ?opts.command, "started the app");
    child::watch_sqlite(pid, db.location().path.clone());
    let status = signals.supervise(pid);
    let code = reap::exit_code(status);
    tracing::info!(pid, code, "the app exited");
    drop(child);
    drop(metrics);
    match std::sync::Arc::try_unwrap(db) {
        Ok(db) => finish(db, opts),
        Err(_) => {
            tracing::error!("the database is still in use at exit; it closes with the process")
        }
    }
    Ok(Finished { code })
}

/// After the child: stop the schedule (a backup in progress finishes first), checkpoint and close, then
/// optionally take a last backup (and send it where scheduled backups go).
fn finish(db: Database, opts: &ExecOptions) {
    let (path, app, dir) = (
        db.location().path.clone(),
        db.app().to_string(),
        db.backup_dir().to_path_buf(),
    );
    if let Err(e) = db.close() {
        tracing::error!(error = %e, "the checkpoint at exit failed; SQLite replays the WAL at the next open");
    }
    if !opts.backup_on_exit {
        return;
    }
    let keep = opts.settings.backup_keep.map(|k| k as usize);
    let to = crate::store::Destinations::from_settings(&opts.settings);
    let backup = BackupOptions {
        keep,
        wait: Wait::For(Duration::from_secs(60)),
        ..BackupOptions::new(&dir)
    };
    let sent = crate::backup::backup(&path, &app, &backup).and_then(|m| {
        tracing::info!(backup = %m.path.display(), "backup on exit done");
        let to = to?;
        if to.is_empty() {
            return Ok(());
        }
        to.send(m, &app, keep).map(|sent| {
            for s in sent {
                tracing::info!(to = s.to, "backup on exit sent");
            }
        })
    });
    if let Err(e) = sent {
        tracing::error!(error = %e, "the backup on exit failed");
    }
}
