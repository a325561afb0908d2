//! A Litestream sidecar replicating the live database to an S3-compatible server (moto) while the service
//! writes, restarts, crashes, and while `sqlite-vol` takes its own backups: every acknowledged write comes
//! back from the replica alone, Litestream's checkpoints keep the WAL bounded, and a point-in-time restore
//! brings back exactly what was committed before that time. Litestream 0.5.17 runs with the shipped
//! `docker/litestream.yml`, only its database path changed, at log level debug: its debug lines are what
//! these tests read (each upload, each checkpoint, and the reason for any snapshot it did not plan).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlite_vol_tests::offsite::{litestream, Moto};
use sqlite_vol_tests::support::{bin, log_file, register, sqlite3_integrity, Service, TestResult};

const PASSWORD: &str = "correct horse battery staple";
const BUCKET: &str = "replicas";
/// The database path in the shipped config, which is the accounts image's (`DB_PATH=/data`).
const SHIPPED_DB: &str = "/data/accounts.db";

/// `docker/litestream.yml` with its database path replaced by `db`, written to `dir/litestream.yml`.
fn config(dir: &Path, db: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/litestream.yml");
    let text = std::fs::read_to_string(&shipped).expect("docker/litestream.yml");
    assert_eq!(
        text.matches(&format!("path: {SHIPPED_DB}\n")).count(),
        1,
        "docker/litestream.yml must name {SHIPPED_DB} once as its database path"
    );
    let path = dir.join("litestream.yml");
    let db = db.to_str().expect("a UTF-8 temp path");
    std::fs::write(
        &path,
        text.replace(&format!("path: {SHIPPED_DB}\n"), &format!("path: {db}\n")),
    )
    .expect("write config");
    path
}

/// The environment the config expects: moto's `AWS_*`, the bucket and prefix, and debug logging.
fn env(moto: &Moto, prefix: &str) -> Vec<(&'static str, String)> {
    let mut env = moto.env();
    env.push(("LITESTREAM_BUCKET", BUCKET.into()));
    env.push(("LITESTREAM_PATH", prefix.into()));
    env.push(("LITESTREAM_LOG_LEVEL", "debug".into()));
    env
}

/// `litestream` with the environment `env` and none of the caller's `AWS_CA_BUNDLE`, with which Litestream
/// 0.5.17 refuses to start ("unable to add custom RootCAs HTTPClient"; docker/litestream.yml says so).
fn litestream_cmd(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(litestream());
    cmd.env_remove("AWS_CA_BUNDLE")
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// A running `litestream replicate`, killed if dropped (a test that panics leaves no process behind).
struct Replicator {
    child: Child,
    log: PathBuf,
}

impl Replicator {
    fn start(config: &Path, env: &[(&str, String)]) -> Replicator {
        let mut cmd = litestream_cmd(env);
        cmd.args(["replicate", "-config"]).arg(config);
        Replicator::spawn(cmd)
    }

    /// Runs `cmd` (a `litestream replicate …`) with its output in a log file, until it replicates.
    fn spawn(mut cmd: Command) -> Replicator {
        let (out, log) = log_file("litestream");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn litestream");
        let mut r = Replicator { child, log };
        r.wait_for_log("replicating to", Duration::from_secs(20));
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls until `done` holds; fails the test if Litestream exits first or `within` passes.
    fn wait_until(&mut self, what: &str, within: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("litestream exited ({s}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "litestream {what} within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_log(&mut self, needle: &str, within: Duration) {
        self.wait_until(&format!("did not log {needle:?}"), within, |r| {
            r.log().contains(needle)
        });
    }

    /// How many level-0 LTX files (one per sync that found new WAL frames) Litestream has uploaded so far.
    fn uploads(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("msg=\"ltx file uploaded\"") && l.contains(" level=0 "))
            .count()
    }

    /// Waits until Litestream has uploaded `n` more LTX files, i.e. replicated while the load runs.
    fn wait_for_uploads(&mut self, n: usize) {
        let want = self.uploads() + n;
        self.wait_until("uploaded nothing", Duration::from_secs(20), |r| {
            r.uploads() >= want
        });
    }

    /// SIGTERM: Litestream 0.5.17 syncs the WAL into a last LTX file and uploads it before it exits
    /// (`DB.Close` in its db.go, retrying for up to its 30 s shutdown-sync-timeout), so this is the final
    /// sync. Waits up to 60 s; returns the exit status and the log.
    fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return (s, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "litestream ignored SIGTERM for 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The syncs in a Litestream log where it found the WAL changed behind its back (overwritten, truncated or
/// restarted by a checkpoint it did not control) and so had to snapshot the whole database again: its debug
/// `sync` line then carries a `reason=`. (Litestream 0.3 started a new generation instead.)
fn unplanned_snapshots(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("msg=sync ") && l.contains("reason="))
        .collect()
}

/// A one-shot `litestream <args>` with the config and environment; fails the test on a non-zero exit.
fn litestream_run(args: &[&str], config: &Path, env: &[(&str, String)], db: &Path) -> Output {
    let out = litestream_cmd(env)
        .args(args)
        .arg("-config")
        .arg(config)
        .arg(db)
        .output()
        .expect("run litestream");
    assert!(
        out.status.success(),
        "litestream {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the bucket holds: `litestream ltx -level all` (level, TXID range, size, time of each LTX file).
fn ltx_listing(config: &Path, env: &[(&str, String)], db: &Path) -> String {
    let out = litestream_run(&["ltx", "-level", "all"], config, env, db);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Registration workers against one service until it stops answering or `stop` is set; every 201 is
/// recorded as acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, tag: &str, workers: usize, acked: &Arc<Mutex<Vec<String>>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|w| {
                let (addr, acked, stop) = (addr.to_string(), Arc::clone(acked), Arc::clone(&stop));
                let tag = tag.to_string();
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let email = format!("{tag}w{w}n{i}@example.com");
                        match register(&addr, &email, PASSWORD) {
                            Ok((201, _)) => acked.lock().map(|mut a| a.push(email)).unwrap_or(()),
                            // Stopped or killed mid-request: not acknowledged.
                            Ok((0, _)) | Err(_) => break,
                            Ok((code, body)) => panic!("register answered {code}: {body}"),
                        }
                    }
                })
            })
            .collect();
        Load { stop, workers }
    }

    fn join(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().expect("a load worker panicked");
        }
    }
}

