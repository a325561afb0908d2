//! Reading the toolkit's environment variables, strictly.
//!
//! A value that is set but cannot be understood is an error naming the variable, never silently ignored:
//! `SQLITE_VOL_REQUIRE_PERSISTENT=yes-please` must not quietly turn strict mode off.

use std::time::Duration;

use crate::{Error, Result};

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

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
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
    fn booleans_are_strict() {
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes-please"), None);
    }
}
