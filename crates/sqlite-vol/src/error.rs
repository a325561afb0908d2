//! The crate's one error type.
//!
//! Every variant carries the path (or SQL, or variable) involved and, where there is one, the fix a user can
//! apply. The `Display` text is written to be printed as-is at startup or by the command line: it says what
//! happened and what to do, in one or two sentences. Underlying causes are `source()`s, not repeated in the
//! text: print with `{:#}` (anyhow) or walk the chain to show them.

use std::path::PathBuf;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while locating, checking, opening, migrating, backing up or restoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Object storage (an `s3://` backup destination) refused or could not be reached.
    #[error("{action} {url} failed: {detail}. Fix: {fix}")]
    Remote {
        /// What was being done, e.g. `uploading backup to`.
        action: &'static str,
        /// The object or prefix, as an `s3://` URL.
        url: String,
        /// What the store or the network said.
        detail: String,
        /// What to check or change.
        fix: String,
    },

    /// A configuration value (environment variable or builder option) could not be used.
    #[error("{variable}={value:?} is not usable: {reason}")]
    Config {
        /// The variable or option name, e.g. `DATABASE_URL`.
        variable: String,
        /// The value that was given.
        value: String,
        /// Why it was refused and what to set instead.
        reason: String,
    },

    /// No location was given and the per-user data directory is unknown (no `HOME`).
    #[error(
        "cannot find a place for the database: set DB_PATH (or {app_var}) to a directory on a volume, \
         e.g. DB_PATH=/data"
    )]
    NoLocation {
        /// The app-specific variable that would have been read first.
        app_var: String,
    },

    /// The database directory (or a file in it) cannot be written by this process.
    #[error(
        "database directory {path} is not writable by uid {uid} gid {gid} (it is owned by uid {owner_uid} \
         gid {owner_gid}, mode {mode:o}). Fix: {fix}"
    )]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// This process's user id.
        uid: u32,
        /// This process's group id.
        gid: u32,
        /// The directory owner's user id.
        owner_uid: u32,
        /// The directory owner's group id.
        owner_gid: u32,
        /// The directory's permission bits.
        mode: u32,
        /// What to run or change, naming the host folder when the directory is a bind mount.
        fix: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The database directory is on a read-only mount.
    #[error(
        "database directory {path} is on a read-only filesystem (mount point {mount_point}). Fix: mount the \
         volume read-write (drop `:ro` from `-v`, or `readOnly: false` in Kubernetes)"
    )]
    ReadOnly {
        /// The directory.
        path: PathBuf,
        /// The mount that holds it, or `?` when unknown.
        mount_point: String,
    },

    /// The directory or a file could not be created, read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. "creating directory".
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The filesystem has no room left.
    #[error("no space left on the filesystem holding {path} while {action}; nothing was changed. Free space or grow the volume, then retry")]
    NoSpace {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
    },

    /// The volume will not survive the container and strict persistence is on.
    #[error(
        "refusing to keep the database {path} on {kind}: {survives}. SQLITE_VOL_REQUIRE_PERSISTENT is set. \
         Fix: {fix}"
    )]
    NotPersistent {
        /// The database file.
        path: PathBuf,
        /// The volume class in words.
        kind: String,
        /// What this class survives.
        survives: String,
        /// What to mount instead.
        fix: String,
    },

    /// The database does not exist and creating it was forbidden.
    #[error(
        "database {path} does not exist and SQLITE_VOL_EXPECT_EXISTING is set, so none was created. Is the \
         volume mounted at {dir}? ({volume}). Mount the volume that holds the data, restore a backup with \
         `sqlite-vol restore`, or create it on purpose with `sqlite-vol init`"
    )]
    Missing {
        /// The database file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The volume class in words.
        volume: String,
    },

    /// The file exists but belongs to a different application (or is not a database of ours).
    #[error(
        "{path} has application_id {found:#x}, but {app} expects {expected:#x}: it belongs to another \
         application. Point DB_PATH at {app}'s own database{hint}"
    )]
    WrongApplication {
        /// The database file.
        path: PathBuf,
        /// The app name.
        app: String,
        /// The id this app stamps.
        expected: i32,
        /// The id found in the file.
        found: i32,
        /// Extra advice (for example `, or restore it anyway`).
        hint: &'static str,
    },

    /// The file is not a SQLite database, or is damaged.
    #[error("{path} is not a usable SQLite database: {reason}")]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What was found wrong.
        reason: String,
    },

    /// An applied migration's SQL differs from this build's.
    #[error(
        "migration V{version}__{name} was changed after it was applied to {path} (checksum {applied} in the \
         database, {embedded} in this build). Restore the original migration file and add a new migration \
         for the change; nothing was applied"
    )]
    DivergentMigration {
        /// The database file.
        path: PathBuf,
        /// Migration version.
        version: i64,
        /// Migration name.
        name: String,
        /// The checksum recorded in the database.
        applied: u64,
        /// The checksum of this build's migration.
        embedded: u64,
    },

    /// The database has migrations this build does not know: an older build on a newer database.
    #[error(
        "{path} is at schema version {db_version} ({unknown}), newer than this build knows (latest \
         {known_version}). An older image was started on a newer database; nothing was run. Deploy the \
         newer image, or restore a backup made before the upgrade"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The highest version recorded in the database.
        db_version: i64,
        /// The highest version this build knows, or -1.
        known_version: i64,
        /// The unknown migrations, as `V3__x, V4__y`.
        unknown: String,
    },

    /// A migration failed; its transaction was rolled back.
    #[error(
        "migration {migration} failed on {path} and was rolled back; the database is as it was before \
         startup (schema version {version_before}). Fix the migration and restart"
    )]
    MigrationFailed {
        /// The database file.
        path: PathBuf,
        /// Which migration, as `V2__name`, or "the migration batch".
        migration: String,
        /// The schema version left in place.
        version_before: i64,
        /// The underlying error.
        #[source]
        source: Box<refinery::Error>,
    },

    /// Migration files could not be loaded.
    #[error("cannot load migrations from {path}")]
    MigrationFiles {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<refinery::Error>,
    },

    /// The maintenance lock is held by another process.
    #[error(
        "{operation} in progress by pid {pid} since {since} (lock {lock}); wait for it to finish, then retry"
    )]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// The holder's operation.
        operation: String,
        /// The holder's pid.
        pid: u32,
        /// When the holder started (RFC 3339).
        since: String,
    },

    /// A backup file failed verification.
    #[error("backup {path} failed verification: {reason}")]
    BadBackup {
        /// The backup file.
        path: PathBuf,
        /// What was found wrong, and what to do.
        reason: String,
    },

    /// A SQLite call failed.
    #[error("SQLite error on {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },

    /// The connection pool could not be built or could not hand out a connection in time.
    #[error("connection pool for {path}")]
    Pool {
        /// The database file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: r2d2::Error,
    },

    /// The database is open in another process (a running service), so it may not be deleted.
    #[error(
        "{path} is open in another process (the service?): stop it first; nothing was deleted"
    )]
    InUse {
        /// The database file.
        path: PathBuf,
    },

    /// Resetting is refused for where the database lives (a persistent volume inside a container).
    #[error(
        "refusing to reset {path}: {why}. Reset is for development databases; nothing was deleted"
    )]
    ResetRefused {
        /// The database file.
        path: PathBuf,
        /// Why: what holds it and what that survives.
        why: String,
    },

    /// The app's creation hook failed; the new database was left without its seed data and will be seeded on
    /// the next start.
    #[error("the on-create hook failed for {path}: {message}")]
    Hook {
        /// The database file.
        path: PathBuf,
        /// The hook's error.
        message: String,
    },

    /// Switching the database to WAL was refused because a SQLite with the WAL-reset bug would write it.
    #[error(
        "not switching {path} to WAL: {seen_in} is SQLite {version}, which has the WAL-reset bug (3.7.0 to \
         3.51.2; fixed in 3.51.3, 3.44.6 and 3.50.7): two or more connections writing or checkpointing a WAL \
         database at once can corrupt it. Fix: give the app a fixed SQLite (a newer libsqlite3.so.0 in \
         /usr/local/lib, or a Python/driver built with one); or keep the rollback journal (safe, but online \
         backups then make the app's writers wait while the copy is taken); or, if the app writes through a \
         single connection, accept the risk"
    )]
    OldSqliteWal {
        /// The database file.
        path: PathBuf,
        /// Where the old library was seen.
        seen_in: String,
        /// Its version, e.g. `3.40.1`.
        version: String,
    },

    /// The supervised command could not be started or supervised.
    #[error("{action} {command:?} failed: {source}. Fix: {fix}")]
    Child {
        /// What was being done, e.g. `starting`.
        action: &'static str,
        /// The command.
        command: String,
        /// What to check.
        fix: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The async writer's queue is full: more writes are waiting than it was allowed to hold.
    #[error(
        "the write queue of {path} is full ({capacity} writes waiting); nothing was applied. The database \
         is overloaded: retry after a short pause, or raise WriterOptions::queue_capacity"
    )]
    WriteQueueFull {
        /// The database file.
        path: PathBuf,
        /// How many writes the queue holds.
        capacity: usize,
    },

    /// A write waited in the async writer's queue longer than allowed and was dropped before it started.
    #[error(
        "a write to {path} waited {waited:?} in the queue without starting and was dropped; nothing was \
         applied. Retry after a short pause, or raise WriterOptions::queue_timeout"
    )]
    WriteTimeout {
        /// The database file.
        path: PathBuf,
        /// How long it waited.
        waited: std::time::Duration,
    },

    /// The async handle is shutting down and takes no more work.
    #[error("the database {path} is shutting down and takes no more work; nothing was applied")]
    Stopped {
        /// The database file.
        path: PathBuf,
    },

    /// A closure given to the async handle panicked; whatever it changed was rolled back.
    #[error("a database closure on {path} panicked ({message}); its changes were rolled back")]
    Panicked {
        /// The database file.
        path: PathBuf,
        /// The panic message.
        message: String,
    },

    /// The transaction holding this write was rolled back whole, because of another write in the same
    /// group commit or a failed commit; nothing of this write was kept.
    #[error(
        "the write to {path} was rolled back with its batch ({reason}); nothing was kept, retry it"
    )]
    BatchRolledBack {
        /// The database file.
        path: PathBuf,
        /// What ended the batch.
        reason: String,
    },

    /// A migration tool (baseline, repair, back, a planned-time limit, a new file) refused; nothing was
    /// changed.
    #[error("{action} refused for {path}: {reason}")]
    MigrationRefused {
        /// The database file (or migrations folder).
        path: PathBuf,
        /// What was refused, e.g. `baseline to V3`.
        action: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// The place's lineage marker names another database: sending this backup would mix two databases'
    /// backups under one prefix (and push the real ones out of retention).
    #[error(
        "refusing to back up to {place}: it belongs to another database ({owner}; this one is {ours}). Restore \
         from it if this machine should carry that data, choose another prefix, or adopt the place for this \
         database with --adopt (SQLITE_VOL_BACKUP_ADOPT=1; logged)"
    )]
    OtherLineage {
        /// The place.
        place: String,
        /// Who its marker names.
        owner: String,
        /// This database.
        ours: String,
    },
    /// Another instance restored from the place and took a newer writer generation: this one is stale.
    #[error(
        "another instance has taken over {place}: its writer generation is {current}, this database's is \
         {ours}, so this backup was refused. Stop this instance (its writes since the takeover are not \
         backed up there), or restore it from the place to follow the new writer"
    )]
    TakenOver {
        /// The place.
        place: String,
        /// The generation in the marker.
        current: u64,
        /// The generation of this database.
        ours: u64,
    },
    /// The place has a lineage marker, so data should exist, but no backup to restore.
    #[error(
        "refusing to start empty: {marker} says {owner} backs up to {place}, but {missing}. Check the prefix \
         (`sqlite-vol list {place}`), restore a backup there, or remove the marker if the data is really gone"
    )]
    LineageWithoutBackup {
        /// The place.
        place: String,
        /// The marker's location.
        marker: String,
        /// Who the marker names.
        owner: String,
        /// What is missing.
        missing: String,
    },
    /// A backup is encrypted (or must be) and the keys given cannot do it, or its ciphertext is damaged.
    #[error("{path}: {reason}")]
    Encryption {
        /// The backup (a path or URL).
        path: PathBuf,
        /// What is wrong and the fix.
        reason: String,
    },
    /// Some destinations did not get the backup; the others did.
    #[error("the backup reached {sent} of {total} destinations; failed: {failed}")]
    SomeDestinationsFailed {
        /// How many got it.
        sent: usize,
        /// How many there are.
        total: usize,
        /// Each failed destination and why.
        failed: String,
    },
}

