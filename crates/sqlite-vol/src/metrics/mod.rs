//! The database's health as Prometheus series, for a scrape (`GET /metrics`) or node_exporter's textfile
//! collector (`sqlite-vol metrics --textfile`).
//!
//! Every series is named `sqlite_vol_…` and carries an `app` label. A scrape scans nothing: sizes come from
//! file metadata, the schema version from the migration history table, the newest backup from the backup
//! folder's names, the last off-site send and restore drill from their records beside the backups (so all
//! of these survive a restart), the lock from its lock file. What only a running service knows — backups and
//! checkpoints it ran, its pool — comes from the [`Counters`] its [`Database`] holds, and is left out when
//! the series are read for a database without an open pool ([`render_at`]). A time that never happened (no
//! backup yet) is `0`, so that an age alert fires. The format is Prometheus's text exposition format,
//! produced by the `prometheus` crate.

mod serve;
#[cfg(feature = "tokio")]
mod writer;

use std::collections::HashMap;
use std::path::Path;

use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub use crate::counters::{Counters, PoolWatch};
pub use serve::{serve, Server};

use crate::lock::MaintenanceLock;
use crate::record::{self, Kind};
use crate::{manifest, Database, Location, Result, Volume};

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The series of an open database: everything [`render_at`] gives, and what the service counted.
pub fn render(db: &Database) -> String {
    render_with(db, |_| {})
}

/// [`render`] for a tokio service: the database's series and its async writer's (queue depth and
/// capacity, writes by outcome, batches, commit time; `sqlite_vol_writer_…`).
#[cfg(feature = "tokio")]
pub fn render_async(db: &crate::AsyncDatabase) -> String {
    let stats = db.writer_stats();
    render_with(db.database(), |reg| writer::register(reg, &stats))
}

/// [`render`] with `more` series registered before encoding.
fn render_with(db: &Database, more: impl FnOnce(&Registry)) -> String {
    // Never wait for a connection: with every one in use, the version known at open answers.
    let schema = db
        .pool()
        .try_get()
        .and_then(|c| crate::migrate::schema_version(&c, &db.location().path).ok())
        .flatten()
        .or(db.schema_version());
    let reg = registry(db.app());
    gauges(
        &reg,
        &db.location().path,
        db.backup_dir(),
        db.app(),
        db.volume(),
        schema,
    );
    let c = db.counters();
    let state = db.pool().state();
    let in_use = state.connections.saturating_sub(state.idle_connections);
    let pool = gauge_vec(
        &reg,
        "pool_connections",
        "Connections of the pool, by state (idle or in_use)",
        "state",
    );
    pool.with_label_values(&["idle"])
        .set(f64::from(state.idle_connections));
    pool.with_label_values(&["in_use"]).set(f64::from(in_use));
    gauge(
        &reg,
        "oldest_read_transaction_seconds",
        "How long the pooled connection out the longest has been out: a bound on the oldest read transaction of this process",
        c.pool().oldest_out().as_secs_f64(),
    );
    for m in [
        Box::new(c.backups.clone()) as Box<dyn Collector>,
        Box::new(c.backup_seconds.clone()),
        Box::new(c.checkpoints.clone()),
        Box::new(c.pool().wait()),
    ] {
        let _ = reg.register(m);
    }
    more(&reg);
    encode(&reg)
}

/// The series of the database of `app` at `loc`, with backups in `backup_dir`, read without opening a pool
/// (the database is opened read-only for its schema version only, when it exists).
///
/// # Errors
/// None today; kept fallible so that a future source of series can report a failure.
pub fn render_at(loc: &Location, backup_dir: &Path, app: &str) -> Result<String> {
    let read_only =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let schema = crate::fsx::has_content(&loc.path)
        .then(|| rusqlite::Connection::open_with_flags(&loc.path, read_only).ok())
        .flatten()
        .and_then(|c| crate::migrate::schema_version(&c, &loc.path).ok())
        .flatten();
    let reg = registry(app);
    gauges(
        &reg,
        &loc.path,
        backup_dir,
        app,
        &Volume::detect(&loc.dir),
        schema,
    );
    Ok(encode(&reg))
}

fn registry(app: &str) -> Registry {
    let labels = HashMap::from([("app".to_string(), app.to_string())]);
    Registry::new_custom(Some("sqlite_vol".into()), Some(labels)).unwrap_or_default()
}

