//! What one metrics scrape costs on the data set (1 GiB by default): `sqlite_vol::metrics::render_at`, the
//! path `sqlite-vol metrics` takes (it opens the database read-only for its schema version, stats the files,
//! lists a backup folder of 30 backups and reads the drill and off-site records), timed many times. A
//! service's `GET /metrics` adds only its in-memory counters and the pool's state.

use std::time::Instant;

use super::data::DataSet;
use super::{fresh, median, quantile, Config, Results};

/// Scrapes to time.
const SCRAPES: usize = 300;

/// Times `render_at` on the data set and checks it stays under a millisecond.
///
/// # Errors
/// Why the scrape could not run.
pub fn run(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let backups = fresh(&cfg.dir.join("scrape-backups"))?;
    for day in 1..=30 {
        let name = backups.join(format!("accounts-202611{day:02}T030000Z.db"));
        std::fs::write(&name, b"").map_err(|e| e.to_string())?;
        std::fs::write(sqlite_vol::manifest::manifest_path(&name), b"{}")
            .map_err(|e| e.to_string())?;
    }
    let loc = sqlite_vol::Location::resolve("accounts", Some(&ds.db)).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(SCRAPES);
    let mut bytes = 0;
    for _ in 0..SCRAPES {
        let t = Instant::now();
        let text = sqlite_vol::metrics::render_at(&loc, &backups, "accounts")
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = text.len();
    }
    let p99 = quantile(&mut times.clone(), 0.99);
    let med = median(&mut times);
    let note = format!(
        "{SCRAPES} scrapes of a {} MiB database, 30 backups; {bytes} bytes of text",
        ds.bytes >> 20
    );
    r.line(
        "scrape",
        "metrics render_at (median)",
        med,
        "ms",
        None,
        note.clone(),
    );
    r.line("scrape", "metrics render_at (p99)", p99, "ms", None, note);
    r.target("metrics scrape median (ms)", med, 1.0, true);
    Ok(())
}
