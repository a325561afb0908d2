//! One module per subcommand, each translating its arguments into library calls and formatting the result;
//! here, what they share: outcomes, exit codes and hints (finding the database is [`crate::target`]).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sqlite_vol::lock::Wait;
use sqlite_vol::rusqlite::{Connection, OpenFlags};

use crate::cli::{Cli, Command};
pub use crate::target::Target;

mod backup;
mod check;
mod doctor;
pub mod drill;
pub mod exec;
mod generate;
mod healthcheck;
mod init;
mod list;
pub mod metrics;
pub mod migrate;
mod prune;
mod reset;
mod restore;
mod status;
mod verify;

/// How a subcommand that ran to the end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success: exit 0.
    Ok,
    /// A clean "no" (check failed, doctor found a failure, unhealthy): exit 1.
    No,
    /// This exit status (`exec` returns its app's).
    Code(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> ExitCode {
        match self {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::No => ExitCode::from(1),
            Exit::Code(c) => ExitCode::from(c),
        }
    }
}

/// An error that is a clean "no" rather than a failure (exit 1), e.g. a declined confirmation.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// 1 for refusals (the library's [`sqlite_vol::Error::is_refusal`], or [`Refused`]), 2 for everything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let refusal = err.chain().any(|e| {
        e.downcast_ref::<sqlite_vol::Error>()
            .is_some_and(sqlite_vol::Error::is_refusal)
            || e.is::<Refused>()
    });
    if refusal {
        1
    } else {
        2
    }
}

/// What this command line's flags can do about a library error (the library names no flag), as a sentence
/// to append; empty when nothing.
pub fn hint(err: &anyhow::Error) -> &'static str {
    let lib = err
        .chain()
        .find_map(|e| e.downcast_ref::<sqlite_vol::Error>());
    match lib {
        Some(sqlite_vol::Error::Locked { .. }) => " (or retry with --wait SECS)",
        Some(sqlite_vol::Error::OldSqliteWal { .. }) => {
            " (--keep-journal-mode keeps the rollback journal; --wal-despite-old-sqlite, or \
             SQLITE_VOL_WAL_DESPITE_OLD_SQLITE=1, accepts the risk)"
        }
        _ => "",
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let opts = &cli.db;
    match &cli.command {
        Command::Status(a) => status::run(&opts.target()?, a),
        Command::Doctor(a) => doctor::run(opts, a),
        Command::Backup(a) => backup::run(&opts.target()?, a),
        Command::Restore(a) => restore::run(&opts.target()?, a),
        Command::Verify(a) => verify::run(opts, a),
        Command::List(a) => list::run(&opts.target()?, a),
        Command::Prune(a) => prune::run(&opts.target()?, a),
        Command::Check(a) => check::run(&opts.target()?, a),
        Command::Migrate(a) => migrate::run(&opts.target()?, a),
        Command::Init(a) => init::run(&opts.target()?, a),
        Command::Reset(a) => reset::run(&opts.target()?, a),
        Command::Healthcheck(_) => healthcheck::run(opts),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
        Command::Exec(a) => exec::run(opts, a),
        Command::Child(a) => Ok(exec::child(a)),
        Command::Metrics(a) => metrics::run(&opts.target()?, a),
        Command::Drill(a) => drill::run(&opts.target()?, a),
    }
}

/// Opens `path` read-only (never creating it), waiting up to `busy` for a writer's lock.
pub fn open_read_only(path: &Path, busy: Duration) -> sqlite_vol::rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy)?;
    Ok(conn)
}

/// `--wait SECS` as a lock wait: absent or 0 fails at once.
pub fn wait(secs: Option<u64>) -> Wait {
    match secs {
        None | Some(0) => Wait::No,
        Some(s) => Wait::For(Duration::from_secs(s)),
    }
}
