//! `sqlite-vol exec` with a real Python child (the system's `/usr/bin/python3` and its own sqlite3 module):
//! refusals before the child starts, exit statuses, signals, reaping as PID 1, dying with the supervisor,
//! backups while the child writes, restore on first start, and the on-create SQL run once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{sqlite3, Env, Run, TestResult};

/// The child's interpreter: the distribution's, as in the container template (readable by any user).
const PYTHON: &str = "/usr/bin/python3";

/// A child that records that it ran (in `$MARKER`) and exits 0.
const MARK: &str = "import os; open(os.environ['MARKER'], 'w').write('ran')";

/// `sqlite-vol exec [flags] -- python3 -c script` in `env`, with the child's marker file set and the
/// WAL-reset refusal accepted (this machine's system SQLite has the bug; one test checks the refusal).
fn exec(env: &Env, flags: &[&str], script: &str) -> Command {
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", PYTHON, "-c", script]);
    let mut c = env.cmd(&args);
    c.env("MARKER", marker(env))
        .env("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", "1")
        .env("PYTHONUNBUFFERED", "1");
    for v in [
        "SQLITE_VOL_RESTORE_FROM",
        "SQLITE_VOL_BACKUP_TO",
        "AWS_ENDPOINT_URL",
    ] {
        c.env_remove(v);
    }
    c
}

/// A test that cannot run here says so and passes.
fn skip(why: String) -> TestResult {
    eprintln!("SKIPPED: {why}");
    Ok(())
}

fn marker(env: &Env) -> PathBuf {
    env.root().join("child-ran")
}

fn run(mut c: Command) -> Run {
    Run::from(c.output().expect("run sqlite-vol exec"))
}

/// Asserts a refusal before the start: exit 2, the fix in the message, and the child never ran.
#[track_caller]
fn assert_refused(env: &Env, r: Run, words: &[&str]) {
    let r = r.expect(2);
    for w in words {
        assert!(r.stderr.contains(w), "{w:?} missing from:\n{}", r.stderr);
    }
    assert!(r.stderr.contains("not started"), "{}", r.stderr);
    assert!(!marker(env).exists(), "the child ran despite the refusal");
}

