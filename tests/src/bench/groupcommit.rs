//! Concurrent writer tasks in a tokio service, three ways: today's (`spawn_blocking` + the r2d2 pool +
//! `BEGIN IMMEDIATE` + `busy_timeout`), deadpool-sqlite's `interact` (the same, with an async pool), and
//! the library's one writer with group commit ([`sqlite_vol::AsyncDatabase`]). 1, 4, 16 and 64 tasks, each
//! committing small transactions (an insert and an update) for a few seconds, with `synchronous` FULL and
//! NORMAL: commits/s and p50/p99/max latency. Then point reads alone and while 16 writers run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use sqlite_vol::{AsyncDatabase, Database, Error, Synchronous};

use super::{fresh, median, quantile, secs, Config, Results};

/// How long each cell runs.
const CELL: Duration = Duration::from_secs(2);
const WRITERS: [usize; 4] = [1, 4, 16, 64];
const WAYS: [Way; 3] = [Way::Pool, Way::Deadpool, Way::Writer];

const SCHEMA: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, task INTEGER NOT NULL, v BLOB);
     CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
     WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < 63)
     INSERT INTO counters SELECT i, 0 FROM k;
     WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 1000)
     INSERT INTO t (task, v) SELECT -1, zeroblob(100) FROM k;";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Pool,
    Deadpool,
    Writer,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Pool => "spawn_blocking + r2d2 + BEGIN IMMEDIATE",
            Way::Deadpool => "deadpool-sqlite interact",
            Way::Writer => "AsyncDatabase writer (group commit)",
        }
    }
}

/// One transaction: an insert and an update.
fn txn(c: &Connection, task: usize) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO t (task, v) VALUES (?1, ?2)")?
        .execute(params![task as i64, [7u8; 100].as_slice()])?;
    c.prepare_cached("UPDATE counters SET n = n + 1 WHERE id = ?1")?
        .execute([(task % 64) as i64])?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
struct Cell {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: usize,
    mean_batch: f64,
}

fn open(dir: &std::path::Path, sync: Synchronous) -> Result<Arc<Database>, String> {
    let db = Database::builder("bench")
        .path(fresh(dir)?)
        .synchronous(sync)
        .ignore_env()
        .open()
        .map_err(|e| format!("{e:#}"))?;
    db.conn()
        .map_err(|e| e.to_string())?
        .execute_batch(SCHEMA)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(db))
}

fn sync_pragma(sync: Synchronous) -> &'static str {
    match sync {
        Synchronous::Full => "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        Synchronous::Normal => "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
    }
}

