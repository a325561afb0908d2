//! Off-site backups against a real S3-compatible server (moto on loopback): the `sqlite-vol` binary backs up
//! to, lists, prunes and restores from `s3://…`, and the `accounts` service sends its scheduled backups
//! there and comes up on a new, empty volume from the newest one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{bin, register, sqlite3_integrity, Service, TestResult};

pub(crate) const APP: &str = "ledger";
const PASSWORD: &str = "correct horse battery staple";

/// `sqlite-vol --db DB --app ledger ARGS…` with moto's credentials and endpoint.
pub(crate) fn sv(moto: &Moto, db: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(bin("sqlite-vol"));
    c.arg("--db").arg(db).args(["--app", APP]).args(args);
    for v in [
        "SQLITE_VOL_BACKUP_TO",
        "SQLITE_VOL_RESTORE_FROM",
        "SQLITE_VOL_BACKUP_DIR",
        "DB_PATH",
    ] {
        c.env_remove(v);
    }
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c.output().expect("run sqlite-vol")
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("not JSON: {}", text(o)))
}

/// `sqlite-vol backup --to PLACE --json`, which must succeed; its JSON answer.
pub(crate) fn backup_to(moto: &Moto, db: &Path, place: &str) -> Value {
    let out = sv(moto, db, &["backup", "--to", place, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    json(&out)
}

/// A stamped `ledger` database with `rows` rows of 1 KiB random payload (30 000 rows ≈ 31 MiB, several
/// multipart parts).
pub(crate) fn make_db(dir: &Path, rows: usize) -> PathBuf {
    let db = sqlite_vol::Database::builder(APP)
        .path(dir.join("ledger.db"))
        .backup_every(std::time::Duration::ZERO, None)
        .open()
        .expect("open ledger");
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE entries(id INTEGER PRIMARY KEY, payload BLOB NOT NULL);")
            .map_err(sqlite_vol::Error::from_sqlite)?;
        let mut ins = tx
            .prepare("INSERT INTO entries(payload) VALUES (randomblob(1024))")
            .map_err(sqlite_vol::Error::from_sqlite)?;
        for _ in 0..rows {
            ins.execute([]).map_err(sqlite_vol::Error::from_sqlite)?;
        }
        Ok::<_, sqlite_vol::Error>(())
    })
    .expect("fill ledger");
    let path = db.location().path.clone();
    db.close().expect("close");
    path
}

/// Row count and a sha256 over every row, in id order.
pub(crate) fn digest(db: &Path) -> (i64, String) {
    use sha2::Digest;
    let c = rusqlite::Connection::open(db).expect("open copy");
    let mut st = c
        .prepare("SELECT id, payload FROM entries ORDER BY id")
        .expect("prepare");
    let mut rows = st.query([]).expect("query");
    let (mut n, mut h) = (0i64, sha2::Sha256::new());
    while let Some(r) = rows.next().expect("row") {
        h.update(r.get::<_, i64>(0).expect("id").to_le_bytes());
        h.update(r.get::<_, Vec<u8>>(1).expect("payload"));
        n += 1;
    }
    (n, hex::encode(h.finalize()))
}

#[test]
fn a_backup_sent_to_s3_comes_back_into_an_empty_volume_with_every_row() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("offsite");
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 30_000);
    let before = digest(&db);

    let b = backup_to(&moto, &db, "s3://offsite/prod/ledger");
    let name = Path::new(b["path"].as_str().ok_or("no path")?)
        .file_name()
        .ok_or("no name")?
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        b["uploaded_to"],
        format!("s3://offsite/prod/ledger/{name}").as_str()
    );
    let mut keys = moto.keys("offsite", "prod/ledger/");
    keys.sort();
    assert_eq!(
        keys,
        vec![
            format!("prod/ledger/{name}"),
            format!("prod/ledger/{name}.json"),
            "prod/ledger/ledger.lineage.json".to_string(),
        ],
        "the data object, its manifest and the lineage marker, nothing else"
    );

    let out = sv(&moto, &db, &["list", "s3://offsite/prod/ledger", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = json(&out);
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["verified"], true, "{rows}");
    assert_eq!(rows[0]["bytes"], b["bytes"]);
    let url = format!("s3://offsite/prod/ledger/{name}");
    let out = sv(&moto, &db, &["verify", &url, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["path"], url.as_str());
    assert_eq!(json(&out)["sha256"], b["sha256"]);

    // A new machine: an empty volume, nothing but the bucket.
    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("data/ledger.db");
    let first_start = [
        "restore",
        "--if-db-not-exists",
        "--latest",
        "s3://offsite/prod/ledger",
        "--json",
    ];
    let out = sv(&moto, &target, &first_start);
    assert!(out.status.success(), "{}", text(&out));
    let r = json(&out);
    assert_eq!(r["restored"], true, "{r}");
    assert_eq!(r["created"], true, "{r}");
    assert_eq!(
        r["from"],
        format!("s3://offsite/prod/ledger/{name}").as_str()
    );
    assert_eq!(digest(&target), before, "every row came back");
    assert_eq!(sqlite3_integrity(&target), "ok");

    // Running it again (every restart of an init container does) changes nothing.
    let bytes = std::fs::read(&target)?;
    let out = sv(&moto, &target, &first_start);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["restored"], false);
    assert_eq!(std::fs::read(&target)?, bytes, "the database is untouched");
    Ok(())
}

