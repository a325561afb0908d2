//! Bad input at every door: mountinfo parsing, environment and path resolution, backup verification and
//! restore of mutated SQLite files, the command line's arguments, and the HTTP API. Inputs are generated
//! from a seed; every door counts inputs tried, panics, and its own kind of wrong answer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;

use sqlite_vol::{Location, Volume};

use super::{Config, Report};
use crate::support::{bin, http_raw, Rng, Service};

const AREA: &str = "bad input at every door";

const MOUNTINFO: &[&str] = &[
    include_str!("../../../crates/sqlite-vol/tests/fixtures/mountinfo/docker-named-volume.txt"),
    include_str!("../../../crates/sqlite-vol/tests/fixtures/mountinfo/docker-anonymous-volume.txt"),
    include_str!(
        "../../../crates/sqlite-vol/tests/fixtures/mountinfo/docker-bind-mount-readonly.txt"
    ),
    include_str!("../../../crates/sqlite-vol/tests/fixtures/mountinfo/docker-tmpfs.txt"),
    include_str!("../../../crates/sqlite-vol/tests/fixtures/mountinfo/docker-no-volume.txt"),
];

const NASTY: &[&str] = &[
    "\\040",
    "\\",
    "\\0",
    "\\777",
    " - ",
    "-",
    "/",
    "//",
    "..",
    "\0",
    "\n",
    "\t",
    "é",
    "💾",
    "%",
    "?",
    "#",
    ":",
    "sqlite:",
    "sqlite://",
    "sqlite::memory:",
    "file:",
    "postgres://",
    "~",
    "$HOME",
    " ",
    "",
    "/data/",
    ".db",
];

