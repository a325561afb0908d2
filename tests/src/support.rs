//! Process and HTTP helpers: spawn the real service on a free loopback port, speak minimal HTTP/1.1, ask
//! the stock `sqlite3` shell for an integrity check. Binary lookup, the shell and running as another user
//! come from the workspace's test-support crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A command run as another user (`setpriv`).
pub use test_support::as_user;
/// A workspace binary beside the running one; `cargo build --workspace` builds them.
pub use test_support::workspace_bin as bin;

/// A running `accounts` process.
pub struct Service {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Service {
    /// Starts `accounts` on `dir` and waits for its `listening on` line.
    pub fn start(dir: &Path) -> Service {
        Service::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Service {
        // Logs live outside the data folder, so they never count as files the service created there.
        let (stderr, log) = log_file("accounts");
        let mut cmd = Command::new(bin("accounts"));
        for var in [
            "SQLITE_VOL_REQUIRE_PERSISTENT",
            "SQLITE_VOL_EXPECT_EXISTING",
            "ACCOUNTS_DB_PATH",
            "DATABASE_URL",
            "SQLITE_VOL_BACKUP_INTERVAL",
            "SQLITE_VOL_BACKUP_TO",
            "SQLITE_VOL_RESTORE_FROM",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("DB_PATH", dir)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn accounts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "accounts did not start; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }
        };
        Service { child, addr, log }
    }

    /// SIGTERM, then wait (up to 20 s) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("accounts ignored SIGTERM for 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn register(&self, email: &str, password: &str) -> std::io::Result<(u16, Value)> {
        register(&self.addr, email, password)
    }

    pub fn login(&self, email: &str, password: &str) -> std::io::Result<(u16, Value)> {
        login(&self.addr, email, password)
    }

    pub fn me(&self, token: &str) -> std::io::Result<(u16, Value)> {
        http(&self.addr, "GET", "/api/v1/auth/me", None, Some(token))
    }

    /// The accounts among `emails` that do not log in with `password` (lost acknowledged registrations).
    pub fn lost<'a>(&self, emails: &'a [String], password: &str) -> Vec<&'a String> {
        emails
            .iter()
            .filter(|e| !matches!(self.login(e, password), Ok((200, _))))
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new log file `<name>-<pid>-<random>.log` in the shared test-log folder under the temp dir.
pub fn log_file(name: &str) -> (std::fs::File, PathBuf) {
    let logs = std::env::temp_dir().join("sqlite-vol-test-logs");
    std::fs::create_dir_all(&logs).expect("log folder");
    let path = logs.join(format!(
        "{name}-{}-{:x}.log",
        std::process::id(),
        rand_u64()
    ));
    (std::fs::File::create(&path).expect("log file"), path)
}

fn rand_u64() -> u128 {
    let mut b = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    u128::from(u64::from_le_bytes(b))
}

/// `POST /api/v1/auth/register` at `addr`.
pub fn register(addr: &str, email: &str, password: &str) -> std::io::Result<(u16, Value)> {
    http(
        addr,
        "POST",
        "/api/v1/auth/register",
        Some(&json!({"email": email, "password": password})),
        None,
    )
}

/// `POST /api/v1/auth/login` at `addr`.
pub fn login(addr: &str, email: &str, password: &str) -> std::io::Result<(u16, Value)> {
    http(
        addr,
        "POST",
        "/api/v1/auth/login",
        Some(&json!({"email": email, "password": password})),
        None,
    )
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the JSON body (Null if none).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// `PRAGMA integrity_check` by the stock sqlite3 shell, a foreign client, with its errors.
pub use test_support::sqlite3::integrity_report as sqlite3_integrity;

/// Sends raw request bytes and returns the status code (0 if the server closed without answering).
pub fn http_raw(addr: &str, request: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    Ok(text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// A small deterministic generator (xorshift64*), seeded for reproducible runs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; 0 is replaced by a fixed non-zero value.
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// A seed from the kernel.
    pub fn seed_from_os() -> u64 {
        rand_u64() as u64
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
