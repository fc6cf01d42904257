# One image recipe for both services (multi-stage). Targets: `auth-service`, `book-service`.
#
# The base images are build args whose defaults are the standard public images, so with a
# registry this is an ordinary build. Without one (as in this project's CI), build local images
# under these exact tags first: .ci/compose-smoke shows how (debootstrap + docker import).
# Works with the classic builder and BuildKit, docker compose v2 and docker-compose 1.29.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# Dependencies are compiled in a layer of their own (cargo-chef, which works with any builder):
# the planner reduces the workspace to its manifests and lock file (recipe.json), which change
# only when dependencies do, so after a source change the classic builder reuses the cooked
# dependencies and compiles only the workspace's own crates.
FROM ${RUST_IMAGE} AS chef
RUN cargo install --locked cargo-chef --version 0.1.77 \
    && rm -rf "$CARGO_HOME/registry"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY .cargo .cargo
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --locked --release --recipe-path recipe.json \
    --bin auth-service --bin book-service
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
COPY tests tests
COPY kit kit
COPY testkit testkit
COPY auth-service auth-service
COPY book-service book-service
COPY cli cli
COPY e2e e2e
RUN cargo build --locked --release --bin auth-service --bin book-service \
    && cp target/release/auth-service target/release/book-service /usr/local/bin/

# Shared runtime: CA certificates and a non-root user; each service's stage adds only its own
# binary. No shell tools are needed (healthchecks use the binaries' `healthcheck` subcommand).
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN echo 'bookstore:x:10001:10001:Bookstore:/data:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'bookstore:x:10001:' >> /etc/group \
    && mkdir -p /data /secrets && chown 10001:10001 /data /secrets
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]

FROM runtime AS auth-service
COPY --from=builder /usr/local/bin/auth-service /usr/local/bin/
ENV AUTH_LISTEN=0.0.0.0:50051 \
    AUTH_DATABASE_URL=sqlite:///data/auth.db
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["auth-service", "healthcheck", "--addr", "127.0.0.1:50051"]
ENTRYPOINT ["auth-service"]

# The last stage is the default target.
FROM runtime AS book-service
COPY --from=builder /usr/local/bin/book-service /usr/local/bin/
ENV BOOK_LISTEN=0.0.0.0:50052 \
    BOOK_DATABASE_URL=sqlite:///data/books.db
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["book-service", "healthcheck", "--addr", "127.0.0.1:50052"]
ENTRYPOINT ["book-service"]
