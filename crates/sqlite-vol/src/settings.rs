//! The toolkit's configuration, read from the environment once, strictly.
//!
//! [`Settings`] holds every setting a service, the command line and the library's builder share. It is read
//! in one place, [`Settings::from_env`]; a value that is set but cannot be understood is an error naming
//! the variable, never silently ignored: `SQLITE_VOL_REQUIRE_PERSISTENT=yes-please` must not quietly turn
//! strict mode off. With the `clap` feature, `Settings` is also a `clap::Args` group that a binary flattens
//! into its own arguments, so each variable is a flag too, with one definition (the database path itself,
//! `<APP>_DB_PATH`, `DB_PATH` and `DATABASE_URL`, is resolved by [`crate::location`], which records where
//! it came from).

use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// `PRAGMA synchronous` in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Synchronous {
    /// Durable across process crashes; a power loss may roll back the last commits. SQLite's recommendation
    /// for WAL, and the default.
    Normal,
    /// Every commit is fsynced: durable across power loss too.
    Full,
}

impl std::str::FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Synchronous, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NORMAL" => Ok(Synchronous::Normal),
            "FULL" => Ok(Synchronous::Full),
            _ => Err("use NORMAL or FULL".into()),
        }
    }
}

/// Every setting of the toolkit; `None` is "not set" (the builder's default applies).
///
/// ```
/// # fn main() -> Result<(), sqlite_vol::Error> {
/// let settings = sqlite_vol::Settings::from_env()?; // strict: a bad value names its variable
/// let builder = sqlite_vol::Database::builder("accounts").settings(&settings);
/// # drop(builder); Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[non_exhaustive]
pub struct Settings {
    /// The database file, or a directory for `<app>.db`. When absent: `<APP>_DB_PATH`, `DB_PATH`, a
    /// `sqlite:` `DATABASE_URL`, else the per-user data directory.
    #[cfg_attr(feature = "clap", arg(long, value_name = "PATH"))]
    pub db: Option<PathBuf>,
    /// Refuse to start when the database is on storage that does not survive the container.
    #[cfg_attr(feature = "clap", arg(long, env = REQUIRE_PERSISTENT, value_parser = flag_bool,
        num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL"))]
    pub require_persistent: Option<bool>,
    /// Refuse to create a database that does not exist yet (the volume should already hold one).
    #[cfg_attr(feature = "clap", arg(long, env = EXPECT_EXISTING, value_parser = flag_bool,
        num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL"))]
    pub expect_existing: Option<bool>,
    /// `PRAGMA synchronous`: NORMAL (default) or FULL (every commit fsynced).
    #[cfg_attr(feature = "clap", arg(long, env = SYNCHRONOUS, value_parser = flag_synchronous, value_name = "MODE"))]
    pub synchronous: Option<Synchronous>,
    /// Connections in the pool (default 8).
    #[cfg_attr(feature = "clap", arg(long, env = POOL_SIZE, value_parser = clap::value_parser!(u32).range(1..)))]
    pub pool_size: Option<u32>,
    /// How long to wait for a pooled connection (default 30s).
    #[cfg_attr(feature = "clap", arg(long, env = TIMEOUT, value_parser = flag_duration, value_name = "DURATION"))]
    pub db_timeout: Option<Duration>,
    /// Folder for scheduled and safety backups (default `backups/` beside the database).
    #[cfg_attr(feature = "clap", arg(long, env = BACKUP_DIR, value_name = "DIR"))]
    pub backup_dir: Option<PathBuf>,
    /// Take a backup this often (`6h`, `30m`); unset or 0 means no scheduled backups.
    #[cfg_attr(feature = "clap", arg(long, env = BACKUP_INTERVAL, value_parser = flag_duration, value_name = "DURATION"))]
    pub backup_interval: Option<Duration>,
    /// How many scheduled backups to keep.
    #[cfg_attr(feature = "clap", arg(long, env = BACKUP_KEEP, value_parser = clap::value_parser!(u32).range(1..)))]
    pub backup_keep: Option<u32>,
    /// Also send every scheduled backup here: `s3://bucket/prefix` (configured by the AWS_* variables) or a
    /// folder on another volume.
    #[cfg_attr(feature = "clap", arg(long, env = BACKUP_TO, value_name = "DIR|s3://BUCKET/PREFIX"))]
    pub backup_to: Option<String>,
    /// On a start with no database (new machine, new volume), restore the newest backup from here first:
    /// `s3://bucket/prefix` or a folder. The log says loudly that it did.
    #[cfg_attr(feature = "clap", arg(long, env = RESTORE_FROM, value_name = "DIR|s3://BUCKET/PREFIX"))]
    pub restore_from: Option<String>,
    /// Refuse to apply, to a database holding data, a pending migration whose rehearsal
    /// (`sqlite-vol migrate plan`) took longer than this, or that was never rehearsed (`30s`, `2m`).
    #[cfg_attr(feature = "clap", arg(long, env = MIGRATION_LIMIT, value_parser = flag_duration, value_name = "DURATION"))]
    pub migration_limit: Option<Duration>,
    /// Take over an off-site place whose lineage marker names another database (logged loudly); without
    /// it such a backup is refused.
    #[cfg_attr(feature = "clap", arg(long = "adopt", env = BACKUP_ADOPT, value_parser = flag_bool,
        num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL"))]
    pub backup_adopt: Option<bool>,
    /// Encrypt backups sent to a place to these age X25519 recipients (`age1…`, comma-separated).
    #[cfg_attr(feature = "clap", arg(long = "recipient", env = BACKUP_RECIPIENTS, value_name = "AGE1…"))]
    pub backup_recipients: Option<String>,
    /// An age identity file (`AGE-SECRET-KEY-1…` lines) that decrypts encrypted backups.
    #[cfg_attr(feature = "clap", arg(long = "identity", env = BACKUP_IDENTITY, value_name = "FILE"))]
    pub backup_identity: Option<PathBuf>,
    /// Run a restore drill this often (`1d`): the newest backup restored into a temporary file and checked;
    /// unset or 0 means no scheduled drills.
    #[cfg_attr(feature = "clap", arg(long, env = DRILL_INTERVAL, value_parser = flag_duration, value_name = "DURATION"))]
    pub drill_interval: Option<Duration>,
    /// A sentinel query a restore drill runs on the restored copy; it must return at least one row.
    #[cfg_attr(feature = "clap", arg(long, env = DRILL_QUERY, value_name = "SQL"))]
    pub drill_query: Option<String>,
    /// Checkpoint (PASSIVE) when the WAL is larger than this (default 64MiB; `512KiB`, `1GiB`, bytes).
    #[cfg_attr(feature = "clap", arg(long, env = WAL_LIMIT, value_parser = flag_size, value_name = "SIZE"))]
    pub wal_limit: Option<u64>,
    /// Checkpoint (PASSIVE) at least this often (default 1m); 0 turns the checkpoint policy off.
    #[cfg_attr(feature = "clap", arg(long, env = CHECKPOINT_INTERVAL, value_parser = flag_duration, value_name = "DURATION"))]
    pub checkpoint_interval: Option<Duration>,
}

