-- auth-service schema on PostgreSQL: the end state of the SQLite migrations 0001-0003, with the
-- same tables, columns and meanings (see ../sqlite/ for the comments on each). Integers are
-- BIGINT and flags are BIGINT 0/1 on both backends, so one code path reads both. Times are Unix
-- seconds. Migrations are append-only: never edit one that has shipped.

CREATE TABLE users (
    id                TEXT   COLLATE "C" PRIMARY KEY,         -- UUID; bytewise order as on SQLite
    username          TEXT   NOT NULL UNIQUE,                 -- lower-case
    password_hash     TEXT   NOT NULL,                        -- argon2id PHC string
    admin             BIGINT NOT NULL DEFAULT 0,
    create_time       BIGINT NOT NULL,
    disabled          BIGINT NOT NULL DEFAULT 0,
    tokens_not_before BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX users_by_creation ON users (create_time, id);

CREATE TABLE signing_keys (
    kid          TEXT   PRIMARY KEY,
    private_key  BYTEA  NOT NULL,                             -- 32-byte Ed25519 seed
    create_time  BIGINT NOT NULL,
    retire_time  BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT   PRIMARY KEY,
    family_id   TEXT   NOT NULL,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expire_time BIGINT NOT NULL,
    spent       BIGINT NOT NULL DEFAULT 0,
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE login_throttle (
    scope         TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    failures      BIGINT NOT NULL,
    lockouts      BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT NOT NULL DEFAULT 0,
    pending       BIGINT NOT NULL DEFAULT 0,
    pending_since BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);

CREATE TABLE settings (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);

-- `cursor` comes from a sequence, and sequences hand out numbers in call order, not commit
-- order; writers therefore lock this table (EXCLUSIVE: readers go on) before inserting, so
-- cursors commit in order and a streamer never skips a row that commits late.
CREATE TABLE revocations (
    cursor      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  TEXT,
    user_id     TEXT,
    not_before  BIGINT,
    expire_time BIGINT NOT NULL,
    create_time BIGINT NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expire_time);
