//! Where the database lives: from the caller, the environment, or the per-user data directory.
//!
//! The order is fixed and documented so that an operator can predict it: an explicit path from the caller
//! (a `--db` flag), `<APP>_DB_PATH`, `DB_PATH`, `DATABASE_URL` (only `sqlite:` URLs), and last the per-user
//! data directory, so that `cargo run` on a laptop works with nothing set. A value that names an existing
//! directory, ends in `/`, or has no `.db`/`.sqlite`/`.sqlite3` extension is a directory, and the database is
//! `<app>.db` inside it. The resolved [`Location`] remembers which of these it came from, so that every log
//! line and status report can say it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where a [`Location`] came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Passed in by the caller (for example a `--db` flag).
    Explicit,
    /// An environment variable, named.
    Env(String),
    /// Nothing was set: the per-user data directory.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Explicit => f.write_str("explicit path (--db)"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Default => f.write_str("default per-user data directory (nothing set)"),
        }
    }
}

/// A resolved database location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The database file.
    pub path: PathBuf,
    /// The directory that holds it (created by [`crate::prepare`] if missing).
    pub dir: PathBuf,
    /// Where the path came from.
    pub source: Source,
}

impl Location {
    /// Resolves the location for `app` from `explicit` and the process environment.
    ///
    /// ```
    /// let loc = sqlite_vol::Location::resolve("accounts", Some("/data/".as_ref()))?;
    /// assert_eq!(loc.path, std::path::Path::new("/data/accounts.db"));
    /// # Ok::<(), sqlite_vol::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable value (a non-`sqlite:` `DATABASE_URL`, an in-memory URL, a bad app
    /// name), [`Error::NoLocation`] when nothing is set and there is no home directory.
    pub fn resolve(app: &str, explicit: Option<&Path>) -> Result<Location> {
        Location::resolve_with(app, explicit, |name| std::env::var(name).ok())
    }

    /// Like [`Location::resolve`], reading variables through `env` instead of the process environment.
    ///
    /// # Errors
    /// As [`Location::resolve`].
    pub fn resolve_with(
        app: &str,
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Location> {
        check_app_name(app)?;
        let app_var = app_var(app);
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());

        let (raw, source) = if let Some(p) = explicit {
            (p.to_path_buf(), Source::Explicit)
        } else if let Some(v) = set(&app_var) {
            (PathBuf::from(v), Source::Env(app_var))
        } else if let Some(v) = set("DB_PATH") {
            (PathBuf::from(v), Source::Env("DB_PATH".into()))
        } else if let Some(v) = set("DATABASE_URL") {
            (parse_sqlite_url(&v)?, Source::Env("DATABASE_URL".into()))
        } else {
            let dirs =
                directories::ProjectDirs::from("", "", app).ok_or_else(|| Error::NoLocation {
                    app_var: app_var.clone(),
                })?;
            (dirs.data_dir().join(""), Source::Default)
        };
        let raw = std::path::absolute(&raw).map_err(|e| Error::io("resolving", &raw, e))?;
        let path = if names_directory(&raw) {
            raw.join(format!("{app}.db"))
        } else {
            raw
        };
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Ok(Location { path, dir, source })
    }

    /// The file name of the database, for messages.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

pub use crate::fsx::{has_content, sidecar, SIDECARS};

/// The app-specific variable: `accounts` → `ACCOUNTS_DB_PATH`, `my-app` → `MY_APP_DB_PATH`.
pub fn app_var(app: &str) -> String {
    format!(
        "{}_DB_PATH",
        app.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

fn check_app_name(app: &str) -> Result<()> {
    let ok = !app.is_empty()
        && app.len() <= 64
        && app
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !app.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            variable: "app name".into(),
            value: app.into(),
            reason: "use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`".into(),
        })
    }
}

/// True when `p` must be read as a directory rather than a database file.
fn names_directory(p: &Path) -> bool {
    if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') {
        return true;
    }
    !matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("db" | "sqlite" | "sqlite3")
    )
}

