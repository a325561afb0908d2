//! Encrypted off-site backups in a real S3-compatible bucket (moto) and in a folder: the bucket never holds
//! a plaintext row, the backup comes back on a first start with the identity, and a wrong or missing
//! identity, a flipped ciphertext byte or a truncated object are each refused with the live database
//! untouched and nothing left behind.

use std::path::Path;
use std::process::Output;

use sqlite_vol_tests::keys::Keys;
use sqlite_vol_tests::offsite::Moto;
use sqlite_vol_tests::support::{sqlite3_integrity, TestResult};

use crate::offsite::{digest, json, make_db, text, APP};

const PLACE: &str = "s3://vault/prod/ledger";
/// A row no stored object may contain.
const CANARY: &str = "CANARY-ROW-alice@example.com-4111111111111111";

/// `sqlite-vol --db DB --app ledger ARGS…` with moto's variables and `env`.
fn sv(moto: &Moto, db: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    moto.sqlite_vol(db, APP, env)
        .args(args)
        .output()
        .expect("run sqlite-vol")
}

/// A ledger of `rows` random 1 KiB rows plus a table of known plaintext rows.
fn ledger(dir: &Path, rows: usize) -> std::path::PathBuf {
    let db = make_db(dir, rows);
    let c = rusqlite::Connection::open(&db).expect("open");
    c.execute_batch("CREATE TABLE secrets(v TEXT NOT NULL);")
        .expect("create");
    for _ in 0..50 {
        c.execute("INSERT INTO secrets(v) VALUES (?1)", [CANARY])
            .expect("insert");
    }
    db
}

