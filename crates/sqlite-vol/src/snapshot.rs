//! The fast path of a backup: copy the database file itself when that is provably the pinned snapshot.
//!
//! The SQLite backup API copies page by page through the pager, at a fraction of what the kernel copies a
//! file at. While the backup holds its read transaction, the database file is exactly its snapshot when:
//! - in rollback-journal mode: always (a reader's SHARED lock keeps every writer out of the file);
//! - in WAL mode: when every frame of the WAL is already in the file (`nBackfill == mxFrame` in the
//!   wal-index), and no checkpoint writes into the file while it is copied. In WAL mode only checkpoints
//!   write to the database file, and a checkpoint announces itself in the wal-index (`nBackfillAttempted`
//!   before it writes a page, `nBackfill` after; a WAL restart changes the salt). So the wal-index header is
//!   read before and after the copy, and the copy counts only if none of those moved. A checkpoint can only
//!   backfill frames at or below our read mark, so `nBackfill == mxFrame` also proves that the file holds no
//!   commit newer than the snapshot.
//!
//! When any condition fails (a busy writer keeps the WAL ahead of the checkpoints, an unknown wal-index
//! version, no `-shm` file), the caller falls back to the backup API. The wal-index layout read here is the
//! one SQLite documents in "WAL-mode File Format" (version 3007000, unchanged since 3.7.0).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use rusqlite::Connection;
use sha2::Digest;

use crate::backup::Progress;
use crate::{Error, Result};

/// The wal-index fields that change when a checkpoint writes into the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WalIndex {
    mx_frame: u32,
    salt: [u32; 2],
    n_backfill: u32,
    n_backfill_attempted: u32,
}

/// Reads the wal-index header from `<db>-shm`; `None` when it is missing, torn or of an unknown version.
fn read_wal_index(db: &Path) -> Option<WalIndex> {
    let mut buf = [0u8; 136];
    File::open(crate::open::sidecar(db, "-shm"))
        .ok()?
        .read_exact(&mut buf)
        .ok()?;
    let u32_at = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
    // Two copies of the 48-byte header must agree (SQLite's own torn-read check), version 3007000, isInit.
    if buf[..48] != buf[48..96] || u32_at(0) != 3_007_000 || buf[12] != 1 {
        return None;
    }
    Some(WalIndex {
        mx_frame: u32_at(16),
        salt: [u32_at(32), u32_at(36)],
        n_backfill: u32_at(96),
        n_backfill_attempted: u32_at(128),
    })
}

/// With `src` inside its read transaction, copies the database file to `partial` if the file is the
/// snapshot, hashing while copying. Returns the size and hex sha256 of what was written, or `None` when the
/// caller must use the backup API (the partial file is then left empty).
pub(crate) fn copy_if_quiescent(
    src: &Connection,
    db: &Path,
    partial: &Path,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<Option<(u64, String)>> {
    let mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(db, "reading journal mode", e))?;
    let wal = mode.eq_ignore_ascii_case("wal");
    if !wal
        && !matches!(
            mode.to_ascii_lowercase().as_str(),
            "delete" | "truncate" | "persist"
        )
    {
        return Ok(None);
    }
    let before = if wal {
        match read_wal_index(db) {
            Some(w) if w.mx_frame == w.n_backfill => Some(w),
            _ => return Ok(None),
        }
    } else {
        None
    };
    let page_size = crate::backup::pragma_u64(src, "page_size")
        .map_err(|e| Error::sqlite(db, "reading page size", e))?;
    let (bytes, sha) = copy_hashing(db, partial, page_size, progress)?;
    if wal
        && read_wal_index(db).map(|w| (w.salt, w.n_backfill, w.n_backfill_attempted))
            != before.map(|w| (w.salt, w.n_backfill, w.n_backfill_attempted))
    {
        // A checkpoint wrote into the file while it was copied: throw the copy away.
        OpenOptions::new()
            .write(true)
            .open(partial)
            .and_then(|f| f.set_len(0))
            .map_err(|e| Error::io("discarding a raced copy", partial, e))?;
        tracing::debug!(db = %db.display(), "a checkpoint ran during the file copy; using the backup API");
        return Ok(None);
    }
    Ok(Some((bytes, sha)))
}

