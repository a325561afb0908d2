//! Benchmarks side by side: every contender runs in the same process run, interleaved, several times, each
//! timed contender as a process of its own with its peak RSS, and the figures are medians and ratios, so a
//! noisy shared machine flatters no one. The size-dependent sections (idle, online, restore, offsite) run
//! at every size of `--sizes`; the rest once, on the data set nearest 1 GiB. Writes
//! `target/bench/results.json`, `results.md` and `chart.svg` after every section, and a section that fails
//! is reported while the others still run.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod backup;
mod chart;
mod commits;
mod data;
mod exec;
mod groupcommit;
mod offsite;
mod proc;
mod results;
mod scrape;
mod service;

pub use proc::measurer_main;
pub use results::Results;

/// The sections whose cost grows with the database, run at every size.
const SIZED: [&str; 4] = ["idle", "online", "restore", "offsite"];
/// The others, run once.
const ONCE: [&str; 6] = [
    "startup",
    "commits",
    "groupcommit",
    "service",
    "exec",
    "scrape",
];

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sizes of the data sets in bytes, smallest first.
    pub sizes: Vec<u64>,
    /// Runs per contender.
    pub runs: usize,
    /// Where the data sets and copies live.
    pub dir: PathBuf,
    /// Only these sections (empty: all).
    pub only: Vec<String>,
    /// Where the results go.
    pub out: PathBuf,
}

impl Config {
    /// Parses `--sizes 64M,1G,4G` (or `--size 1G`), `--runs N`, `--dir DIR`, `--only a,b`, `--out DIR`.
    ///
    /// # Errors
    /// A usage text.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let usage = format!(
            "usage: bench [--sizes 64M,1G,4G] [--runs 3] [--dir DIR] [--out target/bench] [--only {}]",
            SIZED.iter().chain(&ONCE).copied().collect::<Vec<_>>().join(",")
        );
        let mut c = Config {
            sizes: vec![1 << 30],
            runs: 3,
            dir: std::env::temp_dir().join("sqlite-vol-bench"),
            only: Vec::new(),
            out: PathBuf::from("target/bench"),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let v = it.next().ok_or(usage.clone())?;
            match a.as_str() {
                "--size" | "--sizes" => {
                    c.sizes = v
                        .split(',')
                        .map(parse_size)
                        .collect::<Option<_>>()
                        .ok_or(usage.clone())?;
                    c.sizes.sort_unstable();
                    c.sizes.dedup();
                }
                "--runs" => c.runs = v.parse().ok().filter(|n| *n > 0).ok_or(usage.clone())?,
                "--dir" => c.dir = v.into(),
                "--out" => c.out = v.into(),
                "--only" => c.only = v.split(',').map(str::to_string).collect(),
                _ => return Err(usage),
            }
        }
        if let Some(bad) = c
            .only
            .iter()
            .find(|o| !SIZED.contains(&o.as_str()) && !ONCE.contains(&o.as_str()))
        {
            return Err(format!("no section {bad}; {usage}"));
        }
        Ok(c)
    }

    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }
}

fn parse_size(v: &str) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let (n, mult) = match v.to_ascii_uppercase().chars().last()? {
        'G' => (&v[..v.len() - 1], 1u64 << 30),
        'M' => (&v[..v.len() - 1], 1 << 20),
        'K' => (&v[..v.len() - 1], 1 << 10),
        _ => (v, 1),
    };
    n.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

/// The median of some samples (0 for none).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The q-quantile (0..=1) of sorted-or-not samples.
pub(crate) fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Empties `dir` (creating it if needed) and returns it.
pub(crate) fn fresh(dir: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    Ok(dir.to_path_buf())
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cores} cores ({cpu}), SQLite {}",
        sqlite_vol::rusqlite::version()
    )
}

/// Runs one section, turning an error or a panic into a reported failure, then writes the results so far.
fn section(
    cfg: &Config,
    r: &mut Results,
    name: &str,
    f: impl FnOnce(&mut Results) -> Result<(), String>,
) {
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut *r)));
    let err = match run {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(p) => Some(
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
        ),
    };
    if let Some(e) = err {
        r.failed(name, e);
    }
    if let Err(e) = r.write(cfg, &cfg.out) {
        eprintln!("bench: could not write the results: {e}");
    }
}

