-- `session_epoch` counts the events that end every session of a user (ChangePassword,
-- `admin disable`). A Login records the epoch it read with the password hash and starts its
-- session only if the epoch is unchanged, holding the user's row lock while it inserts: a
-- Login that overlapped a password change or a disable (even one followed by `admin enable`)
-- never leaves a live refresh token behind, on any replica.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
