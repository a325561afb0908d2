//! The `accounts` service: time from exec to its first 200 on `/health` on an empty and on the big
//! database, `GET /api/v1/auth/me` requests per second and p99 over keep-alive connections, and logins per
//! second against the raw argon2 hash rate of this machine (the ceiling for logins).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::data::DataSet;
use super::{median, quantile, secs, Config, Results};
use crate::support::{bin, http, login, register, Service};

/// Seconds from exec to the first 200 on /health.
fn time_to_ready(dir: &Path) -> Result<f64, String> {
    let addr = format!("127.0.0.1:{}", crate::offsite::free_port());
    let mut cmd = Command::new(bin("accounts"));
    cmd.env("DB_PATH", dir)
        .env("BIND_ADDR", &addr)
        .env("RUST_LOG", "warn");
    seconds_to_ready(cmd, &addr, Duration::from_secs(60), "accounts")
}

/// Seconds from spawning `cmd` (output discarded) to its first 200 on `/health` at `addr`; it is then
/// stopped with SIGTERM. An error naming `what` when it is not ready within `limit`.
pub(super) fn seconds_to_ready(
    mut cmd: Command,
    addr: &str,
    limit: Duration,
    what: &str,
) -> Result<f64, String> {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let ready = loop {
        if matches!(http(addr, "GET", "/health", None, None), Ok((200, _))) {
            break Ok(secs(t.elapsed()));
        }
        if t.elapsed() > limit {
            break Err(format!("{what} was not ready in {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    ready
}

pub fn startup(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let big_dir = ds.db.parent().ok_or("data dir")?;
    let (mut empty, mut big) = (Vec::new(), Vec::new());
    for _ in 0..cfg.runs.max(5) {
        empty.push(time_to_ready(&ds.empty_dir)?);
        big.push(time_to_ready(big_dir)?);
    }
    let (e, b) = (median(&mut empty) * 1000.0, median(&mut big) * 1000.0);
    r.line(
        "startup to ready",
        "empty database",
        e,
        "ms",
        Some(1.0),
        "exec → first 200 on /health",
    );
    r.line(
        "startup to ready",
        format!("{} MiB database", ds.bytes >> 20),
        b,
        "ms",
        Some(b / e),
        "nothing to migrate",
    );
    r.target(
        "startup on the big database ÷ on an empty one",
        b / e,
        1.2,
        true,
    );
    Ok(())
}

/// A keep-alive client: sends GET requests on one connection and returns per-request latencies.
fn keep_alive_gets(
    addr: &str,
    path: &str,
    token: &str,
    stop: &AtomicBool,
) -> Result<Vec<f64>, String> {
    let s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut rd = BufReader::new(s);
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n");
    let mut lat = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        w.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let (mut line, mut len, mut status) = (String::new(), 0usize, 0u16);
        loop {
            line.clear();
            if rd.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            if status == 0 {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        rd.read_exact(&mut body).map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("GET {path} answered {status}"));
        }
        lat.push(secs(t.elapsed()));
    }
    Ok(lat)
}

/// Runs `f` on `threads` threads for `span`; returns the number of successful calls.
fn for_a_while(
    threads: usize,
    span: Duration,
    f: impl Fn() -> bool + Send + Sync + 'static,
) -> u64 {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let mut n = 0u64;
                while t.elapsed() < span {
                    n += u64::from(f());
                }
                n
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
}

pub fn throughput(cfg: &Config, r: &mut Results) -> Result<(), String> {
    let dir = cfg.dir.join("service");
    let _ = std::fs::remove_dir_all(&dir);
    let svc = Service::start_with(&dir, &[("RUST_LOG", "warn")]);
    let password = "benchmark password";
    register(&svc.addr, "bench@example.com", password).map_err(|e| e.to_string())?;
    let (_, body) = login(&svc.addr, "bench@example.com", password).map_err(|e| e.to_string())?;
    let token = body["token"].as_str().ok_or("no token")?.to_string();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let span = Duration::from_secs(3);

    let (mut rps, mut p99) = (Vec::new(), Vec::new());
    let (mut logins, mut hashes) = (Vec::new(), Vec::new());
    for _ in 0..cfg.runs {
        let stop = Arc::new(AtomicBool::new(false));
        let t = Instant::now();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (addr, token, stop) = (svc.addr.clone(), token.clone(), stop.clone());
                std::thread::spawn(move || keep_alive_gets(&addr, "/api/v1/auth/me", &token, &stop))
            })
            .collect();
        std::thread::sleep(span);
        stop.store(true, Ordering::Relaxed);
        let mut lat = Vec::new();
        for c in clients {
            lat.extend(c.join().map_err(|_| "client panicked")??);
        }
        rps.push(lat.len() as f64 / secs(t.elapsed()));
        p99.push(quantile(&mut lat, 0.99) * 1000.0);

        let addr = svc.addr.clone();
        let n = for_a_while(cores * 2, span, move || {
            matches!(login(&addr, "bench@example.com", password), Ok((200, _)))
        });
        logins.push(n as f64 / secs(span));
        let n = for_a_while(cores, span, || {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let Ok(salt) = SaltString::encode_b64(b"benchmark-salt-16") else {
                return false;
            };
            argon2::Argon2::default()
                .hash_password(b"benchmark password", &salt)
                .is_ok()
        });
        hashes.push(n as f64 / secs(span));
    }
    let (rps, p99, logins, hashes) = (
        median(&mut rps),
        median(&mut p99),
        median(&mut logins),
        median(&mut hashes),
    );
    r.line(
        "service",
        "GET /api/v1/auth/me, 4 keep-alive clients",
        rps,
        "req/s",
        None,
        format!("p99 {p99:.2} ms"),
    );
    r.line(
        "service",
        "raw argon2id hashes (default params), all cores",
        hashes,
        "hash/s",
        Some(1.0),
        "the ceiling for logins",
    );
    r.line(
        "service",
        "POST /api/v1/auth/login",
        logins,
        "login/s",
        Some(logins / hashes),
        "ratio to raw argon2",
    );
    r.target(
        "logins/s ÷ raw argon2 hashes/s",
        logins / hashes,
        0.9,
        false,
    );
    drop(svc);
    Ok(())
}
