//! The SQL: accounts and sessions, as plain synchronous functions over a connection or transaction.
//!
//! Handlers run reads through [`sqlite_vol::AsyncDatabase::read`] and writes through
//! [`sqlite_vol::AsyncDatabase::write`], whose connection is inside the writer's transaction (its own
//! savepoint of a `BEGIN IMMEDIATE` group commit) whenever a write function runs. Uniqueness of an
//! email is left to the `UNIQUE` constraint: an insert that violates it becomes
//! [`ApiError::EmailTaken`], so two racing registrations produce exactly one account.

use sqlite_vol::rusqlite::{self, params, Connection, ErrorCode, OptionalExtension};
use time::OffsetDateTime;

use crate::auth::{Email, TokenHash};
use crate::error::ApiError;

/// A timestamp as stored and returned: RFC 3339 UTC with milliseconds, e.g. `2025-01-31T12:00:00.123Z`.
/// Fixed width, so stored values compare correctly as text.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// An account as `/me` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    /// Its id.
    pub id: i64,
    /// Its normalized email.
    pub email: String,
    /// When it registered.
    pub created_at: String,
}

/// Inserts a new account; [`ApiError::EmailTaken`] when the email is already registered.
///
/// # Errors
/// [`ApiError::EmailTaken`], or the database error.
pub fn create_user(
    tx: &Connection,
    email: &Email,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<i64, ApiError> {
    let inserted = tx.execute(
        "INSERT INTO users (email, password_hash, created_at) VALUES (?1, ?2, ?3)",
        params![email.as_str(), password_hash, timestamp(now)],
    );
    match inserted {
        Ok(_) => Ok(tx.last_insert_rowid()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == ErrorCode::ConstraintViolation
                && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(ApiError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// The id and password hash of the account with this email, if any.
///
/// # Errors
/// The database error.
pub fn find_credentials(
    conn: &Connection,
    email: &Email,
) -> Result<Option<(i64, String)>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash FROM users WHERE email = ?1",
            [email.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Stores a new session for `user_id`, and deletes that user's sessions that have expired.
///
/// # Errors
/// The database error.
pub fn create_session(
    tx: &Connection,
    user_id: i64,
    token: &TokenHash,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), ApiError> {
    let now = timestamp(now);
    tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2",
        params![user_id, now],
    )?;
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![&token.0[..], user_id, now, timestamp(expires_at)],
    )?;
    Ok(())
}

/// The account a live (not expired, not revoked) session belongs to.
///
/// # Errors
/// The database error.
pub fn session_user(
    conn: &Connection,
    token: &TokenHash,
    now: OffsetDateTime,
) -> Result<Option<User>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.email, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
            params![&token.0[..], timestamp(now)],
            |r| {
                Ok(User {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    created_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Revokes a live session; false when there was none to revoke.
///
/// # Errors
/// The database error.
pub fn revoke_session(
    tx: &Connection,
    token: &TokenHash,
    now: OffsetDateTime,
) -> Result<bool, ApiError> {
    let now = timestamp(now);
    let n = tx.execute(
        "UPDATE sessions SET revoked_at = ?2
         WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2",
        params![&token.0[..], now],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_fixed_width_and_sort_as_text() {
        let a = timestamp(OffsetDateTime::UNIX_EPOCH);
        let b = timestamp(OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(1500));
        assert_eq!(a, "1970-01-01T00:00:00.000Z");
        assert_eq!(b, "1970-01-01T00:00:01.500Z");
        assert!(a < b);
    }
}