/// The series read from files: sizes, schema, volume, backups, off-site sends, drills, the lock.
fn gauges(reg: &Registry, db: &Path, dir: &Path, app: &str, volume: &Volume, schema: Option<i64>) {
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64;
    gauge(
        reg,
        "database_size_bytes",
        "Size of the database file",
        len(db),
    );
    gauge(
        reg,
        "wal_size_bytes",
        "Size of the database's -wal file",
        len(&crate::fsx::sidecar(db, "-wal")),
    );
    gauge(
        reg,
        "schema_version",
        "The last applied migration (0: none)",
        schema.unwrap_or(0) as f64,
    );
    if let Some(persistent) = volume.kind.persistent() {
        let class = serde_json::to_value(volume.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        gauge_vec(
            reg,
            "volume_persistent",
            "1 when the volume outlives the container, by storage class",
            "class",
        )
        .with_label_values(&[class.as_str()])
        .set(if persistent { 1.0 } else { 0.0 });
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let newest = manifest::list(dir, app)
        .ok()
        .and_then(|l| l.into_iter().next());
    let backup_at = newest.map(|b| now - b.age_seconds).unwrap_or(0);
    gauge(
        reg,
        "last_backup_timestamp_seconds",
        "When the newest local backup was taken (0: never)",
        backup_at as f64,
    );
    let offsite = record::read(dir, app, Kind::Offsite);
    let at = |r: &record::Record| r.last_ok.as_ref().map(|o| o.at_unix).unwrap_or(0) as f64;
    gauge(
        reg,
        "last_offsite_backup_timestamp_seconds",
        "When a backup was last sent off-site successfully (0: never)",
        at(&offsite),
    );
    results(
        reg,
        "offsite_backups_total",
        "Backups sent off-site, by result (ok or error)",
        &offsite,
    );
    let drills = record::read(dir, app, Kind::Drill);
    gauge(
        reg,
        "last_verified_restore_timestamp_seconds",
        "When a restore drill last succeeded (0: never)",
        at(&drills),
    );
    gauge(
        reg,
        "last_restore_drill_ok",
        "1 when the last restore drill succeeded, 0 when it failed (absent: none yet)",
        drills
            .last
            .as_ref()
            .map_or(f64::NAN, |o| if o.ok { 1.0 } else { 0.0 }),
    );
    results(
        reg,
        "restore_drills_total",
        "Restore drills, by result (ok or error)",
        &drills,
    );
    let held = MaintenanceLock::holder(db).is_some();
    gauge(
        reg,
        "maintenance_lock_held",
        "1 while a backup, restore or migration holds the maintenance lock",
        if held { 1.0 } else { 0.0 },
    );
}

fn gauge(reg: &Registry, name: &str, help: &str, value: f64) {
    if value.is_nan() {
        return;
    }
    if let Ok(g) = prometheus::Gauge::new(name, help) {
        g.set(value);
        let _ = reg.register(Box::new(g));
    }
}

fn gauge_vec(reg: &Registry, name: &str, help: &str, label: &str) -> prometheus::GaugeVec {
    let g = prometheus::GaugeVec::new(Opts::new(name, help), &[label])
        .expect("fixed, valid gauge options");
    let _ = reg.register(Box::new(g.clone()));
    g
}

fn results(reg: &Registry, name: &str, help: &str, r: &record::Record) {
    let c = IntCounterVec::new(Opts::new(name, help), &["result"])
        .expect("fixed, valid counter options");
    c.with_label_values(&["ok"]).inc_by(r.ok);
    c.with_label_values(&["error"]).inc_by(r.error);
    let _ = reg.register(Box::new(c));
}

fn encode(reg: &Registry) -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&reg.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes `text` to `path` for node_exporter's textfile collector, whole or not at all: into a hidden
/// `.<name>.partial` beside it (which the collector, reading only `*.prom`, never sees), fsynced, then renamed
/// over `path`, readable by everyone (the collector often runs as another user).
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::NoSpace`] when the folder cannot be written; `path` keeps its old
/// content then.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.partial", crate::fsx::file_name(path)));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        crate::Error::io("writing the metrics textfile", path, e)
    })?;
    crate::fsx::sync_dir(dir)
}
