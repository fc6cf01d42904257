-- Service clients: see ../sqlite/0005_clients.sql for the comments.
CREATE TABLE clients (
    id             TEXT   COLLATE "C" PRIMARY KEY,
    name           TEXT   NOT NULL UNIQUE,
    scopes         TEXT   NOT NULL,
    secret_hash    TEXT   NOT NULL,
    previous_hash  TEXT,
    previous_until BIGINT,
    generation     BIGINT NOT NULL DEFAULT 0,
    create_time    BIGINT NOT NULL
);
