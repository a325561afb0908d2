//! Off-site backup and restore against the glue scripts people write today and against Litestream, all
//! through one S3-compatible server (moto) on loopback, so the network is not in the numbers: what is
//! compared is the work each approach does around the transfer.
//!
//! Backup: `sqlite-vol backup --to s3://…` (checked local copy, multipart upload with the hash recomputed,
//! manifest) against `sqlite3 .backup` + boto3 `upload_file`. Restore onto an empty volume: `sqlite-vol
//! restore --if-db-not-exists --latest s3://…` (download hashed against the manifest, verified, restored)
//! against boto3 `download_file` into place (no check at all) and `litestream restore` from a replica of the
//! same database; and the same backup and restore encrypted with age to an X25519 recipient (streaming
//! both ways), against the unencrypted ones. Each contender's upload and restore get a moto of their own,
//! which holds one database at a time, so the section runs at 4 GiB on 24 GiB. Each contender is timed as its processes, with their peak RSS (the larger of the two for the
//! glue).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::proc::{self, Measured};
use super::results::{human, Samples};
use super::{fresh, Ctx, Results, LIMIT};
use crate::offsite::Moto;

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

fn boto(python: &Path, moto: &Moto, op: &str, key: &str, path: &Path) -> Command {
    let mut c = Command::new(python);
    c.args(["-c", BOTO, op, &moto.endpoint, "bench", key])
        .arg(path);
    c
}

fn sqlite_vol(bin: &Path, moto: &Moto, db: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = super::backup::ours(bin, db, dir);
    c.args(args).envs(moto.env());
    c
}

/// A timed process that must finish.
fn timed(c: Command, what: &str, log: &Path) -> Result<Measured, String> {
    proc::run(c, LIMIT, log)?.ok_or(format!("{what} did not finish in {} s", LIMIT.as_secs()))
}

/// A Litestream 0.5 config replicating `db` to the bench bucket (one `replica:` per database).
fn litestream_config(moto: &Moto, db: &Path, dir: &Path) -> Result<PathBuf, String> {
    let cfg = dir.join("litestream.yml");
    let text = format!(
        "dbs:\n  - path: {}\n    replica:\n      type: s3\n      bucket: bench\n      path: ls\n      endpoint: {}\n      region: us-east-1\n      force-path-style: true\n      access-key-id: test\n      secret-access-key: test\n      sync-interval: 1s\n",
        db.display(),
        moto.endpoint
    );
    std::fs::write(&cfg, text).map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// `litestream` without the caller's `AWS_CA_BUNDLE`, with which Litestream 0.5.17 refuses to start.
fn litestream_cmd(litestream: &Path) -> Command {
    let mut c = Command::new(litestream);
    c.env_remove("AWS_CA_BUNDLE");
    c
}

/// Replicates `db` with Litestream until its first snapshot (an LTX file of compaction level 9, under
/// `ls/0009/`) is in the bucket, then stops it.
fn replicate(litestream: &Path, moto: &Moto, cfg: &Path) -> Result<(), String> {
    let mut child = litestream_cmd(litestream)
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
            .any(|k| k.starts_with("ls/0009/") && k.ends_with(".ltx"))
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

const OURS_UP: &str = "sqlite-vol backup --to s3:// (checked, manifest)";
const GLUE_UP: &str = "sqlite3 .backup + boto3 upload_file";
const OURS_DOWN: &str = "sqlite-vol restore --latest s3:// (hashed, verified)";
const BOTO_DOWN: &str = "boto3 download_file (unchecked)";
const LS_DOWN: &str = "litestream restore";
const ENC_UP: &str = "sqlite-vol backup --to s3:// encrypted (age)";
const ENC_DOWN: &str = "sqlite-vol restore --latest s3:// encrypted (age)";

/// `MemAvailable` from `/proc/meminfo`, in bytes (0 when unknown).
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib << 10)
}

