//! A database's beginning and end: `init` (create and stamp on purpose), `reset` (delete for a fresh
//! start, with every refusal), and the completions and man page generated from the same definitions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::concurrency::{Py, HOLD_LOCK};
use crate::support::{sqlite3, Env, Run, TestResult, BIN};

/// Whether `reset` sees the test's data folder as a persistent volume inside a container, and so needs
/// `--force`. In a container whose root is a real disk (this project's sandboxes have `/.dockerenv` and an
/// ext4 root) it does; on a developer's machine it does not.
fn in_container_on_persistent_storage(dir: &Path) -> bool {
    let v = sqlite_vol::Volume::detect(dir);
    v.in_container && v.persistent == Some(true)
}

/// `reset`, plus `--force` only where the volume guard would otherwise refuse.
fn reset_unguarded(env: &Env) -> Vec<&'static str> {
    let mut args = vec!["reset"];
    if in_container_on_persistent_storage(&env.data) {
        args.push("--force");
    }
    args
}

/// [`reset_unguarded`] with `--yes`, plus `extra`.
fn reset_args<'a>(env: &Env, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = reset_unguarded(env);
    args.push("--yes");
    args.extend_from_slice(extra);
    args
}

/// The database and its sidecars that exist.
fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .filter(|p| p.exists())
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Holds an ordinary read connection to a WAL database open (as a running service does) until stdin
/// closes.
const HOLD_OPEN: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("SELECT count(*) FROM sqlite_master").fetchall()
print("open", flush=True)
sys.stdin.read()
"#;

#[test]
fn reset_without_yes_and_without_a_terminal_exits_2_and_deletes_nothing() -> TestResult {
    let env = Env::with_db("app", 20);
    let before = env.fingerprint();
    let args = reset_unguarded(&env);
    let r = env.run(&args).expect(2);
    assert!(
        r.stderr.contains("not a terminal") && r.stderr.contains("--yes"),
        "{}",
        r.stderr
    );
    assert!(env.fingerprint() == before, "the database changed");
    assert!(env.backup_files().is_empty(), "no backup may be taken");
    Ok(())
}

#[test]
fn reset_refuses_a_persistent_volume_inside_a_container_unless_forced() -> TestResult {
    let env = Env::with_db("app", 20);
    let before = env.fingerprint();
    if !in_container_on_persistent_storage(&env.data) {
        // Outside a container the guard does not apply: --yes alone resets. (The refusal itself is covered
        // by the unit tests on classified mount tables in src/cmd/reset.rs.)
        env.run(&["reset", "--yes"]).expect(0);
        assert!(!env.db.exists());
        return Ok(());
    }
    let r = env.run(&["reset", "--yes"]).expect(1);
    assert!(
        r.stderr.contains("inside a container")
            && r.stderr.contains("--force")
            && r.stderr.contains(path_str(&env.db)),
        "{}",
        r.stderr
    );
    assert!(env.fingerprint() == before, "the database changed");
    assert!(env.backup_files().is_empty(), "no backup may be taken");
    env.run(&["reset", "--yes", "--force"]).expect(0);
    assert!(db_files(&env.db).is_empty());
    Ok(())
}

