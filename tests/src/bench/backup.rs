//! Backup and restore against `cp` + fsync (the physical floor), the sqlite3 shell's `.backup` and
//! `.restore`, and `VACUUM INTO`: idle, and under a foreign writer (Python's sqlite3 module committing small
//! transactions as fast as it can, recording each commit's latency). Every contender is a process of its
//! own (ours is the `sqlite-vol` CLI), timed with its peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use super::proc::{self, Measured};
use super::results::human;
use super::results::Samples;
use super::{fresh, median, quantile, Ctx, Results, LIMIT};

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

/// (commits/s, p99 ms, worst ms, seconds into the window when the worst began) of the commits that began
/// in a window. A commit is charged to the window it began in: one stalled by the bench's own cleanup
/// between two contenders (deleting a 1 GiB copy) ends inside the next one, which did not cause it.
fn window(samples: &[(f64, f64)], from: f64, to: f64) -> (f64, f64, f64, f64) {
    let inside: Vec<(f64, f64)> = samples
        .iter()
        .map(|&(end, l)| (end - l, l))
        .filter(|(began, _)| *began >= from && *began <= to)
        .map(|(began, l)| (began - from, l * 1000.0))
        .collect();
    let worst = inside
        .iter()
        .copied()
        .fold((0.0, 0.0), |w, x| if x.1 > w.1 { x } else { w });
    let mut lat: Vec<f64> = inside.iter().map(|x| x.1).collect();
    let rate = lat.len() as f64 / (to - from).max(1e-9);
    (rate, quantile(&mut lat, 0.99), worst.1, worst.0)
}

impl Drop for Writer {
    /// A section that fails part way does not leave the writer running.
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, b"");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `db` (and its `-wal`, if any) once, into the page cache.
pub(crate) fn warm(db: &Path) -> Result<(), String> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    for p in [db, Path::new(&wal)] {
        match std::fs::File::open(p) {
            Ok(mut f) => {
                std::io::copy(&mut f, &mut std::io::sink()).map_err(|e| e.to_string())?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", p.display())),
        }
    }
    Ok(())
}

/// A contender: makes its copy of `db` in folder `out`, as processes; `None` when it did not finish in time.
type Run<'a> = Box<dyn Fn(&Path, &Path, &Path) -> Result<Option<Measured>, String> + 'a>;
type Contender<'a> = (&'static str, Run<'a>);

const OURS_BACKUP: &str = "sqlite-vol backup (checked, manifest)";
const CP: &str = "cp + fsync";

/// Our CLI on `db` with its backup folder `dir`, logging its phases at debug level.
pub(crate) fn ours(bin: &Path, db: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--db")
        .arg(db)
        .args(["--app", "accounts", "-q", "--backup-dir"])
        .arg(dir)
        .env("SQLITE_VOL_LOG", "sqlite_vol=debug");
    c
}

/// The stock shell running one command on `db`.
fn shell(sqlite3: &Path, db: &Path, cmd: &str) -> Command {
    let mut c = Command::new(sqlite3);
    c.arg(db).arg(cmd);
    c
}

/// fsync of a file and of its folder, as a copy that must survive a crash needs.
fn fsync(file: &Path) -> Result<Duration, String> {
    let t = Instant::now();
    let e = |e: std::io::Error| format!("fsync {}: {e}", file.display());
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(e)?;
    std::fs::File::open(file.parent().unwrap_or(Path::new("/")))
        .and_then(|f| f.sync_all())
        .map_err(e)?;
    Ok(t.elapsed())
}

/// `cp` as a process, then fsync.
fn cp_fsync(cp: &Path, from: &Path, to: &Path, log: &Path) -> Result<Option<Measured>, String> {
    let mut c = Command::new(cp);
    c.arg(from).arg(to);
    match proc::run(c, LIMIT, log)? {
        Some(m) => Ok(Some(m.plus(fsync(to)?))),
        None => Ok(None),
    }
}

/// An untimed copy for setting up a run.
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
    fsync(to).map(|_| ())
}

