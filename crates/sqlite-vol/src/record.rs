//! What the last off-site sends and restore drills did, kept in the backup folder so that a restart, the
//! command line, `status`, `doctor` and the metrics all read the same answer.
//!
//! One small JSON file per app and kind, `.<app>.drill.json` and `.<app>.offsite.json`, written whole or not
//! at all (outside the backup naming scheme, so never listed or pruned as a backup). Each holds the last
//! outcome, the last good one and how many of each there were.

use std::path::{Path, PathBuf};

use crate::{clock, fsx, Result};

/// Which outcomes a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Restore drills (see [`crate::drill`]).
    Drill,
    /// Backups sent to another place (see [`crate::store::send_keeping`]).
    Offsite,
}

/// One outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// When it finished (RFC 3339, UTC).
    pub at: String,
    /// The same, in seconds since the Unix epoch.
    pub at_unix: i64,
    /// The backup concerned (its location), or empty when there was none.
    pub backup: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// `ok`, or what failed.
    pub detail: String,
}

impl Outcome {
    /// An outcome finishing now.
    pub fn now(
        backup: impl Into<String>,
        ok: bool,
        duration_ms: u64,
        detail: impl Into<String>,
    ) -> Outcome {
        let t = time::OffsetDateTime::now_utc();
        Outcome {
            at: clock::rfc3339(t),
            at_unix: t.unix_timestamp(),
            backup: backup.into(),
            ok,
            duration_ms,
            detail: detail.into(),
        }
    }
}

/// The outcomes of one kind for one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The last outcome.
    pub last: Option<Outcome>,
    /// The last successful outcome.
    pub last_ok: Option<Outcome>,
    /// How many succeeded.
    pub ok: u64,
    /// How many failed.
    pub error: u64,
}

/// Where the record of `kind` for `app` is kept in the backup folder `dir`.
pub fn path(dir: &Path, app: &str, kind: Kind) -> PathBuf {
    let kind = match kind {
        Kind::Drill => "drill",
        Kind::Offsite => "offsite",
    };
    dir.join(format!(".{app}.{kind}.json"))
}

/// The record of `kind` for `app` in `dir`; empty when there is none (or it cannot be read).
pub fn read(dir: &Path, app: &str, kind: Kind) -> Record {
    std::fs::read(path(dir, app, kind))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds `outcome` to the record of `kind` for `app` in `dir` (created with the folder if needed); returns
/// the record now.
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::NoSpace`] when the record cannot be written.
pub fn note(dir: &Path, app: &str, kind: Kind, outcome: Outcome) -> Result<Record> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("creating directory", dir, e))?;
    let mut r = read(dir, app, kind);
    if outcome.ok {
        r.ok += 1;
        r.last_ok = Some(outcome.clone());
    } else {
        r.error += 1;
    }
    r.last = Some(outcome);
    let json = serde_json::to_vec_pretty(&r).unwrap_or_default();
    fsx::write_atomic(&path(dir, app, kind), &json, "writing the outcome record")?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_add_up_and_the_last_good_one_stays(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        assert_eq!(read(tmp.path(), "a", Kind::Drill), Record::default());
        note(
            tmp.path(),
            "a",
            Kind::Drill,
            Outcome::now("b1", true, 5, "ok"),
        )?;
        let r = note(
            tmp.path(),
            "a",
            Kind::Drill,
            Outcome::now("b2", false, 7, "integrity"),
        )?;
        assert_eq!((r.ok, r.error), (1, 1));
        assert_eq!(r.last_ok.map(|o| o.backup), Some("b1".into()));
        assert_eq!(
            read(tmp.path(), "a", Kind::Drill).last.map(|o| o.detail),
            Some("integrity".into())
        );
        assert_eq!(read(tmp.path(), "a", Kind::Offsite), Record::default());
        Ok(())
    }
}