/// A mount, undone when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, steps: &[&[&str]]) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let m = Mount(at.to_path_buf());
        for args in steps {
            let out = Command::new("mount")
                .args(*args)
                .arg(at)
                .output()
                .map_err(|e| format!("cannot run mount: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
        }
        Ok(m)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn strict_mode_on_a_tmpfs_refuses_before_the_app_starts() -> TestResult {
    let env = Env::empty("app");
    let mem = env.root().join("mem");
    let _m = match Mount::new(&mem, &[&["-t", "tmpfs", "tmpfs"]]) {
        Ok(m) => m,
        Err(why) => return skip(format!("cannot mount a tmpfs ({why})")),
    };
    let mut c = exec(&env, &[], MARK);
    c.env("DB_PATH", &mem)
        .env("SQLITE_VOL_REQUIRE_PERSISTENT", "1");
    assert_refused(&env, run(c), &["tmpfs", "Fix"]);
    assert!(!mem.join("app.db").exists(), "no database was created");
    Ok(())
}

#[test]
fn a_read_only_directory_refuses_before_the_app_starts() -> TestResult {
    let env = Env::empty("app");
    let data = env.data.to_str().unwrap_or_default().to_string();
    let _m = match Mount::new(&env.data, &[&["--bind", &data], &["-o", "remount,bind,ro"]]) {
        Ok(m) => m,
        Err(why) => return skip(format!("cannot bind-mount read-only ({why})")),
    };
    assert_refused(&env, run(exec(&env, &[], MARK)), &["read-only", "Fix"]);
    Ok(())
}

#[test]
fn an_unwritable_directory_refuses_before_the_app_starts() -> TestResult {
    let env = Env::empty("app");
    // Everything on the way must be reachable by uid 65534, the data directory only not writable.
    for dir in env.root().ancestors() {
        if dir.starts_with(env!("CARGO_TARGET_TMPDIR")) {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
    }
    let c = exec(&env, &[], MARK);
    let program = c.get_program().to_owned();
    let args: Vec<_> = c.get_args().map(|a| a.to_owned()).collect();
    let mut as_nobody = Command::new("setpriv");
    as_nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .args(args);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => as_nobody.env(k, v),
            None => as_nobody.env_remove(k),
        };
    }
    // The marker goes where nobody can write it, so a child that ran would show in the exit status too.
    assert_refused(&env, run(as_nobody), &["not writable by uid 65534", "Fix"]);
    Ok(())
}

#[test]
fn an_expected_database_that_is_missing_refuses_before_the_app_starts() -> TestResult {
    let env = Env::empty("app");
    let mut c = exec(&env, &[], MARK);
    c.env("SQLITE_VOL_EXPECT_EXISTING", "1");
    assert_refused(&env, run(c), &["app.db"]);
    assert!(!env.db.exists());
    Ok(())
}

#[test]
fn an_unreachable_restore_source_refuses_before_the_app_starts() -> TestResult {
    let env = Env::empty("app");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut c = exec(&env, &[], MARK);
    c.env("SQLITE_VOL_RESTORE_FROM", "s3://somewhere/app")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"));
    assert_refused(&env, run(c), &["s3://somewhere/app", "AWS_ENDPOINT_URL"]);
    assert!(
        !sqlite_vol::location::has_content(&env.db),
        "no empty database"
    );
    Ok(())
}

#[test]
fn an_old_system_sqlite_stops_the_switch_to_wal_unless_accepted() -> TestResult {
    let lib = sqlite_vol::wal_reset::system_library();
    let affected = lib
        .as_deref()
        .and_then(sqlite_vol::wal_reset::library_version)
        .is_some_and(|v| {
            sqlite_vol::wal_reset::Exposure::of(v) == sqlite_vol::wal_reset::Exposure::Affected
        });
    if !affected {
        return skip(format!(
            "SKIPPED: this system's SQLite ({lib:?}) is not affected"
        ));
    }
    let env = Env::empty("app");
    let mut c = exec(&env, &[], MARK);
    c.env_remove("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE");
    assert_refused(
        &env,
        run(c),
        &[
            "WAL-reset bug",
            "--keep-journal-mode",
            "--wal-despite-old-sqlite",
        ],
    );
    assert!(!env.db.exists(), "nothing was created");

    let mut c = exec(&env, &["--keep-journal-mode"], MARK);
    c.env_remove("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE");
    let r = run(c).expect(0);
    assert!(
        r.stderr.contains("keeping the journal mode"),
        "{}",
        r.stderr
    );
    assert_eq!(env.sql("PRAGMA journal_mode;"), "delete");

    run(exec(&env, &[], MARK)).expect(0);
    assert_eq!(env.sql("PRAGMA journal_mode;"), "wal", "accepted: switched");
    Ok(())
}

#[test]
fn the_child_gets_the_environment_plus_the_database_path_and_its_exit_status_is_returned(
) -> TestResult {
    let env = Env::empty("app");
    let script = "import os, sys; \
        assert os.environ['SQLITE_VOL_DB'] == os.path.join(os.environ['DB_PATH'], 'app.db'), os.environ; \
        assert os.environ['KEEP_ME'] == 'yes'; sys.exit(int(sys.argv[1]))";
    for code in [0, 3, 42] {
        let mut c = exec(&env, &[], script);
        c.arg(code.to_string()).env("KEEP_ME", "yes");
        let r = run(c).expect(code);
        assert!(
            r.stderr.contains("switched the database to WAL") || code != 0,
            "{}",
            r.stderr
        );
    }
    let r = run(exec(
        &env,
        &[],
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ));
    r.expect(128 + 9);
    let r = run(exec(&env, &[], "pass")).expect(0);
    assert!(r.stderr.contains("WAL checkpointed"), "{}", r.stderr);
    Ok(())
}

/// A child that appends the name of every signal it receives to `$MARKER`.log, says "ready", and exits 7
/// after SIGTERM.
const SIGNALS: &str = r#"
import os, signal, sys, time
log = os.environ['MARKER'] + '.log'
done = False
def got(n, _):
    global done
    open(log, 'a').write(signal.Signals(n).name + '\n')
    done = done or n == signal.SIGTERM
for s in ('SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'):
    signal.signal(getattr(signal, s), got)
open(log, 'a').write('ready\n')
while not done:
    time.sleep(0.01)
sys.exit(7)
"#;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c.spawn().expect("start sqlite-vol exec")
}

