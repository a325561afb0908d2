//! `sqlite-vol migrate` and its subcommands as an operator uses them: adopting a database an app made with
//! Python's sqlite3 before it had migrations (baseline), then new, plan, apply, status and back; status and
//! repair on an edited migration; the refusals and their exit codes.

use std::path::Path;
use std::process::Command;

use crate::support::{Env, TestResult};

/// What the accounts app ran at every start before it had migrations: its V1 schema, written as a
/// script with `CREATE TABLE IF NOT EXISTS`.
const LEGACY: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript('''
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL, created_at TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS sessions (token_hash BLOB NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, revoked_at TEXT) STRICT, WITHOUT ROWID;
''')
if sys.argv[2] == "with-index":
    c.execute("CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id)")
c.execute("INSERT OR IGNORE INTO users (email, password_hash, created_at) VALUES ('old@example.com', 'x', '2020')")
c.commit()
"#;

/// A deployment of `accounts` whose database Python made (twice, as at two starts), with the example
/// service's migrations as the folder.
fn python_made(index: &str) -> Result<Env, Box<dyn std::error::Error>> {
    let env = Env::empty("accounts");
    for f in std::fs::read_dir(&env.migrations)?.flatten() {
        std::fs::remove_file(f.path())?;
    }
    let accounts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/accounts/migrations");
    std::fs::copy(
        accounts.join("V1__accounts.sql"),
        env.migrations.join("V1__accounts.sql"),
    )?;
    for _ in 0..2 {
        let ok = Command::new("python3")
            .args(["-c", LEGACY])
            .arg(&env.db)
            .arg(index)
            .status()?
            .success();
        assert!(ok, "python3 made the database");
    }
    Ok(env)
}

fn dir(env: &Env) -> &str {
    env.migrations.to_str().unwrap_or_default()
}

#[test]
fn a_python_made_database_is_baselined_then_migrated_forward_and_back() -> TestResult {
    let env = python_made("with-index")?;
    let d = dir(&env);
    let j = env
        .run(&["migrate", "--dir", d, "status", "--json"])
        .expect(0)
        .json();
    assert_eq!(j["status"]["migrations"][0]["state"], "pending");

    let j = env
        .run(&[
            "migrate",
            "--dir",
            d,
            "baseline",
            "--version",
            "1",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(j["marked"], serde_json::json!(["V1__accounts"]));
    assert_eq!(
        env.sql("SELECT email FROM users;"),
        "old@example.com",
        "no data touched"
    );

    let j = env
        .run(&["migrate", "--dir", d, "new", "add_display_name", "--json"])
        .expect(0)
        .json();
    let file = j["path"].as_str().unwrap_or_default().to_string();
    assert!(file.ends_with("V2__add_display_name.sql"), "{file}");
    let mut sql = std::fs::read_to_string(&file)?;
    sql.push_str("ALTER TABLE users ADD COLUMN display_name TEXT;\n");
    std::fs::write(&file, sql)?;

    let before = env.fingerprint();
    let j = env
        .run(&["migrate", "--dir", d, "plan", "--json"])
        .expect(0)
        .json();
    assert_eq!(
        env.fingerprint(),
        before,
        "plan leaves the live database as it was"
    );
    assert_eq!(j["steps"][0]["migration"], "V2__add_display_name");
    assert!(
        j["steps"][0]["ms"].is_u64() && j["write_lock_ms"].is_u64(),
        "{j}"
    );
    let changes = j["changes"].to_string();
    assert!(changes.contains("column display_name"), "{changes}");

    let j = env.run(&["migrate", "--dir", d, "--json"]).expect(0).json();
    assert_eq!(j["applied"], serde_json::json!(["V2__add_display_name"]));
    let r = env.run(&["migrate", "--dir", d, "status"]).expect(0);
    assert!(
        r.stdout
            .contains("2 applied, 0 pending, 0 divergent, 0 unknown"),
        "{}",
        r.stdout
    );

    env.sql("INSERT INTO users (email, password_hash, created_at) VALUES ('new@example.com', 'y', '2026');");
    let r = env.run(&["migrate", "--dir", d, "back"]).expect(1);
    assert!(
        r.stderr.contains("1 row(s) written since would be lost") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.sql("SELECT count(*) FROM users;"),
        "2",
        "nothing restored without --yes"
    );
    let j = env
        .run(&["migrate", "--dir", d, "back", "--yes", "--json"])
        .expect(0)
        .json();
    assert_eq!(j["restored"]["schema_version"], 1);
    assert_eq!(
        env.sql("SELECT group_concat(email) FROM users;"),
        "old@example.com"
    );
    let cols = env.sql("SELECT group_concat(name) FROM pragma_table_info('users');");
    assert!(!cols.contains("display_name"), "{cols}");
    assert_eq!(env.sql("PRAGMA integrity_check;"), "ok");
    Ok(())
}

#[test]
fn baseline_of_a_database_missing_an_index_prints_it_and_exits_1() -> TestResult {
    let env = python_made("no-index")?;
    let before = env.fingerprint();
    let r = env
        .run(&["migrate", "--dir", dir(&env), "baseline", "--version", "1"])
        .expect(1);
    assert!(r.stderr.contains("+ index sessions_user"), "{}", r.stderr);
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn status_exits_1_on_a_divergent_migration_until_a_comment_edit_is_repaired() -> TestResult {
    let env = Env::with_db("app", 3);
    let d = dir(&env);
    let v1 = env.migrations.join("V1__items.sql");
    let text = std::fs::read_to_string(&v1)?;
    std::fs::write(&v1, format!("-- Items: what the app stores.\n{text}"))?;
    let r = env.run(&["migrate", "--dir", d, "status"]).expect(1);
    assert!(
        r.stdout.contains("divergent") && r.stdout.contains("+-- Items: what the app stores."),
        "{}",
        r.stdout
    );
    env.run(&["migrate", "--dir", d]).expect(1); // the startup path refuses it too

    env.run(&[
        "migrate",
        "--dir",
        d,
        "repair",
        "1",
        "--reason",
        "documented V1",
    ])
    .expect(0);
    let r = env.run(&["migrate", "--dir", d, "status"]).expect(0);
    assert!(
        r.stdout.contains("repaired V1__items") && r.stdout.contains("\"documented V1\""),
        "{}",
        r.stdout
    );

    let v2 = env.migrations.join("V2__kv.sql");
    std::fs::write(
        &v2,
        std::fs::read_to_string(&v2)?.replace("'initial'", "'other'"),
    )?;
    let before = env.fingerprint();
    let r = env
        .run(&["migrate", "--dir", d, "repair", "2", "--reason", "x"])
        .expect(1);
    assert!(
        r.stderr.contains("+CREATE TABLE kv") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(env.fingerprint(), before);
    Ok(())
}

#[test]
fn new_refuses_a_name_refinery_would_skip() -> TestResult {
    let env = Env::empty("app");
    let r = env
        .run(&["migrate", "--dir", dir(&env), "new", "add-index"])
        .expect(1);
    assert!(r.stderr.contains("try \"add_index\""), "{}", r.stderr);
    Ok(())
}
