//! `sqlite-vol metrics [--textfile PATH]`: the database's Prometheus series ([`sqlite_vol::metrics`]),
//! printed, or written whole for node_exporter's textfile collector.

use std::path::PathBuf;

use clap::Args;

use super::{Exit, Target};
use crate::ui;

/// `metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write the series to this file (e.g. `/var/lib/node_exporter/textfile/sqlite_vol.prom`), atomically,
    /// instead of printing them.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

/// Prints (or writes) the series of the target database.
pub fn run(t: &Target, a: &MetricsArgs) -> anyhow::Result<Exit> {
    let text = sqlite_vol::metrics::render_at(&t.loc, &t.backup_dir, &t.app)?;
    match &a.textfile {
        Some(path) => sqlite_vol::metrics::write_textfile(path, &text)?,
        None => ui::line(text.trim_end())?,
    }
    Ok(Exit::Ok)
}
