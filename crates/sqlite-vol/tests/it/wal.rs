//! A WAL that stays bounded: a foreign reader (Python's sqlite3) holding a snapshot makes the WAL grow past
//! its limit and the checkpoint policy warn once, naming that reader's pid; once it lets go, the WAL is
//! brought back under the limit without the service writing anything.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{builder, TestResult, Tmp};

/// Everything logged at WARN and above by any thread of this test binary.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn wal_len(db: &std::path::Path) -> u64 {
    std::fs::metadata(format!("{}-wal", db.display())).map_or(0, |m| m.len())
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("timed out after {secs}s waiting for {what}"))
}

#[test]
fn a_foreign_reader_holding_a_snapshot_is_named_and_the_wal_shrinks_once_it_lets_go() -> TestResult
{
    let logs = logs();
    let tmp = Tmp::new();
    let limit: u64 = 256 << 10;
    let mut settings = sqlite_vol::Settings::default();
    settings.checkpoint_interval = Some(Duration::from_millis(200));
    settings.wal_limit = Some(limit);
    let db = builder(tmp.path(), "migrations_ok")
        .settings(&settings)
        .open()?;
    let path = db.location().path.clone();
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE blobs (b BLOB)")
            .map_err(sqlite_vol::Error::from_sqlite)
    })?;

    // Python holds a read transaction open: its snapshot pins every frame written after it.
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('BEGIN')\n\
                  c.execute('SELECT count(*) FROM users').fetchone()\n\
                  print('holding', flush=True)\n\
                  sys.stdin.readline()\n\
                  c.execute('COMMIT')\n\
                  c.close()\n";
    let mut reader = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = reader.id();
    let mut line = String::new();
    BufReader::new(reader.stdout.take().ok_or("stdout")?).read_line(&mut line)?;
    assert_eq!(line.trim(), "holding");

    for _ in 0..40 {
        db.write(|tx| {
            tx.execute("INSERT INTO blobs VALUES (randomblob(16384))", [])
                .map(|_| ())
                .map_err(sqlite_vol::Error::from_sqlite)
        })?;
    }
    assert!(
        wal_len(&path) > limit,
        "the WAL did not grow past {limit}: {}",
        wal_len(&path)
    );
    let db_name = path.display().to_string();
    let warning = |logs: &Arc<Mutex<Vec<u8>>>| -> Option<String> {
        let text = String::from_utf8_lossy(&logs.lock().ok()?).into_owned();
        text.lines()
            .find(|l| {
                l.contains("WARN")
                    && l.contains("the WAL is past its limit")
                    && l.contains(&db_name)
            })
            .map(str::to_string)
    };
    wait_for("the checkpoint policy's warning", 15, || {
        warning(&logs).is_some()
    })?;
    let w = warning(&logs).unwrap_or_default();
    assert!(
        w.contains(&format!("other_pids=[{pid}]")),
        "the warning does not name the reader {pid}: {w}"
    );
    assert!(
        w.contains("wal_bytes=")
            && w.contains("stuck_seconds=")
            && w.contains("oldest_read_in_this_process_seconds="),
        "{w}"
    );
    std::thread::sleep(Duration::from_millis(600));
    let warnings = String::from_utf8_lossy(&logs.lock().map_err(|_| "poisoned")?)
        .lines()
        .filter(|l| l.contains("the WAL is past its limit") && l.contains(&db_name))
        .count();
    assert_eq!(
        warnings, 1,
        "one warning per stuck episode, not one per checkpoint"
    );

    // The reader lets go; with no further writes, the policy folds and truncates the WAL.
    reader.stdin.take().ok_or("stdin")?.write_all(b"\n")?;
    reader.wait()?;
    wait_for("the WAL to come back under its limit", 15, || {
        wal_len(&path) <= limit
    })?;
    let rows: i64 = db
        .conn()?
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
    assert_eq!(rows, 40);
    let text = sqlite_vol::metrics::render(&db);
    let busy = text
        .lines()
        .find(|l| l.starts_with("sqlite_vol_checkpoints_total{") && l.contains("result=\"busy\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        busy.is_some_and(|n| n >= 1.0),
        "checkpoints held up by the reader are not counted as busy:\n{text}"
    );
    Ok(())
}
