//! A first start from an S3 place (moto on loopback) in one pass: the backup is downloaded straight into the
//! staged file beside the database (decrypted on the way when it is encrypted), checked there and renamed
//! into place, with no copy left in the backup folder; a tampered or resized object is refused
//! with nothing left in the folder; a database another process opened meanwhile is restored into, never
//! replaced.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sqlite_vol_tests::keys::Keys;
use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{bin, sqlite3_integrity, TestResult};

use crate::offsite::{backup_to, digest, json, make_db, text, APP};

/// `sqlite-vol --db DB --app ledger --backup-dir BACKUPS ARGS…` with moto's variables and `env`, logging
/// at debug level.
fn sv(moto: &Moto, db: &Path, backups: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    moto.sqlite_vol(db, APP, &[("SQLITE_VOL_LOG", "sqlite_vol=debug")])
        .envs(env.iter().copied())
        .arg("--backup-dir")
        .arg(backups)
        .args(args)
        .output()
        .expect("run sqlite-vol")
}

/// The names in `dir` other than the maintenance lock (absent: none).
fn left_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

const FIRST_START: [&str; 4] = ["restore", "--if-db-not-exists", "--latest", "--json"];

#[test]
fn a_first_start_from_s3_downloads_straight_into_place_encrypted_or_not() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("into");
    let keys = Keys::new();
    let src = tempfile::tempdir()?;
    // About 31 MiB: many chunks, and several age STREAM chunks' worth of ciphertext.
    let db = make_db(src.path(), 30_000);
    let want = digest(&db);
    backup_to(&moto, &db, "s3://into/plain");
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(&db)
        .args(["--app", APP, "backup", "--to", "s3://into/sealed"])
        .args(["--recipient", &keys.recipient])
        .env_remove("SQLITE_VOL_BACKUP_TO")
        .envs(moto.env())
        .output()?;
    assert!(out.status.success(), "{}", text(&out));

    let id = keys.identity.to_string_lossy().into_owned();
    for (place, env) in [
        ("s3://into/plain", vec![]),
        (
            "s3://into/sealed",
            vec![("SQLITE_VOL_BACKUP_IDENTITY", id.as_str())],
        ),
    ] {
        let fresh = tempfile::tempdir()?;
        let target = fresh.path().join("data/ledger.db");
        let backups = fresh.path().join("backups");
        let mut args = FIRST_START.to_vec();
        args.insert(3, place);
        let out = sv(&moto, &target, &backups, &env, &args);
        assert!(out.status.success(), "{place}: {}", text(&out));
        let r = json(&out);
        assert_eq!(r["restored"], true, "{r}");
        assert_eq!(r["created"], true, "{r}");
        assert_eq!(digest(&target), want, "{place}: every row came back");
        assert_eq!(sqlite3_integrity(&target), "ok");
        let mode: String =
            rusqlite::Connection::open(&target)?
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        assert_eq!(mode, "wal", "the restored database is in WAL mode");
        assert_eq!(
            left_in(target.parent().ok_or("no folder")?),
            ["ledger.db"],
            "{place}: the database alone, no staged file"
        );
        assert!(
            left_in(&backups).is_empty(),
            "{place}: no local copy of the download: {:?}",
            left_in(&backups)
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("restore phases") && log.contains("fetched_ms"),
            "{place}: the phases are logged: {log}"
        );
    }
    Ok(())
}

#[test]
fn a_tampered_or_resized_s3_object_is_refused_with_nothing_left_in_the_folder() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("bad");
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 12_000);
    let b = backup_to(&moto, &db, "s3://bad/p");
    let key = b["uploaded_to"]
        .as_str()
        .and_then(|u| u.strip_prefix("s3://bad/"))
        .ok_or("no upload")?
        .to_string();
    let good = std::fs::read(b["path"].as_str().ok_or("path")?)?;
    let mut flipped = good.clone();
    let at = good.len() * 3 / 4;
    flipped[at] ^= 0x20;
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    for (what, data, said) in [
        ("a flipped byte", flipped, "do not match its manifest"),
        (
            "a truncation",
            good[..good.len() - 4096].to_vec(),
            "truncated or was replaced",
        ),
        ("a longer object", longer, "truncated or was replaced"),
    ] {
        moto.put("bad", &key, &data)?;
        let fresh = tempfile::tempdir()?;
        let target = fresh.path().join("ledger.db");
        let backups = fresh.path().join("backups");
        let mut args = FIRST_START.to_vec();
        args.insert(3, "s3://bad/p");
        let out = sv(&moto, &target, &backups, &[], &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: a refusal: {}",
            text(&out)
        );
        assert!(
            text(&out).contains(said),
            "{what}: {said:?}: {}",
            text(&out)
        );
        assert!(
            left_in(fresh.path()).iter().all(|n| n == "backups"),
            "{what}: no database, no staged file: {:?}",
            left_in(fresh.path())
        );
        assert!(
            left_in(&backups).is_empty(),
            "{what}: {:?}",
            left_in(&backups)
        );
    }
    // Put back whole, the same backup restores.
    moto.put("bad", &key, &good)?;
    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let mut args = FIRST_START.to_vec();
    args.insert(3, "s3://bad/p");
    let out = sv(&moto, &target, &fresh.path().join("b"), &[], &args);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&target), digest(&db));
    Ok(())
}

/// A Python process that opens the (empty) file at argv[1], says `open`, and after a line on stdin counts
/// the entries it sees through that same open connection.
const HOLDS_AN_EMPTY_FILE: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA schema_version").fetchone()
print("open", flush=True)
sys.stdin.readline()
print(c.execute("SELECT count(*) FROM entries").fetchone()[0], flush=True)
"#;

#[test]
fn a_database_opened_by_another_process_during_a_first_start_from_s3_is_restored_into() -> TestResult
{
    let moto = Moto::start();
    moto.create_bucket("taken");
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 12_000);
    let want = digest(&db);
    backup_to(&moto, &db, "s3://taken/p");

    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let mut py = Command::new("python3")
        .args(["-c", HOLDS_AN_EMPTY_FILE])
        .arg(&target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = std::io::BufReader::new(py.stdout.take().ok_or("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    assert_eq!(line.trim(), "open");
    assert_eq!(
        std::fs::metadata(&target)?.len(),
        0,
        "an empty file is there"
    );
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&target)?);

    let mut args = FIRST_START.to_vec();
    args.insert(3, "s3://taken/p");
    let done = sv(&moto, &target, &fresh.path().join("backups"), &[], &args);
    py.stdin.take().ok_or("stdin")?.write_all(b"go\n")?;
    line.clear();
    out.read_line(&mut line)?;
    py.wait()?;
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(json(&done)["created"], false, "{}", text(&done));
    assert!(
        text(&done).contains("restoring into it instead of replacing it"),
        "{}",
        text(&done)
    );
    // Replacing the name would have left the Python process on the old, empty file.
    assert_eq!(
        line.trim(),
        want.0.to_string(),
        "the process that had the file open sees the restored rows"
    );
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&target)?),
        inode,
        "the same file, never replaced"
    );
    assert_eq!(digest(&target), want);
    assert!(
        left_in(fresh.path())
            .iter()
            .all(|n| !n.contains("restoring")),
        "no staged file is left: {:?}",
        left_in(fresh.path())
    );
    Ok(())
}
