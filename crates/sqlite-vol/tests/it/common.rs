//! Helpers: temp folders kept on failure, fixture migrations, the `users` table those migrations make,
//! mounts that undo themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlite_vol::{Builder, Database, Error, Migrations};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A temp folder that is kept (and its path printed) when the test panics.
pub struct Tmp(Option<tempfile::TempDir>);

impl Tmp {
    pub fn new() -> Tmp {
        Tmp(Some(
            tempfile::Builder::new()
                .prefix("sqlite-vol-it-")
                .tempdir()
                .expect("temp dir"),
        ))
    }
    pub fn path(&self) -> &Path {
        self.0.as_ref().map(|d| d.path()).expect("temp dir")
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("kept test folder {}", d.keep().display());
            }
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn migrations(name: &str) -> Migrations {
    Migrations::from_dir(&fixture(name)).expect("fixture migrations")
}

/// A builder for app `it` in `dir` with the named fixture migrations and no schedule from the environment.
pub fn builder(dir: &Path, fixture_name: &str) -> Builder {
    Database::builder("it")
        .path(dir)
        .migrations(migrations(fixture_name))
        .backup_every(std::time::Duration::ZERO, None)
}

/// Opens `dir` for app `it` with the named fixture migrations.
pub fn open(dir: &Path, fixture_name: &str) -> sqlite_vol::Result<Database> {
    builder(dir, fixture_name).open()
}

/// Inserts a row into the fixtures' `users` table.
pub fn add_user(db: &Database, email: &str) -> sqlite_vol::Result<()> {
    db.write(|tx| {
        tx.execute("INSERT INTO users (email) VALUES (?1)", [email])
            .map(|_| ())
            .map_err(Error::from_sqlite)
    })
}

/// The creation hook the tests seed with: one user, `seed@example.com`.
pub fn seed_user(tx: &rusqlite::Transaction<'_>) -> Result<(), String> {
    tx.execute("INSERT INTO users (email) VALUES ('seed@example.com')", [])
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Rows in `users`, read through the pool.
pub fn count_users(db: &Database) -> Result<i64, Box<dyn std::error::Error>> {
    Ok(db
        .conn()?
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// What the stock `sqlite3` shell's `PRAGMA integrity_check` prints for `db`.
pub fn sqlite3_integrity_check(db: &Path) -> std::io::Result<String> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA integrity_check")
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// All bytes of the database after folding its WAL in, for "left exactly as it was" checks.
pub fn db_bytes(db: &Path) -> Vec<u8> {
    if let Ok(c) = rusqlite::Connection::open(db) {
        let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    std::fs::read(db).unwrap_or_default()
}

/// A mount at a folder, unmounted on drop. Tests run as root (CI does); failing to mount fails the test.
pub struct MountGuard(PathBuf);

impl MountGuard {
    pub fn tmpfs(at: &Path, size: &str) -> MountGuard {
        std::fs::create_dir_all(at).expect("mount point");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &at.to_string_lossy(),
            ],
        );
        MountGuard(at.to_path_buf())
    }
    pub fn remount_ro(&self) {
        run("mount", &["-o", "remount,ro", &self.0.to_string_lossy()]);
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect("run mount");
    assert!(
        out.status.success(),
        "`{cmd} {}` failed (these tests need root, as CI has): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