#[test]
fn a_named_s3_backup_replaces_a_live_database_after_a_safety_backup() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("named");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 200);
    let url = backup_to(&moto, &db, "s3://named/x")["uploaded_to"]
        .as_str()
        .ok_or("no url")?
        .to_string();
    let before = digest(&db);
    rusqlite::Connection::open(&db)?.execute("DELETE FROM entries WHERE id > 100", [])?;
    assert_ne!(digest(&db), before);

    let out = sv(&moto, &db, &["restore", &url]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no --yes without a terminal: {}",
        text(&out)
    );
    let out = sv(&moto, &db, &["restore", &url, "--yes", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let r = json(&out);
    assert!(r["safety_backup"].is_string(), "{r}");
    assert_eq!(digest(&db), before);
    Ok(())
}

#[test]
fn prune_in_a_bucket_keeps_the_newest_and_clears_interrupted_uploads() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("prune");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 50);
    // An upload that died before its manifest, older than every backup below.
    moto.put("prune", "p/ledger-20200101T000000Z.db", b"half an upload")?;
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(
            backup_to(&moto, &db, "s3://prune/p")["uploaded_to"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let out = sv(&moto, &db, &["list", "s3://prune/p", "--json"]);
    let listed: Vec<String> = json(&out)
        .as_array()
        .ok_or("list")?
        .iter()
        .map(|r| r["path"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut newest_first = names.clone();
    newest_first.reverse();
    assert_eq!(
        listed, newest_first,
        "the data object without a manifest is not a backup"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ledger-20200101T000000Z.db: no manifest"),
        "{}",
        text(&out)
    );

    let out = sv(
        &moto,
        &db,
        &["prune", "--keep", "1", "s3://prune/p", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut keys = moto.keys("prune", "p/");
    keys.sort();
    let newest = names[2].trim_start_matches("s3://prune/").to_string();
    assert_eq!(
        keys,
        vec![
            newest.clone(),
            format!("{newest}.json"),
            "p/ledger.lineage.json".into()
        ],
        "prune keeps the lineage marker"
    );
    // The local copies were left alone: prune touched only the place it was given.
    let local = sv(&moto, &db, &["list", "--json"]);
    assert_eq!(json(&local).as_array().map(Vec::len), Some(3));
    Ok(())
}

#[test]
fn a_tampered_s3_backup_is_refused_and_nothing_is_left_behind() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("tamper");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 300);
    let b = backup_to(&moto, &db, "s3://tamper/t");
    let url = b["uploaded_to"].as_str().ok_or("url")?.to_string();
    let key = url.trim_start_matches("s3://tamper/");
    let mut data = std::fs::read(b["path"].as_str().ok_or("path")?)?;
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    moto.put("tamper", key, &data)?;

    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let staging = fresh.path().join("staging");
    let out = sv(
        &moto,
        &target,
        &[
            "--backup-dir",
            staging.to_str().ok_or("path")?,
            "restore",
            "--if-db-not-exists",
            "--latest",
            "s3://tamper/t",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "a refusal: {}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not match its manifest"), "{err}");
    let out = sv(&moto, &target, &["verify", &url]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "verify refuses it too: {}",
        text(&out)
    );
    assert!(
        !sqlite_vol::location::has_content(&target),
        "no database was made"
    );
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "nothing kept of the bad download: {left:?}"
    );
    Ok(())
}

#[test]
fn unusable_s3_settings_fail_fast_with_the_fix() -> TestResult {
    let moto = Moto::start();
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 10);
    let before = digest(&db);

    // No such bucket.
    let out = sv(&moto, &db, &["list", "s3://no-such-bucket/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("create the bucket"),
        "{}",
        text(&out)
    );

    // An endpoint where nothing listens: fails in seconds, naming the endpoint variable.
    let closed = sqlite_vol_tests::offsite::free_port();
    let started = Instant::now();
    let out = Command::new(bin("sqlite-vol"))
        .args(["--app", APP, "--db"])
        .arg(&db)
        .args(["backup", "--to", "s3://offsite/x"])
        .envs(moto.env())
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .output()?;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AWS_ENDPOINT_URL") && err.contains("was taken and checked"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up in {:?}",
        started.elapsed()
    );

    // No credentials for a custom endpoint; plain HTTP to a non-loopback host.
    let out = Command::new(bin("sqlite-vol"))
        .args(["--app", APP, "--db"])
        .arg(&db)
        .args(["list", "s3://offsite/x"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        text(&out)
    );
    let out = Command::new(bin("sqlite-vol"))
        .args(["--app", APP, "--db"])
        .arg(&db)
        .args(["list", "s3://offsite/x"])
        .envs(moto.env())
        .env_remove("AWS_ALLOW_HTTP")
        .env("AWS_ENDPOINT_URL", "http://storage.example.com:9000")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AWS_ALLOW_HTTP=true"),
        "{}",
        text(&out)
    );

    // Malformed locations.
    for bad in ["s3://", "s3://UPPER/x", "gs://bucket/x", "s3://bucket/a//b"] {
        let out = sv(&moto, &db, &["list", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not usable"),
            "{bad}: {}",
            text(&out)
        );
    }
    assert_eq!(digest(&db), before, "the database's content is unchanged");
    Ok(())
}

#[test]
fn a_service_on_a_new_empty_volume_starts_from_its_newest_off_site_backup() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("svc");
    let mut env: Vec<(&str, String)> = moto.env();
    env.push(("SQLITE_VOL_BACKUP_TO", "s3://svc/accounts".into()));
    env.push(("SQLITE_VOL_RESTORE_FROM", "s3://svc/accounts".into()));
    env.push(("SQLITE_VOL_BACKUP_KEEP", "2".into()));
    let with_interval: Vec<(&str, &str)> = env
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain([("SQLITE_VOL_BACKUP_INTERVAL", "1s")])
        .collect();

    // First machine: an empty bucket, so the service starts empty and says so.
    let first = tempfile::tempdir()?;
    let svc = Service::start_with(first.path(), &with_interval);
    let emails: Vec<String> = (0..5).map(|i| format!("user{i}@example.com")).collect();
    for e in &emails {
        assert_eq!(register(&svc.addr, e, PASSWORD)?.0, 201);
    }
    // Wait for a scheduled backup taken after the last registration to reach the bucket.
    let after = Instant::now();
    let deadline = after + Duration::from_secs(60);
    loop {
        let uploaded = moto
            .keys("svc", "accounts/")
            .iter()
            .filter(|k| k.ends_with(".db.json"))
            .count();
        if uploaded >= 2 && after.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled upload within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_log = svc.log.clone();
    svc.kill(); // the machine is gone
    let log = std::fs::read_to_string(&first_log)?;
    assert!(
        log.contains("no backup of this app to restore from"),
        "an empty bucket at the first start must be said:\n{log}"
    );
    let manifests = moto
        .keys("svc", "accounts/")
        .iter()
        .filter(|k| k.ends_with(".db.json"))
        .count();
    assert!(
        manifests <= 2,
        "SQLITE_VOL_BACKUP_KEEP=2 holds in the bucket too: {manifests}"
    );

    // Second machine: a new, empty volume.
    let second = tempfile::tempdir()?;
    let plain: Vec<(&str, &str)> = env
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain([("SQLITE_VOL_EXPECT_EXISTING", "1")])
        .collect();
    let svc = Service::start_with(second.path(), &plain);
    for e in &emails {
        assert_eq!(
            svc.login(e, PASSWORD)?.0,
            200,
            "{e} must log in on the new machine"
        );
    }
    let log = std::fs::read_to_string(&svc.log)?;
    assert!(
        log.contains("RESTORED the database"),
        "the start must say it restored:\n{log}"
    );
    assert!(
        log.contains("s3://svc/accounts/accounts-"),
        "and from where:\n{log}"
    );
    assert!(!log.contains("created a NEW, EMPTY database"), "{log}");
    assert_eq!(svc.terminate().code(), Some(0));
    Ok(())
}

#[test]
fn killed_uploads_never_list_as_backups_and_every_listed_one_restores() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("killed");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 60_000); // ≈ 62 MiB: 8 parts, long enough to be killed in the middle
    let mut rng =
        sqlite_vol_tests::support::Rng::new(sqlite_vol_tests::support::Rng::seed_from_os());
    let mut killed_mid_upload = 0;
    for _ in 0..6 {
        let mut child = Command::new(bin("sqlite-vol"))
            .arg("--db")
            .arg(&db)
            .args(["--app", APP, "-q", "backup", "--to", "s3://killed/k"])
            .envs(moto.env())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(150 + rng.below(1200)));
        if child.try_wait()?.is_none() {
            // Only count kills that landed after the local copy, while objects were being written.
            if moto.keys("killed", "k/").iter().any(|k| k.ends_with(".db"))
                || std::fs::read_dir(tmp.path().join("backups"))?.count() > 0
            {
                killed_mid_upload += 1;
            }
            child.kill()?;
        }
        child.wait()?;
    }
    let out = sv(&moto, &db, &["list", "s3://killed/k", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = json(&out);
    let listed = listed.as_array().ok_or("list")?;
    for row in listed {
        let url = row["path"].as_str().ok_or("path")?;
        let fresh = tempfile::tempdir()?;
        let out = sv(
            &moto,
            &fresh.path().join("ledger.db"),
            &["restore", url, "--yes", "--json"],
        );
        assert!(
            out.status.success(),
            "listed {url} must restore: {}",
            text(&out)
        );
    }
    let data_objects = moto
        .keys("killed", "k/")
        .iter()
        .filter(|k| k.ends_with(".db"))
        .count();
    let open_uploads = Command::new("curl")
        .args(["-s", "--max-time", "30"])
        .arg(format!("{}/killed?uploads", moto.endpoint))
        .output()?;
    let open_uploads = String::from_utf8_lossy(&open_uploads.stdout)
        .matches("<UploadId>")
        .count();
    eprintln!(
        "{} listed, {data_objects} data objects, {open_uploads} multipart uploads left open by a kill, \
         {killed_mid_upload} kills while a backup ran",
        listed.len()
    );
    assert!(
        killed_mid_upload > 0,
        "no kill landed during a backup; the test proved nothing"
    );
    Ok(())
}

#[test]
fn doctor_reports_the_off_site_place_empty_current_or_unreachable() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("doctor");
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 10);
    let doctor = |to: &str| -> Result<(Option<i32>, Value), Box<dyn std::error::Error>> {
        let out = Command::new(bin("sqlite-vol"))
            .arg("--db")
            .arg(&db)
            .args(["--app", APP, "doctor", "--json"])
            .envs(moto.env())
            .env("SQLITE_VOL_BACKUP_TO", to)
            .output()?;
        let v = json(&out);
        let c = v["checks"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "off-site"))
            .cloned()
            .ok_or("no off-site check")?;
        Ok((out.status.code(), c))
    };
    let (_, c) = doctor("s3://doctor/d")?;
    assert_eq!(c["status"], "warn", "{c}");
    let out = sv(&moto, &db, &["backup", "--to", "s3://doctor/d"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_, c) = doctor("s3://doctor/d")?;
    assert_eq!(c["status"], "pass", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("s3://doctor/d/ledger-"),
        "{c}"
    );
    let (code, c) = doctor("s3://no-such-bucket/d")?;
    assert_eq!((code, c["status"].as_str()), (Some(1), Some("fail")), "{c}");
    Ok(())
}