/// The backup contenders whose tools are here, in table order.
fn backup_contenders<'a>(cx: &'a Ctx<'_>, limit: Duration, with_cp: bool) -> Vec<Contender<'a>> {
    let t = cx.tools;
    let mut v: Vec<Contender<'a>> = Vec::new();
    if let Some(bin) = &t.sqlite_vol {
        v.push((
            OURS_BACKUP,
            Box::new(move |db: &Path, out: &Path, log: &Path| {
                let mut c = ours(bin, db, out);
                c.arg("backup");
                proc::run(c, limit, log)
            }),
        ));
    }
    if let (Some(cp), true) = (&t.cp, with_cp) {
        v.push((
            CP,
            Box::new(move |db: &Path, out: &Path, log: &Path| {
                cp_fsync(cp, db, &out.join("copy.db"), log)
            }),
        ));
    }
    if let Some(sq) = &t.sqlite3 {
        v.push((
            "sqlite3 .backup",
            Box::new(move |db: &Path, out: &Path, log: &Path| {
                let cmd = format!(".backup '{}'", out.join("shell.db").display());
                proc::run(shell(sq, db, &cmd), limit, log)
            }),
        ));
        v.push((
            "VACUUM INTO",
            Box::new(move |db: &Path, out: &Path, log: &Path| {
                let cmd = format!("VACUUM INTO '{}'", out.join("vacuum.db").display());
                proc::run(shell(sq, db, &cmd), limit, log)
            }),
        ));
    }
    v
}

/// The position of a contender, if it runs.
fn at(names: &[&str], name: &str) -> Option<usize> {
    names.iter().position(|n| *n == name)
}

/// `a / b` of two throughputs by name, NaN when either did not run.
fn ratio(names: &[&str], mbps: &[f64], a: &str, b: &str) -> f64 {
    match (at(names, a), at(names, b)) {
        (Some(a), Some(b)) => mbps[a] / mbps[b],
        _ => f64::NAN,
    }
}