/// Copies `db` to `partial` in the kernel (`copy_file_range`, through `std::io::copy`) while another
/// thread hashes the same bytes from the source, then marks the copy as a rollback-journal database (header
/// bytes 18 and 19, as `PRAGMA journal_mode = DELETE` does on a database with an empty WAL); the hash covers
/// the marked bytes. The source does not change meanwhile (the caller proves it), so the hash is the copy's.
/// The caller fsyncs the copy after releasing the snapshot, to keep the pinned window short.
fn copy_hashing(
    db: &Path,
    partial: &Path,
    page_size: u64,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<(u64, String)> {
    let mut from = File::open(db).map_err(|e| Error::io("reading", db, e))?;
    let total_pages = from
        .metadata()
        .map(|m| m.len() / page_size.max(1))
        .unwrap_or(0);
    let mut to = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(partial)
        .map_err(|e| Error::io("writing backup", partial, e))?;
    let (copied, hashed) = std::thread::scope(|s| {
        let hashing = s.spawn(|| hash_marked(db));
        let copied = std::io::copy(&mut from, &mut to);
        (
            copied,
            hashing
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("hash thread panicked"))),
        )
    });
    let n = copied.map_err(|e| Error::io("writing backup", partial, e))?;
    let (hashed_n, sha, was_wal) = hashed.map_err(|e| Error::io("reading", db, e))?;
    if hashed_n != n {
        return Err(Error::io(
            "copying",
            db,
            std::io::Error::other("the file changed size while copied"),
        ));
    }
    if was_wal {
        use std::os::unix::fs::FileExt;
        to.write_all_at(&[1, 1], 18)
            .map_err(|e| Error::io("writing backup", partial, e))?;
    }
    if let Some(f) = progress {
        f(Progress {
            done: total_pages,
            total: total_pages,
        });
    }
    Ok((n, sha))
}

/// Hashes `db` as it will be after marking it rollback-mode: (bytes, hex sha256, whether it was WAL).
fn hash_marked(db: &Path) -> std::io::Result<(u64, String, bool)> {
    let mut f = File::open(db)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let (mut n, mut was_wal) = (0u64, false);
    loop {
        let k = read_full(&mut f, &mut buf)?;
        if k == 0 {
            break;
        }
        if n == 0 && k >= 100 && buf[18] == 2 && buf[19] == 2 {
            buf[18] = 1;
            buf[19] = 1;
            was_wal = true;
        }
        hash.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(hash.finalize()), was_wal))
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut k = 0;
    while k < buf.len() {
        match f.read(&mut buf[k..])? {
            0 => break,
            n => k += n,
        }
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_wal_database_is_copied_as_a_file_and_a_busy_one_is_not(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("a.db");
        let w = Connection::open(&db)?;
        w.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (1);")?;
        // Frames in the WAL that are not in the file: the file is not the snapshot.
        let r = Connection::open(&db)?;
        r.execute_batch("BEGIN; SELECT count(*) FROM t;")?;
        assert_eq!(
            copy_if_quiescent(&r, &db, &tmp.path().join("p1"), None)?,
            None
        );
        r.execute_batch("COMMIT")?;
        // Everything checkpointed: the file is the snapshot, and the copy says rollback mode.
        w.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        r.execute_batch("BEGIN; SELECT count(*) FROM t;")?;
        let p2 = tmp.path().join("p2");
        std::fs::File::create(&p2)?;
        let got = copy_if_quiescent(&r, &db, &p2, None)?;
        r.execute_batch("COMMIT")?;
        let (bytes, _) = got.ok_or("an idle WAL database must take the file path")?;
        assert_eq!(bytes, std::fs::metadata(&db)?.len());
        let copy = std::fs::read(&p2)?;
        assert_eq!((copy[18], copy[19]), (1, 1));
        let c = Connection::open(&p2)?;
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!((mode.as_str(), n), ("delete", 1));
        Ok(())
    }

    #[test]
    fn wal_index_of_a_live_database_is_read() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let db = tmp.path().join("a.db");
        let w = Connection::open(&db)?;
        w.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (1);")?;
        let idx = read_wal_index(&db).ok_or("wal-index not readable")?;
        assert!(idx.mx_frame > 0 && idx.n_backfill < idx.mx_frame, "{idx:?}");
        Ok(())
    }
}
