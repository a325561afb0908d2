//! `sqlite-vol healthcheck`: a liveness probe for a Docker HEALTHCHECK. No scans: it opens the database
//! read-only and has SQLite read its header (`PRAGMA schema_version`). Exit 0 when that answers, 1 for any
//! failure (including a missing database or unknown app).

use std::time::{Duration, Instant};

use super::Exit;
use crate::cli::DbOpts;
use crate::ui;

/// Probes the database; every failure is exit code 1 with the reason on stderr.
pub fn run(opts: &DbOpts) -> anyhow::Result<Exit> {
    let started = Instant::now();
    match probe(opts) {
        Ok(path) => {
            ui::line(format_args!(
                "healthy: {} answered in {} ms",
                path.display(),
                started.elapsed().as_millis()
            ))?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("sqlite-vol: unhealthy: {}", ui::render(&e));
            Ok(Exit::No)
        }
    }
}

fn probe(opts: &DbOpts) -> anyhow::Result<std::path::PathBuf> {
    let t = opts.target()?;
    let path = t.loc.path;
    if !path.is_file() {
        anyhow::bail!("no database file at {} ({})", path.display(), t.loc.source);
    }
    let conn = super::open_read_only(&path, Duration::from_secs(2))?;
    conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))?;
    Ok(path)
}
