//! Which database owns a place, and which of its instances may write there now: the lineage marker and
//! writer generations (fencing).
//!
//! The first backup sent to a place creates `<app>.lineage.json` beside the backups with a conditional
//! write (object storage: `If-None-Match: *`; a folder: a hard link, which fails when the name exists), so
//! two first backups cannot both create it. It names the database (application id, the instance id and
//! creation time from `_sqlite_vol_meta`) and the current **writer generation**. A backup from another
//! database is refused (unless the place is adopted, which is logged); a backup from an older generation
//! than the marker's is refused as "another instance has taken over this place".
//!
//! Every restore from a place ([`take_over`]) raises the marker's generation by compare-and-swap
//! (object storage: `If-Match` on the marker's e-tag; a folder: a lock file and a revision number) and
//! records the new generation in the restored database (`writer_generation` in `_sqlite_vol_meta`), so
//! its backups carry it and the instance it was restored from is fenced out. A backup costs two small
//! requests: reading the marker before the upload, and checking after it that the marker did not change
//! meanwhile (if a takeover happened during the upload, the backup is deleted again and refused).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::Place;
use crate::identity::META_TABLE;
use crate::{clock, identity, sql, Error, Result};

/// The key of the writer generation in `_sqlite_vol_meta`.
pub const GENERATION_KEY: &str = "writer_generation";

/// The marker's name in a place: `<app>.lineage.json`.
pub fn marker_name(app: &str) -> String {
    format!("{app}.lineage.json")
}

/// The lineage marker: which database owns a place and its current writer generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// The app.
    pub app: String,
    /// `PRAGMA application_id` of the owning database.
    pub application_id: i32,
    /// Its instance id (kept by restored copies).
    pub instance_id: Option<String>,
    /// When the owning database was created.
    pub db_created_at: Option<String>,
    /// The current writer generation: backups from older ones are refused.
    pub generation: u64,
    /// When that generation was taken (RFC 3339).
    pub generation_taken_at: String,
    /// Incremented by every change (a folder's compare-and-swap compares it).
    pub revision: u64,
    /// When the marker was created.
    pub created_at: String,
    /// The tool that last wrote it.
    pub tool_version: String,
}

