-- Accounts and their login sessions.
--
-- `email` is stored normalized (trimmed, lower-cased) and is UNIQUE: the index, not a read-then-write
-- check, decides which of two concurrent registrations of one address wins. Only the SHA-256 of each
-- session token is stored, so a copy of this file (or a backup) cannot be used to log in.
-- Timestamps are RFC 3339 UTC with milliseconds, which sort and compare as text.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT    NOT NULL,
    expires_at TEXT    NOT NULL,
    revoked_at TEXT
) STRICT, WITHOUT ROWID;

CREATE INDEX sessions_user ON sessions (user_id);