impl Settings {
    /// Reads every setting from the environment (the database path excepted: see [`crate::location`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value cannot be understood.
    pub fn from_env() -> Result<Settings> {
        let synchronous = env_str(SYNCHRONOUS)
            .map(|v| {
                v.parse()
                    .map_err(|reason: String| bad(SYNCHRONOUS, &v, &reason))
            })
            .transpose()?;
        Ok(Settings {
            db: None,
            require_persistent: env_bool(REQUIRE_PERSISTENT)?,
            expect_existing: env_bool(EXPECT_EXISTING)?,
            synchronous,
            pool_size: env_count(POOL_SIZE)?,
            db_timeout: env_duration(TIMEOUT)?,
            backup_dir: env_path(BACKUP_DIR),
            backup_interval: env_duration(BACKUP_INTERVAL)?,
            backup_keep: env_count(BACKUP_KEEP)?,
            backup_to: env_str(BACKUP_TO),
            restore_from: env_str(RESTORE_FROM),
            migration_limit: env_duration(MIGRATION_LIMIT)?,
            backup_adopt: env_bool(BACKUP_ADOPT)?,
            backup_recipients: env_str(BACKUP_RECIPIENTS),
            backup_identity: env_path(BACKUP_IDENTITY),
            drill_interval: env_duration(DRILL_INTERVAL)?,
            drill_query: env_str(DRILL_QUERY),
            wal_limit: env_size(WAL_LIMIT)?,
            checkpoint_interval: env_duration(CHECKPOINT_INTERVAL)?,
        })
    }

