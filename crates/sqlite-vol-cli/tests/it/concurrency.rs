//! Other processes at work on the same database: a held maintenance lock, two backups at once, a
//! continuous foreign writer during a backup, and a restore under a process that keeps the database open.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{sqlite3, Env, TestResult};

/// A Python helper process, killed when dropped.
pub(crate) struct Py {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Py {
    pub(crate) fn start(script: &str, args: &[&str]) -> Py {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Py {
            stdin: child.stdin.take(),
            child,
            stdout,
        }
    }

    /// The next line it prints.
    pub(crate) fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("read from python");
        s.trim().to_string()
    }

    /// Sends a command line and returns the answer line.
    fn ask(&mut self, cmd: &str) -> String {
        if let Some(stdin) = self.stdin.as_mut() {
            writeln!(stdin, "{cmd}").expect("write to python");
            stdin.flush().expect("flush");
        }
        self.line()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Holds the maintenance lock the way the library does (flock on `<db>.lock`, holder JSON inside) until
/// stdin closes.
pub(crate) const HOLD_LOCK: &str = r#"
import fcntl, json, os, sys
f = open(sys.argv[1] + ".lock", "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.truncate(0)
f.write(json.dumps({"pid": os.getpid(), "operation": sys.argv[2], "since": "2026-01-01T00:00:00Z"}))
f.flush()
print("held", os.getpid(), flush=True)
sys.stdin.read()
"#;

#[test]
fn backup_and_restore_exit_2_naming_the_holder_while_the_lock_is_held() -> TestResult {
    let env = Env::with_db("app", 50);
    let b = env.backup();
    let before = env.fingerprint();
    let mut holder = Py::start(HOLD_LOCK, &[env.db.to_str().unwrap_or_default(), "restore"]);
    let ready = holder.line();
    let pid = ready
        .strip_prefix("held ")
        .expect("holder ready")
        .to_string();

    let status = env.run(&["status", "--json"]).expect(0).json();
    assert_eq!(status["lock"]["operation"], "restore", "{status}");
    let r = env.run(&["backup"]).expect(2);
    assert!(
        r.stderr
            .contains(&format!("restore in progress by pid {pid}")),
        "{}",
        r.stderr
    );
    let r = env
        .run(&["restore", "--yes", b.to_str().unwrap_or_default()])
        .expect(2);
    assert!(
        r.stderr.contains(&format!("pid {pid}")) && r.stderr.contains("--wait"),
        "{}",
        r.stderr
    );
    let doctor = env.run(&["doctor"]).expect(0);
    assert!(doctor.stdout.contains("WARN  lock"), "{}", doctor.stdout);
    assert_eq!(
        env.backup_files().len(),
        1,
        "nothing may be written while the lock is held"
    );
    assert!(env.fingerprint() == before, "the live database changed");

    // With --wait the backup goes through once the holder lets go.
    let waiting = env
        .cmd(&["backup", "--wait", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    drop(holder);
    let out = waiting.wait_with_output()?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.backup_files().len(), 2);
    Ok(())
}

#[test]
fn two_backups_at_once_with_wait_both_succeed_one_after_the_other() -> TestResult {
    let env = Env::with_db("app", 20000);
    let spawn = || {
        env.cmd(&["backup", "--wait", "60", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let (a, b) = (spawn()?, spawn()?);
    let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    let files = env.backup_files();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        assert_eq!(sqlite3(&f, "PRAGMA integrity_check"), "ok");
    }
    Ok(())
}

#[test]
fn two_backups_at_once_without_wait_the_second_exits_2_or_both_finish() -> TestResult {
    // Racing real processes: either the second finds the lock held (exit 2, naming the holder) or the
    // first finished before it started. Never anything else, never a torn file.
    let env = Env::with_db("app", 20000);
    let spawn = || {
        env.cmd(&["backup"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let (a, b) = (spawn()?, spawn()?);
    let outs = [a.wait_with_output()?, b.wait_with_output()?];
    for o in &outs {
        let code = o.status.code();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            code == Some(0) || (code == Some(2) && err.contains("backup in progress by pid")),
            "{o:?}"
        );
    }
    for f in env.backup_files() {
        assert_eq!(sqlite3(&f, "PRAGMA integrity_check"), "ok");
    }
    Ok(())
}

/// Commits small transactions as fast as it can in WAL mode, keeping count(*) = max(id) in `t`; prints
/// the commit count when asked.
const WRITER: &str = r#"
import sqlite3, sys, threading
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None, check_same_thread=False)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, pad BLOB NOT NULL)")
db.execute("BEGIN IMMEDIATE")
db.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 150000) "
           "INSERT INTO t (pad) SELECT randomblob(200) FROM c")
db.execute("COMMIT")
stop = threading.Event()
commits = [0]
def write():
    while not stop.is_set():
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (id, pad) VALUES ((SELECT max(id) FROM t) + 1, randomblob(100))")
        db.execute("COMMIT")
        commits[0] += 1
w = threading.Thread(target=write)
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "start":
        w.start()
        print("started", flush=True)
    elif cmd == "count":
        print(commits[0], flush=True)
    elif cmd == "stop":
        stop.set(); w.join()
        print(commits[0], flush=True)
"#;

#[test]
fn backup_under_a_continuous_foreign_writer_is_a_consistent_snapshot() -> TestResult {
    let env = Env::with_db("app", 10);
    let mut writer = Py::start(WRITER, &[env.db.to_str().unwrap_or_default()]);
    assert_eq!(writer.line(), "ready");
    assert_eq!(writer.ask("start"), "started");
    std::thread::sleep(Duration::from_millis(300));
    let before: u64 = writer.ask("count").parse()?;
    let started = Instant::now();
    let r = env
        .cmd(&["backup", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    let took = started.elapsed();
    let during: u64 = writer.ask("count").parse::<u64>()? - before;
    let total: u64 = writer.ask("stop").parse()?;
    assert!(
        r.status.success(),
        "backup under load failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&r.stdout)?;
    let copy = j["path"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "backup of {} bytes under a foreign writer: {} ms wall, {} ms in the library; the writer committed {during} \
         transactions meanwhile ({total} in all)",
        j["bytes"], took.as_millis(), j["duration_ms"]
    );
    assert!(during > 0, "the writer made no progress during the backup");
    assert!(took < Duration::from_secs(60), "backup took {took:?}");
    let copy = std::path::Path::new(&copy);
    assert_eq!(sqlite3(copy, "PRAGMA integrity_check"), "ok");
    assert_eq!(sqlite3(copy, "SELECT count(*) = max(id) FROM t"), "1");
    let rows: u64 = sqlite3(copy, "SELECT count(*) FROM t").parse()?;
    assert!(
        rows >= 150_000,
        "the copy misses the prefilled rows: {rows}"
    );
    assert_eq!(env.sql("SELECT count(*) = max(id) FROM t"), "1");
    Ok(())
}

/// Keeps one connection open and answers `read` with the current `kv` state, each in a new transaction.
const READER: &str = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "read":
        (v,) = db.execute("SELECT v FROM kv WHERE k = 'state'").fetchone()
        (n,) = db.execute("SELECT count(*) FROM items").fetchone()
        print(f"{v} {n}", flush=True)
"#;

#[test]
fn restore_is_seen_by_a_process_that_keeps_the_database_open() -> TestResult {
    let env = Env::with_db("app", 40);
    let b = env.backup();
    env.sql("UPDATE kv SET v = 'after'; DELETE FROM items WHERE id > 10;");
    let mut reader = Py::start(READER, &[env.db.to_str().unwrap_or_default()]);
    assert_eq!(reader.line(), "ready");
    assert_eq!(reader.ask("read"), "after 10");
    env.run(&["restore", "--yes", b.to_str().unwrap_or_default()])
        .expect(0);
    assert_eq!(
        reader.ask("read"),
        "initial 40",
        "the open connection must see the restored data"
    );
    env.sql("UPDATE kv SET v = 'written-after-restore'");
    assert_eq!(reader.ask("read"), "written-after-restore 40");
    env.run(&["check", "--full"]).expect(0);
    Ok(())
}

#[test]
fn a_backup_during_a_real_migration_exits_2_naming_the_migrating_process() -> TestResult {
    let env = Env::with_db("app", 10);
    std::fs::write(
        env.migrations.join("V3__slow.sql"),
        "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
         SELECT x, randomblob(16) AS b FROM c;",
    )?;
    let dir = env.migrations.to_str().unwrap_or_default();
    let migrating = env
        .cmd(&["migrate", "--dir", dir, "--no-safety-backup"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = migrating.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = env.run(&["status", "--json"]).expect(0).json();
        if s["lock"]["operation"] == "migrate" {
            assert_eq!(s["lock"]["pid"], pid, "{s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the migration never showed up as the lock holder"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = env.run(&["backup"]);
    let out = migrating.wait_with_output()?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("migrate in progress by pid {pid}")),
        "{}",
        r.stderr
    );
    assert!(env.backup_files().is_empty());
    assert_eq!(env.sql("SELECT count(*) FROM slow"), "3000000");
    Ok(())
}