impl Marker {
    fn new(app: &str, who: &Lineage) -> Marker {
        let now = clock::now_rfc3339();
        Marker {
            app: app.into(),
            application_id: who.application_id,
            instance_id: who.instance_id.clone(),
            db_created_at: who.db_created_at.clone(),
            generation: who.generation,
            generation_taken_at: now.clone(),
            revision: 1,
            created_at: now,
            tool_version: concat!("sqlite-vol ", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// The owner, for messages.
    pub fn describe(&self) -> String {
        describe(
            self.application_id,
            self.instance_id.as_deref(),
            self.db_created_at.as_deref(),
        )
    }

    fn next(&self) -> Marker {
        Marker {
            revision: self.revision + 1,
            tool_version: concat!("sqlite-vol ", env!("CARGO_PKG_VERSION")).into(),
            ..self.clone()
        }
    }
}

fn describe(app_id: i32, instance: Option<&str>, created: Option<&str>) -> String {
    format!(
        "application id {app_id}, instance {}, created {}",
        instance.unwrap_or("unknown"),
        created.unwrap_or("at an unknown time")
    )
}

/// What a database (or a backup of it) says about its lineage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lineage {
    /// `PRAGMA application_id`.
    pub application_id: i32,
    /// The instance id from `_sqlite_vol_meta`.
    pub instance_id: Option<String>,
    /// The creation time from `_sqlite_vol_meta`.
    pub db_created_at: Option<String>,
    /// The writer generation recorded by the last restore from a place (0 before any).
    pub generation: u64,
}

impl Lineage {
    /// Reads it from an open database. Changes nothing.
    ///
    /// # Errors
    /// A SQLite error when the file cannot be read.
    pub fn of_conn(conn: &Connection) -> rusqlite::Result<Lineage> {
        let id = identity::read(conn)?;
        let generation = if sql::has_table(conn, META_TABLE)? {
            conn.query_row(
                &format!("SELECT value FROM {META_TABLE} WHERE key = ?1"),
                [GENERATION_KEY],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
        } else {
            0
        };
        Ok(Lineage {
            application_id: id.application_id,
            instance_id: id.instance_id,
            db_created_at: id.created_at,
            generation,
        })
    }

    /// Reads it from a database or backup file, read-only.
    ///
    /// # Errors
    /// [`Error::Sqlite`] / [`Error::NotADatabase`] when the file cannot be read.
    pub fn of_file(path: &Path) -> Result<Lineage> {
        let conn = sql::open_immutable(path)?;
        Lineage::of_conn(&conn).map_err(|e| Error::sqlite(path, "reading the lineage of", e))
    }

    /// The same database as the marker's owner (a restored copy is: it keeps the instance id).
    pub fn owns(&self, m: &Marker) -> bool {
        self.application_id == m.application_id && self.instance_id == m.instance_id
    }

    /// This database, for messages.
    pub fn describe(&self) -> String {
        describe(
            self.application_id,
            self.instance_id.as_deref(),
            self.db_created_at.as_deref(),
        )
    }
}

/// Records `generation` as the writer generation of the database at `db` (after a restore).
///
/// # Errors
/// [`Error::Sqlite`] when the database cannot be written.
pub fn record_generation(db: &Path, generation: u64) -> Result<()> {
    let conn = Connection::open(db).map_err(|e| Error::sqlite(db, "opening", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| Error::sqlite(db, "opening", e))?;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;"
    ))
    .and_then(|_| {
        conn.execute(
            &format!("INSERT OR REPLACE INTO {META_TABLE} (key, value) VALUES (?1, ?2)"),
            [GENERATION_KEY, &generation.to_string()],
        )
    })
    .map_err(|e| Error::sqlite(db, "recording the writer generation in", e))?;
    Ok(())
}

/// The version a compare-and-swap compares: a folder marker's revision, an object's e-tag.
#[derive(Debug, Clone)]
pub(crate) enum Version {
    Dir(u64),
    #[cfg(feature = "s3")]
    S3(object_store::UpdateVersion),
}

/// The marker of `app` in `place`, if there is one.
///
/// # Errors
/// [`Error::Io`] / [`Error::Remote`] when it cannot be read; [`Error::BadBackup`] when it is not a marker.
pub fn read_marker(place: &Place, app: &str) -> Result<Option<Marker>> {
    Ok(read(place, app)?.map(|(m, _)| m))
}

fn read(place: &Place, app: &str) -> Result<Option<(Marker, Version)>> {
    let name = marker_name(app);
    let raw = match place {
        Place::Dir(dir) => super::dir_marker::read(&dir.join(&name))?.map(|b| (b, None::<Version>)),
        #[cfg(feature = "s3")]
        Place::S3(r) => r.get_small(&name)?.map(|(b, v)| (b, Some(Version::S3(v)))),
    };
    let Some((bytes, version)) = raw else {
        return Ok(None);
    };
    let m: Marker = serde_json::from_slice(&bytes).map_err(|e| Error::BadBackup {
        path: place.location_of(&name).into(),
        reason: format!(
            "the lineage marker is not valid ({e}); restore it from another copy or remove it"
        ),
    })?;
    let v = version.unwrap_or(Version::Dir(m.revision));
    Ok(Some((m, v)))
}

/// Creates the marker; `false` when one is already there.
fn create(place: &Place, app: &str, m: &Marker) -> Result<bool> {
    let json = serde_json::to_vec_pretty(m).unwrap_or_default();
    match place {
        Place::Dir(dir) => super::dir_marker::create(dir, &marker_name(app), &json),
        #[cfg(feature = "s3")]
        Place::S3(r) => r.put_create(&marker_name(app), json),
    }
}

/// Replaces the marker if it is still at `v`; `false` when it changed meanwhile.
fn update(place: &Place, app: &str, m: &Marker, v: &Version) -> Result<bool> {
    let json = serde_json::to_vec_pretty(m).unwrap_or_default();
    match (place, v) {
        (Place::Dir(dir), Version::Dir(rev)) => {
            super::dir_marker::update(dir, &marker_name(app), &json, |cur| {
                serde_json::from_slice::<Marker>(cur).is_ok_and(|c| c.revision == *rev)
            })
        }
        #[cfg(feature = "s3")]
        (Place::S3(r), Version::S3(v)) => r.put_update(&marker_name(app), json, v),
        #[allow(unreachable_patterns)]
        _ => Ok(false),
    }
}

/// Whether the marker is still at `v` (a cheap check: a HEAD, or reading a small file).
fn unchanged(place: &Place, app: &str, v: &Version) -> Result<bool> {
    match (place, v) {
        #[cfg(feature = "s3")]
        (Place::S3(r), Version::S3(v)) => Ok(r.head_etag(&marker_name(app))? == v.e_tag),
        _ => Ok(read(place, app)?
            .is_some_and(|(m, _)| matches!(v, Version::Dir(rev) if m.revision == *rev))),
    }
}

fn taken_over(place: &Place, m: &Marker, who: &Lineage) -> Error {
    tracing::error!(place = %place, current = m.generation, ours = who.generation,
        "another instance has taken over this place: this instance's backups are refused there");
    Error::TakenOver {
        place: place.describe(),
        current: m.generation,
        ours: who.generation,
    }
}

/// Before a backup of `who` is sent to `place`: creates the marker on the first backup, refuses another
/// database's backup (unless `adopt`) and a stale generation's, raises the marker to a newer generation.
/// Returns the marker's version, for [`after_send`].
pub(crate) fn before_send(place: &Place, app: &str, who: &Lineage, adopt: bool) -> Result<Version> {
    for _ in 0..5 {
        let Some((m, v)) = read(place, app)? else {
            let m = Marker::new(app, who);
            if create(place, app, &m)? {
                tracing::info!(place = %place, marker = %place.location_of(&marker_name(app)),
                    owner = %m.describe(), "lineage marker created by the first backup sent here");
            }
            continue; // read it back: its version, or the one another first backup created
        };
        if !who.owns(&m) {
            if !adopt {
                return Err(Error::OtherLineage {
                    place: place.describe(),
                    owner: m.describe(),
                    ours: who.describe(),
                });
            }
            let adopted = Marker {
                application_id: who.application_id,
                instance_id: who.instance_id.clone(),
                db_created_at: who.db_created_at.clone(),
                generation: who.generation,
                generation_taken_at: clock::now_rfc3339(),
                ..m.next()
            };
            if update(place, app, &adopted, &v)? {
                tracing::warn!(place = %place, previous_owner = %m.describe(), owner = %adopted.describe(),
                    "ADOPTED the off-site place for this database (adopt is set): backups of the previous owner there are no longer its lineage");
            }
            continue;
        }
        if m.generation > who.generation {
            return Err(taken_over(place, &m, who));
        }
        if m.generation < who.generation {
            let raised = Marker {
                generation: who.generation,
                generation_taken_at: clock::now_rfc3339(),
                ..m.next()
            };
            update(place, app, &raised, &v)?;
            continue;
        }
        return Ok(v);
    }
    Err(Error::Remote {
        action: "updating the lineage marker in",
        url: place.describe(),
        detail: "it kept changing while this backup tried to record itself".into(),
        fix: "another instance is writing there at the same time; check which instance should own the place"
            .into(),
    })
}

/// After backup `name` was sent: if the marker changed during the upload and now fences `who` out, the
/// backup is deleted again (manifest first) and refused.
pub(crate) fn after_send(
    place: &Place,
    app: &str,
    name: &str,
    who: &Lineage,
    v: &Version,
) -> Result<()> {
    if unchanged(place, app, v)? {
        return Ok(());
    }
    match read(place, app)? {
        Some((m, _)) if who.owns(&m) && m.generation <= who.generation => Ok(()),
        Some((m, _)) => {
            super::delete(place, name)?;
            if who.owns(&m) {
                Err(taken_over(place, &m, who))
            } else {
                Err(Error::OtherLineage {
                    place: place.describe(),
                    owner: m.describe(),
                    ours: who.describe(),
                })
            }
        }
        None => Ok(()),
    }
}

/// A restore from `place` is about to bring `app`'s database here: takes the next writer generation by
/// compare-and-swap and returns it (record it in the restored database with [`record_generation`]).
/// `restored` is the lineage of the backup being restored, which creates the marker if there is none yet
/// (a place written before markers existed).
///
/// # Errors
/// [`Error::Remote`] / [`Error::Io`] when the marker cannot be read or written.
pub fn take_over(place: &Place, app: &str, restored: Option<&Lineage>) -> Result<Option<u64>> {
    for _ in 0..10 {
        let Some((m, v)) = read(place, app)? else {
            let Some(who) = restored else { return Ok(None) };
            let m = Marker::new(
                app,
                &Lineage {
                    generation: who.generation.max(1),
                    ..who.clone()
                },
            );
            if create(place, app, &m)? {
                return Ok(Some(m.generation));
            }
            continue;
        };
        let next = Marker {
            generation: m.generation + 1,
            generation_taken_at: clock::now_rfc3339(),
            ..m.next()
        };
        if update(place, app, &next, &v)? {
            tracing::warn!(place = %place, generation = next.generation, previous = m.generation,
                "took the next writer generation of the off-site place: the instance that wrote there before is fenced out");
            return Ok(Some(next.generation));
        }
    }
    Err(Error::Remote {
        action: "taking the next writer generation in",
        url: place.describe(),
        detail: "the lineage marker kept changing".into(),
        fix: "several instances are restoring from this place at once; start one at a time".into(),
    })
}

/// Where a database stands in a place: what doctor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No marker yet (no backup sent since markers exist).
    NoMarker,
    /// The database owns the place and holds its current generation.
    Current(u64),
    /// Another instance took a newer generation: this one is stale.
    TakenOver {
        /// The marker's generation.
        current: u64,
        /// This database's.
        ours: u64,
    },
    /// The marker names another database.
    Other(String),
}

/// Where the database at `db` stands in `place`. Reads the database read-only.
///
/// # Errors
/// As [`read_marker`] and [`Lineage::of_file`].
pub fn standing(place: &Place, app: &str, db: &Path) -> Result<Standing> {
    let Some(m) = read_marker(place, app)? else {
        return Ok(Standing::NoMarker);
    };
    let who = Lineage::of_file(db)?;
    Ok(if !who.owns(&m) {
        Standing::Other(m.describe())
    } else if m.generation > who.generation {
        Standing::TakenOver {
            current: m.generation,
            ours: who.generation,
        }
    } else {
        Standing::Current(who.generation)
    })
}
