-- book-service schema. Migrations are append-only: never edit one that has shipped.
-- Times are Unix microseconds.

-- Each user's books. `*_folded` hold the Unicode lower-case forms the filters compare against
-- (SQLite's lower() only folds ASCII). `version` backs the etag (AIP-154).
CREATE TABLE books (
    id            TEXT    PRIMARY KEY,                        -- UUIDv7
    owner_id      TEXT    NOT NULL,                           -- the token's sub
    title         TEXT    NOT NULL,
    title_folded  TEXT    NOT NULL,
    author        TEXT    NOT NULL,
    author_folded TEXT    NOT NULL,
    publisher     TEXT    NOT NULL,
    price_cents   INTEGER NOT NULL CHECK (price_cents >= 0),
    isbn          TEXT,                                       -- ISBN-13 digits, or NULL
    create_time   INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    UNIQUE (owner_id, isbn)
);
-- Keyset paging: (owner, create_time, id) makes page N cost what page 1 costs.
CREATE INDEX books_by_owner ON books (owner_id, create_time, id);
CREATE INDEX books_by_owner_author ON books (owner_id, author_folded, create_time, id);

-- CreateBook idempotency (AIP-155): the first book a request_id made, and a fingerprint of the
-- request, written in the same transaction as the book.
CREATE TABLE create_requests (
    owner_id    TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    book_id     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (owner_id, request_id)
);

-- Named server secrets (the page-token key), made on first use.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
