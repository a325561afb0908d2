//! One module per subcommand, each translating its arguments into library calls and formatting the result;
//! here, what they share: finding the database and app ([`Target`]), outcomes and exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use sqlite_vol::lock::Wait;
use sqlite_vol::rusqlite::{Connection, OpenFlags};
use sqlite_vol::store::Place;
use sqlite_vol::{Builder, Database, Location};

use crate::cli::{Cli, Command, DbOpts};

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
mod migrate;
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
        Some(sqlite_vol::Error::WrongApplication { hint, .. }) if !hint.is_empty() => {
            " (pass --force to restore it anyway)"
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

/// Where the app name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppFrom {
    /// `--app` or `SQLITE_VOL_APP`.
    Given,
    /// The database file's name, because neither was set.
    FileName,
}

/// The database a command works on: app, location, backup directory.
#[derive(Debug, Clone)]
pub struct Target {
    /// The app name.
    pub app: String,
    /// Where the app name came from.
    pub app_from: AppFrom,
    /// The resolved database location.
    pub loc: Location,
    /// Where backups are kept.
    pub backup_dir: PathBuf,
    /// `--quiet`.
    pub quiet: bool,
    /// The toolkit's settings from the environment, read once (the service's own configuration).
    pub settings: sqlite_vol::Settings,
}

/// An app name nobody uses, to ask the library where a database would be before the app is known.
const UNNAMED: &str = "sqlite-vol-unnamed-app";

impl DbOpts {
    /// Resolves the app and the database exactly as the library does.
    ///
    /// Without `--app`/`SQLITE_VOL_APP` the app is the database file's name without extension, which works
    /// only when `--db`, `DB_PATH` or `DATABASE_URL` names a file rather than a directory.
    pub fn target(&self) -> anyhow::Result<Target> {
        let given = self.app.as_deref().map(str::trim).filter(|a| !a.is_empty());
        let (app, app_from) = match given {
            Some(app) => (app.to_string(), AppFrom::Given),
            None => (self.app_from_file_name()?, AppFrom::FileName),
        };
        let settings = sqlite_vol::Settings::from_env()?;
        let loc = Location::resolve(&app, self.db.as_deref())?;
        let backup_dir = self
            .backup_dir
            .clone()
            .or_else(|| settings.backup_dir.clone())
            .map(|d| std::path::absolute(&d).unwrap_or(d))
            .unwrap_or_else(|| sqlite_vol::manifest::default_dir(&loc.path));
        Ok(Target {
            app,
            app_from,
            loc,
            backup_dir,
            quiet: self.quiet,
            settings,
        })
    }

    fn app_from_file_name(&self) -> anyhow::Result<String> {
        let probe = Location::resolve(UNNAMED, self.db.as_deref())?;
        let stem = probe
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem == UNNAMED {
            bail!(
                "cannot tell which application's database to use: the location ({}) is a directory, and \
                 the file in it is named after the app. Pass --app NAME or set SQLITE_VOL_APP, or point --db \
                 at the database file",
                probe.source
            );
        }
        if Location::resolve(&stem, Some(&probe.path)).is_err() {
            bail!(
                "the database file name {:?} is not a usable app name: pass --app NAME or set SQLITE_VOL_APP",
                probe.file_name()
            );
        }
        Ok(stem)
    }
}

impl Target {
    /// A hint to append to an identity refusal when the app name was guessed from the file name.
    pub fn app_hint(&self, err: anyhow::Error) -> anyhow::Error {
        let identity = err.chain().any(|e| {
            matches!(
                e.downcast_ref::<sqlite_vol::Error>(),
                Some(sqlite_vol::Error::WrongApplication { .. })
            )
        });
        if identity && self.app_from == AppFrom::FileName {
            return err.context(format!(
                "refused for app {:?} (a name taken from the database file's name; pass --app NAME or set \
                 SQLITE_VOL_APP if the app is called otherwise)",
                self.app
            ));
        }
        err
    }

    /// `DIR|s3://…` as given, else the backup directory.
    pub fn place(&self, from: Option<&str>) -> anyhow::Result<Place> {
        Ok(match from {
            Some(from) => Place::parse(from)?,
            None => Place::Dir(self.backup_dir.clone()),
        })
    }

    /// The library's startup path as a one-off maintenance command uses it: this database and backup
    /// directory, one connection, no backup schedule and no restore on first start (`init` creates a new
    /// database on purpose; `restore --if-db-not-exists` is the command for that), the maintenance lock
    /// waited for up to `wait` seconds.
    pub fn builder(&self, wait: Option<u64>) -> Builder {
        let mut settings = self.settings.clone();
        settings.restore_from = None;
        settings.backup_interval = None;
        Database::builder(&self.app)
            .settings(&settings)
            .path(self.loc.path.clone())
            .backup_dir(self.backup_dir.clone())
            .lock_wait(Duration::from_secs(wait.unwrap_or(0)))
            .pool_size(1)
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
