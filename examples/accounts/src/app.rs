//! The router and the state every handler shares.
//!
//! [`AppState`] holds the database's async handle (pooled reads on the blocking threads, writes through the
//! library's one writer, which commits concurrent requests together), the password [`Hasher`] and the token
//! lifetime. [`router`] wires the
//! routes, answers unknown paths and methods with JSON errors, caps request bodies at 64 KiB, and logs one
//! line per request (method, path, status, time — never a header or a body, so no token or password).

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use sqlite_vol::AsyncDatabase;

use crate::auth::Hasher;
use crate::error;
use crate::routes;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database: async reads and group-committed writes.
    pub db: AsyncDatabase,
    /// Password hashing, bounded.
    pub hasher: Hasher,
    /// How long a login token lives.
    pub token_ttl: Duration,
}

/// The service's routes over `state`.
pub fn router(state: AppState) -> Router {
    let auth = Router::new()
        .route("/register", post(routes::auth::register))
        .route("/login", post(routes::auth::login))
        .route("/me", get(routes::auth::me))
        .route("/logout", post(routes::auth::logout));
    Router::new()
        .route("/health", get(routes::health::health))
        .route("/metrics", get(routes::metrics::metrics))
        .nest("/api/v1/auth", auth)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let ms = start.elapsed().as_millis() as u64;
    if path == "/health" && status == 200 {
        tracing::debug!(%method, path, status, ms, "request");
    } else {
        tracing::info!(%method, path, status, ms, "request");
    }
    res
}
