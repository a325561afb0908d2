//! Every timed contender is a process of its own (our `sqlite-vol` CLI, the `sqlite3` shell, `cp`, boto3,
//! `litestream`), measured the same way: wall time from spawn to exit, and peak resident memory from the
//! kernel's own account of that one child (`wait4(2)`'s `ru_maxrss`), so no tool is flattered by where it
//! runs. Also finds the contenders' tools, so one that is missing is skipped with one line.
//!
//! Linux carries a process's peak RSS across `exec`, and a spawned child starts from its parent's memory,
//! so a child of the bench (tens of MiB after building a data set) would report at least the bench's own
//! peak. Each contender is therefore started through a measurer: the bench binary re-run as
//! `bench --measure LIMIT_MS PROGRAM ARGS…`, a fresh process of a few MiB that spawns the contender, reaps
//! it with `wait4` and prints what it used.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::process::{ExitCode, ExitStatus};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use wait4::Wait4;

/// One process's run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Wall seconds from spawn to exit.
    pub secs: f64,
    /// Peak resident set size in bytes.
    pub rss: u64,
}

impl Measured {
    /// Two processes one after the other: times add, the peak is the larger one.
    pub fn then(self, next: Measured) -> Measured {
        Measured {
            secs: self.secs + next.secs,
            rss: self.rss.max(next.rss),
        }
    }

    /// Adds seconds spent outside any process (an fsync done by the bench itself).
    pub fn plus(self, d: Duration) -> Measured {
        Measured {
            secs: self.secs + d.as_secs_f64(),
            rss: self.rss,
        }
    }
}

/// The binary that measures contenders (the bench itself, re-run with `--measure`); unset: spawn directly.
static MEASURER: OnceLock<PathBuf> = OnceLock::new();

/// Starts every later contender through `exe --measure …` (see the module's note on inherited peaks).
pub fn measure_through(exe: PathBuf) {
    let _ = MEASURER.set(exe);
}

/// What a reaped child used.
struct Outcome {
    status: ExitStatus,
    killed: bool,
    secs: f64,
    rss: u64,
}

/// Spawns `c`, kills it after `limit`, reaps it with `wait4`.
fn spawn_wait(mut c: Command, limit: Duration) -> Result<Outcome, String> {
    let what = format!("{:?}", c.get_program());
    let t = Instant::now();
    let mut child = c.spawn().map_err(|e| format!("{what}: {e}"))?;
    // wait4 blocks; a timer thread kills the child if it outlives its limit.
    let (done, timer) = mpsc::channel::<()>();
    let pid = child.id().to_string();
    let killer = std::thread::spawn(move || {
        if timer.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid])
                .stderr(Stdio::null())
                .status();
            return true;
        }
        false
    });
    let used = child.wait4().map_err(|e| format!("{what}: wait4: {e}"));
    let secs = t.elapsed().as_secs_f64();
    let _ = done.send(());
    let killed = killer.join().unwrap_or(false);
    let used = used?;
    Ok(Outcome {
        status: used.status,
        killed,
        secs,
        rss: used.rusage.maxrss,
    })
}

/// The measurer's side, `bench --measure LIMIT_MS PROGRAM ARGS…`: runs the program (stdout discarded,
/// stderr shared) and prints `killed|ok|failed:STATUS SECS RSS_BYTES` on stdout.
pub fn measurer_main(args: &[String]) -> ExitCode {
    let (Some(limit), Some(program)) = (args.first().and_then(|l| l.parse().ok()), args.get(1))
    else {
        eprintln!("usage: bench --measure LIMIT_MS PROGRAM [ARGS…]");
        return ExitCode::from(2);
    };
    let mut c = Command::new(program);
    c.args(&args[2..])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match spawn_wait(c, Duration::from_millis(limit)) {
        Ok(o) => {
            let how = if o.killed {
                "killed".to_string()
            } else if o.status.success() {
                "ok".to_string()
            } else {
                format!("failed:{}", o.status).replace(' ', "_")
            };
            println!("{how} {} {}", o.secs, o.rss);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench --measure: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `c` (through the measurer when one is set) with stdout discarded and stderr appended to `log`,
/// killing it after `limit`. `Ok(None)` when it did not finish in time; an error (with the end of its
/// stderr) when it failed.
///
/// # Errors
/// The spawn failed or the process exited unsuccessfully.
pub fn run(c: Command, limit: Duration, log: &Path) -> Result<Option<Measured>, String> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let what = format!("{:?}", c.get_program());
    let Some(exe) = MEASURER.get() else {
        let mut c = c;
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let o = spawn_wait(c, limit)?;
        if o.killed {
            return Ok(None);
        }
        if !o.status.success() {
            return Err(format!("{what} {}: {}", o.status, tail(log)));
        }
        return Ok(Some(Measured {
            secs: o.secs,
            rss: o.rss,
        }));
    };
    let mut m = Command::new(exe);
    m.arg("--measure")
        .arg(limit.as_millis().to_string())
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => m.env(k, v),
            None => m.env_remove(k),
        };
    }
    if let Some(d) = c.get_current_dir() {
        m.current_dir(d);
    }
    let out = m
        .stdin(Stdio::null())
        .stderr(err)
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let (how, secs, rss) = (
        f.next(),
        f.next().and_then(|s| s.parse().ok()),
        f.next().and_then(|s| s.parse().ok()),
    );
    match (how, secs, rss) {
        (Some("killed"), _, _) => Ok(None),
        (Some("ok"), Some(secs), Some(rss)) => Ok(Some(Measured { secs, rss })),
        (Some(how), _, _) if how.starts_with("failed:") => Err(format!(
            "{what} {}: {}",
            how.trim_start_matches("failed:").replace('_', " "),
            tail(log)
        )),
        _ => Err(format!(
            "{what}: the measurer said {text:?} ({}): {}",
            out.status,
            tail(log)
        )),
    }
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}