#[test]
fn a_restore_killed_part_way_into_an_empty_volume_leaves_no_database_or_a_whole_one() -> TestResult
{
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 60_000);
    let want = digest(&db);
    let backups = tmp.path().join("backups");
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(&db)
        .args(["--app", APP, "-q", "backup"])
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let mut rng =
        sqlite_vol_tests::support::Rng::new(sqlite_vol_tests::support::Rng::seed_from_os());
    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let restore = || {
        let mut c = Command::new(bin("sqlite-vol"));
        c.arg("--db")
            .arg(&target)
            .args([
                "--app",
                APP,
                "-q",
                "restore",
                "--if-db-not-exists",
                "--latest",
            ])
            .arg(&backups)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    // One whole restore tells how long one takes here, so the kills below land across all of it.
    let t = Instant::now();
    assert!(restore().status()?.success());
    let whole = t.elapsed().as_millis() as u64;
    let mut mid_copy = 0;
    for _ in 0..8 {
        if sqlite_vol::location::has_content(&target) {
            std::fs::remove_file(&target)?;
        }
        let mut child = restore().spawn()?;
        std::thread::sleep(Duration::from_millis(whole / 5 + rng.below(whole)));
        let hidden = fresh.path().join(".ledger.db.restoring");
        if child.try_wait()?.is_none() && hidden.exists() {
            mid_copy += 1;
        }
        child.kill()?;
        child.wait()?;
        if sqlite_vol::location::has_content(&target) {
            assert_eq!(digest(&target), want, "a database that is there is whole");
        }
    }
    // The next first start finishes the job.
    let out = restore().output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&target), want);
    assert_eq!(sqlite3_integrity(&target), "ok");
    let left: Vec<_> = std::fs::read_dir(fresh.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restoring"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    eprintln!("{mid_copy} kills landed while the copy was being written");
    assert!(
        mid_copy > 0,
        "no kill landed mid-copy; the test proved nothing"
    );
    Ok(())
}

