//! The real binary: stopped with SIGTERM and started again on the same directory, its data is all there.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::support::{tempdir, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_accounts");
const PW: &str = "correct horse battery";

/// Variables of the toolkit and the service that must not leak in from the test's environment.
const CLEARED: &[&str] = &[
    "ACCOUNTS_DB_PATH",
    "DATABASE_URL",
    "SQLITE_VOL_REQUIRE_PERSISTENT",
    "SQLITE_VOL_EXPECT_EXISTING",
    "SQLITE_VOL_SYNCHRONOUS",
    "SQLITE_VOL_BACKUP_DIR",
    "SQLITE_VOL_BACKUP_INTERVAL",
    "SQLITE_VOL_BACKUP_KEEP",
    "SQLITE_VOL_BACKUP_TO",
    "SQLITE_VOL_RESTORE_FROM",
    "DB_POOL_SIZE",
    "DB_TIMEOUT",
    "TOKEN_TTL",
    "HASH_CONCURRENCY",
    "SHUTDOWN_GRACE",
];

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for v in CLEARED {
        cmd.env_remove(v);
    }
    cmd.env("DB_PATH", dir)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    cmd
}

/// A running `accounts` process.
struct Service {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Service {
    /// Starts the binary on `dir` and waits for its `listening on` line.
    fn start(dir: &Path, log_name: &str) -> anyhow::Result<Service> {
        let log = dir.join(log_name);
        let mut child = command(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                anyhow::bail!("no `listening on` line within 30 s; log:\n{}", read(&log));
            }
        };
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected first line {line:?}; log:\n{}", read(&log)))?;
        Ok(Service { child, addr, log })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit; returns the status and how long it took.
    async fn terminate(&mut self) -> anyhow::Result<(ExitStatus, Duration)> {
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -TERM failed");
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, start.elapsed()));
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = self.child.kill();
                anyhow::bail!(
                    "still running 15 s after SIGTERM; log:\n{}",
                    read(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn healthcheck(addr: SocketAddr) -> anyhow::Result<Option<i32>> {
    let out = command(Path::new("/nonexistent"))
        .env("BIND_ADDR", addr.to_string())
        .arg("healthcheck")
        .output()?;
    Ok(out.status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_sessions_survive_a_sigterm_restart() -> TestResult {
    let dir = tempdir()?;
    let result = restart_scenario(dir.path()).await;
    if result.is_err() {
        eprintln!("kept the test's directory: {}", dir.keep().display());
    }
    result
}

async fn restart_scenario(dir: &Path) -> TestResult {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let creds = json!({ "email": "restart@example.com", "password": PW });

    let mut first = Service::start(dir, "first.log")?;
    let res = client
        .post(first.url("/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await?;
    assert_eq!(res.status(), 201);
    let login: Value = client
        .post(first.url("/api/v1/auth/login"))
        .json(&creds)
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("no token")?.to_owned();
    assert_eq!(
        healthcheck(first.addr)?,
        Some(0),
        "healthcheck of a running service"
    );

    let (status, took) = first.terminate().await?;
    let log = read(&first.log);
    assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{log}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to stop; log:\n{log}"
    );
    let wal = dir.join("accounts.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL was not checkpointed at shutdown");
    assert_eq!(
        healthcheck(first.addr)?,
        Some(1),
        "healthcheck of a stopped service"
    );
    // The log says where the database is and never shows a secret.
    assert!(log.contains("listening"), "{log}");
    assert!(log.contains(&dir.display().to_string()), "{log}");
    assert!(log.contains("DB_PATH"), "{log}");
    assert!(
        !log.contains(PW) && !log.contains(&token),
        "a secret reached the log:\n{log}"
    );
    assert!(!log.contains("$argon2"), "a hash reached the log:\n{log}");

    let mut second = Service::start(dir, "second.log")?;
    let res = client
        .post(second.url("/api/v1/auth/login"))
        .json(&creds)
        .send()
        .await?;
    assert_eq!(
        res.status(),
        200,
        "login with the password after the restart"
    );
    let res = client
        .get(second.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(res.status(), 200, "the old token after the restart");
    let me: Value = res.json().await?;
    assert_eq!(me["email"], "restart@example.com");
    let res = client
        .post(second.url("/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await?;
    assert_eq!(res.status(), 409, "the account is still there");
    let (status, _) = second.terminate().await?;
    assert_eq!(status.code(), Some(0), "log:\n{}", read(&second.log));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_opened_exits_2_with_the_reason() -> TestResult {
    let dir = tempdir()?;
    let db = dir.path().join("accounts.db");
    std::fs::write(
        &db,
        b"this is not a SQLite database, but it is long enough to look like one",
    )?;
    let out = command(dir.path()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(out.stdout.is_empty(), "printed to stdout: {:?}", out.stdout);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclear_setting_exits_2_naming_the_variable() -> TestResult {
    let dir = tempdir()?;
    let out = command(dir.path())
        .env("SQLITE_VOL_REQUIRE_PERSISTENT", "yes-please")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("require-persistent"), "{stderr}");
    assert!(
        !dir.path().join("accounts.db").exists(),
        "created a database anyway"
    );
    Ok(())
}
