//! Hostile environments: read-only volume, a directory owned by another user, full filesystems during a
//! write, a backup and a restore, garbage in place of the database, a WAL deleted or truncated while
//! stopped, a lock left by a dead process, two migrations at once. Each must end in a clear error or a
//! correct recovery, with no acknowledged data lost.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Config, Report};
use crate::support::{bin, register, sqlite3_integrity, Service};

const AREA: &str = "hostile environments";
const PASSWORD: &str = "hostile password 1";

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &at.to_string_lossy(),
            ],
        )?;
        Ok(Mount(at.to_path_buf()))
    }
    fn remount(&self, opts: &str) -> Result<(), String> {
        sh(
            "mount",
            &["-o", &format!("remount,{opts}"), &self.0.to_string_lossy()],
        )
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn sh(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {} (needs root)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `accounts` on `dir` expecting it to refuse: returns its output.
fn accounts_refusal(dir: &Path, uid: Option<u32>) -> Result<Output, String> {
    let mut c = match uid {
        Some(u) => {
            let mut c = crate::support::as_user(u, u, &[]);
            c.arg(bin("accounts"));
            c
        }
        None => Command::new(bin("accounts")),
    };
    c.env("DB_PATH", dir)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env_remove("SQLITE_VOL_REQUIRE_PERSISTENT");
    // A service that wrongly starts would run forever: give it 20 s.
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err("accounts started instead of refusing".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

fn expect_refusal(out: &Output, words: &[&str]) -> Result<(), String> {
    let log = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) {
        return Err(format!("exit {:?}, expected 2: {log}", out.status.code()));
    }
    match words.iter().find(|w| !log.contains(*w)) {
        Some(w) => Err(format!("the error does not say {w:?}: {log}")),
        None => Ok(()),
    }
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// Starts the service, registers `n` users, stops it cleanly; returns the emails.
fn populate(dir: &Path, n: usize, tag: &str) -> Result<Vec<String>, String> {
    let svc = Service::start(dir);
    let mut emails = Vec::new();
    for i in 0..n {
        let e = format!("{tag}{i}@hostile.test");
        if register(&svc.addr, &e, PASSWORD)
            .map_err(|e| e.to_string())?
            .0
            != 201
        {
            return Err(format!("could not register {e}"));
        }
        emails.push(e);
    }
    if svc.terminate().code() != Some(0) {
        return Err("service did not stop cleanly".into());
    }
    Ok(emails)
}

fn all_log_in(dir: &Path, emails: &[String]) -> Result<(), String> {
    let svc = Service::start(dir);
    let lost = svc.lost(emails, PASSWORD);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} acknowledged accounts lost: {lost:?}",
            lost.len()
        ))
    }
}