#[test]
fn reset_exits_2_naming_the_holder_while_the_maintenance_lock_is_held() -> TestResult {
    let env = Env::with_db("app", 20);
    let before = env.fingerprint();
    let mut holder = Py::start(HOLD_LOCK, &[path_str(&env.db), "migrate"]);
    let pid = holder
        .line()
        .strip_prefix("held ")
        .expect("holder ready")
        .to_string();
    // With a safety backup the backup meets the lock first; without one, reset's own lock does.
    for extra in [&[][..], &["--no-backup"][..]] {
        let r = env.run(&reset_args(&env, extra)).expect(2);
        assert!(
            r.stderr
                .contains(&format!("migrate in progress by pid {pid}")),
            "{extra:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("nothing was deleted"), "{}", r.stderr);
    }
    drop(holder);
    assert!(env.fingerprint() == before, "the database changed");
    assert!(env.backup_files().is_empty());
    Ok(())
}

#[test]
fn reset_exits_2_while_another_process_has_the_database_open() -> TestResult {
    let env = Env::with_db("app", 20);
    let mut service = Py::start(HOLD_OPEN, &[path_str(&env.db)]);
    assert_eq!(service.line(), "open");
    let r = env.run(&reset_args(&env, &[])).expect(2);
    assert!(
        r.stderr.contains("open in another process") && r.stderr.contains("stop it first"),
        "{}",
        r.stderr
    );
    assert!(
        env.db.is_file(),
        "the database was deleted under an open connection"
    );
    assert!(env.backup_files().is_empty());
    drop(service);
    assert_eq!(env.sql("SELECT count(*) FROM items;"), "20");
    Ok(())
}

#[test]
fn reset_takes_a_safety_backup_that_verifies_and_the_next_open_creates_a_fresh_database(
) -> TestResult {
    let env = Env::with_db("app", 120);
    env.sql("INSERT INTO kv VALUES ('extra', 'written last');");
    let r = env.run(&reset_args(&env, &["--json"])).expect(0);
    let j = r.json();
    assert!(
        db_files(&env.db).is_empty(),
        "left behind: {:?}",
        db_files(&env.db)
    );
    let deleted: Vec<&str> = j["deleted"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(deleted.contains(&path_str(&env.db)), "{j}");

    let backup = PathBuf::from(j["safety_backup"].as_str().expect("safety_backup path"));
    assert_eq!(env.backup_files(), vec![backup.clone()]);
    env.run(&["verify", path_str(&backup)]).expect(0);
    assert_eq!(sqlite3(&backup, "SELECT count(*) FROM items;"), "120");
    assert_eq!(
        sqlite3(&backup, "SELECT v FROM kv WHERE k = 'extra';"),
        "written last"
    );

    let m = env
        .run(&["migrate", "--json", "--dir", path_str(&env.migrations)])
        .expect(0)
        .json();
    assert_eq!(m["created"], true, "{m}");
    assert_eq!(env.sql("SELECT count(*) FROM items;"), "0");

    // And the safety backup brings the old data back.
    env.run(&["restore", "--yes", path_str(&backup)]).expect(0);
    assert_eq!(env.sql("SELECT count(*) FROM items;"), "120");
    Ok(())
}

#[test]
fn reset_with_no_backup_writes_no_backup() -> TestResult {
    let env = Env::with_db("app", 5);
    let j = env
        .run(&reset_args(&env, &["--no-backup", "--json"]))
        .expect(0)
        .json();
    assert_eq!(j["safety_backup"], serde_json::Value::Null, "{j}");
    assert!(db_files(&env.db).is_empty());
    assert!(env.backup_files().is_empty());
    Ok(())
}

#[test]
fn reset_of_a_missing_database_exits_0_and_changes_nothing() -> TestResult {
    let env = Env::empty("app");
    let r = env.run(&["reset"]).expect(0);
    assert!(r.stderr.contains("nothing to reset"), "{}", r.stderr);
    assert!(!env.db.exists() && env.backup_files().is_empty());
    Ok(())
}

/// Runs `sqlite-vol ARGS` on a pseudo-terminal (util-linux `script`) with `typed` as the keyboard.
fn run_on_terminal(env: &Env, args: &[&str], typed: &str) -> Run {
    let line = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let c = env.cmd(&[]);
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let mut child = script
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script(1)");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(typed.as_bytes()).expect("type");
    }
    Run::from(child.wait_with_output().expect("script(1) output"))
}

#[test]
fn reset_on_a_terminal_deletes_only_when_the_file_name_is_typed_back() -> TestResult {
    let env = Env::with_db("app", 10);
    let before = env.fingerprint();
    let args = reset_unguarded(&env);
    // script(1) puts stdout and stderr on the same terminal, so everything arrives on its stdout.
    let r = run_on_terminal(&env, &args, "yes\n").expect(1);
    assert!(
        r.stdout.contains("Type the database's file name (app.db)")
            && r.stdout.contains("cancelled"),
        "{}",
        r.stdout
    );
    assert!(env.fingerprint() == before, "the database changed");
    assert!(env.backup_files().is_empty());

    let r = run_on_terminal(&env, &args, "app.db\n").expect(0);
    assert!(r.stdout.contains("deleted"), "{}", r.stdout);
    assert!(db_files(&env.db).is_empty());
    assert_eq!(env.backup_files().len(), 1);
    Ok(())
}

#[test]
fn init_creates_a_stamped_database_that_status_recognises() -> TestResult {
    let env = Env::empty("app");
    let j = env
        .run(&["init", "--json", "--migrations", path_str(&env.migrations)])
        .expect(0)
        .json();
    assert_eq!(j["created"], true, "{j}");
    assert_eq!(j["schema_version"], 2, "{j}");
    let s = env.run(&["status", "--json"]).expect(0).json();
    assert_eq!(s["exists"], true, "{s}");
    assert_eq!(s["identity_matches"], true, "{s}");
    assert_eq!(s["schema_version"], 2, "{s}");
    assert_eq!(env.sql("SELECT count(*) FROM items;"), "0");

    let bare = Env::empty("other");
    let r = bare.run(&["init"]).expect(0);
    assert_eq!(r.stdout.trim(), path_str(&bare.db));
    assert!(
        r.stderr.contains("SQLITE_VOL_EXPECT_EXISTING=1"),
        "{}",
        r.stderr
    );
    let s = bare.run(&["status", "--json"]).expect(0).json();
    assert_eq!(s["identity_matches"], true, "{s}");
    assert_eq!(s["schema_version"], serde_json::Value::Null, "{s}");
    Ok(())
}

#[test]
fn init_refuses_an_existing_database_and_leaves_it_alone() -> TestResult {
    let env = Env::with_db("app", 30);
    let before = env.fingerprint();
    let r = env
        .run(&["init", "--migrations", path_str(&env.migrations)])
        .expect(1);
    assert!(
        r.stderr.contains("already there") && r.stderr.contains("migrate"),
        "{}",
        r.stderr
    );
    assert!(env.fingerprint() == before, "the database changed");
    Ok(())
}

#[test]
fn init_is_what_lets_later_starts_run_with_expect_existing() -> TestResult {
    let env = Env::empty("app");
    let expect = |c: &mut Command| {
        c.env("SQLITE_VOL_EXPECT_EXISTING", "1");
    };
    let dir = path_str(&env.migrations);
    // Without init, a start that must not create fails and creates nothing.
    let r = env.run_with(&["migrate", "--dir", dir], expect).expect(2);
    assert!(!env.db.exists(), "{}", r.stderr);
    // init creates on purpose even with the variable set; later starts then find it.
    env.run_with(&["init"], expect).expect(0);
    let m = env
        .run_with(&["migrate", "--json", "--dir", dir], expect)
        .expect(0)
        .json();
    assert_eq!(m["created"], false, "{m}");
    assert_eq!(m["schema_version"], 2, "{m}");
    Ok(())
}

#[test]
fn init_exits_2_for_a_missing_migrations_dir_or_a_held_lock_and_creates_nothing() -> TestResult {
    let env = Env::empty("app");
    let missing = env.root().join("no-such-migrations");
    env.run(&["init", "--migrations", path_str(&missing)])
        .expect(2);
    assert!(!env.db.exists());

    let mut holder = Py::start(HOLD_LOCK, &[path_str(&env.db), "restore"]);
    let pid = holder
        .line()
        .strip_prefix("held ")
        .expect("holder ready")
        .to_string();
    let r = env.run(&["init"]).expect(2);
    assert!(r.stderr.contains(&format!("pid {pid}")), "{}", r.stderr);
    assert!(!env.db.exists());
    Ok(())
}

/// The subcommands `--help` lists (without `help`).
fn subcommands(env: &Env) -> Vec<String> {
    let help = env.run(&["--help"]).expect(0).stdout;
    let names: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    for expected in ["status", "backup", "init", "reset", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    names
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() -> TestResult {
    let env = Env::empty("app");
    let names = subcommands(&env);
    for shell in ["bash", "zsh", "fish"] {
        let script = env.run(&["completions", shell]).expect(0).stdout;
        assert!(script.contains("sqlite-vol"), "{shell}");
        for n in &names {
            assert!(script.contains(n.as_str()), "{shell} completions lack {n}");
        }
        assert!(
            script.contains("no-safety-backup"),
            "{shell}: reset's flags"
        );
    }
    env.run(&["completions", "tcsh"]).expect(2);
    Ok(())
}

#[test]
fn man_prints_a_roff_page_naming_every_subcommand_and_dir_writes_one_per_subcommand() -> TestResult
{
    let env = Env::empty("app");
    let names = subcommands(&env);
    let page = env.run(&["man"]).expect(0).stdout;
    assert!(page.contains(".TH sqlite-vol 1"), "{page}");
    for n in &names {
        assert!(page.contains(n.as_str()), "man page lacks {n}");
    }
    let dir = env.root().join("man");
    let r = env.run(&["man", "--dir", path_str(&dir)]).expect(0);
    assert_eq!(r.stdout.trim(), path_str(&dir.join("sqlite-vol.1")));
    for n in &names {
        let p = dir.join(format!("sqlite-vol-{n}.1"));
        assert!(p.is_file(), "{} missing", p.display());
    }
    let reset = std::fs::read_to_string(dir.join("sqlite-vol-reset.1"))?;
    assert!(
        reset.contains("no\\-backup") && reset.contains("force"),
        "{reset}"
    );
    Ok(())
}

#[test]
fn man_into_a_closed_pipe_exits_quietly() -> TestResult {
    let env = Env::empty("app");
    let mut child = env
        .cmd(&["man"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    drop(child.stdout.take());
    let o = child.wait_with_output()?;
    assert!(o.status.success(), "{o:?}");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}
