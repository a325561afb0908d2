//! `sqlite-vol exec`: what supervision costs an app that is not written in Rust.
//!
//! - start to ready: the standard-library Python example (`examples/pyaccounts`) answering `/health`, started
//!   directly and under `exec`, on an empty volume; and exec's own preflight (no app work: a child that exits
//!   at once) on an empty database and on the big data set, to show it is flat in database size;
//! - signal delivery: SIGUSR1 sent to the app directly, and to the supervisor that forwards it, until the app
//!   has written its line (the round trip through a pipe is in both, so the difference is what `exec` adds);
//! - the app's write throughput (a Python loop committing small transactions for a few seconds) under
//!   `exec` with a backup every second, and under `exec` with none.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::data::DataSet;
use super::{fresh, median, secs, Config, Results};
use crate::support::bin;

/// The example app's source.
fn pyaccounts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pyaccounts/app.py")
}

/// `sqlite-vol exec` with `args`, then `--` and `child`.
fn exec(args: &[&str], child: &[&str]) -> Command {
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("exec").args(args).arg("--").args(child);
    // Debian's Python links SQLite 3.40.1: the benchmark measures supervision, not the WAL-reset refusal.
    c.env("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", "1")
        .env("SQLITE_VOL_LOG", "warn");
    c
}

fn kill(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Seconds from spawn to the first 200 on `/health` of the Python example on port `port`.
fn python_ready(mut cmd: Command, port: u16) -> Result<f64, String> {
    cmd.env("HOST", "127.0.0.1").env("PORT", port.to_string());
    let addr = format!("127.0.0.1:{port}");
    super::service::seconds_to_ready(cmd, &addr, Duration::from_secs(30), "the Python example")
}

/// Seconds for `cmd` to run to its end.
fn run_time(mut cmd: Command) -> Result<f64, String> {
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(secs(t.elapsed()))
}

const SIGNAL_CHILD: &str = r#"
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: (sys.stdout.write("got\n"), sys.stdout.flush()))
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    signal.pause()
"#;

/// Median seconds from `kill -USR1 <target>` to the child's line, over `n` signals.
fn signal_round_trip(mut cmd: Command, n: usize) -> Result<f64, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        kill(child);
        return Err(format!("signal child said {line:?}"));
    }
    let pid = child.id().to_string();
    let mut lat = Vec::new();
    for _ in 0..n {
        line.clear();
        let t = Instant::now();
        Command::new("kill")
            .args(["-USR1", &pid])
            .status()
            .map_err(|e| e.to_string())?;
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        lat.push(secs(t.elapsed()));
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(child);
    Ok(median(&mut lat))
}

const WRITER_CHILD: &str = r#"
import os, sqlite3, sys, time
db = sqlite3.connect(os.environ["SQLITE_VOL_DB"], timeout=30, isolation_level=None)
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS w (id INTEGER PRIMARY KEY, v BLOB)")
n, end = 0, time.monotonic() + float(sys.argv[1])
blob = os.urandom(200)
while time.monotonic() < end:
    db.execute("BEGIN IMMEDIATE"); db.execute("INSERT INTO w (v) VALUES (?)", (blob,)); db.execute("COMMIT")
    n += 1
print(n)
"#;

