//! Kills of the observability doors: SIGKILL `sqlite-vol drill` and `sqlite-vol metrics --textfile` at random
//! moments on a database big enough for a drill to have a middle. After each kill the live database is byte
//! for byte what it was and its WAL empty (a drill only reads it), the drill record is whole JSON, the textfile node_exporter
//! reads is either absent or a whole exposition (never a partial one), and the next drill passes and removes
//! what a killed drill left in the temporary folder.

use std::path::Path;
use std::process::Command;

use sha2::Digest;

use super::maint::{kill_within, make_big, migration_dirs, timed};
use super::{Config, Report};
use crate::support::{bin, Rng};

const APP: &str = "campaign";
const AREA: &str = "kill drill and metrics";

fn cli(args: &[&str], db: &Path) -> Command {
    let mut c = Command::new(bin("sqlite-vol"));
    c.args(args).arg("--db").arg(db).arg("--app").arg(APP);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

fn sha(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| hex::encode(sha2::Sha256::digest(b)))
        .unwrap_or_default()
}

fn drill_folders() -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("sqlite-vol-drill-")
                })
                .count()
        })
        .unwrap_or(0)
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    let mut rng = Rng::new(cfg.seed ^ 0x6f62_7376);
    let (m1, _) = migration_dirs(root).map_err(|e| e.to_string())?;
    let live = make_big(&root.join("live"), &m1, cfg.big_mib, "old")?;
    timed(cli(&["backup"], &live))?;
    let before = sha(&live);
    let record = live
        .parent()
        .unwrap_or(root)
        .join("backups")
        .join(format!(".{APP}.drill.json"));
    let textfile = root.join("textfile").join("sqlite_vol.prom");
    std::fs::create_dir_all(root.join("textfile")).map_err(|e| e.to_string())?;

    let t_drill = timed(cli(&["drill"], &live))?;
    let t_metrics = timed(cli(
        &["metrics", "--textfile", &textfile.to_string_lossy()],
        &live,
    ))?;
    let (mut mid, mut changed, mut bad_record, mut partial_textfile) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..cfg.maint_kills * 2 {
        let (c, span) = if i % 2 == 0 {
            (cli(&["drill"], &live), t_drill)
        } else {
            let _ = std::fs::remove_file(&textfile);
            (
                cli(
                    &["metrics", "--textfile", &textfile.to_string_lossy()],
                    &live,
                ),
                t_metrics,
            )
        };
        mid += u64::from(kill_within(c, span, &mut rng)?);
        // A killed reader may leave an empty -wal and -shm behind (SQLite removes them at the next close);
        // the database's bytes and content are what count.
        let wal = std::fs::metadata(format!("{}-wal", live.display())).map_or(0, |m| m.len());
        if sha(&live) != before || wal != 0 {
            changed += 1;
        }
        if record.exists() {
            let whole = std::fs::read(&record)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some();
            bad_record += u64::from(!whole);
        }
        if let Ok(text) = std::fs::read_to_string(&textfile) {
            let whole = text.ends_with('\n')
                && text.contains("sqlite_vol_wal_size_bytes")
                && text.contains("sqlite_vol_maintenance_lock_held");
            partial_textfile += u64::from(!whole);
        }
    }
    let after = cli(&["drill"], &live).status().map_err(|e| e.to_string())?;
    report.info(
        AREA,
        "database size; uninterrupted drill / metrics --textfile",
        format!(
            "{} MiB; {:.2} s / {:.3} s",
            cfg.big_mib,
            t_drill.as_secs_f64(),
            t_metrics.as_secs_f64()
        ),
    );
    report.info(
        AREA,
        "kills (drill, metrics --textfile)",
        cfg.maint_kills as u64 * 2,
    );
    report.info(AREA, "kills that landed mid-operation", mid);
    report.zero(AREA, "live database changed", changed);
    report.zero(AREA, "drill records that are not whole JSON", bad_record);
    report.zero(AREA, "partial textfiles", partial_textfile);
    report.zero(
        AREA,
        "drill failing after the kills",
        u64::from(!after.success()),
    );
    report.zero(
        AREA,
        "temporary drill folders left after the next drill",
        drill_folders() as u64,
    );
    Ok(())
}