#[test]
fn every_forwarded_signal_reaches_the_child() -> TestResult {
    let env = Env::empty("app");
    let log = PathBuf::from(format!("{}.log", marker(&env).display()));
    let mut sup = spawn(exec(&env, &[], SIGNALS));
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the child to be ready", || lines().contains("ready"));
    let pid = sup.id().to_string();
    for name in [
        "SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGWINCH", "SIGINT", "SIGTERM",
    ] {
        let sent = Command::new("kill")
            .args(["-s", &name[3..], &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -s {name}");
        wait_for(name, || lines().lines().any(|l| l == name));
    }
    let status = sup.wait()?;
    assert_eq!(status.code(), Some(7), "the child's status after SIGTERM");
    Ok(())
}

/// A child that makes three orphans (each exits after 0.2 s), then counts zombies in its PID namespace.
const ORPHANS: &str = r#"
import os, sys, time
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
time.sleep(1.5)
zombies = [p for p in os.listdir('/proc') if p.isdigit()
           and open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z']
print('zombies', zombies, flush=True)
sys.exit(10 + len(zombies))
"#;

#[test]
fn as_pid_1_orphaned_zombies_are_reaped() -> TestResult {
    let env = Env::empty("app");
    let c = exec(&env, &["-q"], ORPHANS);
    let mut ns = Command::new("unshare");
    ns.args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => ns.env(k, v),
            None => ns.env_remove(k),
        };
    }
    // The same child without the supervisor as PID 1 keeps its zombies: the check can fail.
    let mut bare = Command::new("unshare");
    bare.args(["--pid", "--fork", "--mount-proc", PYTHON, "-c", ORPHANS]);
    let without = match bare.output() {
        Ok(o) if o.status.code().is_some_and(|c| c >= 10) => o.status.code(),
        other => return skip(format!("cannot make a PID namespace ({other:?})")),
    };
    assert_eq!(
        without,
        Some(13),
        "without a reaper the three orphans stay zombies"
    );
    let r = run(ns);
    assert_eq!(
        r.code, 10,
        "zombies left with exec as PID 1:\n{}\n{}",
        r.stdout, r.stderr
    );
    Ok(())
}

/// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                == Some("Z")
        }
        Err(_) => true,
    }
}

#[test]
fn killing_the_supervisor_ends_the_child() -> TestResult {
    let env = Env::empty("app");
    let script =
        "import os, time; open(os.environ['MARKER'], 'w').write(str(os.getpid())); time.sleep(600)";
    let mut sup = spawn(exec(&env, &[], script));
    let pid_file = marker(&env);
    wait_for("the child's pid", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.is_empty())
    });
    let child: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(!ended(child), "the child runs");
    sup.kill().expect("kill the supervisor");
    sup.wait().expect("wait for the supervisor");
    wait_for("the child to end with its supervisor", || ended(child));
    Ok(())
}

/// A child that commits pairs of rows (same id in `a` and `b`, one transaction each) for `argv[1]` seconds
/// through Python's sqlite3, then prints how many it committed.
const WRITER: &str = r#"
import os, sqlite3, sys, time
db = sqlite3.connect(os.environ['SQLITE_VOL_DB'], timeout=30, isolation_level=None)
n = 0
end = time.time() + float(sys.argv[1])
while time.time() < end:
    db.execute('BEGIN IMMEDIATE')
    db.execute('INSERT INTO a (v) VALUES (?)', (os.urandom(64).hex(),))
    db.execute('INSERT INTO b (id, v) VALUES (last_insert_rowid(), ?)', (os.urandom(64).hex(),))
    db.execute('COMMIT')
    n += 1
