-- How many books each owner has, kept in the same transaction as every CreateBook and
-- DeleteBook, so the per-user quota (`--max-books-per-user`) is checked without counting the
-- owner's books on each create, and holds under concurrent creates (on PostgreSQL the row is
-- locked by the increment). Filled from the books already stored.
CREATE TABLE owner_books (
    owner_id TEXT    PRIMARY KEY,
    books    INTEGER NOT NULL
);
INSERT INTO owner_books (owner_id, books) SELECT owner_id, COUNT(*) FROM books GROUP BY owner_id;

-- CreateBook request ids are kept 24 hours (then purged): `create_time` in Unix seconds.
-- Rows stored before this migration have 0 and go with the first purge.
ALTER TABLE create_requests ADD COLUMN create_time INTEGER NOT NULL DEFAULT 0;
CREATE INDEX create_requests_by_time ON create_requests (create_time);
