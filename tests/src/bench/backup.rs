//! Backup and restore against `cp` + fsync (the physical floor), the sqlite3 shell's `.backup` and
//! `.restore`, and `VACUUM INTO`: idle, and under a foreign writer (Python's sqlite3 module committing small
//! transactions as fast as it can, recording each commit's latency).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::data::DataSet;
use super::{fresh, median, quantile, secs, Config, Results};

const WRITER: &str = r#"
import os, sqlite3, sys, time
db, stop, out = sys.argv[1:4]
c = sqlite3.connect(db, isolation_level=None, timeout=60)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=NORMAL")
c.execute("PRAGMA busy_timeout=60000")
c.execute("CREATE TABLE IF NOT EXISTS bench_writes (id INTEGER PRIMARY KEY, v BLOB)")
pc = time.perf_counter
wall0, p0 = time.time(), pc()
ends, lats, k = [], [], 0
while True:
    t = pc()
    c.execute("INSERT INTO bench_writes (v) VALUES (randomblob(100))")
    e = pc()
    ends.append(e); lats.append(e - t)
    k += 1
    if k % 256 == 0 and os.path.exists(stop):
        break
with open(out, "w") as f:
    for a, b in zip(ends, lats):
        f.write(f"{wall0 + (a - p0):.6f} {b:.6f}\n")
"#;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn sh(db: &Path, cmd: &str) -> Command {
    let mut c = Command::new("sqlite3");
    c.arg(db)
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs a command, killing it after `limit`; `None` if it did not finish.
fn run_limited(mut c: Command, limit: Duration) -> Result<Option<Duration>, String> {
    let t = Instant::now();
    let mut child = c.spawn().map_err(|e| e.to_string())?;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            if !s.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("{c:?}: {s}: {err}"));
            }
            return Ok(Some(t.elapsed()));
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn cp_fsync(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map_err(|e| e.to_string())?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::File::open(to.parent().unwrap_or(Path::new("/")))
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())
}

fn ours(db: &Path, out: &Path) -> Result<(), String> {
    sqlite_vol::backup::backup(db, "accounts", &sqlite_vol::BackupOptions::new(out))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A contender: writes its copy into the given folder; `None` when it did not finish in time.
type Run<'a> = Box<dyn Fn(&Path) -> Result<Option<Duration>, String> + 'a>;
type Contender<'a> = (&'a str, Run<'a>);

/// Times a contender that always finishes.
fn timed<'a>(f: impl Fn(&Path) -> Result<(), String> + 'a) -> Run<'a> {
    Box::new(move |out: &Path| {
        let t = Instant::now();
        f(out)?;
        Ok(Some(t.elapsed()))
    })
}

fn backup_contenders(db: &Path, limit: Duration) -> Vec<Contender<'_>> {
    vec![
        (
            "sqlite-vol backup (checked, manifest)",
            timed(move |out: &Path| ours(db, out)),
        ),
        (
            "cp + fsync",
            timed(move |out: &Path| cp_fsync(db, &out.join("copy.db"))),
        ),
        (
            "sqlite3 .backup",
            Box::new(move |out: &Path| {
                run_limited(
                    sh(db, &format!(".backup '{}'", out.join("shell.db").display())),
                    limit,
                )
            }),
        ),
        (
            "VACUUM INTO",
            Box::new(move |out: &Path| {
                run_limited(
                    sh(
                        db,
                        &format!("VACUUM INTO '{}'", out.join("vacuum.db").display()),
                    ),
                    limit,
                )
            }),
        ),
    ]
}

/// Idle backup throughput.
pub fn idle(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let out = cfg.dir.join("idle-out");
    let contenders = backup_contenders(&ds.db, Duration::from_secs(600));
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for run in 0..cfg.runs {
        for (i, (name, f)) in contenders.iter().enumerate() {
            fresh(&out)?;
            let d = f(&out)?.ok_or("idle contender timed out")?;
            eprintln!("bench: idle run {run} {name}: {:.2} s", secs(d));
            times[i].push(secs(d));
        }
    }
    let names: Vec<&str> = contenders.iter().map(|c| c.0).collect();
    let mbps = r.mb_per_s(
        "idle backup",
        &names,
        &mut times,
        ds.bytes,
        1,
        "ratio to cp + fsync",
    );
    r.target("idle backup ÷ cp + fsync", mbps[0] / mbps[1], 0.75, false);
    r.target(
        "idle backup ÷ sqlite3 .backup",
        mbps[0] / mbps[2],
        1.3,
        false,
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

struct Writer {
    child: Child,
    stop: PathBuf,
    out: PathBuf,
}

impl Writer {
    fn start(db: &Path, dir: &Path) -> Result<Writer, String> {
        let (stop, out) = (dir.join("writer.stop"), dir.join("writer.lat"));
        let _ = std::fs::remove_file(&stop);
        let child = Command::new("python3")
            .args(["-c", WRITER])
            .arg(db)
            .arg(&stop)
            .arg(&out)
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        Ok(Writer { child, stop, out })
    }

    /// Stops the writer and returns (commit end time, latency) pairs.
    fn finish(mut self) -> Result<Vec<(f64, f64)>, String> {
        std::fs::write(&self.stop, b"").map_err(|e| e.to_string())?;
        self.child.wait().map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&self.out).map_err(|e| e.to_string())?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut p = l.split(' ');
                Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
            })
            .collect())
    }
}

/// (commits/s, p99 ms, worst ms) in a window.
fn window(samples: &[(f64, f64)], from: f64, to: f64) -> (f64, f64, f64) {
    let mut lat: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|(_, l)| l * 1000.0)
        .collect();
    let rate = lat.len() as f64 / (to - from).max(1e-9);
    (
        rate,
        quantile(&mut lat, 0.99),
        lat.iter().copied().fold(0.0, f64::max),
    )
}

