//! `migrate back`: shows what going back before the newest migration would lose (rows per table now and in
//! the backup taken before it ran), and with `--yes` restores that backup through the library's restore
//! (verified, a safety backup of the current state first).

use sqlite_vol::RestoreOptions;

use super::args::BackArgs;
use crate::cmd::{wait, Exit, Refused, Target};
use crate::ui;

/// Shows the loss, then restores when `--yes`.
pub fn run(t: &Target, a: &BackArgs) -> anyhow::Result<Exit> {
    let path = &t.loc.path;
    let plan = sqlite_vol::migration::back_plan(path, &t.app, &t.backup_dir)?;
    if !a.out.json || !a.yes {
        let mut lines = vec![format!(
            "going back before {} (applied {}): restoring {} (taken {}, schema {})",
            plan.newest,
            plan.applied_on,
            plan.backup.display(),
            plan.backup_created_at,
            ui::schema(plan.backup_schema)
        )];
        lines.push(format!(
            "  {:<24} {:>10} {:>10}",
            "table", "now", "in backup"
        ));
        let n = |v: Option<u64>| v.map_or("-".to_string(), |c| c.to_string());
        for r in &plan.tables {
            lines.push(format!(
                "  {:<24} {:>10} {:>10}",
                r.table,
                n(r.now),
                n(r.in_backup)
            ));
        }
        lines.push(format!(
            "{} row(s) written since would be lost (and any row changed or deleted since goes back too)",
            plan.rows_lost
        ));
        if a.out.json {
            ui::json(&serde_json::json!({ "plan": plan, "restored": null }))?;
        } else {
            for l in &lines {
                eprintln!("{l}");
            }
        }
    }
    if !a.yes {
        return Err(Refused("nothing was restored: pass --yes to go back".into()).into());
    }
    let opts = RestoreOptions {
        wait: wait(a.lock.wait),
        ..RestoreOptions::new(&t.backup_dir)
    };
    let r = sqlite_vol::migration::back(path, &t.app, &plan, &opts)
        .map_err(|e| t.app_hint(e.into()))?;
    if a.out.json {
        ui::json(&serde_json::json!({ "plan": plan, "restored": r }))?;
    } else {
        ui::line(format_args!(
            "{}: back at schema {} from {}; what was there is kept in {}",
            path.display(),
            ui::schema(r.schema_version),
            r.from.display(),
            r.safety_backup
                .as_ref()
                .map_or("(no safety backup)".into(), |p| p.display().to_string())
        ))?;
        ui::note(
            t.quiet,
            format_args!(
                "a service whose build carries {} applies it again at its next start: deploy one without it \
                 (or with it fixed) before restarting",
                plan.newest
            ),
        );
    }
    Ok(Exit::Ok)
}
