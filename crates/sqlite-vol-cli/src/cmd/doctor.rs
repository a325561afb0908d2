//! `sqlite-vol doctor`: prints the library's [`sqlite_vol::diagnose()`] findings, each pass / warn / fail
//! (or skip) with its fix; any failure is exit 1. It changes nothing.

use sqlite_vol::{Finding, Level, Subject};

use super::Exit;
use crate::cli::{DbOpts, DoctorArgs};
use crate::ui;

/// Runs every check and prints them; any failure is exit code 1.
pub fn run(opts: &DbOpts, a: &DoctorArgs) -> anyhow::Result<Exit> {
    let findings = match opts.target() {
        Ok(t) => sqlite_vol::diagnose(&Subject {
            location: &t.loc,
            app: &t.app,
            backup_dir: &t.backup_dir,
            settings: &t.settings,
        }),
        Err(e) => vec![Finding::new("location", Level::Fail, ui::render(&e)).fix(
            "set DB_PATH (or <APP>_DB_PATH) to the database directory on a volume, and SQLITE_VOL_APP to the \
             app's name, or pass --db and --app",
        )],
    };
    let worst = sqlite_vol::worst(&findings);
    if a.out.json {
        ui::json(&serde_json::json!({
            "ok": worst != Level::Fail,
            "worst": worst,
            "checks": findings,
        }))?;
    } else {
        for c in &findings {
            let tag = match c.status {
                Level::Pass => "pass",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
                Level::Skip => "skip",
            };
            ui::line(format_args!("{tag}  {:<13} {}", c.name, c.detail))?;
            if let Some(fix) = &c.fix {
                ui::line(format_args!("      {:<13} fix: {fix}", ""))?;
            }
        }
    }
    Ok(if worst == Level::Fail {
        Exit::No
    } else {
        Exit::Ok
    })
}