/// A command on the `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The tools the contenders need; `None` where missing.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Our CLI (`target/release/sqlite-vol`).
    pub sqlite_vol: Option<PathBuf>,
    /// The stock `sqlite3` shell.
    pub sqlite3: Option<PathBuf>,
    /// `python3` with its sqlite3 module (the foreign writer).
    pub python3: Option<PathBuf>,
    /// `cp`.
    pub cp: Option<PathBuf>,
    /// `curl` (lists moto's bucket while Litestream replicates).
    pub curl: Option<PathBuf>,
    /// moto's server and the Python of its venv (with boto3), from `tests/tools.sh`.
    pub moto: Option<(PathBuf, PathBuf)>,
    /// `litestream`, from `tests/tools.sh`.
    pub litestream: Option<PathBuf>,
}

/// `$var` if set, else `target/tools/<rel>`, if it is a file.
fn installed(var: &str, rel: &str) -> Option<PathBuf> {
    let p = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/tools")
            .join(rel),
    };
    p.is_file().then_some(p)
}

impl Tools {
    /// Looks for every tool and says in one line each which contenders a missing one skips.
    pub fn find() -> Tools {
        let ours = crate::support::bin("sqlite-vol");
        let moto = installed("SQLITE_VOL_MOTO_SERVER", "moto/bin/moto_server")
            .zip(installed("SQLITE_VOL_MOTO_PYTHON", "moto/bin/python"));
        let t = Tools {
            sqlite_vol: ours.is_file().then_some(ours),
            sqlite3: which("sqlite3"),
            python3: which("python3"),
            cp: which("cp"),
            curl: which("curl"),
            moto,
            litestream: installed("SQLITE_VOL_LITESTREAM", crate::offsite::LITESTREAM),
        };
        let say = |missing: bool, what: &str, skips: &str| {
            if missing {
                eprintln!("bench: {what} not found: skipping {skips}");
            }
        };
        say(
            t.sqlite_vol.is_none(),
            "target/release/sqlite-vol (cargo build --release -p sqlite-vol-cli)",
            "every sqlite-vol contender",
        );
        say(
            t.sqlite3.is_none(),
            "sqlite3 (apt-get install sqlite3)",
            "the sqlite3 shell's .backup, VACUUM INTO and .restore",
        );
        say(
            t.python3.is_none(),
            "python3",
            "the online section (its foreign writer is Python)",
        );
        say(t.cp.is_none(), "cp", "cp + fsync");
        say(
            t.moto.is_none() || t.curl.is_none(),
            "moto (bash tests/tools.sh) or curl",
            "the off-site section",
        );
        say(
            t.litestream.is_none(),
            "litestream (bash tests/tools.sh)",
            "litestream restore",
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python(code: &str) -> Command {
        let mut c = Command::new("python3");
        c.args(["-c", code]);
        c
    }

    #[test]
    fn peak_rss_is_the_childs_own_high_water_mark() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("log");
        // 256 MiB touched page by page, then freed before exit: the peak still counts it.
        let big = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ndel b";
        let big = run(python(big), Duration::from_secs(60), &log)?.ok_or("timed out")?;
        assert!(big.rss >= 256 << 20, "peak {} B", big.rss);
        assert!(big.secs > 0.0);
        Ok(())
    }

    #[test]
    fn a_child_past_its_limit_is_killed_and_reported_unfinished() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let t = Instant::now();
        let m = run(
            python("import time; time.sleep(30)"),
            Duration::from_millis(300),
            &dir.path().join("log"),
        )?;
        assert!(m.is_none());
        assert!(t.elapsed() < Duration::from_secs(10));
        Ok(())
    }

    #[test]
    fn the_measurer_reports_a_small_child_small_whatever_the_parents_size() -> Result<(), String> {
        // A parent with 300 MiB resident: a child spawned directly would inherit that as its floor.
        let ballast = vec![1u8; 300 << 20];
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("log");
        let direct = run(python("pass"), Duration::from_secs(60), &log)?.ok_or("timed out")?;
        // The measurer is a fresh small process; here a python3 one standing in for `bench --measure`.
        let measurer = "import os, sys, time\nt = time.time(); pid = os.spawnvp(os.P_NOWAIT, 'python3', ['python3', '-c', 'pass'])\n_, st, ru = os.wait4(pid, 0)\nprint('ok', time.time() - t, ru.ru_maxrss * 1024)";
        let via = python(measurer).output().map_err(|e| e.to_string())?;
        let rss: u64 = String::from_utf8_lossy(&via.stdout)
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .ok_or("no rss from the measurer")?;
        assert!(ballast.iter().step_by(4096).all(|b| *b == 1));
        assert!(
            direct.rss >= 300 << 20,
            "direct child peak {} B",
            direct.rss
        );
        assert!(rss < 64 << 20, "measured child peak {rss} B");
        Ok(())
    }

    #[test]
    fn a_failing_child_is_an_error_with_its_stderr() {
        let dir = tempfile::tempdir().expect("temp dir");
        let code = "import sys; sys.stderr.write('no such table: x\\n'); sys.exit(3)";
        let err = run(
            python(code),
            Duration::from_secs(60),
            &dir.path().join("log"),
        )
        .expect_err("exit 3");
        assert!(err.contains("no such table: x"), "{err}");
    }
}
