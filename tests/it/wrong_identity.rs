//! A wrong identity is found from the encrypted backup's age header before a restore takes the place over:
//! in a real S3-compatible bucket (moto) and in a folder, a first start and `sqlite-vol restore` with an
//! identity that is not among the backup's recipients are refused naming the place, the backup and the
//! fix, the lineage marker keeps its writer generation (the real instance is not fenced out), nothing is
//! downloaded and the database stays absent; with the right identity the same start restores and takes
//! the next generation.

use std::path::{Path, PathBuf};
use std::process::Output;

use sqlite_vol_tests::keys::Keys;
use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::TestResult;

use crate::offsite::{digest, json, make_db, text, APP};

const BUCKET: &str = "vault";
const PREFIX: &str = "fleet/ledger";

/// `sqlite-vol --db DB --app ledger ARGS…` with moto's variables and `env`, nothing else of ours.
fn sv(moto: &Moto, db: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    moto.sqlite_vol(db, APP, env)
        .args(args)
        .output()
        .expect("run sqlite-vol")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The marker's writer generation, from its bytes.
fn generation(marker: &[u8]) -> u64 {
    let m: serde_json::Value = serde_json::from_slice(marker).expect("marker JSON");
    m["generation"].as_u64().expect("generation")
}

/// Checks the refusal of a restore with the wrong identity: the marker's generation and bytes unchanged,
/// what it says, the target absent and nothing of backup `name` under `fresh`.
fn refused_with_marker_kept(
    out: &Output,
    place: &str,
    name: &str,
    target: &Path,
    fresh: &Path,
    marker_before: &[u8],
    marker_now: &[u8],
) {
    assert_eq!(out.status.code(), Some(1), "a refusal: {}", text(out));
    assert_eq!(
        generation(marker_now),
        generation(marker_before),
        "the writer generation did not move"
    );
    assert_eq!(marker_now, marker_before, "the marker was not rewritten");
    let err = String::from_utf8_lossy(&out.stderr);
    for what in [
        name,
        place,
        "none of the identities given opens it",
        "not among the recipients",
        "nothing was taken over or downloaded",
        "SQLITE_VOL_BACKUP_RECIPIENTS",
    ] {
        assert!(err.contains(what), "says {what:?}: {}", text(out));
    }
    assert!(!target.exists(), "the database stays absent");
    let left = files(fresh);
    assert!(
        !left
            .iter()
            .any(|p| p.to_string_lossy().contains(name.trim_end_matches(".db"))),
        "nothing of the backup was downloaded: {left:?}"
    );
}

#[test]
fn a_wrong_identity_leaves_the_bucket_marker_generation_where_it_was() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let place = format!("s3://{BUCKET}/{PREFIX}");
    let (keys, stranger) = (Keys::new(), Keys::new());
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 2_000);
    let out = sv(
        &moto,
        &db,
        &[("SQLITE_VOL_BACKUP_RECIPIENTS", &keys.recipient)],
        &["backup", "--to", &place, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["encrypted"], true);
    let url = json(&out)["uploaded_to"]
        .as_str()
        .ok_or("uploaded_to")?
        .to_string();
    let name = url.rsplit('/').next().ok_or("name")?.to_string();
    let marker_key = format!("{PREFIX}/{APP}.lineage.json");
    let marker = || moto.get(BUCKET, &marker_key).expect("marker");
    let before = marker();

    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("data/ledger.db");
    let wrong = stranger.identity.to_string_lossy().into_owned();
    let wrong_env = [("SQLITE_VOL_BACKUP_IDENTITY", wrong.as_str())];
    let first_start = ["restore", "--if-db-not-exists", "--latest", &place];
    let out = sv(&moto, &target, &wrong_env, &first_start);
    refused_with_marker_kept(
        &out,
        &place,
        &name,
        &target,
        fresh.path(),
        &before,
        &marker(),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&stranger.recipient),
        "names the key it holds: {}",
        text(&out)
    );

    // `sqlite-vol restore` of the newest, and of the backup by name: the same refusal before its takeover.
    for args in [
        vec!["restore", "--latest", place.as_str(), "--yes"],
        vec!["restore", url.as_str(), "--yes"],
    ] {
        let out = sv(&moto, &target, &wrong_env, &args);
        refused_with_marker_kept(
            &out,
            &place,
            &name,
            &target,
            fresh.path(),
            &before,
            &marker(),
        );
    }

    // The right identity: the same first start restores and takes the next generation.
    let right = keys.identity.to_string_lossy().into_owned();
    let out = sv(
        &moto,
        &target,
        &[("SQLITE_VOL_BACKUP_IDENTITY", &right)],
        &first_start,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&target), digest(&db));
    assert_eq!(generation(&marker()), generation(&before) + 1);
    Ok(())
}

#[test]
fn a_wrong_identity_leaves_a_folder_marker_generation_where_it_was() -> TestResult {
    let moto = Moto::start();
    let (keys, stranger) = (Keys::new(), Keys::new());
    let src = tempfile::tempdir()?;
    let db = make_db(src.path(), 300);
    let offsite = tempfile::tempdir()?;
    let place = offsite.path().to_string_lossy().into_owned();
    let out = sv(
        &moto,
        &db,
        &[],
        &[
            "backup",
            "--to",
            &place,
            "--recipient",
            &keys.recipient,
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let name = Path::new(json(&out)["path"].as_str().ok_or("path")?)
        .file_name()
        .ok_or("name")?
        .to_string_lossy()
        .into_owned();
    let marker_file = offsite.path().join(format!("{APP}.lineage.json"));
    let before = std::fs::read(&marker_file)?;
    let offsite_files = files(offsite.path());

    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let wrong = stranger.identity.to_string_lossy().into_owned();
    let first_start = [
        "restore",
        "--if-db-not-exists",
        "--latest",
        &place,
        "--identity",
        &wrong,
    ];
    let out = sv(&moto, &target, &[], &first_start);
    refused_with_marker_kept(
        &out,
        &place,
        &name,
        &target,
        fresh.path(),
        &before,
        &std::fs::read(&marker_file)?,
    );
    assert_eq!(
        files(offsite.path()),
        offsite_files,
        "nothing decrypted or staged in the folder"
    );

    let right = keys.identity.to_string_lossy().into_owned();
    let out = sv(
        &moto,
        &target,
        &[("SQLITE_VOL_BACKUP_IDENTITY", &right)],
        &["restore", "--if-db-not-exists", "--latest", &place],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&target), digest(&db));
    assert!(generation(&std::fs::read(&marker_file)?) > generation(&before));
    Ok(())
}