    /// Each field of `self` that is set, else the one of `base`.
    pub fn or(self, base: Settings) -> Settings {
        Settings {
            db: self.db.or(base.db),
            require_persistent: self.require_persistent.or(base.require_persistent),
            expect_existing: self.expect_existing.or(base.expect_existing),
            synchronous: self.synchronous.or(base.synchronous),
            pool_size: self.pool_size.or(base.pool_size),
            db_timeout: self.db_timeout.or(base.db_timeout),
            backup_dir: self.backup_dir.or(base.backup_dir),
            backup_interval: self.backup_interval.or(base.backup_interval),
            backup_keep: self.backup_keep.or(base.backup_keep),
            backup_to: self.backup_to.or(base.backup_to),
            restore_from: self.restore_from.or(base.restore_from),
            migration_limit: self.migration_limit.or(base.migration_limit),
            backup_adopt: self.backup_adopt.or(base.backup_adopt),
            backup_recipients: self.backup_recipients.or(base.backup_recipients),
            backup_identity: self.backup_identity.or(base.backup_identity),
            drill_interval: self.drill_interval.or(base.drill_interval),
            drill_query: self.drill_query.or(base.drill_query),
            wal_limit: self.wal_limit.or(base.wal_limit),
            checkpoint_interval: self.checkpoint_interval.or(base.checkpoint_interval),
        }
    }

    /// The scheduled backups these settings ask for: (interval, keep), or `None` (unset or 0).
    pub fn schedule(&self) -> Option<(Duration, Option<usize>)> {
        self.backup_interval
            .filter(|d| !d.is_zero())
            .map(|d| (d, self.backup_keep.map(|k| k as usize)))
    }
}

#[cfg(feature = "clap")]
fn flag_bool(v: &str) -> std::result::Result<bool, String> {
    parse_bool(v.trim()).ok_or_else(|| "use 1 or 0 (true/false, yes/no, on/off)".into())
}

#[cfg(feature = "clap")]
fn flag_duration(v: &str) -> std::result::Result<Duration, String> {
    parse_duration(v)
        .ok_or_else(|| "use seconds (30) or a number with ms, s, m, h or d (15m)".into())
}

#[cfg(feature = "clap")]
fn flag_size(v: &str) -> std::result::Result<u64, String> {
    parse_size(v).ok_or_else(|| SIZE_HINT.into())
}

#[cfg(feature = "clap")]
fn flag_synchronous(v: &str) -> std::result::Result<Synchronous, String> {
    v.parse()
}

/// The WAL size past which the checkpoint policy runs a checkpoint at once (and the WAL counts as too large).
pub const DEFAULT_WAL_LIMIT: u64 = 64 << 20;
/// How often the checkpoint policy runs a checkpoint anyway.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// Strict persistence: refuse storage that does not survive the container.
pub const REQUIRE_PERSISTENT: &str = "SQLITE_VOL_REQUIRE_PERSISTENT";
/// Refuse to create a database that does not exist.
pub const EXPECT_EXISTING: &str = "SQLITE_VOL_EXPECT_EXISTING";
/// `NORMAL` (default) or `FULL`.
pub const SYNCHRONOUS: &str = "SQLITE_VOL_SYNCHRONOUS";
/// Connection pool size.
pub const POOL_SIZE: &str = "DB_POOL_SIZE";
/// How long to wait for a pooled connection.
pub const TIMEOUT: &str = "DB_TIMEOUT";
/// Where backups go (default `backups/` beside the database).
pub const BACKUP_DIR: &str = "SQLITE_VOL_BACKUP_DIR";
/// Interval of scheduled backups; unset or `0` means none.
pub const BACKUP_INTERVAL: &str = "SQLITE_VOL_BACKUP_INTERVAL";
/// How many scheduled backups to keep.
pub const BACKUP_KEEP: &str = "SQLITE_VOL_BACKUP_KEEP";
/// Where scheduled backups are also sent: `s3://bucket/prefix` (or another folder).
pub const BACKUP_TO: &str = "SQLITE_VOL_BACKUP_TO";
/// Where to restore the newest backup from when the database does not exist at startup: `s3://bucket/prefix`
/// or a folder.
pub const RESTORE_FROM: &str = "SQLITE_VOL_RESTORE_FROM";
/// The longest a pending migration's rehearsal may have taken for startup to apply it.
pub const MIGRATION_LIMIT: &str = "SQLITE_VOL_MIGRATION_LIMIT";
/// Adopt an off-site place that belongs to another database.
pub const BACKUP_ADOPT: &str = "SQLITE_VOL_BACKUP_ADOPT";
/// age X25519 recipients that backups sent to a place are encrypted to (comma-separated).
pub const BACKUP_RECIPIENTS: &str = "SQLITE_VOL_BACKUP_RECIPIENTS";
/// An age identity file that decrypts encrypted backups.
pub const BACKUP_IDENTITY: &str = "SQLITE_VOL_BACKUP_IDENTITY";