/// The bytes of one object.
fn object(moto: &Moto, bucket: &str, key: &str) -> Vec<u8> {
    moto.get(bucket, key).expect("get object")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Backs up `db` encrypted to `keys` into PLACE; returns the backup's name.
fn encrypted_backup(moto: &Moto, db: &Path, keys: &Keys) -> String {
    let out = sv(
        moto,
        db,
        &[("SQLITE_VOL_BACKUP_RECIPIENTS", &keys.recipient)],
        &["backup", "--to", PLACE, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let b = json(&out);
    assert_eq!(b["encrypted"], true, "{b}");
    let url = b["uploaded_to"].as_str().expect("uploaded_to");
    url.rsplit('/').next().unwrap_or_default().to_string()
}

#[test]
fn an_encrypted_bucket_holds_no_plaintext_row_and_restores_on_a_first_start() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("vault");
    let keys = Keys::new();
    let src = tempfile::tempdir()?;
    // ~10 MiB: more than one 8 MiB part, so the multipart path encrypts as it reads.
    let db = ledger(src.path(), 10_000);
    let before = digest(&db);
    let name = encrypted_backup(&moto, &db, &keys);

    let manifest: serde_json::Value =
        serde_json::from_slice(&object(&moto, "vault", &format!("prod/ledger/{name}.json")))?;
    let data = object(&moto, "vault", &format!("prod/ledger/{name}"));
    assert_eq!(manifest["encrypted"], true, "{manifest}");
    assert_eq!(manifest["stored_bytes"], data.len() as u64, "{manifest}");
    assert_eq!(
        manifest["bytes"],
        std::fs::metadata(src.path().join("backups").join(&name))?.len(),
        "bytes and sha256 are the plaintext's"
    );
    assert!(data.starts_with(b"age-encryption.org/v1"), "an age file");
    for key in moto.keys("vault", "prod/") {
        let bytes = object(&moto, "vault", &key);
        assert!(
            !contains(&bytes, CANARY.as_bytes()),
            "{key} holds a plaintext row"
        );
        assert!(
            !contains(&bytes, b"SQLite format 3"),
            "{key} holds a SQLite page"
        );
    }

    // list --verify and verify decrypt with the identity.
    let id = keys.identity.to_string_lossy().into_owned();
    let with_id = [("SQLITE_VOL_BACKUP_IDENTITY", id.as_str())];
    let out = sv(&moto, &db, &with_id, &["list", PLACE, "--verify", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = json(&out);
    assert_eq!(rows[0]["verified"], true, "{rows}");
    assert_eq!(rows[0]["checked"], "fetched+sha256+quick_check", "{rows}");
    let url = format!("{PLACE}/{name}");
    let out = sv(
        &moto,
        &db,
        &[],
        &["verify", &url, "--identity", &id, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));

    // A new machine: an empty volume, the bucket and the identity file.
    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("data/ledger.db");
    let first_start = ["restore", "--if-db-not-exists", "--latest", PLACE, "--json"];
    let out = sv(&moto, &target, &with_id, &first_start);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["restored"], true);
    assert_eq!(digest(&target), before, "every row came back");
    assert_eq!(sqlite3_integrity(&target), "ok");
    Ok(())
}

#[test]
fn a_wrong_or_missing_identity_a_flipped_byte_or_a_truncated_object_is_refused() -> TestResult {
    let moto = Moto::start();
    moto.create_bucket("vault");
    let keys = Keys::new();
    let src = tempfile::tempdir()?;
    let db = ledger(src.path(), 300);
    let name = encrypted_backup(&moto, &db, &keys);
    let key = format!("prod/ledger/{name}");
    let good = object(&moto, "vault", &key);

    // The live database that each refused restore must leave exactly as it is.
    let live_dir = tempfile::tempdir()?;
    let live = make_db(live_dir.path(), 20);
    let live_bytes = std::fs::read(&live)?;
    let id = keys.identity.to_string_lossy().into_owned();
    let other = Keys::new();
    let other_id = other.identity.to_string_lossy().into_owned();
    let url = format!("{PLACE}/{name}");

    let refuse = |env: &[(&str, &str)], expect: &str| -> TestResult {
        let out = sv(&moto, &live, env, &["restore", &url, "--yes"]);
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "expected {expect:?}: {}", text(&out));
        assert_eq!(
            std::fs::read(&live)?,
            live_bytes,
            "the live database is untouched"
        );
        let left: Vec<_> = std::fs::read_dir(live_dir.path().join("backups"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().contains(&name)),
            "nothing of the refused backup is left: {left:?}"
        );
        Ok(())
    };
    refuse(&[], "SQLITE_VOL_BACKUP_IDENTITY")?;
    refuse(
        &[("SQLITE_VOL_BACKUP_IDENTITY", &other_id)],
        "none of the identities given opens it",
    )?;
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    moto.put("vault", &key, &flipped)?;
    refuse(
        &[("SQLITE_VOL_BACKUP_IDENTITY", &id)],
        "damaged, truncated or was tampered",
    )?;
    moto.put("vault", &key, &good[..good.len() - 100])?;
    refuse(&[("SQLITE_VOL_BACKUP_IDENTITY", &id)], "truncated")?;
    // The same truncation with a manifest that agrees with it: age itself refuses the missing end.
    let m = object(&moto, "vault", &format!("{key}.json"));
    let mut m: serde_json::Value = serde_json::from_slice(&m)?;
    m["stored_bytes"] = (good.len() as u64 - 100).into();
    moto.put("vault", &format!("{key}.json"), &serde_json::to_vec(&m)?)?;
    refuse(
        &[("SQLITE_VOL_BACKUP_IDENTITY", &id)],
        "damaged, truncated or was tampered",
    )?;

    // Put back whole, the same backup restores.
    moto.put("vault", &key, &good)?;
    m["stored_bytes"] = (good.len() as u64).into();
    moto.put("vault", &format!("{key}.json"), &serde_json::to_vec(&m)?)?;
    let out = sv(
        &moto,
        &live,
        &[("SQLITE_VOL_BACKUP_IDENTITY", &id)],
        &["restore", &url, "--yes", "--force"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&live), digest(&db));
    Ok(())
}

#[test]
fn an_encrypted_folder_backup_is_private_ciphertext_and_restores_with_the_identity() -> TestResult {
    let moto = Moto::start();
    let keys = Keys::new();
    let src = tempfile::tempdir()?;
    let db = ledger(src.path(), 200);
    let before = digest(&db);
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
    let copy = offsite.path().join(
        Path::new(json(&out)["path"].as_str().ok_or("path")?)
            .file_name()
            .ok_or("name")?,
    );
    let stored = std::fs::read(&copy)?;
    assert!(stored.starts_with(b"age-encryption.org/v1"));
    assert!(!contains(&stored, CANARY.as_bytes()));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy)?.permissions().mode();
        assert_eq!(mode & 0o077, 0, "the copy is its owner's only: {mode:o}");
    }

    let id = keys.identity.to_string_lossy().into_owned();
    let out = sv(
        &moto,
        &db,
        &[],
        &["verify", &copy.to_string_lossy(), "--identity", &id],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = sv(
        &moto,
        &db,
        &[],
        &["list", &place, "--identity", &id, "--json"],
    );
    assert_eq!(json(&out)[0]["verified"], true, "{}", text(&out));

    let fresh = tempfile::tempdir()?;
    let target = fresh.path().join("ledger.db");
    let first_start = ["restore", "--if-db-not-exists", "--latest", &place];
    let out = sv(&moto, &target, &[], &first_start);
    assert_ne!(out.status.code(), Some(0), "no identity: {}", text(&out));
    assert!(!target.exists(), "nothing was created");
    let out = sv(
        &moto,
        &target,
        &[("SQLITE_VOL_BACKUP_IDENTITY", &id)],
        &first_start,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(digest(&target), before);
    Ok(())
}
