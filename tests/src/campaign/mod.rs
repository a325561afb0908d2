//! The campaign: crash cycles, kills during maintenance and during off-site transfers, backups under a
//! foreign writer, hostile environments, bad input at every door, and security checks. Each area adds
//! figures to one [`Report`]; a figure marked "must be 0" that is not zero fails the run.

use std::process::ExitCode;
use std::time::Instant;

mod crash;
mod crypt;
mod doors;
mod exec;
mod fencing;
mod foreign;
pub mod groupcommit;
mod hostile;
mod maint;
mod migtools;
mod observe;
mod offsite;
mod security;

/// How big a run is.
#[derive(Debug, Clone)]
pub struct Config {
    /// Crash cycles of the service.
    pub cycles: usize,
    /// Kills of each maintenance operation.
    pub maint_kills: usize,
    /// Backups under the foreign writer.
    pub foreign_backups: usize,
    /// Inputs per fuzzed door.
    pub inputs: usize,
    /// Size of the big database for maintenance kills, in MiB.
    pub big_mib: usize,
    /// Random seed (printed, so a run can be repeated).
    pub seed: u64,
    /// Only these areas (empty: all).
    pub only: Vec<String>,
}

impl Config {
    /// Parses `--quick`, `--seed N`, `--cycles N`, `--only a,b`.
    ///
    /// # Errors
    /// A usage text.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config {
            cycles: 200,
            maint_kills: 12,
            foreign_backups: 40,
            inputs: 2000,
            big_mib: 128,
            seed: crate::support::Rng::seed_from_os(),
            only: Vec::new(),
        };
        let usage = "usage: campaign [--quick] [--seed N] [--cycles N] [--only crash,maint,offsite,foreign,hostile,doors,security,exec,groupcommit,migtools,fencing,observe,crypt]";
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = || {
                it.next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| usage.to_string())
            };
            match a.as_str() {
                "--quick" => {
                    c.cycles = 20;
                    c.maint_kills = 3;
                    c.foreign_backups = 8;
                    c.inputs = 300;
                    c.big_mib = 48;
                }
                "--seed" => c.seed = num()?,
                "--cycles" => c.cycles = num()? as usize,
                "--only" => {
                    c.only = it
                        .next()
                        .ok_or(usage)?
                        .split(',')
                        .map(str::to_string)
                        .collect();
                }
                _ => return Err(usage.into()),
            }
        }
        Ok(c)
    }

    fn wants(&self, area: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == area)
    }
}

/// One figure of the campaign.
#[derive(Debug, Clone)]
pub struct Row {
    area: &'static str,
    figure: String,
    value: String,
    /// `Some(failed)` for a figure that must be 0.
    must_be_zero: Option<bool>,
}

/// All figures of a run.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// A figure for information.
    pub fn info(&mut self, area: &'static str, figure: impl Into<String>, value: impl ToString) {
        self.rows.push(Row {
            area,
            figure: figure.into(),
            value: value.to_string(),
            must_be_zero: None,
        });
    }

    /// A figure that must be zero.
    pub fn zero(&mut self, area: &'static str, figure: impl Into<String>, value: u64) {
        self.rows.push(Row {
            area,
            figure: figure.into(),
            value: value.to_string(),
            must_be_zero: Some(value != 0),
        });
    }

    /// A check that must hold: recorded as a must-be-zero failure count of 0 or 1, with the reason printed.
    pub fn check(
        &mut self,
        area: &'static str,
        figure: impl Into<String>,
        result: Result<(), String>,
    ) {
        let figure = figure.into();
        if let Err(why) = &result {
            eprintln!("FAIL [{area}] {figure}: {why}");
        }
        self.zero(area, figure, u64::from(result.is_err()));
    }

    fn failed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.must_be_zero == Some(true))
            .count()
    }

    fn markdown(&self) -> String {
        let mut s = String::from("| area | figure | value | must be 0 |\n|---|---|---:|:---:|\n");
        for r in &self.rows {
            let flag = match r.must_be_zero {
                None => "",
                Some(false) => "yes ✓",
                Some(true) => "yes ✗ FAILED",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.area, r.figure, r.value, flag
            ));
        }
        s
    }
}

/// One area of the campaign.
type Area = fn(&Config, &mut Report) -> Result<(), String>;

/// Runs the campaign and prints the table.
pub fn run(cfg: &Config) -> ExitCode {
    let started = Instant::now();
    eprintln!("campaign: seed {} ({cfg:?})", cfg.seed);
    let mut report = Report::default();
    let areas: [(&str, Area); 13] = [
        ("crash", crash::run),
        ("maint", maint::run),
        ("offsite", offsite::run),
        ("foreign", foreign::run),
        ("hostile", hostile::run),
        ("doors", doors::run),
        ("security", security::run),
        ("exec", exec::run),
        ("groupcommit", groupcommit::run),
        ("migtools", migtools::run),
        ("fencing", fencing::run),
        ("observe", observe::run),
        ("crypt", crypt::run),
    ];
    let mut broken = 0;
    for (name, area) in areas {
        if !cfg.wants(name) {
            continue;
        }
        let t = Instant::now();
        eprintln!("campaign: {name} …");
        if let Err(e) = area(cfg, &mut report) {
            eprintln!("campaign: {name} could not run: {e}");
            report.zero("campaign", format!("{name}: area aborted"), 1);
            broken += 1;
        }
        eprintln!(
            "campaign: {name} done in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    println!("{}", report.markdown());
    let failed = report.failed();
    let checks = report
        .rows
        .iter()
        .filter(|r| r.must_be_zero.is_some())
        .count();
    println!(
        "seed {}, {:.0} s; reproduce with --seed {}",
        cfg.seed,
        started.elapsed().as_secs_f64(),
        cfg.seed
    );
    println!("campaign: {} passed, {} failed", checks - failed, failed);
    match (broken, failed) {
        (0, 0) => ExitCode::SUCCESS,
        (0, _) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}