/// Idle backup throughput.
pub fn idle(cx: &Ctx<'_>, r: &mut Results) -> Result<(), String> {
    let out = cx.cfg.dir.join("idle-out");
    let contenders = backup_contenders(cx, LIMIT, true);
    let names: Vec<&str> = contenders.iter().map(|c| c.0).collect();
    let mut samples: Vec<Samples> = vec![Vec::new(); contenders.len()];
    for run in 0..cx.cfg.runs {
        for (i, (name, f)) in contenders.iter().enumerate() {
            fresh(&out)?;
            // Each starts with the database in the page cache, as a live one is: otherwise whoever goes
            // first reads it from the disk for the others.
            warm(&cx.ds.db)?;
            let log = cx.fresh_log("idle", name);
            let m = f(&cx.ds.db, &out, &log)?
                .ok_or(format!("{name} did not finish in {} s", LIMIT.as_secs()))?;
            eprintln!(
                "bench: idle {} run {run} {name}: {:.2} s, {} MiB",
                human(cx.size),
                m.secs,
                m.rss >> 20
            );
            samples[i].push(m);
            if *name == OURS_BACKUP {
                r.phases("idle backup", name, &log);
            }
        }
    }
    let base = at(&names, CP).unwrap_or(0);
    let mbps = r.throughput(
        "idle backup",
        &names,
        &samples,
        cx.ds.bytes,
        base,
        "ratio to cp + fsync",
    );
    r.target(
        format!("idle backup ÷ cp + fsync at {}", human(cx.size)),
        ratio(&names, &mbps, OURS_BACKUP, CP),
        0.75,
        false,
    );
    r.target(
        format!("idle backup ÷ sqlite3 .backup at {}", human(cx.size)),
        ratio(&names, &mbps, OURS_BACKUP, "sqlite3 .backup"),
        0.8,
        false,
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// How long after a contender ends the writer's latencies are still charged to it.
const SETTLE: Duration = Duration::from_secs(1);

/// Backups while a foreign writer commits as fast as it can.
pub fn online(cx: &Ctx<'_>, r: &mut Results) -> Result<(), String> {
    if cx.tools.python3.is_none() {
        return Ok(());
    }
    let work = fresh(&cx.cfg.dir.join("online"))?;
    let live = work.join("accounts.db");
    copy(&cx.ds.db, &live)?;
    let out = work.join("out");
    // A minute per GiB (at least one): a backup that cannot finish under a busy writer is what this finds.
    let limit = Duration::from_secs(60 * (cx.ds.bytes >> 30).max(1));
    let writer = Writer::start(&live, &work)?;
    std::thread::sleep(Duration::from_secs(2));
    let base_from = now();
    std::thread::sleep(Duration::from_secs(3));
    let base = (base_from, now());
    let contenders = backup_contenders(cx, limit, false);
    // Per contender: (from, to, the run if it finished) of each run.
    let mut windows: Vec<Vec<(f64, f64, Option<Measured>)>> = vec![Vec::new(); contenders.len()];
    for run in 0..cx.cfg.runs {
        for (i, (name, f)) in contenders.iter().enumerate() {
            fresh(&out)?;
            let log = cx.fresh_log("online", name);
            let from = now();
            let m = f(&live, &out, &log)?;
            windows[i].push((from, now(), m));
            eprintln!(
                "bench: online {} run {run} {name}: {}",
                human(cx.size),
                m.map(|m| format!("{:.2} s, {} MiB", m.secs, m.rss >> 20))
                    .unwrap_or(format!("did not finish in {} s", limit.as_secs()))
            );
            if *name == OURS_BACKUP {
                r.phases("online backup", name, &log);
            }
            std::thread::sleep(SETTLE);
        }
    }
    let samples = writer.finish()?;
    let (base_rate, base_p99, base_worst, _) = window(&samples, base.0, base.1);
    r.line(
        "online backup",
        "writer alone",
        base_rate,
        "commits/s",
        Some(1.0),
        format!("p99 {base_p99:.2} ms, worst {base_worst:.1} ms"),
    );
    for ((name, _), ws) in contenders.iter().zip(&windows) {
        let done: Vec<Measured> = ws.iter().filter_map(|w| w.2).collect();
        let failed = ws.len() - done.len();
        // Commits/s while the contender ran; latencies until a second after: a snapshot pinned for the
        // copy leaves the writer's first commit after it to checkpoint the WAL that grew meanwhile, which
        // falls after a contender that releases its snapshot as it exits.
        let mut rates: Vec<f64> = ws.iter().map(|w| window(&samples, w.0, w.1).0).collect();
        let stats: Vec<(f64, f64, f64, f64)> = ws
            .iter()
            .map(|w| window(&samples, w.0, w.1 + SETTLE.as_secs_f64()))
            .collect();
        let mut p99s: Vec<f64> = stats.iter().map(|s| s.1).collect();
        // The worst commit of all runs, and how far into its run it began (which phase stalled it).
        let (worst, worst_at) =
            stats
                .iter()
                .fold((0.0, 0.0), |w, s| if s.2 > w.0 { (s.2, s.3) } else { w });
        let rate = median(&mut rates);
        let time = if done.is_empty() {
            format!("did not finish in {} s", limit.as_secs())
        } else {
            let mut t: Vec<f64> = done.iter().map(|m| m.secs).collect();
            format!("{:.2} s to a snapshot", median(&mut t))
        };
        r.line(
            "online backup",
            *name,
            rate,
            "commits/s",
            Some(rate / base_rate),
            format!(
                "{time}; {failed}/{} unfinished; writer p99 {:.2} ms, worst {worst:.1} ms at {worst_at:.1} s",
                ws.len(),
                median(&mut p99s)
            ),
        );
        r.with_process(&done, cx.ds.bytes);
        if *name == OURS_BACKUP {
            let at = human(cx.size);
            r.target(
                format!("online backup at {at}: runs that finished (all)"),
                (ws.len() - failed) as f64,
                ws.len() as f64,
                false,
            );
            r.target(
                format!("online backup at {at}: writer commits/s ÷ writer alone"),
                rate / base_rate,
                0.6,
                false,
            );
            r.target(
                format!("online backup at {at}: writer's worst commit (ms)"),
                worst,
                100.0,
                true,
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

const LIVE: &str = "sqlite-vol restore into the live database (verified)";
const EMPTY: &str = "sqlite-vol restore onto an empty volume (verified)";
const VERIFY: &str = "sqlite-vol verify (hash + quick_check, no copy)";
const SHELL_RESTORE: &str = "sqlite3 .restore";

/// Restore of a backup into a live database and onto an empty volume (a first start), beside `cp`, the
/// shell's `.restore`, and `sqlite-vol verify` alone (the checking part of a restore, for its phases).
pub fn restore(cx: &Ctx<'_>, r: &mut Results) -> Result<(), String> {
    let work = fresh(&cx.cfg.dir.join("restore"))?;
    let backup = sqlite_vol::backup::backup(
        &cx.ds.db,
        "accounts",
        &sqlite_vol::BackupOptions::new(work.join("b")),
    )
    .map_err(|e| e.to_string())?
    .path;
    let live_dir = work.join("live");
    let live = live_dir.join("accounts.db");
    let t = cx.tools;
    let mut names: Vec<&str> = Vec::new();
    if t.sqlite_vol.is_some() {
        names.push(LIVE);
    }
    if t.cp.is_some() {
        names.push(CP);
    }
    if t.sqlite3.is_some() {
        names.push(SHELL_RESTORE);
    }
    if t.sqlite_vol.is_some() {
        names.extend([EMPTY, VERIFY]);
    }
    let mut samples: Vec<Samples> = vec![Vec::new(); names.len()];
    for run in 0..cx.cfg.runs {
        for (i, name) in names.iter().enumerate() {
            fresh(&live_dir)?;
            if *name != EMPTY {
                copy(&cx.ds.db, &live)?;
            }
            let log = cx.fresh_log("restore", name);
            let ours = || {
                ours(
                    t.sqlite_vol.as_deref().unwrap_or(Path::new("sqlite-vol")),
                    &live,
                    &work.join("safety"),
                )
            };
            let m = match *name {
                LIVE => {
                    let mut c = ours();
                    c.args(["restore", "--yes", "--no-safety-backup"])
                        .arg(&backup);
                    proc::run(c, LIMIT, &log)?
                }
                EMPTY => {
                    let mut c = ours();
                    c.args(["restore", "--if-db-not-exists"]).arg(&backup);
                    proc::run(c, LIMIT, &log)?
                }
                VERIFY => {
                    let mut c = ours();
                    c.arg("verify").arg(&backup);
                    proc::run(c, LIMIT, &log)?
                }
                CP => {
                    for s in ["-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{s}", live.display()));
                    }
                    cp_fsync(
                        t.cp.as_deref().unwrap_or(Path::new("cp")),
                        &backup,
                        &live,
                        &log,
                    )?
                }
                _ => {
                    let cmd = format!(".restore '{}'", backup.display());
                    proc::run(
                        shell(
                            t.sqlite3.as_deref().unwrap_or(Path::new("sqlite3")),
                            &live,
                            &cmd,
                        ),
                        LIMIT,
                        &log,
                    )?
                }
            };
            let m = m.ok_or(format!("{name} did not finish in {} s", LIMIT.as_secs()))?;
            eprintln!(
                "bench: restore {} run {run} {name}: {:.2} s, {} MiB",
                human(cx.size),
                m.secs,
                m.rss >> 20
            );
            samples[i].push(m);
            if name.starts_with("sqlite-vol") {
                r.phases("restore", name, &log);
            }
        }
    }
    let base = at(&names, CP).unwrap_or(0);
    let mbps = r.throughput(
        "restore",
        &names,
        &samples,
        cx.ds.bytes,
        base,
        "ratio to cp + fsync",
    );
    let at_size = human(cx.size);
    r.target(
        format!("restore onto an empty volume ÷ cp + fsync at {at_size}"),
        ratio(&names, &mbps, EMPTY, CP),
        0.6,
        false,
    );
    r.target(
        format!("restore into the live database ÷ sqlite3 .restore at {at_size}"),
        ratio(&names, &mbps, LIVE, SHELL_RESTORE),
        1.2,
        false,
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