fn mutate_text(rng: &mut Rng, base: &str) -> String {
    let mut s: Vec<u8> = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(s.len() as u64 + 1) as usize;
        match rng.below(5) {
            0 if !s.is_empty() => {
                let i = at.min(s.len() - 1);
                s[i] = rng.next_u64() as u8;
            }
            1 => s.splice(at..at, rng.pick(NASTY).bytes()).for_each(drop),
            2 => s.truncate(at),
            3 => {
                let n = 1 + rng.below(64) as usize;
                s.splice(at..at, rng.bytes(n)).for_each(drop)
            }
            _ => s
                .splice(at..at, "x".repeat(rng.below(5000) as usize).bytes())
                .for_each(drop),
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

fn random_str(rng: &mut Rng) -> String {
    let prefix: String = (0..rng.below(4))
        .map(|_| rng.pick(NASTY).to_string())
        .collect();
    let base = *rng.pick(NASTY);
    prefix + &mutate_text(rng, base)
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let mut rng = Rng::new(cfg.seed ^ 0x646f_6f72);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    // 1. mountinfo.
    let mut panics = 0;
    for _ in 0..cfg.inputs {
        let base = *rng.pick(MOUNTINFO);
        let text = mutate_text(&mut rng, base);
        let dir = format!("/{}", mutate_text(&mut rng, "data/x"));
        let inside = rng.below(2) == 0;
        panics +=
            u64::from(catch_unwind(|| Volume::classify(&text, Path::new(&dir), inside)).is_err());
    }
    report.info(AREA, "mountinfo texts parsed", cfg.inputs);
    report.zero(AREA, "mountinfo: panics", panics);

    // 2. environment and path resolution.
    let (mut panics, mut bad) = (0, 0);
    for _ in 0..cfg.inputs {
        let app = if rng.below(3) == 0 {
            random_str(&mut rng)
        } else {
            "accounts".into()
        };
        let mut vars: Vec<(String, String)> = Vec::new();
        for k in ["ACCOUNTS_DB_PATH", "DB_PATH", "DATABASE_URL", "HOME"] {
            if rng.below(2) == 0 {
                vars.push((k.to_string(), random_str(&mut rng)));
            }
        }
        let explicit = (rng.below(4) == 0).then(|| random_str(&mut rng));
        let r = catch_unwind(AssertUnwindSafe(|| {
            Location::resolve_with(&app, explicit.as_deref().map(Path::new), |k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        }));
        match r {
            Err(_) => panics += 1,
            Ok(Ok(loc)) if !loc.path.is_absolute() || loc.file_name().is_empty() => bad += 1,
            Ok(_) => {}
        }
    }
    report.info(AREA, "environment/path combinations resolved", cfg.inputs);
    report.zero(AREA, "resolution: panics", panics);
    report.zero(AREA, "resolution: relative or nameless paths returned", bad);

    // 3. verification and restore of mutated backups.
    let good_dir = tmp.path().join("good");
    let live = super::foreign::prepare(&good_dir, 400)?;
    let good = sqlite_vol::backup::backup(
        &live,
        "campaign",
        &sqlite_vol::BackupOptions::new(tmp.path().join("b")),
    )
    .map_err(|e| e.to_string())?;
    let good_bytes = std::fs::read(&good.path).map_err(|e| e.to_string())?;
    let manifest = std::fs::read(sqlite_vol::manifest::manifest_path(&good.path))
        .map_err(|e| e.to_string())?;
    let bad_dir = tmp.path().join("mutants");
    std::fs::create_dir(&bad_dir).map_err(|e| e.to_string())?;
    let live_before = std::fs::read(&live).map_err(|e| e.to_string())?;
    let (mut panics, mut accepted, mut accepted_no_manifest, mut restore_changed) = (0, 0, 0, 0);
    let restores = (cfg.inputs / 20).max(5);
    for i in 0..cfg.inputs {
        let mut b = good_bytes.clone();
        match rng.below(4) {
            0 => (0..1 + rng.below(8)).for_each(|_| {
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 + rng.below(255) as u8;
            }),
            1 => b.truncate(rng.below(b.len() as u64) as usize),
            2 => {
                let n = 1 + rng.below(9000) as usize;
                b.extend(rng.bytes(n));
            }
            _ => {
                let page = rng.below((b.len() / 4096) as u64) as usize * 4096;
                b[page..page + 4096].fill(rng.next_u64() as u8);
            }
        }
        if b == good_bytes {
            continue;
        }
        let f = bad_dir.join(format!("campaign-20200101T000000Z-{i}.db"));
        std::fs::write(&f, &b).map_err(|e| e.to_string())?;
        match catch_unwind(|| sqlite_vol::verify(&f, true, None)) {
            Err(_) => panics += 1,
            Ok(Ok(_)) => accepted_no_manifest += 1,
            Ok(Err(_)) => {}
        }
        std::fs::write(sqlite_vol::manifest::manifest_path(&f), &manifest)
            .map_err(|e| e.to_string())?;
        match catch_unwind(|| sqlite_vol::verify(&f, false, None)) {
            Err(_) => panics += 1,
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) => {}
        }
        if i < restores {
            let opts = sqlite_vol::RestoreOptions::new(tmp.path().join("safety"));
            let r = catch_unwind(AssertUnwindSafe(|| {
                sqlite_vol::restore::restore(&f, &live, "campaign", &opts)
            }));
            match r {
                Err(_) => panics += 1,
                Ok(Ok(_)) => accepted += 1,
                Ok(Err(_)) => {}
            }
            restore_changed +=
                u64::from(std::fs::read(&live).map_err(|e| e.to_string())? != live_before);
        }
        let _ = std::fs::remove_file(&f);
        let _ = std::fs::remove_file(sqlite_vol::manifest::manifest_path(&f));
    }
    report.info(
        AREA,
        "mutated backup files verified (restore attempted on)",
        format!("{} ({restores})", cfg.inputs),
    );
    report.zero(AREA, "mutated files: panics", panics);
    report.zero(
        AREA,
        "mutated files accepted by verify or restore (manifest beside them)",
        accepted,
    );
    report.zero(
        AREA,
        "live database changed by a refused restore",
        restore_changed,
    );
    report.info(AREA, "mutated files passing integrity_check with no manifest (payload bytes SQLite cannot check)", accepted_no_manifest);
    std::panic::set_hook(quiet);

    // 4. the command line.
    let words = [
        "status",
        "doctor",
        "backup",
        "restore",
        "verify",
        "list",
        "prune",
        "check",
        "migrate",
        "healthcheck",
        "--json",
        "--yes",
        "--force",
        "--keep",
        "0",
        "-1",
        "99999999999999999999",
        "--to",
        "--db",
        "--app",
        "--dir",
        "--full",
        "--dry-run",
        "--quiet",
        "--no-safety-backup",
        "--full-check",
        "--help",
        "-h",
        "--wait",
        "nan",
        "",
    ];
    let (mut panics, mut odd_exit) = (0, 0);
    let cli_inputs = (cfg.inputs / 4).max(50);
    let db = tmp.path().join("cli/app.db");
    for _ in 0..cli_inputs {
        let mut args: Vec<String> = (0..1 + rng.below(6))
            .map(|_| rng.pick(&words).to_string())
            .collect();
        if rng.below(3) > 0 {
            args.extend(["--db".into(), db.to_string_lossy().into_owned()]);
        }
        if rng.below(4) == 0 {
            args.push(random_str(&mut rng).replace('\0', ""));
        }
        let out = Command::new(bin("sqlite-vol"))
            .args(&args)
            .env_clear()
            .env("HOME", tmp.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(tmp.path())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        match out.status.code() {
            Some(101) | None => {
                panics += 1;
                eprintln!(
                    "sqlite-vol {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some(0..=2) => {}
            Some(_) => odd_exit += 1,
        }
    }
    report.info(AREA, "command lines run", cli_inputs);
    report.zero(AREA, "command line: panics or deaths by signal", panics);
    report.zero(
        AREA,
        "command line: exit codes other than 0, 1, 2",
        odd_exit,
    );

    // 5. the HTTP API.
    let svc = Service::start(&tmp.path().join("http"));
    let (mut five, mut dead) = (0, 0);
    let http_inputs = (cfg.inputs / 2).max(100);
    let paths = [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/auth/logout",
        "/health",
        "/",
        "/api/v1/auth/register/x",
        "/%00",
        "/api/../health",
    ];
    let methods = [
        "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST",
    ];
    let bodies = |rng: &mut Rng| -> Vec<u8> {
        let email = match rng.below(6) {
            0 => format!("u{}@example.com", rng.next_u64()),
            1 => random_str(rng),
            2 => "\u{202e}evil@example.com\u{0007}".into(),
            3 => format!("{}@example.com", "a".repeat(rng.below(100_000) as usize)),
            4 => "ünïcödé@exämple.com".into(),
            _ => format!("a'); DROP TABLE users; --{}@x.io", rng.below(1000)),
        };
        let password = match rng.below(5) {
            0 => "x".repeat(rng.below(3000) as usize),
            1 => random_str(rng),
            2 => "correct horse battery".into(),
            3 => "\u{0}\u{1}\u{2}passwordpassword".into(),
            _ => "🔑".repeat(rng.below(400) as usize),
        };
        match rng.below(8) {
            0 => {
                let n = rng.below(300) as usize;
                rng.bytes(n)
            }
            1 => b"{".to_vec(),
            2 => serde_json::json!({"email": 5, "password": []})
                .to_string()
                .into_bytes(),
            3 => serde_json::json!({"email": email}).to_string().into_bytes(),
            4 => b"null".to_vec(),
            5 => mutate_text(
                rng,
                &serde_json::json!({"email": email, "password": password}).to_string(),
            )
            .into_bytes(),
            _ => serde_json::json!({"email": email, "password": password})
                .to_string()
                .into_bytes(),
        }
    };
    for _ in 0..http_inputs {
        let body = bodies(&mut rng);
        let auth = match rng.below(4) {
            0 => format!(
                "Authorization: Bearer {}\r\n",
                random_str(&mut rng).replace(['\r', '\n'], "")
            ),
            1 => "Authorization: Basic Zm9vOmJhcg==\r\n".into(),
            2 => format!("Authorization: Bearer {}\r\n", "0".repeat(64)),
            _ => String::new(),
        };
        let ctype = *rng.pick(&[
            "application/json",
            "text/plain",
            "application/json; charset=utf-16",
            "",
        ]);
        let req = [
            format!(
                "{} {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\n{auth}Content-Length: {}\r\n\r\n",
                rng.pick(&methods),
                rng.pick(&paths),
                body.len()
            )
            .into_bytes(),
            body,
        ]
        .concat();
        match http_raw(&svc.addr, &req) {
            Ok(code) if code >= 500 => {
                five += 1;
                eprintln!(
                    "HTTP {code} for {}",
                    String::from_utf8_lossy(&req[..req.len().min(300)])
                );
            }
            Ok(_) => {}
            Err(_) => dead += 1,
        }
    }
    let alive = matches!(
        crate::support::http(&svc.addr, "GET", "/health", None, None),
        Ok((200, _))
    );
    report.info(AREA, "HTTP requests sent", http_inputs);
    report.zero(AREA, "HTTP: 5xx answers", five);
    report.zero(
        AREA,
        "HTTP: connections dropped or service dead",
        dead + u64::from(!alive),
    );
    Ok(())
}
