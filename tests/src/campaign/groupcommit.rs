//! Group commit under SIGKILL: a child process writes through the library's async writer from 32 tasks at
//! `synchronous=FULL`, printing each write only once it was acknowledged, and is SIGKILLed at a random
//! moment while dozens of writes are queued or in a batch. Every acknowledged write must be in the database
//! afterwards, and the stock sqlite3 shell's `integrity_check` must say ok after every kill.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlite_vol::{AsyncDatabase, Database, Synchronous};

use super::{Config, Report};
use crate::support::{sqlite3_integrity, Rng};

/// The hidden first argument that makes the campaign binary the writer child.
pub const CHILD_ARG: &str = "__groupcommit-writer";

const AREA: &str = "groupcommit";

/// The writer child: `campaign __groupcommit-writer DIR CYCLE`. Writes until killed (or 60 s).
pub fn child(args: &[String]) -> Result<(), String> {
    let [dir, cycle] = args else {
        return Err(format!("usage: campaign {CHILD_ARG} DIR CYCLE"));
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let db = Database::builder("groupcommit")
            .ignore_env()
            .path(Path::new(dir).join("groupcommit.db"))
            .synchronous(Synchronous::Full)
            .open()
            .map_err(|e| e.to_string())?;
        let db = AsyncDatabase::new(db).map_err(|e| e.to_string())?;
        db.write(|c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS acks (id TEXT PRIMARY KEY, v BLOB)")?;
            Ok::<_, sqlite_vol::Error>(())
        })
        .await
        .map_err(|e| e.to_string())?;
        let tasks: Vec<_> = (0..32)
            .map(|t| {
                let (db, cycle) = (db.clone(), cycle.clone());
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    for n in 0.. {
                        if Instant::now() > deadline {
                            break;
                        }
                        let id = format!("c{cycle}-t{t}-n{n}");
                        let key = id.clone();
                        let w = db
                            .write(move |c| {
                                c.execute(
                                    "INSERT INTO acks (id, v) VALUES (?1, randomblob(64))",
                                    [&key],
                                )?;
                                Ok::<_, sqlite_vol::Error>(())
                            })
                            .await;
                        if w.is_ok() {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "ack {id}").and_then(|()| out.flush());
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    })
}

/// How many of `acked` are missing from the database in `dir`.
fn missing(dir: &Path, acked: &[String]) -> Result<u64, String> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("groupcommit.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| e.to_string())?;
    let mut q = c
        .prepare("SELECT count(*) FROM acks WHERE id = ?1")
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    for id in acked {
        let found: i64 = q.query_row([id], |r| r.get(0)).map_err(|e| e.to_string())?;
        n += u64::from(found == 0);
    }
    Ok(n)
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng::new(cfg.seed ^ 0x6763);
    let kills = (cfg.cycles / 8).max(3);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut acked: Vec<String> = Vec::new();
    let (mut lost, mut corrupt, mut empty_cycles) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    for cycle in 0..kills {
        let mut child = Command::new(&exe)
            .arg(CHILD_ARG)
            .arg(tmp.path())
            .arg(cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if let Some(id) = l.strip_prefix("ack ") {
                    let _ = tx.send(id.to_string());
                }
            }
        });
        // Wait for the first acknowledgement (the writer is up), then kill at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20 + rng.below(600)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let _ = reader.join();
        let this: Vec<String> = first.into_iter().chain(rx.try_iter()).collect();
        if this.is_empty() {
            empty_cycles += 1;
        }
        acked.extend(this);
        if sqlite3_integrity(&tmp.path().join("groupcommit.db")) != "ok" {
            corrupt += 1;
        }
        lost += missing(tmp.path(), &acked)?;
    }
    report.info(
        AREA,
        "SIGKILLs of a 32-task async writer (FULL) mid-batch",
        kills,
    );
    report.info(AREA, "writes acknowledged before the kills", acked.len());
    report.zero(
        AREA,
        "acknowledged writes missing after a kill (checked after every cycle)",
        lost,
    );
    report.zero(AREA, "integrity_check failures (sqlite3 shell)", corrupt);
    report.zero(
        AREA,
        "cycles in which the writer acknowledged nothing",
        empty_cycles,
    );
    report.info(
        AREA,
        "seconds",
        format!("{:.0}", t0.elapsed().as_secs_f64()),
    );
    Ok(())
}
