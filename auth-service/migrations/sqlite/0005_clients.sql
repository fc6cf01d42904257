-- Service clients: machine identities that get access tokens with IssueClientToken (the OAuth
-- 2.0 client-credentials grant). A secret is 256 random bits (or one given, of at least 32
-- characters), stored only as its SHA-256. `rotate-secret` keeps the previous secret working
-- until `previous_until`; `generation` counts rotations and names the tokens of each secret
-- (their `sid` is `<id>.<generation>`), so the previous secret's tokens are revoked when its
-- grace ends.
CREATE TABLE clients (
    id             TEXT    PRIMARY KEY,       -- UUID: the tokens' `sub` and `client_id`
    name           TEXT    NOT NULL UNIQUE,
    scopes         TEXT    NOT NULL,          -- space-separated
    secret_hash    TEXT    NOT NULL,
    previous_hash  TEXT,
    previous_until INTEGER,
    generation     INTEGER NOT NULL DEFAULT 0,
    create_time    INTEGER NOT NULL
);
