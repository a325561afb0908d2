//! Off-site backup and restore against the glue scripts people write today and against Litestream, all
//! through one S3-compatible server (moto) on loopback, so the network is not in the numbers: what is
//! compared is the work each approach does around the transfer.
//!
//! Backup: `sqlite-vol backup --to s3://…` (checked local copy, multipart upload with the hash recomputed,
//! manifest) against `sqlite3 .backup` + boto3 `upload_file`. Restore onto an empty volume: `sqlite-vol
//! restore --if-db-not-exists --latest s3://…` (download hashed against the manifest, verified, restored)
//! against boto3 `download_file` into place (no check at all) and `litestream restore` from a replica of the
//! same database; and the same backup and restore encrypted with age to an X25519 recipient (streaming
//! both ways), against the unencrypted ones. Each run gets a fresh moto, so its memory does not grow with the runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::data::DataSet;
use super::{fresh, secs, Config, Results};
use crate::offsite::Moto;
use crate::support::bin;

const BOTO: &str = r#"
import sys, boto3
from boto3.s3.transfer import TransferConfig
op, endpoint, bucket, key, path = sys.argv[1:6]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id='test', aws_secret_access_key='test')
if op == 'up':
    s3.upload_file(path, bucket, key, Config=TransferConfig(multipart_chunksize=8 << 20, max_concurrency=4))
else:
    # One GET, as sqlite-vol does: moto answers each ranged GET of a large object by slicing it in
    # Python, which made boto3's default parallel ranged download 10-40x slower here than one stream.
    s3.download_file(bucket, key, path, Config=TransferConfig(multipart_threshold=1 << 40))
"#;

