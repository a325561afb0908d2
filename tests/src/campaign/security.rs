//! Security checks: backups, manifests and lock files are private; no password, hash or token reaches a log
//! line; tokens are stored only as hashes (so a lookup compares hashes, never the secret itself, and its
//! timing says nothing about the token); login does not reveal which emails exist, by body or by time; SQL
//! in the service is parameterised, and an injection attempt changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use super::{Config, Report};
use crate::support::{bin, http, login, register, Service};

const AREA: &str = "security";

fn private(p: &Path) -> Result<(), String> {
    let mode = std::fs::metadata(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .permissions()
        .mode();
    (mode & 0o077 == 0)
        .then_some(())
        .ok_or_else(|| format!("{} has mode {:o}", p.display(), mode & 0o777))
}

pub fn run(_cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path().join("data");
    let password = "Sup3r-secret-passw0rd!";
    let svc = Service::start_with(&dir, &[("RUST_LOG", "debug")]);
    let log = svc.log.clone();
    let (code, _) =
        register(&svc.addr, "secret@example.com", password).map_err(|e| e.to_string())?;
    if code != 201 {
        return Err(format!("register answered {code}"));
    }
    let (_, body) = login(&svc.addr, "secret@example.com", password).map_err(|e| e.to_string())?;
    let token = body["token"].as_str().ok_or("no token")?.to_string();
    let _ = http(&svc.addr, "GET", "/api/v1/auth/me", None, Some(&token));
    let _ = login(&svc.addr, "secret@example.com", "wrong password here");

    report.check(
        AREA,
        "login: unknown email and wrong password give identical answers",
        (|| {
            let a = login(&svc.addr, "nobody@example.com", "whatever-password")
                .map_err(|e| e.to_string())?;
            let b = login(&svc.addr, "secret@example.com", "whatever-password")
                .map_err(|e| e.to_string())?;
            (a == b && a.0 == 401)
                .then_some(())
                .ok_or_else(|| format!("{a:?} vs {b:?}"))
        })(),
    );

    report.check(
        AREA,
        "login: unknown email costs as much time as a wrong password (median ratio 0.5–2)",
        (|| {
            let time = |email: &str| -> Result<f64, String> {
                let mut v = Vec::new();
                for _ in 0..15 {
                    let t = Instant::now();
                    login(&svc.addr, email, "whatever-password").map_err(|e| e.to_string())?;
                    v.push(t.elapsed().as_secs_f64());
                }
                v.sort_by(f64::total_cmp);
                Ok(v[v.len() / 2])
            };
            let (unknown, known) = (time("nobody@example.com")?, time("secret@example.com")?);
            let ratio = unknown / known;
            (0.5..=2.0)
                .contains(&ratio)
                .then_some(())
                .ok_or_else(|| format!("unknown {unknown:.4} s vs known {known:.4} s"))
        })(),
    );

    report.check(
        AREA,
        "an SQL injection attempt changes nothing",
        (|| {
            let (code, _) = register(&svc.addr, "x'); DROP TABLE users; --@example.com", password)
                .map_err(|e| e.to_string())?;
            if code >= 500 {
                return Err(format!("answered {code}"));
            }
            matches!(
                login(&svc.addr, "secret@example.com", password),
                Ok((200, _))
            )
            .then_some(())
            .ok_or_else(|| "users gone after the attempt".into())
        })(),
    );

    let status = svc.terminate();
    if status.code() != Some(0) {
        return Err(format!("service exit {status}"));
    }
    let db = dir.join("accounts.db");
    let file = std::fs::read(&db).map_err(|e| e.to_string())?;
    let logs = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
    let hashes: Vec<String> = {
        let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
        let mut s = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(|e| e.to_string())?;
        let tables: Vec<String> = s
            .query_map([], |r| r.get(0))
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .collect();
        let mut found = Vec::new();
        for t in tables {
            let mut q = c
                .prepare(&format!("SELECT * FROM \"{t}\""))
                .map_err(|e| e.to_string())?;
            let n = q.column_count();
            let mut rows = q.query([]).map_err(|e| e.to_string())?;
            while let Some(r) = rows.next().map_err(|e| e.to_string())? {
                for i in 0..n {
                    match r.get_ref(i).map_err(|e| e.to_string())? {
                        rusqlite::types::ValueRef::Text(t) if t.starts_with(b"$argon2") => {
                            found.push(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(b) if b.len() == 32 => {
                            found.push(hex::encode(b))
                        }
                        rusqlite::types::ValueRef::Text(t) if t.len() == 64 => {
                            found.push(String::from_utf8_lossy(t).into_owned())
                        }
                        _ => {}
                    }
                }
            }
        }
        found
    };
    report.check(
        AREA,
        "no password, hash or token in the service's debug log",
        (|| {
            let mut leaks: Vec<&str> = [password, token.as_str()]
                .into_iter()
                .filter(|s| logs.contains(*s))
                .collect();
            leaks.extend(
                hashes
                    .iter()
                    .map(String::as_str)
                    .filter(|h| logs.contains(*h)),
            );
            if hashes.is_empty() {
                return Err("found no password hash in the database to look for".into());
            }
            leaks
                .is_empty()
                .then_some(())
                .ok_or_else(|| format!("{} secrets in the log", leaks.len()))
        })(),
    );
    report.check(AREA, "the database stores no raw token or password", {
        let has = |needle: &[u8]| file.windows(needle.len()).any(|w| w == needle);
        (!has(token.as_bytes()) && !has(password.as_bytes()))
            .then_some(())
            .ok_or_else(|| "raw secret in the file".into())
    });
    report.check(
        AREA,
        "SQL in the service is parameterised (no format! building a statement)",
        (|| {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/accounts/src");
            let mut offenders = Vec::new();
            let mut stack = vec![src];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).map_err(|e| e.to_string())?.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
                        for (n, line) in text.lines().enumerate() {
                            let upper = line.to_ascii_uppercase();
                            if line.contains("format!")
                                && ["SELECT ", "INSERT ", "UPDATE ", "DELETE "]
                                    .iter()
                                    .any(|k| upper.contains(k))
                            {
                                offenders.push(format!("{}:{}", p.display(), n + 1));
                            }
                        }
                    }
                }
            }
            offenders
                .is_empty()
                .then_some(())
                .ok_or_else(|| offenders.join(", "))
        })(),
    );
    report.check(
        AREA,
        "backups, manifests and lock files are not readable by others",
        (|| {
            let out = Command::new(bin("sqlite-vol"))
                .args(["backup", "--json", "--db"])
                .arg(&db)
                .args(["--app", "accounts"])
                .output()
                .map_err(|e| e.to_string())?;
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
            let path = Path::new(json["path"].as_str().ok_or("no path")?);
            private(path)?;
            private(&sqlite_vol::manifest::manifest_path(path))?;
            private(&sqlite_vol::lock::lock_path(&db))
        })(),
    );
    Ok(())
}
