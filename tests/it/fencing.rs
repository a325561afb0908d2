//! Lineage and fencing in a real S3-compatible bucket (moto): a second database is refused at the same
//! prefix, a restore on another volume takes the next writer generation, the instance it was restored from
//! is refused and fails doctor, and the newest listed backup is always the new writer's.

use std::path::Path;
use std::process::{Command, Output};

use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{bin, TestResult};

use crate::offsite::{backup_to, json, make_db, sv, text, APP};

const PLACE: &str = "s3://offsite/prod/ledger";

/// `sqlite-vol doctor --json` with SQLITE_VOL_BACKUP_TO set to the place.
fn doctor(moto: &Moto, db: &Path) -> Output {
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("--db")
        .arg(db)
        .args(["--app", APP, "doctor", "--json"]);
    c.env("SQLITE_VOL_BACKUP_TO", PLACE);
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c.output().expect("run doctor")
}

fn lineage_finding(out: &Output) -> serde_json::Value {
    let v = json(out);
    let findings = v
        .get("checks")
        .and_then(|f| f.as_array())
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default();
    findings
        .into_iter()
        .find(|f| f["name"] == "lineage")
        .unwrap_or_else(|| panic!("no lineage finding: {}", text(out)))
}

#[test]
fn a_restore_on_another_volume_fences_out_the_old_instance_in_a_bucket() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("offsite");
    let a_dir = tempfile::tempdir()?;
    let a = make_db(a_dir.path(), 100);
    backup_to(&moto, &a, PLACE);
    assert_eq!(lineage_finding(&doctor(&moto, &a))["status"], "pass");

    // B: a new volume restores the newest backup on its first start.
    let b_dir = tempfile::tempdir()?;
    let b = b_dir.path().join("ledger.db");
    let out = sv(
        &moto,
        &b,
        &["restore", "--if-db-not-exists", "--latest", PLACE],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A's next backup is refused, and nothing of it is listed.
    let out = sv(&moto, &a, &["backup", "--to", PLACE]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("another instance has taken over"),
        "{}",
        text(&out)
    );
    let doc = doctor(&moto, &a);
    assert_eq!(doc.status.code(), Some(1), "{}", text(&doc));
    assert_eq!(lineage_finding(&doc)["status"], "fail", "{}", text(&doc));

    // B's succeeds and is the newest listed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let sent = backup_to(&moto, &b, PLACE);
    let out = sv(&moto, &b, &["list", PLACE, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = json(&out);
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(rows[0]["path"], sent["uploaded_to"], "{rows}");
    assert_eq!(lineage_finding(&doctor(&moto, &b))["status"], "pass");
    Ok(())
}

#[test]
fn a_second_database_at_the_same_prefix_is_refused_in_a_bucket() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("offsite");
    let first = tempfile::tempdir()?;
    backup_to(&moto, &make_db(first.path(), 10), PLACE);
    let second = tempfile::tempdir()?;
    let other = make_db(second.path(), 10);
    let out = sv(&moto, &other, &["backup", "--to", PLACE]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    for what in ["belongs to another database", "another prefix", "--adopt"] {
        assert!(said.contains(what), "{what}: {said}");
    }
    let keys = moto.keys("offsite", "prod/ledger/");
    assert_eq!(keys.len(), 3, "only the first database's backup: {keys:?}");
    Ok(())
}
