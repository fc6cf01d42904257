-- auth-service schema. Migrations are append-only: never edit one that has shipped.
-- Times are Unix seconds.

-- Accounts. `username` is stored lower-case, so UNIQUE is case-insensitive uniqueness.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,          -- UUID
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,             -- argon2id PHC string (salt inside)
    admin         INTEGER NOT NULL DEFAULT 0,
    create_time   INTEGER NOT NULL
);
CREATE INDEX users_by_creation ON users (create_time, id);

-- Ed25519 signing keys. The newest (retire_time NULL) signs; retired keys stay published
-- until every token they signed has expired.
CREATE TABLE signing_keys (
    kid          TEXT    PRIMARY KEY,
    private_key  BLOB    NOT NULL,              -- 32-byte Ed25519 seed
    create_time  INTEGER NOT NULL,
    retire_time  INTEGER                        -- when a newer key took over
);

-- Refresh tokens, stored only as SHA-256 hashes. Each login starts a family; each refresh
-- spends one token and adds the next. Presenting a spent token revokes the family.
CREATE TABLE refresh_tokens (
    token_hash  TEXT    PRIMARY KEY,
    family_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expire_time INTEGER NOT NULL,               -- absolute: the family's login time + TTL
    spent       INTEGER NOT NULL DEFAULT 0,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

-- Failed-login counters, one row per (scope, key): scope 'pair' (username + peer address),
-- 'user' (username) or 'peer' (address). Kept in the database so they survive a restart.
CREATE TABLE login_throttle (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    lockouts     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key)
);

-- Named server secrets (e.g. the key that makes page tokens tamper-evident), made on first use.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
