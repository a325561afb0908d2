//! Every bad input a user can give: each is refused with a clear error and the right exit code, and the live
//! database stays byte-for-byte as it was (and no safety backup is taken for a refused restore).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{noise, Env, TestResult};

/// Runs `verify FILE` and `restore --yes FILE` on a bad file and checks both refuse it with `code`, saying
/// `says`, leaving the live database and the backup directory as they were.
#[track_caller]
fn refused(env: &Env, file: &Path, code: i32, says: &str) {
    let before = env.fingerprint();
    let backups = env.backup_files();
    let f = file.to_str().unwrap_or_default();
    let v = env.run(&["verify", f]);
    assert_eq!(v.code, code, "verify {f}: {v:?}");
    assert!(
        v.stderr.to_lowercase().contains(says),
        "verify {f} should say {says:?}: {}",
        v.stderr
    );
    let r = env.run(&["restore", "--yes", f]);
    assert_eq!(r.code, code, "restore {f}: {r:?}");
    assert!(
        r.stderr.to_lowercase().contains(says),
        "restore {f} should say {says:?}: {}",
        r.stderr
    );
    assert_eq!(
        r.stderr.trim().lines().count(),
        1,
        "one line of error: {}",
        r.stderr
    );
    assert!(
        env.fingerprint() == before,
        "the live database changed after restoring {f}"
    );
    assert_eq!(
        env.backup_files(),
        backups,
        "a refused restore must not write backups"
    );
    assert_eq!(env.sql("SELECT v FROM kv"), "changed-after-backup");
}

/// A deployment with one good backup, changed since, so a restore that went through would show.
fn deployment() -> (Env, PathBuf) {
    let env = Env::with_db("app", 300);
    let good = env.backup();
    env.sql("UPDATE kv SET v = 'changed-after-backup'");
    (env, good)
}

#[test]
fn restore_refuses_a_text_file() -> TestResult {
    let (env, _) = deployment();
    let file = env.root().join("notes.db");
    std::fs::write(&file, "this is not a database\n".repeat(500))?;
    refused(&env, &file, 1, "sqlite header");
    Ok(())
}

#[test]
fn restore_refuses_an_empty_file() -> TestResult {
    let (env, _) = deployment();
    let file = env.root().join("empty.db");
    std::fs::write(&file, b"")?;
    refused(&env, &file, 1, "empty");
    Ok(())
}

#[test]
fn restore_refuses_a_truncated_backup() -> TestResult {
    let (env, good) = deployment();
    let bytes = std::fs::read(&good)?;
    // Cut at a page boundary, with the manifest gone: only the header's page count can tell.
    let cut = env.root().join("cut-at-page.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 / 4096 * 4096])?;
    refused(&env, &cut, 1, "truncated");
    // Cut mid-page: not a whole number of pages.
    let ragged = env.root().join("ragged.db");
    std::fs::write(&ragged, &bytes[..bytes.len() / 2 + 123])?;
    refused(&env, &ragged, 1, "truncated");
    // Cut beside its manifest: still refused, before anything is opened.
    let with_manifest = env.backups.join("app-20200101T000000Z.db");
    std::fs::write(&with_manifest, &bytes[..bytes.len() / 2 / 4096 * 4096])?;
    std::fs::copy(
        format!("{}.json", good.display()),
        format!("{}.json", with_manifest.display()),
    )?;
    refused(&env, &with_manifest, 1, "truncated");
    Ok(())
}

#[test]
fn restore_refuses_a_backup_changed_after_its_manifest_was_written() -> TestResult {
    let (env, good) = deployment();
    let mut bytes = std::fs::read(&good)?;
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    std::fs::write(&good, bytes)?;
    refused(&env, &good, 1, "checksum");
    Ok(())
}

#[test]
fn restore_refuses_random_bytes_behind_a_valid_header() -> TestResult {
    let (env, good) = deployment();
    let mut bytes = std::fs::read(&good)?;
    let len = bytes.len();
    bytes[100..].copy_from_slice(&noise(len - 100, 42));
    let file = env.root().join("noise.db");
    std::fs::write(&file, bytes)?;
    refused(&env, &file, 1, "failed verification");
    Ok(())
}

#[test]
fn restore_refuses_a_backup_of_another_app_unless_forced() -> TestResult {
    let (env, _) = deployment();
    let other = Env::with_db("other", 5);
    let foreign = other.backup();
    let before = env.fingerprint();
    let f = foreign.to_str().unwrap_or_default();
    let r = env.run(&["restore", "--yes", f]).expect(1);
    assert!(
        r.stderr.contains("another application") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("RestoreOptions"),
        "the command names its flag, not the library's option: {}",
        r.stderr
    );
    assert!(env.fingerprint() == before, "the live database changed");
    let v = env.run(&["verify", "--json", f]).expect(0).json();
    assert_eq!(v["application_matches"], false);
    env.run(&["restore", "--yes", "--force", f]).expect(0);
    assert_eq!(env.sql("SELECT count(*) FROM items"), "5");
    Ok(())
}

#[test]
fn restore_refuses_a_path_that_does_not_exist() -> TestResult {
    let (env, _) = deployment();
    refused(
        &env,
        &env.root().join("no-such-backup.db"),
        2,
        "no such file",
    );
    Ok(())
}

#[test]
fn restore_refuses_a_directory_given_as_a_file() -> TestResult {
    let (env, _) = deployment();
    refused(&env, &env.backups, 1, "directory");
    Ok(())
}

#[test]
fn restore_refuses_the_live_database_itself() -> TestResult {
    let (env, _) = deployment();
    let before = env.fingerprint();
    let r = env
        .run(&["restore", "--yes", env.db.to_str().unwrap_or_default()])
        .expect(2);
    assert!(r.stderr.contains("live database itself"), "{}", r.stderr);
    assert!(env.fingerprint() == before);
    Ok(())
}

/// A 64 KiB tmpfs, unmounted when dropped.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(at: PathBuf) -> Result<SmallTmpfs, String> {
        std::fs::create_dir_all(&at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallTmpfs(at))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn backup_onto_a_full_filesystem_says_no_space_and_leaves_nothing_behind() -> TestResult {
    // About 2.5 MiB: far more than the tmpfs holds, and large enough that SQLite's rollback journal of the
    // copy is left behind too unless it is cleaned up.
    let env = Env::with_db("app", 10_000);
    let full = match SmallTmpfs::mount(env.root().join("full")) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED backup_onto_a_full_filesystem: cannot mount a tmpfs ({why})");
            return Ok(());
        }
    };
    let before = env.fingerprint();
    let r = env
        .run(&["backup", "--to", full.0.to_str().unwrap_or_default()])
        .expect(2);
    assert!(r.stderr.contains("no space"), "{}", r.stderr);
    assert!(
        r.stderr.contains(full.0.to_str().unwrap_or_default()),
        "name the full directory: {}",
        r.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&full.0)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "files left on the full filesystem: {left:?}"
    );
    assert!(env.fingerprint() == before, "the live database changed");
    env.run(&["check"]).expect(0);
    Ok(())
}
