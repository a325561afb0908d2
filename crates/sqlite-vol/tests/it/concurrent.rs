//! The async handle: group-commit semantics, back-pressure, cancellation, foreign writers, shutdown, and
//! acknowledged writes surviving SIGKILL.
//!
//! Where a test needs writes to pile up behind the writer, a "gate" write holds the writer inside its
//! closure until the test lets it go, and the test waits until the queue holds what it expects: batches
//! are then known, not hoped for.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sqlite_vol::{AsyncDatabase, Database, Error, WriterOptions};
use tokio::task::JoinHandle;

use crate::support::{builder, open, sqlite3_integrity_check, Tmp};

type Res = Result<(), Box<dyn std::error::Error>>;

fn insert(email: String) -> impl FnOnce(&rusqlite::Connection) -> sqlite_vol::Result<i64> {
    move |c| {
        c.execute("INSERT INTO users (email) VALUES (?1)", [&email])
            .map_err(Error::from_sqlite)?;
        Ok(c.last_insert_rowid())
    }
}

fn emails(db: &Database) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let c = db.conn()?;
    let mut s = c.prepare("SELECT email FROM users ORDER BY email")?;
    let v = s
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(v)
}

/// A write that holds the writer inside its closure until the returned sender is used (or dropped).
async fn gate(db: &AsyncDatabase) -> (mpsc::Sender<()>, JoinHandle<sqlite_vol::Result<()>>) {
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (release, released) = mpsc::channel::<()>();
    let db2 = db.clone();
    let task = tokio::spawn(async move {
        db2.write(move |_| {
            let _ = started_tx.send(());
            let _ = released.recv();
            Ok(())
        })
        .await
    });
    started.await.expect("the gate write started");
    (release, task)
}

