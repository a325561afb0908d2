//! What a run measured: lines (one per contender, section and size, with seconds per GiB and peak RSS where
//! the contender is a timed process), targets checked in the same run, the phase timings our processes
//! logged, and the sections that failed. Written to `target/bench/results.json` and `results.md` after
//! every section, so a late failure loses nothing.

use std::path::Path;

use super::proc::Measured;
use super::{median, Config};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// One measured line of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Line {
    pub(crate) section: &'static str,
    pub(crate) contender: String,
    /// The data set's size, for the size-dependent sections.
    pub(crate) size_bytes: Option<u64>,
    pub(crate) value: f64,
    pub(crate) unit: &'static str,
    /// `value / baseline value` where the section has a baseline.
    pub(crate) ratio: Option<f64>,
    /// Median seconds per GiB of the data set, for a timed process.
    pub(crate) secs_per_gib: Option<f64>,
    /// Peak RSS over the runs, in MiB, for a timed process.
    pub(crate) peak_rss_mib: Option<f64>,
    pub(crate) note: String,
}

/// A target checked in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    what: String,
    /// `None` when a contender it needs did not run.
    measured: Option<f64>,
    want: String,
    met: bool,
}

/// A section that failed (the others still ran).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    section: String,
    size_bytes: Option<u64>,
    error: String,
}

/// Timing lines (`*_ms=`) our processes logged at debug level in their last run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phases {
    section: &'static str,
    contender: String,
    size_bytes: Option<u64>,
    lines: Vec<String>,
}

/// Everything measured.
#[derive(Debug, Default, serde::Serialize)]
pub struct Results {
    pub(crate) machine: String,
    pub(crate) sizes_bytes: Vec<u64>,
    pub(crate) runs: usize,
    pub(crate) lines: Vec<Line>,
    pub(crate) targets: Vec<Target>,
    pub(crate) phases: Vec<Phases>,
    pub(crate) failures: Vec<Failure>,
    /// The size the running section measures (set by the driver).
    #[serde(skip)]
    pub(crate) at_size: Option<u64>,
}

/// A contender's runs in a throughput section (empty when skipped).
pub(crate) type Samples = Vec<Measured>;