/// Parses `sqlite:` URLs in the forms sqlx and others use: `sqlite:///abs/x.db`, `sqlite://rel/x.db`,
/// `sqlite:x.db`, with an optional `?query` that is ignored.
fn parse_sqlite_url(url: &str) -> Result<PathBuf> {
    let refuse = |reason: &str| Error::Config {
        variable: "DATABASE_URL".into(),
        value: url.into(),
        reason: reason.into(),
    };
    let Some(rest) = url
        .strip_prefix("sqlite:")
        .or_else(|| url.strip_prefix("sqlite3:"))
    else {
        let scheme = url.split(':').next().unwrap_or("");
        return Err(refuse(&format!(
            "only sqlite: URLs are understood, not `{scheme}:`; set DB_PATH to a directory on a volume instead, \
             or unset DATABASE_URL"
        )));
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    if rest.is_empty() || rest.contains(":memory:") || rest.starts_with("file::memory") {
        return Err(refuse(
            "an in-memory database keeps nothing across restarts; name a file on a volume",
        ));
    }
    Ok(PathBuf::from(rest.strip_prefix("file:").unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn explicit_path_wins_over_every_variable() -> Result<()> {
        let e = env(&[
            ("APP_DB_PATH", "/a/"),
            ("DB_PATH", "/b/"),
            ("DATABASE_URL", "sqlite:///c/x.db"),
        ]);
        let loc = Location::resolve_with("app", Some(Path::new("/z/x.db")), e)?;
        assert_eq!(loc.path, Path::new("/z/x.db"));
        assert_eq!(loc.source, Source::Explicit);
        Ok(())
    }

    #[test]
    fn precedence_is_app_var_then_db_path_then_database_url_then_default() -> Result<()> {
        let all = [
            ("MY_APP_DB_PATH", "/a/"),
            ("DB_PATH", "/b/"),
            ("DATABASE_URL", "sqlite:///c/x.db"),
        ];
        let loc = Location::resolve_with("my-app", None, env(&all))?;
        assert_eq!(
            (loc.path.as_path(), &loc.source),
            (
                Path::new("/a/my-app.db"),
                &Source::Env("MY_APP_DB_PATH".into())
            )
        );
        let loc = Location::resolve_with("my-app", None, env(&all[1..]))?;
        assert_eq!(
            (loc.path.as_path(), &loc.source),
            (Path::new("/b/my-app.db"), &Source::Env("DB_PATH".into()))
        );
        let loc = Location::resolve_with("my-app", None, env(&all[2..]))?;
        assert_eq!(
            (loc.path.as_path(), &loc.source),
            (Path::new("/c/x.db"), &Source::Env("DATABASE_URL".into()))
        );
        let loc = Location::resolve_with("my-app", None, env(&[("HOME", "/home/u")]))?;
        assert_eq!(loc.source, Source::Default);
        assert_eq!(loc.file_name(), "my-app.db");
        Ok(())
    }

    #[test]
    fn empty_variables_count_as_unset() -> Result<()> {
        let loc = Location::resolve_with(
            "app",
            None,
            env(&[("APP_DB_PATH", " "), ("DB_PATH", "/b/")]),
        )?;
        assert_eq!(loc.source, Source::Env("DB_PATH".into()));
        Ok(())
    }

    #[test]
    fn directory_semantics_trailing_slash_no_extension_or_existing_dir() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| Error::io("tempdir", "/tmp", e))?;
        let existing = tmp.path().join("data.db");
        std::fs::create_dir(&existing).map_err(|e| Error::io("mkdir", &existing, e))?;
        let cases = [
            ("/data/", "/data/app.db".to_string()),
            ("/data", "/data/app.db".to_string()),
            ("/data/my.sqlite", "/data/my.sqlite".to_string()),
            ("/data/my.SQLITE3", "/data/my.SQLITE3".to_string()),
            ("/data/store.bin", "/data/store.bin/app.db".to_string()),
            (
                existing.to_str().unwrap_or_default(),
                format!("{}/app.db", existing.display()),
            ),
        ];
        for (value, want) in cases {
            let loc = Location::resolve_with("app", None, env(&[("DB_PATH", value)]))?;
            assert_eq!(loc.path, PathBuf::from(&want), "DB_PATH={value}");
            assert_eq!(loc.dir, loc.path.parent().unwrap_or(Path::new("/")));
        }
        Ok(())
    }

    #[test]
    fn relative_paths_become_absolute() -> Result<()> {
        let loc = Location::resolve_with("app", None, env(&[("DB_PATH", "rel/x.db")]))?;
        assert!(loc.path.is_absolute());
        assert!(loc.path.ends_with("rel/x.db"));
        Ok(())
    }

    #[test]
    fn database_url_forms() -> Result<()> {
        for (url, want) in [
            ("sqlite:///data/x.db", "/data/x.db"),
            ("sqlite:///data/x.db?mode=rwc", "/data/x.db"),
            ("sqlite:/data/x.db", "/data/x.db"),
            ("sqlite://file:/data/x.sqlite", "/data/x.sqlite"),
        ] {
            let loc = Location::resolve_with("app", None, env(&[("DATABASE_URL", url)]))?;
            assert_eq!(loc.path, Path::new(want), "{url}");
        }
        Ok(())
    }

    #[test]
    fn non_sqlite_database_url_is_refused_naming_the_variable() {
        let err = Location::resolve_with("app", None, env(&[("DATABASE_URL", "postgres://h/db")]))
            .expect_err("postgres URL must be refused");
        let msg = err.to_string();
        assert!(
            msg.contains("DATABASE_URL") && msg.contains("postgres:"),
            "{msg}"
        );
        let err = Location::resolve_with("app", None, env(&[("DATABASE_URL", "sqlite::memory:")]))
            .expect_err("memory URL must be refused");
        assert!(err.to_string().contains("in-memory"), "{err}");
    }

    #[test]
    fn bad_app_names_are_refused() {
        for bad in ["", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(
                Location::resolve_with(bad, None, env(&[("DB_PATH", "/d/")])).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn app_var_upper_cases_and_replaces_dashes() {
        assert_eq!(app_var("my-app"), "MY_APP_DB_PATH");
        assert_eq!(app_var("accounts"), "ACCOUNTS_DB_PATH");
    }
}