/// Waits (at most 10 s) until the queue holds `n` writes.
async fn queued(db: &AsyncDatabase, n: usize) {
    let start = Instant::now();
    while db.writer_stats().queue_depth < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "queue never reached {n}: {:?}",
            db.writer_stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_among_many_is_rolled_back_alone() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    db.write(insert("taken@x".into())).await?;
    let (release, g) = gate(&db).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            if i % 7 == 3 {
                // Inserts a row, then breaks UNIQUE: both must vanish, and only this caller hears of it.
                db.write(move |c| {
                    c.execute(
                        "INSERT INTO users (email) VALUES (?1)",
                        [format!("half-{i}")],
                    )
                    .map_err(Error::from_sqlite)?;
                    c.execute("INSERT INTO users (email) VALUES ('taken@x')", [])
                        .map_err(Error::from_sqlite)?;
                    Ok::<_, Error>(0)
                })
                .await
            } else {
                db.write(insert(format!("ok-{i:02}"))).await
            }
        }));
    }
    queued(&db, 30).await;
    release.send(())?;
    g.await??;
    let mut failed = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok(_) => assert!(i % 7 != 3, "write {i} should have failed"),
            Err(Error::Sqlite { .. }) if i % 7 == 3 => failed += 1,
            Err(e) => panic!("write {i}: unexpected {e}"),
        }
    }
    assert_eq!(failed, 4);
    let got = emails(db.database())?;
    let mut want: Vec<String> = (0..30)
        .filter(|i| i % 7 != 3)
        .map(|i| format!("ok-{i:02}"))
        .collect();
    want.push("taken@x".into());
    assert_eq!(got, want);
    let s = db.writer_stats();
    assert!(
        s.largest_batch >= 26,
        "the queued writes were not grouped: {s:?}"
    );
    assert_eq!(s.failed, 4, "{s:?}");
    assert!(s.batches < 10, "{s:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_gets_an_error_and_its_batch_commits() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    let (release, g) = gate(&db).await;
    let a = tokio::spawn({
        let db = db.clone();
        async move { db.write(insert("before@x".into())).await }
    });
    queued(&db, 1).await;
    let p = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(|c| {
                c.execute("INSERT INTO users (email) VALUES ('panicker@x')", [])
                    .map_err(Error::from_sqlite)?;
                panic!("boom in a write closure");
                #[allow(unreachable_code)]
                Ok::<_, Error>(())
            })
            .await
        }
    });
    queued(&db, 2).await;
    let b = tokio::spawn({
        let db = db.clone();
        async move { db.write(insert("after@x".into())).await }
    });
    queued(&db, 3).await;
    release.send(())?;
    g.await??;
    a.await??;
    b.await??;
    match p.await? {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("boom"), "{message}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(emails(db.database())?, ["after@x", "before@x"]);
    // The writer is still alive.
    db.write(insert("later@x".into())).await?;
    let s = db.writer_stats();
    assert_eq!((s.panicked, s.committed), (1, 4), "{s:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_leaves_no_half_change() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    // Queued, then dropped: skipped, never applied.
    let (release, g) = gate(&db).await;
    let queued_write = db.write(insert("dropped-while-queued@x".into()));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), queued_write)
            .await
            .is_err()
    );
    release.send(())?;
    g.await??;
    // Started, then dropped: runs to its end and commits whole (two rows, never one).
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let running = db.write(move |c| {
        c.execute("INSERT INTO users (email) VALUES ('pair-1@x')", [])
            .map_err(Error::from_sqlite)?;
        let _ = started_tx.send(());
        std::thread::sleep(Duration::from_millis(200));
        c.execute("INSERT INTO users (email) VALUES ('pair-2@x')", [])
            .map_err(Error::from_sqlite)?;
        Ok::<_, Error>(())
    });
    tokio::select! {
        _ = running => panic!("the write should still be running"),
        _ = started => {}
    }
    // A write queued after it is answered only after the dropped one's batch, so it sees the result.
    db.write(insert("next@x".into())).await?;
    assert_eq!(emails(db.database())?, ["next@x", "pair-1@x", "pair-2@x"]);
    assert_eq!(db.writer_stats().abandoned, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_queue_full_at_once_and_applies_nothing() -> Res {
    let tmp = Tmp::new();
    let opts = WriterOptions::default().queue_capacity(2);
    let db = AsyncDatabase::with_options(open(tmp.path(), "migrations_ok")?, opts)?;
    let (release, g) = gate(&db).await;
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.write(insert(format!("q{i}@x"))).await })
        })
        .collect();
    queued(&db, 2).await;
    let err = db
        .write(insert("refused@x".into()))
        .await
        .expect_err("the queue is full");
    assert!(
        matches!(err, Error::WriteQueueFull { capacity: 2, .. }),
        "{err}"
    );
    assert!(err.is_overloaded());
    assert!(err.to_string().contains("retry"), "{err}");
    release.send(())?;
    g.await??;
    for w in waiting {
        w.await??;
    }
    assert_eq!(emails(db.database())?, ["q0@x", "q1@x"]);
    assert_eq!(db.writer_stats().refused_full, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waiting_past_the_timeout_is_dropped_unapplied() -> Res {
    let tmp = Tmp::new();
    let opts = WriterOptions::default().queue_timeout(Duration::from_millis(100));
    let db = AsyncDatabase::with_options(open(tmp.path(), "migrations_ok")?, opts)?;
    let (release, g) = gate(&db).await;
    let err = db
        .write(insert("late@x".into()))
        .await
        .expect_err("the writer is held");
    assert!(matches!(err, Error::WriteTimeout { .. }), "{err}");
    assert!(err.is_overloaded());
    release.send(())?;
    g.await??;
    db.write(insert("on-time@x".into())).await?;
    assert_eq!(emails(db.database())?, ["on-time@x"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_not_blocked_by_a_writer_holding_its_transaction() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    db.write(insert("committed@x".into())).await?;
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (release, released) = mpsc::channel::<()>();
    let held = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |c| {
                c.execute("INSERT INTO users (email) VALUES ('uncommitted@x')", [])
                    .map_err(Error::from_sqlite)?;
                let _ = started_tx.send(());
                let _ = released.recv();
                Ok::<_, Error>(())
            })
            .await
        }
    });
    started.await?;
    // The writer is inside its transaction, holding the write lock: reads still answer, from the last commit.
    for _ in 0..20 {
        let n: i64 = tokio::time::timeout(
            Duration::from_secs(10),
            db.read(|c| {
                c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
                    .map_err(Error::from_sqlite)
            }),
        )
        .await
        .expect("a read was blocked by the writer")?;
        assert_eq!(n, 1);
    }
    release.send(())?;
    held.await??;
    assert_eq!(emails(db.database())?, ["committed@x", "uncommitted@x"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_runs_every_queued_write_then_refuses_more() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    let (release, g) = gate(&db).await;
    let waiting: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.write(insert(format!("w{i:02}@x"))).await })
        })
        .collect();
    queued(&db, 20).await;
    let stopping = db.shutdown();
    tokio::pin!(stopping);
    // Poll the shutdown once: that closes the queue; it then waits for the writer to drain.
    tokio::select! {
        biased;
        () = &mut stopping => panic!("shutdown finished while writes were still queued"),
        () = std::future::ready(()) => {}
    }
    let refused = db
        .write(insert("too-late@x".into()))
        .await
        .expect_err("a write after shutdown");
    assert!(matches!(refused, Error::Stopped { .. }), "{refused}");
    assert!(refused.is_overloaded());
    release.send(())?;
    g.await??;
    stopping.await;
    for w in waiting {
        w.await??;
    }
    assert_eq!(emails(db.database())?.len(), 20);
    Ok(())
}

