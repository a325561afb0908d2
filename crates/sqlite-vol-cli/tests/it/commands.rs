//! Every subcommand's happy path, with its JSON parsed, and the exit codes of usage errors.

use std::path::PathBuf;
use std::process::Stdio;

use crate::support::{sqlite3, Env, TestResult};

#[test]
fn status_json_has_the_documented_keys_with_only_the_environment_set() -> TestResult {
    let env = Env::with_db("app", 50);
    let backup = env.backup();
    let s = env.run(&["status", "--json"]).expect(0).json();
    for key in [
        "path",
        "source",
        "exists",
        "size_bytes",
        "journal_mode",
        "page_size",
        "page_count",
        "schema_version",
        "volume",
        "last_backup",
        "lock",
    ] {
        assert!(s.get(key).is_some(), "status JSON lacks {key}: {s}");
    }
    for key in ["kind", "persistent", "mount_point", "fs_type", "read_only"] {
        assert!(s["volume"].get(key).is_some(), "volume lacks {key}: {s}");
    }
    assert_eq!(s["path"], env.db.to_str().unwrap_or_default());
    assert!(
        s["source"].as_str().unwrap_or_default().contains("DB_PATH"),
        "{s}"
    );
    assert_eq!(s["exists"], true);
    assert_eq!(s["journal_mode"], "wal");
    assert_eq!(s["schema_version"], 2);
    assert_eq!(s["lock"], serde_json::Value::Null);
    assert_eq!(
        s["last_backup"]["path"],
        backup.to_str().unwrap_or_default()
    );
    assert!(s["last_backup"]["created_at"].is_string());
    assert!(
        s["last_backup"]["age_seconds"]
            .as_i64()
            .is_some_and(|a| (0..120).contains(&a)),
        "{s}"
    );
    let text = env.run(&["status"]).expect(0).stdout;
    assert!(
        text.contains(env.db.to_str().unwrap_or_default()) && text.contains("last backup"),
        "{text}"
    );
    Ok(())
}

#[test]
fn status_of_a_missing_database_says_it_does_not_exist() -> TestResult {
    let env = Env::empty("app");
    let s = env.run(&["status", "--json"]).expect(0).json();
    assert_eq!(s["exists"], false);
    assert_eq!(s["last_backup"], serde_json::Value::Null);
    assert!(!env.db.exists(), "status must not create the database");
    Ok(())
}

#[test]
fn backup_prints_its_path_and_json_has_checksum_and_verified() -> TestResult {
    let env = Env::with_db("app", 200);
    let r = env.run(&["backup"]).expect(0);
    let path = PathBuf::from(r.stdout.trim());
    assert!(path.starts_with(&env.backups) && path.is_file(), "{r:?}");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(name.starts_with("app-") && name.ends_with("Z.db"), "{name}");
    let j = env
        .run(&["backup", "--json", "--full-check"])
        .expect(0)
        .json();
    for key in [
        "path",
        "bytes",
        "sha256",
        "page_count",
        "schema_version",
        "duration_ms",
        "verified",
    ] {
        assert!(j.get(key).is_some(), "backup JSON lacks {key}: {j}");
    }
    assert_eq!(j["verified"], true);
    assert_eq!(j["schema_version"], 2);
    assert_eq!(j["sha256"].as_str().map(str::len), Some(64));
    let copy = PathBuf::from(j["path"].as_str().unwrap_or_default());
    assert_eq!(
        std::fs::metadata(&copy)?.len(),
        j["bytes"].as_u64().unwrap_or(0)
    );
    assert_eq!(sqlite3(&copy, "PRAGMA integrity_check"), "ok");
    assert_eq!(sqlite3(&copy, "SELECT count(*) FROM items"), "200");
    Ok(())
}