fn check(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn boto(moto: &Moto, op: &str, key: &str, path: &Path) -> Command {
    let mut c = Command::new(crate::offsite::moto_python());
    c.args(["-c", BOTO, op, &moto.endpoint, "bench", key])
        .arg(path);
    c
}

fn sqlite_vol(moto: &Moto, db: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("--db")
        .arg(db)
        .args(["--app", "accounts", "-q"])
        .args(args)
        .envs(moto.env());
    c
}

/// A Litestream config replicating `db` to the bench bucket.
fn litestream_config(moto: &Moto, db: &Path, dir: &Path) -> Result<PathBuf, String> {
    let cfg = dir.join("litestream.yml");
    let text = format!(
        "dbs:\n  - path: {}\n    replicas:\n      - type: s3\n        bucket: bench\n        path: ls\n        endpoint: {}\n        region: us-east-1\n        force-path-style: true\n        access-key-id: test\n        secret-access-key: test\n        sync-interval: 1s\n",
        db.display(),
        moto.endpoint
    );
    std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Replicates `db` with Litestream until its first snapshot is in the bucket, then stops it.
fn replicate(moto: &Moto, cfg: &Path) -> Result<(), String> {
    let mut child = Command::new(crate::offsite::litestream())
        .args(["replicate", "-config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let done = loop {
        if moto
            .keys("bench", "ls/")
            .iter()
            .any(|k| k.contains("/snapshots/"))
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    if done {
        Ok(())
    } else {
        Err("litestream did not upload a snapshot within 600 s".into())
    }
}

/// Off-site backup and restore, side by side.
pub fn run(cfg: &Config, ds: &DataSet, r: &mut Results) -> Result<(), String> {
    let work = fresh(&cfg.dir.join("offsite"))?;
    let up_names = [
        "sqlite-vol backup --to s3:// (checked, manifest)",
        "sqlite3 .backup + boto3 upload_file",
        "sqlite-vol backup --to s3:// encrypted (age)",
    ];
    let down_names = [
        "sqlite-vol restore --latest s3:// (hashed, verified)",
        "boto3 download_file (unchecked)",
        "litestream restore",
        "sqlite-vol restore --latest s3:// encrypted (age)",
    ];
    let keys = crate::keys::Keys::new();
    let recipients = [("SQLITE_VOL_BACKUP_RECIPIENTS", keys.recipient.clone())];
    let identity = [(
        "SQLITE_VOL_BACKUP_IDENTITY",
        keys.identity.display().to_string(),
    )];
    let mut up: Vec<Vec<f64>> = vec![Vec::new(); up_names.len()];
    let mut down: Vec<Vec<f64>> = vec![Vec::new(); down_names.len()];
    for run in 0..cfg.runs {
        let moto = Moto::start();
        moto.create_bucket("bench");
        // Uploads, interleaved; who goes first alternates (a fresh moto warms up on its first requests).
        let local = fresh(&work.join("local"))?;
        let copy = local.join("shell.db");
        let ours = || -> Result<f64, String> {
            let t = Instant::now();
            let dir = local.join("ours").display().to_string();
            let args = ["--backup-dir", &dir, "backup", "--to", "s3://bench/ours"];
            check(sqlite_vol(&moto, &ds.db, &args), "sqlite-vol backup --to")?;
            Ok(secs(t.elapsed()))
        };
        let glue = || -> Result<f64, String> {
            let t = Instant::now();
            let mut shell = Command::new("sqlite3");
            shell
                .arg(&ds.db)
                .arg(format!(".backup '{}'", copy.display()));
            check(shell, "sqlite3 .backup")?;
            check(boto(&moto, "up", "glue/accounts.db", &copy), "boto3 upload")?;
            Ok(secs(t.elapsed()))
        };
        let encrypted = || -> Result<f64, String> {
            let t = Instant::now();
            let dir = local.join("enc").display().to_string();
            let args = ["--backup-dir", &dir, "backup", "--to", "s3://bench/enc"];
            let mut c = sqlite_vol(&moto, &ds.db, &args);
            c.envs(recipients.clone());
            check(c, "sqlite-vol backup --to (encrypted)")?;
            Ok(secs(t.elapsed()))
        };
        if run % 2 == 0 {
            up[0].push(ours()?);
            up[1].push(glue()?);
            up[2].push(encrypted()?);
        } else {
            up[2].push(encrypted()?);
            up[1].push(glue()?);
            up[0].push(ours()?);
        }
        // Litestream needs its own replica of the same database (not timed: continuous replication).
        let ls_src = fresh(&work.join("ls-src"))?.join("accounts.db");
        std::fs::copy(&copy, &ls_src).map_err(|e| e.to_string())?;
        let ls_cfg = litestream_config(&moto, &ls_src, &work)?;
        replicate(&moto, &ls_cfg)?;
        fresh(&local)?;

        // Restores onto an empty volume, interleaved.
        for (i, name) in down_names.iter().enumerate() {
            let target_dir = fresh(&work.join("restore"))?;
            let target = target_dir.join("accounts.db");
            let t = Instant::now();
            let staging = target_dir.join("staging").display().to_string();
            let first_start = |from: &str| {
                let args = [
                    "--backup-dir",
                    &staging,
                    "restore",
                    "--if-db-not-exists",
                    "--latest",
                    from,
                ];
                let mut c = sqlite_vol(&moto, &target, &args);
                c.envs(identity.clone());
                c
            };
            match i {
                0 => check(first_start("s3://bench/ours"), name)?,
                3 => check(first_start("s3://bench/enc"), name)?,
                1 => check(boto(&moto, "down", "glue/accounts.db", &target), name)?,
                _ => check(
                    {
                        let mut c = Command::new(crate::offsite::litestream());
                        c.args(["restore", "-config"])
                            .arg(&ls_cfg)
                            .arg("-o")
                            .arg(&target)
                            .arg(&ls_src);
                        c
                    },
                    name,
                )?,
            }
            let d = secs(t.elapsed());
            down[i].push(d);
            eprintln!("bench: offsite run {run} {name}: {d:.2} s");
        }
        eprintln!(
            "bench: offsite run {run} uploads: ours {:.2} s, glue {:.2} s, encrypted {:.2} s",
            up[0][run], up[1][run], up[2][run]
        );
        drop(moto);
    }
    let up_mbps = r.mb_per_s(
        "off-site backup",
        &up_names,
        &mut up,
        ds.bytes,
        1,
        "ratio to .backup + boto3; moto on loopback",
    );
    let down_mbps = r.mb_per_s(
        "off-site restore",
        &down_names,
        &mut down,
        ds.bytes,
        1,
        "onto an empty volume; ratio to the unchecked download",
    );
    r.target(
        "off-site backup ÷ .backup + boto3 upload",
        up_mbps[0] / up_mbps[1],
        0.8,
        false,
    );
    r.target(
        "off-site restore ÷ litestream restore",
        down_mbps[0] / down_mbps[2],
        0.8,
        false,
    );
    r.target(
        "encrypted off-site backup ÷ unencrypted",
        up_mbps[2] / up_mbps[0],
        0.8,
        false,
    );
    r.target(
        "encrypted off-site restore ÷ unencrypted",
        down_mbps[3] / down_mbps[0],
        0.8,
        false,
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