/// Interval of scheduled restore drills; unset or `0` means none.
pub const DRILL_INTERVAL: &str = "SQLITE_VOL_DRILL_INTERVAL";
/// A sentinel query a restore drill must get at least one row from.
pub const DRILL_QUERY: &str = "SQLITE_VOL_DRILL_QUERY";
/// The WAL size past which a checkpoint runs at once, and the WAL counts as too large.
pub const WAL_LIMIT: &str = "SQLITE_VOL_WAL_LIMIT";
/// How often the checkpoint policy runs a PASSIVE checkpoint.
pub const CHECKPOINT_INTERVAL: &str = "SQLITE_VOL_CHECKPOINT_INTERVAL";

const SIZE_HINT: &str = "use bytes (1048576) or a number with KiB, MiB or GiB (64MiB)";

/// A size variable: `1048576` (bytes), `512KiB`, `64MiB`, `1GiB` (also `K`, `M`, `G`); unset is `None`.
///
/// # Errors
/// [`Error::Config`] for anything else.
pub fn env_size(name: &str) -> Result<Option<u64>> {
    var(name)
        .map(|v| parse_size(&v).ok_or_else(|| bad(name, &v, SIZE_HINT)))
        .transpose()
}

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB` (binary units; `K`, `M`, `G`, `KB`, `MB`, `GB` mean the same).
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn bad(name: &str, value: &str, reason: &str) -> Error {
    Error::Config {
        variable: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// A boolean variable: `1/true/yes/on` or `0/false/no/off`; unset is `None`.
///
/// # Errors
/// [`Error::Config`] for anything else.
pub fn env_bool(name: &str) -> Result<Option<bool>> {
    var(name)
        .map(|v| {
            parse_bool(&v).ok_or_else(|| bad(name, &v, "use 1 or 0 (true/false, yes/no, on/off)"))
        })
        .transpose()
}

/// A count variable (a whole number ≥ 1); unset is `None`.
///
/// # Errors
/// [`Error::Config`] for anything else.
pub fn env_count(name: &str) -> Result<Option<u32>> {
    var(name)
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad(name, &v, "use a whole number from 1 up"))
        })
        .transpose()
}

/// A duration variable: `30` (seconds), `500ms`, `30s`, `15m`, `2h`, `1d`; unset is `None`.
///
/// # Errors
/// [`Error::Config`] for anything else.
pub fn env_duration(name: &str) -> Result<Option<Duration>> {
    var(name)
        .map(|v| {
            parse_duration(&v).ok_or_else(|| {
                bad(
                    name,
                    &v,
                    "use seconds (30) or a number with ms, s, m, h or d (15m)",
                )
            })
        })
        .transpose()
}

/// A path variable; unset is `None`.
pub fn env_path(name: &str) -> Option<std::path::PathBuf> {
    var(name).map(Into::into)
}

/// The raw value of a variable, trimmed; unset or empty is `None`.
pub fn env_str(name: &str) -> Option<String> {
    var(name)
}

/// `1/true/yes/on` or `0/false/no/off` (any case); anything else is `None`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses `30`, `500ms`, `30s`, `15m`, `2h`, `1d`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs <= 1e9).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        for bad in ["", "x", "-1", "5 weeks", "1e99", "NaN"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes_in_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5MiB",
            "3 parsecs",
            "99999999999999999999G",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes-please"), None);
    }

    #[test]
    fn set_fields_win_over_the_base() {
        let explicit = Settings {
            pool_size: Some(2),
            ..Settings::default()
        };
        let base = Settings {
            pool_size: Some(9),
            backup_keep: Some(3),
            ..Settings::default()
        };
        let s = explicit.or(base);
        assert_eq!((s.pool_size, s.backup_keep), (Some(2), Some(3)));
    }

    #[test]
    fn a_zero_interval_schedules_nothing() {
        let s = Settings {
            backup_interval: Some(Duration::ZERO),
            ..Settings::default()
        };
        assert_eq!(s.schedule(), None);
        assert!("full".parse::<Synchronous>().is_ok());
        assert!("fast".parse::<Synchronous>().is_err());
    }
}