#[test]
fn backup_to_another_directory_with_keep_prunes_but_keeps_the_new_one() -> TestResult {
    let env = Env::with_db("app", 10);
    let to = env.root().join("elsewhere");
    let to_s = to.to_str().unwrap_or_default();
    let mut made = Vec::new();
    for _ in 0..3 {
        let r = env.run(&["backup", "--to", to_s, "--keep", "2"]).expect(0);
        made.push(PathBuf::from(r.stdout.trim()));
    }
    let left: Vec<_> = made.iter().filter(|p| p.exists()).collect();
    assert_eq!(left.len(), 2, "{made:?}");
    assert!(made[2].exists(), "the newest backup must stay");
    assert!(!made[0].exists(), "the oldest backup must go");
    assert!(
        env.backup_files().is_empty(),
        "--to must not write to the default directory"
    );
    Ok(())
}

#[test]
fn list_json_marks_intact_backups_verified_and_tampered_ones_not() -> TestResult {
    let env = Env::with_db("app", 50);
    let good = env.backup();
    let bad = env.backup();
    let mut bytes = std::fs::read(&bad)?;
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&bad, bytes)?;
    let rows = env.run(&["list", "--json"]).expect(0).json();
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |p: &PathBuf| {
        rows.iter()
            .find(|r| r["path"] == p.to_str().unwrap_or_default())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(row(&good)["verified"], true, "{rows:?}");
    assert_eq!(row(&bad)["verified"], false, "{rows:?}");
    assert!(
        row(&bad)["problem"]
            .as_str()
            .unwrap_or_default()
            .contains("checksum"),
        "{rows:?}"
    );
    for key in ["bytes", "age_seconds", "created_at"] {
        assert!(row(&good).get(key).is_some(), "list row lacks {key}");
    }
    // --fast only compares sizes, so the flipped byte goes unnoticed: that is what it promises.
    let fast = env.run(&["list", "--json", "--fast"]).expect(0).json();
    assert!(
        fast.as_array()
            .is_some_and(|a| a.iter().all(|r| r["verified"] == true)),
        "{fast}"
    );
    let text = env.run(&["list"]).expect(0).stdout;
    assert!(text.contains("NO") && text.contains("yes"), "{text}");
    Ok(())
}

#[test]
fn verify_json_reports_application_id_schema_and_checksum() -> TestResult {
    let env = Env::with_db("app", 20);
    let b = env.backup();
    let v = env
        .run(&["verify", "--json", "--full", b.to_str().unwrap_or_default()])
        .expect(0)
        .json();
    assert_eq!(v["verified"], true);
    assert_eq!(v["manifest"], true);
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["application_matches"], true);
    assert_eq!(v["check"], "integrity_check");
    assert!(v["application_id"].is_i64());
    Ok(())
}

#[test]
fn restore_brings_back_the_backup_and_keeps_a_safety_backup() -> TestResult {
    let env = Env::with_db("app", 20);
    let b = env.backup();
    env.sql("UPDATE kv SET v = 'changed'; DELETE FROM items WHERE id > 5;");
    let r = env
        .run(&["restore", "--yes", "--json", b.to_str().unwrap_or_default()])
        .expect(0)
        .json();
    assert_eq!(env.sql("SELECT v FROM kv"), "initial");
    assert_eq!(env.sql("SELECT count(*) FROM items"), "20");
    let safety = PathBuf::from(r["safety_backup"].as_str().unwrap_or_default());
    assert!(safety.is_file(), "{r}");
    assert_eq!(sqlite3(&safety, "SELECT v FROM kv"), "changed");
    assert_eq!(env.sql("PRAGMA journal_mode"), "wal");
    assert!(!PathBuf::from(format!("{}-journal", env.db.display())).exists());
    Ok(())
}

#[test]
fn restore_into_an_empty_volume_creates_the_database() -> TestResult {
    let source = Env::with_db("app", 30);
    let b = source.backup();
    let target = Env::empty("app");
    let r = target
        .run(&["restore", "--yes", "--json", b.to_str().unwrap_or_default()])
        .expect(0)
        .json();
    assert_eq!(r["created"], true);
    assert_eq!(r["safety_backup"], serde_json::Value::Null);
    assert_eq!(target.sql("SELECT count(*) FROM items"), "30");
    target.run(&["healthcheck"]).expect(0);
    Ok(())
}

