//! The test harness: a temporary deployment (database directory, backup directory, migrations) and helpers
//! to run the binary, the stock `sqlite3` shell and Python against it. The kept-on-failure folder and the
//! shell come from the workspace's test-support crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sqlite-vol");

/// The variables the binary reads, removed so the host's environment cannot leak into a test.
const CLEARED: &[&str] = &[
    "DB_PATH",
    "DATABASE_URL",
    "SQLITE_VOL_APP",
    "SQLITE_VOL_BACKUP_DIR",
    "SQLITE_VOL_REQUIRE_PERSISTENT",
    "SQLITE_VOL_EXPECT_EXISTING",
    "SQLITE_VOL_BACKUP_INTERVAL",
    "SQLITE_VOL_BACKUP_KEEP",
    "SQLITE_VOL_LOG",
    "RUST_LOG",
    "APP_DB_PATH",
    "OTHER_DB_PATH",
];

/// The result of one run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The exit code and output of a finished process.
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A temporary deployment of `app`: `<root>/data/<app>.db`, backups in `<root>/backups`, migrations in
/// `<root>/migrations`. The directory is kept (and its path printed) when the test fails.
pub struct Env {
    dir: test_support::TestDir,
    pub app: String,
    pub data: PathBuf,
    pub db: PathBuf,
    pub backups: PathBuf,
    pub migrations: PathBuf,
}

/// The schema every test database gets.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "V1__items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);",
    ),
    (
        "V2__kv.sql",
        "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO kv VALUES ('state', 'initial');",
    ),
];

impl Env {
    /// An empty deployment: nothing but directories and migration files.
    pub fn empty(app: &str) -> Env {
        // Under the target directory rather than /tmp, which may be a tmpfs (doctor would fail it).
        let dir = test_support::TestDir::new_in("sqlite-vol-it-", env!("CARGO_TARGET_TMPDIR"));
        let root = dir.path().to_path_buf();
        let env = Env {
            dir,
            app: app.into(),
            data: root.join("data"),
            db: root.join("data").join(format!("{app}.db")),
            backups: root.join("backups"),
            migrations: root.join("migrations"),
        };
        std::fs::create_dir_all(&env.data).expect("data dir");
        std::fs::create_dir_all(&env.migrations).expect("migrations dir");
        for (name, sql) in MIGRATIONS {
            std::fs::write(env.migrations.join(name), sql).expect("migration file");
        }
        env
    }

    /// A deployment whose database exists (created by `sqlite-vol migrate`) and holds `rows` items.
    pub fn with_db(app: &str, rows: u32) -> Env {
        let env = Env::empty(app);
        env.run(&[
            "migrate",
            "--dir",
            env.migrations.to_str().unwrap_or_default(),
        ])
        .expect(0);
        env.sql(&format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
             INSERT INTO items (v) SELECT hex(randomblob(100)) FROM c;"
        ));
        env
    }

    /// The root of the temporary directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, configured as in a container: `DB_PATH` is the data directory, `SQLITE_VOL_APP` the app,
    /// `SQLITE_VOL_BACKUP_DIR` the backup directory; stdin is not a terminal.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        for v in CLEARED {
            c.env_remove(v);
        }
        c.env("DB_PATH", &self.data)
            .env("SQLITE_VOL_APP", &self.app)
            .env("SQLITE_VOL_BACKUP_DIR", &self.backups)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary to the end.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, |_| {})
    }

    /// Runs the binary to the end after `adjust` changed its command (environment, stdin).
    pub fn run_with(&self, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Run {
        let mut c = self.cmd(args);
        adjust(&mut c);
        Run::from(c.output().expect("run sqlite-vol"))
    }

    /// Runs SQL in the stock shell against the live database and returns its output, trimmed.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        sqlite3(&self.db, sql)
    }

    /// The live database's bytes after folding the WAL into it.
    pub fn fingerprint(&self) -> Vec<u8> {
        if self.db.exists() {
            self.sql("PRAGMA wal_checkpoint(TRUNCATE);");
        }
        std::fs::read(&self.db).unwrap_or_default()
    }

    /// The backup files (`*.db`) in the backup directory, sorted.
    pub fn backup_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.backups)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "db"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Takes a backup and returns its path.
    pub fn backup(&self) -> PathBuf {
        let r = self.run(&["backup", "--json"]).expect(0);
        PathBuf::from(r.json()["path"].as_str().expect("path in backup JSON"))
    }
}

/// Runs SQL in the stock `sqlite3` shell on `db`; fails the test if the shell fails.
pub use test_support::sqlite3::query as sqlite3;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