pub fn run(_cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();

    report.check(
        AREA,
        "read-only volume: clear refusal, file untouched",
        (|| {
            let m = Mount::tmpfs(&root.join("ro"), "16m")?;
            populate(&m.0, 2, "ro")?;
            let before = bytes(&m.0.join("accounts.db"));
            m.remount("ro")?;
            expect_refusal(&accounts_refusal(&m.0, None)?, &["read-only"])?;
            (bytes(&m.0.join("accounts.db")) == before)
                .then_some(())
                .ok_or_else(|| "file changed".into())
        })(),
    );

    report.check(
        AREA,
        "folder owned by another user: chown fix, nothing created",
        (|| {
            let dir = root.join("owned");
            std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
            expect_refusal(
                &accounts_refusal(&dir, Some(65534))?,
                &["not writable", "chown"],
            )?;
            let left = std::fs::read_dir(&dir).map_err(|e| e.to_string())?.count();
            (left == 0)
                .then_some(())
                .ok_or_else(|| format!("{left} files half-created"))
        })(),
    );

    report.check(
        AREA,
        "full filesystem during writes: no acknowledged write lost",
        (|| {
            let m = Mount::tmpfs(&root.join("fullw"), "4m")?;
            let mut acked = populate(&m.0, 3, "pre")?;
            // Leave about 40 KiB free, then register until the disk refuses.
            let free = sqlite_vol::prepare::prepare(&m.0, None, &sqlite_vol::Volume::unknown())
                .map_err(|e| e.to_string())?
                .free_bytes
                .unwrap_or(0);
            std::fs::write(
                m.0.join("filler"),
                vec![0u8; free.saturating_sub(40 << 10) as usize],
            )
            .map_err(|e| e.to_string())?;
            let svc = Service::start(&m.0);
            let mut refused = 0;
            for i in 0..400 {
                let e = format!("full{i}-{}@hostile.test", "x".repeat(200));
                match register(&svc.addr, &e, PASSWORD) {
                    Ok((201, _)) => acked.push(e),
                    Ok(_) | Err(_) => refused += 1,
                }
                if refused > 5 {
                    break;
                }
            }
            if refused == 0 {
                return Err("the filesystem never filled up: the test did not test".into());
            }
            drop(svc);
            std::fs::remove_file(m.0.join("filler")).map_err(|e| e.to_string())?;
            if sqlite3_integrity(&m.0.join("accounts.db")) != "ok" {
                return Err("integrity_check failed after the disk filled".into());
            }
            all_log_in(&m.0, &acked)
        })(),
    );

    let cli = |args: &[&str], db: &Path| {
        Command::new(bin("sqlite-vol"))
            .args(args)
            .arg("--db")
            .arg(db)
            .args(["--app", "accounts"])
            .output()
            .map_err(|e| e.to_string())
    };
    let live_dir = root.join("live");
    let emails = populate(&live_dir, 3, "live")?;
    let live = live_dir.join("accounts.db");

    report.check(
        AREA,
        "full filesystem during a backup: \"no space\", no partial, live untouched",
        (|| {
            let m = Mount::tmpfs(&root.join("fullb"), "64k")?;
            let before = bytes(&live);
            let out = cli(&["backup", "--to", &m.0.to_string_lossy()], &live)?;
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            if out.status.success() || !err.contains("no space") {
                return Err(format!("exit {:?}: {err}", out.status.code()));
            }
            let left = std::fs::read_dir(&m.0).map_err(|e| e.to_string())?.count();
            if left != 0 {
                return Err(format!("{left} files left on the full filesystem"));
            }
            (bytes(&live) == before)
                .then_some(())
                .ok_or_else(|| "live database changed".into())
        })(),
    );

    report.check(
        AREA,
        "full filesystem during a restore: refused, old database intact",
        (|| {
            // A backup bigger than the free space of the target volume.
            let big_dir = root.join("big");
            let big = super::foreign::prepare(&big_dir, 6000)?;
            let big_backup = sqlite_vol::backup::backup(
                &big,
                "campaign",
                &sqlite_vol::BackupOptions::new(root.join("bigb")),
            )
            .map_err(|e| e.to_string())?;
            let m = Mount::tmpfs(&root.join("fullr"), "3m")?;
            let small = super::foreign::prepare(&m.0, 10)?;
            let before = super::foreign::check_copy(&small);
            let count = |p: &Path| {
                Command::new("sqlite3")
                    .arg(p)
                    .arg("SELECT count(*) FROM t")
                    .output()
                    .map(|o| o.stdout)
                    .unwrap_or_default()
            };
            let rows_before = count(&small);
            let out = Command::new(bin("sqlite-vol"))
                .args([
                    "restore",
                    &big_backup.path.to_string_lossy(),
                    "--yes",
                    "--no-safety-backup",
                    "--db",
                    &small.to_string_lossy(),
                    "--app",
                    "campaign",
                ])
                .output()
                .map_err(|e| e.to_string())?;
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            if out.status.success() || !(err.contains("no space") || err.contains("full")) {
                return Err(format!("exit {:?}: {err}", out.status.code()));
            }
            let after = super::foreign::check_copy(&small);
            if after != before || after.0 != "ok" || count(&small) != rows_before {
                return Err(format!("old database not intact: {after:?}"));
            }
            Ok(())
        })(),
    );

    report.check(
        AREA,
        "garbage in place of the database: refused, file untouched",
        (|| {
            let dir = root.join("garbage");
            std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
            let junk: Vec<u8> = (0..65536u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            std::fs::write(dir.join("accounts.db"), &junk).map_err(|e| e.to_string())?;
            expect_refusal(
                &accounts_refusal(&dir, None)?,
                &["not a usable SQLite database"],
            )?;
            (bytes(&dir.join("accounts.db")) == junk)
                .then_some(())
                .ok_or_else(|| "garbage file was changed".into())
        })(),
    );

    report.check(AREA, "WAL deleted while cleanly stopped: nothing lost", {
        let _ = std::fs::remove_file(live_dir.join("accounts.db-wal"));
        let _ = std::fs::remove_file(live_dir.join("accounts.db-shm"));
        all_log_in(&live_dir, &emails)
    });

    report.check(
        AREA,
        "WAL truncated after a crash: starts, integrity ok",
        (|| {
            let svc = Service::start(&live_dir);
            for i in 0..3 {
                register(&svc.addr, &format!("crash{i}@hostile.test"), PASSWORD)
                    .map_err(|e| e.to_string())?;
            }
            svc.kill();
            let wal = live_dir.join("accounts.db-wal");
            let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&wal)
                .and_then(|f| f.set_len(len / 2))
                .map_err(|e| e.to_string())?;
            let svc = Service::start(&live_dir);
            drop(svc);
            (sqlite3_integrity(&live) == "ok")
                .then_some(())
                .ok_or_else(|| "integrity_check failed".into())
        })(),
    );

    report.check(AREA, "lock left by a killed holder is taken over", (|| {
        let lock = format!("{}.lock", live.display());
        let holder = Command::new("python3")
            .args(["-c", "import fcntl,os,sys,time\nf=open(sys.argv[1],'a+')\nfcntl.flock(f,fcntl.LOCK_EX)\nf.truncate(0);f.write('{\"pid\":%d,\"operation\":\"restore\",\"since\":\"2020-01-01T00:00:00Z\"}'%os.getpid());f.flush()\nprint('held',flush=True)\ntime.sleep(600)", &lock])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut holder = holder;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().ok_or("stdout")?), &mut line).map_err(|e| e.to_string())?;
        let busy = cli(&["backup"], &live)?;
        let _ = holder.kill();
        let _ = holder.wait();
        let after = cli(&["backup"], &live)?;
        let said = String::from_utf8_lossy(&busy.stderr);
        if busy.status.code() != Some(2) || !said.contains("in progress") {
            return Err(format!("while held: exit {:?}: {said}", busy.status.code()));
        }
        after.status.success().then_some(()).ok_or_else(|| format!("after the holder died: {}", String::from_utf8_lossy(&after.stderr)))
    })());

    report.check(AREA, "two migrations at once: each migration applied once", (|| {
        let dir = root.join("twomig");
        let m = dir.join("m");
        std::fs::create_dir_all(&m).map_err(|e| e.to_string())?;
        std::fs::write(m.join("V1__a.sql"), "CREATE TABLE a (x);\nINSERT INTO a SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i FROM n);\n").map_err(|e| e.to_string())?;
        std::fs::write(m.join("V2__b.sql"), "CREATE TABLE b AS SELECT * FROM a;\n").map_err(|e| e.to_string())?;
        let db = dir.join("accounts.db");
        drop(sqlite_vol::Database::builder("accounts").path(&db).backup_every(std::time::Duration::ZERO, None).open().map_err(|e| e.to_string())?);
        let spawn = || cli(&["migrate", "--dir", &m.to_string_lossy()], &db);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (a.join(), b.join())
        });
        let (a, b) = (a.map_err(|_| "panic")??, b.map_err(|_| "panic")??);
        for o in [&a, &b] {
            let said = String::from_utf8_lossy(&o.stderr);
            if !(o.status.success() || (o.status.code() == Some(2) && said.contains("in progress"))) {
                return Err(format!("exit {:?}: {said}", o.status.code()));
            }
        }
        let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
        let (n, versions): (i64, i64) = c
            .query_row("SELECT count(*), count(DISTINCT version) FROM refinery_schema_history", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| e.to_string())?;
        ((n, versions) == (2, 2)).then_some(()).ok_or_else(|| format!("history has {n} rows for {versions} versions"))
    })());
    Ok(())
}