/// Waits until `n` more registrations than `from` were acknowledged (so each phase writes under load).
fn wait_for_acks(acked: &Arc<Mutex<Vec<String>>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let from = acked.lock().map(|a| a.len()).unwrap_or(0);
    while acked.lock().map(|a| a.len()).unwrap_or(0) < from + n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} registrations in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_acknowledged_registration_logs_in_after_restoring_from_litestream_alone() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir()?;
    let (data, scratch, restored) = (
        tmp.path().join("data"),
        tmp.path().join("scratch"),
        tmp.path().join("restored"),
    );
    for d in [&data, &scratch] {
        std::fs::create_dir(d)?;
    }
    let db = data.join("accounts.db");
    let cfg = config(&scratch, &db);
    let env = env(&moto, "accounts");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let svc = Service::start(&data);
    let mut replicator = Replicator::start(&cfg, &env);
    // Litestream picks the database up at its next one-second check and uploads its first LTX file (the
    // whole database).
    replicator.wait_for_uploads(1);

    // Load, with one of our own online backups in the middle of it.
    let load = Load::start(&svc.addr, "a", 4, &acked);
    wait_for_acks(&acked, 10);
    let out = Command::new(bin("sqlite-vol"))
        .args(["backup", "--app", "accounts", "--db"])
        .arg(&db)
        .arg("--backup-dir")
        .arg(&scratch)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sqlite-vol backup beside Litestream failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = stdout
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".db"))
        .ok_or("backup printed no file")?;
    let verify = Command::new(bin("sqlite-vol"))
        .arg("verify")
        .arg(file.trim())
        .output()?;
    assert!(
        verify.status.success(),
        "the backup taken beside Litestream does not verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    wait_for_acks(&acked, 10);
    replicator.wait_for_uploads(1);

    // A graceful restart under load: the shutdown checkpoint must not wait on Litestream's read lock.
    let service_log = svc.log.clone();
    let stopping = Instant::now();
    let status = svc.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM beside Litestream must exit 0"
    );
    let stopped_in = stopping.elapsed();
    load.join();

    let svc = Service::start(&data);
    let load = Load::start(&svc.addr, "b", 4, &acked);
    wait_for_acks(&acked, 10);
    replicator.wait_for_uploads(1);
    wait_for_acks(&acked, 10);
    // A crash mid-load: whatever was acknowledged is in the WAL, and Litestream reads it from there.
    svc.kill();
    load.join();

    let (status, log) = replicator.stop();
    assert!(
        status.success(),
        "litestream's final sync failed ({status}):\n{log}"
    );
    let listing = ltx_listing(&cfg, &env, &db);
    let checkpointed = std::fs::read_to_string(&service_log)?
        .lines()
        .filter(|l| l.contains("WAL checkpointed"))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!(
        "{} acknowledged; service stopped in {stopped_in:?}: {checkpointed}\nthe bucket's LTX files:\n{listing}",
        acked.lock().map(|a| a.len()).unwrap_or(0)
    );
    let unplanned = unplanned_snapshots(&log);
    assert!(
        unplanned.is_empty(),
        "across a graceful restart and a crash Litestream never found the WAL changed behind its back; \
         these syncs mean a checkpoint took WAL frames it had not copied:\n{}\n{log}",
        unplanned.join("\n")
    );

    // The machine is gone: only the bucket is left.
    std::fs::remove_dir_all(&data)?;
    std::fs::create_dir(&restored)?;
    let new_db = restored.join("accounts.db");
    litestream_run(
        &["restore", "-o", new_db.to_str().ok_or("path")?],
        &cfg,
        &env,
        &db,
    );
    assert_eq!(sqlite3_integrity(&new_db), "ok");

    // The restored file still carries the identity stamp, so a service that refuses to create a database
    // accepts it.
    let svc = Service::start_with(&restored, &[("SQLITE_VOL_EXPECT_EXISTING", "1")]);
    let acked = acked.lock().map_err(|_| "poisoned")?.clone();
    assert!(
        acked.len() >= 40,
        "too few acknowledged writes ({})",
        acked.len()
    );
    let lost = svc.lost(&acked, PASSWORD);
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged registrations missing after the restore: {lost:?}",
        lost.len(),
        acked.len()
    );
    assert_eq!(svc.terminate().code(), Some(0));
    Ok(())
}

