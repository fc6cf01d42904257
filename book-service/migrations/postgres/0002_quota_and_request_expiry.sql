-- See ../sqlite/0002_quota_and_request_expiry.sql for the comments.
CREATE TABLE owner_books (
    owner_id TEXT   PRIMARY KEY,
    books    BIGINT NOT NULL
);
INSERT INTO owner_books (owner_id, books) SELECT owner_id, COUNT(*) FROM books GROUP BY owner_id;

ALTER TABLE create_requests ADD COLUMN create_time BIGINT NOT NULL DEFAULT 0;
CREATE INDEX create_requests_by_time ON create_requests (create_time);
