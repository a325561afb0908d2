//! Which database a command works on: the app's name (given, or the file's name), the location resolved
//! exactly as the library resolves it, the backup folder, and the settings read once from the environment.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use sqlite_vol::store::Place;
use sqlite_vol::{Builder, Database, Location};

use crate::cli::DbOpts;

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
        let mut settings = sqlite_vol::Settings::from_env()?;
        if let Some(id) = &self.identity {
            settings.backup_identity = Some(id.clone());
        }
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

    /// How backups are sent and brought back (adoption, encryption keys), from the settings.
    pub fn policy(&self) -> anyhow::Result<sqlite_vol::store::Policy> {
        Ok(sqlite_vol::store::Policy::from_settings(&self.settings)?)
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
