//! Every migration known to the folder (or build) and to the database, each in one of four states:
//! applied, pending, divergent (its file changed after it was applied: shown as a diff when the applied
//! text was recorded, else as the two checksums) or unknown (in the database only: a newer build ran).
//! Read-only: works on a connection opened read-only, and on no database at all.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::ledger::{self, Repair};
use super::sqltext::line_diff;
use super::Migrations;
use crate::{Error, Result};

/// The state of one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Applied, and the file is what was applied.
    Applied,
    /// In the folder, not applied yet.
    Pending,
    /// Applied, but the file has changed since.
    Divergent,
    /// Applied, but not in the folder.
    Unknown,
}

/// One migration in a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Version number.
    pub version: i64,
    /// Name (the file's, else the database's).
    pub name: String,
    /// Its state.
    pub state: State,
    /// When it was applied (RFC 3339), if it was.
    pub applied_on: Option<String>,
    /// The checksum recorded in the database, if applied.
    pub checksum: Option<u64>,
    /// The checksum of the file, if in the folder.
    pub file_checksum: Option<u64>,
    /// For a divergent migration whose applied text was recorded: a line diff, applied → file.
    pub changes: Option<Vec<String>>,
}

/// What [`status`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The database file.
    pub path: PathBuf,
    /// Whether it exists.
    pub exists: bool,
    /// The highest applied version.
    pub current: Option<i64>,
    /// Every migration, by version.
    pub migrations: Vec<Entry>,
    /// The audit trail of checksum repairs, oldest first.
    pub repairs: Vec<Repair>,
}

impl Report {
    /// Whether nothing is divergent or unknown (pending is fine).
    pub fn is_clean(&self) -> bool {
        !self
            .migrations
            .iter()
            .any(|e| matches!(e.state, State::Divergent | State::Unknown))
    }

    /// How many migrations are in `state`.
    pub fn count(&self, state: State) -> usize {
        self.migrations.iter().filter(|e| e.state == state).count()
    }
}

/// Compares the history of the database behind `conn` (`None`: there is no database yet) with
/// `migrations`. Changes nothing.
///
/// # Errors
/// [`Error::Sqlite`] when the history cannot be read.
pub fn status(conn: Option<&Connection>, path: &Path, migrations: &Migrations) -> Result<Report> {
    let err = |e| Error::sqlite(path, "reading migration history", e);
    let (history, repairs) = match conn {
        Some(c) => (
            ledger::history(c).map_err(err)?,
            ledger::repairs(c).map_err(err)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut out = Vec::new();
    for h in &history {
        let file = migrations.get(h.version);
        let state = match file {
            None => State::Unknown,
            Some(m) if m.checksum() == h.checksum => State::Applied,
            Some(_) => State::Divergent,
        };
        let changes = match (state, file, conn) {
            (State::Divergent, Some(m), Some(c)) => {
                let old = ledger::text_of(c, h.version, h.checksum).map_err(err)?;
                old.map(|old| {
                    let mut d = around_changes(line_diff(&old, m.sql().unwrap_or_default()), 2);
                    if h.name != m.name() {
                        d.insert(
                            0,
                            format!(
                                "renamed: V{}__{} -> V{}__{}",
                                h.version,
                                h.name,
                                h.version,
                                m.name()
                            ),
                        );
                    }
                    d
                })
            }
            _ => None,
        };
        out.push(Entry {
            version: h.version,
            name: file.map_or_else(|| h.name.clone(), |m| m.name().to_string()),
            state,
            applied_on: Some(h.applied_on.clone()),
            checksum: Some(h.checksum),
            file_checksum: file.map(|m| m.checksum()),
            changes,
        });
    }
    for m in &migrations.list {
        let v = i64::from(m.version());
        if history.iter().any(|h| h.version == v) {
            continue;
        }
        out.push(Entry {
            version: v,
            name: m.name().into(),
            state: State::Pending,
            applied_on: None,
            checksum: None,
            file_checksum: Some(m.checksum()),
            changes: None,
        });
    }
    out.sort_by_key(|e| e.version);
    Ok(Report {
        path: path.to_path_buf(),
        exists: conn.is_some(),
        current: history.iter().map(|h| h.version).max(),
        migrations: out,
        repairs,
    })
}

/// The changed lines of a diff and `context` lines around each, with `...` for what is left out.
fn around_changes(diff: Vec<String>, context: usize) -> Vec<String> {
    let changed: Vec<usize> = (0..diff.len())
        .filter(|&i| !diff[i].starts_with(' '))
        .collect();
    let keep = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = Vec::new();
    for (i, line) in diff.iter().enumerate() {
        if keep(i) {
            out.push(line.clone());
        } else if out.last().is_none_or(|l| l != "...") {
            out.push("...".into());
        }
    }
    out
}