impl Results {
    /// A line without process figures (rates, latencies).
    pub(crate) fn line(
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
            size_bytes: self.at_size,
            value,
            unit,
            ratio,
            secs_per_gib: None,
            peak_rss_mib: None,
            note: note.into(),
        });
    }

    /// Adds a process's median seconds per GiB and its peak RSS to the last line.
    pub(crate) fn with_process(&mut self, runs: &[Measured], bytes: u64) {
        if let (Some(l), false) = (self.lines.last_mut(), runs.is_empty()) {
            let mut t: Vec<f64> = runs.iter().map(|m| m.secs).collect();
            l.secs_per_gib = Some(median(&mut t) / (bytes as f64 / GIB));
            l.peak_rss_mib = Some(runs.iter().map(|m| m.rss).max().unwrap_or(0) as f64 / MIB);
        }
    }

    /// Records a target `measured >= want` (or `<=` when `at_most`); a NaN `measured` (a contender did not
    /// run) is recorded as not measured.
    pub(crate) fn target(
        &mut self,
        what: impl Into<String>,
        measured: f64,
        want: f64,
        at_most: bool,
    ) {
        let measured = (!measured.is_nan()).then_some(measured);
        let met = measured.is_some_and(|m| if at_most { m <= want } else { m >= want });
        let want = format!("{} {want}", if at_most { "≤" } else { "≥" });
        self.targets.push(Target {
            what: what.into(),
            measured,
            want,
            met,
        });
    }

    /// Throughput lines, one per contender that ran: `bytes` over its median time, with the ratio to
    /// contender `base`, its seconds per GiB and peak RSS. Returns MB/s in `names` order (NaN if skipped).
    pub(crate) fn throughput(
        &mut self,
        section: &'static str,
        names: &[&str],
        samples: &[Samples],
        bytes: u64,
        base: usize,
        note: &str,
    ) -> Vec<f64> {
        let mbps: Vec<f64> = samples
            .iter()
            .map(|s| {
                let mut t: Vec<f64> = s.iter().map(|m| m.secs).collect();
                if t.is_empty() {
                    f64::NAN
                } else {
                    bytes as f64 / 1e6 / median(&mut t)
                }
            })
            .collect();
        for ((name, v), s) in names.iter().zip(&mbps).zip(samples) {
            if s.is_empty() {
                continue;
            }
            let ratio = (!mbps[base].is_nan()).then(|| v / mbps[base]);
            self.line(section, *name, *v, "MB/s", ratio, note);
            self.with_process(s, bytes);
        }
        mbps
    }

    /// Keeps the `*_ms=` lines of our process's log of its last run.
    pub(crate) fn phases(&mut self, section: &'static str, contender: &str, log: &Path) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains("_ms="))
            .map(|l| {
                l.split_once("sqlite_vol")
                    .map_or(l, |(_, r)| r)
                    .trim()
                    .to_string()
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        let size_bytes = self.at_size;
        self.phases.retain(|p| {
            !(p.section == section && p.contender == contender && p.size_bytes == size_bytes)
        });
        self.phases.push(Phases {
            section,
            contender: contender.into(),
            size_bytes,
            lines,
        });
    }

    /// Records a section that failed.
    pub(crate) fn failed(&mut self, section: &str, error: String) {
        eprintln!("bench: section {section} failed: {error}");
        self.failures.push(Failure {
            section: section.into(),
            size_bytes: self.at_size,
            error,
        });
    }

    /// The targets across sizes: for each of our timed lines, time per GiB at the largest size ÷ at the
    /// largest size of at least 1 GiB below it, peak RSS at the largest size, and that ÷ at the smallest.
    pub(crate) fn size_targets(&mut self) {
        let mut sizes = self.sizes_bytes.clone();
        sizes.sort_unstable();
        let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
            return;
        };
        let mid = sizes
            .iter()
            .rev()
            .copied()
            .find(|s| *s < large && *s >= 1 << 30);
        let find = |section: &str, contender: &str, size: u64| {
            self.lines
                .iter()
                .find(|l| {
                    l.section == section && l.contender == contender && l.size_bytes == Some(size)
                })
                .cloned()
        };
        let ours: Vec<Line> = self
            .lines
            .iter()
            .filter(|l| {
                l.size_bytes == Some(large)
                    && l.peak_rss_mib.is_some()
                    && l.contender.starts_with("sqlite-vol")
            })
            .cloned()
            .collect();
        let mut new = Vec::new();
        for l in ours {
            let name = format!("{}: {}", l.section, l.contender);
            if let Some(m) = mid.and_then(|m| find(l.section, &l.contender, m)) {
                let r = l.secs_per_gib.unwrap_or(f64::NAN) / m.secs_per_gib.unwrap_or(f64::NAN);
                new.push((
                    format!(
                        "{name}: time per GiB at {} ÷ at {}",
                        human(large),
                        human(mid.unwrap_or(0))
                    ),
                    r,
                    1.2,
                    true,
                ));
            }
            let rss = l.peak_rss_mib.unwrap_or(f64::NAN);
            new.push((
                format!("{name}: peak RSS at {} (MiB)", human(large)),
                rss,
                100.0,
                true,
            ));
            if small < large {
                if let Some(s) = find(l.section, &l.contender, small) {
                    let r = rss / s.peak_rss_mib.unwrap_or(f64::NAN);
                    new.push((
                        format!("{name}: peak RSS at {} ÷ at {}", human(large), human(small)),
                        r,
                        1.2,
                        true,
                    ));
                }
            }
        }
        for (what, m, want, at_most) in new {
            self.target(what, m, want, at_most);
        }
    }

    /// The Markdown report.
    pub(crate) fn markdown(&self) -> String {
        let sizes: Vec<String> = self.sizes_bytes.iter().map(|s| human(*s)).collect();
        let mut s = format!(
            "Machine: {}; data sets {}; {} runs each, medians; peak RSS is the largest over the runs.\n\n",
            self.machine,
            sizes.join(", "),
            self.runs
        );
        s.push_str("| section | size | contender | median | ratio | s/GiB | peak RSS | note |\n");
        s.push_str("|---|---:|---|---:|---:|---:|---:|---|\n");
        for l in &self.lines {
            let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_default();
            s.push_str(&format!(
                "| {} | {} | {} | {:.1} {} | {} | {} | {} | {} |\n",
                l.section,
                l.size_bytes.map(human).unwrap_or_default(),
                l.contender,
                l.value,
                l.unit,
                opt(l.ratio, &|r| format!("{r:.2}×")),
                opt(l.secs_per_gib, &|v| format!("{v:.2}")),
                opt(l.peak_rss_mib, &|v| format!("{v:.0} MiB")),
                l.note
            ));
        }
        s.push_str("\n| target | measured | wanted | met |\n|---|---:|---|:---:|\n");
        for t in &self.targets {
            let (m, met) = match t.measured {
                Some(m) => (format!("{m:.2}"), if t.met { "yes" } else { "**no**" }),
                None => ("not measured".into(), "—"),
            };
            s.push_str(&format!("| {} | {m} | {} | {met} |\n", t.what, t.want));
        }
        if !self.phases.is_empty() {
            s.push_str("\nPhase timings our processes logged (`SQLITE_VOL_LOG=sqlite_vol=debug`, last run):\n\n");
            for p in &self.phases {
                let at = p.size_bytes.map(human).unwrap_or_default();
                s.push_str(&format!("- {} {at}, {}:\n", p.section, p.contender));
                for l in &p.lines {
                    s.push_str(&format!("  - `{l}`\n"));
                }
            }
        }
        if !self.failures.is_empty() {
            s.push_str("\nSections that failed (the others ran):\n\n");
            for f in &self.failures {
                let at = f
                    .size_bytes
                    .map(|b| format!(" at {}", human(b)))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "- {}{at}: {}\n",
                    f.section,
                    f.error.replace('\n', " ")
                ));
            }
        }
        s
    }

    /// Writes `results.json`, `results.md` and the chart into `out`.
    ///
    /// # Errors
    /// The folder or a file could not be written.
    pub(crate) fn write(&self, cfg: &Config, out: &Path) -> Result<(), String> {
        let e = |e: std::io::Error| format!("{}: {e}", out.display());
        std::fs::create_dir_all(out).map_err(e)?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(out.join("results.json"), json).map_err(e)?;
        std::fs::write(out.join("results.md"), self.markdown()).map_err(e)?;
        if cfg.sizes.len() > 1 || !self.lines.is_empty() {
            super::chart::draw(self, &out.join("chart.svg"))?;
        }
        Ok(())
    }
}

