//! Fencing under random timings: instance A runs with scheduled off-site backups to a folder place at a
//! random interval while it writes; at a random moment instance B starts on another volume and restores
//! from the place (taking the next writer generation), sometimes while one of A's backups is in flight;
//! then B backs up. Every listed backup must be B's or from before the takeover, the newest must be B's,
//! and none of A's backups after the takeover may be listed.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlite_vol::store::{lineage, Place};

use super::{Config, Report};
use crate::support::Rng;

const APP: &str = "fencing";
const AREA: &str = "fencing";

fn open(dir: &Path, place: &Path, restore: bool) -> Result<sqlite_vol::Database, String> {
    let mut b = sqlite_vol::Database::builder(APP)
        .path(dir)
        .backup_every(Duration::ZERO, None)
        .backup_to(place.display().to_string());
    if restore {
        b = b.restore_from(place.display().to_string());
    }
    b.open().map_err(|e| format!("open {}: {e}", dir.display()))
}

fn write(db: &sqlite_vol::Database, rows: usize) -> Result<(), String> {
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")?;
        for _ in 0..rows {
            tx.execute("INSERT INTO t(v) VALUES (randomblob(512))", [])?;
        }
        Ok::<_, sqlite_vol::Error>(())
    })
    .map_err(|e| e.to_string())
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let mut rng = Rng::new(cfg.seed ^ 0xfe9c);
    let cycles = cfg.maint_kills * 2;
    let (mut stale_listed, mut newest_not_b, mut b_refused) = (0u64, 0u64, 0u64);
    let mut refused_after = 0u64;
    let t0 = Instant::now();
    for _ in 0..cycles {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let offsite = tmp.path().join("offsite");
        let place = Place::parse(&offsite.display().to_string()).map_err(|e| e.to_string())?;
        let a = open(&tmp.path().join("a"), &offsite, false)?;
        write(&a, 200 + rng.below(2000) as usize)?;
        a.backup_to(&place, None).map_err(|e| e.to_string())?;
        a.backup_every(Duration::from_millis(40 + rng.below(200)), Some(50));
        let writer_stop = std::sync::atomic::AtomicBool::new(false);
        let outcome = std::thread::scope(|s| -> Result<(u64, sqlite_vol::Database), String> {
            let w = s.spawn(|| {
                while !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = write(&a, 20);
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            std::thread::sleep(Duration::from_millis(rng.below(600)));
            let b = open(&tmp.path().join("b"), &offsite, true);
            let b = b?;
            // A keeps trying for a few of its intervals; each is refused.
            std::thread::sleep(Duration::from_millis(200 + rng.below(400)));
            let refused = matches!(
                a.backup_to(&place, None),
                Err(sqlite_vol::Error::TakenOver { .. })
            );
            writer_stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = w.join();
            Ok((u64::from(!refused), b))
        })?;
        refused_after += outcome.0;
        let b = outcome.1;
        let taken = lineage::read_marker(&place, APP)
            .map_err(|e| e.to_string())?
            .ok_or("no marker after the takeover")?;
        std::thread::sleep(Duration::from_millis(1000)); // B's backup gets a later name
        if b.backup_to(&place, None).is_err() {
            b_refused += 1;
        }
        drop(a);
        let listed: Vec<_> = sqlite_vol::manifest::list(&offsite, APP)
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|e| sqlite_vol::manifest::read_manifest(&e.path))
            .collect();
        if listed.first().and_then(|m| m.generation) != Some(taken.generation) {
            newest_not_b += 1;
        }
        stale_listed += listed
            .iter()
            .filter(|m| {
                m.generation < Some(taken.generation) && m.created_at > taken.generation_taken_at
            })
            .count() as u64;
    }
    report.info(
        AREA,
        "takeover cycles (random intervals and moments)",
        cycles,
    );
    report.zero(
        AREA,
        "backups from a stale generation listed after the takeover (must be 0)",
        stale_listed,
    );
    report.zero(
        AREA,
        "cycles whose newest listed backup is not the new writer's (must be 0)",
        newest_not_b,
    );
    report.zero(
        AREA,
        "stale instance's backups accepted after the takeover (must be 0)",
        refused_after,
    );
    report.zero(AREA, "new writer's backups refused (must be 0)", b_refused);
    report.info(AREA, "seconds", t0.elapsed().as_secs());
    Ok(())
}