/// The WAL header's salt-1 (bytes 16..20): it changes each time a writer restarts the WAL from its start.
fn wal_salt(wal: &Path) -> Option<[u8; 4]> {
    let bytes = std::fs::read(wal).ok()?;
    bytes.get(16..20)?.try_into().ok()
}

#[test]
fn litestream_checkpoints_keep_the_wal_bounded_under_the_librarys_pragmas() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir()?;
    let (data, scratch) = (tmp.path().join("data"), tmp.path().join("scratch"));
    for d in [&data, &scratch] {
        std::fs::create_dir(d)?;
    }
    let db_path = data.join("accounts.db");
    let cfg = config(&scratch, &db_path);
    let env = env(&moto, "wal");

    // The library's own pool and pragmas (WAL, autocheckpoint at 1000 pages, journal_size_limit).
    let db = sqlite_vol::Database::builder("accounts")
        .path(&db_path)
        .open()?;
    db.write(|tx| -> Result<_, Box<dyn std::error::Error>> {
        Ok(tx.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")?)
    })?;
    let mut replicator = Replicator::start(&cfg, &env);
    replicator.wait_for_uploads(1);

    // A steady writer, paced like a busy service rather than a bulk load, until the WAL has restarted from
    // its start twice and twice its largest size has gone through it. Litestream checkpoints
    // once the WAL passes 1000 pages; a WAL that grew without bound would never let this loop end.
    let wal = data.join("accounts.db-wal");
    let blob = vec![0x5au8; 64 * 1024];
    let (mut written, mut max_wal, mut restarts) = (0u64, 0u64, 0);
    let mut salt = wal_salt(&wal);
    let deadline = Instant::now() + Duration::from_secs(40);
    while restarts < 2 || written < 2 * max_wal {
        assert!(
            Instant::now() < deadline,
            "the WAL restarted {restarts} times in 40 s ({written} bytes written, WAL up to {max_wal}):\n{}",
            replicator.log()
        );
        for _ in 0..4 {
            db.write(|tx| -> Result<_, Box<dyn std::error::Error>> {
                Ok(tx.execute("INSERT INTO blobs (b) VALUES (?1)", [&blob])?)
            })?;
            written += blob.len() as u64;
        }
        max_wal = max_wal.max(std::fs::metadata(&wal)?.len());
        let now = wal_salt(&wal);
        if now != salt {
            restarts += 1;
            salt = now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = replicator.log();
    let litestream_checkpoints = log.matches("msg=checkpoint").count();
    eprintln!(
        "{written} bytes written, WAL at most {max_wal} bytes, {restarts} restarts, \
         {litestream_checkpoints} Litestream checkpoints"
    );
    assert!(
        litestream_checkpoints >= 1,
        "the WAL restarted, but not by Litestream:\n{log}"
    );
    let rows: i64 = db
        .conn()?
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
    db.close()?;
    // Litestream 0.3.13 exited 1 here when the WAL held 1000 pages or more (its final checkpoint ran on a
    // cancelled context); 0.5.17 must stop cleanly, with no error logged.
    let (status, log) = replicator.stop();
    let errors: Vec<_> = log.lines().filter(|l| l.contains("level=ERROR")).collect();
    assert!(
        status.success() && errors.is_empty(),
        "litestream stopped with {status}:\n{log}"
    );
    let unplanned = unplanned_snapshots(&log);
    assert!(
        unplanned.is_empty(),
        "the library's checkpoints changed the WAL behind Litestream's back:\n{}\n{log}",
        unplanned.join("\n")
    );
    let copy = scratch.join("restored.db");
    litestream_run(
        &["restore", "-o", copy.to_str().ok_or("path")?],
        &cfg,
        &env,
        &db_path,
    );
    let restored: i64 =
        rusqlite::Connection::open(&copy)?
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?;
    assert_eq!(restored, rows, "rows in the replica after the final sync");
    Ok(())
}

/// Now in UTC as RFC 3339 with nanoseconds, the form `litestream restore -timestamp` takes.
fn utc_now() -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
        .output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Rows of `events` in the database at `path` with `phase`, through the library's own pool and pragmas.
fn events(path: &Path, phase: &str) -> Result<i64, Box<dyn std::error::Error>> {
    let db = sqlite_vol::Database::builder("accounts")
        .path(path)
        .open()?;
    let n = db.conn()?.query_row(
        "SELECT count(*) FROM events WHERE phase = ?1",
        [phase],
        |r| r.get(0),
    )?;
    db.close()?;
    Ok(n)
}

#[test]
fn a_point_in_time_restore_brings_back_what_was_committed_before_then_and_nothing_after(
) -> TestResult {
    const ROWS: i64 = 20;
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir()?;
    let (data, scratch) = (tmp.path().join("data"), tmp.path().join("scratch"));
    for d in [&data, &scratch] {
        std::fs::create_dir(d)?;
    }
    let db_path = data.join("accounts.db");
    let cfg = config(&scratch, &db_path);
    let env = env(&moto, "pitr");
    let db = sqlite_vol::Database::builder("accounts")
        .path(&db_path)
        .open()?;
    let insert = |phase: &str| -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..ROWS {
            db.write(|tx| -> Result<_, Box<dyn std::error::Error>> {
                Ok(tx.execute("INSERT INTO events (phase) VALUES (?1)", [phase])?)
            })?;
        }
        Ok(())
    };
    db.write(|tx| -> Result<_, Box<dyn std::error::Error>> {
        Ok(tx.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, phase TEXT NOT NULL)")?)
    })?;
    let mut replicator = Replicator::start(&cfg, &env);
    replicator.wait_for_uploads(1);

    // Before T, one commit each; then wait until a plain restore of the bucket holds all of them, so the
    // LTX files carrying them were written (and stamped) before T.
    insert("before")?;
    let latest = scratch.join("latest.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = std::fs::remove_file(&latest);
        litestream_run(
            &["restore", "-o", latest.to_str().ok_or("path")?],
            &cfg,
            &env,
            &db_path,
        );
        if events(&latest, "before")? == ROWS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bucket did not hold the first {ROWS} commits within 30 s:\n{}",
            replicator.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Litestream's LTX times may be whole seconds: keep a second clear on each side of T.
    std::thread::sleep(Duration::from_millis(1100));
    let t = utc_now()?;
    std::thread::sleep(Duration::from_millis(1100));
    insert("after")?;
    db.close()?;
    // The final sync uploads the commits after T.
    let (status, log) = replicator.stop();
    assert!(status.success(), "litestream stopped with {status}:\n{log}");

    let then = scratch.join("then.db");
    litestream_run(
        &[
            "restore",
            "-timestamp",
            &t,
            "-o",
            then.to_str().ok_or("path")?,
        ],
        &cfg,
        &env,
        &db_path,
    );
    let _ = std::fs::remove_file(&latest);
    litestream_run(
        &["restore", "-o", latest.to_str().ok_or("path")?],
        &cfg,
        &env,
        &db_path,
    );
    let listing = ltx_listing(&cfg, &env, &db_path);
    // The newest restore has both halves, so the bucket had the later commits for the timed one to leave out.
    assert_eq!(
        (events(&latest, "before")?, events(&latest, "after")?),
        (ROWS, ROWS),
        "the newest restore:\n{listing}"
    );
    let verify = Command::new(bin("sqlite-vol"))
        .arg("verify")
        .arg(&then)
        .output()?;
    assert!(
        verify.status.success(),
        "the file restored to {t} does not verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(
        (events(&then, "before")?, events(&then, "after")?),
        (ROWS, 0),
        "restored to {t}: every commit before it, none after:\n{listing}"
    );
    Ok(())
}

/// The `litestream` findings of `sqlite-vol doctor --json` for the database at `db`: (status, detail).
fn doctor_litestream(db: &Path) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let out = Command::new(bin("sqlite-vol"))
        .args(["doctor", "--json", "--app", "accounts", "--db"])
        .arg(db)
        .output()?;
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "doctor --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    Ok(j["checks"]
        .as_array()
        .ok_or("doctor printed no checks")?
        .iter()
        .filter(|c| c["name"] == "litestream")
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("status"), field("detail"))
        })
        .collect())
}