const PY_WRITER: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
for i in range(int(sys.argv[2])):
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO users (email) VALUES (?)", ("py-%04d@x" % i,))
    c.execute("COMMIT")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_writer_process_commits_alongside_the_writer() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    let path = db.database().location().path.clone();
    let mut py = Command::new("python3")
        .args(["-c", PY_WRITER])
        .arg(&path)
        .arg("300")
        .spawn()?;
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { db.write(insert(format!("rs-{i:04}@x"))).await })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    assert!(py.wait()?.success(), "the Python writer failed");
    let got = emails(db.database())?;
    assert_eq!(got.len(), 600);
    assert_eq!(got.iter().filter(|e| e.starts_with("py-")).count(), 300);
    db.shutdown().await;
    assert_eq!(sqlite3_integrity_check(&path)?, "ok");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_lock_past_busy_timeout_is_a_busy_answer_not_a_lost_or_doubled_write() -> Res {
    let tmp = Tmp::new();
    let opened = builder(tmp.path(), "migrations_ok")
        .busy_timeout(Duration::from_millis(200))
        .open()?;
    let db = AsyncDatabase::new(opened)?;
    let path = db.database().location().path.clone();
    let hold = r#"
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
c.execute("INSERT INTO users (email) VALUES ('py-held@x')")
print("held", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
"#;
    let mut py = Command::new("python3")
        .args(["-c", hold])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(py.stdout.take().expect("stdout")).read_line(&mut line)?;
    assert_eq!(line.trim(), "held");
    let err = db
        .write(insert("mine@x".into()))
        .await
        .expect_err("the foreign process holds the write lock");
    assert!(err.is_overloaded(), "{err}");
    py.stdin.take().expect("stdin").write_all(b"go\n")?;
    assert!(py.wait()?.success());
    db.write(insert("mine@x".into())).await?;
    assert_eq!(emails(db.database())?, ["mine@x", "py-held@x"]);
    Ok(())
}

/// The child of [`acknowledged_writes_survive_sigkill`]: many writer tasks, each printing `ack T N` only
/// after its write was acknowledged. Does nothing unless that test started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by acknowledged_writes_survive_sigkill"]
async fn sigkill_child() -> Res {
    let Some(dir) = std::env::var_os("SQLITE_VOL_IT_SIGKILL_DIR") else {
        return Ok(());
    };
    let opened = builder(Path::new(&dir), "migrations_ok")
        .synchronous(sqlite_vol::Synchronous::Full)
        .open()?;
    let db = AsyncDatabase::new(opened)?;
    let cycle = std::env::var("SQLITE_VOL_IT_SIGKILL_CYCLE")?;
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let db = db.clone();
            let cycle = cycle.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                for n in 0.. {
                    if Instant::now() > deadline {
                        break;
                    }
                    let email = format!("c{cycle}-t{t}-n{n}");
                    if db.write(insert(email.clone())).await.is_ok() {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ack {email}").and_then(|()| out.flush());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    Ok(())
}

#[test]
fn acknowledged_writes_survive_sigkill() -> Res {
    let tmp = Tmp::new();
    open(tmp.path(), "migrations_ok")?;
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..4 {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "concurrent::sigkill_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env("SQLITE_VOL_IT_SIGKILL_DIR", tmp.path())
            .env("SQLITE_VOL_IT_SIGKILL_CYCLE", cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in lines.lines().map_while(Result::ok) {
                if let Some(e) = l.strip_prefix("ack ") {
                    let _ = tx.send(e.to_string());
                }
            }
        });
        // Kill after a varying number of acknowledgements, while dozens of writes are in flight.
        let want = 150 + 100 * cycle;
        let mut this_cycle = 0;
        let start = Instant::now();
        while this_cycle < want && start.elapsed() < Duration::from_secs(60) {
            if let Ok(e) = rx.recv_timeout(Duration::from_millis(100)) {
                acked.push(e);
                this_cycle += 1;
            }
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        reader.join().expect("reader thread");
        acked.extend(rx.try_iter());
        assert!(
            this_cycle >= want,
            "cycle {cycle}: only {this_cycle} acknowledgements"
        );
    }
    let db = open(tmp.path(), "migrations_ok")?;
    let present: std::collections::HashSet<String> = emails(&db)?.into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|e| !present.contains(*e)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let path = db.location().path.clone();
    db.close()?;
    assert_eq!(sqlite3_integrity_check(&path)?, "ok");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_failing_write_leaves_nothing_and_the_next_one_commits() -> Res {
    let tmp = Tmp::new();
    let db = AsyncDatabase::new(open(tmp.path(), "migrations_ok")?)?;
    db.write(insert("taken@x".into())).await?;
    // Alone in its batch (nothing else is queued), so it runs without a savepoint of its own.
    let failed = db
        .write(|c| {
            c.execute("INSERT INTO users (email) VALUES ('half@x')", [])?;
            c.execute("INSERT INTO users (email) VALUES ('taken@x')", [])?;
            Ok::<_, Error>(())
        })
        .await;
    assert!(
        failed.is_err(),
        "the UNIQUE violation is its caller's error"
    );
    db.write(insert("next@x".into())).await?;
    let got: Vec<String> = db
        .read(|c| {
            let mut s = c.prepare("SELECT email FROM users ORDER BY email")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok::<_, Error>(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .await?;
    assert_eq!(got, ["next@x", "taken@x"]);
    Ok(())
}
