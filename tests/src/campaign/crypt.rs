//! Encrypted off-site faults, against a real S3-compatible server (moto) on loopback: SIGKILL `sqlite-vol
//! backup --to s3://…` with recipients set at random moments of the encrypted upload, then check that every
//! backup the bucket lists is a complete object that decrypts to what its manifest says, that no object
//! holds a known plaintext row or a SQLite page, and that the next backup succeeds; and SIGKILL a
//! first-start restore of the encrypted backup (`restore --if-db-not-exists --latest s3://…` with the
//! identity) at random moments, then check that the database is absent or the whole backup (never
//! partial), that no staged file is left that anything lists, and that the next start restores it.

use std::path::Path;
use std::process::{Command, Stdio};

use super::maint::{digest, kill_within, make_big, migration_dirs, timed};
use super::{Config, Report};
use crate::keys::Keys;
use crate::offsite::{moto_python, Moto};
use crate::support::Rng;

const APP: &str = "campaign";
const AREA: &str = "crypt";
const BUCKET: &str = "crypt";
const PREFIX: &str = "enc";
/// A row no stored object may contain.
const CANARY: &str = "CANARY-crypt-row-bob@example.com-5500000000000004";

/// `sqlite-vol --db DB --app campaign -q ARGS…` with moto's variables and `env`, output discarded.
fn cli(moto: &Moto, db: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = moto.sqlite_vol(db, APP, env);
    c.arg("-q")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// What `sqlite-vol list PLACE --json` gives: each backup's path or URL.
fn listed(moto: &Moto, db: &Path, place: &str) -> Result<Vec<String>, String> {
    let mut c = cli(moto, db, &[], &["list", place, "--json"]);
    let out = c
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("list {place} failed with {}", out.status));
    }
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(rows
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The keys under the prefix that hold a plaintext row or a SQLite page, and how many objects were read:
/// one Python (boto3, signed) reads them all.
fn plaintext_objects(moto: &Moto) -> Result<(Vec<String>, usize), String> {
    let out = Command::new(moto_python())
        .args(["-c", SCAN, &moto.endpoint, BUCKET, PREFIX, CANARY])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "scanning the bucket failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let plain = text
        .lines()
        .filter_map(|l| l.strip_prefix("PLAIN "))
        .map(str::to_string)
        .collect();
    let read = text
        .lines()
        .find_map(|l| l.strip_prefix("READ "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("the bucket scan printed no count")?;
    Ok((plain, read))
}

/// Reads every object under a prefix (boto3, signed) and prints the keys that hold the needle or a SQLite
/// page, then how many objects it read.
const SCAN: &str = r#"import sys, boto3
s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',
                  aws_access_key_id='test', aws_secret_access_key='test')
n = 0
for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):
    for o in page.get('Contents', []):
        n += 1
        body = s3.get_object(Bucket=sys.argv[2], Key=o['Key'])['Body'].read()
        if sys.argv[4].encode() in body or b'SQLite format 3' in body:
            print('PLAIN', o['Key'])
print('READ', n)
"#;

/// Files under `dir` whose name starts with a dot, recursively.
fn hidden_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(hidden_files(&p));
        } else if e.file_name().to_string_lossy().starts_with('.') {
            out.push(p.display().to_string());
        }
    }
    out
}

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    let mut rng = Rng::new(cfg.seed ^ 0x6372_7970);
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let keys = Keys::new();
    let recipients = [("SQLITE_VOL_BACKUP_RECIPIENTS", keys.recipient.as_str())];
    let id = keys.identity.display().to_string();
    let identity = [("SQLITE_VOL_BACKUP_IDENTITY", id.as_str())];
    let (m1, _) = migration_dirs(root).map_err(|e| e.to_string())?;
    // A fifth of the maintenance size: still more than one 8 MiB part, so the multipart path encrypts as it
    // reads.
    let mib = (cfg.big_mib / 5).max(9);
    let db = make_big(&root.join("live"), &m1, mib, "live")?;
    {
        let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
        c.execute_batch("CREATE TABLE secrets(v TEXT NOT NULL);")
            .and_then(|_| {
                (0..100).try_for_each(|_| {
                    c.execute("INSERT INTO secrets(v) VALUES (?1)", [CANARY])
                        .map(drop)
                })
            })
            .map_err(|e| e.to_string())?;
    }
    let want = digest(&db)?;
    let kills = cfg.maint_kills * 2;
    let place = format!("s3://{BUCKET}/{PREFIX}");
    let backup = |moto: &Moto| {
        let mut c = cli(moto, &db, &recipients, &["backup", "--to", &place]);
        c.arg("--backup-dir").arg(root.join("local-backups"));
        c
    };

    // 1. Kills during the encrypted upload.
    let whole = timed(backup(&moto))?;
    let mut mid = 0;
    for _ in 0..kills {
        if kill_within(backup(&moto), whole, &mut rng)? {
            mid += 1;
        }
    }
    let urls = listed(&moto, &db, &place)?;
    let mut bad = 0;
    for url in &urls {
        let ok = cli(&moto, &db, &identity, &["verify", url])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "campaign: crypt: listed backup {url} does not decrypt and match its manifest"
            );
            bad += 1;
        }
    }
    report.info(
        AREA,
        format!("encrypted backup --to s3:// of a {mib} MiB database killed (still running)"),
        format!(
            "{kills} ({mid}); a whole one takes {} ms",
            whole.as_millis()
        ),
    );
    report.zero(
        AREA,
        "listed encrypted backups that do not decrypt and match their manifest",
        bad,
    );
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a name of its own
    let next = backup(&moto).status().is_ok_and(|s| s.success());
    let after = listed(&moto, &db, &place)?;
    let newest_ok = after.len() > urls.len()
        && cli(&moto, &db, &identity, &["verify", &after[0]])
            .status()
            .is_ok_and(|s| s.success());
    report.check(
        AREA,
        "the next encrypted backup after the kills succeeds, is listed newest and decrypts",
        if next && newest_ok {
            Ok(())
        } else {
            Err(format!(
                "succeeded {next}; listed before {urls:?}, after {after:?}"
            ))
        },
    );

    // Every object now in the bucket: the killed uploads' leftovers and the backups, old and new.
    let (plain, read) = plaintext_objects(&moto)?;
    for k in &plain {
        eprintln!("campaign: crypt: object {k} holds plaintext");
    }
    let objects = moto.keys(BUCKET, &format!("{PREFIX}/"));
    let data = objects.iter().filter(|k| k.ends_with(".db")).count();
    report.info(
        AREA,
        "backups listed after the kills / data objects / manifests (with the next backup)",
        format!(
            "{} / {data} / {}",
            urls.len(),
            objects.iter().filter(|k| k.ends_with(".db.json")).count()
        ),
    );
    report.zero(
        AREA,
        format!("objects holding a plaintext row or SQLite page (of {read} read)"),
        plain.len() as u64,
    );

    // 2. Kills during a first-start restore of the encrypted backup into an empty volume.
    let fresh = root.join("new-machine");
    let target = fresh.join("campaign.db");
    let staging = fresh.join("staging");
    let first_start = |moto: &Moto| {
        let mut c = cli(
            moto,
            &target,
            &identity,
            &["restore", "--if-db-not-exists", "--latest", &place],
        );
        c.arg("--backup-dir").arg(&staging);
        c
    };
    let whole = timed(first_start(&moto))?;
    let (mut mid, mut half, mut listed_hidden, mut not_restored, mut left_hidden) = (0, 0, 0, 0, 0);
    let mut hidden_after_kill = 0;
    for _ in 0..kills {
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
        if kill_within(first_start(&moto), whole, &mut rng)? {
            mid += 1;
        }
        if sqlite_vol::location::has_content(&target)
            && digest(&target).ok().as_ref() != Some(&want)
        {
            half += 1;
        }
        hidden_after_kill += hidden_files(&fresh).len();
        // Nothing that lists backups here may offer a staged file.
        for dir in [&staging, &fresh] {
            if !dir.is_dir() {
                continue;
            }
            let names = listed(&moto, &target, &dir.display().to_string())?;
            for n in &names {
                let base = Path::new(n)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                let whole_copy = cli(&moto, &target, &[], &["verify", n])
                    .status()
                    .is_ok_and(|s| s.success());
                if base.starts_with('.') || !whole_copy {
                    eprintln!("campaign: crypt: {n} is listed after a killed first start");
                    listed_hidden += 1;
                }
            }
        }
        // The next start finishes the job.
        let done = first_start(&moto).status().is_ok_and(|s| s.success());
        if !done || digest(&target).ok().as_ref() != Some(&want) {
            not_restored += 1;
        }
        let left = hidden_files(&fresh);
        if !left.is_empty() {
            eprintln!("campaign: crypt: left after the next start: {left:?}");
            left_hidden += left.len() as u64;
        }
    }
    report.info(
        AREA,
        "first-start restores of the encrypted backup killed (still running)",
        format!(
            "{kills} ({mid}); a whole one takes {} ms",
            whole.as_millis()
        ),
    );
    report.info(
        AREA,
        "hidden staged files found right after the kills",
        hidden_after_kill,
    );
    report.zero(AREA, "a database left that is not the whole backup", half);
    report.zero(
        AREA,
        "staged or incomplete files listed as backups after a kill",
        listed_hidden,
    );
    report.zero(
        AREA,
        "next starts that did not end with the whole backup",
        not_restored,
    );
    report.zero(
        AREA,
        "hidden staged files left after the next start",
        left_hidden,
    );
    Ok(())
}
