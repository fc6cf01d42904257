-- Run once, when the PostgreSQL volume is first made (docker-compose.scale.yml), as the
-- administrator (POSTGRES_USER, a superuser no service uses). Least privilege: each service
-- logs in as a role of its own that owns only its own database and is not a superuser, so
-- book-service's credentials cannot read auth-service's signing keys, password hashes or
-- refresh tokens (a stolen book-service password cannot forge tokens). Each service migrates
-- its own database at start. The passwords here match the URLs in docker-compose.scale.yml:
-- change both together before exposing the database anywhere.
CREATE ROLE auth_service LOGIN PASSWORD 'auth-service-password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE ROLE book_service LOGIN PASSWORD 'book-service-password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE auth OWNER auth_service;
CREATE DATABASE books OWNER book_service;
-- PUBLIC may connect to any database by default: only each owner (and the administrator) may.
REVOKE ALL ON DATABASE auth FROM PUBLIC;
REVOKE ALL ON DATABASE books FROM PUBLIC;
