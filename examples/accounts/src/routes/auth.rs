//! Register, log in, who am I, log out: `/api/v1/auth/*`.
//!
//! Every step that touches the database or argon2 runs off the async workers: reads on the blocking pool,
//! writes through the library's writer. Registration hashes first and
//! then inserts; the `UNIQUE` index turns a second registration of the same email into 409, however the
//! requests interleave. Login answers the same 401 for an unknown email as for a wrong password, after the
//! same amount of hashing work.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::AppState;
use crate::auth::{Email, NewToken, Password, MAX_PASSWORD_BYTES};
use crate::error::ApiError;
use crate::extract::{Bearer, Json};
use crate::store::{self, timestamp, User};

/// The body of register and login. `Debug` shows no password (see [`Password`]).
#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// The email address.
    pub email: String,
    /// The password.
    pub password: Password,
}

/// What register answers.
#[derive(Debug, Serialize)]
pub struct Registered {
    /// The new account's id.
    pub id: i64,
    /// Its email, normalized.
    pub email: String,
}

/// What login answers.
#[derive(Serialize)]
pub struct LoggedIn {
    /// The bearer token (64 hex digits), shown only here.
    pub token: String,
    /// When it stops working (RFC 3339 UTC).
    pub expires_at: String,
}

/// `POST /api/v1/auth/register` → 201 `{"id","email"}`.
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let email = Email::parse(&body.email)?;
    body.password.validate()?;
    let hash = state.hasher.hash(body.password).await?;
    let stored = email.clone();
    let id = state
        .db
        .write(move |tx| store::create_user(tx, &stored, &hash, OffsetDateTime::now_utc()))
        .await?;
    tracing::info!(user_id = id, "account registered");
    Ok((
        StatusCode::CREATED,
        axum::Json(Registered {
            id,
            email: email.as_str().to_owned(),
        }),
    ))
}

/// `POST /api/v1/auth/login` → 200 `{"token","expires_at"}`, or the one 401 for any bad credentials.
pub async fn login(
    State(state): State<AppState>,
    Json(body): Json<Credentials>,
) -> Result<axum::Json<LoggedIn>, ApiError> {
    if body.password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Invalid(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let email = Email::normalize(&body.email);
    let found = state
        .db
        .read(move |conn| store::find_credentials(conn, &email))
        .await?;
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let ok = state.hasher.verify(body.password, stored).await?;
    let user_id = match (ok, user_id) {
        (true, Some(id)) => id,
        _ => {
            tracing::info!("login refused");
            return Err(ApiError::BadCredentials);
        }
    };
    let token = NewToken::generate();
    let now = OffsetDateTime::now_utc();
    let expires_at = now + state.token_ttl;
    let hash = token.hash.clone();
    state
        .db
        .write(move |tx| store::create_session(tx, user_id, &hash, now, expires_at))
        .await?;
    tracing::info!(user_id, "logged in");
    Ok(axum::Json(LoggedIn {
        token: token.secret,
        expires_at: timestamp(expires_at),
    }))
}

/// `GET /api/v1/auth/me` → 200 `{"id","email","created_at"}` for a live token.
pub async fn me(
    State(state): State<AppState>,
    Bearer(token): Bearer,
) -> Result<axum::Json<User>, ApiError> {
    let user = state
        .db
        .read(move |conn| store::session_user(conn, &token, OffsetDateTime::now_utc()))
        .await?;
    user.map(axum::Json).ok_or(ApiError::BadToken)
}

/// `POST /api/v1/auth/logout` → 204; the token stops working at once.
pub async fn logout(
    State(state): State<AppState>,
    Bearer(token): Bearer,
) -> Result<StatusCode, ApiError> {
    let revoked = state
        .db
        .write(move |tx| store::revoke_session(tx, &token, OffsetDateTime::now_utc()))
        .await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::BadToken)
    }
}