/// Runs the benchmarks and prints the table.
///
/// # Errors
/// The data set folder cannot be made (a section that fails is reported in the results instead).
pub fn run(cfg: &Config) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
    // A panic in a section (a tool that would not start) is reported as that section's failure, in one line.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("bench: a section stopped{at}");
    }));
    match std::env::current_exe() {
        Ok(exe) => proc::measure_through(exe),
        Err(e) => {
            eprintln!("bench: cannot find its own binary ({e}): peak RSS includes the bench's own")
        }
    }
    let tools = proc::Tools::find();
    let mut r = Results {
        machine: machine(),
        sizes_bytes: cfg.sizes.clone(),
        runs: cfg.runs,
        ..Results::default()
    };
    // The size-independent sections use the data set nearest 1 GiB.
    let once_size = cfg
        .sizes
        .iter()
        .copied()
        .min_by_key(|s| s.abs_diff(1 << 30))
        .unwrap_or(1 << 30);
    let sized = SIZED.iter().any(|s| cfg.wants(s));
    let once = ONCE.iter().any(|s| cfg.wants(s));
    for &size in &cfg.sizes {
        if !(sized || once && size == once_size) {
            continue;
        }
        r.at_size = Some(size);
        let ds = match data::DataSet::ensure(&cfg.dir, size) {
            Ok(ds) => ds,
            Err(e) => {
                r.failed("data set", e);
                continue;
            }
        };
        eprintln!(
            "bench: data set {} ({} MiB)",
            ds.db.display(),
            ds.bytes >> 20
        );
        let ctx = Ctx {
            cfg,
            ds: &ds,
            tools: &tools,
            size,
        };
        if cfg.wants("idle") {
            section(cfg, &mut r, "idle", |r| backup::idle(&ctx, r));
        }
        if cfg.wants("online") {
            section(cfg, &mut r, "online", |r| backup::online(&ctx, r));
        }
        if cfg.wants("restore") {
            section(cfg, &mut r, "restore", |r| backup::restore(&ctx, r));
        }
        if cfg.wants("offsite") {
            section(cfg, &mut r, "offsite", |r| offsite::run(&ctx, r));
        }
        if size != once_size {
            continue;
        }
        r.at_size = None;
        if cfg.wants("startup") {
            section(cfg, &mut r, "startup", |r| service::startup(cfg, &ds, r));
        }
        if cfg.wants("commits") {
            section(cfg, &mut r, "commits", |r| commits::run(cfg, r));
        }
        if cfg.wants("groupcommit") {
            section(cfg, &mut r, "groupcommit", |r| groupcommit::run(cfg, r));
        }
        if cfg.wants("service") {
            section(cfg, &mut r, "service", |r| service::throughput(cfg, r));
        }
        if cfg.wants("exec") {
            section(cfg, &mut r, "exec", |r| exec::run(cfg, &ds, r));
        }
        if cfg.wants("scrape") {
            section(cfg, &mut r, "scrape", |r| scrape::run(cfg, &ds, r));
        }
    }
    r.at_size = None;
    r.size_targets();
    let _ = std::panic::take_hook();
    r.write(cfg, &cfg.out)?;
    println!("{}", r.markdown());
    eprintln!(
        "bench: wrote {0}/results.json, {0}/results.md and {0}/chart.svg",
        cfg.out.display()
    );
    Ok(())
}

/// What a size-dependent section works on.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) ds: &'a data::DataSet,
    pub(crate) tools: &'a proc::Tools,
    /// The requested size (the data set is about this big).
    pub(crate) size: u64,
}

impl Ctx<'_> {
    /// The log file of one contender's run: `target/bench/logs/<section>-<size>-<slug>.log`.
    pub(crate) fn log(&self, section: &str, contender: &str) -> PathBuf {
        let slug: String = contender
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let slug = slug
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        self.cfg
            .out
            .join("logs")
            .join(format!("{section}-{}m-{slug}.log", self.size >> 20))
    }

    /// A fresh log for a run (the previous run's is replaced).
    pub(crate) fn fresh_log(&self, section: &str, contender: &str) -> PathBuf {
        let log = self.log(section, contender);
        let _ = std::fs::remove_file(&log);
        log
    }
}

/// Ten minutes: no contender at these sizes should take longer.
pub(crate) const LIMIT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &str) -> Vec<String> {
        a.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn sizes_are_parsed_sorted_and_deduplicated() {
        let c = Config::from_args(&args("--sizes 4G,64M,1G,1024M --runs 1")).expect("parses");
        assert_eq!(c.sizes, vec![64 << 20, 1 << 30, 4 << 30]);
        assert!(Config::from_args(&args("--sizes 64M,,1G")).is_err());
        assert!(Config::from_args(&args("--only offsit")).is_err());
    }

    #[test]
    fn a_failing_section_is_reported_and_the_results_so_far_are_written() -> Result<(), String> {
        let out = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut cfg = Config::from_args(&[]).expect("defaults");
        cfg.out = out.path().to_path_buf();
        let mut r = Results::default();
        section(&cfg, &mut r, "idle", |r| {
            r.line("idle backup", "cp + fsync", 1.0, "MB/s", None, "");
            Ok(())
        });
        section(&cfg, &mut r, "offsite", |_| {
            panic!("moto_server is missing")
        });
        section(&cfg, &mut r, "restore", |_| Err("disk full".into()));
        let md =
            std::fs::read_to_string(out.path().join("results.md")).map_err(|e| e.to_string())?;
        assert!(md.contains("| idle backup |  | cp + fsync |"), "{md}");
        assert!(md.contains("- offsite: moto_server is missing"), "{md}");
        assert!(md.contains("- restore: disk full"), "{md}");
        let json =
            std::fs::read_to_string(out.path().join("results.json")).map_err(|e| e.to_string())?;
        assert!(json.contains("\"failures\""));
        Ok(())
    }
}
