//! A real Prometheus server (Debian's `prometheus` package) scrapes three running accounts services on
//! loopback with the alert rules of `docker/prometheus/alerts.yml`, and the test reads the series and the
//! alerts back through Prometheus's HTTP API: a service with fresh, drilled and off-site backups raises
//! nothing; one whose off-site copies fail and whose newest backup does not restore is paged for both; one
//! with no backup at all is paged for that. A scrape also passes `promtool check metrics`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlite_vol_tests::support::{bin, log_file, Service, TestResult};

/// `sqlite-vol ARGS` on the accounts database in `dir`, with `env`; returns the exit code.
fn cli(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<i32, Box<dyn std::error::Error>> {
    let mut c = Command::new(bin("sqlite-vol"));
    c.args(["--app", "accounts", "--db"]).arg(dir).args(args);
    for v in [
        "SQLITE_VOL_BACKUP_TO",
        "SQLITE_VOL_BACKUP_DIR",
        "SQLITE_VOL_DRILL_QUERY",
        "DB_PATH",
    ] {
        c.env_remove(v);
    }
    let out = c.envs(env.iter().copied()).output()?;
    Ok(out.status.code().unwrap_or(-1))
}

/// The raw body of `GET path` at `addr` (HTTP/1.0, so that no server answers in chunks).
fn get_text(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    Ok(raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server that stops when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, targets: &[&str]) -> Result<Prometheus, Box<dyn std::error::Error>> {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/prometheus/alerts.yml");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\nscrape_configs:\n  - job_name: sqlite-vol\n    static_configs:\n      - targets: [{list}]\n",
                rules.canonicalize()?.display()
            ),
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let (log_out, log) = log_file("prometheus");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log_out)
            .spawn()
            .map_err(|e| {
                format!("prometheus (apt-get install prometheus; tests/run.sh does): {e}")
            })?;
        Ok(Prometheus { child, addr, log })
    }

    /// `GET /api/v1/<path>` → its `data`.
    fn api(&self, path: &str) -> Result<Value, Box<dyn std::error::Error>> {
        let body: Value = serde_json::from_str(&get_text(&self.addr, &format!("/api/v1/{path}"))?)?;
        if body["status"] != "success" {
            return Err(format!("{path}: {body}").into());
        }
        Ok(body["data"].clone())
    }

    /// The instant vector `q`, as (labels, value).
    fn query(&self, q: &str) -> Result<Vec<(Value, f64)>, Box<dyn std::error::Error>> {
        let data = self.api(&format!("query?query={}", encode(q)))?;
        Ok(data["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        (
                            s["metric"].clone(),
                            s["value"][1]
                                .as_str()
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(f64::NAN),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits until `ok` holds, for up to `secs`.
    fn until<T>(
        &self,
        secs: u64,
        what: &str,
        mut ok: impl FnMut(&Prometheus) -> Option<T>,
    ) -> Result<T, Box<dyn std::error::Error>> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = ok(self) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "timed out waiting for {what}; Prometheus log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_the_service_and_pages_for_stopped_backups_failed_drills_and_offsite(
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = ["good", "broken", "never"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let svcs: Vec<Service> = dirs.iter().map(|d| Service::start(d)).collect();
    let offsite = tmp.path().join("offsite");
    let (good, broken) = (&dirs[0], &dirs[1]);
    // good: a backup that arrives off-site and passes its drill.
    assert_eq!(
        cli(
            good,
            &["backup"],
            &[("SQLITE_VOL_BACKUP_TO", &offsite.display().to_string())]
        )?,
        0
    );
    assert_eq!(cli(good, &["drill"], &[])?, 0);
    // broken: the backup is taken but cannot be sent; its bytes then change, so the drill fails.
    assert_eq!(
        cli(
            broken,
            &["backup"],
            &[("SQLITE_VOL_BACKUP_TO", "/proc/no-such-place")]
        )?,
        2
    );
    let backup = std::fs::read_dir(broken.join("backups"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "db"))
        .ok_or("no backup")?;
    let mut bytes = std::fs::read(&backup)?;
    let at = bytes.len() - 10;
    bytes[at] ^= 0x55;
    std::fs::write(&backup, bytes)?;
    assert_eq!(cli(broken, &["drill"], &[])?, 1);

    // A scrape is valid for promtool.
    let scrape = get_text(&svcs[0].addr, "/metrics")?;
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    p.stdin
        .take()
        .ok_or("stdin")?
        .write_all(scrape.as_bytes())?;
    let out = p.wait_with_output()?;
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let prom_dir = tmp.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir)?;
    let targets: Vec<&str> = svcs.iter().map(|s| s.addr.as_str()).collect();
    let prom = Prometheus::start(&prom_dir, &targets)?;
    prom.until(60, "every target up", |p| {
        let up = p.query("up{job=\"sqlite-vol\"} == 1").ok()?;
        (up.len() == 3).then_some(())
    })?;
    let instance = |i: usize| svcs[i].addr.clone();
    let value_of = |q: &str, i: usize| -> Result<Option<f64>, Box<dyn std::error::Error>> {
        Ok(prom
            .query(q)?
            .into_iter()
            .find(|(m, _)| m["instance"] == instance(i))
            .map(|(_, v)| v))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let backup_at = value_of(
        "sqlite_vol_last_backup_timestamp_seconds{app=\"accounts\"}",
        0,
    )?
    .ok_or("no backup time")?;
    assert!(
        (now - backup_at).abs() < 120.0,
        "backup time {backup_at} vs now {now}"
    );
    assert!(
        value_of("sqlite_vol_last_verified_restore_timestamp_seconds", 0)?
            .is_some_and(|t| (now - t).abs() < 120.0)
    );
    assert!(
        value_of("sqlite_vol_last_offsite_backup_timestamp_seconds", 0)?.is_some_and(|t| t > 0.0)
    );
    assert_eq!(
        value_of("sqlite_vol_last_backup_timestamp_seconds", 2)?,
        Some(0.0)
    );
    assert_eq!(value_of("sqlite_vol_last_restore_drill_ok", 1)?, Some(0.0));
    assert_eq!(
        value_of("sqlite_vol_offsite_backups_total{result=\"error\"}", 1)?,
        Some(1.0)
    );
    assert!(value_of("sqlite_vol_pool_connections{state=\"idle\"}", 0)?.is_some_and(|n| n >= 1.0));
    assert!(value_of("sqlite_vol_database_size_bytes", 0)?.is_some_and(|n| n > 0.0));
    assert!(value_of("sqlite_vol_volume_persistent", 0)?.is_some());

    // The alert rules see the same series: pending (their `for` has not passed) or firing.
    let expected = [
        ("SqliteVolOffsiteBackupTooOld", 1),
        ("SqliteVolRestoreDrillFailing", 1),
        ("SqliteVolRestoreDrillTooOld", 1), // it never passed one either
        ("SqliteVolBackupTooOld", 2),
        ("SqliteVolRestoreDrillTooOld", 2),
    ];
    let alerts = prom.until(60, "the expected alerts", |p| {
        let data = p.api("alerts").ok()?;
        let list: Vec<(String, String, String)> = data["alerts"]
            .as_array()?
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    a["labels"]["instance"].as_str().unwrap_or("").to_string(),
                    a["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        expected
            .iter()
            .all(|(name, i)| {
                list.iter()
                    .any(|(n, inst, _)| n == name && *inst == instance(*i))
            })
            .then_some(list)
    })?;
    for (name, inst, _) in &alerts {
        assert!(
            expected
                .iter()
                .any(|(n, i)| n == name && *inst == instance(*i)),
            "unexpected alert {name} for {inst}: {alerts:?}"
        );
    }
    let failing = alerts
        .iter()
        .find(|(n, _, _)| n == "SqliteVolRestoreDrillFailing")
        .map(|a| a.2.clone());
    assert_eq!(
        failing.as_deref(),
        Some("firing"),
        "a failed drill pages at once: {alerts:?}"
    );
    for s in svcs {
        s.terminate();
    }
    Ok(())
}

#[test]
fn the_shipped_alert_rules_pass_promtool_check_and_their_unit_tests() -> TestResult {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"][..],
        &["check", "config", "prometheus.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("promtool (apt-get install prometheus): {e}"))?;
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
