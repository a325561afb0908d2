//! Every way a request can fail, and the HTTP answer for each.
//!
//! Handlers return [`ApiError`]; its [`IntoResponse`] gives the status code and a JSON body
//! `{"error": "..."}`. Client mistakes get a 4xx with a message that says what to fix. Failures on the
//! server side are logged with their full cause chain and answered with an opaque 500 (or 503 with
//! `Retry-After` when the database is only busy, overloaded or unreachable), so that no SQL, path or internal detail reaches a client. No
//! message here ever contains a password, a hash or a token.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What a 503 tells the client to wait before retrying, in seconds (`Retry-After`).
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The body of every error answer.
#[derive(Debug, serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON, or not what the endpoint takes (from the JSON extractor).
    #[error("{message}")]
    BadBody {
        /// 400, 413, 415 or 422, as the extractor decided.
        status: StatusCode,
        /// What was wrong.
        message: String,
    },
    /// A field is present and well-typed but not acceptable (422).
    #[error("{0}")]
    Invalid(String),
    /// The email is already registered (409).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong password or unknown email: one answer for both, so nobody can learn which emails exist (401).
    #[error("invalid email or password")]
    BadCredentials,
    /// Missing, malformed, expired or revoked bearer token (401).
    #[error("missing, invalid or expired token")]
    BadToken,
    /// No such route (404).
    #[error("no such endpoint")]
    NotFound,
    /// The route exists, the method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database is busy or cannot answer right now (503); logged.
    #[error("the service is temporarily unavailable, retry shortly")]
    Unavailable(#[source] anyhow::Error),
    /// A failure on our side (500); logged, answered opaquely.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadBody { status, .. } => *status,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::BadCredentials | ApiError::BadToken => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A server-side failure.
    pub fn internal(e: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(e.into())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than 64 KiB".to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "send the body as JSON with `Content-Type: application/json`".to_string()
            }
            _ => r.body_text(),
        };
        // A failure to read the body that is not the client's doing (rare) is still not worth a 500: the
        // connection itself is broken, so the client will not see the answer anyway.
        let status = if status.is_client_error() {
            status
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::BadBody { status, message }
    }
}

impl From<sqlite_vol::Error> for ApiError {
    fn from(e: sqlite_vol::Error) -> ApiError {
        // Busy, a full write queue, a write that waited too long, no free connection: retry shortly.
        if e.is_overloaded() {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<sqlite_vol::rusqlite::Error> for ApiError {
    fn from(e: sqlite_vol::rusqlite::Error) -> ApiError {
        sqlite_vol::Error::from_sqlite(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            ApiError::Unavailable(e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable")
            }
            _ => {}
        }
        let message = self.to_string();
        let mut res = (status, Json(ErrorBody { error: &message })).into_response();
        if matches!(self, ApiError::BadToken) {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        res
    }
}

/// The answer for a route that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// The answer for a method a route does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