/// Commits per second of the Python writer over `seconds`, under `exec` with `args`.
fn python_writes(dir: &Path, args: &[&str], seconds: f64) -> Result<f64, String> {
    let db = fresh(dir)?.join("w.db");
    let db_s = db.to_string_lossy().into_owned();
    let mut all = vec!["--db", &db_s, "--app", "w"];
    all.extend_from_slice(args);
    let out = exec(&all, &["python3", "-c", WRITER_CHILD, &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let n: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("writer printed {:?}", String::from_utf8_lossy(&out.stdout)))?;
    Ok(n / seconds)
}

pub fn run(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let base = cfg.dir.join("exec");
    let py = pyaccounts();
    let py_s = py.to_string_lossy().into_owned();
    let port = crate::offsite::free_port();
    let runs = cfg.runs.max(5);

    // Start to ready, the Python example on an empty volume.
    let (mut direct, mut under) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let d = fresh(&base.join(format!("direct-{i}")))?;
        let mut c = Command::new("python3");
        c.arg(&py_s).env("DB_PATH", d.join("pyaccounts.db"));
        direct.push(python_ready(c, port)?);
        let u = fresh(&base.join(format!("under-{i}")))?;
        let mut c = exec(&["--app", "pyaccounts"], &["python3", &py_s]);
        c.env("DB_PATH", u.join("pyaccounts.db"));
        under.push(python_ready(c, port)?);
    }
    let (d, u) = (median(&mut direct) * 1000.0, median(&mut under) * 1000.0);
    r.line(
        "exec",
        "Python example, direct: start to ready",
        d,
        "ms",
        Some(1.0),
        "empty volume",
    );
    r.line(
        "exec",
        "Python example under exec: start to ready",
        u,
        "ms",
        Some(u / d),
        "empty volume",
    );
    r.target(
        "exec start to ready ÷ (direct × 1.1 + 20 ms)",
        u / (d * 1.1 + 20.0),
        1.0,
        true,
    );

    // exec's own preflight, flat in database size: a child that exits at once.
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/accounts/migrations");
    let m = migrations.to_string_lossy().into_owned();
    let big = ds.db.to_string_lossy().into_owned();
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let e = fresh(&base.join(format!("pre-{i}")))?.join("accounts.db");
        let e = e.to_string_lossy().into_owned();
        small.push(run_time(exec(
            &["--db", &e, "--app", "accounts", "--migrations", &m],
            &["true"],
        ))?);
        large.push(run_time(exec(
            &["--db", &big, "--app", "accounts", "--migrations", &m],
            &["true"],
        ))?);
    }
    let (s, l) = (median(&mut small) * 1000.0, median(&mut large) * 1000.0);
    r.line(
        "exec",
        "preflight + a child that exits at once, empty database",
        s,
        "ms",
        Some(1.0),
        "",
    );
    r.line(
        "exec",
        format!(
            "preflight + a child that exits at once, {} MiB database",
            ds.bytes >> 20
        ),
        l,
        "ms",
        Some(l / s),
        "nothing to migrate",
    );
    r.target(
        "exec preflight on the big database ÷ on an empty one",
        l / s,
        1.2,
        true,
    );

    // Signal delivery.
    let sig_db = fresh(&base.join("signal"))?.join("s.db");
    let sig_db = sig_db.to_string_lossy().into_owned();
    let mut direct = Command::new("python3");
    direct.args(["-c", SIGNAL_CHILD]);
    let sd = signal_round_trip(direct, 30)? * 1000.0;
    let under = exec(
        &["--db", &sig_db, "--app", "s"],
        &["python3", "-c", SIGNAL_CHILD],
    );
    let su = signal_round_trip(under, 30)? * 1000.0;
    r.line(
        "exec",
        "SIGUSR1 to the app, direct",
        sd,
        "ms",
        Some(1.0),
        "kill → the app's line read back",
    );
    r.line(
        "exec",
        "SIGUSR1 to the supervisor, forwarded",
        su,
        "ms",
        Some(su / sd),
        "",
    );
    r.target("signal latency exec adds (ms)", su - sd, 10.0, true);

    // The app's writes while exec takes a backup every second.
    let seconds = 4.0;
    let (mut none, mut with) = (Vec::new(), Vec::new());
    for _ in 0..cfg.runs {
        none.push(python_writes(&base.join("w-none"), &[], seconds)?);
        with.push(python_writes(
            &base.join("w-backups"),
            &["--backup-interval", "1s", "--backup-keep", "2"],
            seconds,
        )?);
    }
    let (n, w) = (median(&mut none), median(&mut with));
    r.line(
        "exec",
        "Python writer under exec, no backups",
        n,
        "commits/s",
        Some(1.0),
        "BEGIN IMMEDIATE + 1 insert, NORMAL",
    );
    r.line(
        "exec",
        "Python writer under exec, a backup every second",
        w,
        "commits/s",
        Some(w / n),
        "",
    );
    r.target(
        "app writes with scheduled backups ÷ without",
        w / n,
        0.8,
        false,
    );
    Ok(())
}