#[test]
fn restore_refuses_without_yes_when_stdin_is_not_a_terminal() -> TestResult {
    let env = Env::with_db("app", 20);
    let b = env.backup();
    env.sql("UPDATE kv SET v = 'changed'");
    let before = env.fingerprint();
    let r = env
        .run(&["restore", b.to_str().unwrap_or_default()])
        .expect(2);
    assert!(
        r.stderr.contains("--yes") && r.stderr.contains("not a terminal"),
        "{}",
        r.stderr
    );
    assert_eq!(env.fingerprint(), before, "the live database changed");
    assert_eq!(env.backup_files().len(), 1, "no safety backup may be taken");
    Ok(())
}

#[test]
fn restore_refuses_a_schema_newer_than_the_given_migrations() -> TestResult {
    let env = Env::with_db("app", 5);
    let b = env.backup();
    let old = env.root().join("old-migrations");
    std::fs::create_dir_all(&old)?;
    std::fs::copy(
        env.migrations.join("V1__items.sql"),
        old.join("V1__items.sql"),
    )?;
    let before = env.fingerprint();
    let r = env
        .run(&[
            "restore",
            "--yes",
            "--migrations",
            old.to_str().unwrap_or_default(),
            b.to_str().unwrap_or_default(),
        ])
        .expect(1);
    assert!(r.stderr.contains("newer"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn prune_keeps_the_newest_and_never_touches_other_files() -> TestResult {
    let env = Env::with_db("app", 5);
    let made: Vec<PathBuf> = (0..3).map(|_| env.backup()).collect();
    let foreign = env.backups.join("notes.db");
    std::fs::write(&foreign, b"keep me")?;
    let j = env
        .run(&["prune", "--keep", "1", "--json"])
        .expect(0)
        .json();
    assert_eq!(j["deleted"].as_array().map(Vec::len), Some(2), "{j}");
    assert!(made[2].exists() && !made[0].exists() && !made[1].exists());
    assert!(
        !PathBuf::from(format!("{}.json", made[0].display())).exists(),
        "manifest left behind"
    );
    assert!(foreign.exists());
    env.run(&["prune", "--keep", "0"]).expect(2);
    Ok(())
}

#[test]
fn check_passes_on_a_healthy_database_and_changes_nothing() -> TestResult {
    let env = Env::with_db("app", 100);
    let before = env.fingerprint();
    let j = env.run(&["check", "--json"]).expect(0).json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["check"], "quick_check");
    env.run(&["check", "--full"]).expect(0);
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn check_fails_with_exit_1_on_a_damaged_database() -> TestResult {
    let env = Env::with_db("app", 2000);
    env.fingerprint();
    // Smash an interior page (not page 1, so SQLite still opens it).
    let mut bytes = std::fs::read(&env.db)?;
    let page = 4096;
    let at = bytes.len() / 2 / page * page;
    bytes[at..at + page].copy_from_slice(&crate::support::noise(page, 7));
    std::fs::write(&env.db, bytes)?;
    let r = env.run(&["check", "--full", "--json"]).expect(1);
    assert_eq!(r.json()["ok"], false, "{}", r.stdout);
    let text = env.run(&["check"]).expect(1);
    assert!(text.stdout.contains("FAILED"), "{}", text.stdout);
    Ok(())
}

#[test]
fn doctor_passes_a_healthy_setup_and_warns_without_backups() -> TestResult {
    let env = Env::with_db("app", 10);
    let j = env.run(&["doctor", "--json"]).expect(0).json();
    let checks = j["checks"].as_array().cloned().unwrap_or_default();
    let status = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("doctor has no {name} check: {j}"))
    };
    for name in [
        "location",
        "database",
        "writable",
        "volume",
        "free space",
        "journal",
        "wal safety",
        "lock",
        "identity",
    ] {
        assert_eq!(status(name), "pass", "{name}: {j}");
    }
    assert_eq!(status("backups"), "warn");
    assert!(
        checks
            .iter()
            .filter(|c| c["status"] == "warn")
            .all(|c| c["fix"].is_string()),
        "{j}"
    );
    env.backup();
    // A backup nobody has restored yet is a warning until a drill proves it.
    let j = env.run(&["doctor", "--json"]).expect(0).json();
    assert_eq!(j["worst"], "warn", "{j}");
    env.run(&["drill"]).expect(0);
    let j = env.run(&["doctor", "--json"]).expect(0).json();
    assert_eq!(j["worst"], "pass", "{j}");
    Ok(())
}

#[test]
fn doctor_fails_with_exit_1_on_another_apps_database() -> TestResult {
    let env = Env::with_db("app", 10);
    let r = env
        .run(&[
            "--app",
            "other",
            "--db",
            env.db.to_str().unwrap_or_default(),
            "doctor",
        ])
        .expect(1);
    assert!(r.stdout.contains("FAIL  identity"), "{}", r.stdout);
    assert!(r.stdout.contains("fix:"), "{}", r.stdout);
    Ok(())
}

#[test]
fn doctor_does_not_create_a_missing_directory() -> TestResult {
    let env = Env::empty("app");
    let missing = env.root().join("nowhere");
    let r = env.run(&["doctor", "--db", &format!("{}/", missing.display())]);
    assert!(r.stdout.contains("does not exist"), "{r:?}");
    assert!(!missing.exists(), "doctor created {}", missing.display());
    Ok(())
}

#[test]
fn migrate_dry_run_prints_the_plan_and_changes_nothing() -> TestResult {
    let env = Env::with_db("app", 5);
    std::fs::write(
        env.migrations.join("V3__more.sql"),
        "ALTER TABLE items ADD COLUMN w TEXT;",
    )?;
    let before = env.fingerprint();
    let dir = env.migrations.to_str().unwrap_or_default();
    let j = env
        .run(&["migrate", "--dir", dir, "--dry-run", "--json"])
        .expect(0)
        .json();
    assert_eq!(j["current"], 2);
    assert_eq!(j["pending"], serde_json::json!(["V3__more"]));
    assert_eq!(env.fingerprint(), before);
    let j = env
        .run(&["migrate", "--dir", dir, "--json"])
        .expect(0)
        .json();
    assert_eq!(j["applied"], serde_json::json!(["V3__more"]));
    assert_eq!(j["schema_version"], 3);
    assert_eq!(
        env.backup_files().len(),
        1,
        "a safety backup is taken before migrating data"
    );
    env.run(&["migrate", "--dir", dir]).expect(0);
    Ok(())
}

#[test]
fn migrate_refuses_a_changed_applied_migration() -> TestResult {
    let env = Env::with_db("app", 5);
    std::fs::write(
        env.migrations.join("V1__items.sql"),
        "CREATE TABLE items (id INTEGER PRIMARY KEY);",
    )?;
    std::fs::write(
        env.migrations.join("V3__more.sql"),
        "CREATE TABLE more (x);",
    )?;
    let before = env.fingerprint();
    let r = env
        .run(&[
            "migrate",
            "--dir",
            env.migrations.to_str().unwrap_or_default(),
        ])
        .expect(1);
    assert!(
        r.stderr.contains("changed after it was applied"),
        "{}",
        r.stderr
    );
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn migrate_refuses_a_database_newer_than_the_directory() -> TestResult {
    let env = Env::with_db("app", 5);
    std::fs::remove_file(env.migrations.join("V2__kv.sql"))?;
    let before = env.fingerprint();
    let r = env
        .run(&[
            "migrate",
            "--dir",
            env.migrations.to_str().unwrap_or_default(),
        ])
        .expect(1);
    assert!(
        r.stderr.contains("newer than this build knows"),
        "{}",
        r.stderr
    );
    let dry = env.run(&[
        "migrate",
        "--dir",
        env.migrations.to_str().unwrap_or_default(),
        "--dry-run",
    ]);
    assert_eq!(dry.code, 1, "{dry:?}");
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn migrate_rolls_back_a_failing_migration() -> TestResult {
    let env = Env::with_db("app", 5);
    std::fs::write(
        env.migrations.join("V3__good.sql"),
        "CREATE TABLE good (x);",
    )?;
    std::fs::write(
        env.migrations.join("V4__bad.sql"),
        "INSERT INTO no_such_table VALUES (1);",
    )?;
    let before = env.fingerprint();
    let r = env
        .run(&[
            "migrate",
            "--dir",
            env.migrations.to_str().unwrap_or_default(),
            "--no-safety-backup",
        ])
        .expect(2);
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    assert_eq!(
        env.sql("SELECT count(*) FROM sqlite_master WHERE name = 'good'"),
        "0"
    );
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn healthcheck_exits_0_when_the_database_answers_and_1_otherwise() -> TestResult {
    let env = Env::with_db("app", 5);
    let r = env.run(&["healthcheck"]).expect(0);
    assert!(r.stdout.contains("healthy"), "{r:?}");
    let missing = Env::empty("app");
    let r = missing.run(&["healthcheck"]).expect(1);
    assert!(r.stderr.contains("no database file"), "{}", r.stderr);
    assert!(
        !missing.db.exists(),
        "healthcheck must not create the database"
    );
    std::fs::write(&missing.db, "hello, I am a text file\n".repeat(100))?;
    missing.run(&["healthcheck"]).expect(1);
    Ok(())
}

#[test]
fn usage_errors_exit_2() -> TestResult {
    let env = Env::empty("app");
    for args in [
        &["bogus"][..],
        &["backup", "--keep", "zero"],
        &["prune"],
        &["restore"],
        &["backup", "--keep", "0"],
    ] {
        let r = env.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    env.run(&["--help"]).expect(0);
    Ok(())
}

#[test]
fn an_unknown_app_names_the_flag_and_the_variable() -> TestResult {
    let env = Env::empty("app");
    let r = env
        .run_with(&["status"], |c| {
            c.env_remove("SQLITE_VOL_APP");
        })
        .expect(2);
    assert!(
        r.stderr.contains("--app") && r.stderr.contains("SQLITE_VOL_APP"),
        "{}",
        r.stderr
    );
    // A file path is enough: the app is the file's name.
    let file = Env::with_db("app", 1);
    let r = file
        .run_with(
            &[
                "--db",
                file.db.to_str().unwrap_or_default(),
                "status",
                "--json",
            ],
            |c| {
                c.env_remove("SQLITE_VOL_APP");
            },
        )
        .expect(0);
    assert_eq!(r.json()["identity_matches"], true);
    Ok(())
}

#[test]
fn a_closed_stdout_exits_quietly() -> TestResult {
    let env = Env::with_db("app", 5);
    for _ in 0..3 {
        env.backup();
    }
    let mut child = env
        .cmd(&["doctor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.code() == Some(0), "{:?} {stderr}", out.status);
    Ok(())
}

#[test]
fn doctor_warns_when_a_sqlite_with_the_wal_reset_bug_last_wrote_a_wal_database() -> TestResult {
    let env = Env::with_db("app", 10);
    // Debian bookworm's sqlite3 shell is 3.40.1: inside the affected range. The header's version is written
    // with the change counter, which WAL mode leaves alone, so the shell writes once in rollback mode (as an
    // app that creates its database before switching to WAL does), then switches back.
    let shell = sqlite3(&env.db, "SELECT sqlite_version();");
    let affected = shell.trim().starts_with("3.") && shell.trim() < "3.51.3";
    sqlite3(
        &env.db,
        "PRAGMA journal_mode=DELETE; INSERT INTO items(v) VALUES ('from the shell'); PRAGMA journal_mode=WAL;",
    );
    let j = env.run(&["doctor", "--json"]).expect(0).json();
    let check = j["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "sqlite").cloned())
        .unwrap_or_default();
    let detail = check["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(shell.trim()), "{check}");
    if affected {
        assert_eq!(check["status"], "warn", "{check}");
        assert!(
            check["fix"].as_str().is_some_and(|f| f.contains("3.51.3")),
            "{check}"
        );
        let status = env.run(&["status"]).expect(0).stdout;
        assert!(status.contains("WAL-reset bug"), "{status}");
    } else {
        assert_eq!(check["status"], "pass", "{check}");
    }
    Ok(())
}
