//! The other doors to an S3 place (moto on loopback): an app in another language started on an empty volume
//! by `sqlite-vol exec` with its database restored from the bucket before it runs, and restore drills of the
//! newest backup in a bucket (a good one passes; a tampered object fails and the live database is untouched).

use std::process::Command;

use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{bin, TestResult};

use crate::offsite::{backup_to, digest, make_db, sv, text, APP};

/// A Python child that knows nothing of sqlite-vol: it counts the rows of the database it is given.
const COUNT_ROWS: &str = r#"
import os, sqlite3
db = sqlite3.connect(os.environ["SQLITE_VOL_DB"])
print(db.execute("SELECT count(*) FROM entries").fetchone()[0])
"#;

#[test]
fn exec_restores_the_newest_s3_backup_onto_an_empty_volume_before_the_app_starts() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("exec");
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 500);
    let (rows, sum) = digest(&db);
    backup_to(&moto, &db, "s3://exec/app");

    let fresh = tempfile::tempdir()?;
    let new_db = fresh.path().join("ledger.db");
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("--db")
        .arg(&new_db)
        .args(["--app", APP, "exec", "--restore-from", "s3://exec/app"])
        .args(["--", "python3", "-c", COUNT_ROWS])
        .env("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", "1")
        .env_remove("SQLITE_VOL_RESTORE_FROM")
        .env_remove("SQLITE_VOL_BACKUP_TO");
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    let out = c.output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        rows.to_string(),
        "the app saw the restored rows: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("RESTORED"),
        "the log says loudly that it restored: {}",
        text(&out)
    );
    assert_eq!(digest(&new_db), (rows, sum), "every row, byte for byte");
    Ok(())
}

#[test]
fn a_drill_of_an_s3_place_passes_for_a_good_backup_and_fails_for_a_tampered_one() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("drill");
    let dir = tempfile::tempdir()?;
    let db = make_db(dir.path(), 300);
    let sent = backup_to(&moto, &db, "s3://drill/p");
    let out = sv(&moto, &db, &["drill", "s3://drill/p"]);
    assert!(out.status.success(), "a good backup passes: {}", text(&out));

    // Replace the newest object's bytes while its manifest stays: the drill must refuse it.
    let before = std::fs::read(&db)?;
    let name = sent["path"]
        .as_str()
        .and_then(|p| p.rsplit('/').next())
        .ok_or("backup path in the JSON")?
        .to_string();
    let mut data = std::fs::read(sent["path"].as_str().ok_or("path")?)?;
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    moto.put("drill", &format!("p/{name}"), &data)?;
    let out = sv(&moto, &db, &["drill", "s3://drill/p"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out).to_lowercase();
    assert!(
        said.contains("checksum") || said.contains("sha256") || said.contains("manifest"),
        "the reason is the mismatch: {}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(&db)?,
        before,
        "the live database is untouched"
    );
    Ok(())
}