/// `64 MiB`, `1 GiB`, `4 GiB`.
pub(crate) fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(secs: f64, rss_mib: u64) -> Measured {
        Measured {
            secs,
            rss: rss_mib << 20,
        }
    }

    /// Two sizes of one section: ours flat in memory but slower per GiB at the larger size.
    fn two_sizes() -> Results {
        let mut r = Results {
            sizes_bytes: vec![1 << 30, 4 << 30],
            ..Results::default()
        };
        for (size, ours, cp) in [
            (1u64 << 30, m(2.0, 20), m(1.0, 2)),
            (4 << 30, m(12.0, 90), m(4.0, 2)),
        ] {
            r.at_size = Some(size);
            let names = ["sqlite-vol restore", "cp + fsync"];
            r.throughput("restore", &names, &[vec![ours], vec![cp]], size, 1, "");
        }
        r.at_size = None;
        r
    }

    #[test]
    fn size_targets_compare_time_per_gib_and_peak_rss_across_sizes() {
        let mut r = two_sizes();
        r.size_targets();
        let t = |what: &str| {
            r.targets
                .iter()
                .find(|t| t.what.contains(what))
                .cloned()
                .expect(what)
        };
        let time = t("time per GiB at 4 GiB ÷ at 1 GiB");
        assert_eq!(time.measured, Some(1.5));
        assert!(!time.met);
        let peak = t("peak RSS at 4 GiB (MiB)");
        assert_eq!(peak.measured, Some(90.0));
        assert!(peak.met);
        let growth = t("peak RSS at 4 GiB ÷ at 1 GiB");
        assert_eq!(growth.measured, Some(4.5));
        assert!(!growth.met);
        // Only our lines get these targets.
        assert!(!r.targets.iter().any(|t| t.what.contains("cp + fsync")));
    }

    #[test]
    fn a_skipped_contender_leaves_its_target_not_measured_and_its_line_out() {
        let mut r = Results::default();
        let mbps = r.throughput(
            "idle backup",
            &["ours", "cp"],
            &[vec![m(1.0, 10)], vec![]],
            1 << 30,
            1,
            "",
        );
        r.target("ours ÷ cp", mbps[0] / mbps[1], 0.6, false);
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].ratio, None);
        assert_eq!(r.targets[0].measured, None);
        assert!(r.markdown().contains("| ours ÷ cp | not measured |"));
    }

    #[test]
    fn the_table_shows_seconds_per_gib_and_peak_rss_beside_each_time() {
        let r = two_sizes();
        let md = r.markdown();
        assert!(
            md.contains(
                "| restore | 4 GiB | sqlite-vol restore | 357.9 MB/s | 0.33× | 3.00 | 90 MiB |"
            ),
            "{md}"
        );
    }
}
