//! Which SQLite libraries touch a database, and whether they have the WAL-reset bug.
//!
//! SQLite 3.7.0 up to 3.51.2 can corrupt a WAL database when two or more connections write or checkpoint it
//! at once and a rare timing hits the WAL reset (fixed in 3.51.3; backported to 3.44.6 and 3.50.7). This
//! crate's bundled SQLite ([`bundled`]) is fixed, but an app in another language links its own, usually the
//! distribution's (Debian bookworm: 3.40.1). What can be seen from outside: the version number of the library
//! that last wrote the file (database header, offset 96), the `libsqlite3` a dynamically linked program on
//! this system would load (the loader's search order), and the `libsqlite3` files a running process has
//! mapped (`/proc/PID/maps`). Each is a [`Finding`], classified by [`Exposure::of`].

use std::io::Read;
use std::path::{Path, PathBuf};

/// A SQLite version as `SQLITE_VERSION_NUMBER` writes it: `3040001` is 3.40.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version(pub u32);

impl Version {
    /// Parses `3.40.1`.
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        if parts.next().is_some() || major != 3 || minor > 999 || patch > 999 {
            return None;
        }
        Some(Version(major * 1_000_000 + minor * 1000 + patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        write!(f, "{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000)
    }
}

/// What a version means for a WAL database written by several connections at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Exposure {
    /// Older than 3.7.0: no WAL at all.
    NoWal,
    /// Has the WAL-reset bug.
    Affected,
    /// Fixed (3.51.3 or later, or the 3.44.6 / 3.50.7 backports).
    Fixed,
}

impl Exposure {
    /// Classifies a version.
    pub fn of(v: Version) -> Exposure {
        match v.0 {
            0..3_007_000 => Exposure::NoWal,
            3_044_006..3_045_000 | 3_050_007..3_051_000 => Exposure::Fixed,
            3_051_003.. => Exposure::Fixed,
            _ => Exposure::Affected,
        }
    }
}

/// One SQLite library seen, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Where it was seen, e.g. `the database header of /data/app.db` or `/usr/lib/.../libsqlite3.so.0`.
    pub seen_in: String,
    /// Its version.
    pub version: Version,
    /// What that version means.
    pub exposure: Exposure,
}

impl Finding {
    fn new(seen_in: String, version: Version) -> Finding {
        Finding {
            seen_in,
            version,
            exposure: Exposure::of(version),
        }
    }
}

/// The SQLite this crate is built with (fixed).
pub fn bundled() -> Version {
    Version(rusqlite::version_number().max(0) as u32)
}

/// The first 100 bytes of a database file, or `None` when it is missing or shorter.
fn header(db: &Path) -> Option<[u8; 100]> {
    let mut h = [0u8; 100];
    std::fs::File::open(db).ok()?.read_exact(&mut h).ok()?;
    h.starts_with(b"SQLite format 3\0").then_some(h)
}

/// The version of the library that last wrote `db` (header offset 96), or `None` without a database.
pub fn header_version(db: &Path) -> Option<Version> {
    let h = header(db)?;
    Some(Version(u32::from_be_bytes([h[96], h[97], h[98], h[99]])))
}

/// Whether `db` is in WAL mode according to its header (read and write versions 2), `None` without one.
pub fn header_is_wal(db: &Path) -> Option<bool> {
    header(db).map(|h| h[18] == 2 && h[19] == 2)
}

/// The version a SQLite library file carries (its NUL-terminated `SQLITE_VERSION` string), if it has one.
pub fn library_version(lib: &Path) -> Option<Version> {
    let bytes = std::fs::read(lib).ok()?;
    // "\03.40.1\0": a string of digits and dots between NULs, starting with "3.".
    bytes
        .split(|b| *b == 0)
        .filter(|s| s.len() >= 5 && s.len() <= 11 && s.starts_with(b"3."))
        .filter(|s| s.iter().all(|b| b.is_ascii_digit() || *b == b'.'))
        .find_map(|s| Version::parse(std::str::from_utf8(s).ok()?))
}

/// Whether a file name is a SQLite shared library (`libsqlite3.so.0.8.6`, `libsqlite3.so`).
fn is_sqlite_library(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("libsqlite3") && n.contains(".so"))
}