#[test]
fn backup_to_from_the_environment_copies_to_a_second_folder_and_keeps_n_in_both() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 20);
    let second = tmp.path().join("second-volume");
    for _ in 0..2 {
        let out = Command::new(bin("sqlite-vol"))
            .arg("--db")
            .arg(&db)
            .args(["--app", APP, "backup", "--keep", "1", "--json"])
            .env("SQLITE_VOL_BACKUP_TO", &second)
            .output()?;
        assert!(out.status.success(), "{}", text(&out));
        std::thread::sleep(Duration::from_millis(1100)); // a new name each time
    }
    let here = sqlite_vol::manifest::list(&tmp.path().join("backups"), APP)?;
    let there = sqlite_vol::manifest::list(&second, APP)?;
    assert_eq!((here.len(), there.len()), (1, 1), "{here:?} {there:?}");
    assert_eq!(here[0].path.file_name(), there[0].path.file_name());
    let v = sqlite_vol::verify(&there[0].path, false, None)?;
    assert!(v.manifest, "the copy has its manifest and matches it");
    Ok(())
}

#[test]
fn a_service_whose_backup_place_is_unreachable_refuses_to_start_empty() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let closed = sqlite_vol_tests::offsite::free_port();
    let started = Instant::now();
    let out = Command::new(bin("accounts"))
        .env("DB_PATH", tmp.path())
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("SQLITE_VOL_RESTORE_FROM", "s3://somewhere/accounts")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .env_remove("SQLITE_VOL_BACKUP_TO")
        .output()?;
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3://somewhere/accounts") && err.contains("AWS_ENDPOINT_URL"),
        "{err}"
    );
    assert!(
        !sqlite_vol::location::has_content(&tmp.path().join("accounts.db")),
        "no empty database was created"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn init_creates_an_empty_database_even_with_a_restore_place_in_the_environment() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let db = make_db(tmp.path(), 20);
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(&db)
        .args(["--app", APP, "-q", "backup"])
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let fresh = tmp.path().join("fresh/ledger.db");
    let out = Command::new(bin("sqlite-vol"))
        .arg("--db")
        .arg(&fresh)
        .args(["--app", APP, "init"])
        .env("SQLITE_VOL_RESTORE_FROM", tmp.path().join("backups"))
        .output()?;
    assert!(
        out.status.success(),
        "init must create, not restore: {}",
        text(&out)
    );
    let c = rusqlite::Connection::open(&fresh)?;
    let tables: i64 = c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'entries'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(tables, 0, "the backup's table must not be there");
    Ok(())
}
