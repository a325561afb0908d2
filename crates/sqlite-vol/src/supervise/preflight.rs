//! Everything `exec` checks and prepares before the app may start, through [`crate::Builder`].
//!
//! The builder does the work a Rust service gets at startup — locate, volume policy, writable check,
//! restore on first start, expect-existing, migrations with a safety backup, the on-create hook in the
//! transaction that marks the database initialized, scheduled backups — so an app in another language gets
//! exactly the same refusals. What is added here: the on-create hook is a SQL file, the journal mode can be
//! left alone (`keep_journal_mode`), and the switch to WAL is refused when a SQLite with the WAL-reset bug
//! is seen ([`crate::wal_reset`]) unless the caller accepts it. The switch is logged.

use crate::supervise::ExecOptions;
use crate::wal_reset::{self, Exposure};
use crate::{Database, Error, Location, Migrations, Result};

/// Opens the database the app will use, with every startup check; nothing is started.
///
/// # Errors
/// Every refusal of [`crate::Builder::open`], an unreadable migrations folder or on-create file, and
/// [`Error::OldSqliteWal`] when the database would be switched to WAL for an app whose SQLite has the
/// WAL-reset bug.
pub fn prepare(opts: &ExecOptions) -> Result<Database> {
    let mut b = Database::builder(&opts.app)
        .settings(&opts.settings)
        .pool_size(1);
    if let Some(dir) = &opts.migrations {
        b = b.migrations(Migrations::from_dir(dir)?);
    }
    if let Some(file) = &opts.on_create {
        let sql = std::fs::read_to_string(file)
            .map_err(|e| Error::io("reading the on-create SQL", file, e))?;
        let name = file.display().to_string();
        b = b.on_create(move |tx| {
            tx.execute_batch(&sql)
                .map_err(|e| format!("{name}: {e} (fix the SQL; nothing of it was kept)"))
        });
    }
    // The same resolution the builder does, to look at the file before it is touched.
    let path = Location::resolve(&opts.app, opts.settings.db.as_deref())?.path;
    let was_wal = wal_reset::header_is_wal(&path);
    if opts.keep_journal_mode {
        tracing::warn!(db = %path.display(), wal = was_wal.unwrap_or(false),
            "keeping the journal mode as it is (--keep-journal-mode): in rollback-journal mode online backups make the app's writers wait while the copy is taken");
        b = b.wal(was_wal.unwrap_or(false));
    } else if was_wal != Some(true) {
        refuse_old_sqlite(&path, opts)?;
    }
    if opts.wal_despite_old_sqlite {
        // A second connection checkpointing beside an app whose SQLite has the WAL-reset bug is the very
        // timing the bug needs: leave checkpoints to the app's own (automatic) ones.
        b = b.checkpoint_policy(std::time::Duration::ZERO, crate::wal_policy::DEFAULT_LIMIT);
    }
    let db = b.open()?;

    let mode: String = db
        .conn()?
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| Error::sqlite(&path, "reading the journal mode", e))?;
    if mode.eq_ignore_ascii_case("wal") && was_wal != Some(true) {
        tracing::info!(db = %db.location().path.display(), created = db.created(),
            "switched the database to WAL: the app's readers and writers no longer block each other, and online backups never stop its writers");
    }
    Ok(db)
}

/// Refuses a switch to WAL when a SQLite with the WAL-reset bug is seen, unless accepted.
fn refuse_old_sqlite(path: &std::path::Path, opts: &ExecOptions) -> Result<()> {
    let findings = wal_reset::before_start(path);
    let Some(bad) = findings.iter().find(|f| f.exposure == Exposure::Affected) else {
        return Ok(());
    };
    if opts.wal_despite_old_sqlite {
        tracing::warn!(db = %path.display(), seen_in = %bad.seen_in, version = %bad.version,
            "switching to WAL although this SQLite has the WAL-reset bug (--wal-despite-old-sqlite): safe only while one connection at a time writes or checkpoints, so the checkpoint policy is off");
        return Ok(());
    }
    Err(Error::OldSqliteWal {
        path: path.to_path_buf(),
        seen_in: bad.seen_in.clone(),
        version: bad.version.to_string(),
    })
}