print(n)
"#;

fn write_sql(env: &Env, name: &str, sql: &str) -> PathBuf {
    let p = env.root().join(name);
    std::fs::write(&p, sql).expect("write SQL file");
    p
}

#[test]
fn scheduled_backups_while_python_commits_are_each_consistent() -> TestResult {
    let env = Env::empty("app");
    let schema = write_sql(
        &env,
        "schema.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL); \
         CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
    );
    let flags = [
        "--on-create",
        schema.to_str().unwrap_or_default(),
        "--backup-interval",
        "1s",
    ];
    let mut c = exec(&env, &flags, WRITER);
    c.arg("5");
    let r = run(c).expect(0);
    let committed: u64 = r.stdout.trim().parse()?;
    let backups = env.backup_files();
    assert!(
        backups.len() >= 3,
        "backups every second: {backups:?}\n{}",
        r.stderr
    );
    let mut counts = Vec::new();
    for b in &backups {
        assert_eq!(
            sqlite3(b, "PRAGMA integrity_check;"),
            "ok",
            "{}",
            b.display()
        );
        let pair = sqlite3(
            b,
            "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b), \
            (SELECT count(*) FROM a JOIN b USING (id));",
        );
        let v: Vec<&str> = pair.split('|').collect();
        assert!(
            v[0] == v[1] && v[1] == v[2],
            "a torn copy {}: {pair}",
            b.display()
        );
        counts.push(v[0].parse::<u64>()?);
    }
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        counts.first() < counts.last(),
        "copies taken while writing: {counts:?}"
    );
    assert_eq!(
        env.sql("SELECT count(*) FROM a;"),
        committed.to_string(),
        "every commit kept"
    );
    Ok(())
}

#[test]
fn a_new_volume_is_restored_from_a_folder_before_the_child_starts() -> TestResult {
    let env = Env::with_db("app", 250);
    let backup = env.backup();
    let folder = env.root().join("offsite");
    std::fs::create_dir_all(&folder)?;
    for ext in ["", ".json"] {
        let name = format!(
            "{}{ext}",
            backup.file_name().unwrap_or_default().to_string_lossy()
        );
        if backup.with_file_name(&name).exists() {
            std::fs::copy(backup.with_file_name(&name), folder.join(&name))?;
        }
    }
    for f in std::fs::read_dir(&env.data)? {
        std::fs::remove_file(f?.path())?;
    }
    let script = "import os, sqlite3; \
        print(sqlite3.connect(os.environ['SQLITE_VOL_DB']).execute('SELECT count(*) FROM items').fetchone()[0])";
    let flags = [
        "--restore-from",
        folder.to_str().unwrap_or_default(),
        "--migrations",
        env.migrations.to_str().unwrap_or_default(),
    ];
    let r = run(exec(&env, &flags, script)).expect(0);
    assert_eq!(r.stdout.trim(), "250", "{}", r.stderr);
    assert!(r.stderr.contains("RESTORED"), "{}", r.stderr);
    Ok(())
}

const SEED: &str = "CREATE TABLE seeds (at TEXT); INSERT INTO seeds VALUES (datetime('now'));";
const COUNT_SEEDS: &str = "import os, sqlite3; \
    print(sqlite3.connect(os.environ['SQLITE_VOL_DB']).execute('SELECT count(*) FROM seeds').fetchone()[0])";

#[test]
fn on_create_runs_once_across_restarts() -> TestResult {
    let env = Env::empty("app");
    let seed = write_sql(&env, "seed.sql", SEED);
    let flags = ["--on-create", seed.to_str().unwrap_or_default()];
    for _ in 0..3 {
        let r = run(exec(&env, &flags, COUNT_SEEDS)).expect(0);
        assert_eq!(r.stdout.trim(), "1", "{}", r.stderr);
    }
    Ok(())
}