impl Error {
    /// An [`Error::Sqlite`] for `path`, or [`Error::NoSpace`] when SQLite reports a full disk.
    pub(crate) fn sqlite(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: rusqlite::Error,
    ) -> Error {
        let path = path.into();
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Error::NoSpace { action, path };
        }
        Error::Sqlite { path, source }
    }

    /// An [`Error::Io`], or [`Error::NoSpace`] for `ENOSPC`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(28) {
            return Error::NoSpace { action, path };
        }
        Error::Io {
            action,
            path,
            source,
        }
    }

    /// Wraps a SQLite error from a caller's transaction (for [`crate::Database::write`] closures); `?` does
    /// the same through `From<rusqlite::Error>`.
    pub fn from_sqlite(e: rusqlite::Error) -> Error {
        Error::Sqlite {
            path: PathBuf::new(),
            source: e,
        }
    }

    /// True when the error says another process holds the maintenance lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, Error::Locked { .. })
    }

    /// True when the error is a refusal about the data (bad backup, wrong app, schema) rather than an I/O or
    /// environment failure. The command line maps these to exit code 1.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::BadBackup { .. }
                | Error::NotADatabase { .. }
                | Error::WrongApplication { .. }
                | Error::SchemaTooNew { .. }
                | Error::DivergentMigration { .. }
                | Error::ResetRefused { .. }
                | Error::MigrationRefused { .. }
                | Error::OtherLineage { .. }
                | Error::TakenOver { .. }
                | Error::LineageWithoutBackup { .. }
                | Error::Encryption { .. }
        )
    }
}

impl From<rusqlite::Error> for Error {
    /// A SQLite error from the caller's own statements, so that `?` works in closures and user code.
    fn from(e: rusqlite::Error) -> Error {
        Error::from_sqlite(e)
    }
}
