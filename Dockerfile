# Tollgate: one image, one binary (the console inside it) and a config. Build: `docker build -t tollgate .`
# Run (PostgreSQL, Redis and S3 from the environment, see config/config.prd.yaml):
#   docker run -p 9701:9701 -e TOLLGATE_DATABASE_URL=… -e TOLLGATE_REDIS_URL=… \
#     -e TOLLGATE_S3_ACCESS_KEY_ID=… -e TOLLGATE_S3_SECRET_ACCESS_KEY=… \
#     -e TOLLGATE_ADMIN_TOKEN=… -e TOLLGATE_ADMIN_PASSWORD=… tollgate

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# `make build` installs the pinned tools (wasm target, cargo-leptos, wasm-bindgen, wasm-opt).
RUN TOLLGATE_NO_BROWSER=1 make build CACHE=/cache

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/tollgate tollgate \
    && mkdir -p /var/log/tollgate /var/lib/tollgate/objects \
    && chown tollgate /var/log/tollgate /var/lib/tollgate/objects
COPY --from=build /cache/target/release/tollgate /usr/local/bin/tollgate
COPY config/config.prd.yaml /etc/tollgate/config.yaml
USER tollgate
WORKDIR /var/lib/tollgate
EXPOSE 9701
# Ready: the database answers and the instance is not draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD curl -fsS http://127.0.0.1:9701/readyz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tollgate", "--config", "/etc/tollgate/config.yaml"]