/// Backups while a foreign writer commits as fast as it can.
pub fn online(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let work = fresh(&cfg.dir.join("online"))?;
    let live = work.join("accounts.db");
    cp_fsync(&ds.db, &live)?;
    let out = work.join("out");
    let limit = Duration::from_secs(60);
    let writer = Writer::start(&live, &work)?;
    std::thread::sleep(Duration::from_secs(2));
    let mut windows: Vec<(usize, f64, f64, Option<f64>)> = Vec::new();
    let base_from = now();
    std::thread::sleep(Duration::from_secs(3));
    windows.push((usize::MAX, base_from, now(), None));
    let contenders = backup_contenders(&live, limit);
    let names: Vec<&str> = contenders
        .iter()
        .map(|c| c.0)
        .filter(|n| *n != "cp + fsync")
        .collect();
    for run in 0..cfg.runs {
        for (i, (name, f)) in contenders
            .iter()
            .enumerate()
            .filter(|(_, c)| c.0 != "cp + fsync")
        {
            fresh(&out)?;
            let from = now();
            let d = f(&out)?;
            windows.push((i, from, now(), d.map(secs)));
            eprintln!(
                "bench: online run {run} {name}: {}",
                d.map(|d| format!("{:.2} s", secs(d)))
                    .unwrap_or("did not finish in 60 s".into())
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let samples = writer.finish()?;
    let (base_rate, base_p99, base_worst) = window(&samples, windows[0].1, windows[0].2);
    r.line(
        "online backup",
        "writer alone",
        base_rate,
        "commits/s",
        Some(1.0),
        format!("p99 {base_p99:.2} ms, worst {base_worst:.1} ms"),
    );
    for name in names {
        let idx = contenders.iter().position(|c| c.0 == name).unwrap_or(0);
        let ws: Vec<_> = windows.iter().filter(|w| w.0 == idx).collect();
        let mut done: Vec<f64> = ws.iter().filter_map(|w| w.3).collect();
        let failed = ws.len() - done.len();
        let stats: Vec<(f64, f64, f64)> = ws.iter().map(|w| window(&samples, w.1, w.2)).collect();
        let mut rates: Vec<f64> = stats.iter().map(|s| s.0).collect();
        let mut p99s: Vec<f64> = stats.iter().map(|s| s.1).collect();
        let worst = stats.iter().map(|s| s.2).fold(0.0, f64::max);
        let rate = median(&mut rates);
        let time = if done.is_empty() {
            "did not finish in 60 s".to_string()
        } else {
            format!("{:.2} s to a snapshot", median(&mut done))
        };
        r.line(
            "online backup",
            name,
            rate,
            "commits/s",
            Some(rate / base_rate),
            format!(
                "{time}; {failed}/{} unfinished; writer p99 {:.2} ms, worst {worst:.1} ms",
                ws.len(),
                median(&mut p99s)
            ),
        );
        if idx == 0 {
            r.target(
                "online backup: runs that finished (all)",
                (ws.len() - failed) as f64,
                ws.len() as f64,
                false,
            );
            r.target(
                "online backup: writer commits/s ÷ writer alone",
                rate / base_rate,
                0.85,
                false,
            );
            r.target(
                "online backup: writer's worst commit (ms)",
                worst,
                100.0,
                true,
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Restore of a backup into a live database, and into an empty volume (a first start).
pub fn restore(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let work = fresh(&cfg.dir.join("restore"))?;
    let backup = sqlite_vol::backup::backup(
        &ds.db,
        "accounts",
        &sqlite_vol::BackupOptions::new(work.join("b")),
    )
    .map_err(|e| e.to_string())?
    .path;
    let live_dir = work.join("live");
    let live = live_dir.join("accounts.db");
    let reset = || -> Result<(), String> {
        fresh(&live_dir)?;
        cp_fsync(&ds.db, &live)
    };
    let names = [
        "sqlite-vol restore into the live database (verified)",
        "cp + fsync",
        "sqlite3 .restore",
        "sqlite-vol restore onto an empty volume (verified)",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for run in 0..cfg.runs {
        for (i, name) in names.iter().enumerate() {
            if i == 3 {
                fresh(&live_dir)?;
            } else {
                reset()?;
            }
            let t = Instant::now();
            match i {
                0 | 3 => {
                    let opts = sqlite_vol::RestoreOptions {
                        safety_backup: false,
                        ..sqlite_vol::RestoreOptions::new(work.join("safety"))
                    };
                    sqlite_vol::restore::restore(&backup, &live, "accounts", &opts)
                        .map_err(|e| e.to_string())?;
                }
                1 => {
                    for s in ["-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{s}", live.display()));
                    }
                    cp_fsync(&backup, &live)?;
                }
                _ => {
                    run_limited(
                        sh(&live, &format!(".restore '{}'", backup.display())),
                        Duration::from_secs(600),
                    )?;
                }
            }
            times[i].push(secs(t.elapsed()));
            eprintln!(
                "bench: restore run {run} {name}: {:.2} s",
                secs(t.elapsed())
            );
        }
    }
    let mbps = r.mb_per_s(
        "restore",
        &names,
        &mut times,
        ds.bytes,
        1,
        "ratio to cp + fsync",
    );
    r.target(
        "restore onto an empty volume ÷ cp + fsync",
        mbps[3] / mbps[1],
        0.6,
        false,
    );
    r.target(
        "restore into the live database ÷ sqlite3 .restore",
        mbps[0] / mbps[2],
        1.2,
        false,
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
