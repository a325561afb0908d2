//! Kills during the migration tools: SIGKILL `sqlite-vol migrate plan`, `migrate repair` and `migrate
//! back` at random moments on a database big enough to have a middle. A killed plan leaves the live file
//! byte-identical and its copy is removed by the next plan; a killed repair leaves the checksum and its
//! audit record both old or both new; a killed back leaves the database wholly as it was (at V2) or wholly
//! restored (at V1). The maintenance lock is free after every kill, and integrity holds.

use std::path::Path;

use sha2::Digest;

use super::maint::{
    cli, digest, integrity, kill_within, lock_free, make_big, migration_dirs, reset, timed,
};
use super::{Config, Report};
use crate::support::Rng;

const AREA: &str = "kill during migration tools";

fn sha(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok(hex::encode(sha2::Sha256::digest(bytes)))
}

fn plan_copies(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".sqlite-vol-plan-")
                })
                .count()
        })
        .unwrap_or(0)
}

/// (checksum of V1 in the history, audit records of repairs).
fn repair_state(db: &Path) -> Result<(String, i64), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let sum: String = c
        .query_row(
            "SELECT checksum FROM refinery_schema_history WHERE version = 1",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let has: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = '_sqlite_vol_migration_repairs'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let audits: i64 = if has {
        c.query_row(
            "SELECT count(*) FROM _sqlite_vol_migration_repairs",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?
    } else {
        0
    };
    Ok((sum, audits))
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    let mut rng = Rng::new(cfg.seed ^ 0x6d69_6774);
    let (m1, m2) = migration_dirs(root).map_err(|e| e.to_string())?;
    let m1c = root.join("m1c");
    std::fs::create_dir_all(&m1c).map_err(|e| e.to_string())?;
    let v1 = std::fs::read_to_string(m1.join("V1__big.sql")).map_err(|e| e.to_string())?;
    std::fs::write(
        m1c.join("V1__big.sql"),
        format!("-- The big table (comment added later).\n{v1}"),
    )
    .map_err(|e| e.to_string())?;
    let live = make_big(&root.join("live"), &m1, cfg.big_mib, "old")?;
    let live_dir = root.join("live");
    let pristine = root.join("pristine.db");
    std::fs::copy(&live, &pristine).map_err(|e| e.to_string())?;
    let pristine_sha = sha(&pristine)?;
    let (mut bad_integrity, mut stuck_locks, mut mid_kills) = (0u64, 0u64, 0u64);
    let mut common = |db: &Path| {
        if integrity(db) != "ok" {
            bad_integrity += 1;
        }
        if !lock_free(db) {
            stuck_locks += 1;
        }
    };

    // Plans: the live file never changes; a killed plan's copy is removed by the next one.
    let plan = || cli(&["migrate", "--dir", &m2.to_string_lossy(), "plan"], &live);
    let t_plan = timed(plan())?;
    let (mut plan_changed, mut copies_left) = (0u64, 0u64);
    for _ in 0..cfg.maint_kills {
        mid_kills += u64::from(kill_within(plan(), t_plan, &mut rng)?);
        if sha(&live)? != pristine_sha {
            plan_changed += 1;
        }
        common(&live);
    }
    timed(plan())?;
    copies_left += plan_copies(&live_dir) as u64;

    // Repairs: checksum and audit record change together or not at all.
    reset(&live, &pristine)?;
    let old_sum = repair_state(&live)?.0;
    let repair = || {
        cli(
            &[
                "migrate",
                "--dir",
                &m1c.to_string_lossy(),
                "repair",
                "1",
                "--reason",
                "campaign",
            ],
            &live,
        )
    };
    let t_repair = timed(repair())?;
    let (mut repaired, mut unrepaired, mut torn_repairs) = (0u64, 0u64, 0u64);
    for _ in 0..cfg.maint_kills {
        reset(&live, &pristine)?;
        mid_kills += u64::from(kill_within(repair(), t_repair, &mut rng)?);
        match repair_state(&live)? {
            (sum, 0) if sum == old_sum => unrepaired += 1,
            (sum, 1) if sum != old_sum => repaired += 1,
            _ => torn_repairs += 1,
        }
        common(&live);
    }

    // Back: migrate to V2 (safety backup first), mark the content, then kill the way back.
    reset(&live, &pristine)?;
    timed(cli(&["migrate", "--dir", &m2.to_string_lossy()], &live))?;
    rusqlite::Connection::open(&live)
        .and_then(|c| c.execute("UPDATE marker SET v = 'migrated'", []))
        .map_err(|e| e.to_string())?;
    let at_v2 = root.join("at-v2.db");
    {
        let c = rusqlite::Connection::open(&live).map_err(|e| e.to_string())?;
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| e.to_string())?;
    }
    std::fs::copy(&live, &at_v2).map_err(|e| e.to_string())?;
    let (old_digest, v2_digest) = (digest(&pristine)?, digest(&at_v2)?);
    let backups = live_dir.join("backups");
    let keep: Vec<_> = sqlite_vol::manifest::list(&backups, "campaign")
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|e| e.path)
        .collect();
    let prune_new = || {
        for e in sqlite_vol::manifest::list(&backups, "campaign").unwrap_or_default() {
            if !keep.contains(&e.path) {
                let _ = std::fs::remove_file(sqlite_vol::manifest::manifest_path(&e.path));
                let _ = std::fs::remove_file(&e.path);
            }
        }
    };
    let back = || {
        cli(
            &["migrate", "--dir", &m2.to_string_lossy(), "back", "--yes"],
            &live,
        )
    };
    let t_back = timed(back())?;
    let (mut went_back, mut stayed, mut torn_backs) = (0u64, 0u64, 0u64);
    for _ in 0..cfg.maint_kills {
        reset(&live, &at_v2)?;
        prune_new();
        mid_kills += u64::from(kill_within(back(), t_back, &mut rng)?);
        let d = digest(&live)?;
        let c = rusqlite::Connection::open(&live).map_err(|e| e.to_string())?;
        let version = sqlite_vol::migrate::schema_version(&c, &live).map_err(|e| e.to_string())?;
        match (d == old_digest, d == v2_digest, version) {
            (true, false, Some(1)) => went_back += 1,
            (false, true, Some(2)) => stayed += 1,
            _ => torn_backs += 1,
        }
        common(&live);
    }

    report.info(
        AREA,
        "database size; uninterrupted plan / repair / back",
        format!(
            "{} MiB; {:.1} s / {:.2} s / {:.1} s",
            cfg.big_mib,
            t_plan.as_secs_f64(),
            t_repair.as_secs_f64(),
            t_back.as_secs_f64()
        ),
    );
    report.info(
        AREA,
        "kills (plan, repair, back); landed mid-operation",
        format!("{}; {mid_kills}", 3 * cfg.maint_kills),
    );
    report.info(
        AREA,
        "repairs killed: done / not done",
        format!("{repaired} / {unrepaired}"),
    );
    report.info(
        AREA,
        "backs killed: wholly restored / wholly as before",
        format!("{went_back} / {stayed}"),
    );
    report.zero(AREA, "plans that changed the live file", plan_changed);
    report.zero(AREA, "plan copies left after the next plan", copies_left);
    report.zero(
        AREA,
        "repairs with checksum and audit out of step",
        torn_repairs,
    );
    report.zero(
        AREA,
        "backs neither whole before nor whole after",
        torn_backs,
    );
    report.zero(AREA, "integrity_check failures", bad_integrity);
    report.zero(AREA, "maintenance locks left stuck", stuck_locks);
    Ok(())
}