/// Off-site backup and restore, side by side.
pub fn run(cx: &Ctx<'_>, r: &mut Results) -> Result<(), String> {
    let t = cx.tools;
    let (Some((_, python)), Some(_)) = (&t.moto, &t.curl) else {
        return Ok(());
    };
    let (Some(bin), Some(sqlite3)) = (&t.sqlite_vol, &t.sqlite3) else {
        eprintln!("bench: off-site section skipped: it needs both sqlite-vol and sqlite3 (its glue contender's copy feeds Litestream)");
        return Ok(());
    };
    // moto keeps every object in memory; each contender gets a moto of its own for its upload and its
    // restore, so it holds one copy of the database at a time (about 1.1 × its size, more while it joins a
    // multipart upload).
    let avail = mem_available();
    if cx.ds.bytes.saturating_mul(2) > avail / 2 {
        eprintln!(
            "bench: off-site section skipped at {}: moto would hold about 2 × the database in memory, more than half of the {} MiB available",
            human(cx.size),
            avail >> 20
        );
        return Ok(());
    }
    let db = &cx.ds.db;
    let work = fresh(&cx.cfg.dir.join("offsite"))?;
    let up_names = [OURS_UP, GLUE_UP, ENC_UP];
    // The restore of what each upload sent, at the same index; Litestream restores its own replica.
    let mut down_names = vec![OURS_DOWN, BOTO_DOWN, ENC_DOWN];
    if t.litestream.is_some() {
        down_names.push(LS_DOWN);
    }
    // The same backups encrypted with age to an X25519 recipient, and restored with its identity.
    let keys = crate::keys::Keys::new();
    let mut up: Vec<Samples> = vec![Vec::new(); up_names.len()];
    let mut down: Vec<Samples> = vec![Vec::new(); down_names.len()];
    let fresh_moto = || {
        let moto = Moto::start();
        moto.create_bucket("bench");
        moto
    };
    for run in 0..cx.cfg.runs {
        let local = fresh(&work.join("local"))?;
        let copy = local.join("shell.db");
        let upload = |i: usize, moto: &Moto| -> Result<Measured, String> {
            let name = up_names[i];
            let log = cx.fresh_log("offsite", name);
            let ours = |dir: &str, to: &str| {
                sqlite_vol(bin, moto, db, &local.join(dir), &["backup", "--to", to])
            };
            match name {
                OURS_UP => timed(ours("ours", "s3://bench/ours"), name, &log),
                ENC_UP => {
                    let mut c = ours("enc", "s3://bench/enc");
                    c.env("SQLITE_VOL_BACKUP_RECIPIENTS", &keys.recipient);
                    timed(c, name, &log)
                }
                _ => {
                    let mut shell = Command::new(sqlite3);
                    shell.arg(db).arg(format!(".backup '{}'", copy.display()));
                    let a = timed(shell, "sqlite3 .backup", &log)?;
                    let b = timed(
                        boto(python, moto, "up", "glue/accounts.db", &copy),
                        "boto3 upload",
                        &log,
                    )?;
                    Ok(a.then(b))
                }
            }
        };
        let restore =
            |i: usize, moto: &Moto, ls: Option<(&Path, &Path)>| -> Result<Measured, String> {
                let name = down_names[i];
                let target_dir = fresh(&work.join("restore"))?;
                let target = target_dir.join("accounts.db");
                let log = cx.fresh_log("offsite", name);
                let ours = |from: &str| {
                    sqlite_vol(
                        bin,
                        moto,
                        &target,
                        &target_dir.join("staging"),
                        &["restore", "--if-db-not-exists", "--latest", from],
                    )
                };
                let c = match name {
                    OURS_DOWN => ours("s3://bench/ours"),
                    ENC_DOWN => {
                        let mut c = ours("s3://bench/enc");
                        c.env("SQLITE_VOL_BACKUP_IDENTITY", &keys.identity);
                        c
                    }
                    BOTO_DOWN => boto(python, moto, "down", "glue/accounts.db", &target),
                    _ => {
                        let mut c = litestream_cmd(
                            t.litestream.as_deref().unwrap_or(Path::new("litestream")),
                        );
                        let (cfg, src) = ls.ok_or("litestream restore without its replica")?;
                        c.args(["restore", "-config"])
                            .arg(cfg)
                            .arg("-o")
                            .arg(&target)
                            .arg(src);
                        c
                    }
                };
                let m = timed(c, name, &log)?;
                eprintln!(
                    "bench: offsite {} run {run} {name}: {:.2} s, {} MiB",
                    human(cx.size),
                    m.secs,
                    m.rss >> 20
                );
                let _ = std::fs::remove_dir_all(&target_dir);
                Ok(m)
            };
        // Each upload, then its restore, interleaved; who goes first alternates (the glue's copy, which
        // also feeds Litestream, is made in every order).
        let order: [usize; 3] = if run % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for i in order {
            let moto = fresh_moto();
            super::backup::warm(db)?;
            let m = upload(i, &moto)?;
            eprintln!(
                "bench: offsite {} run {run} {}: {:.2} s, {} MiB",
                human(cx.size),
                up_names[i],
                m.secs,
                m.rss >> 20
            );
            up[i].push(m);
            if i == 0 {
                r.phases("off-site backup", OURS_UP, &cx.log("offsite", OURS_UP));
            }
            let m = restore(i, &moto, None)?;
            if i == 0 {
                r.phases("off-site restore", OURS_DOWN, &cx.log("offsite", OURS_DOWN));
            }
            down[i].push(m);
            drop(moto);
            for dir in ["ours", "enc"] {
                let _ = std::fs::remove_dir_all(local.join(dir));
            }
        }
        // Litestream needs its own replica of the same database (not timed: continuous replication).
        if let Some(ls) = &t.litestream {
            let moto = fresh_moto();
            let ls_src = fresh(&work.join("ls-src"))?.join("accounts.db");
            let ls_cfg = litestream_config(&moto, &ls_src, &work)?;
            std::fs::rename(&copy, &ls_src).map_err(|e| e.to_string())?;
            replicate(ls, &moto, &ls_cfg)?;
            let m = restore(3, &moto, Some((&ls_cfg, &ls_src)))?;
            down[3].push(m);
            drop(moto);
            let _ = std::fs::remove_dir_all(ls_src.parent().unwrap_or(&work));
        }
        fresh(&local)?;
    }
    let up_mbps = r.throughput(
        "off-site backup",
        &up_names,
        &up,
        cx.ds.bytes,
        1,
        "ratio to .backup + boto3; moto on loopback",
    );
    let down_mbps = r.throughput(
        "off-site restore",
        &down_names,
        &down,
        cx.ds.bytes,
        1,
        "onto an empty volume; ratio to the unchecked download",
    );
    let at = human(cx.size);
    r.target(
        format!("off-site backup ÷ .backup + boto3 upload at {at}"),
        up_mbps[0] / up_mbps[1],
        0.85,
        false,
    );
    r.target(
        format!("off-site restore ÷ unchecked download at {at}"),
        down_mbps[0] / down_mbps[1],
        0.7,
        false,
    );
    let ls = down_names.iter().position(|n| *n == LS_DOWN);
    r.target(
        format!("off-site restore ÷ litestream restore at {at}"),
        ls.map_or(f64::NAN, |i| down_mbps[0] / down_mbps[i]),
        1.5,
        false,
    );
    r.target(
        format!("encrypted off-site backup ÷ unencrypted at {at}"),
        up_mbps[2] / up_mbps[0],
        0.8,
        false,
    );
    r.target(
        format!("encrypted off-site restore ÷ unencrypted at {at}"),
        down_mbps[2] / down_mbps[0],
        0.8,
        false,
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
