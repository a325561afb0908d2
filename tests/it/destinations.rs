//! Several destinations (moto on loopback): with one of two places unreachable, the other still gets every
//! backup, from the command line and from a service's schedule, and the exit status, `status` and `doctor`
//! name the place that failed.

use std::time::{Duration, Instant};

use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{Service, TestResult};

use crate::offsite::{json, make_db, sv, text};

const GOOD: &str = "s3://good/ledger";
/// A bucket that does not exist: every request to it fails.
const GONE: &str = "s3://gone-bucket/ledger";

fn listed(moto: &Moto, db: &std::path::Path, place: &str) -> usize {
    let out = sv(moto, db, &["list", place, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    json(&out).as_array().map_or(0, Vec::len)
}

#[test]
fn one_of_two_unreachable_places_still_leaves_every_backup_in_the_other() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("good");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 200);
    // Either order: the failing place first or second stops nothing.
    for (i, to) in [format!("{GONE},{GOOD}"), format!("{GOOD},{GONE}")]
        .iter()
        .enumerate()
    {
        let out = sv(&moto, &db, &["backup", "--to", to, "--keep", "5"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("reached 1 of 2 destinations"),
            "{}",
            text(&out)
        );
        assert!(
            err.contains(GONE),
            "the failed place is named: {}",
            text(&out)
        );
        assert!(!err.contains(&format!("{GOOD} (")), "{}", text(&out));
        assert_eq!(listed(&moto, &db, GOOD), i + 1, "the good place got it");
    }

    // status and doctor say what failed.
    let out = sv(&moto, &db, &["status", "--json"]);
    let last = &json(&out)["offsite"]["last"];
    assert_eq!(last["ok"], false, "{}", text(&out));
    assert!(
        last["detail"].as_str().unwrap_or_default().contains(GONE),
        "{last}"
    );
    let out = sv(&moto, &db, &["doctor", "--json"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("FAILED {GONE}")),
        "{}",
        text(&out)
    );

    // Both up: exit 0, and the record says so.
    moto.create_bucket("gone-bucket");
    let out = sv(
        &moto,
        &db,
        &["backup", "--to", &format!("{GOOD},{GONE}"), "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["uploaded_to"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed(&moto, &db, GONE), 1);
    let out = sv(&moto, &db, &["status", "--json"]);
    assert_eq!(json(&out)["offsite"]["last"]["ok"], true);
    Ok(())
}

#[test]
fn a_service_with_one_place_down_keeps_sending_every_scheduled_backup_to_the_other() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("good");
    let mut env: Vec<(&str, String)> = moto.env();
    env.push((
        "SQLITE_VOL_BACKUP_TO",
        "s3://gone-bucket/accounts,s3://good/accounts".into(),
    ));
    env.push(("SQLITE_VOL_BACKUP_INTERVAL", "1s".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir()?;
    let svc = Service::start_with(dir.path(), &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = moto
            .keys("good", "accounts/")
            .iter()
            .filter(|k| k.ends_with(".db.json"))
            .count();
        if sent >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 3 scheduled backups reached the good place within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(&svc.log)?;
    assert!(
        log.contains("the others still get it") && log.contains("gone-bucket"),
        "the failing place is logged:\n{log}"
    );
    assert_eq!(svc.terminate().code(), Some(0));
    Ok(())
}
