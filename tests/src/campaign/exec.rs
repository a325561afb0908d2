//! `sqlite-vol exec` under kills: a Python child (the system's, with its own sqlite3) commits one row per
//! transaction and prints each id after its COMMIT returns, while the supervisor takes a backup every
//! second. Each cycle SIGKILLs either the child (the supervisor must exit 137 and checkpoint) or the
//! supervisor (the child must end with it). Afterwards every acknowledged id must be in the database,
//! `integrity_check` (stock sqlite3 shell) must pass after every kill, and every backup left must verify.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Config, Report};
use crate::support::{bin, sqlite3_integrity, Rng};

const AREA: &str = "exec";

const WRITER: &str = r#"
import os, sqlite3, sys
db = sqlite3.connect(os.environ['SQLITE_VOL_DB'], timeout=30, isolation_level=None)
db.execute('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)')
while True:
    db.execute('BEGIN IMMEDIATE')
    cur = db.execute('INSERT INTO t (v) VALUES (?)', (os.urandom(200),))
    db.execute('COMMIT')
    print(cur.lastrowid, flush=True)
"#;

/// Whether `pid` has ended (gone, or a zombie).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("Z")
        }
        Err(_) => true,
    }
}

/// The supervisor's child, from `/proc/PID/task/PID/children`.
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (data, backups) = (tmp.path().join("data"), tmp.path().join("backups"));
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let db = data.join("writer.db");
    let mut rng = Rng::new(cfg.seed ^ 0xe7ec);
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let cycles = cfg.maint_kills * 2;
    let (mut integrity, mut wrong_status, mut outlived, mut no_child) = (0u64, 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    for cycle in 0..cycles {
        let mut sup = Command::new(bin("sqlite-vol"))
            .args([
                "exec",
                "-q",
                "--backup-interval",
                "1s",
                "--backup-keep",
                "3",
                "--",
            ])
            .args(["/usr/bin/python3", "-c", WRITER])
            .env("DB_PATH", &db)
            .env("SQLITE_VOL_BACKUP_DIR", &backups)
            .env("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", "1")
            .env_remove("SQLITE_VOL_RESTORE_FROM")
            .env_remove("SQLITE_VOL_BACKUP_TO")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start sqlite-vol exec: {e}"))?;
        let out = sup.stdout.take().ok_or("no stdout")?;
        let sink = acked.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let (Ok(id), Ok(mut a)) = (line.trim().parse::<i64>(), sink.lock()) {
                    a.push(id);
                }
            }
        });
        let sup_pid = sup.id();
        let Some(child) = ({
            let mut c = None;
            wait_until(Duration::from_secs(20), || {
                c = child_of(sup_pid);
                c.is_some()
            });
            c
        }) else {
            no_child += 1;
            let _ = sup.kill();
            let _ = sup.wait();
            continue;
        };
        std::thread::sleep(Duration::from_millis(300 + rng.below(1700)));
        if cycle % 2 == 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &child.to_string()])
                .status();
            let status = sup.wait().map_err(|e| e.to_string())?;
            if status.code() != Some(137) {
                wrong_status += 1;
                eprintln!("campaign exec: cycle {cycle}: supervisor exited {status:?} after its child was killed");
            }
        } else {
            let _ = sup.kill();
            let _ = sup.wait();
            if !wait_until(Duration::from_secs(5), || ended(child)) {
                outlived += 1;
                let _ = Command::new("kill")
                    .args(["-KILL", &child.to_string()])
                    .status();
            }
        }
        let _ = reader.join();
        if sqlite3_integrity(&db) != "ok" {
            integrity += 1;
        }
    }
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    let lost = lost_ids(&db, &acked)?;
    let bad_backups = bad_backups(&backups);
    report.info(AREA, "kill cycles (child, supervisor alternately)", cycles);
    report.info(AREA, "acknowledged commits", acked.len());
    report.zero(AREA, "acknowledged commits lost", lost);
    report.zero(AREA, "integrity failures after a kill", integrity);
    report.zero(
        AREA,
        "supervisor status not 137 after SIGKILL of the child",
        wrong_status,
    );
    report.zero(
        AREA,
        "children that outlived a SIGKILLed supervisor",
        outlived,
    );
    report.zero(AREA, "starts with no child", no_child);
    report.zero(AREA, "backups left that do not verify", bad_backups);
    report.info(
        AREA,
        "duration (s)",
        format!("{:.0}", t0.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// Acknowledged ids missing from the database.
fn lost_ids(db: &Path, acked: &[i64]) -> Result<u64, String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    let mut q = c
        .prepare("SELECT 1 FROM t WHERE id = ?1")
        .map_err(|e| e.to_string())?;
    let mut lost = 0;
    for id in acked {
        if !q.exists([id]).map_err(|e| e.to_string())? {
            lost += 1;
        }
    }
    Ok(lost)
}

/// Backup files (`*.db`) in `dir` that `sqlite-vol verify` refuses.
fn bad_backups(dir: &Path) -> u64 {
    let files = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "db"))
        .filter(|p| {
            let ok = Command::new(bin("sqlite-vol"))
                .args(["--app", "writer", "verify"])
                .arg(p)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("campaign exec: backup {} does not verify", p.display());
            }
            !ok
        })
        .count() as u64
}
