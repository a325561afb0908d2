//! Request extractors whose failures are [`ApiError`]s, so that every rejection is a JSON body.
//!
//! [`Json`] wraps axum's JSON extractor: malformed JSON (400), wrong types or missing fields (422), a
//! missing content type (415) and a body over the limit (413) all answer `{"error": "..."}` instead of
//! axum's plain-text rejections. [`Bearer`] reads `Authorization: Bearer <token>` and turns it into the
//! token's hash; anything missing or malformed is [`ApiError::BadToken`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::auth::{parse_token, TokenHash};
use crate::error::ApiError;

/// A JSON body, rejected with an [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// The hash of the bearer token a request carries.
#[derive(Debug, Clone)]
pub struct Bearer(pub TokenHash);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::BadToken)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::BadToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::BadToken);
        }
        parse_token(token.trim())
            .map(Bearer)
            .ok_or(ApiError::BadToken)
    }
}