#[test]
fn doctor_passes_litestream_0_5_17_beside_the_database_and_warns_about_0_3() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let tmp = tempfile::tempdir()?;
    let (data, scratch) = (tmp.path().join("data"), tmp.path().join("scratch"));
    for d in [&data, &scratch] {
        std::fs::create_dir(d)?;
    }
    let db_path = data.join("accounts.db");
    let cfg = config(&scratch, &db_path);
    let env = env(&moto, "doctor");
    let db = sqlite_vol::Database::builder("accounts")
        .path(&db_path)
        .open()?;
    db.write(|tx| -> Result<_, Box<dyn std::error::Error>> {
        Ok(tx.execute_batch("CREATE TABLE t (x)")?)
    })?;
    // Nothing beside the database: doctor says nothing about Litestream.
    assert_eq!(doctor_litestream(&db_path)?, Vec::new());

    let mut replicator = Replicator::start(&cfg, &env);
    replicator.wait_for_uploads(1);
    let found = doctor_litestream(&db_path)?;
    assert!(
        found.len() == 1 && found[0].0 == "pass" && found[0].1.contains("Litestream 0.5.17 (pid "),
        "doctor beside Litestream 0.5.17: {found:?}"
    );
    let (status, log) = replicator.stop();
    assert!(status.success(), "litestream stopped with {status}:\n{log}");

    // A real Litestream 0.3 (SQLITE_VOL_LITESTREAM_03, e.g. the npm package @flydotio/litestream-linux-x64
    // 1.0.1) replicating the same file to a folder; the library's unit tests cover 0.3 with a stand-in.
    let Some(old) = std::env::var_os("SQLITE_VOL_LITESTREAM_03") else {
        eprintln!("SQLITE_VOL_LITESTREAM_03 is not set: not checked against a real Litestream 0.3");
        return Ok(());
    };
    let mut cmd = Command::new(old);
    cmd.arg("replicate")
        .arg(&db_path)
        .arg(format!("file://{}", scratch.join("replica").display()));
    let mut replicator = Replicator::spawn(cmd);
    // 0.3 opens the database at its first check, and then starts a generation.
    replicator.wait_for_log("new generation", Duration::from_secs(20));
    let found = doctor_litestream(&db_path)?;
    assert!(
        found.len() == 1 && found[0].0 == "warn" && found[0].1.contains("Litestream v0.3"),
        "doctor beside Litestream 0.3: {found:?}"
    );
    drop(replicator);
    db.close()?;
    // What 0.3 left beside the database is still seen once it has gone.
    let found = doctor_litestream(&db_path)?;
    assert!(
        found.len() == 1 && found[0].0 == "warn" && found[0].1.contains("generations"),
        "doctor after Litestream 0.3 has gone: {found:?}"
    );
    Ok(())
}