/// The `libsqlite3.so.0` a dynamically linked program started now would load: the first one in
/// `LD_LIBRARY_PATH`, then the loader's usual directories, in the order `ld.so` searches them.
pub fn system_library() -> Option<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    // Debian's /etc/ld.so.conf.d order, then the loader's trusted directories.
    for d in [
        "/usr/local/lib",
        "/usr/local/lib/",
        "/lib/",
        "/usr/lib/",
        "/lib",
        "/usr/lib",
    ] {
        let d = if d.ends_with('/') {
            format!("{d}{multiarch}")
        } else {
            d.to_string()
        };
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter()
        .map(|d| d.join("libsqlite3.so.0"))
        .find(|p| p.is_file())
}

/// The SQLite libraries process `pid` has mapped, from `/proc/PID/maps` (empty when it cannot be read or
/// links SQLite statically).
pub fn mapped_libraries(pid: u32) -> Vec<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut libs: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(PathBuf::from)
        .filter(|p| is_sqlite_library(p))
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// What can be seen before an app starts on `db`: the library that last wrote it, and the library a
/// dynamically linked app on this system would load.
pub fn before_start(db: &Path) -> Vec<Finding> {
    let mut out: Vec<Finding> = written_by(db).into_iter().collect();
    if let Some(lib) = system_library() {
        if let Some(v) = library_version(&lib) {
            out.push(Finding::new(
                format!("{} (the SQLite this system's programs load)", lib.display()),
                v,
            ));
        }
    }
    out
}

/// The library that last wrote `db`, from its header; `None` without a database.
pub fn written_by(db: &Path) -> Option<Finding> {
    header_version(db).map(|v| {
        Finding::new(
            format!(
                "the header of {} (the SQLite that last wrote it)",
                db.display()
            ),
            v,
        )
    })
}

/// The SQLite libraries a running process has mapped, with their versions.
pub fn of_process(pid: u32) -> Vec<Finding> {
    mapped_libraries(pid)
        .into_iter()
        .filter_map(|lib| {
            let v = library_version(&lib)?;
            Some(Finding::new(
                format!("{} (mapped by pid {pid})", lib.display()),
                v,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_classified_by_the_fixed_releases() {
        let e = |s| Exposure::of(Version::parse(s).expect("version"));
        assert_eq!(e("3.6.23"), Exposure::NoWal);
        assert_eq!(e("3.7.0"), Exposure::Affected);
        assert_eq!(e("3.40.1"), Exposure::Affected);
        assert_eq!(e("3.44.5"), Exposure::Affected);
        assert_eq!(e("3.44.6"), Exposure::Fixed);
        assert_eq!(e("3.50.6"), Exposure::Affected);
        assert_eq!(e("3.50.7"), Exposure::Fixed);
        assert_eq!(e("3.51.2"), Exposure::Affected);
        assert_eq!(e("3.51.3"), Exposure::Fixed);
        assert_eq!(e("3.53.2"), Exposure::Fixed);
    }

    #[test]
    fn the_bundled_sqlite_is_fixed() {
        assert_eq!(Exposure::of(bundled()), Exposure::Fixed, "{}", bundled());
    }

    #[test]
    fn version_numbers_print_and_parse_alike() {
        assert_eq!(Version(3_040_001).to_string(), "3.40.1");
        assert_eq!(Version::parse("3.40.1"), Some(Version(3_040_001)));
        assert_eq!(Version::parse("3.40"), None);
        assert_eq!(Version::parse("4.0.0"), None);
    }

    #[test]
    fn the_header_names_the_library_that_wrote_the_file() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("x.db");
        assert_eq!(header_version(&db), None);
        let c = rusqlite::Connection::open(&db)?;
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")?;
        drop(c);
        assert_eq!(header_version(&db), Some(bundled()));
        assert_eq!(header_is_wal(&db), Some(true));
        Ok(())
    }

    #[test]
    fn a_library_file_gives_its_version_string() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let lib = dir.path().join("libsqlite3.so.0");
        std::fs::write(&lib, b"\x7fELF\0junk 3.1\0\x003.40.1\0more\0")?;
        assert_eq!(library_version(&lib), Some(Version(3_040_001)));
        assert!(is_sqlite_library(&lib));
        assert!(!is_sqlite_library(Path::new("_sqlite3.cpython-311.so")));
        Ok(())
    }
}
