//! Off-site faults, against a real S3-compatible server (moto) on loopback: SIGKILL `sqlite-vol backup
//! --to s3://…` at random moments of a large backup and upload, then check that every backup the bucket
//! lists downloads and verifies; SIGKILL a first-start restore (`restore --if-db-not-exists --latest
//! s3://…`, which downloads straight into the staged file beside the database) into an empty volume at
//! random moments, then check that no half database is ever left for the next start to trust, that nothing
//! left by the kill is listed as a backup, and that the next start finishes the job and clears the staged
//! file; and offer tampered objects (a flipped
//! byte, a truncation, another file) under a valid manifest, which must all be refused.

use std::path::Path;
use std::process::{Command, Stdio};

use super::maint::{digest, kill_within, make_big, migration_dirs, timed};
use super::{Config, Report};
use crate::offsite::Moto;
use crate::support::{bin, Rng};

const APP: &str = "campaign";
const AREA: &str = "off-site";

fn cli(moto: &Moto, db: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("--db")
        .arg(db)
        .args(["--app", APP, "-q"])
        .args(args)
        .envs(moto.env())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// How many of the backups at `urls` do not verify (each said on stderr).
fn unverified(moto: &Moto, urls: &[String]) -> u64 {
    let mut bad = 0;
    for url in urls {
        let ok = Command::new(bin("sqlite-vol"))
            .args(["verify", url])
            .envs(moto.env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("campaign: off-site: listed backup {url} does not verify");
            bad += 1;
        }
    }
    bad
}

/// The URLs `sqlite-vol list` gives for `place`.
fn listed(moto: &Moto, db: &Path, place: &str) -> Result<Vec<String>, String> {
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(db)
        .args(["--app", APP, "list", place, "--json"])
        .envs(moto.env())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
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

pub fn run(cfg: &Config, report: &mut Report) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    let mut rng = Rng::new(cfg.seed ^ 0x6f66_6673);
    let moto = Moto::start();
    moto.create_bucket("campaign");
    let (m1, _) = migration_dirs(root).map_err(|e| e.to_string())?;
    let db = make_big(&root.join("live"), &m1, cfg.big_mib, "live")?;
    let want = digest(&db)?;
    let kills = cfg.maint_kills * 2;

    // 1. Kills during backup --to s3://.
    let place = "s3://campaign/kills";
    let whole = timed(cli(&moto, &db, &["backup", "--to", place]))?;
    let mut mid = 0;
    for _ in 0..kills {
        if kill_within(cli(&moto, &db, &["backup", "--to", place]), whole, &mut rng)? {
            mid += 1;
        }
    }
    let urls = listed(&moto, &db, place)?;
    let bad = unverified(&moto, &urls);
    let objects = moto.keys("campaign", "kills/");
    let data = objects.iter().filter(|k| k.ends_with(".db")).count();
    let manifests = objects.iter().filter(|k| k.ends_with(".db.json")).count();
    report.info(
        AREA,
        format!(
            "backup --to s3:// of a {} MiB database killed (still running)",
            cfg.big_mib
        ),
        format!("{kills} ({mid})"),
    );
    report.info(
        AREA,
        "backups listed after the kills / data objects / manifests",
        format!("{} / {data} / {manifests}", urls.len()),
    );
    report.zero(AREA, "listed backups that do not download and verify", bad);

    // 2. Kills during a first-start restore into an empty volume.
    let fresh = root.join("new-machine");
    let target = fresh.join("campaign.db");
    let first_start = |moto: &Moto| {
        let mut c = cli(
            moto,
            &target,
            &["restore", "--if-db-not-exists", "--latest", place],
        );
        c.arg("--backup-dir").arg(fresh.join("staging"));
        c
    };
    let whole = timed(first_start(&moto))?;
    let staged = fresh.join(".campaign.db.restoring");
    let (mut mid, mut half, mut stray, mut staged_seen, mut listed_bad, mut staged_left) =
        (0, 0, 0, 0, 0, 0);
    for _ in 0..kills {
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh).map_err(|e| e.to_string())?;
        if kill_within(first_start(&moto), whole, &mut rng)? {
            mid += 1;
        }
        if staged.exists() {
            staged_seen += 1;
        }
        if sqlite_vol::location::has_content(&target)
            && digest(&target).ok().as_ref() != Some(&want)
        {
            half += 1;
        }
        // Whatever the kill left, nothing that is not a whole backup is listed as one (the download
        // goes straight into the staged file, which no listing shows; the backup folder gets nothing).
        for folder in [fresh.join("staging"), fresh.clone()] {
            if !folder.is_dir() {
                continue;
            }
            let shown = listed(&moto, &target, &folder.to_string_lossy())?;
            listed_bad += unverified(&moto, &shown);
        }
        // The next first start must finish the job, and clear the staged file.
        let done = first_start(&moto).status().is_ok_and(|s| s.success());
        if !done || digest(&target).ok().as_ref() != Some(&want) {
            stray += 1;
        }
        if staged.exists() {
            staged_left += 1;
        }
    }
    report.info(
        AREA,
        "first-start restores from s3:// killed (still running)",
        format!("{kills} ({mid})"),
    );
    report.zero(AREA, "a database left that is not the whole backup", half);
    report.zero(
        AREA,
        "next starts that did not end with the whole backup",
        stray,
    );
    report.info(
        AREA,
        "first-start kills that left the staged file behind",
        staged_seen,
    );
    report.zero(
        AREA,
        "listed backups after a first-start kill that do not verify",
        listed_bad,
    );
    report.zero(AREA, "staged files left after the next start", staged_left);

    // 3. Tampered objects under a valid manifest.
    let tampered_place = "s3://campaign/tampered";
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(&db)
        .args(["--app", APP, "backup", "--to", tampered_place, "--json"])
        .envs(moto.env())
        .output()
        .map_err(|e| e.to_string())?;
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let local = b["path"].as_str().ok_or("no backup path")?.to_string();
    let key = b["uploaded_to"]
        .as_str()
        .and_then(|u| u.strip_prefix("s3://campaign/"))
        .ok_or("no upload")?
        .to_string();
    let original = std::fs::read(&local).map_err(|e| e.to_string())?;
    let tries = (cfg.maint_kills).max(3);
    let mut accepted = 0;
    for i in 0..tries {
        let mut data = original.clone();
        match i % 3 {
            0 => {
                let at = rng.below(data.len() as u64) as usize;
                data[at] ^= 1 << rng.below(8);
            }
            1 => data.truncate(rng.below(data.len() as u64) as usize),
            _ => data = std::fs::read(&db).map_err(|e| e.to_string())?,
        }
        if data == original {
            continue;
        }
        moto.put("campaign", &key, &data)
            .map_err(|e| e.to_string())?;
        let target = root.join(format!("tampered-{i}")).join("campaign.db");
        let ok = cli(
            &moto,
            &target,
            &["restore", "--if-db-not-exists", "--latest", tampered_place],
        )
        .status()
        .is_ok_and(|s| s.success());
        if ok || sqlite_vol::location::has_content(&target) {
            accepted += 1;
        }
    }
    report.info(
        AREA,
        "tampered objects offered (bit flip, truncation, another file)",
        tries,
    );
    report.zero(AREA, "tampered off-site backups restored", accepted);
    Ok(())
}
