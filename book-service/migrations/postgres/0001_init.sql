-- book-service schema on PostgreSQL: the same tables and columns as ../sqlite/0001_init.sql
-- (see it for the comments). Integers are BIGINT on both backends, so one code path reads both.
-- Times are Unix microseconds. Migrations are append-only: never edit one that has shipped.

CREATE TABLE books (
    id            TEXT   COLLATE "C" PRIMARY KEY,             -- UUIDv7; bytewise order as on SQLite
    owner_id      TEXT   NOT NULL,
    title         TEXT   NOT NULL,
    title_folded  TEXT   NOT NULL,
    author        TEXT   NOT NULL,
    author_folded TEXT   NOT NULL,
    publisher     TEXT   NOT NULL,
    price_cents   BIGINT NOT NULL CHECK (price_cents >= 0),
    isbn          TEXT,
    create_time   BIGINT NOT NULL,
    update_time   BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    UNIQUE (owner_id, isbn)
);
CREATE INDEX books_by_owner ON books (owner_id, create_time, id);
CREATE INDEX books_by_owner_author ON books (owner_id, author_folded, create_time, id);

CREATE TABLE create_requests (
    owner_id    TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    book_id     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (owner_id, request_id)
);

CREATE TABLE settings (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);
