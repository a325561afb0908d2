//! `GET /metrics`: the database's Prometheus series, from the core library ([`sqlite_vol::metrics`]).
//!
//! Sizes, schema, volume, the newest backup, the last off-site send and restore drill, the maintenance
//! lock, and what this service counted (backups, checkpoints, pool waits, the async writer's queue and
//! batches), every series labelled with the
//! app. Rendering reads file metadata and small records only, on the blocking pool.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// `GET /metrics` → 200 with the text exposition format, or 503 when it could not be rendered.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let db = state.db.clone();
    match tokio::task::spawn_blocking(move || sqlite_vol::metrics::render_async(&db)).await {
        Ok(text) => (
            [(header::CONTENT_TYPE, sqlite_vol::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