async fn writers(
    way: Way,
    sync: Synchronous,
    n: usize,
    dir: &std::path::Path,
) -> Result<Cell, String> {
    let db = open(dir, sync)?;
    let adb = AsyncDatabase::new(db.clone()).map_err(|e| e.to_string())?;
    let dp = deadpool_sqlite::Config::new(db.location().path.clone())
        .create_pool(deadpool_sqlite::Runtime::Tokio1)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let stop = start + CELL;
    let tasks: Vec<_> = (0..n)
        .map(|task| {
            let (db, adb, dp) = (db.clone(), adb.clone(), dp.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < stop {
                    let t = Instant::now();
                    let ok = match way {
                        Way::Pool => {
                            let db = db.clone();
                            tokio::task::spawn_blocking(move || {
                                db.write(|tx| txn(tx, task).map_err(Error::from_sqlite))
                            })
                            .await
                            .map(|r| r.is_ok())
                            .unwrap_or(false)
                        }
                        Way::Writer => adb
                            .write(move |c| txn(c, task).map_err(Error::from_sqlite))
                            .await
                            .is_ok(),
                        Way::Deadpool => match dp.get().await {
                            Ok(obj) => obj
                                .interact(move |c| {
                                    c.execute_batch(sync_pragma(sync))?;
                                    let tx = c.transaction_with_behavior(
                                        TransactionBehavior::Immediate,
                                    )?;
                                    txn(&tx, task)?;
                                    tx.commit()
                                })
                                .await
                                .map(|r| r.is_ok())
                                .unwrap_or(false),
                            Err(_) => false,
                        },
                    };
                    if ok {
                        lat.push(secs(t.elapsed()) * 1e3);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| e.to_string())?;
        lat.extend(l);
        errors += e;
    }
    let took = secs(start.elapsed());
    let mean_batch = adb.writer_stats().mean_batch();
    adb.shutdown().await;
    Ok(Cell {
        rate: lat.len() as f64 / took,
        p50: quantile(&mut lat, 0.5),
        p99: quantile(&mut lat, 0.99),
        max: quantile(&mut lat, 1.0),
        errors,
        mean_batch,
    })
}

/// p99 (ms) of point reads by 4 reader tasks, with `n` writer tasks (through the writer) running.
async fn read_p99(n: usize, dir: &std::path::Path) -> Result<f64, String> {
    let db = open(dir, Synchronous::Full)?;
    let adb = AsyncDatabase::new(db).map_err(|e| e.to_string())?;
    let stop = Instant::now() + CELL;
    let writers: Vec<_> = (0..n)
        .map(|task| {
            let adb = adb.clone();
            tokio::spawn(async move {
                while Instant::now() < stop {
                    let _ = adb
                        .write(move |c| txn(c, task).map_err(Error::from_sqlite))
                        .await;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let adb = adb.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut id = r as i64;
                while Instant::now() < stop {
                    id = (id * 7919 + 13) % 1000 + 1;
                    let t = Instant::now();
                    let got: Result<Vec<u8>, Error> = adb
                        .read(move |c| {
                            c.prepare_cached("SELECT v FROM t WHERE id = ?1")
                                .and_then(|mut s| s.query_row([id], |row| row.get(0)))
                                .map_err(Error::from_sqlite)
                        })
                        .await;
                    if got.is_ok() {
                        lat.push(secs(t.elapsed()) * 1e3);
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for r in readers {
        lat.extend(r.await.map_err(|e| e.to_string())?);
    }
    for w in writers {
        w.await.map_err(|e| e.to_string())?;
    }
    adb.shutdown().await;
    Ok(quantile(&mut lat, 0.99))
}

fn sync_name(s: Synchronous) -> &'static str {
    match s {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

pub fn run(cfg: &Config, r: &mut Results) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let dir = cfg.dir.join("groupcommit");
    let syncs = [Synchronous::Full, Synchronous::Normal];
    // samples[sync][writers][way] = one Cell per run, interleaved.
    let mut samples = vec![vec![vec![Vec::<Cell>::new(); WAYS.len()]; WRITERS.len()]; 2];
    let (mut alone, mut busy) = (Vec::new(), Vec::new());
    for run in 0..cfg.runs {
        for (si, sync) in syncs.iter().enumerate() {
            for (ni, n) in WRITERS.iter().enumerate() {
                for (wi, way) in WAYS.iter().enumerate() {
                    let c = rt.block_on(writers(*way, *sync, *n, &dir.join("db")))?;
                    eprintln!(
                        "bench: groupcommit run {run} {} {n} writers {}: {:.0}/s p99 {:.1} ms",
                        sync_name(*sync),
                        way.name(),
                        c.rate,
                        c.p99
                    );
                    samples[si][ni][wi].push(c);
                }
            }
        }
        alone.push(rt.block_on(read_p99(0, &dir.join("reads")))?);
        busy.push(rt.block_on(read_p99(16, &dir.join("reads")))?);
    }
    let med =
        |cells: &[Cell], f: fn(&Cell) -> f64| median(&mut cells.iter().map(f).collect::<Vec<_>>());
    for (si, sync) in syncs.iter().enumerate() {
        for (ni, n) in WRITERS.iter().enumerate() {
            let cells = &samples[si][ni];
            let base_rate = med(&cells[0], |c| c.rate);
            let base_p99 = med(&cells[0], |c| c.p99);
            for (wi, way) in WAYS.iter().enumerate() {
                let c = &cells[wi];
                let rate = med(c, |c| c.rate);
                let errors: usize = c.iter().map(|c| c.errors).sum();
                let mut note = format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    med(c, |c| c.p50),
                    med(c, |c| c.p99),
                    med(c, |c| c.max)
                );
                if *way == Way::Writer {
                    note.push_str(&format!(", {:.1} writes/commit", med(c, |c| c.mean_batch)));
                }
                if errors > 0 {
                    note.push_str(&format!(", {errors} failed"));
                }
                r.line(
                    "groupcommit",
                    format!("{} {n} writers: {}", sync_name(*sync), way.name()),
                    rate,
                    "commits/s",
                    Some(rate / base_rate),
                    note,
                );
            }
            let w_rate = med(&cells[2], |c| c.rate) / base_rate;
            let w_p99 = med(&cells[2], |c| c.p99) / base_p99;
            let sn = sync_name(*sync);
            match (*sync, *n) {
                (Synchronous::Full, 16 | 64) => {
                    r.target(
                        format!("{sn} {n} writers: writer commits/s ÷ pool"),
                        w_rate,
                        5.0,
                        false,
                    );
                    r.target(
                        format!("{sn} {n} writers: writer p99 ÷ pool"),
                        w_p99,
                        0.5,
                        true,
                    );
                }
                (Synchronous::Normal, 16) => {
                    r.target(
                        format!("{sn} {n} writers: writer commits/s ÷ pool"),
                        w_rate,
                        1.5,
                        false,
                    );
                }
                (_, 1) => {
                    r.target(
                        format!("{sn} 1 writer: writer commits/s ÷ pool"),
                        w_rate,
                        0.9,
                        false,
                    );
                }
                _ => {}
            }
        }
    }
    let (a, b) = (median(&mut alone), median(&mut busy));
    r.line(
        "groupcommit",
        "point reads alone (4 readers)",
        a,
        "ms p99",
        None,
        "FULL",
    );
    r.line(
        "groupcommit",
        "point reads while 16 writers commit",
        b,
        "ms p99",
        Some(b / a),
        "FULL, through the writer",
    );
    r.target("read p99 with 16 writers ÷ alone", b / a, 1.5, true);
    Ok(())
}