#[test]
fn on_create_runs_once_when_two_supervisors_start_together() -> TestResult {
    let env = Env::empty("app");
    let seed = write_sql(&env, "seed.sql", SEED);
    let flags = ["--on-create", seed.to_str().unwrap_or_default()];
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut c = exec(&env, &flags, COUNT_SEEDS);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn()
        })
        .collect::<Result<_, _>>()?;
    for ch in children {
        let r = Run::from(ch.wait_with_output()?).expect(0);
        assert_eq!(r.stdout.trim(), "1", "{}", r.stderr);
    }
    assert_eq!(env.sql("SELECT count(*) FROM seeds;"), "1");
    Ok(())
}

/// The example Python app (`examples/pyaccounts/app.py`), unchanged.
fn pyaccounts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pyaccounts/app.py")
}

/// One HTTP/1.1 request on a fresh connection; returns the status and the body.
fn http(port: u16, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

/// Starts the example under `exec`; returns the supervisor, its stderr reader and the app's port (the
/// caller waits for it, through [`stop`]).
#[allow(clippy::zombie_processes)]
fn start_pyaccounts(
    env: &Env,
    flags: &[&str],
) -> (Child, std::io::BufReader<std::process::ChildStderr>, u16) {
    use std::io::BufRead;
    let mut args = vec!["exec"];
    args.extend_from_slice(flags);
    let app = pyaccounts();
    args.extend_from_slice(&["--", PYTHON, app.to_str().unwrap_or_default()]);
    let mut c = env.cmd(&args);
    c.env("DB_PATH", &env.db)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("SQLITE_VOL_WAL_DESPITE_OLD_SQLITE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut sup = c.spawn().expect("start exec");
    let mut err = std::io::BufReader::new(sup.stderr.take().expect("stderr"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the app never listened:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(rest) = line.split("listening on ").nth(1) {
            let port = rest
                .split(',')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok());
            return (sup, err, port.expect("port in the app's log"));
        }
    }
}

/// Sends SIGTERM to the supervisor and returns its exit code and the rest of its log.
fn stop(mut sup: Child, mut err: std::io::BufReader<std::process::ChildStderr>) -> (i32, String) {
    use std::io::Read;
    Command::new("kill")
        .args(["-s", "TERM", &sup.id().to_string()])
        .status()
        .expect("kill");
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    (sup.wait().expect("wait").code().unwrap_or(-1), rest)
}

#[test]
fn the_python_example_keeps_its_accounts_under_exec_across_a_restart() -> TestResult {
    let env = Env::empty("pyaccounts");
    let creds = r#"{"username": "ada", "password": "correct horse"}"#;
    let (sup, err, port) = start_pyaccounts(&env, &["--backup-on-exit"]);
    assert_eq!(http(port, "POST", "/register", creds, None).0, 201);
    assert_eq!(http(port, "POST", "/register", creds, None).0, 409);
    let (code, log) = stop(sup, err);
    assert_eq!(code, 0, "docker stop exits 0:\n{log}");
    assert!(
        log.contains("received SIGTERM"),
        "the app got SIGTERM:\n{log}"
    );
    assert!(log.contains("backup on exit done"), "{log}");
    let backups = env.backup_files();
    assert_eq!(backups.len(), 1, "{log}");
    assert_eq!(sqlite3(&backups[0], "SELECT username FROM users;"), "ada");

    let (sup, err, port) = start_pyaccounts(&env, &[]);
    let (status, body) = http(port, "POST", "/login", creds, None);
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body)?;
    let (status, me) = http(port, "GET", "/me", "", token["token"].as_str());
    assert_eq!((status, me.contains("ada")), (200, true), "{me}");
    let (code, log) = stop(sup, err);
    assert_eq!(code, 0, "{log}");
    assert_eq!(env.sql("PRAGMA journal_mode;"), "wal");
    assert_eq!(env.sql("PRAGMA integrity_check;"), "ok");
    Ok(())
}
