-- Revocations of access tokens, streamed to every verifier (RevocationService). Each row is
-- written in the same transaction as the change that causes it (Logout, reuse of a spent
-- refresh token, ChangePassword, `admin disable`), so none is lost across a crash, and every
-- replica streams every row. `cursor` orders the stream; a row is purged once `expire_time`
-- has passed (every token it covers has expired by then).
CREATE TABLE revocations (
    cursor      INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT,                           -- a refresh-token family (`sid` claim), or
    user_id     TEXT,                           -- a user whose tokens issued before
    not_before  INTEGER,                        -- this time (Unix seconds) are revoked
    expire_time INTEGER NOT NULL,
    create_time INTEGER NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expire_time);

-- A disabled user cannot log in or refresh. `tokens_not_before`: access tokens of this user
-- issued before it are revoked; tokens issued later carry an `iat` no earlier than it.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN tokens_not_before INTEGER NOT NULL DEFAULT 0;
