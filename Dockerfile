# syntax=docker/dockerfile:1
# SocialCraft: a multi-stage build. The builder has the toolchain and the build tools
# (cargo-leptos, wasm-bindgen-cli, npm's binaryen), installed by the same `./dev tools`
# developers use; the runtime image has only the binary, the built site and the PostgreSQL
# client tools `socialcraft backup` runs, and runs as an unprivileged user.

FROM rust:1.95-bookworm AS builder
ENV CARGO_TERM_COLOR=never DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The tools first, from the files that pin them, so this layer is cached across code changes.
COPY dev Cargo.toml Cargo.lock package.json package-lock.json ./
RUN ./dev tools
COPY . .
# --split: the pages other than the first are lazy routes, each a WASM chunk of its own.
RUN cargo leptos build --release --split \
 && strip target/release/socialcraft

FROM debian:bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin socialcraft \
 && mkdir -p /app/data /app/backups \
 && chown socialcraft:socialcraft /app/data /app/backups
WORKDIR /app
COPY --from=builder /src/target/release/socialcraft /usr/local/bin/socialcraft
COPY --from=builder /src/target/site /app/site
COPY --from=builder /src/Leptos.toml /app/Leptos.toml
ENV APP_ENV=production \
    LEPTOS_ENV=PROD \
    LEPTOS_SITE_ROOT=/app/site \
    LEPTOS_SITE_ADDR=0.0.0.0:3000 \
    DATA_DIR=/app/data \
    BACKUP_DIR=/app/backups \
    PG_BIN_DIR=/usr/lib/postgresql/15/bin
USER socialcraft:socialcraft
EXPOSE 3000 9464
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD curl -fsS http://127.0.0.1:3000/api/health >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["socialcraft"]
CMD ["serve"]
