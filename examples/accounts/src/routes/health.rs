//! `GET /health`: can the database answer, and where is it?
//!
//! A `SELECT 1` through the pool proves the database answers; the core library's status report adds
//! where it lives, how that was decided, what storage holds it, the schema version and the newest
//! backup's age. Any failure answers 503 (and is logged) so an orchestrator stops sending traffic.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::error::ApiError;

/// The health report.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// The database.
    pub database: DatabaseHealth,
}

/// The database part of the health report.
#[derive(Debug, Serialize)]
pub struct DatabaseHealth {
    /// The database file.
    pub path: String,
    /// How its location was decided (flag, which variable, or the default).
    pub source: String,
    /// The storage class, e.g. `docker_named_volume`.
    pub volume: sqlite_vol::VolumeKind,
    /// The storage class in words.
    pub volume_description: &'static str,
    /// What that storage survives.
    pub survives: &'static str,
    /// Whether it outlives the container (`null` when unknown).
    pub persistent: Option<bool>,
    /// The last applied migration.
    pub schema_version: Option<i64>,
    /// Size of the WAL file.
    pub wal_bytes: u64,
    /// Free space on its filesystem.
    pub free_bytes: Option<u64>,
    /// When the newest backup was taken (RFC 3339), if any.
    pub last_backup_at: Option<String>,
    /// How old the newest backup is, in seconds.
    pub last_backup_age_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Unhealthy {
    status: &'static str,
    error: &'static str,
}

/// `GET /health` → 200 with the report, or 503.
pub async fn health(State(state): State<AppState>) -> Response {
    let checked = async {
        state
            .db
            .read(|conn| Ok::<_, ApiError>(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .await?;
        Ok::<_, ApiError>(state.db.status().await?)
    }
    .await;
    match checked {
        Ok(s) => {
            let kind = s.volume.kind;
            Json(Health {
                status: "ok",
                database: DatabaseHealth {
                    path: s.path.display().to_string(),
                    source: s.source,
                    volume: kind,
                    volume_description: kind.describe(),
                    survives: kind.survives(),
                    persistent: s.volume.persistent,
                    schema_version: s.schema_version,
                    wal_bytes: s.wal_bytes,
                    free_bytes: s.free_bytes,
                    last_backup_at: s.last_backup.as_ref().map(|b| b.created_at.clone()),
                    last_backup_age_seconds: s.last_backup.map(|b| b.age_seconds),
                },
            })
            .into_response()
        }
        Err(e) => {
            let e = match e {
                ApiError::Unavailable(e) | ApiError::Internal(e) => e,
                other => anyhow::Error::new(other),
            };
            tracing::error!(error = format!("{e:#}"), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Unhealthy {
                    status: "unavailable",
                    error: "the database cannot answer",
                }),
            )
                .into_response()
        }
    }
}
