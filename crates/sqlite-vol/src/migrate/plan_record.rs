//! The record a rehearsal (`sqlite-vol migrate plan`, [`crate::migration::plan`]) leaves beside the database
//! (`<db>.migration-plan.json`), keyed by each migration's checksum, and startup's refusal of a pending
//! migration whose rehearsal took longer than allowed ([`crate::Builder::migration_limit`],
//! `SQLITE_VOL_MIGRATION_LIMIT`) or that was never rehearsed with its current text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Migrations;
use crate::fsx::sidecar;
use crate::{Error, Result};

/// One migration as rehearsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// `V<n>__<name>`.
    pub migration: String,
    /// Its version.
    pub version: i64,
    /// Its checksum (the rehearsal counts for this text only).
    pub checksum: u64,
    /// How long it took on the copy, commit included.
    pub ms: u64,
}

/// The record [`crate::migration::plan`] leaves beside the database for startup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanRecord {
    /// When the rehearsal ran (RFC 3339).
    pub planned_at: String,
    /// The size of the database rehearsed on.
    pub bytes: u64,
    /// The migrations and their times.
    pub steps: Vec<Step>,
}

/// The record file beside `db`.
pub(crate) fn record_path(db: &Path) -> PathBuf {
    sidecar(db, ".migration-plan.json")
}

/// The last plan recorded beside `db`, if any.
pub fn recorded_plan(db: &Path) -> Option<PlanRecord> {
    serde_json::from_slice(&std::fs::read(record_path(db)).ok()?).ok()
}

impl Migrations {
    /// Refuses when any of `pending` (`V<n>__<name>`) was not rehearsed by [`crate::migration::plan`] with its current text,
    /// or took longer than `limit` when it was.
    ///
    /// # Errors
    /// [`Error::MigrationRefused`] naming the migration and what to do.
    pub(crate) fn check_planned(
        &self,
        db: &Path,
        pending: &[String],
        limit: Duration,
    ) -> Result<()> {
        let record = recorded_plan(db);
        for name in pending {
            let Some(m) = self
                .list
                .iter()
                .find(|m| format!("V{}__{}", m.version(), m.name()) == *name)
            else {
                continue;
            };
            let step = record.as_ref().and_then(|r| {
                r.steps
                    .iter()
                    .find(|s| s.version == i64::from(m.version()) && s.checksum == m.checksum())
            });
            let reason = match step {
                None => format!(
                    "it was never rehearsed with its current text, and a limit of {limit:?} on migration time is \
                     set (SQLITE_VOL_MIGRATION_LIMIT). Run `sqlite-vol migrate plan` against this database \
                     first; nothing was applied"
                ),
                Some(s) if Duration::from_millis(s.ms) > limit => format!(
                    "its rehearsal took {} ms, over the limit of {} ms (SQLITE_VOL_MIGRATION_LIMIT): it would \
                     hold the write lock that long at startup. Run it in a maintenance window with a higher \
                     limit, or make it cheaper; nothing was applied",
                    s.ms,
                    limit.as_millis()
                ),
                Some(_) => continue,
            };
            return Err(Error::MigrationRefused {
                path: db.to_path_buf(),
                action: format!("migration {name}"),
                reason,
            });
        }
        Ok(())
    }
}
