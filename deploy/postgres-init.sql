-- Run once, when the PostgreSQL volume is first made (docker-compose.scale.yml): the second
-- database. POSTGRES_DB made the first (`auth`). Each service migrates its own at start.
CREATE DATABASE books OWNER bookstore;
