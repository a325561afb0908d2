//! Benchmarks side by side: every contender runs in the same process run, interleaved, several times, and
//! the figures are medians and ratios, so a noisy shared machine flatters no one. Writes
//! `target/bench/results.json` and prints a Markdown table.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod backup;
mod commits;
mod data;
mod exec;
mod groupcommit;
mod offsite;
mod scrape;
mod service;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Config {
    /// Size of the data set in bytes.
    pub size: u64,
    /// Runs per contender.
    pub runs: usize,
    /// Where the data set and copies live.
    pub dir: PathBuf,
    /// Only these sections (empty: all).
    pub only: Vec<String>,
}

impl Config {
    /// Parses `--size 1G|256M`, `--runs N`, `--dir DIR`, `--only a,b`.
    ///
    /// # Errors
    /// A usage text.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let usage = "usage: bench [--size 1G] [--runs 3] [--dir DIR] [--only idle,online,restore,startup,commits,groupcommit,service,offsite,exec,scrape]";
        let mut c = Config {
            size: 1 << 30,
            runs: 3,
            dir: std::env::temp_dir().join("sqlite-vol-bench"),
            only: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let v = it.next().ok_or(usage)?;
            match a.as_str() {
                "--size" => c.size = parse_size(v).ok_or(usage)?,
                "--runs" => c.runs = v.parse().ok().filter(|n| *n > 0).ok_or(usage)?,
                "--dir" => c.dir = v.into(),
                "--only" => c.only = v.split(',').map(str::to_string).collect(),
                _ => return Err(usage.into()),
            }
        }
        Ok(c)
    }

    fn wants(&self, s: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == s)
    }
}

fn parse_size(v: &str) -> Option<u64> {
    let (n, mult) = match v.to_ascii_uppercase().chars().last()? {
        'G' => (&v[..v.len() - 1], 1u64 << 30),
        'M' => (&v[..v.len() - 1], 1 << 20),
        'K' => (&v[..v.len() - 1], 1 << 10),
        _ => (v, 1),
    };
    n.parse::<f64>().ok().map(|n| (n * mult as f64) as u64)
}

/// One measured line of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    section: &'static str,
    contender: String,
    value: f64,
    unit: &'static str,
    /// `value / baseline value` where the section has a baseline.
    ratio: Option<f64>,
    note: String,
}

/// A target checked in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    what: String,
    measured: f64,
    want: String,
    met: bool,
}

/// Everything measured.
#[derive(Debug, Default, serde::Serialize)]
pub struct Results {
    machine: String,
    size_bytes: u64,
    runs: usize,
    lines: Vec<Line>,
    targets: Vec<Target>,
}

impl Results {
    fn line(
        &mut self,
        section: &'static str,
        contender: impl Into<String>,
        value: f64,
        unit: &'static str,
        ratio: Option<f64>,
        note: impl Into<String>,
    ) {
        self.lines.push(Line {
            section,
            contender: contender.into(),
            value,
            unit,
            ratio,
            note: note.into(),
        });
    }

    /// Records a target `measured >= want` (or `<=` when `at_most`).
    fn target(&mut self, what: impl Into<String>, measured: f64, want: f64, at_most: bool) {
        let met = if at_most {
            measured <= want
        } else {
            measured >= want
        };
        let want = format!("{} {want}", if at_most { "≤" } else { "≥" });
        self.targets.push(Target {
            what: what.into(),
            measured,
            want,
            met,
        });
    }

    /// Throughput lines, one per contender: `bytes` over each contender's median time, with the ratio to
    /// contender `base`. Returns the MB/s figures in `names` order.
    fn mb_per_s(
        &mut self,
        section: &'static str,
        names: &[&str],
        times: &mut [Vec<f64>],
        bytes: u64,
        base: usize,
        note: &str,
    ) -> Vec<f64> {
        let mbps: Vec<f64> = times
            .iter_mut()
            .map(|t| bytes as f64 / 1e6 / median(t))
            .collect();
        for (name, v) in names.iter().zip(&mbps) {
            self.line(section, *name, *v, "MB/s", Some(v / mbps[base]), note);
        }
        mbps
    }

    fn markdown(&self) -> String {
        let mut s = format!(
            "Machine: {}; data set {} MiB; {} runs each, medians.\n\n",
            self.machine,
            self.size_bytes >> 20,
            self.runs
        );
        s.push_str("| section | contender | median | ratio | note |\n|---|---|---:|---:|---|\n");
        for l in &self.lines {
            let ratio = l.ratio.map(|r| format!("{r:.2}×")).unwrap_or_default();
            s.push_str(&format!(
                "| {} | {} | {:.1} {} | {} | {} |\n",
                l.section, l.contender, l.value, l.unit, ratio, l.note
            ));
        }
        s.push_str("\n| target | measured | wanted | met |\n|---|---:|---|:---:|\n");
        for t in &self.targets {
            s.push_str(&format!(
                "| {} | {:.2} | {} | {} |\n",
                t.what,
                t.measured,
                t.want,
                if t.met { "yes" } else { "**no**" }
            ));
        }
        s
    }
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

/// Runs the benchmarks and prints the table.
///
/// # Errors
/// Why a section could not run.
pub fn run(cfg: &Config) -> Result<(), String> {
    std::fs::create_dir_all(&cfg.dir).map_err(|e| e.to_string())?;
    let mut r = Results {
        machine: machine(),
        size_bytes: cfg.size,
        runs: cfg.runs,
        ..Results::default()
    };
    let ds = data::DataSet::ensure(&cfg.dir, cfg.size)?;
    eprintln!(
        "bench: data set {} ({} MiB)",
        ds.db.display(),
        ds.bytes >> 20
    );
    if cfg.wants("idle") {
        backup::idle(cfg, &ds, &mut r)?;
    }
    if cfg.wants("online") {
        backup::online(cfg, &ds, &mut r)?;
    }
    if cfg.wants("restore") {
        backup::restore(cfg, &ds, &mut r)?;
    }
    if cfg.wants("startup") {
        service::startup(cfg, &ds, &mut r)?;
    }
    if cfg.wants("commits") {
        commits::run(cfg, &mut r)?;
    }
    if cfg.wants("groupcommit") {
        groupcommit::run(cfg, &mut r)?;
    }
    if cfg.wants("service") {
        service::throughput(cfg, &mut r)?;
    }
    if cfg.wants("offsite") {
        offsite::run(cfg, &ds, &mut r)?;
    }
    if cfg.wants("exec") {
        exec::run(cfg, &ds, &mut r)?;
    }
    if cfg.wants("scrape") {
        scrape::run(cfg, &ds, &mut r)?;
    }
    let md = r.markdown();
    println!("{md}");
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&r).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(out.join("results.md"), md).map_err(|e| e.to_string())?;
    eprintln!("bench: wrote target/bench/results.json and results.md");
    Ok(())
}
