# syntax=docker/dockerfile:1
# The edge image: one binary for `edge` (serve), `edge worker` and `edge keys`.
#   docker build -t edge .
#   docker run -p 8443:8443 edge                              # serve, embedded defaults
#   docker run edge worker --nats tls://nats:4222 --services llm
# Secrets arrive as environment variables holding PEM text (see docker-entrypoint.sh and
# terraform/README.md, "Secrets reach the container"); nothing secret is baked in.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches: a rebuild after a source change
# compiles the workspace, not every dependency again.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p edge \
    && install -D -m 0755 target/release/edge /out/edge

FROM debian:bookworm-slim
# CA roots for model providers reached over HTTPS; nothing else is installed. Not pinned on
# purpose: Debian keeps only the current version in a suite (a pin breaks the build at its next
# update), and CA roots must be current.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin edge \
    && mkdir -p /var/lib/edge \
    && chown edge:edge /var/lib/edge
COPY --from=build /out/edge /usr/local/bin/edge
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The data directory (and, on Fargate, where the entrypoint writes secrets: EDGE_SECRETS_DIR)
# is a volume, so a task's volume is created owned by this user.
VOLUME ["/var/lib/edge"]
USER 10001:10001
ENV EDGE_DATA_DIR=/var/lib/edge \
    EDGE_LOG_FORMAT=json
EXPOSE 8443 9901
# Liveness only: is this process serving? Never /readyz (503 while draining is not a reason
# to kill it) and nothing that depends on NATS. A worker serves no HTTPS: run it with
# `--health-cmd '/usr/local/bin/edge healthcheck --admin'` (terraform's worker tasks do).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/edge", "healthcheck"]
# The entrypoint writes secret PEMs to files and execs edge, so edge is PID 1 and gets SIGTERM.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD []
