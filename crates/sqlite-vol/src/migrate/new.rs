//! The next migration file: `V<n>__<name>.sql` in the migrations folder, numbered one above the highest
//! version there (gaps are left as they are, never filled, since a lower number than what a database
//! already has would be refused as out of order), with a header comment saying what the file is and how
//! it will run. Names refinery would not load are refused before anything is written.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A migration file [`new_migration`] created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    /// The new file.
    pub path: PathBuf,
    /// Its version.
    pub version: i64,
    /// Its name.
    pub name: String,
}

/// Creates the next `V<n>__<name>.sql` in `dir` (creating `dir` if needed) and returns it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("V1__users.sql"), "CREATE TABLE users (id INTEGER PRIMARY KEY);")?;
/// std::fs::write(dir.path().join("V7__notes.sql"), "CREATE TABLE notes (id INTEGER PRIMARY KEY);")?;
/// let made = sqlite_vol::migrate::new_migration(dir.path(), "add_email")?;
/// assert!(made.path.ends_with("V8__add_email.sql"));
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::MigrationRefused`] for a name refinery would not load (letters, digits and underscores only)
/// or one another migration in `dir` already has; [`Error::Io`] when the folder cannot be read or written.
pub fn new_migration(dir: &Path, name: &str) -> Result<Created> {
    let refuse = |reason: String| Error::MigrationRefused {
        path: dir.to_path_buf(),
        action: format!("new migration {name:?}"),
        reason,
    };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        let suggestion: String = name
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        return Err(refuse(format!(
            "a migration name may hold only letters, digits and underscores (refinery loads \
             `V<n>__<name>.sql` files with such names and skips others); try {:?}",
            suggestion.trim_matches('_')
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating migrations folder", dir, e))?;
    let mut highest = 0i64;
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io("reading migrations from", dir, e))?;
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some((version, existing)) = parse(&file) else {
            continue;
        };
        if existing == name {
            return Err(refuse(format!(
                "{file} already has that name; choose another"
            )));
        }
        highest = highest.max(version);
    }
    let version = highest + 1;
    if i32::try_from(version).is_err() {
        return Err(refuse(format!(
            "version {version} is past what refinery numbers (i32)"
        )));
    }
    let file_name = format!("V{version}__{name}.sql");
    // refinery must accept it as written.
    refinery::Migration::unapplied(&format!("V{version}__{name}"), "")
        .ok()
        .filter(|m| m.name() == name)
        .ok_or_else(|| refuse("refinery does not accept that name".into()))?;
    let path = dir.join(&file_name);
    let header = format!(
        "-- {file_name}: {}\n\
         -- Created {} by `sqlite-vol migrate new`.\n\
         -- It runs once per database, in one transaction with any other pending migrations, after a safety\n\
         -- backup. Once applied anywhere, do not edit it: add a new migration for further changes\n\
         -- (comment-only edits can be accepted with `sqlite-vol migrate repair {version} --reason ...`).\n\n",
        name.replace('_', " "),
        crate::clock::now_rfc3339()
    );
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("creating migration file", &path, e))?;
    f.write_all(header.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("writing migration file", &path, e))?;
    Ok(Created {
        path,
        version,
        name: name.into(),
    })
}

/// `V<n>__<name>.sql` (or `U…`) as (n, name).
fn parse(file: &str) -> Option<(i64, &str)> {
    let rest = file.strip_suffix(".sql")?;
    let rest = rest.strip_prefix('V').or_else(|| rest.strip_prefix('U'))?;
    let (num, name) = rest.split_once("__")?;
    let whole = num.split('.').next()?;
    Some((whole.parse().ok()?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refinery_would_skip_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        for bad in ["", "add email", "add-email", "ünï", "a.b"] {
            let e = new_migration(dir.path(), bad).expect_err(bad);
            assert!(
                e.to_string().contains("letters, digits and underscores"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        let made = new_migration(dir.path(), "first")?;
        assert_eq!(made.version, 1);
        assert!(new_migration(dir.path(), "first").is_err());
        Ok(())
    }
}
