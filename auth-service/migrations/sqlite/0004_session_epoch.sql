-- `session_epoch` counts the events that end every session of a user (ChangePassword,
-- `admin disable`). A Login records the epoch it read with the password hash and starts its
-- session only if the epoch is unchanged at that moment, in the same writing transaction as
-- the insert: a Login that overlapped a password change or a disable (even one followed by
-- `admin enable`) never leaves a live refresh token behind.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
